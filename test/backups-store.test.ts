// BackupStore under mocks: the buckets, their encryption, lifecycle, Object Lock and policies, and
// who may do what in them.
import * as assert from "assert";
import * as aws from "@pulumi/aws";
import { BackupStore } from "../components/backups";
import { areaOfPrefix, grantStatements, Statement } from "../components/backups/policy";
import { loadConfig } from "../components/config";
import { hostFiles } from "../scripts/preview/plan";
import { committedStack, ofType, one, ProgramRun, RecordedResource, runStack } from "./harness";

const BUCKET = "aws:s3/bucket:Bucket";
const BUCKET_NAMES = ["backups-archive", "backups-pgbackrest", "backups-access-logs"];

/** The configuration resource of `type` that points at bucket `name`. */
function configOf(run: ProgramRun, type: string, name: string): RecordedResource {
  const bucket = one(run, BUCKET, name);
  const found = ofType(run, type).filter((r) => r.inputs.bucket === bucket.id);
  assert.strictEqual(found.length, 1, `expected one ${type} for ${name}, found ${found.length}`);
  return found[0];
}

function bucketPolicy(run: ProgramRun, name: string): Statement[] {
  return JSON.parse(String(configOf(run, "aws:s3/bucketPolicy:BucketPolicy", name).inputs.policy)).Statement;
}

