// `npm run -s access-matrix [-- --stack prod]`: the access matrix of a stack (offline preview plus
// the IAM evaluator), as the Markdown table docs/SECURITY.md carries. Development tool: see
// scripts/access/matrix.ts on why the evaluator never reaches the program or the hosts.
import { toPlan } from "./preview/plan";
import { runProgram } from "./preview/run";
import { readStackFile } from "./preview/stack-file";
import { accessMatrix, renderMatrix } from "./access/matrix";

async function main() {
  const args = process.argv.slice(2);
  const stack = args.includes("--stack") ? args[args.indexOf("--stack") + 1] : "prod";
  const plan = toPlan(await runProgram({ stack, ...readStackFile(stack) }));
  console.log(renderMatrix(await accessMatrix(plan)));
}

main().catch((e) => { console.error(`access-matrix: ${(e as Error).message}`); process.exit(1); });
