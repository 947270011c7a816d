// The GitHub Actions workflows (.github/workflows/) for this package's users, checked offline:
// valid for GitHub (@action-validator/core, the schema GitHub's runner accepts), every npm script
// and stack they name exists, and the security shape the README promises (OIDC, no stored AWS
// keys, prod behind its environment, no credentials on pull requests, no ${{ }} in shell).
import * as assert from "assert";
import { validateWorkflow } from "@action-validator/core";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { ROOT } from "../scripts/preview/stack-file";

const DIR = path.join(ROOT, ".github", "workflows");
type Step = { uses?: string; run?: string; with?: Record<string, string>; env?: Record<string, string>; name?: string };
type Job = { environment?: string; if?: string; permissions?: Record<string, string>; steps: Step[]; uses?: string; strategy?: { matrix?: { include?: { stack?: string }[] } } };
type Workflow = { on: Record<string, unknown>; permissions?: Record<string, string>; jobs: Record<string, Job> };

const files = () => fs.readdirSync(DIR).filter((f) => f.endsWith(".yml")).sort();
const text = (f: string) => fs.readFileSync(path.join(DIR, f), "utf8");
const wf = (f: string) => parse(text(f)) as Workflow;
const steps = (w: Workflow) => Object.values(w.jobs).flatMap((j) => j.steps);
const uses = (w: Workflow, action: string) => steps(w).filter((s) => s.uses?.split("@")[0] === action);

/**
 * What is wrong with a workflow's supply chain: a third-party action (or reusable workflow) not
 * pinned to a full commit SHA with its tag in a comment (a tag can be moved to other code), and a
 * checkout that leaves the job's token in .git/config for npm ci's install scripts and the program.
 */