interface Rule { id: string; filter: { prefix: string }; expiration?: { days?: number; expiredObjectDeleteMarker?: boolean }; transitions?: { days: number; storageClass: string }[]; noncurrentVersionExpiration?: { noncurrentDays: number }; abortIncompleteMultipartUpload?: { daysAfterInitiation: number } }
function lifecycle(run: ProgramRun, name: string): Rule[] {
  return configOf(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", name).inputs.rules as Rule[];
}

/** Every statement of the inline policies attached to the role named `roleName`. */
function roleStatements(run: ProgramRun, roleName: string): Statement[] {
  const role = one(run, "aws:iam/role:Role", roleName);
  return ofType(run, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.inputs.role === role.id)
    .flatMap((p) => JSON.parse(String(p.inputs.policy)).Statement as Statement[]);
}

const list = (v: string | string[]) => ([] as string[]).concat(v);
const glob = (pattern: string, value: string) => new RegExp(`^${pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`).test(value);

/** Whether the Allow statements let `action` on `resource` (conditions ignored: a superset). */
function allows(statements: Statement[], action: string, resource: string): boolean {
  return statements.some((s) => s.Effect === "Allow" && list(s.Action).some((a) => glob(a, action)) && list(s.Resource).some((r) => glob(r, resource)));
}

describe("BackupStore", () => {
  let prod: ProgramRun;
  let staging: ProgramRun;
  let archiveArn: string;
  let pgbackrestArn: string;
  before(async () => {
    prod = await committedStack("prod");
    staging = await committedStack("staging");
    archiveArn = `arn:aws:s3:::${one(prod, BUCKET, "backups-archive").id}`;
    pgbackrestArn = `arn:aws:s3:::${one(prod, BUCKET, "backups-pgbackrest").id}`;
  });

  it("versions every bucket", () => {
    for (const name of BUCKET_NAMES) {
      assert.deepStrictEqual(configOf(prod, "aws:s3/bucketVersioning:BucketVersioning", name).inputs.versioningConfiguration, { status: "Enabled" }, name);
    }
  });

  it("encrypts the backup buckets with a rotated customer-managed key (SSE-KMS, bucket key), the access logs with SSE-S3", () => {
    const key = one(prod, "aws:kms/key:Key", "backups-key");
    assert.strictEqual(key.inputs.enableKeyRotation, true);
    assert.strictEqual(key.protect, true);
    for (const name of ["backups-archive", "backups-pgbackrest"]) {
      const rules = configOf(prod, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", name).inputs.rules;
      assert.deepStrictEqual(rules, [{
        applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: `arn:aws:kms:af-south-1:123456789012:key/${key.id}` },
        bucketKeyEnabled: true,
      }], name);
    }
    // S3 server access logging cannot deliver to an SSE-KMS bucket.
    const logs = configOf(prod, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "backups-access-logs").inputs.rules;
    assert.deepStrictEqual(logs, [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }]);
  });

  it("blocks all public access and disables ACLs on every bucket", () => {
    for (const name of BUCKET_NAMES) {
      const block = configOf(prod, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name).inputs;
      for (const k of ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"]) assert.strictEqual(block[k], true, `${name}: ${k}`);
      assert.deepStrictEqual(configOf(prod, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", name).inputs.rule, { objectOwnership: "BucketOwnerEnforced" });
    }
  });

  it("denies every request without TLS, on the bucket and its objects", () => {
    for (const name of BUCKET_NAMES) {
      const arn = `arn:aws:s3:::${one(prod, BUCKET, name).id}`;
      const deny = bucketPolicy(prod, name).find((s) => s.Effect === "Deny" && s.Condition?.Bool?.["aws:SecureTransport"] === "false");
      assert.ok(deny, `${name}: no TLS-only statement`);
      assert.strictEqual(deny.Principal, "*");
      assert.strictEqual(deny.Action, "s3:*");
      assert.deepStrictEqual(list(deny.Resource).sort(), [arn, `${arn}/*`].sort());
    }
  });

  it("denies any PutObject that asks for encryption other than SSE-KMS with the backup key, and SSE-C", () => {
    const keyArn = `arn:aws:kms:af-south-1:123456789012:key/${one(prod, "aws:kms/key:Key", "backups-key").id}`;
    for (const name of ["backups-archive", "backups-pgbackrest"]) {
      const denies = bucketPolicy(prod, name).filter((s) => s.Effect === "Deny" && s.Action === "s3:PutObject");
      const conditions = denies.map((s) => s.Condition);
      assert.ok(conditions.some((c) => c?.StringNotEquals?.["s3:x-amz-server-side-encryption"] === "aws:kms" && c?.Null?.["s3:x-amz-server-side-encryption"] === "false"), `${name}: SSE-S3 not denied`);
      assert.ok(conditions.some((c) => c?.StringNotEquals?.["s3:x-amz-server-side-encryption-aws-kms-key-id"] === keyArn), `${name}: other KMS keys not denied`);
      assert.ok(conditions.some((c) => c?.Null?.["s3:x-amz-server-side-encryption-customer-algorithm"] === "false"), `${name}: SSE-C not denied`);
    }
  });

  it("logs access to both backup buckets (and prod's releases bucket) into the access-log bucket, which only S3 log delivery of this account writes", () => {
    const target = one(prod, BUCKET, "backups-access-logs");
    for (const name of ["backups-archive", "backups-pgbackrest"]) {
      const logging = configOf(prod, "aws:s3/bucketLogging:BucketLogging", name).inputs;
      assert.strictEqual(logging.targetBucket, target.id);
      assert.match(String(logging.targetPrefix), /^s3\/[a-z]+\/$/);
    }
    const allow = bucketPolicy(prod, "backups-access-logs").filter((s) => s.Effect === "Allow");
    assert.strictEqual(allow.length, 1);
    assert.deepStrictEqual(allow[0].Principal, { Service: "logging.s3.amazonaws.com" });
    assert.strictEqual(allow[0].Action, "s3:PutObject");
    assert.deepStrictEqual(allow[0].Condition?.StringEquals, { "aws:SourceAccount": "123456789012" });
    assert.deepStrictEqual(list(allow[0].Condition?.ArnLike?.["aws:SourceArn"] ?? []).sort(), [archiveArn, pgbackrestArn, "arn:aws:s3:::nourish-link-releases"].sort());
  });

  it("ages dumps and logs by config: dailies, monthlies in GLACIER_IR, logs and reports for a year", async () => {
    const rules = lifecycle(prod, "backups-archive");
    const byPrefix = (rs: Rule[], p: string) => rs.filter((r) => r.filter.prefix === p);
    assert.deepStrictEqual(byPrefix(rules, "dumps/daily/").map((r) => r.expiration), [{ days: 35 }], "prod keeps dailies backups.retentionDays = 35");
    assert.deepStrictEqual(byPrefix(rules, "dumps/monthly/").map((r) => [r.transitions, r.expiration]), [[[{ days: 30, storageClass: "GLACIER_IR" }], { days: 12 * 31 }]]);
    assert.deepStrictEqual(byPrefix(rules, "logs/").map((r) => [r.transitions?.[0]?.storageClass, r.expiration]), [["GLACIER_IR", { days: 365 }]]);
    assert.deepStrictEqual(byPrefix(rules, "reports/").map((r) => [r.transitions, r.expiration]), [[undefined, { days: 365 }]], "reports for a year, never cold");
    const whole = byPrefix(rules, "");
    assert.ok(whole.some((r) => r.noncurrentVersionExpiration?.noncurrentDays === 7), "noncurrent versions kept forever");
    assert.ok(whole.some((r) => r.abortIncompleteMultipartUpload?.daysAfterInitiation === 7), "incomplete uploads kept forever");
    assert.ok(!whole.some((r) => r.expiration?.days !== undefined), "a bucket-wide expiration would age every backup alike");

    const changed = lifecycle(await runStack("prod", { set: { backups: { retentionDays: 20, monthlyRetentionMonths: 3 } } }), "backups-archive");
    assert.deepStrictEqual(byPrefix(changed, "dumps/daily/").map((r) => r.expiration), [{ days: 20 }]);
    assert.deepStrictEqual(byPrefix(changed, "dumps/monthly/").map((r) => r.expiration), [{ days: 93 }]);
    const noMonthlies = lifecycle(await runStack("prod", { set: { backups: { monthlyRetentionMonths: 0 } } }), "backups-archive");
    assert.deepStrictEqual(byPrefix(noMonthlies, "dumps/monthly/"), []);
  });

  it("never expires or moves pgBackRest's repository: pgBackRest manages its own retention", () => {
    const rules = lifecycle(prod, "backups-pgbackrest");
    assert.ok(rules.length > 0);
    for (const r of rules) {
      assert.strictEqual(r.expiration?.days, undefined, `${r.id} expires repository files`);
      assert.strictEqual(r.transitions, undefined, `${r.id} moves repository files`);
    }
    assert.ok(rules.some((r) => r.noncurrentVersionExpiration?.noncurrentDays === 7), "deleted repository files are never cleaned up");
  });

  it("locks prod's dumps and logs in COMPLIANCE mode for backups.retentionDays, never pgBackRest's bucket nor staging", async () => {
    assert.strictEqual(one(prod, BUCKET, "backups-archive").inputs.objectLockEnabled, true);
    const lock = configOf(prod, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "backups-archive").inputs;
    assert.deepStrictEqual(lock.rule, { defaultRetention: { mode: "COMPLIANCE", days: 35 } });
    assert.ok(!one(prod, BUCKET, "backups-pgbackrest").inputs.objectLockEnabled);
    assert.strictEqual(ofType(prod, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").length, 1);
    const shorter = await runStack("prod", { set: { backups: { retentionDays: 20 } } });
    assert.deepStrictEqual(configOf(shorter, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "backups-archive").inputs.rule, { defaultRetention: { mode: "COMPLIANCE", days: 20 } });

    assert.strictEqual(one(staging, BUCKET, "backups-archive").inputs.objectLockEnabled, false);
    assert.strictEqual(ofType(staging, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").length, 0);
  });

  it("keeps every backup, log archive and report write-once, and with Object Lock locked for as long as its class is kept; hosts learn those days", () => {
    const statements = bucketPolicy(prod, "backups-archive");
    const sid = (id: string) => statements.find((s) => s.Sid === id)!;
    const keys = [`${archiveArn}/dumps/daily/db_backup_*`, `${archiveArn}/dumps/monthly/*`, `${archiveArn}/logs/*`, `${archiveArn}/reports/*`];
    assert.deepStrictEqual(sid("DenyOverwritingBackups"), { Sid: "DenyOverwritingBackups", Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: keys, Condition: { Null: { "s3:if-none-match": "true" } } });
    assert.deepStrictEqual(sid("DenyBackupsWithoutRetention").Condition, { Null: { "s3:object-lock-remaining-retention-days": "true" } });
    // prod keeps dailies 35 days, monthlies 12 × 31, logs and reports 365: the lock is at least as long.
    assert.deepStrictEqual(statements.filter((s) => s.Sid.startsWith("DenyShortRetention")).map((s) => [s.Resource, s.Condition]),
      keys.map((k, i) => [k, { NumericLessThan: { "s3:object-lock-remaining-retention-days": String([35, 372, 365, 365][i]) } }]));
    const env = (run: ProgramRun, role: "app" | "db") => hostFiles(run).find((f) => f.role === role && f.path === "/etc/nourish-link/host.env")!.content;
    for (const role of ["app", "db"] as const) assert.match(env(prod, role), /^BACKUP_LOCK_DAYS="daily=35 monthly=372 logs=365 reports=365"$/m, role);
    // Without Object Lock (staging): write-once still, no retention asked for (S3 would refuse it).
    const st = bucketPolicy(staging, "backups-archive");
    assert.ok(st.some((s) => s.Sid === "DenyOverwritingBackups"));
    assert.ok(!st.some((s) => s.Sid.startsWith("DenyShortRetention") || s.Sid === "DenyBackupsWithoutRetention"));
    assert.doesNotMatch(env(staging, "db"), /BACKUP_LOCK_DAYS/);
  });

  it("protects prod's buckets and never force-destroys them; staging's may go with their contents", () => {
    for (const name of BUCKET_NAMES) {
      const p = one(prod, BUCKET, name);
      assert.strictEqual(p.inputs.forceDestroy, false, `prod ${name}: forceDestroy`);
      assert.strictEqual(p.protect, true, `prod ${name}: not protected`);
      const s = one(staging, BUCKET, name);
      assert.strictEqual(s.inputs.forceDestroy, true, `staging ${name}`);
      assert.strictEqual(s.protect, false, `staging ${name}`);
    }
  });

  it("lets the database host put and read dumps and its pgBackRest repository, put (not read) its own logs, and delete nothing but pgBackRest's expired files", () => {
    const s = roleStatements(prod, "database-role");
    for (const st of s) {
      for (const a of list(st.Action)) assert.ok(!a.includes("*"), `wildcard action ${a}`);
      // No EC2 or ELB right at all since issue 20 (isolation is the on-call operator's), so no "*".
      for (const r of list(st.Resource)) assert.ok(r !== "*" && !/^arn:aws:s3:::[^/]+\/\*$/.test(r), `wildcard resource ${r}`);
    }
    // Its own logs/db/<aws:userid>/ (an IAM policy variable): put, never read; no other host's.
    assert.ok(allows(s, "s3:PutObject", `${archiveArn}/logs/db/\${aws:userid}/logs_archive_202601.tar.gz`));
    assert.ok(!allows(s, "s3:GetObject", `${archiveArn}/logs/db/\${aws:userid}/logs_archive_202601.tar.gz`));
    assert.ok(!allows(s, "s3:PutObject", `${archiveArn}/logs/app/x`));
    for (const key of [`${archiveArn}/dumps/daily/dusangire-2026-01-01.dump`, `${archiveArn}/dumps/monthly/x.dump`, `${pgbackrestArn}/pgbackrest/archive/nourish-link/x`]) {
      assert.ok(allows(s, "s3:PutObject", key), `cannot put ${key}`);
      assert.ok(allows(s, "s3:GetObject", key), `cannot read ${key}`);
      assert.ok(!allows(s, "s3:DeleteObjectVersion", key), `can delete versions of ${key}`);
    }
    for (const key of [`${archiveArn}/dumps/daily/dusangire-2026-01-01.dump`, `${archiveArn}/dumps/monthly/x.dump`, `${archiveArn}/logs/x`]) {
      // (s3:PutObjectRetention it has: an upload's own COMPLIANCE retention, which can only lengthen.)
      for (const action of ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"]) {
        assert.ok(!allows(s, action, key), `the database host may ${action} ${key}`);
      }
    }
    assert.ok(allows(s, "s3:DeleteObject", `${pgbackrestArn}/pgbackrest/backup/nourish-link/20260101-020000F/x`), "pgbackrest expire cannot delete");
    assert.ok(!allows(s, "s3:DeleteObject", `${pgbackrestArn}/other/x`));
    assert.ok(!allows(s, "s3:PutObject", `${archiveArn}/elsewhere/x`), "writes outside its prefixes");
    for (const bucketAction of ["s3:PutBucketPolicy", "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning", "s3:PutBucketObjectLockConfiguration", "s3:DeleteBucket"]) {
      for (const arn of [archiveArn, pgbackrestArn]) assert.ok(!allows(s, bucketAction, arn), `${bucketAction} on ${arn}`);
    }
    const listing = s.filter((x) => x.Action === "s3:ListBucket" && [archiveArn, pgbackrestArn].includes(String(x.Resource)));
    assert.deepStrictEqual(listing.map((x) => [x.Resource, x.Condition]).sort(), [
      [archiveArn, { StringLike: { "s3:prefix": ["dumps/*"] } }],
      [pgbackrestArn, { StringLike: { "s3:prefix": ["pgbackrest/*"] } }],
    ].sort());
    const keyArn = `arn:aws:kms:af-south-1:123456789012:key/${one(prod, "aws:kms/key:Key", "backups-key").id}`;
    assert.ok(allows(s, "kms:GenerateDataKey", keyArn) && allows(s, "kms:Decrypt", keyArn), "cannot use the backup key");
  });

  it("without PITR the database host may delete nothing at all", async () => {
    const r = await runStack("prod", { set: { backups: { pitr: false } } });
    const s = roleStatements(r, "database-role");
    assert.ok(s.length > 0);
    for (const st of s) for (const a of list(st.Action)) assert.ok(!/delete/i.test(a), `${st.Sid} allows ${a}`);
    assert.match(hostFiles(r).find((f) => f.role === "db" && f.path === "/etc/nourish-link/host.env")?.content ?? "", /^PITR=false$/m);
  });

  it("gives the app hosts only a put under their own logs/app/<aws:userid>/ (monthly log archival) and under reports/ (the reports): no read, no dump, no pgBackRest, no delete, no passphrase", () => {
    const cipher = one(prod, "aws:ssm/parameter:Parameter", "secrets-pgbackrest-cipher-pass");
    const statements = roleStatements(prod, "app-role");
    const app = JSON.stringify(statements);
    assert.ok(app.length > 2, "the app role has no policies at all: wrong role?");
    for (const name of BUCKET_NAMES.filter((n) => n !== "backups-archive")) assert.ok(!app.includes(one(prod, BUCKET, name).id), `app role mentions ${name}`);
    const archive = one(prod, BUCKET, "backups-archive").id;
    for (const st of statements) {
      for (const r of list(st.Resource as string | string[])) {
        if (!r.includes(archive)) continue;
        assert.ok(r.endsWith(`${archive}/logs/app/\${aws:userid}/*`) || r.endsWith(`${archive}/reports/*`), `${st.Sid}: app role reaches ${r}`);
        for (const a of list(st.Action)) assert.ok(["s3:PutObject", "s3:PutObjectRetention"].includes(a), `${st.Sid}: app role may ${a} in the archive`);
      }
      for (const a of list(st.Action)) assert.ok(!/delete/i.test(a), `${st.Sid} allows ${a}`);
    }
    assert.ok(!app.includes("dumps/"), "app role reaches the dumps");
    assert.ok(!app.includes(String(cipher.inputs.name)), "app role may read the pgBackRest passphrase");
    assert.ok(JSON.stringify(roleStatements(prod, "database-role")).includes(String(cipher.inputs.name)), "the database host cannot read its passphrase");
  });

  it("tells the database host where its backups go", () => {
    const env = hostFiles(prod).find((f) => f.role === "db" && f.path === "/etc/nourish-link/host.env")?.content ?? "";
    const keyArn = `arn:aws:kms:af-south-1:123456789012:key/${one(prod, "aws:kms/key:Key", "backups-key").id}`;
    for (const line of [
      `BACKUP_BUCKET=${one(prod, BUCKET, "backups-archive").id}`,
      `PGBACKREST_BUCKET=${one(prod, BUCKET, "backups-pgbackrest").id}`,
      `BACKUP_KMS_KEY_ARN=${keyArn}`,
      "BACKUP_LOCAL_DAYS=7",
      "BACKUP_RETENTION_DAYS=35",
      "PITR=true",
      "PGBACKREST_CIPHER_PARAMETER=/nourish-link/prod/pgbackrest-cipher-pass",
    ]) assert.ok(env.split("\n").includes(line), `host.env lacks ${line}:\n${env}`);
    const appEnv = hostFiles(prod).filter((f) => f.role === "app" && f.path === "/etc/nourish-link/host.env");
    // App hosts learn only where their log archive goes (the archive bucket and its key).
    assert.ok(appEnv.length > 0 && !appEnv.some((f) => /PGBACKREST_|BACKUP_(LOCAL|RETENTION|MONTHLY)/.test(f.content)), "app hosts are told about backups");
    for (const f of appEnv) assert.match(f.content, new RegExp(`^BACKUP_BUCKET=${one(prod, BUCKET, "backups-archive").id}$`, "m"));
    assert.strictEqual(prod.outputs.backupBucket, one(prod, BUCKET, "backups-archive").id);
    assert.strictEqual(prod.outputs.pgbackrestBucket, one(prod, BUCKET, "backups-pgbackrest").id);
    assert.strictEqual(prod.outputs.backupKmsKeyArn, keyArn);
  });

  it("keeps pgBackRest's passphrase generated, secret and protected on prod", () => {
    const param = one(prod, "aws:ssm/parameter:Parameter", "secrets-pgbackrest-cipher-pass");
    assert.strictEqual(param.inputs.type, "SecureString");
    assert.strictEqual(param.inputs.value, "[secret]");
    assert.strictEqual(param.protect, true);
    assert.strictEqual(one(prod, "random:index/randomPassword:RandomPassword", "secrets-pgbackrest-cipher-pass").protect, true);
    assert.ok(!JSON.stringify(prod).includes("mockgen"), "a generated secret leaked into the plan");
  });

  it("keeps the store for logs when RDS manages the database, with no host role to grant", async () => {
    const managed = await runStack("prod", { set: { database: { managed: true } } });
    one(managed, BUCKET, "backups-archive");
    assert.strictEqual(ofType(managed, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.name.startsWith("database-")).length, 0);
    assert.strictEqual(typeof managed.outputs.backupBucket, "string");
  });

  it("grantRead gives list and get under exactly the given prefixes, and decrypt", async () => {
    const run = await runStack("staging", {
      program: async () => {
        const store = new BackupStore("store", { config: loadConfig() });
        const role = new aws.iam.Role("restorer", { assumeRolePolicy: "{}" });
        store.grantRead("restorer-read", role, ["dumps/daily/"]);
      },
    });
    const s = roleStatements(run, "restorer");
    const arn = `arn:aws:s3:::${one(run, BUCKET, "store-archive").id}`;
    assert.ok(allows(s, "s3:GetObject", `${arn}/dumps/daily/x.dump`));
    for (const [action, key] of [["s3:GetObject", `${arn}/dumps/monthly/x.dump`], ["s3:PutObject", `${arn}/dumps/daily/x.dump`], ["s3:DeleteObject", `${arn}/dumps/daily/x.dump`]]) {
      assert.ok(!allows(s, action, key), `grantRead allows ${action} on ${key}`);
    }
    assert.deepStrictEqual(s.find((x) => x.Action === "s3:ListBucket")?.Condition, { StringLike: { "s3:prefix": ["dumps/daily/*"] } });
    assert.deepStrictEqual(s.filter((x) => list(x.Action).some((a) => a.startsWith("kms:"))).map((x) => x.Action), ["kms:Decrypt"]);
  });

  it("refuses a prefix outside the backup areas", () => {
    const arns = { archive: "arn:aws:s3:::a", pgbackrest: "arn:aws:s3:::p", kmsKey: "arn:aws:kms:x" };
    assert.throws(() => areaOfPrefix("secrets/"), /must start with one of dumps\/, logs\/, pgbackrest\//);
    assert.throws(() => grantStatements(arns, "read", ["dumps/*" as "dumps/"]), /plain key prefix/);
    assert.throws(() => grantStatements(arns, "write", []), /at least one prefix/);
  });
});
