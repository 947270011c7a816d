// The CI role under mocks (ci.github.*): GitHub's OIDC provider, a role only this repository's
// GitHub environment may assume, with the release transport and this stack's Pulumi state and
// nothing else unless deploy policies are named; its column in the access matrix.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ciStatePolicy } from "../components/ci/policy";
import { accessMatrix, renderMatrix } from "../scripts/access/matrix";
import { CI_EXAMPLE } from "../scripts/access-matrix";
import { toPlan } from "../scripts/preview/plan";
import { readStackFile, ROOT } from "../scripts/preview/stack-file";
import { checkPlan } from "../policy/plan";
import { ACCOUNT_ID } from "../scripts/preview/mocks";
import { committedStack, ofType, one, programError, ProgramRun, runProgram, runStack } from "./harness";

const ROLE = "aws:iam/role:Role";
const PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider";
const ATTACH = "aws:iam/rolePolicyAttachment:RolePolicyAttachment";
const REPO = "nourishlink/nourish-link-infra";
const PROVIDER_ARN = `arn:aws:iam::${ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com`;

const trustOf = (r: ProgramRun) => JSON.parse(String(one(r, ROLE, "ci-role").inputs.assumeRolePolicy));
const attached = (r: ProgramRun) => ofType(r, ATTACH).filter((a) => a.name.startsWith("ci-")).map((a) => String(a.inputs.policyArn)).sort();

function expectedTrust(sub: string, provider = PROVIDER_ARN) {
  return {
    Version: "2012-10-17",
    Statement: [{
      Sid: "GitHubActionsOfThisRepositoryAndEnvironment", Effect: "Allow", Principal: { Federated: provider }, Action: "sts:AssumeRoleWithWebIdentity",
      Condition: { StringEquals: { "token.actions.githubusercontent.com:aud": "sts.amazonaws.com", "token.actions.githubusercontent.com:sub": sub } },
    }],
  };
}

