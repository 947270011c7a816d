// The committed stacks and the variants every guardrail runs on (policy pack, access matrix,
// config schema), and their plan.json as `npm start` writes it.
import * as fs from "fs";
import * as path from "path";
import { Plan, writeOut } from "../scripts/preview/plan";
import { runStack, StackOverrides } from "./harness";

/** [name, stack, overrides]. */
export const VARIANTS: [string, string, StackOverrides][] = [
  ["staging", "staging", {}],
  ["prod", "prod", {}],
  ["prod-managed-db", "prod", { set: { database: { managed: true } } }],
  ["prod-single-host-nginx-tls", "prod", { set: { app: { count: 1, tls: "nginx" } } }],
  ["staging-ssh", "staging", { set: { network: { sshAccess: true, adminCidrs: ["197.243.16.0/28"] } } }],
];

/** Runs the preview code for a variant into `<out>/<variant>/` and reads back its plan.json. */
export async function planOf(out: string, variant: string, stack: string, o: StackOverrides): Promise<Plan> {
  const { planFile } = writeOut(path.join(out, variant), await runStack(stack, o));
  return JSON.parse(fs.readFileSync(planFile, "utf8")) as Plan;
}
