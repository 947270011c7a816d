// `npm run diff -- --base <git-ref> [--stack S] [--json]`: previews the stack offline at the base
// revision and in the working tree, and prints what `pulumi preview --diff` would: resources
// added, removed, replaced (`+-`, with why: scripts/diff/replace.ts) and changed (inputs that
// differ, secrets masked) and host files changed. The base is previewed in a temporary
// `git worktree` of <git-ref> with this checkout's node_modules (so a base that needs other
// package versions is previewed with these), by its own `npm start`.
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { diffHostFiles, diffPlans, PlanDiff, renderPlanDiff } from "./diff/plan";
import type { Plan } from "./preview/plan";
import { ROOT } from "./preview/stack-file";

const USAGE = "usage: npm run diff -- --base <git-ref> [--stack <staging|prod>] [--json]";

interface Args { base: string; stack: string; json: boolean }

function parseArgs(argv: string[]): Args {
  const args: Partial<Args> = { stack: "staging", json: false };
  const value = (i: number, what: string) => {
    const v = argv[i];
    if (v === undefined || v === "" || v.startsWith("-")) throw new Error(`${argv[i - 1]} needs ${what} (${USAGE})`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--base") args.base = value(++i, "a git ref");
    else if (a === "--stack") args.stack = value(++i, "a stack name");
    else if (a === "--json") args.json = true;
    else if (a === "--help" || a === "-h") { console.log(USAGE); process.exit(0); }
    else throw new Error(`unknown argument '${a}' (${USAGE})`);
  }
  if (!args.base) throw new Error(`--base is required (${USAGE})`);
  if (!/^[A-Za-z0-9_.-]+$/.test(args.stack!)) throw new Error(`--stack: '${args.stack}' is not a stack name`);
  return args as Args;
}

function git(args: string[], cwd = ROOT): string {
  const r = spawnSync("git", args, { cwd, encoding: "utf8" });
  if (r.error) throw new Error(`git is not available (${(r.error as NodeJS.ErrnoException).code})`);
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${(r.stderr || r.stdout).trim().split("\n").pop()}`);
  return r.stdout.trim();
}

/** Runs a checkout's own offline preview (`npm start`) of `stack` into outRoot/<stack>. */
function preview(checkout: string, stack: string, outRoot: string, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["start", "--silent", "--", "--stack", stack, "--out", outRoot], { cwd: checkout, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => { stderr += String(d); });
    child.on("error", (e) => reject(new Error(`the preview at ${label} could not start: ${e.message}`)));
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`the preview of '${stack}' at ${label} failed: ${stderr.trim().split("\n").pop() ?? `exit ${code}`}`))));
  });
}

export async function planDiff(args: Args): Promise<PlanDiff> {
  if (!fs.existsSync(path.join(ROOT, `Pulumi.${args.stack}.yaml`))) throw new Error(`unknown stack '${args.stack}': there is no Pulumi.${args.stack}.yaml`);
  const found = spawnSync("git", ["rev-parse", "--verify", "--quiet", "--end-of-options", `${args.base}^{commit}`], { cwd: ROOT, encoding: "utf8" });
  if (found.error) throw new Error(`git is not available (${(found.error as NodeJS.ErrnoException).code})`);
  if (found.status !== 0) throw new Error(`--base: '${args.base}' does not exist here (no branch, tag or commit of that name; git fetch it first?)`);
  const commit = found.stdout.trim();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nl-plan-diff-"));
  const worktree = path.join(tmp, "base");
  try {
    git(["worktree", "add", "--detach", "--quiet", worktree, commit]);
    // The base revision is previewed with this checkout's packages (no second npm ci).
    if (!fs.existsSync(path.join(worktree, "node_modules"))) fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(worktree, "node_modules"), "dir");
    await Promise.all([
      preview(worktree, args.stack, path.join(tmp, "base-out"), `${args.base} (${commit.slice(0, 12)})`),
      preview(ROOT, args.stack, path.join(tmp, "head-out"), "the working tree"),
    ]);
    const plan = (dir: string) => JSON.parse(fs.readFileSync(path.join(tmp, dir, args.stack, "plan.json"), "utf8")) as Plan;
    return {
      stack: args.stack, base: `${args.base} (${commit.slice(0, 12)})`, head: "the working tree",
      ...diffPlans(plan("base-out"), plan("head-out")),
      hostFiles: diffHostFiles(path.join(tmp, "base-out", args.stack, "hosts"), path.join(tmp, "head-out", args.stack, "hosts")),
    };
  } finally {
    spawnSync("git", ["worktree", "remove", "--force", worktree], { cwd: ROOT });
    spawnSync("git", ["worktree", "prune"], { cwd: ROOT });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let args: Args;
  try { args = parseArgs(process.argv.slice(2)); } catch (e) {
    console.error(`diff: ${(e as Error).message}`);
    process.exit(2);
  }
  try {
    const d = await planDiff(args);
    process.stdout.write(args.json ? JSON.stringify(d, null, 2) + "\n" : renderPlanDiff(d));
  } catch (e) {
    console.error(`diff: ${(e as Error).message.split("\n")[0]}`);
    process.exit(1);
  }
}

if (require.main === module) void main();
