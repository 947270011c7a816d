// Where the suite's time goes (`npm run bench:suite`, scripts/bench/suite-breakdown.ts): when
// NL_TEST_TIMING names a file, the helpers append one JSON line per phase they run (a cluster's
// initdb, an S3 emulator's start, a mocks run, ...). Without it, nothing is written.
import * as fs from "fs";

export interface TimingEvent {
  pid: number;
  phase: string;
  detail?: string;
  start: number;
  ms: number;
}

/** Appends an event that began at `start` and took until now (or `ms`, when given). */
export function record(phase: string, start: number, detail?: string, ms?: number): void {
  const file = process.env.NL_TEST_TIMING;
  if (!file) return;
  const e: TimingEvent = { pid: process.pid, phase, detail, start, ms: ms ?? Date.now() - start };
  fs.appendFileSync(file, JSON.stringify(e) + "\n");
}

/** Runs `fn` (sync or async) and records how long it took under `phase`. */
export function timed<T>(phase: string, fn: () => T, detail?: string): T {
  if (!process.env.NL_TEST_TIMING) return fn();
  const start = Date.now();
  const out = fn();
  if (out instanceof Promise) return out.finally(() => record(phase, start, detail)) as T;
  record(phase, start, detail);
  return out;
}
