// BackupStore: where the database's backups and the hosts' archived logs live, off the hosts.
//
// Three buckets, all versioned, public access blocked, ACLs disabled, TLS only:
// - archive:    dumps/ (nourishctl's logical dumps: dumps/daily/, dumps/monthly/) and logs/
//               (archived host logs), SSE-KMS with the backup key, aged by lifecycle rules from
//               `backups` config. Backups and log archives are write-once (the bucket policy wants
//               If-None-Match: * on their keys) and, with backups.objectLock, under S3 Object Lock
//               in COMPLIANCE mode, each upload for as long as its class is kept (lockDays): nobody,
//               root and a compromised host included, can delete or overwrite one before it has aged out.
// - pgbackrest: pgBackRest's repository (pgbackrest/), SSE-KMS with the same key, no Object Lock
//               and no expiration rule. Why a bucket of its own: Object Lock's default retention
//               is bucket-wide (it cannot be scoped to a prefix), and pgBackRest expires its own
//               backups and WAL (repo1-retention-full) by deleting them; under a bucket-wide
//               COMPLIANCE lock its `expire` would fail on every object younger than the lock and
//               the repository could never shrink on schedule. Keeping the two apart lets the
//               manual's dumps be immutable while pgBackRest keeps managing its own retention. The
//               bucket exists whether or not backups.pitr is on, so turning PITR off and on never
//               deletes a (protected) bucket. Its safety net is versioning: the database role may
//               delete under pgbackrest/ (see grantPgbackrestDelete) but not delete versions, so a
//               deleted file stays recoverable for NONCURRENT_VERSION_DAYS.
// - access-logs: S3 server access logs of the two buckets above and of those `alsoLog` names (the
//               releases bucket). SSE-S3, because S3 log delivery cannot write to a bucket whose
//               default encryption is SSE-KMS.
//
// On prod the buckets and the key are `protect`ed and never forceDestroy; staging may be torn
// down with its contents. Access is granted per prefix with grantWrite / grantRead, in the style
// of CDK constructs; no grant ever includes s3:DeleteObjectVersion or a bucket-level action.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { keyPolicy } from "../keys/policy";
import { hardenBucket } from "../storage";
import { StackConfig } from "../config";
import { rehearsalBucketStatements, rehearsalKeyStatements } from "../rehearsal/plan";
import {
  accessLogBucketPolicy, accessLogLifecycleRules, archiveLifecycleRules, BackupPrefix, encryptedBucketPolicy,
  BucketArns, grantStatements, HostRoleName, lockDays, logArchiveStatements, objectLockRetention, reportStoreStatements, pgbackrestDeleteStatements, pgbackrestLifecycleRules,
  policyDocument, Statement, writeOnceStatements,
} from "./policy";

export type { BackupPrefix } from "./policy";

export interface BackupStoreArgs {
  config: StackConfig;
  /** Other buckets of the stack whose server access logs go to the access-log bucket too (the releases bucket), by id. */
  alsoLog?: { id: string; bucket: aws.s3.Bucket }[];
}

const ACCESS_LOG_PREFIX = "s3/";

export class BackupStore extends pulumi.ComponentResource {
  /** dumps/ and logs/: the manual's backups (Object Lock when backups.objectLock). */
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  /** pgbackrest/: pgBackRest's repository. */
  readonly pgbackrestBucketName: pulumi.Output<string>;
  readonly pgbackrestBucketArn: pulumi.Output<string>;
  /** Server access logs of both. */
  readonly accessLogBucketName: pulumi.Output<string>;
  /** The customer-managed key both backup buckets are encrypted with. */
  readonly kmsKeyArn: pulumi.Output<string>;
  /** Whether the archive bucket is under Object Lock. */
  readonly objectLock: boolean;
  /** host.env entries of every host that writes the archive: how long each upload is locked. */
  readonly hostEnv: Record<string, string>;

