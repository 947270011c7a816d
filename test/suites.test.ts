// The two suites: `npm run test:quick` (.mocharc.quick.json: the files that start no server, for
// the inner loop) and `npm test` (every file). Each test file is in exactly one of the lists below,
// so a new file is placed on purpose, and a quick file reaches none of the modules that start a
// server (PostgreSQL, the S3 emulator, moto_server, nginx, gunicorn) and runs none itself.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { ROOT } from "../scripts/preview/stack-file";

/**
 * The rest: files that start a server or load a module that does (bench-steps reads the steps of
 * the rehearsal bench, which imports pg.ts), or take minutes without one (release-host: pip).
 */
const REST = [
  "agent", "app-contract", "app-render", "artifact", "backup", "bench-smoke", "bench-steps", "boot", "database-render", "db-monitoring", "db-oncall",
  "estate", "fixture-app", "fixtures", "incident", "integrity", "log-archive", "managed-backup", "nourishctl", "oncall", "pitr", "rehearsal",
  "release-host", "release-safety", "report", "restore-rehearsal", "smoke", "ssm-document", "ssm-step",
].map((f) => `test/${f}.test.ts`);

/** The modules that start servers: a quick file may not reach them through its imports. */
const SERVER_MODULES = ["test/pg.ts", "test/s3.ts", "test/moto.ts", "test/fake-postgres.ts", "test/pgbackrest.ts",
  "scripts/rehearsal/loopback.ts", "scripts/rehearsal/run.ts"];
/** A server started directly from a test file: run, spawned or listening. */
const SERVER_IN_SOURCE = /\b(?:spawn|spawnSync|run|execFile|execFileSync)\(\s*["'](?:nginx|gunicorn|postgres|pg_ctl|initdb|moto_server|s3rver|systemd-nspawn)["']|["']http\.server["']|\bcreateServer\(|\.listen\(/;

const quick = (): string[] => JSON.parse(fs.readFileSync(path.join(ROOT, ".mocharc.quick.json"), "utf8")).spec;

/** Every file (relative to ROOT) that `file` reaches through relative imports and requires. */
function reached(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const source = fs.readFileSync(path.join(ROOT, file), "utf8");
  for (const m of source.matchAll(/(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*)["'](\.{1,2}\/[^"']+)["']/g)) {
    const base = path.join(path.dirname(file), m[1]);
    const hit = [base, `${base}.ts`, `${base}.js`, path.join(base, "index.ts")].find((c) => fs.statSync(path.join(ROOT, c), { throwIfNoEntry: false })?.isFile());
    if (hit) reached(hit, seen);
  }
  return seen;
}
const serverModulesOf = (file: string): string[] => SERVER_MODULES.filter((m) => reached(file).has(m));

describe("test suites: quick (npm run test:quick) and the rest", () => {
  it("place every test file in exactly one of the two lists", () => {
    const files = fs.readdirSync(path.join(ROOT, "test")).filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`).sort();
    const listed = [...quick(), ...REST];
    for (const f of files) {
      const n = listed.filter((x) => x === f).length;
      assert.strictEqual(n, 1, `${f} is in ${n} lists: put it in .mocharc.quick.json's spec if it starts no server, else in REST (test/suites.test.ts)`);
    }
    for (const f of listed) assert.ok(files.includes(f), `${f} is listed but does not exist`);
  });

  it("keep quick files away from servers: none reaches pg.ts, s3.ts, moto.ts and the like, or starts one itself", () => {
    for (const f of quick()) {
      assert.deepStrictEqual(serverModulesOf(f), [], `${f} reaches a module that starts a server`);
      assert.doesNotMatch(fs.readFileSync(path.join(ROOT, f), "utf8"), SERVER_IN_SOURCE, `${f} starts a server`);
    }
    // The checks see what they look for: files of the rest do reach the servers, through helpers too.
    assert.ok(serverModulesOf("test/backup.test.ts").includes("test/pg.ts"));
    assert.ok(serverModulesOf("test/bench-steps.test.ts").includes("test/s3.ts"), "bench-steps reaches s3.ts through scripts/bench/rehearsal.ts");
    assert.match(fs.readFileSync(path.join(ROOT, "test/ssm-step.test.ts"), "utf8"), SERVER_IN_SOURCE);
  });
});
