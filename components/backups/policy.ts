// Pure builders for the backup buckets: where each kind of backup lives, the lifecycle rules that
// age it, the bucket policies that guard it and the IAM statements the grant helpers attach.
// No Pulumi imports: plain settings and ARNs in, plain JSON-shaped objects out.

/** The three areas of backup storage. Each is a key prefix; the bucket follows from the area. */
export const BACKUP_AREAS = ["dumps", "logs", "pgbackrest"] as const;
export type BackupArea = (typeof BACKUP_AREAS)[number];
/** A key prefix inside one area: `dumps/`, `dumps/daily/`, `pgbackrest/`, … */
export type BackupPrefix = `${BackupArea}/${string}`;

/** Which bucket holds an area: pgBackRest's repository has a bucket of its own (see index.ts). */
export function bucketOfArea(area: BackupArea): "archive" | "pgbackrest" {
  return area === "pgbackrest" ? "pgbackrest" : "archive";
}

export function areaOfPrefix(prefix: string): BackupArea {
  const area = BACKUP_AREAS.find((a) => prefix.startsWith(`${a}/`));
  if (!area) throw new Error(`backup prefix ${JSON.stringify(prefix)} must start with one of ${BACKUP_AREAS.map((a) => `${a}/`).join(", ")}`);
  if (!/^[A-Za-z0-9_./-]+\/$/.test(prefix)) throw new Error(`backup prefix ${JSON.stringify(prefix)} must be a plain key prefix ending in /`);
  return area;
}

export const DAILY_PREFIX = "dumps/daily/";
export const MONTHLY_PREFIX = "dumps/monthly/";
export const LOGS_PREFIX = "logs/";
/** `nourishctl report weekly|monthly`'s reports: reports/<weekly|monthly>/<start>_<end>.{md,json}. */
export const REPORTS_PREFIX = "reports/";
export const PGBACKREST_PREFIX = "pgbackrest/";

/** Days after which monthlies and archived logs move to a colder class. */
export const COLD_AFTER_DAYS = 30;
/** Instant retrieval: a restore drill reads a monthly dump directly, without a thaw. */
export const COLD_STORAGE_CLASS = "GLACIER_IR";
/** Archived logs are kept a year (the manual archives them monthly). */
export const LOG_RETENTION_DAYS = 365;
/** The weekly and monthly reports (reports/) are kept as long as the logs: a year to compare with. */
export const REPORT_RETENTION_DAYS = LOG_RETENTION_DAYS;
/** Overwritten or deleted versions stay this long: the window to undo a mistake or an attack. */
export const NONCURRENT_VERSION_DAYS = 7;
export const ABORT_MULTIPART_DAYS = 7;
/** Server access logs of the backup buckets. */
export const ACCESS_LOG_RETENTION_DAYS = 365;

/** The keys of `backups` config these builders read. */
export interface BackupSettings {
  retentionDays: number;
  monthlyRetentionMonths: number;
  objectLock: boolean;
}

/** Same shape as aws.s3.BucketLifecycleConfiguration's rules. */
export interface LifecycleRule {
  id: string;
  status: "Enabled";
  filter: { prefix: string };
  transitions?: { days: number; storageClass: string }[];
  expiration?: { days?: number; expiredObjectDeleteMarker?: boolean };
  noncurrentVersionExpiration?: { noncurrentDays: number };
  abortIncompleteMultipartUpload?: { daysAfterInitiation: number };
}

/** Rules every bucket carries: old versions and abandoned uploads do not accumulate. */
export function housekeepingLifecycleRules(): LifecycleRule[] {
  return [
    {
      id: "noncurrent-versions",
      status: "Enabled",
      filter: { prefix: "" },
      noncurrentVersionExpiration: { noncurrentDays: NONCURRENT_VERSION_DAYS },
      expiration: { expiredObjectDeleteMarker: true },
    },
    { id: "abort-incomplete-uploads", status: "Enabled", filter: { prefix: "" }, abortIncompleteMultipartUpload: { daysAfterInitiation: ABORT_MULTIPART_DAYS } },
  ];
}