  constructor(name: string, args: BackupStoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:backups:BackupStore", name, {}, opts);
    const { config } = args;
    const prod = config.environment === "prod";
    // Only a staging stack may be destroyed with its backups in it.
    const forceDestroy = config.environment === "staging";
    // Protected and retained on prod: neither `pulumi destroy` nor a replacement takes the backups.
    const keep = { parent: this, protect: prod, retainOnDelete: prod };
    const account = aws.getCallerIdentityOutput({}, { parent: this }).accountId;

    const retention = objectLockRetention(config.backups);
    const archive = new aws.s3.Bucket(`${name}-archive`, { forceDestroy, objectLockEnabled: retention !== undefined }, keep);
    const pgbackrest = new aws.s3.Bucket(`${name}-pgbackrest`, { forceDestroy }, keep);
    const accessLogs = new aws.s3.Bucket(`${name}-access-logs`, { forceDestroy }, keep);

    // backups.rehearsalReaders (staging's restore rehearsal) may decrypt through S3, for the archive only.
    const readers = config.backups.rehearsalReaders;
    const key = new aws.kms.Key(`${name}-key`, {
      description: `nourish-link ${config.stack}: database backups and archived logs`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      // Without readers the policy waits for nothing but the account, as it always did.
      policy: pulumi.jsonStringify(readers.length === 0
        ? account.apply((a) => keyPolicy(a))
        : pulumi.all([account, archive.arn]).apply(([a, ar]) => keyPolicy(a, rehearsalKeyStatements(ar, readers, config.region)))),
    }, keep);
    new aws.kms.Alias(`${name}-key-alias`, { name: `alias/nourish-link-${config.stack}-backups`, targetKeyId: key.keyId }, { parent: this });

    const kms = { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key.arn }, bucketKeyEnabled: true };

    const a = hardenBucket(`${name}-archive`, archive, { encryption: kms, lifecycle: archiveLifecycleRules(config.backups) }, this);
    const p = hardenBucket(`${name}-pgbackrest`, pgbackrest, { encryption: kms, lifecycle: pgbackrestLifecycleRules() }, this);
    // S3 cannot deliver access logs into a KMS-encrypted bucket.
    const l = hardenBucket(`${name}-access-logs`, accessLogs, { encryption: { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }, lifecycle: accessLogLifecycleRules() }, this);

    if (retention) {
      new aws.s3.BucketObjectLockConfiguration(`${name}-archive-object-lock`, {
        bucket: archive.id,
        objectLockEnabled: "Enabled",
        rule: { defaultRetention: retention },
      }, { parent: this, dependsOn: [a.versioning] });
    }