function supplyChainProblems(f: string, source: string): string[] {
  const problems: string[] = [];
  const w = parse(source) as Workflow;
  const used = Object.values(w.jobs).flatMap((j) => [j.uses, ...(j.steps ?? []).map((s) => s.uses)]).filter((u): u is string => !!u);
  for (const u of used) {
    if (u.startsWith("./")) continue; // an action of this repository, pinned by the checkout itself
    if (!/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(u)) problems.push(`${f}: ${u} is not pinned to a full commit SHA`);
    const line = source.split("\n").find((l) => l.includes(`uses: ${u}`));
    if (!line || !/ # v\d+\.\d+\.\d+$/.test(line)) problems.push(`${f}: ${u} has no "# vX.Y.Z" comment naming its tag`);
  }
  for (const [name, job] of Object.entries(w.jobs)) {
    const runsCode = (job.steps ?? []).some((s) => /\bnpm (ci|test|run)\b|\.ci\/run/.test(s.run ?? "") || s.uses?.startsWith("pulumi/actions@"));
    if (!runsCode) continue;
    for (const s of job.steps.filter((x) => x.uses?.startsWith("actions/checkout@"))) {
      if ((s.with as Record<string, unknown> | undefined)?.["persist-credentials"] !== false) problems.push(`${f}: job ${name} checks out with persist-credentials left on`);
    }
  }
  return problems;
}

describe("CI workflows", () => {
  it("are the four docs/STAGING-AND-PROMOTION.md and docs/RELEASES.md describe", () => {
    assert.deepStrictEqual(files(), ["deploy-staging.yml", "promote-prod.yml", "pull-request.yml", "release-artifact.yml"]);
  });

  it("validate against GitHub's workflow schema (@action-validator/core), which catches a broken one", () => {
    for (const f of files()) assert.deepStrictEqual(validateWorkflow(text(f)).errors, [], f);
    const broken = text("deploy-staging.yml").replace("runs-on:", "runs_on:");
    assert.notDeepStrictEqual(validateWorkflow(broken).errors, []);
    const badTrigger = text("pull-request.yml").replace("pull_request:", "pull_requests:");
    assert.notDeepStrictEqual(validateWorkflow(badTrigger).errors, []);
  });

  it("name only npm scripts, files and stacks that exist", () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
    const named = new Set<string>();
    for (const f of files()) {
      for (const job of Object.values(wf(f).jobs)) for (const s of job.steps ?? []) {
        const run = s.run ?? "";
        for (const m of run.matchAll(/npm (?:run(?: -s)?|test)\b ?([\w:-]*)/g)) {
          const script = m[0].startsWith("npm test") ? "test" : m[1];
          assert.ok(scripts[script], `${f}: npm script '${script}' does not exist`);
          named.add(script);
        }
        for (const m of run.matchAll(/--stack "?\$?(\w+)"?/g)) if (m[1] !== "stack") assert.ok(fs.existsSync(path.join(ROOT, `Pulumi.${m[1]}.yaml`)), `${f}: stack ${m[1]}`);
        for (const m of run.matchAll(/(?:bash )?(\.ci\/\w+)/g)) assert.ok(fs.existsSync(path.join(ROOT, m[1])), `${f}: ${m[1]}`);
        // A matrix's stack-name: every stack the matrix lists.
        const stackNames = s.with?.["stack-name"] === "${{ matrix.stack }}" ? (job.strategy?.matrix?.include ?? []).map((i) => String(i.stack)) : s.with?.["stack-name"] ? [s.with["stack-name"]] : [];
        for (const n of stackNames) assert.ok(fs.existsSync(path.join(ROOT, `Pulumi.${n}.yaml`)), `${f}: stack ${n}`);
        if (s.with?.["pulumi-version-file"]) assert.ok(fs.existsSync(path.join(ROOT, s.with["pulumi-version-file"])), f);
      }
    }
    assert.deepStrictEqual([...named].sort(), ["artifact", "diff", "promote"]);
    // The loop over stacks in the PR diff names them in a `for`: both must exist.
    assert.match(text("pull-request.yml"), /for stack in staging prod; do/);
    // .ci/run is what runs the suite: it must still call npm test.
    assert.match(fs.readFileSync(path.join(ROOT, ".ci", "run"), "utf8"), /'npm ci && npm test'$/m);
  });

  it("run on the Node.js package.json declares, as do .ci/run, @types/node and this suite (and the node its tests spawn)", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    const engines = /^>=(\d+)$/.exec(pkg.engines.node);
    assert.ok(engines, `package.json engines.node is ${pkg.engines.node}; this test reads only ">=MAJOR"`);
    const major = Number(engines[1]);
    const ci = /npx -y -p node@((\d+)\.\d+\.\d+) -- /.exec(fs.readFileSync(path.join(ROOT, ".ci", "run"), "utf8"));
    assert.ok(ci, ".ci/run does not run the suite on a pinned node@X.Y.Z from the npm registry");
    assert.strictEqual(Number(ci[2]), major, `.ci/run runs node@${ci[1]}, package.json wants ${pkg.engines.node}`);
    for (const f of files()) {
      const nodes = uses(wf(f), "actions/setup-node");
      for (const s of nodes) assert.strictEqual(s.with?.["node-version"], String(major), `${f}: setup-node's node-version`);
      if (/\bnpm (ci|test|run)\b/.test(text(f))) assert.ok(nodes.length > 0, `${f} runs npm without setup-node`);
    }
    assert.strictEqual(Number(pkg.devDependencies["@types/node"].split(".")[0]), major, "@types/node's major");
    const running = Number(process.versions.node.split(".")[0]);
    assert.ok(running >= major, `the suite runs on Node ${process.version}, package.json wants ${pkg.engines.node}: npx -y -p node@${ci[1]} -- npm test`);
    const spawned = spawnSync("node", ["-p", "process.version"], { encoding: "utf8" });
    assert.strictEqual(spawned.stdout.trim(), process.version, "the node on PATH, which the tests and npm scripts spawn, is not the one running the suite");
  });

  it("pull requests: npm test and the plan diff of both stacks as a comment, with no cloud credentials; the engine's preview only from this repository, read-only", () => {
    const w = wf("pull-request.yml");
    assert.deepStrictEqual(Object.keys(w.on), ["pull_request"]);
    // The tests and the offline diff: no OIDC token, no secret, no AWS.
    for (const job of ["test", "plan-diff"]) {
      assert.ok(!JSON.stringify(w.jobs[job]).includes("id-token"), `${job} may not get an OIDC token`);
      assert.ok(!/secrets\./.test(JSON.stringify(w.jobs[job])), `${job} uses no repository secret`);
      assert.ok(!JSON.stringify(w.jobs[job]).includes("configure-aws-credentials"), job);
    }
    // The engine's preview: not for forks, with each stack's preview role, preview only, commented.
    const preview = w.jobs.preview;
    assert.strictEqual(preview.if, "github.event.pull_request.head.repo.full_name == github.repository");
    assert.strictEqual(preview.permissions?.["id-token"], "write");
    assert.deepStrictEqual(preview.steps.filter((s) => s.uses?.startsWith("aws-actions/")).map((s) => s.with?.["role-to-assume"]), ["${{ vars[matrix.role] }}"]);
    const p = preview.steps.filter((s) => s.uses?.startsWith("pulumi/actions"));
    assert.deepStrictEqual(p.map((s) => [s.with?.command, s.with?.diff, s.with?.refresh, s.with?.["comment-on-pr"]]), [["preview", true, false, true]]);
    assert.ok(steps(w).some((s) => s.run === "bash .ci/run"));
    assert.ok(steps(w).some((s) => /npm run -s diff -- --base "\$BASE_REF" --stack "\$stack"/.test(s.run ?? "")));
    assert.ok(steps(w).some((s) => /gh pr comment "\$PR" .*--body-file plan-diff\.md/.test(s.run ?? "")));
    assert.strictEqual(w.jobs["plan-diff"].permissions?.["pull-requests"], "write");
  });

  it("merge: pulumi up on staging with the staging environment's OIDC role; promotion: prod's environment, promote then pulumi up prod", () => {
    const staging = wf("deploy-staging.yml");
    assert.deepStrictEqual(staging.on, { push: { branches: ["main"] } });
    assert.strictEqual(staging.jobs.staging.environment, "staging");
    const up = uses(staging, "pulumi/actions");
    assert.deepStrictEqual(up.map((s) => [s.with?.command, s.with?.["stack-name"]]), [["up", "staging"]]);

    const prod = wf("promote-prod.yml");
    assert.deepStrictEqual(Object.keys(prod.on), ["workflow_dispatch"]);
    assert.strictEqual(prod.jobs.prod.environment, "prod", "prod waits for the environment's approval");
    const order = prod.jobs.prod.steps.map((s) => (/^npm run promote$/m.test(s.run ?? "") ? "promote" : s.uses?.startsWith("pulumi/actions") ? `pulumi ${s.with?.command ?? "install"} ${s.with?.["stack-name"] ?? ""}`.trim() : s.uses?.startsWith("aws-actions") ? "credentials" : undefined)).filter(Boolean);
    assert.deepStrictEqual(order, ["credentials", "pulumi install", "promote", "pulumi up prod"]);
  });

  it("AWS only through OIDC role assumption, Pulumi from .pulumi-version with the backend and passphrase from secrets", () => {
    for (const f of ["deploy-staging.yml", "promote-prod.yml"]) {
      const w = wf(f);
      assert.ok(!/aws-access-key-id|aws-secret-access-key|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY/i.test(text(f)), `${f}: long-lived AWS keys`);
      for (const [name, job] of Object.entries(w.jobs)) {
        assert.ok(job.environment, `${f}: job ${name} assumes a role without an environment (the role trusts environment subjects only)`);
        assert.strictEqual((job.permissions ?? w.permissions)?.["id-token"], "write", `${f}: ${name}`);
      }
      for (const s of uses(w, "aws-actions/configure-aws-credentials")) {
        assert.deepStrictEqual(Object.keys(s.with ?? {}).sort(), ["aws-region", "role-session-name", "role-to-assume"]);
        assert.strictEqual(s.with?.["role-to-assume"], "${{ vars.CI_ROLE_ARN }}");
      }
      for (const s of uses(w, "pulumi/actions")) {
        assert.strictEqual(s.with?.["pulumi-version-file"], ".pulumi-version");
        assert.strictEqual(s.with?.["cloud-url"], "${{ secrets.PULUMI_BACKEND_URL }}");
        if (s.with?.command) assert.strictEqual(s.env?.PULUMI_CONFIG_PASSPHRASE, "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
      }
    }
  });

  it("pin every third-party action to a commit SHA (tag in a comment), and never persist the checkout's token where npm ci or the program runs", () => {
    for (const f of files()) assert.deepStrictEqual(supplyChainProblems(f, text(f)), [], f);
    // The check sees a moved-back tag, a missing comment and a token left in .git/config.
    const t = text("deploy-staging.yml");
    const checkout = /uses: actions\/checkout@([0-9a-f]{40}) # (v[\d.]+)\n\s+with:\n\s+persist-credentials: false\n/.exec(t);
    assert.ok(checkout, "deploy-staging.yml: the checkout step as expected");
    assert.deepStrictEqual(supplyChainProblems("x", t.replace(`@${checkout[1]}`, "@v4")), ["x: actions/checkout@v4 is not pinned to a full commit SHA"]);
    assert.deepStrictEqual(supplyChainProblems("x", t.replace(` # ${checkout[2]}`, "")), [`x: actions/checkout@${checkout[1]} has no "# vX.Y.Z" comment naming its tag`]);
    assert.deepStrictEqual(supplyChainProblems("x", t.replace("persist-credentials: false", "persist-credentials: true")), ["x: job staging checks out with persist-credentials left on"]);
    // Prod's pull request is pushed with the step's own token through gh, not one left by the checkout.
    const push = wf("promote-prod.yml").jobs.prod.steps.find((s) => /git push/.test(s.run ?? ""));
    assert.match(push?.run ?? "", /gh auth setup-git\n[^]*git push origin "\$branch"/);
    assert.strictEqual(push?.env?.GH_TOKEN, "${{ github.token }}");
  });

  it("release-artifact: an app repository calls it; it builds from the app's checkout, publishes with the publisher role and opens the staging deploy pull request", () => {
    const w = wf("release-artifact.yml");
    assert.deepStrictEqual(Object.keys(w.on), ["workflow_call"]);
    const call = w.on.workflow_call as { inputs: Record<string, { required?: boolean }>; secrets: Record<string, { required?: boolean }> };
    assert.deepStrictEqual(Object.keys(call.inputs).sort(), ["app-ref", "aws-region", "infra-ref", "infra-repository", "version"]);
    assert.deepStrictEqual(Object.entries(call.secrets).map(([k, v]) => [k, v.required]), [["publisher-role-arn", true], ["infra-token", true]]);
    const job = w.jobs.publish;
    // The publisher role trusts repo:OWNER/APP:ref:refs/heads/main: a job in an environment would get another subject.
    assert.strictEqual(job.environment, undefined);
    assert.strictEqual(w.permissions?.["id-token"], "write");
    assert.ok(!/aws-access-key-id|aws-secret-access-key|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY/i.test(text("release-artifact.yml")));
    assert.deepStrictEqual(uses(w, "aws-actions/configure-aws-credentials").map((s) => s.with?.["role-to-assume"]), ["${{ secrets.publisher-role-arn }}"]);
    const checkouts = uses(w, "actions/checkout").map((s) => [s.with?.path, s.with?.repository ?? "(caller)"]);
    assert.deepStrictEqual(checkouts, [["app", "(caller)"], ["infra", "${{ inputs.infra-repository }}"]]);
    const order = job.steps.map((s) => (/npm run artifact -- "\$\{args\[@\]\}"/.test(s.run ?? "") ? "artifact" : /gh pr create/.test(s.run ?? "") ? "pull request" : s.uses?.startsWith("aws-actions") ? "credentials" : undefined)).filter(Boolean);
    assert.deepStrictEqual(order, ["credentials", "artifact", "pull request"]);
    const build = job.steps.find((s) => /npm run artifact/.test(s.run ?? ""))!;
    assert.match(build.run!, /args=\(--app \.\.\/app --publish --stack staging\)/);
    const pr = job.steps.find((s) => /gh pr create/.test(s.run ?? ""))!;
    assert.match(pr.run!, /git diff --quiet -- Pulumi\.staging\.yaml[^]*gh auth setup-git\n\s*git push origin "\$branch"/);
    assert.strictEqual(pr.env?.GH_TOKEN, "${{ secrets.infra-token }}");
  });

  it("never expand ${{ }} inside a shell script (values reach run: through env)", () => {
    for (const f of files()) for (const s of steps(wf(f))) assert.ok(!(s.run ?? "").includes("${{"), `${f}: ${s.name ?? s.run}`);
  });

  it("keeps the GPL validator a devDependency, pinned exactly", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    assert.match(pkg.devDependencies["@action-validator/core"], /^\d+\.\d+\.\d+$/);
    assert.ok(!pkg.dependencies["@action-validator/core"]);
  });
});
