// The preview role (components/ci/, with ci.github.repository): what pull requests of the
// repository run `pulumi preview --diff` with. Evaluated by the IAM evaluator the access matrix
// uses: it can describe the estate and read this stack's state, and can change nothing, nor read
// a backup, a secret or another stack's state it does not reference.
import * as assert from "assert";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { ACCOUNT_ID } from "../scripts/preview/mocks";
import { one, ProgramRun, runStack } from "./harness";

const REPO = "nourishlink/nourish-link-infra";
const STATE = "arn:aws:s3:::nourish-link-pulumi-state";
const KEY = `arn:aws:kms:af-south-1:${ACCOUNT_ID}:key/0b7f0c3e-1111-2222-3333-444455556666`;

async function allowed(policy: object, action: string, resource: string, context: Record<string, string | string[]> = {}): Promise<boolean> {
  const result = await runSimulation({
    request: { principal: `arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-prod-preview`, action, resource: { resource, accountId: ACCOUNT_ID }, contextVariables: { "aws:SecureTransport": "true", ...context } },
    identityPolicies: [{ name: "preview", policy }], serviceControlPolicies: [], resourceControlPolicies: [],
    // A KMS key answers only through its key policy: the default one, which defers to IAM.
    ...(action.startsWith("kms:") ? { resourcePolicy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${ACCOUNT_ID}:root` }, Action: "kms:*", Resource: "*" }] } } : {}),
  }, {});
  if (result.resultType === "error") throw new Error(`${action}: ${JSON.stringify(result.errors)}`);
  return result.overallResult === "Allowed";
}

describe("preview role (pulumi preview --diff on pull requests, read-only)", () => {
  let prod: ProgramRun, staging: ProgramRun;
  const policyOf = (r: ProgramRun) => JSON.parse(String(one(r, "aws:iam/rolePolicy:RolePolicy", "ci-preview").inputs.policy)) as object;
  before(async () => {
    prod = await runStack("prod", { set: { ci: { github: { repository: REPO, stateBucket: "nourish-link-pulumi-state", stateKeyArn: KEY } } } });
    staging = await runStack("staging", { set: { ci: { github: { repository: REPO, stateBucket: "nourish-link-pulumi-state" } } } });
  });

  it("only the repository's pull_request jobs may assume it; exported as previewRoleArn", () => {
    const role = one(prod, "aws:iam/role:Role", "ci-preview");
    assert.strictEqual(role.inputs.name, "nourish-link-prod-preview");
    const trust = JSON.parse(String(role.inputs.assumeRolePolicy));
    assert.deepStrictEqual(trust.Statement[0].Condition.StringEquals, { "token.actions.githubusercontent.com:aud": "sts.amazonaws.com", "token.actions.githubusercontent.com:sub": `repo:${REPO}:pull_request` });
    assert.strictEqual(prod.outputs.previewRoleArn, `arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-prod-preview`);
  });

  it("can describe the estate, read this stack's state and decrypt with the state key", async () => {
    const p = policyOf(prod);
    for (const [action, resource] of [
      ["ec2:DescribeVpcs", "*"], ["ec2:DescribeInstances", "*"], ["s3:GetBucketPolicy", "arn:aws:s3:::nourish-link-prod-backups"],
      ["iam:GetRole", `arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-prod-db`], ["kms:DescribeKey", KEY], ["ssm:GetDocument", `arn:aws:ssm:af-south-1:${ACCOUNT_ID}:document/x`],
      ["s3:GetObject", `${STATE}/.pulumi/stacks/nourish-link/prod.json`], ["kms:Decrypt", KEY],
    ]) assert.ok(await allowed(p, action, resource), `${action} on ${resource} is denied`);
    assert.ok(await allowed(p, "s3:ListBucket", STATE, { "s3:prefix": ".pulumi/stacks/" }));
    // Staging's program reads prod's outputs (the rehearsal's StackReference): its role may read that checkpoint.
    assert.ok(await allowed(policyOf(staging), "s3:GetObject", `${STATE}/.pulumi/stacks/nourish-link/prod.json`));
  });

  it("can write nothing, and read no backup, secret, object or other stack's state", async () => {
    const p = policyOf(prod);
    for (const [action, resource] of [
      ["ec2:RunInstances", "*"], ["ec2:CreateVpc", "*"], ["ec2:TerminateInstances", "*"], ["ec2:ModifyInstanceAttribute", "*"],
      ["s3:PutObject", `${STATE}/.pulumi/stacks/nourish-link/prod.json`], ["s3:PutObject", `${STATE}/.pulumi/locks/nourish-link/prod/x.json`],
      ["s3:DeleteObject", `${STATE}/.pulumi/stacks/nourish-link/prod.json`], ["s3:GetObject", `${STATE}/.pulumi/stacks/nourish-link/staging.json`],
      ["s3:GetObject", "arn:aws:s3:::nourish-link-prod-backups/dumps/daily/latest.dump"], ["s3:PutBucketPolicy", "arn:aws:s3:::nourish-link-prod-backups"],
      ["ssm:GetParameter", `arn:aws:ssm:af-south-1:${ACCOUNT_ID}:parameter/nourish-link/prod/db-password`], ["ssm:SendCommand", "*"],
      ["iam:PassRole", `arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-prod-db`], ["iam:PutRolePolicy", `arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-prod-preview`],
      ["kms:Decrypt", `arn:aws:kms:af-south-1:${ACCOUNT_ID}:key/another`], ["kms:ScheduleKeyDeletion", KEY], ["secretsmanager:GetSecretValue", "*"],
    ]) assert.ok(!(await allowed(p, action, resource)), `${action} on ${resource} is allowed`);
  });
});
