// `npm run diff`: the stack previewed at a base revision (a git worktree) and in the working tree,
// compared as `pulumi preview --diff` would. Between two known revisions of a throwaway clone of
// this package: the second raises backups.retentionDays and sets ci.github.repository.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PlanDiff, renderPlanDiff, SECRET, valueChanges } from "../scripts/diff/plan";
import { SECRET as PLAN_SECRET } from "../scripts/preview/run";
import { ROOT } from "../scripts/preview/stack-file";
import { requireTool } from "./tools";

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
  assert.strictEqual(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

describe("npm run diff (plan diff between two revisions)", () => {
  let repo: string;
  let base: string;
  let diff: PlanDiff;
  let run: { status: number | null; stderr: string };

  before(async function () {
    requireTool("git");
    // A clone of this package as it is now (tracked and new files), with this checkout's node_modules.
    repo = fs.mkdtempSync(path.join(os.tmpdir(), "nl-plan-diff-repo-"));
    const files = sh("git", ["ls-files", "-co", "--exclude-standard"], ROOT).split("\n").filter((f) => fs.existsSync(path.join(ROOT, f)));
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(repo, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(repo, f));
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(repo, "node_modules"), "dir");
    sh("git", ["init", "--quiet", "-b", "main"], repo);
    fs.appendFileSync(path.join(repo, ".git", "info", "exclude"), "/node_modules\n");
    sh("git", ["add", "-A"], repo);
    sh("git", ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "--quiet", "-m", "base"], repo);
    base = sh("git", ["rev-parse", "HEAD"], repo);
    const file = path.join(repo, "Pulumi.staging.yaml");
    const text = fs.readFileSync(file, "utf8");
    assert.ok(text.includes("    retentionDays: 14\n"));
    fs.writeFileSync(file, text.replace("    retentionDays: 14\n", "    retentionDays: 21\n")
      + "  nourish-link:ci:\n    github:\n      repository: nourishlink/nourish-link-infra\n");
    const r = spawnSync(process.execPath, ["-r", "esbuild-register", "scripts/plan-diff.ts", "--base", "main", "--stack", "staging", "--json"], { cwd: repo, encoding: "utf8" });
    run = { status: r.status, stderr: r.stderr };
    diff = JSON.parse(r.stdout || "null") as PlanDiff;
  });

  after(() => { if (repo) fs.rmSync(repo, { recursive: true, force: true }); });

  it("exits 0 and leaves no worktree behind", () => {
    assert.strictEqual(run.status, 0, run.stderr);
    assert.strictEqual(sh("git", ["worktree", "list", "--porcelain"], repo).split("\n").filter((l) => l.startsWith("worktree ")).length, 1);
    assert.strictEqual(diff.base, `main (${base.slice(0, 12)})`);
  });

  it("lists the resources the CI role adds, none removed", () => {
    const added = diff.resources.added.map((r) => `${r.type} ${r.name}`).sort();
    assert.deepStrictEqual(added, [
      "aws:iam/openIdConnectProvider:OpenIdConnectProvider ci-github",
      "aws:iam/role:Role ci-preview",
      "aws:iam/role:Role ci-role",
      "aws:iam/rolePolicy:RolePolicy ci-preview",
      "aws:iam/rolePolicyAttachment:RolePolicyAttachment ci-release-transport",
      "nourish-link:ci:CiRole ci",
    ]);
    assert.deepStrictEqual(diff.resources.removed, []);
    assert.ok(diff.outputs.some((o) => o.path === "ciRoleArn" && o.before === undefined && typeof o.after === "string"));
  });

  it("names each changed input with its old and new value: the dumps' expiry follows retentionDays", () => {
    const changed = diff.resources.changed.flatMap((r) => r.changes.map((c) => ({ name: r.name, ...c })));
    assert.ok(changed.some((c) => c.before === 14 && c.after === 21 && /expiration/i.test(c.path)), JSON.stringify(changed, null, 1).slice(0, 3000));
    assert.ok(diff.resources.unchanged > 100);
  });

  it("lists the host files that change, with their diff", () => {
    const env = diff.hostFiles.find((f) => f.path === "db/etc/nourish-link/host.env");
    assert.ok(env && env.status === "changed", JSON.stringify(diff.hostFiles.map((f) => f.path)));
    assert.match(env.diff!, /^-BACKUP_RETENTION_DAYS=14$/m);
    assert.match(env.diff!, /^\+BACKUP_RETENTION_DAYS=21$/m);
    assert.ok(!diff.hostFiles.some((f) => f.path.startsWith("app/")), "the app hosts' files do not change");
  });

  it("never shows a secret: generated values stay masked", () => {
    const text = JSON.stringify(diff) + renderPlanDiff(diff);
    assert.ok(!/mockgen/.test(text), "a generated secret reached the diff");
  });

  it("prints it as pulumi preview --diff lays it out", () => {
    const text = renderPlanDiff(diff);
    assert.match(text, /^Plan diff of stack 'staging': main \([0-9a-f]{12}\) => the working tree/);
    assert.match(text, /^ \+  aws:iam\/role:Role\s+ci-role\s+create$/m);
    assert.match(text, /^ ~  \S+\s+\S+\s+update[^\n]*\n {8}~ \S*[Ee]xpiration\S*: 14 => 21$/m);
    assert.match(text, /^ ~ db\/etc\/nourish-link\/host\.env$/m);
    assert.match(text, /Resources:\n {4}\+ 6 to create\n {4}- 0 to delete\n {3}\+- 0 to replace\n {4}~ \d+ to update( \(\d+ may replace\))?\n/);
  });

  it("masks a secret input on either side, and refuses an unknown base in one line", () => {
    assert.strictEqual(SECRET, PLAN_SECRET);
    assert.deepStrictEqual(valueChanges({ a: "[secret]", b: 1 }, { a: "[secret]", b: 1 }), []);
    assert.deepStrictEqual(valueChanges({ a: "plain" }, { a: "[secret]" }), [{ path: "a", before: "[secret]", after: "[secret]" }]);
    assert.deepStrictEqual(valueChanges({ a: [1, 2] }, { a: [1, 3], c: true }), [{ path: "a[1]", before: 2, after: 3 }, { path: "c", after: true }]);
    const r = spawnSync(process.execPath, ["-r", "esbuild-register", "scripts/plan-diff.ts", "--base", "no-such-ref"], { cwd: repo, encoding: "utf8" });
    assert.strictEqual(r.status, 1);
    assert.strictEqual(r.stderr, "diff: --base: 'no-such-ref' does not exist here (no branch, tag or commit of that name; git fetch it first?)\n");
    assert.strictEqual(r.stderr.trim().split("\n").length, 1);
  });
});
