// Runs TypeScript for `npm start`: esbuild's transform of each .ts file, cached on disk by
// content, so a preview whose sources did not change starts no esbuild at all (esbuild-register
// keeps no cache, and its transforms were a seventh of the preview's time; docs/BENCHMARKS.md).
// And V8's compiled code of every module (the SDK's ~900 files and ours) kept between runs by
// Node's own compile cache, which replaced the v8-compile-cache package (a fifth less CPU).
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const Module = require("module");
const os = require("os");
const path = require("path");

const cacheDir = path.join(os.tmpdir(), `nourish-link-ts-cache-${process.getuid ? process.getuid() : "u"}`);
Module.enableCompileCache(path.join(cacheDir, "v8"));
let esbuild;

require.extensions[".ts"] = (module, filename) => {
  const source = fs.readFileSync(filename, "utf8");
  const key = crypto.createHash("sha256").update(filename).update("\0").update(source).digest("hex");
  const cached = path.join(cacheDir, `${key}.js`);
  let code;
  try {
    code = fs.readFileSync(cached, "utf8");
  } catch {
    esbuild ??= require("esbuild");
    code = esbuild.transformSync(source, { loader: "ts", format: "cjs", target: "node20", sourcefile: filename }).code;
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    const tmp = `${cached}.${process.pid}`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, cached);
  }
  module._compile(code, filename);
};
