// The program loads as Pulumi's Node.js runtime will load it on `pulumi up` (test/pulumi-load.js
// mirrors @pulumi/pulumi/cmd/run/run.js), with type-checking on: a TypeScript or tsconfig change
// that would break `pulumi up` fails here, even when tsc and esbuild (the tests' loader) are happy.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "../scripts/preview/stack-file";
import { run } from "./tools";

const LOADER = path.join(ROOT, "test", "pulumi-load.js");

describe("loading the program as Pulumi's Node.js runtime does", function () {
  this.timeout(300_000);
  // A cold ts-node cache, as on CI's fresh clone: a warm one would skip checking unchanged files.
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "nl-tsnode-cache-"));
  const env = { ...process.env, PULUMI_NODEJS_TRANSPILE_ONLY: "", TS_NODE_CACHE_DIRECTORY: cache };
  after(() => fs.rmSync(cache, { recursive: true, force: true }));

  it("still mirrors the runtime: run.js registers ts-node with these options", () => {
    // If an SDK upgrade changes how the runtime loads TypeScript, pulumi-load.js must follow.
    const runner = fs.readFileSync(path.join(ROOT, "node_modules", "@pulumi", "pulumi", "cmd", "run", "run.js"), "utf8");
    for (const line of [
      "tsutils.typeScriptRequireStrings()",
      "tsutils.loadTypeScriptCompilerOptions(tsConfigPath)",
      "transpileOnly = compilerOptions.noCheck;",
      'module: useNodeNext ? "nodenext" : "commonjs",',
      'moduleResolution: useNodeNext ? "nodenext" : "node",',
      "...compilerOptions,",
      "tsn.register(options);",
    ]) assert.ok(runner.includes(line), `run.js no longer has: ${line}`);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    assert.notStrictEqual(pkg.type, "module", "an ES module project takes the runtime's ESM path, which pulumi-load.js does not mirror");
  });

  it("loads index.ts with the runtime's ts-node and the project's TypeScript, type-checked", () => {
    const r = run(process.execPath, [LOADER, ROOT], { cwd: ROOT, env });
    assert.strictEqual(r.status, 0, r.stderr);
    const loaded = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.strictEqual(loaded.exports, "function", "index.ts must export the program function");
    assert.match(loaded.tsnode, /ts-node/);
    assert.strictEqual(loaded.typescript, JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "typescript", "package.json"), "utf8")).version);
  });

  it("fails on a type error that this loader would meet (type-checking is really on)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-tsload-"));
    try {
      fs.copyFileSync(path.join(ROOT, "tsconfig.json"), path.join(dir, "tsconfig.json"));
      fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
      fs.writeFileSync(path.join(dir, "index.ts"), 'const port: number = "443";\nexport = () => port;\n');
      const r = run(process.execPath, [LOADER, dir], { cwd: dir, env });
      assert.notStrictEqual(r.status, 0, r.stdout);
      assert.match(r.stderr, /TS2322|not assignable to type 'number'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
