// Mocha root-hook plugin for `npm run bench:suite` (scripts/bench/suite-breakdown.ts loads it with
// --require; never part of `npm test`). It appends to NL_TEST_TIMING, beside what the helpers record
// (test/timing.ts): each test file's start and end in its worker, every `aws` CLI process the test
// process itself starts (set-up and checks; the host scripts' own calls are theirs), every `sleep`
// process, and every timer of 100 ms or more that test code or our scripts set and that fires (fixed
// sleeps and poll intervals; its delay is counted, not when a busy event loop got to it).
import * as childProcess from "child_process";
import * as path from "path";
import { record } from "../../test/timing";

const ROOT = path.resolve(__dirname, "../..");

function counted(cmd: unknown): string | undefined {
  const base = typeof cmd === "string" ? path.basename(cmd) : "";
  return base === "aws" ? "aws-cli" : base === "sleep" ? "sleep-process" : undefined;
}

if (process.env.NL_TEST_TIMING) {
  const cp = childProcess as unknown as Record<string, (...a: unknown[]) => unknown>;
  const spawnSync = cp.spawnSync;
  cp.spawnSync = (...a: unknown[]) => {
    const phase = counted(a[0]);
    const start = Date.now();
    const r = spawnSync(...a);
    if (phase) record(phase, start, ((a[1] as string[] | undefined) ?? []).filter((x) => !x.startsWith("-") && !x.startsWith("http")).slice(0, 2).join(" "));
    return r;
  };
  const spawn = cp.spawn;
  cp.spawn = (...a: unknown[]) => {
    const phase = counted(a[0]);
    const start = Date.now();
    const child = spawn(...a) as childProcess.ChildProcess;
    if (phase) child.once("exit", () => record(phase, start, ((a[1] as string[] | undefined) ?? []).slice(0, 2).join(" ")));
    return child;
  };
  const setTimeoutOrig = global.setTimeout as unknown as (fn: () => void, ms?: number, ...rest: unknown[]) => NodeJS.Timeout;
  (global as { setTimeout: unknown }).setTimeout = function (fn: () => void, ms?: number, ...rest: unknown[]) {
    if ((ms ?? 0) >= 100) {
      // The caller, and its caller (a sleep helper's own line says little).
      const ours = (new Error().stack ?? "").split("\n").slice(2, 4)
        .map((frame) => /\(?([^ (]+):(\d+):\d+\)?$/.exec(frame.trim()))
        .filter((m): m is RegExpExecArray => !!m && m[1].startsWith(ROOT) && !m[1].includes("node_modules"));
      if (ours.length) {
        const start = Date.now();
        const where = ours.map((m) => `${path.relative(ROOT, m[1])}:${m[2]}`).join(" < ");
        // The delay asked for, not when it fired: a blocked event loop (spawnSync) is not the timer's.
        return setTimeoutOrig(() => { record("timer", start, `${where} (${ms} ms)`, ms); fn(); }, ms, ...rest);
      }
    }
    return setTimeoutOrig(fn, ms, ...rest);
  } as typeof setTimeout;
}

const fileOf = (ctx: Mocha.Context): string => {
  const root = ctx.test?.parent;
  return path.relative(ROOT, root?.suites.find((s) => s.file)?.file ?? root?.file ?? "?");
};
let fileStart = 0;

export const mochaHooks = {
  beforeAll(this: Mocha.Context) { fileStart = Date.now(); },
  afterAll(this: Mocha.Context) { record("file", fileStart, fileOf(this)); },
};
