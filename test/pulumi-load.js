// Loads a Pulumi TypeScript program exactly as Pulumi's Node.js language runtime does on
// `pulumi preview` / `pulumi up` (@pulumi/pulumi/cmd/run/run.js): the ts-node and TypeScript that
// tsutils.typeScriptRequireStrings() picks, the compiler options the runner sets (nodenext for
// TypeScript >= 4.7) merged with tsconfig.json, type-checking unless tsconfig says noCheck.
// Usage: node test/pulumi-load.js <project root> [entry, default index.ts]. Prints one JSON line.
// Plain JavaScript on purpose: nothing may be compiled before ts-node is registered.
"use strict";
const path = require("path");
const root = path.resolve(process.argv[2]);
const entry = process.argv[3] ?? "index.ts";
process.chdir(root);
const started = Date.now();
const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [root] }));
const tsutils = require(path.join(pulumiDir, "tsutils"));
const semver = require(require.resolve("semver", { paths: [pulumiDir] }));
const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
const compilerOptions = tsutils.loadTypeScriptCompilerOptions("tsconfig.json");
const ts = require(require.resolve(typescriptRequire, { paths: [pulumiDir] }));
const useNodeNext = semver.parse(ts.version).compare(new semver.SemVer("4.7.0")) >= 0;
require(require.resolve(tsnodeRequire, { paths: [pulumiDir] })).register({
  compiler: typescriptRequire,
  transpileOnly: process.env.PULUMI_NODEJS_TRANSPILE_ONLY ? process.env.PULUMI_NODEJS_TRANSPILE_ONLY === "true" : compilerOptions.noCheck,
  project: "tsconfig.json",
  skipProject: false,
  compilerOptions: { target: "ES2020", module: useNodeNext ? "nodenext" : "commonjs", moduleResolution: useNodeNext ? "nodenext" : "node", sourceMap: "true", ...compilerOptions },
});
const program = require(path.join(root, entry));
console.log(JSON.stringify({ tsnode: path.relative(root, tsnodeRequire) || tsnodeRequire, typescript: ts.version, exports: typeof program, ms: Date.now() - started }));
