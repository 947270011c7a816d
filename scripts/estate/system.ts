// The few system calls the estate makes (ip, nsenter, mount, …): synchronous, failing with the
// command and its stderr in one line, so a broken step names itself.
import { spawnSync } from "child_process";

export function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: opts.input, env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  const out = { status: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  if (out.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${out.status}): ${(out.stderr || out.stdout).trim().split("\n").slice(-3).join(" | ")}`);
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns a value, or fails with `what` after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, check: () => T | undefined | false, everyMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(everyMs);
  }
}

export function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}