/**
 * The archive bucket (dumps/ and logs/): dailies expire after backups.retentionDays; monthlies go
 * cold after 30 days and expire after backups.monthlyRetentionMonths × 31 days (no rule when 0:
 * no monthlies are taken); archived logs go cold after 30 days and expire after a year.
 */
export function archiveLifecycleRules(b: BackupSettings): LifecycleRule[] {
  const rules: LifecycleRule[] = [
    { id: "daily-dumps", status: "Enabled", filter: { prefix: DAILY_PREFIX }, expiration: { days: b.retentionDays } },
  ];
  if (b.monthlyRetentionMonths > 0) {
    rules.push({
      id: "monthly-dumps",
      status: "Enabled",
      filter: { prefix: MONTHLY_PREFIX },
      transitions: [{ days: COLD_AFTER_DAYS, storageClass: COLD_STORAGE_CLASS }],
      // At least 31 > 30: S3 requires expiration after the transition.
      expiration: { days: b.monthlyRetentionMonths * 31 },
    });
  }
  rules.push(
    {
      id: "archived-logs",
      status: "Enabled",
      filter: { prefix: LOGS_PREFIX },
      transitions: [{ days: COLD_AFTER_DAYS, storageClass: COLD_STORAGE_CLASS }],
      expiration: { days: LOG_RETENTION_DAYS },
    },
    // Small files: no colder class (its per-object minimum would cost more than it saves).
    { id: "reports", status: "Enabled", filter: { prefix: REPORTS_PREFIX }, expiration: { days: REPORT_RETENTION_DAYS } },
    ...housekeepingLifecycleRules(),
  );
  return rules;
}

/**
 * pgBackRest's bucket: no expiration and no transition. pgBackRest expires its own backups and
 * WAL (repo1-retention-full) and must read every file it keeps, so S3 only cleans up versions it
 * deleted (after NONCURRENT_VERSION_DAYS) and abandoned uploads.
 */
export function pgbackrestLifecycleRules(): LifecycleRule[] {
  return housekeepingLifecycleRules();
}

export function accessLogLifecycleRules(): LifecycleRule[] {
  return [
    { id: "access-logs", status: "Enabled", filter: { prefix: "" }, expiration: { days: ACCESS_LOG_RETENTION_DAYS } },
    ...housekeepingLifecycleRules(),
  ];
}

/**
 * Object Lock default retention: COMPLIANCE (nobody, root included, can shorten it) for as long as a
 * daily is kept. The floor: objects written without a retention of their own (the latest.json
 * pointer) get it; every backup and archive is uploaded with its own, as long as it is kept
 * (lockDays), and the bucket policy refuses one with less (writeOnceStatements).
 */
export function objectLockRetention(b: BackupSettings): { mode: "COMPLIANCE"; days: number } | undefined {
  return b.objectLock ? { mode: "COMPLIANCE", days: b.retentionDays } : undefined;
}

/** Days beyond its class an upload may be locked: s3_put_once's spare day and S3's rounding up. */
export const RETENTION_SPARE_DAYS = 2;

/**
 * The archive's write-once keys, each class with the days it is kept (the lifecycle rules above):
 * daily dumps and their manifests, monthly dumps, archived logs, and the weekly and monthly reports
 * (a report is the record of its period: app-0 may write a new one, never rewrite an old one). Not
 * dumps/daily/latest.json, the pointer `backup` rewrites every night.
 */
export function lockDays(b: BackupSettings): { pattern: string; days: number }[] {
  return [
    { pattern: `${DAILY_PREFIX}db_backup_*`, days: b.retentionDays },
    ...(b.monthlyRetentionMonths > 0 ? [{ pattern: `${MONTHLY_PREFIX}*`, days: b.monthlyRetentionMonths * 31 }] : []),
    { pattern: `${LOGS_PREFIX}*`, days: LOG_RETENTION_DAYS },
    { pattern: `${REPORTS_PREFIX}*`, days: REPORT_RETENTION_DAYS },
  ];
}

