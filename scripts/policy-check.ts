// `npm run policy [-- --stack prod | --plan FILE]`: the policy pack without the Pulumi CLI. By
// default it previews the stack itself (the same offline run as `npm start`), so what it checks
// is the stack as committed now, never a plan.json an earlier preview left behind; `--plan FILE`
// checks a plan.json you name. Exits 1 on any violation, 2 on bad arguments.
import * as fs from "fs";
import { checkPlan, formatViolations } from "../policy/plan";
import { Plan, toPlan } from "./preview/plan";
import { runProgram } from "./preview/run";
import { readStackFile } from "./preview/stack-file";

const USAGE = `usage: npm run policy [-- --stack <staging|prod> | --plan <plan.json>]
  --stack S    preview stack S offline (as npm start does) and check that plan (default: staging)
  --plan FILE  check this plan.json instead (for example one npm start wrote earlier)`;

export function parseArgs(argv: string[]): { help: true } | { stack: string; planFile?: string } {
  let stack = "staging";
  let planFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v === "" || v.startsWith("-")) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--help" || a === "-h") return { help: true };
    else if (a === "--stack") stack = value();
    else if (a === "--plan") planFile = value();
    else throw new Error(`unknown argument '${a}'`);
  }
  return { stack, planFile };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`policy: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if ("help" in args) {
    console.log(USAGE);
    return 0;
  }
  let plan: Plan;
  let what: string;
  if (args.planFile) {
    if (!fs.existsSync(args.planFile)) {
      console.error(`policy: --plan ${args.planFile} does not exist`);
      return 2;
    }
    plan = JSON.parse(fs.readFileSync(args.planFile, "utf8"));
    what = args.planFile;
  } else {
    const { config, secretKeys } = readStackFile(args.stack);
    plan = toPlan(await runProgram({ stack: args.stack, config, secretKeys }));
    what = `stack ${args.stack} (previewed now)`;
  }
  const violations = await checkPlan(plan);
  if (violations.length) {
    console.error(`policy: ${violations.length} violation(s) in ${what}:\n${formatViolations(violations)}`);
    return 1;
  }
  console.log(`policy: ${what} passes every rule`);
  return 0;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (e) => { console.error(`policy: ${(e as Error).message}`); process.exit(2); });
}
