// The committed stacks and the variants every guardrail runs on (policy pack, access matrix,
// config schema), and their plan.json as `npm start` writes it.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Plan, writeOut } from "../scripts/preview/plan";
import { committedStack, runStack, StackOverrides } from "./harness";

/** [name, stack, overrides]. */
export const VARIANTS: [string, string, StackOverrides][] = [
  ["staging", "staging", {}],
  ["prod", "prod", {}],
  // With a monthly budget too (monitoring.monthlyBudgetUsd): its Budget checked against AWS's models.
  ["prod-managed-db", "prod", { set: { database: { managed: true }, monitoring: { monthlyBudgetUsd: 150 } } }],
  ["prod-single-host-nginx-tls", "prod", { set: { app: { count: 1, tls: "nginx" } } }],
  ["staging-ssh", "staging", { set: { network: { sshAccess: true, adminCidrs: ["197.243.16.0/28"] } } }],
];

const written = new Map<string, Promise<string>>();
let outDir: string | undefined;

/**
 * Runs the preview code for a variant and reads back the out/<variant>/plan.json it wrote (in a
 * temporary directory removed when mocha exits). Each variant runs once per mocha process, shared
 * by the policy and matrix tests; every caller gets its own copy of the plan.
 */
export async function planOf(variant: string): Promise<Plan> {
  const found = VARIANTS.find(([name]) => name === variant);
  if (!found) throw new Error(`no variant ${variant}`);
  if (!outDir) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-variants-"));
    process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    outDir = path.join(dir, "out");
  }
  const out = outDir;
  // The committed stacks' runs are shared with the other files of this process (test/harness.ts).
  const run = () => (Object.keys(found[2]).length ? runStack(found[1], found[2]) : committedStack(found[1]));
  if (!written.has(variant)) written.set(variant, run().then((r) => writeOut(path.join(out, variant), r).planFile));
  return JSON.parse(fs.readFileSync(await written.get(variant)!, "utf8")) as Plan;
}