/**
 * Bucket-policy statements of the archive that make backups and archives write-once and, with
 * Object Lock, locked for as long as they are kept. They deny, to every principal:
 * - a PutObject on a write-once key without `If-None-Match: *` (S3 conditional writes: the put
 *   fails with 412 when the key exists), so nobody overwrites an existing dump, manifest or log
 *   archive. UploadPart and CreateMultipartUpload are authorised as s3:PutObject and carry no
 *   If-None-Match, so these keys take single PUTs only (nourishctl's s3_put_once; 5 GiB at most);
 * - with Object Lock, a PutObject on such a key whose own retention (x-amz-object-lock-retain-until-
 *   date) is absent or ends before the class is expired (`s3:object-lock-remaining-retention-days`),
 *   and a PutObject or PutObjectRetention that locks any key longer than its class is kept.
 */
export function writeOnceStatements(bucketArn: string, b: BackupSettings): Statement[] {
  const classes = lockDays(b);
  const statements: Statement[] = [denyOverwriting("DenyOverwritingBackups", classes.map((c) => `${bucketArn}/${c.pattern}`))];
  if (!b.objectLock) return statements;
  statements.push({
    Sid: "DenyBackupsWithoutRetention",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:PutObject",
    Resource: classes.map((c) => `${bucketArn}/${c.pattern}`),
    Condition: { Null: { "s3:object-lock-remaining-retention-days": "true" } },
  });
  classes.forEach((c, i) => statements.push({
    Sid: `DenyShortRetention${i}`,
    Effect: "Deny",
    Principal: "*",
    Action: "s3:PutObject",
    Resource: `${bucketArn}/${c.pattern}`,
    Condition: { NumericLessThan: { "s3:object-lock-remaining-retention-days": String(c.days) } },
  }));
  // And no longer: COMPLIANCE retention can never be shortened, so a host (or a stolen key) that
  // locked objects for a century would bill storage nobody can remove. A class may be locked its
  // days plus RETENTION_SPARE_DAYS (s3_put_once adds one); any other key, the longest class.
  classes.forEach((c, i) => statements.push({
    Sid: `DenyLongRetention${i}`,
    Effect: "Deny",
    Principal: "*",
    Action: ["s3:PutObject", "s3:PutObjectRetention"],
    Resource: `${bucketArn}/${c.pattern}`,
    Condition: { NumericGreaterThan: { "s3:object-lock-remaining-retention-days": String(c.days + RETENTION_SPARE_DAYS) } },
  }));
  statements.push({
    Sid: "DenyLongRetentionAnyKey",
    Effect: "Deny",
    Principal: "*",
    Action: ["s3:PutObject", "s3:PutObjectRetention"],
    Resource: `${bucketArn}/*`,
    Condition: { NumericGreaterThan: { "s3:object-lock-remaining-retention-days": String(Math.max(...classes.map((c) => c.days)) + RETENTION_SPARE_DAYS) } },
  });
  return statements;
}

/**
 * Write-once keys: deny, to every principal, a PutObject on `resources` without `If-None-Match: *`
 * (S3 conditional writes: the put fails with 412 when the key exists). Multipart uploads carry no
 * If-None-Match, so such keys take single PUTs only (5 GiB at most).
 */
export function denyOverwriting(sid: string, resources: string[]): Statement {
  return { Sid: sid, Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: resources, Condition: { Null: { "s3:if-none-match": "true" } } };
}

export interface Statement {
  Sid: string;
  Effect: "Allow" | "Deny";
  Principal?: "*" | { Service: string } | { AWS: string | string[] };
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Statement[];
}

export function denyInsecureTransport(bucketArn: string): Statement {
  return {
    Sid: "DenyInsecureTransport",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:*",
    Resource: [bucketArn, `${bucketArn}/*`],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  };
}

/**
 * Policy of a KMS-encrypted backup bucket: TLS only, and no PutObject that asks for any
 * encryption but SSE-KMS with the bucket's key.
 *
 * Every object is encrypted: default encryption applies the key to any PutObject that names no
 * encryption. The policy denies the requests that name something else (SSE-S3, another KMS key,
 * SSE-C). It deliberately does not deny PutObject *without* the header (the "Null: true" pattern):
 * UploadPart is authorised as s3:PutObject and never carries the header, so that pattern denies
 * every multipart upload (aws/aws-cli#4251, boto/botocore#471), i.e. every large dump and
 * pgBackRest backup. Clients may therefore omit the header or send `aws:kms` with the key's ARN.
 */
