// Where a nourishctl run's time goes, from its xtrace: run with PS4='+${EPOCHREALTIME} ' and
// `set -x`, every command it runs is stamped with the wall-clock time it started. A step starts at
// the first traced command matching its pattern after the previous step's start; it ends where the
// next one starts (the last one at `end`). Pure parsing, for bench:rehearsal (test/bench-steps.test.ts).

export interface Milestone { step: string; pattern: RegExp }
export interface Step { step: string; seconds: number }

/** PS4 that makes bash stamp each traced command (the `+` repeats with nesting depth). */
export const STAMP_PS4 = "+${EPOCHREALTIME} ";

/** [stamp, command] of every trace line; other lines (output, continuations) are left out. */
export function traceLines(trace: string): [number, string][] {
  const out: [number, string][] = [];
  for (const line of trace.split("\n")) {
    const m = /^\++(\d+(?:\.\d+)?) (.*)$/.exec(line);
    if (m) out.push([Number(m[1]), m[2]]);
  }
  return out;
}

/**
 * The steps between `start` and `end` (seconds, same clock as the stamps): "start-up" until the
 * first milestone, then one per milestone, in order. Throws naming the first milestone not found,
 * so a renamed command in nourishctl fails the bench instead of shifting its time elsewhere.
 */
export function stepsOf(trace: string, milestones: Milestone[], start: number, end: number): Step[] {
  const lines = traceLines(trace);
  const at: number[] = [];
  let i = 0;
  for (const m of milestones) {
    while (i < lines.length && !m.pattern.test(lines[i][1])) i++;
    if (i === lines.length) throw new Error(`step '${m.step}': no traced command matches ${m.pattern}`);
    at.push(lines[i][0]);
  }
  const bounds = [start, ...at, end];
  const names = ["start-up", ...milestones.map((m) => m.step)];
  return names.map((step, k) => ({ step, seconds: Math.max(0, bounds[k + 1] - bounds[k]) }));
}
