// Staging's restore rehearsal in the plan (issue 11), under Pulumi's mocks: the backup the preview
// names (prod's latest pointer, read by a data source), the two steps after the staging release,
// the stack output the promotion reads, the config refusals, and the read-only access to prod's
// dumps on both sides, evaluated offline with @cloud-copilot/iam-simulate.
import * as assert from "assert";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { parseLatestPointer, rehearsalReadPolicy, rehearsalSteps, rehearsalSummaryFrom } from "../components/rehearsal/plan";
import { hostFiles } from "../scripts/preview/plan";
import { ACCOUNT_ID, PROD_BACKUP_BUCKET, PROD_BACKUP_KEY_ARN, PROD_LATEST_BACKUP } from "../scripts/preview/mocks";
import { committedStack, one, programError, ProgramRun, RecordedResource, runStack } from "./harness";

const CMD = "command:local:Command";
const params = (r: RecordedResource) => JSON.parse(String((r.inputs.environment as Record<string, string>).NL_PARAMETERS));
const STAGING_ACCOUNT = "210987654321";
const STAGING_DB_ROLE = `arn:aws:iam::${STAGING_ACCOUNT}:role/database-role-0a1b2c3`;

describe("restore rehearsal in the plan", function () {
  let staging: ProgramRun;
  let prod: ProgramRun;
  let prodShared: ProgramRun;
  before(async () => {
    staging = await committedStack("staging");
    prod = await committedStack("prod");
    prodShared = await runStack("prod", { set: { backups: { rehearsalReaders: [STAGING_DB_ROLE, "345678901234"] } } });
  });

  it("staging's preview names the backup prod's latest pointer names, and sends exactly it to the database host", () => {
    assert.deepStrictEqual(staging.outputs.rehearsalBackup, PROD_LATEST_BACKUP);
    const restore = one(staging, CMD, "rehearsal-restore-db");
    assert.deepStrictEqual(params(restore), { verb: "restore-rehearsal", backupKey: PROD_LATEST_BACKUP.key, sha256: PROD_LATEST_BACKUP.sha256 });
    assert.strictEqual((restore.inputs.environment as Record<string, string>).NL_INSTANCE_ID, one(staging, "aws:ec2/instance:Instance", "database-host").id);
    const verify = one(staging, CMD, "rehearsal-verify-app-0");
    assert.deepStrictEqual(params(verify), { verb: "restore-rehearsal-verify" });
    assert.strictEqual((verify.inputs.environment as Record<string, string>).NL_INSTANCE_ID, one(staging, "aws:ec2/instance:Instance", "app-0").id);
    // Only a newer backup changes the steps: their triggers are the backup's key and checksum.
    for (const s of [restore, verify]) assert.deepStrictEqual(s.inputs.triggers, [`backup:${PROD_LATEST_BACKUP.key}`, `sha256:${PROD_LATEST_BACKUP.sha256}`]);
    const newer = rehearsalSteps({ ...PROD_LATEST_BACKUP, key: "dumps/daily/db_backup_20261129_000011.dump", sha256: "a".repeat(64) });
    assert.notDeepStrictEqual(newer[0].triggers, restore.inputs.triggers);
    assert.deepStrictEqual(rehearsalSteps(PROD_LATEST_BACKUP).map((s) => s.triggers), [restore.inputs.triggers, verify.inputs.triggers]);
  });

  it("runs after every step of the staging release, verify after restore, restore after the read grant", () => {
    const restore = one(staging, CMD, "rehearsal-restore-db");
    const verify = one(staging, CMD, "rehearsal-verify-app-0");
    const releaseSteps = staging.resources.filter((r) => r.type === CMD && r.name.startsWith("release-"));
    assert.ok(releaseSteps.length >= 8, releaseSteps.map((r) => r.name).join(" "));
    for (const s of releaseSteps) assert.ok(restore.dependsOn.includes(s.urn), `restore does not wait for ${s.name}`);
    assert.ok(releaseSteps.some((s) => s.name === "release-verify-app-0"));
    assert.ok(verify.dependsOn.includes(restore.urn));
    assert.ok(restore.dependsOn.includes(one(staging, "aws:iam/rolePolicy:RolePolicy", "database-rehearsal-read").urn));
    // Through the stack's own document, like the release.
    assert.strictEqual((restore.inputs.environment as Record<string, string>).NL_DOCUMENT, one(staging, "aws:ssm/document:Document", "release-nourishctl").inputs.name);
  });

  it("exports restoreRehearsal in exactly the shape the promotion reads", () => {
    const out = staging.outputs.restoreRehearsal as Record<string, unknown>;
    assert.deepStrictEqual(Object.keys(out).sort(), ["at", "backupAgeSeconds", "backupKey", "backupSha256", "ok", "seconds"]);
    assert.strictEqual(out.ok, true);
    assert.match(String(out.at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.strictEqual(typeof out.seconds, "number");
    assert.strictEqual(typeof out.backupAgeSeconds, "number");
    // The summary parser refuses what the verb must never print.
    assert.throws(() => rehearsalSummaryFrom("restore-rehearsal-verify: ok\n"), /must print a JSON summary as its last line/);
    assert.throws(() => rehearsalSummaryFrom('{"ok": true}'), /summary .* is incomplete/);
    assert.deepStrictEqual(rehearsalSummaryFrom(`noise\n{"ok": true, "at": "2026-11-28T04:07:31Z", "backupKey": "k", "backupSha256": "s", "seconds": 1.5, "backupAgeSeconds": 7, "extra": 1}\n`),
      { ok: true, at: "2026-11-28T04:07:31Z", backupKey: "k", backupSha256: "s", seconds: 1.5, backupAgeSeconds: 7 });
    // Prod runs no rehearsal and exports none.
    assert.strictEqual(prod.outputs.restoreRehearsal, undefined);
    assert.ok(!prod.resources.some((r) => r.name.startsWith("rehearsal")));
  });

  it("the pointer must name a PostgreSQL backup and its checksum, or the preview stops naming it", () => {
    assert.deepStrictEqual(parseLatestPointer(JSON.stringify(PROD_LATEST_BACKUP), "p"), PROD_LATEST_BACKUP);
    assert.throws(() => parseLatestPointer("<html>", "s3://b/dumps/daily/latest.json"), /s3:\/\/b\/dumps\/daily\/latest\.json is not JSON/);
    assert.throws(() => parseLatestPointer(JSON.stringify({ ...PROD_LATEST_BACKUP, key: "dumps/daily/db_backup_20261128_000012.sqlite3" }), "p"), /names no PostgreSQL backup key/);
    assert.throws(() => parseLatestPointer(JSON.stringify({ ...PROD_LATEST_BACKUP, key: "dumps/daily/x; rm -rf /" }), "p"), /names no PostgreSQL backup key/);
    assert.throws(() => parseLatestPointer(JSON.stringify({ ...PROD_LATEST_BACKUP, sha256: "abc" }), "p"), /has no sha256/);
  });

  it("the database host gets prod's bucket and the scrub list in host.env, and reads nothing of prod but dumps/", async () => {
    const scrubbed = await runStack("staging", { set: { rehearsal: { scrubColumns: ["families.email", "families.phone"] } } });
    const hostEnv = hostFiles(scrubbed).find((f) => f.role === "db" && f.path === "/etc/nourish-link/host.env")!.content;
    assert.match(hostEnv, new RegExp(`REHEARSAL_SOURCE_BUCKET=${PROD_BACKUP_BUCKET}`));
    assert.match(hostEnv, /REHEARSAL_SCRUB_COLUMNS="families\.email families\.phone"/);
    const grant = JSON.parse(String(one(staging, "aws:iam/rolePolicy:RolePolicy", "database-rehearsal-read").inputs.policy));
    assert.deepStrictEqual(grant, rehearsalReadPolicy(`arn:aws:s3:::${PROD_BACKUP_BUCKET}`, PROD_BACKUP_KEY_ARN, "af-south-1"));
    assert.deepStrictEqual(grant.Statement.map((s: { Action: unknown }) => s.Action), ["s3:ListBucket", "s3:GetObject", "kms:Decrypt"]);
  });

  it("across accounts: rehearsal.source replaces the stack reference", async () => {
    const bucket = "nourish-link-prod-backups-archive";
    const key = "arn:aws:kms:af-south-1:345678901234:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    const r = await runStack("staging", { set: { rehearsal: { source: { bucket, kmsKeyArn: key } } } });
    // No reference for the rehearsal (the releases bucket has its own, to prod's releaseBucket output).
    assert.deepStrictEqual(r.resources.filter((x) => x.type === "pulumi:pulumi:StackReference").map((x) => x.name), ["releases-prod"]);
    assert.deepStrictEqual(JSON.parse(String(one(r, "aws:iam/rolePolicy:RolePolicy", "database-rehearsal-read").inputs.policy)), rehearsalReadPolicy(`arn:aws:s3:::${bucket}`, key, "af-south-1"));
  });

  it("refuses a rehearsal on prod, or without a database host, with one line naming the key", async () => {
    const onProd = await programError(runStack("prod", { set: { rehearsal: { enabled: true } } }));
    assert.match(onProd, /^ {2}nourish-link:rehearsal\.enabled must be false on prod: a restore rehearsal replaces the stack's live database with prod's backup/m);
    const managed = await programError(runStack("staging", { set: { database: { managed: true }, rehearsal: { enabled: true } } }));
    assert.match(managed, /nourish-link:rehearsal\.enabled requires database\.managed: false/);
    // Left unset, a managed staging database simply has no rehearsal (no host to run it on).
    const managedDefault = await runStack("staging", { set: { database: { managed: true } } });
    assert.ok(!managedDefault.resources.some((x) => x.name.startsWith("rehearsal")));
    const bad = await programError(runStack("staging", { set: { rehearsal: { scrubColumns: ["families.email; DROP TABLE x"] } } }));
    assert.match(bad, /nourish-link:rehearsal\.scrubColumns\[0\] must be table\.column/);
    const reader = await programError(runStack("prod", { set: { backups: { rehearsalReaders: ["*"] } } }));
    assert.match(reader, /nourish-link:backups\.rehearsalReaders\[0\] must be an IAM role ARN .* or a 12-digit AWS account id/);
    const off = await runStack("staging", { set: { rehearsal: { enabled: false } } });
    assert.ok(!off.resources.some((x) => x.name.startsWith("rehearsal") || x.name === "database-rehearsal-read"));
  });

  it("prod's bucket and key policies grant rehearsal readers exactly read of dumps/ and decrypt through S3", async () => {
    const policyOf = (r: ProgramRun, bucket: string) => JSON.parse(String(r.resources.find((x) => x.type === "aws:s3/bucketPolicy:BucketPolicy" && x.name === `${bucket}-policy`)!.inputs.policy));
    const keyPolicy = (r: ProgramRun) => JSON.parse(String(one(r, "aws:kms/key:Key", "backups-key").inputs.policy));
    // Without readers, nothing is added anywhere.
    assert.ok(!JSON.stringify(policyOf(prod, "backups-archive")).includes("Rehearsal"));
    assert.ok(!JSON.stringify(keyPolicy(prod)).includes("Rehearsal"));
    const archive = `arn:aws:s3:::${one(prodShared, "aws:s3/bucket:Bucket", "backups-archive").id}`;
    const principals = [STAGING_DB_ROLE, "arn:aws:iam::345678901234:root"].sort();
    const added = policyOf(prodShared, "backups-archive").Statement.filter((s: { Sid: string }) => s.Sid.startsWith("Rehearsal"));
    assert.deepStrictEqual(added, [
      { Sid: "RehearsalListDumps", Effect: "Allow", Principal: { AWS: principals }, Action: "s3:ListBucket", Resource: archive, Condition: { StringLike: { "s3:prefix": ["dumps/*"] } } },
      { Sid: "RehearsalReadDumps", Effect: "Allow", Principal: { AWS: principals }, Action: "s3:GetObject", Resource: `${archive}/dumps/*` },
    ]);
    assert.ok(!JSON.stringify(policyOf(prodShared, "backups-pgbackrest")).includes("Rehearsal"), "the pgBackRest repository is never shared");
    const keyAdded = keyPolicy(prodShared).Statement.filter((s: { Sid: string }) => s.Sid.startsWith("Rehearsal"));
    assert.deepStrictEqual(keyAdded, [{
      Sid: "RehearsalDecryptDumps", Effect: "Allow", Principal: { AWS: principals }, Action: "kms:Decrypt", Resource: "*",
      Condition: { StringEquals: { "kms:ViaService": "s3.af-south-1.amazonaws.com" }, StringLike: { "kms:EncryptionContext:aws:s3:arn": [archive, `${archive}/dumps/*`] } },
    }]);
  });

  it("evaluated offline: staging's database role reads prod's dumps and nothing else of prod", async () => {
    const bucketPolicy = (name: string) => JSON.parse(String(prodShared.resources.find((x) => x.type === "aws:s3/bucketPolicy:BucketPolicy" && x.name === `${name}-policy`)!.inputs.policy));
    const keyRes = one(prodShared, "aws:kms/key:Key", "backups-key");
    const keyArn = `arn:aws:kms:af-south-1:${ACCOUNT_ID}:key/${keyRes.id}`;
    const archive = `arn:aws:s3:::${one(prodShared, "aws:s3/bucket:Bucket", "backups-archive").id}`;
    const pgbackrest = `arn:aws:s3:::${one(prodShared, "aws:s3/bucket:Bucket", "backups-pgbackrest").id}`;
    // Staging's side: the grant its database role gets for this bucket and key.
    const identity = [{ name: "database-rehearsal-read", policy: rehearsalReadPolicy(archive, keyArn, "af-south-1") }];
    const allowed = async (who: string, action: string, resource: string, resourcePolicy: unknown, context: Record<string, string | string[]> = {}) => {
      const r = await runSimulation({
        request: { principal: who, action, resource: { resource, accountId: ACCOUNT_ID }, contextVariables: { "aws:SecureTransport": "true", ...context } },
        identityPolicies: identity, serviceControlPolicies: [], resourceControlPolicies: [], resourcePolicy: resourcePolicy as never,
      }, {});
      assert.notStrictEqual(r.resultType, "error", JSON.stringify(r));
      return r.resultType === "single" && r.overallResult === "Allowed";
    };
    const archivePolicy = bucketPolicy("backups-archive");
    const kms = JSON.parse(String(keyRes.inputs.policy));
    const viaS3 = { "kms:ViaService": "s3.af-south-1.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": archive };
    const cases: [string, string, string, unknown, Record<string, string>, boolean][] = [
      ["read a dump", "s3:GetObject", `${archive}/dumps/daily/db_backup_20261128_000012.dump`, archivePolicy, {}, true],
      ["read the latest pointer", "s3:GetObject", `${archive}/dumps/daily/latest.json`, archivePolicy, {}, true],
      ["list dumps/", "s3:ListBucket", archive, archivePolicy, { "s3:prefix": "dumps/daily/" }, true],
      ["list logs/", "s3:ListBucket", archive, archivePolicy, { "s3:prefix": "logs/" }, false],
      ["read an archived log", "s3:GetObject", `${archive}/logs/app/2026-11.tar.gz`, archivePolicy, {}, false],
      ["overwrite a dump", "s3:PutObject", `${archive}/dumps/daily/db_backup_20261128_000012.dump`, archivePolicy, {}, false],
      ["delete a dump", "s3:DeleteObject", `${archive}/dumps/daily/db_backup_20261128_000012.dump`, archivePolicy, {}, false],
      ["delete a dump version", "s3:DeleteObjectVersion", `${archive}/dumps/daily/db_backup_20261128_000012.dump`, archivePolicy, {}, false],
      ["read pgBackRest's repository", "s3:GetObject", `${pgbackrest}/pgbackrest/backup/main/backup.info`, bucketPolicy("backups-pgbackrest"), {}, false],
      // KMS: only what the evaluator can decide. It ignores kms:EncryptionContext:* context keys
      // (its variable keys must contain '/'), so Decrypt through S3 is checked as the exact
      // statement in the test above, and here only that nothing else of the key is granted.
      ["decrypt outside S3", "kms:Decrypt", keyArn, kms, {}, false],
      ["encrypt with the key", "kms:GenerateDataKey", keyArn, kms, viaS3, false],
      ["re-encrypt with the key", "kms:ReEncryptFrom", keyArn, kms, viaS3, false],
    ];
    const wrong: string[] = [];
    for (const [what, action, resource, policy, context, want] of cases) {
      if ((await allowed(STAGING_DB_ROLE, action, resource, policy, context)) !== want) wrong.push(`${what}: expected ${want ? "allow" : "deny"}`);
    }
    // Another role of staging's account, even with the same identity grant, is not a reader.
    if (await allowed(`arn:aws:iam::${STAGING_ACCOUNT}:role/someone-else`, "s3:GetObject", `${archive}/dumps/daily/latest.json`, archivePolicy)) wrong.push("another role of the staging account reads dumps");
    assert.deepStrictEqual(wrong, []);
  });
});