describe("CI role (GitHub Actions through OIDC)", () => {
  const runs: Record<string, ProgramRun> = {};
  before(async () => {
    runs.staging = await committedStack("staging");
    runs.prodCi = await runStack("prod", { set: { ci: { github: { ...CI_EXAMPLE.github, deployPolicyArns: ["arn:aws:iam::aws:policy/AdministratorAccess"] } } } });
    runs.stagingCi = await runStack("staging", { set: { ci: { github: { repository: REPO, oidcProviderArn: PROVIDER_ARN } } } });
  });

  it("is absent unless ci.github.repository is set (the committed stacks name no repository)", () => {
    assert.deepStrictEqual(ofType(runs.staging, PROVIDER), []);
    assert.ok(!runs.staging.resources.some((r) => r.type === ROLE && r.name === "ci-role"));
    assert.ok(!("ciRoleArn" in runs.staging.outputs));
  });

  it("prod: GitHub's provider for STS, a role only the repository's prod environment may assume, exported", () => {
    const p = one(runs.prodCi, PROVIDER, "ci-github");
    assert.strictEqual(p.inputs.url, "https://token.actions.githubusercontent.com");
    assert.deepStrictEqual(p.inputs.clientIdLists, ["sts.amazonaws.com"]);
    assert.deepStrictEqual(trustOf(runs.prodCi), expectedTrust(`repo:${REPO}:environment:prod`));
    assert.strictEqual(one(runs.prodCi, ROLE, "ci-role").inputs.name, "nourish-link-prod-ci");
    assert.strictEqual(one(runs.prodCi, ROLE, "ci-role").inputs.maxSessionDuration, 3600);
    assert.strictEqual(runs.prodCi.outputs.ciRoleArn, `arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-prod-ci`);
  });

  it("staging: trusts only environment staging; an existing provider is used, not created", () => {
    assert.deepStrictEqual(ofType(runs.stagingCi, PROVIDER), []);
    assert.deepStrictEqual(trustOf(runs.stagingCi), expectedTrust(`repo:${REPO}:environment:staging`));
    // Neither a pull request, a branch, another repository nor a wildcard matches that subject.
    const sub = trustOf(runs.stagingCi).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"];
    for (const other of [`repo:${REPO}:pull_request`, `repo:${REPO}:ref:refs/heads/main`, `repo:${REPO}:environment:prod`, "repo:someone/nourish-link-infra:environment:staging"]) assert.notStrictEqual(other, sub);
    assert.ok(!JSON.stringify(trustOf(runs.stagingCi)).includes("StringLike") && !JSON.stringify(trustOf(runs.stagingCi)).includes("*"));
  });

  it("the committed stacks' commented CI example, uncommented, creates the CI and publisher roles (staging naming prod's OIDC provider)", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ci-example-"));
    for (const f of ["Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.staging.yaml"]) {
      const text = fs.readFileSync(path.join(ROOT, f), "utf8");
      const uncommented = text.replace(/^  # (nourish-link:ci:|  github:|    \w+: .*)$/gm, "  $1").replace("ACCOUNT", ACCOUNT_ID);
      if (f !== "Pulumi.yaml") assert.notStrictEqual(uncommented, text, `${f} has no commented ci.github example`);
      fs.writeFileSync(path.join(tmp, f), uncommented);
    }
    for (const stack of ["prod", "staging"]) {
      const { config, secretKeys } = readStackFile(stack, tmp);
      const r = await runProgram({ stack, config, secretKeys });
      assert.deepStrictEqual(["ciRoleArn", "releasePublisherRoleArn"].map((o) => String(r.outputs[o])), [`arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-${stack}-ci`, `arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-${stack}-publisher`]);
      assert.strictEqual(ofType(r, PROVIDER).length, stack === "prod" ? 1 : 0, stack);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("ci.github.environment names another GitHub environment", async () => {
    const r = await runStack("prod", { set: { ci: { github: { repository: REPO, environment: "production" } } } });
    assert.deepStrictEqual(trustOf(r).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"], `repo:${REPO}:environment:production`);
  });

  it("may run the release transport (the operator policy) and use this stack's state; deploy policies only as named", () => {
    const operator = runs.prodCi.outputs.operatorPolicyArn as string;
    assert.deepStrictEqual(attached(runs.prodCi), ["arn:aws:iam::aws:policy/AdministratorAccess", operator].sort());
    assert.deepStrictEqual(attached(runs.stagingCi), [runs.stagingCi.outputs.operatorPolicyArn as string]);
    assert.deepStrictEqual(ofType(runs.stagingCi, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.name.startsWith("ci-") && p.name !== "ci-preview"), [], "no state grant without ci.github.stateBucket (ci-preview: test/preview-role.test.ts)");
    const state = JSON.parse(String(one(runs.prodCi, "aws:iam/rolePolicy:RolePolicy", "ci-state").inputs.policy));
    const b = "arn:aws:s3:::nourish-link-pulumi-state";
    assert.deepStrictEqual(state.Statement, [
      { Sid: "ListTheBackend", Effect: "Allow", Action: "s3:ListBucket", Resource: b, Condition: { StringLike: { "s3:prefix": [".pulumi/*"] } } },
      { Sid: "ReadTheBackendMeta", Effect: "Allow", Action: "s3:GetObject", Resource: `${b}/.pulumi/meta.yaml` },
      { Sid: "ThisStacksState", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource: [
        `${b}/.pulumi/stacks/nourish-link/prod.json*`, `${b}/.pulumi/history/nourish-link/prod/*`, `${b}/.pulumi/backups/nourish-link/prod/*`, `${b}/.pulumi/locks/nourish-link/prod/*`,
      ] },
      // Promotion, in the prod job, reads staging's outputs: its checkpoint, read only.
      { Sid: "ReadOtherStacksOutputs", Effect: "Allow", Action: "s3:GetObject", Resource: [`${b}/.pulumi/stacks/nourish-link/staging.json*`] },
    ]);
    assert.strictEqual(ciStatePolicy({ bucket: "x", project: "nourish-link", stack: "staging", readStacks: [] }).Statement.length, 3);
  });

  it("refuses a repository, environment or provider that could widen the trust, naming the key", async () => {
    const e1 = await programError(runStack("prod", { set: { ci: { github: { repository: "nourishlink/*" } } } }));
    assert.match(e1, /nourish-link:ci\.github\.repository must be a GitHub repository as owner\/name/);
    const e2 = await programError(runStack("prod", { set: { ci: { github: { repository: REPO, environment: "*" } } } }));
    assert.match(e2, /nourish-link:ci\.github\.environment must be a GitHub environment name/);
    const e3 = await programError(runStack("prod", { set: { ci: { github: { repository: REPO, oidcProviderArn: "arn:aws:iam::123456789012:oidc-provider/accounts.google.com" } } } }));
    assert.match(e3, /nourish-link:ci\.github\.oidcProviderArn must be the ARN of the account's GitHub OIDC provider/);
  });

  it("passes the policy pack", async () => {
    assert.deepStrictEqual(await checkPlan(toPlan(runs.prodCi)), []);
  });

  it("access matrix: the CI role reads no secret or backup and runs no shell; docs/SECURITY.md shows it (npm run -s access-matrix -- --stack prod --ci)", async function () {
    this.timeout(300_000);
    const noDeploy = await runStack("prod", { set: { ci: CI_EXAMPLE } });
    const m = await accessMatrix(toPlan(noDeploy));
    assert.deepStrictEqual(m.principals.map((p) => p.id), ["app", "db", "operator", "oncall", "ci", "publisher", "deployer"]);
    const allowed = (who: string) => m.checks.filter((c) => m.cells[c.id][who] === "allow").map((c) => c.id);
    // The operator's rights (it runs the releases through the stack's document): the tooling hosts
    // install, the document on this stack's instances, its output, publishing a new release; no
    // secret, no backup, no shell, no isolation or snapshot (the incident checks, issue 20).
    assert.deepStrictEqual(allowed("ci"), ["decrypt tooling-key", "decrypt releases-key", "send release document", "read command output", "read a release", "upload a release"]);
    // The app repository's publisher (ci.github.appRepository): a new release under releases/, nothing else.
    assert.deepStrictEqual(allowed("publisher"), ["decrypt releases-key", "read a release", "upload a release"]);
    const doc = fs.readFileSync(path.join(ROOT, "docs", "SECURITY.md"), "utf8");
    const start = "<!-- access-matrix-ci:start -->";
    const shown = doc.slice(doc.indexOf(start) + start.length, doc.indexOf("<!-- access-matrix-ci:end -->")).trim();
    assert.strictEqual(shown, renderMatrix(m));
  });
});
