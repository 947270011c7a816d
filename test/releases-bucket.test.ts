// The releases bucket under mocks (components/releases): prod creates it with the name
// release.artifact.bucket gives, hardened like the backup buckets and write-once; staging creates
// none and reads prod's through its StackReference, refusing any other name; the app repository's
// publisher role exists only with ci.github.appRepository and trusts only its main branch.
import * as assert from "assert";
import { ACCOUNT_ID, PROD_RELEASE_BUCKET, PROD_RELEASE_KEY_ARN } from "../scripts/preview/mocks";
import { ofType, one, programError, ProgramRun, runStack } from "./harness";

const BUCKET = "aws:s3/bucket:Bucket";
const ROLE = "aws:iam/role:Role";
const POLICY = "aws:iam/rolePolicy:RolePolicy";
const json = (v: unknown) => JSON.parse(String(v));
const of = (r: ProgramRun, type: string, bucketId: string) => ofType(r, type).filter((x) => x.inputs.bucket === bucketId);

describe("releases bucket", () => {
  const runs: Record<string, ProgramRun> = {};
  before(async () => {
    runs.prod = await runStack("prod");
    runs.staging = await runStack("staging");
  });

  it("prod creates it with release.artifact.bucket's name, never force-destroyed, and exports it with its key", () => {
    const b = one(runs.prod, BUCKET, "releases-bucket");
    assert.strictEqual(b.inputs.bucket, "nourish-link-releases");
    assert.strictEqual(b.inputs.forceDestroy, false);
    assert.strictEqual(runs.prod.outputs.releaseBucket, "nourish-link-releases");
    assert.match(String(runs.prod.outputs.releaseKmsKeyArn), new RegExp(`^arn:aws:kms:af-south-1:${ACCOUNT_ID}:key/`));
    // The mocks' StackReference answers for prod with exactly what prod exports.
    assert.deepStrictEqual([PROD_RELEASE_BUCKET, PROD_RELEASE_KEY_ARN], [runs.prod.outputs.releaseBucket, runs.prod.outputs.releaseKmsKeyArn]);
  });

  it("is versioned, SSE-KMS with its own rotated key, public access blocked, ACLs off, access-logged", () => {
    const id = one(runs.prod, BUCKET, "releases-bucket").id;
    assert.deepStrictEqual(of(runs.prod, "aws:s3/bucketVersioning:BucketVersioning", id).map((v) => v.inputs.versioningConfiguration), [{ status: "Enabled" }]);
    const key = one(runs.prod, "aws:kms/key:Key", "releases-key");
    assert.strictEqual(key.inputs.enableKeyRotation, true);
    const sse = of(runs.prod, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", id)[0].inputs.rules as { applyServerSideEncryptionByDefault: Record<string, string> }[];
    assert.deepStrictEqual(sse[0].applyServerSideEncryptionByDefault, { sseAlgorithm: "aws:kms", kmsMasterKeyId: runs.prod.outputs.releaseKmsKeyArn });
    const pab = of(runs.prod, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", id)[0].inputs;
    for (const k of ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"]) assert.strictEqual(pab[k], true, k);
    assert.strictEqual(of(runs.prod, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", id).length, 1);
    const logging = of(runs.prod, "aws:s3/bucketLogging:BucketLogging", id);
    assert.strictEqual(logging.length, 1);
    assert.strictEqual(logging[0].inputs.targetBucket, one(runs.prod, BUCKET, "backups-access-logs").id);
    assert.strictEqual(logging[0].inputs.targetPrefix, "s3/releases/");
    // S3's log delivery may write for it.
    const logPolicy = json(of(runs.prod, "aws:s3/bucketPolicy:BucketPolicy", one(runs.prod, BUCKET, "backups-access-logs").id)[0].inputs.policy);
    assert.ok(logPolicy.Statement.find((s: { Sid: string }) => s.Sid === "AllowServerAccessLogDelivery").Condition.ArnLike["aws:SourceArn"].includes(`arn:aws:s3:::${id}`));
  });

  it("its policy: TLS only, the releases key only, and no PutObject without If-None-Match on any key", () => {
    const id = one(runs.prod, BUCKET, "releases-bucket").id;
    const policy = json(of(runs.prod, "aws:s3/bucketPolicy:BucketPolicy", id)[0].inputs.policy);
    const sid = (s: string) => policy.Statement.find((x: { Sid: string }) => x.Sid === s);
    assert.deepStrictEqual(sid("DenyInsecureTransport").Condition, { Bool: { "aws:SecureTransport": "false" } });
    assert.strictEqual(sid("DenyOtherKmsKeys").Condition.StringNotEquals["s3:x-amz-server-side-encryption-aws-kms-key-id"], runs.prod.outputs.releaseKmsKeyArn);
    assert.deepStrictEqual(sid("DenyOverwritingReleases"), {
      Sid: "DenyOverwritingReleases", Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: [`arn:aws:s3:::${id}/*`], Condition: { Null: { "s3:if-none-match": "true" } },
    });
    // No grant anywhere deletes a release.
    for (const p of ofType(runs.prod, POLICY)) assert.ok(!/DeleteObject/.test(String(p.inputs.policy)) || !String(p.inputs.policy).includes(id), p.name);
  });

  it("staging creates none: it reads prod's (the StackReference), and its app hosts decrypt with prod's releases key", () => {
    assert.deepStrictEqual(ofType(runs.staging, BUCKET).filter((b) => b.name.startsWith("releases")), []);
    assert.ok(!("releaseBucket" in runs.staging.outputs));
    assert.ok(runs.staging.resources.some((r) => r.type === "pulumi:pulumi:StackReference" && r.name === "releases-prod"));
    const read = json(one(runs.staging, POLICY, "release-artifact-read").inputs.policy);
    assert.deepStrictEqual(read.Statement.map((s: { Action: string; Resource: string }) => [s.Action, s.Resource]), [
      ["s3:GetObject", `arn:aws:s3:::${PROD_RELEASE_BUCKET}/releases/1.4.2/*`],
      ["kms:Decrypt", PROD_RELEASE_KEY_ARN],
    ]);
  });

  it("staging's CI role may read prod's stack state: its deploy reads prod's outputs", async () => {
    const r = await runStack("staging", { set: { ci: { github: { repository: "nourishlink/nourish-link-infra", stateBucket: "nourish-link-pulumi-state" } } } });
    const state = json(one(r, POLICY, "ci-state").inputs.policy);
    assert.deepStrictEqual(state.Statement.find((s: { Sid: string }) => s.Sid === "ReadOtherStacksOutputs").Resource, ["arn:aws:s3:::nourish-link-pulumi-state/.pulumi/stacks/nourish-link/prod.json*"]);
  });

  it("staging refuses a release.artifact.bucket that is not prod's releaseBucket output, in one line naming the key", async () => {
    const err = await programError(runStack("staging", { set: { release: { artifact: { bucket: "someone-elses-releases" } } } }));
    assert.strictEqual(err.split("\n").filter((l) => l.includes("release.artifact.bucket")).length, 1);
    assert.match(err, /nourish-link:release\.artifact\.bucket must be "nourish-link-releases", the releases bucket of organization\/nourish-link\/prod \(its releaseBucket output\), got "someone-elses-releases"/);
  });

  it("a release key outside releases/ is refused by key", async () => {
    const err = await programError(runStack("prod", { set: { release: { artifact: { key: "uploads/nourish-link-1.4.1.tar.gz" } } } }));
    assert.match(err, /nourish-link:release\.artifact\.key must be under releases\//);
  });

  it("the publisher role exists only with ci.github.appRepository, trusts only that repository's main branch, and only publishes", async () => {
    assert.deepStrictEqual(ofType(runs.prod, ROLE).filter((r) => r.name === "ci-publisher"), []);
    const r = await runStack("staging", { set: { ci: { github: { repository: "nourishlink/nourish-link-infra", appRepository: "nourishlink/nourish-link" } } } });
    const role = one(r, ROLE, "ci-publisher");
    assert.strictEqual(role.inputs.name, "nourish-link-staging-publisher");
    assert.deepStrictEqual(json(role.inputs.assumeRolePolicy).Statement[0].Condition, {
      StringEquals: { "token.actions.githubusercontent.com:aud": "sts.amazonaws.com", "token.actions.githubusercontent.com:sub": "repo:nourishlink/nourish-link:ref:refs/heads/main" },
    });
    assert.strictEqual(r.outputs.releasePublisherRoleArn, `arn:aws:iam::${ACCOUNT_ID}:role/nourish-link-staging-publisher`);
    const statements = json(one(r, POLICY, "ci-publisher").inputs.policy).Statement;
    assert.deepStrictEqual(statements.map((s: { Action: unknown; Resource: unknown }) => [s.Action, s.Resource]), [
      ["s3:ListBucket", `arn:aws:s3:::${PROD_RELEASE_BUCKET}`],
      [["s3:GetObject", "s3:PutObject"], `arn:aws:s3:::${PROD_RELEASE_BUCKET}/releases/*`],
      [["kms:Decrypt", "kms:GenerateDataKey"], PROD_RELEASE_KEY_ARN],
    ]);
    const err = await programError(runStack("staging", { set: { ci: { github: { appRepository: "nourishlink/nourish-link" } } } }));
    assert.match(err, /nourish-link:ci\.github\.appRepository requires ci\.github\.repository/);
    assert.match(await programError(runStack("staging", { set: { ci: { github: { repository: "x/y", appRepository: "nourishlink/*" } } } })), /nourish-link:ci\.github\.appRepository must be a GitHub repository as owner\/name/);
  });
});
