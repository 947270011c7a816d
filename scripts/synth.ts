// `npm start [-- --stack prod]`: the offline preview. Runs the real Pulumi program for a stack
// under Pulumi's mock runtime (no CLI, no credentials, no network), prints the resource tree and
// writes out/<stack>/plan.json and out/<stack>/hosts/<role>/… (DESIGN.md, "Interfaces" 1).
import * as path from "path";
import { ConfigError } from "../components/config";
import { renderTree, writeOut } from "./preview/plan";
import { runProgram } from "./preview/run";
import { projectName, readStackFile, ROOT } from "./preview/stack-file";

function parseArgs(argv: string[]): { stack: string; outRoot: string } {
  let stack = "staging";
  let outRoot = path.join(ROOT, "out");
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack" || a === "-s") stack = argv[++i] ?? "";
    else if (a.startsWith("--stack=")) stack = a.slice("--stack=".length);
    else if (a === "--out") outRoot = path.resolve(argv[++i] ?? "");
    else if (a === "--help" || a === "-h") {
      console.log("usage: npm start [-- --stack <staging|prod>] [--out <dir>]");
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (usage: npm start [-- --stack <name>] [--out <dir>])`);
  }
  if (!stack) throw new Error("--stack needs a stack name");
  return { stack, outRoot };
}

async function main(): Promise<void> {
  const { stack, outRoot } = parseArgs(process.argv.slice(2));
  const { config, secretKeys } = readStackFile(stack);
  const run = await runProgram({ stack, project: projectName(), config, secretKeys });
  const outDir = path.join(outRoot, stack);
  const { planFile, files } = writeOut(outDir, run);
  console.log(`Previewing stack '${stack}' offline (Pulumi mock runtime; nothing is created)\n`);
  console.log(renderTree(run));
  console.log(`\nWrote ${path.relative(process.cwd(), planFile)} and ${files.length} host file(s) under ${path.relative(process.cwd(), path.join(outDir, "hosts"))}/`);
}

main().catch((e: unknown) => {
  const message = e instanceof ConfigError ? e.message : `error: ${(e as Error)?.message ?? String(e)}`;
  console.error(message);
  process.exit(1);
});
