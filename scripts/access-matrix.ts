// `npm run -s access-matrix [-- --stack prod] [--ci]`: the access matrix of a stack (offline preview plus
// the IAM evaluator), as the Markdown table docs/SECURITY.md carries. Development tool: see
// scripts/access/matrix.ts on why the evaluator never reaches the program or the hosts.
import { toPlan } from "./preview/plan";
import { runProgram } from "./preview/run";
import { readStackFile } from "./preview/stack-file";
import { accessMatrix, renderMatrix } from "./access/matrix";

/** The CI settings `--ci` evaluates (example repositories and state bucket; no deploy policy). */
export const CI_EXAMPLE = { github: { repository: "nourishlink/nourish-link-infra", stateBucket: "nourish-link-pulumi-state", appRepository: "nourishlink/nourish-link" } };

async function main() {
  const args = process.argv.slice(2);
  const stack = args.includes("--stack") ? args[args.indexOf("--stack") + 1] : "prod";
  const { config, secretKeys } = readStackFile(stack);
  // --ci: the stack as if ci.github.repository were set (the committed stacks name no repository):
  // the CI role's column, as docs/SECURITY.md shows it.
  if (args.includes("--ci")) config["nourish-link:ci"] = JSON.stringify(CI_EXAMPLE);
  const plan = toPlan(await runProgram({ stack, config, secretKeys }));
  console.log(renderMatrix(await accessMatrix(plan)));
}

if (require.main === module) main().catch((e) => { console.error(`access-matrix: ${(e as Error).message}`); process.exit(1); });