export function encryptedBucketPolicy(bucketArn: string, kmsKeyArn: string): PolicyDocument {
  const objects = `${bucketArn}/*`;
  return {
    Version: "2012-10-17",
    Statement: [
      denyInsecureTransport(bucketArn),
      {
        Sid: "DenyEncryptionOtherThanKms",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:PutObject",
        Resource: objects,
        Condition: {
          StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" },
          Null: { "s3:x-amz-server-side-encryption": "false" },
        },
      },
      {
        Sid: "DenyOtherKmsKeys",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:PutObject",
        Resource: objects,
        Condition: {
          StringNotEquals: { "s3:x-amz-server-side-encryption-aws-kms-key-id": kmsKeyArn },
          Null: { "s3:x-amz-server-side-encryption-aws-kms-key-id": "false" },
        },
      },
      {
        Sid: "DenyCustomerProvidedKeys",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:PutObject",
        Resource: objects,
        Condition: { Null: { "s3:x-amz-server-side-encryption-customer-algorithm": "false" } },
      },
    ],
  };
}

/**
 * Policy of the access-log bucket: TLS only, and S3's log delivery may write under `prefix` for
 * the given source buckets of this account only.
 */
export function accessLogBucketPolicy(logBucketArn: string, prefix: string, sourceBucketArns: string[], accountId: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      denyInsecureTransport(logBucketArn),
      {
        Sid: "AllowServerAccessLogDelivery",
        Effect: "Allow",
        Principal: { Service: "logging.s3.amazonaws.com" },
        Action: "s3:PutObject",
        Resource: `${logBucketArn}/${prefix}*`,
        Condition: {
          ArnLike: { "aws:SourceArn": sourceBucketArns },
          StringEquals: { "aws:SourceAccount": accountId },
        },
      },
    ],
  };
}

/**
 * Policy of the ALB's access-log bucket: TLS only, and Elastic Load Balancing may write under
 * `prefix`AWSLogs/<account>/: through the region's ELB account (regions before August 2022, such
 * as af-south-1) or the log-delivery service principal (newer regions).
 */
export function albLogBucketPolicy(logBucketArn: string, prefix: string, elbAccountArn: string, accountId: string): PolicyDocument {
  const objects = `${logBucketArn}/${prefix}AWSLogs/${accountId}/*`;
  return {
    Version: "2012-10-17",
    Statement: [
      denyInsecureTransport(logBucketArn),
      { Sid: "AllowElbAccountLogDelivery", Effect: "Allow", Principal: { AWS: elbAccountArn }, Action: "s3:PutObject", Resource: objects },
      {
        Sid: "AllowElbServiceLogDelivery", Effect: "Allow", Principal: { Service: "logdelivery.elasticloadbalancing.amazonaws.com" }, Action: "s3:PutObject", Resource: objects,
        Condition: { StringEquals: { "aws:SourceAccount": accountId } },
      },
    ],
  };
}

/** Bucket ARN and key ARN of each bucket, as the grant builders need them. */
export interface BucketArns {
  archive: string;
  pgbackrest: string;
  kmsKey: string;
}

export type Access = "read" | "write";

/**
 * IAM statements that give `access` to exactly `prefixes` and nothing else: listing is limited
 * by the s3:prefix condition, object actions by the resource ARN `bucket/prefix*`, KMS to the
 * backup key. Write is PutObject (and aborting its own uploads) plus read, so pgBackRest and
 * the restore check can read what they wrote; neither grants any Delete* or bucket-level change.
 */
