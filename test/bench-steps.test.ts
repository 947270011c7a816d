// The step timings bench:rehearsal reports are read from nourishctl's xtrace stamps
// (scripts/bench/steps.ts): each step from its first command to the next step's first command.
import * as assert from "assert";
import { spawnSync } from "child_process";
import { REHEARSAL_STEPS } from "../scripts/bench/rehearsal";
import { STAMP_PS4, stepsOf, traceLines } from "../scripts/bench/steps";

const trace = [
  "+100.000000 cmd_restore_rehearsal --latest",
  "nourishctl: some output line",
  "++100.500000 aws_cli s3 cp --only-show-errors s3://b/dumps/daily/latest.json /x/latest.json",
  "+++101.000000 aws_cli s3 cp --only-show-errors --recursive s3://b/dumps/daily/ /x/",
  "++103.000000 bk_sha256 /x/db_backup_20261201_120000.dump",
  "++104.250000 pg_restore --list /x/db_backup_20261201_120000.dump",
  "a continuation line of a multi-line argument",
  "+++104.500000 pg_app pg_restore --exit-on-error --single-transaction --dbname=d_restore_20261201_120001",
  "++110.000000 bk_dump_tables /x/db_backup_20261201_120000.dump",
  "+++110.100000 pg_restore --list /x/db_backup_20261201_120000.dump",
  "++111.000000 rr_scrub d_restore_20261201_120001 dumps/daily/db_backup_20261201_120000.dump",
  "++111.000000 bk_swap d_restore_20261201_120001 d d_before_restore_20261201_120001",
  "+112.000000 bk_psql postgres -v d=dusangire -v 'c=nourishctl restore-rehearsal key=dumps/daily/db_backup_20261201_120000.dump sha256=ab'",
].join("\n");

describe("bench step timings from xtrace stamps (scripts/bench/steps.ts)", () => {
  it("reads stamped lines of any nesting depth and leaves out output and continuation lines", () => {
    const lines = traceLines(trace);
    assert.strictEqual(lines.length, 11);
    assert.deepStrictEqual(lines[2], [101, "aws_cli s3 cp --only-show-errors --recursive s3://b/dumps/daily/ /x/"]);
  });

  it("splits the rehearsal's run into its steps, each until the next one starts, the last until the end", () => {
    const steps = stepsOf(trace, REHEARSAL_STEPS, 99.75, 112.5);
    assert.deepStrictEqual(steps.map((s) => [s.step, Number(s.seconds.toFixed(3))]), [
      ["start-up", 0.75], ["latest pointer", 0.5], ["download", 2], ["checksum", 1.25], ["readable, create db", 0.25],
      ["pg_restore", 5.5], ["checks", 1], ["scrub", 0], ["swap", 1], ["record, answer", 0.5],
    ]);
    assert.strictEqual(Number(steps.reduce((a, s) => a + s.seconds, 0).toFixed(6)), 112.5 - 99.75, "the steps add up to the whole run");
  });

  it("a step whose command is not in the trace fails naming it, rather than moving its time elsewhere", () => {
    assert.throws(() => stepsOf(trace.replace("bk_swap", "bk_other"), REHEARSAL_STEPS, 99, 113), /step 'swap': no traced command matches/);
    // In order: a command before the previous step does not count.
    assert.throws(() => stepsOf(trace, [{ step: "b", pattern: /^bk_swap/ }, { step: "a", pattern: /^bk_sha256/ }], 99, 113), /step 'a'/);
  });

  it("STAMP_PS4 makes a root bash stamp each command with EPOCHREALTIME", () => {
    const r = spawnSync("bash", ["-c", `PS4='${STAMP_PS4}'; set -x; f() { true inner; }; f; true outer`], { encoding: "utf8" });
    assert.strictEqual(r.status, 0, r.stderr);
    const lines = traceLines(r.stderr);
    assert.deepStrictEqual(lines.map((l) => l[1]), ["f", "true inner", "true outer"]);
    assert.ok(lines.every(([t]) => Math.abs(t - Date.now() / 1000) < 60), JSON.stringify(lines));
    assert.ok(lines[0][0] <= lines[1][0] && lines[1][0] <= lines[2][0]);
  });
});
