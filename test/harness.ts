// Test harness: run the real program (or any program) for a stack under Pulumi's mocks and query
// what it registered. Everything goes through scripts/preview/run.ts, the same code `npm start`
// uses, so tests see exactly what the offline preview writes.
import * as assert from "assert";
import { loadConfig, merge, PROJECT, StackConfig } from "../components/config";
import { ProgramRun, RecordedResource, runProgram, RunOptions } from "../scripts/preview/run";
import { readStackFile } from "../scripts/preview/stack-file";
import { timed } from "./timing";

export { ProgramRun, RecordedResource, runProgram };

export interface StackOverrides {
  /** `nourish-link:` keys to deep-merge over the stack file; `undefined` removes a key. */
  set?: Record<string, unknown>;
  /** `nourish-link:` keys to set as secrets (as `pulumi config set --secret` does). */
  secrets?: Record<string, string>;
  program?: RunOptions["program"];
}

/** The stack file's config with overrides applied, as the CLI would pass it. */
export function stackConfig(stack: string, o: StackOverrides = {}): { config: Record<string, string>; secretKeys: string[] } {
  const { config, secretKeys } = readStackFile(stack);
  const parsed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    try { parsed[k] = JSON.parse(v); } catch { parsed[k] = v; }
  }
  for (const [k, v] of Object.entries(o.set ?? {})) {
    const key = `${PROJECT}:${k}`;
    if (v === undefined) delete parsed[key];
    else parsed[key] = merge(parsed[key], v);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) out[k] = typeof v === "string" ? v : JSON.stringify(v);
  for (const [k, v] of Object.entries(o.secrets ?? {})) out[`${PROJECT}:${k}`] = v;
  return { config: out, secretKeys: [...secretKeys, ...Object.keys(o.secrets ?? {}).map((k) => `${PROJECT}:${k}`)] };
}

const runs = new Map<string, Promise<ProgramRun>>();

/**
 * The program run for a stack with overrides. The real program runs once per stack config (the
 * stack file with the overrides applied) in a mocha process: files ask for the same stacks again
 * and again. Each caller gets its own copy, so a test may change what it got. A custom `program`
 * runs every time.
 */
export async function runStack(stack: string, o: StackOverrides = {}): Promise<ProgramRun> {
  const config = stackConfig(stack, o);
  const kind = o.program ? "program" : o.set || o.secrets ? "overrides" : "as committed";
  const run = () => timed("mocks-run", () => runProgram({ stack, ...config, program: o.program }), `${stack} ${kind}`);
  if (o.program) return run();
  const key = JSON.stringify([stack, config]);
  if (!runs.has(key)) {
    const p = run();
    runs.set(key, p);
    // A failed run is not cached: the next caller runs it again and sees the error itself.
    p.catch(() => runs.delete(key));
  }
  return structuredClone(await runs.get(key)!);
}

/** Freezes a run all the way down, so no reader of a shared run can change it for the others. */
function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const inner of Object.values(v)) deepFreeze(inner);
  }
  return v;
}

const committed = new Map<string, Promise<ProgramRun>>();
/**
 * The stack as committed (no overrides), run under mocks once per process and shared by every
 * test file in it that only reads it (frozen all the way down, no copy). A test that changes what
 * it reads calls runStack, which gives it a copy of its own.
 */
export function committedStack(stack: string): Promise<ProgramRun> {
  let run = committed.get(stack);
  if (!run) {
    run = runStack(stack).then(deepFreeze);
    committed.set(stack, run);
    run.catch(() => committed.delete(stack));
  }
  return run;
}

/** The typed config a stack's components receive, as loadConfig builds it under the runtime. */
export async function loadStackConfig(stack: string, o: StackOverrides = {}): Promise<StackConfig> {
  let config: StackConfig | undefined;
  await runStack(stack, { ...o, program: async () => { config = loadConfig(); } });
  return config!;
}

export function ofType(run: ProgramRun, type: string): RecordedResource[] {
  return run.resources.filter((r) => r.type === type);
}

export function one(run: ProgramRun, type: string, name: string): RecordedResource {
  const found = run.resources.filter((r) => r.type === type && r.name === name);
  assert.strictEqual(found.length, 1, `expected one ${type} named ${name}, found ${found.length} (have: ${ofType(run, type).map((r) => r.name).join(", ") || "none"})`);
  return found[0];
}

/** The program's error message, or a failure if it succeeded. */
export async function programError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail("expected the program to fail");
}