export function grantStatements(arns: BucketArns, access: Access, prefixes: readonly BackupPrefix[]): Statement[] {
  if (prefixes.length === 0) throw new Error("a backup grant needs at least one prefix");
  const byBucket = new Map<string, string[]>();
  for (const p of new Set(prefixes)) {
    const bucket = arns[bucketOfArea(areaOfPrefix(p))];
    byBucket.set(bucket, [...(byBucket.get(bucket) ?? []), p]);
  }
  const verb = access === "write" ? "Write" : "Read";
  // In the archive a write carries its own retention (x-amz-object-lock-*), which S3 authorises as
  // s3:PutObjectRetention; COMPLIANCE retention can be lengthened, never shortened.
  const objectActions = (bucket: string) => access === "write"
    ? ["s3:GetObject", "s3:PutObject", ...(bucket === arns.archive ? ["s3:PutObjectRetention"] : []), "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    : ["s3:GetObject"];
  const statements: Statement[] = [];
  [...byBucket.entries()].sort(([a], [b]) => a.localeCompare(b)).forEach(([bucket, ps], i) => {
    const sorted = [...ps].sort();
    statements.push(
      { Sid: `List${verb}Backups${i}`, Effect: "Allow", Action: "s3:ListBucket", Resource: bucket, Condition: { StringLike: { "s3:prefix": sorted.map((p) => `${p}*`) } } },
      { Sid: `${verb}BackupObjects${i}`, Effect: "Allow", Action: objectActions(bucket), Resource: sorted.map((p) => `${bucket}/${p}*`) },
    );
  });
  statements.push({
    Sid: `${verb}BackupKey`,
    Effect: "Allow",
    Action: access === "write" ? ["kms:Decrypt", "kms:GenerateDataKey"] : "kms:Decrypt",
    Resource: arns.kmsKey,
  });
  return statements;
}

export type HostRoleName = "app" | "db";

/**
 * Where a host archives its logs: logs/<role>/<aws:userid>/. For an instance's role session
 * aws:userid is `<role id>:<instance id>` (AWS sets it; the host reads it with `aws sts
 * get-caller-identity`), so each instance has a prefix of its own that IAM can name.
 */
export function logArchivePrefix(role: HostRoleName, userId: string): string {
  return `${LOGS_PREFIX}${role}/${userId}/`;
}

/**
 * `nourishctl logs archive`: PutObject (with its retention) under the host's own prefix
 * logs/<role>/${aws:userid}/ and GenerateDataKey with the backup key; no read, no list, no
 * multipart (the archive is one PUT), so a host neither reads nor writes another host's logs.
 */
export function logArchiveStatements(arns: BucketArns, role: HostRoleName): Statement[] {
  return [
    { Sid: "ArchiveOwnLogs", Effect: "Allow", Action: ["s3:PutObject", "s3:PutObjectRetention"], Resource: `${arns.archive}/${logArchivePrefix(role, "${aws:userid}")}*` },
    { Sid: "ArchiveOwnLogsKey", Effect: "Allow", Action: "kms:GenerateDataKey", Resource: arns.kmsKey },
  ];
}

/**
 * `nourishctl report` on app-0: PutObject (with its retention) under reports/ and GenerateDataKey
 * with the backup key; no read, no list, no delete (written once, mailed, never read back).
 */
export function reportStoreStatements(arns: BucketArns): Statement[] {
  return [
    { Sid: "StoreReports", Effect: "Allow", Action: ["s3:PutObject", "s3:PutObjectRetention"], Resource: `${arns.archive}/${REPORTS_PREFIX}*` },
    { Sid: "StoreReportsKey", Effect: "Allow", Action: "kms:GenerateDataKey", Resource: arns.kmsKey },
  ];
}

/**
 * The one delete right in the estate: s3:DeleteObject under pgbackrest/ only, for `pgbackrest
 * expire`, which removes backups and WAL past repo1-retention-full. Without it the repository grows
 * forever. It is not s3:DeleteObjectVersion: in the versioned bucket a delete only adds a marker,
 * and the data stays recoverable for NONCURRENT_VERSION_DAYS.
 */
export function pgbackrestDeleteStatements(arns: BucketArns): Statement[] {
  return [{ Sid: "ExpirePgbackrestRepository", Effect: "Allow", Action: "s3:DeleteObject", Resource: `${arns.pgbackrest}/${PGBACKREST_PREFIX}*` }];
}

export function policyDocument(statements: Statement[]): PolicyDocument {
  return { Version: "2012-10-17", Statement: statements };
}
