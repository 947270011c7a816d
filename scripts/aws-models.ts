// `npm run check:aws [-- --stack prod] [--out DIR]`: the offline plan that `npm start` wrote
// (out/<stack>/plan.json) checked against AWS's own API models (botocore) and the documented
// limits they do not carry. Prints a verdict per resource and the types not covered; exits 1 on
// any violation. See docs/AWS-MODELS.md for what this proves and what it does not.
import * as fs from "fs";
import * as path from "path";
import { checkPlan, formatReport, violationsOf } from "./aws-models/check";
import { loadModel } from "./aws-models/models";
import { ROOT } from "./preview/stack-file";

function main(): number {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const stack = opt("--stack", "staging");
  const file = path.join(opt("--out", path.join(ROOT, "out")), stack, "plan.json");
  if (!fs.existsSync(file)) {
    console.error(`check:aws: ${file} does not exist: run \`npm start -- --stack ${stack}\` first`);
    return 2;
  }
  const report = checkPlan(JSON.parse(fs.readFileSync(file, "utf8")), (s) => loadModel(s));
  console.log(formatReport(report));
  return violationsOf(report).length ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(`check:aws: ${(e as Error).message}`);
  process.exitCode = 2;
}
