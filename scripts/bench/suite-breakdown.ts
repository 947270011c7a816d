// `npm run bench:suite`: where the suite's time goes. Runs mocha with the timing plugin
// (scripts/bench/suite-timing.ts) and the helpers' timing log (test/timing.ts), then prints, as
// markdown: each file's wall time and its share, and per phase (PostgreSQL initdb/start/stop, S3
// emulator and moto_server starts, `aws` CLI processes, Pulumi mocks runs, timers) how many and how
// long, in total and per file.
//
//   npm run bench:suite                      the suite as `npm test` runs it (.mocharc.json), boot test left out
//   npm run bench:suite -- --alone [FILES]   each file alone, one after the other (default: every file but boot)
//   npm run bench:suite -- --log FILE        only the report, from the log of an earlier run
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { TimingEvent } from "../../test/timing";

const ROOT = path.resolve(__dirname, "../..");
const MOCHA = path.join(ROOT, "node_modules/.bin/mocha");
const PLUGIN = ["--require", "esbuild-register", "--require", path.join(ROOT, "scripts/bench/suite-timing.ts")];

function allFiles(): string[] {
  return fs.readdirSync(path.join(ROOT, "test")).filter((f) => f.endsWith(".test.ts") && f !== "boot.test.ts").map((f) => `test/${f}`).sort();
}

function mocha(args: string[], log: string): { ms: number; status: number | null } {
  const start = Date.now();
  const r = spawnSync(MOCHA, args, { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, NL_TEST_TIMING: log } });
  return { ms: Date.now() - start, status: r.status };
}

const s = (ms: number): string => (ms / 1000).toFixed(1);

function report(log: string, wallMs: number | undefined, mode: string): string {
  const events = fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as TimingEvent);
  const files = events.filter((e) => e.phase === "file");
  // A phase belongs to the file that ran in its process at its time.
  const fileOf = (e: TimingEvent): string => files.find((f) => f.pid === e.pid && e.start >= f.start && e.start <= f.start + f.ms)?.detail ?? "?";
  const phases = events.filter((e) => e.phase !== "file");
  const out: string[] = [];
  const sum = files.reduce((a, f) => a + f.ms, 0);
  out.push(`Mode: ${mode}. ${files.length} files; sum of file times ${s(sum)} s${wallMs !== undefined ? `; wall ${s(wallMs)} s` : ""}.`, "");
  const names = [...new Set(phases.map((e) => e.phase))].sort();
  out.push(`| File | Time (s) | Share | ${names.join(" | ")} |`, `| --- | --- | --- | ${names.map(() => "---").join(" | ")} |`);
  for (const f of [...files].sort((a, b) => b.ms - a.ms)) {
    const mine = phases.filter((e) => fileOf(e) === f.detail);
    const cells = names.map((n) => {
      const xs = mine.filter((e) => e.phase === n);
      return xs.length ? `${xs.length} / ${s(xs.reduce((a, e) => a + e.ms, 0))}` : "";
    });
    out.push(`| ${f.detail} | ${s(f.ms)} | ${((100 * f.ms) / sum).toFixed(1)}% | ${cells.join(" | ")} |`);
  }
  const stray = phases.filter((e) => fileOf(e) === "?");
  if (stray.length) {
    // Processes the tests start (the rehearsal's `npm run rehearse`) write to the log too, as do files that never ended.
    const cells = names.map((n) => {
      const xs = stray.filter((e) => e.phase === n);
      return xs.length ? `${xs.length} / ${s(xs.reduce((a, e) => a + e.ms, 0))}` : "";
    });
    out.push(`| (outside a finished file: child processes such as the rehearsal's, files cut short) | | | ${cells.join(" | ")} |`);
  }
  out.push("", "Phase cells: count / seconds.", "", "| Phase | Count | Total (s) | Median (ms) |", "| --- | --- | --- | --- |");
  for (const n of names) {
    const xs = phases.filter((e) => e.phase === n).map((e) => e.ms).sort((a, b) => a - b);
    out.push(`| ${n} | ${xs.length} | ${s(xs.reduce((a, b) => a + b, 0))} | ${xs[Math.floor(xs.length / 2)]} |`);
  }
  const runs = new Map<string, number>();
  for (const e of phases.filter((x) => x.phase === "mocks-run")) runs.set(`${e.detail}`, (runs.get(`${e.detail}`) ?? 0) + 1);
  out.push("", `Mocks runs by kind: ${[...runs].map(([k, n]) => `${k} ${n}`).join(", ")}.`);
  const timers = new Map<string, { n: number; ms: number }>();
  for (const e of phases.filter((x) => x.phase === "timer")) {
    const t = timers.get(`${e.detail}`) ?? { n: 0, ms: 0 };
    timers.set(`${e.detail}`, { n: t.n + 1, ms: t.ms + e.ms });
  }
  out.push(`Timers (>= 100 ms, set by test code; polls and fixed waits): ${[...timers].sort((a, b) => b[1].ms - a[1].ms).map(([k, t]) => `${k} x${t.n} ${s(t.ms)} s`).join("; ") || "none"}.`);
  return out.join("\n");
}

function main(): void {
  const argv = process.argv.slice(2);
  const logAt = argv.indexOf("--log");
  if (logAt >= 0) {
    console.log(report(argv[logAt + 1], undefined, "from a log"));
    return;
  }
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "nl-suite-")), "timing.jsonl");
  fs.writeFileSync(log, "");
  let wall: number;
  let failed = false;
  let mode: string;
  if (argv[0] === "--alone") {
    const files = argv.length > 1 ? argv.slice(1) : allFiles();
    wall = 0;
    for (const f of files) {
      const r = mocha(["--no-config", ...PLUGIN, "--extension", "ts", "--timeout", "300000", "--reporter", "dot", f], log);
      wall += r.ms;
      failed ||= r.status !== 0;
    }
    mode = "each file alone (`npx mocha --no-config`), one after the other";
  } else {
    const r = mocha(["--config", ".mocharc.json", ...PLUGIN, "--reporter", "dot", "--exclude", "test/boot.test.ts"], log);
    wall = r.ms;
    failed = r.status !== 0;
    mode = "the suite as .mocharc.json runs it (parallel, 3 jobs), boot test left out";
  }
  console.log(`\nTiming log: ${log}\n`);
  console.log(report(log, wall, mode));
  if (failed) {
    console.error("some tests failed (see above); the figures include them");
    process.exitCode = 1;
  }
}

main();
