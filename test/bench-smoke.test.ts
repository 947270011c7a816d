// No benchmark rots: every `bench:*` script of package.json runs here at its smallest size, the
// way a person runs it (`npm run -s bench:… -- <smallest>`), and must finish with exit 0 and print
// its ratio line. Its figures at this size mean nothing; that it still runs is the point
// (bench:switch once failed for weeks, reading app.env in a format it no longer had).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { ROOT } from "../scripts/preview/stack-file";
import { run } from "./tools";

interface Smoke {
  /** The smallest size the bench takes. */
  args: string[];
  env?: Record<string, string>;
  /** Its ratio line (ours against its floor or baseline). */
  prints: RegExp;
}

/** How each bench runs in the suite. A new bench:* script needs an entry here. */
export const SMOKES: Record<string, Smoke> = {
  "bench:preview": { args: ["--smoke"], prints: /^stack prod: \d+ resources, .* ratio \d+\.\d+x .* per resource \d+\.\d+ ms/m },
  "bench:backup": { args: ["0.001"], env: { RPO_LOAD_SECONDS: "3" }, prints: /^restore\s+(\d+\.\ds\s+){4}\d+\.\d\dx/m },
  "bench:rehearsal": { args: ["0.001"], env: { BENCH_ROUNDS: "1" }, prints: /^\| \*\*ours: .*\*\* \| \d+\.\d s \| \d+\.\d\d× \|$/m },
  "bench:restore-breakdown": { args: ["0.001"], prints: /^pgbackrest restore zst-aes +\d+\.\d{3} +\d+\.\d\d$/m },
  "bench:s3-transport": { args: ["1"], prints: /^download, https \(nginx front\) +\d+\.\d s +\S+× floor$/m },
  "bench:switch": { args: ["1"], prints: /^\| ours \(socket rename\) \| \d+ \| \d+ \| \d+\.\d\d \| 1\/1 \|$/m },
  "bench:fetch": { args: ["d71adfb", "1"], prints: /^release fetch, 1 runs each: .* ratio \d+\.\d\dx$/m },
  // Not a ratio: where the suite's time goes, per file and per phase; its smallest run is one file alone.
  "bench:suite": { args: ["--alone", "test/env-file.test.ts"], prints: /^\| test\/env-file\.test\.ts \| \d+\.\d \| 100\.0% \|/m },
};

const benchScripts = (): string[] =>
  Object.keys(JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts).filter((s) => s.startsWith("bench:")).sort();

describe("benchmarks: every bench:* script runs at its smallest size", () => {
  it("has a smoke run for every bench:* script of package.json, and none for a script that is gone", () => {
    assert.deepStrictEqual(Object.keys(SMOKES).sort(), benchScripts(),
      "each bench:* script of package.json needs an entry in SMOKES (test/bench-smoke.test.ts): its smallest size and its ratio line");
  });

  for (const [script, smoke] of Object.entries(SMOKES)) {
    it(`npm run ${script} -- ${smoke.args.join(" ")} completes and prints its ratio line`, () => {
      const r = run("npm", ["run", "-s", script, "--", ...smoke.args], { cwd: ROOT, env: { ...process.env, ...smoke.env }, maxBuffer: 64 << 20 });
      const tail = `${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-15).join("\n");
      assert.strictEqual(r.status, 0, `${script} failed:\n${tail}`);
      assert.match(r.stdout, smoke.prints, `${script} printed no ratio line:\n${tail}`);
    });
  }
});
