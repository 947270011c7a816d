// `npm run policy [-- --stack prod] [--out DIR]`: the policy pack against the offline plan that
// `npm start` wrote (out/<stack>/plan.json), without the Pulumi CLI. Exits 1 on any violation.
import * as fs from "fs";
import * as path from "path";
import { checkPlan, formatViolations } from "../policy/plan";
import { ROOT } from "./preview/stack-file";

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const stack = opt("--stack", "staging");
  const file = path.join(opt("--out", path.join(ROOT, "out")), stack, "plan.json");
  if (!fs.existsSync(file)) {
    console.error(`policy: ${file} does not exist: run \`npm start -- --stack ${stack}\` first`);
    return 2;
  }
  const violations = await checkPlan(JSON.parse(fs.readFileSync(file, "utf8")));
  if (violations.length) {
    console.error(`policy: ${violations.length} violation(s) in ${file}:\n${formatViolations(violations)}`);
    return 1;
  }
  console.log(`policy: ${file} passes every rule`);
  return 0;
}

main().then((code) => process.exit(code), (e) => { console.error(`policy: ${(e as Error).message}`); process.exit(2); });
