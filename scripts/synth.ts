// `npm start [-- --stack prod]`: the offline preview. Runs the real Pulumi program for a stack
// under Pulumi's mock runtime (no CLI, no credentials, no network), prints the resource tree and
// writes out/<stack>/plan.json and out/<stack>/hosts/<role>/… (DESIGN.md, "Interfaces" 1).
import * as fs from "fs";
import * as path from "path";
// Pulumi takes a stack trace for every resource it registers; with source maps on (as
// esbuild-register sets them) each one is re-mapped, which was a third of the preview's time.
process.setSourceMapsEnabled(false);
// (And runProgram takes no stack traces at all while the program runs: scripts/preview/run.ts.)

import { ConfigError } from "../components/config";
import { clearPreviousOut, renderTree, writeOut } from "./preview/plan";
import { runProgram } from "./preview/run";
import { projectName, readStackFile, ROOT } from "./preview/stack-file";

const USAGE = "usage: npm start [-- --stack <staging|prod>] [--out <dir>] [--root <dir with Pulumi.yaml>] [--details]";

function parseArgs(argv: string[]): { stack: string; outRoot: string; root: string; details: boolean } {
  let stack = "staging";
  let details = false;
  let outRoot = path.join(ROOT, "out");
  let root = ROOT;
  // An option's value: `--out` alone (or followed by another option) would mean the current directory.
  const value = (i: number, what: string): string => {
    const v = argv[i];
    if (v === undefined || v === "" || v.startsWith("-")) throw new Error(`${argv[i - 1]} needs ${what} (${USAGE})`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack" || a === "-s") stack = value(++i, "a stack name");
    else if (a.startsWith("--stack=")) stack = a.slice("--stack=".length);
    else if (a === "--out") outRoot = path.resolve(value(++i, "a directory"));
    else if (a === "--root") root = path.resolve(value(++i, "a directory"));
    else if (a === "--details") details = true;
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (${USAGE})`);
  }
  if (!stack) throw new Error("--stack needs a stack name");
  if (!/^[A-Za-z0-9_.-]+$/.test(stack) || stack.startsWith(".")) throw new Error(`--stack: '${stack}' is not a stack name`);
  if (!fs.existsSync(path.join(root, "Pulumi.yaml"))) throw new Error(`--root: ${root} has no Pulumi.yaml (give the project's directory)`);
  return { stack, outRoot, root, details };
}

async function main(): Promise<void> {
  const { stack, outRoot, root, details } = parseArgs(process.argv.slice(2));
  const outDir = path.join(outRoot, stack);
  // Before anything can fail: a preview that stops on bad config leaves no stale plan behind.
  clearPreviousOut(outDir, stack);
  const { config, secretKeys } = readStackFile(stack, root);
  const run = await runProgram({ stack, project: projectName(root), config, secretKeys });
  const { planFile, files } = writeOut(outDir, run);
  console.log(`Previewing stack '${stack}' offline (Pulumi mock runtime; nothing is created)\n`);
  console.log(renderTree(run, { details }));
  console.log(`\nWrote ${path.relative(process.cwd(), planFile)}\n  and ${files.length} host file(s) under ${path.relative(process.cwd(), path.join(outDir, "hosts"))}/`);
}

main().catch((e: unknown) => {
  const message = e instanceof ConfigError ? e.message : `error: ${(e as Error)?.message ?? String(e)}`;
  console.error(message);
  process.exit(1);
});