    for (const [id, bucket, done] of [[`${name}-archive`, archive, a], [`${name}-pgbackrest`, pgbackrest, p]] as const) {
      // The archive's backups are write-once and locked as long as kept; rehearsal readers get its
      // dumps/, never the pgBackRest repository.
      const extra = (b: string) => (bucket === archive ? [...writeOnceStatements(b, config.backups), ...rehearsalBucketStatements(b, readers)] : []);
      new aws.s3.BucketPolicy(`${id}-policy`, {
        bucket: bucket.id,
        policy: pulumi.jsonStringify(pulumi.all([bucket.arn, key.arn]).apply(([b, k]) => {
          const doc = encryptedBucketPolicy(b, k);
          return { ...doc, Statement: [...doc.Statement, ...extra(b)] };
        })),
      }, { parent: this, dependsOn: [done.publicAccess] });
    }
    const logged = args.alsoLog ?? [];
    const logPolicy = new aws.s3.BucketPolicy(`${name}-access-logs-policy`, {
      bucket: accessLogs.id,
      policy: pulumi.jsonStringify(pulumi.all([accessLogs.arn, account, archive.arn, pgbackrest.arn, ...logged.map((x) => x.bucket.arn)])
        .apply(([logs, acct, ...sources]) => accessLogBucketPolicy(logs, ACCESS_LOG_PREFIX, sources, acct))),
    }, { parent: this, dependsOn: [l.publicAccess] });
    for (const { id, bucket } of [{ id: "archive", bucket: archive }, { id: "pgbackrest", bucket: pgbackrest }, ...logged]) {
      new aws.s3.BucketLogging(`${name}-${id}-logging`, {
        bucket: bucket.id,
        targetBucket: accessLogs.id,
        targetPrefix: `${ACCESS_LOG_PREFIX}${id}/`,
        targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: "EventTime" } },
      }, { parent: this, dependsOn: [logPolicy] });
    }

    this.bucketName = archive.bucket;
    this.bucketArn = archive.arn;
    this.pgbackrestBucketName = pgbackrest.bucket;
    this.pgbackrestBucketArn = pgbackrest.arn;
    this.accessLogBucketName = accessLogs.bucket;
    this.kmsKeyArn = key.arn;
    this.objectLock = retention !== undefined;
    this.hostEnv = lockEnv(config.backups);
    this.registerOutputs({
      bucketName: this.bucketName, pgbackrestBucketName: this.pgbackrestBucketName,
      accessLogBucketName: this.accessLogBucketName, kmsKeyArn: this.kmsKeyArn,
    });
  }

  /**
   * Lets `role` write (PutObject, abort its own uploads) and read under exactly `prefixes`
   * (`dumps/`, `logs/`, `pgbackrest/` or deeper), with the backup key. Never any Delete*.
   */
  grantWrite(name: string, role: aws.iam.Role, prefixes: BackupPrefix[]): aws.iam.RolePolicy {
    return this.grant(name, role, (arns) => grantStatements(arns, "write", prefixes));
  }

  /** Lets `role` list and read under exactly `prefixes` and decrypt with the backup key. */
  grantRead(name: string, role: aws.iam.Role, prefixes: BackupPrefix[]): aws.iam.RolePolicy {
    return this.grant(name, role, (arns) => grantStatements(arns, "read", prefixes));
  }

  /** `nourishctl logs archive` of a `role` host: put its own logs/<role>/<aws:userid>/ archives, read none. */
  grantLogArchive(name: string, role: aws.iam.Role, hostRole: HostRoleName): aws.iam.RolePolicy {
    return this.grant(name, role, (arns) => logArchiveStatements(arns, hostRole));
  }

  /** `nourishctl report` (app-0): put reports under reports/, read none. */
  grantReportStore(name: string, role: aws.iam.Role): aws.iam.RolePolicy {
    return this.grant(name, role, (arns) => reportStoreStatements(arns));
  }

  /** s3:DeleteObject under pgbackrest/ only: what `pgbackrest expire` needs, nothing more. */
  grantPgbackrestDelete(name: string, role: aws.iam.Role): aws.iam.RolePolicy {
    return this.grant(name, role, (arns) => pgbackrestDeleteStatements(arns));
  }

  private grant(name: string, role: aws.iam.Role, statements: (arns: BucketArns) => Statement[]): aws.iam.RolePolicy {
    return new aws.iam.RolePolicy(name, {
      role: role.id,
      policy: pulumi.jsonStringify(pulumi.all([this.bucketArn, this.pgbackrestBucketArn, this.kmsKeyArn])
        .apply(([archive, pgbackrest, kmsKey]) => policyDocument(statements({ archive, pgbackrest, kmsKey })))),
    }, { parent: this });
  }
}

/**
 * What nourishctl needs to lock each upload for as long as it is kept (empty without Object Lock:
 * S3 refuses retention on a bucket without it): BACKUP_LOCK_DAYS, the classes of lockDays as
 * "daily=35 monthly=372 logs=365 reports=365".
 */
export function lockEnv(b: Parameters<typeof lockDays>[0]): Record<string, string> {
  if (!b.objectLock) return {};
  const name = (pattern: string) => pattern.startsWith("dumps/daily/") ? "daily" : pattern.startsWith("dumps/monthly/") ? "monthly" : pattern.split("/")[0];
  return { BACKUP_LOCK_DAYS: lockDays(b).map((c) => `${name(c.pattern)}=${c.days}`).join(" ") };
}
