// Staging's restore rehearsal, the pure parts: what the latest pointer must say, what the two
// steps send, what the app host's summary must be, and the read-only access to prod's dumps
// (the grant staging's database host role gets, and the statements prod's bucket and key
// policies add for config-named readers). No Pulumi imports.
import type { PolicyDocument, Statement } from "../backups/policy";
import type { KeyPolicyStatement } from "../keys/policy";
import type { DocumentParams } from "../release/document";

/** Written by `nourishctl backup` after the manifest (BK_LATEST_POINTER in scripts/host/lib/backup.sh). */
export const LATEST_POINTER_KEY = "dumps/daily/latest.json";
/** Everything the rehearsal reads from prod's archive bucket: the dumps, their manifests, the pointer. */
export const DUMPS_PREFIX = "dumps/";
/** BK_KEY_RE, PostgreSQL dumps only (a rehearsal restores into PostgreSQL). */
const DUMP_KEY_RE = /^dumps\/(daily|monthly)\/db_backup_\d{8}_\d{6}\.dump$/;

export interface LatestBackup { key: string; sha256: string; size: number; time: string }

/** The pointer's JSON, checked: a key the document admits, a SHA-256, a size and a time. */
export function parseLatestPointer(body: string | undefined, where: string): LatestBackup {
  let p: Partial<LatestBackup>;
  try { p = JSON.parse(body ?? ""); } catch { throw new Error(`rehearsal: ${where} is not JSON (is it the pointer \`nourishctl backup\` writes?)`); }
  if (typeof p.key !== "string" || !DUMP_KEY_RE.test(p.key)) throw new Error(`rehearsal: ${where} names no PostgreSQL backup key (dumps/daily/db_backup_YYYYMMDD_HHMMSS.dump): ${JSON.stringify(String(p.key).slice(0, 80))}`);
  if (typeof p.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(p.sha256)) throw new Error(`rehearsal: ${where} has no sha256 (64 hex digits) for ${p.key}`);
  return { key: p.key, sha256: p.sha256, size: Number(p.size), time: String(p.time) };
}

/** The stack output `restoreRehearsal`: exactly this shape (the promotion reads it). */
export interface RehearsalSummary { ok: boolean; at: string; backupKey: string; backupSha256: string; seconds: number; backupAgeSeconds: number }

/** The last line `nourishctl restore-rehearsal-verify` prints, checked and reduced to the output's shape. */
export function rehearsalSummaryFrom(stdout: string | undefined): RehearsalSummary {
  const last = (stdout ?? "").split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? "";
  let s: Record<string, unknown>;
  try { s = JSON.parse(last); } catch { throw new Error(`rehearsal: 'nourishctl restore-rehearsal-verify' must print a JSON summary as its last line, got ${JSON.stringify(last.slice(0, 80))}`); }
  const out: RehearsalSummary = {
    ok: s.ok === true, at: String(s.at), backupKey: String(s.backupKey), backupSha256: String(s.backupSha256),
    seconds: Number(s.seconds), backupAgeSeconds: Number(s.backupAgeSeconds),
  };
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(out.at) || !Number.isFinite(out.seconds) || !Number.isFinite(out.backupAgeSeconds)) {
    throw new Error(`rehearsal: the summary of 'nourishctl restore-rehearsal-verify' is incomplete: ${last.slice(0, 200)}`);
  }
  return out;
}

/** The two steps `pulumi up` sends through the stack's SSM document, after the release. */
export function rehearsalSteps(latest: LatestBackup): { host: "db" | "app-0"; step: string; params: DocumentParams; triggers: string[] }[] {
  // Only a newer backup changes them: the plan shows a rehearsal exactly when there is one to run.
  const triggers = [`backup:${latest.key}`, `sha256:${latest.sha256}`];
  return [
    { host: "db", step: "restore", params: { verb: "restore-rehearsal", backupKey: latest.key, sha256: latest.sha256 }, triggers },
    { host: "app-0", step: "verify", params: { verb: "restore-rehearsal-verify" }, triggers },
  ];
}

/** kms:Decrypt only through S3, and only for objects of that bucket (the S3 Bucket Key's context is the bucket's ARN). */
function decryptViaS3(bucketArn: string, region: string): Record<string, Record<string, string | string[]>> {
  return {
    StringEquals: { "kms:ViaService": `s3.${region}.amazonaws.com` },
    StringLike: { "kms:EncryptionContext:aws:s3:arn": [bucketArn, `${bucketArn}/${DUMPS_PREFIX}*`] },
  };
}

/** Staging's database host role: list and read prod's dumps/, decrypt them through S3. Nothing else. */
export function rehearsalReadPolicy(bucketArn: string, kmsKeyArn: string, region: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "ListProdDumps", Effect: "Allow", Action: "s3:ListBucket", Resource: bucketArn, Condition: { StringLike: { "s3:prefix": [`${DUMPS_PREFIX}*`] } } },
      { Sid: "ReadProdDumps", Effect: "Allow", Action: "s3:GetObject", Resource: `${bucketArn}/${DUMPS_PREFIX}*` },
      { Sid: "DecryptProdDumps", Effect: "Allow", Action: "kms:Decrypt", Resource: kmsKeyArn, Condition: decryptViaS3(bucketArn, region) },
    ],
  };
}

/** An account id becomes its root principal (its own IAM then decides who); a role ARN stays. */
export function readerPrincipal(reader: string): string {
  return /^\d{12}$/.test(reader) ? `arn:aws:iam::${reader}:root` : reader;
}

/** Prod's archive bucket policy, added for backups.rehearsalReaders: list and read dumps/ only. */
export function rehearsalBucketStatements(bucketArn: string, readers: string[]): Statement[] {
  if (readers.length === 0) return [];
  const AWS = readers.map(readerPrincipal).sort();
  return [
    { Sid: "RehearsalListDumps", Effect: "Allow", Principal: { AWS }, Action: "s3:ListBucket", Resource: bucketArn, Condition: { StringLike: { "s3:prefix": [`${DUMPS_PREFIX}*`] } } },
    { Sid: "RehearsalReadDumps", Effect: "Allow", Principal: { AWS }, Action: "s3:GetObject", Resource: `${bucketArn}/${DUMPS_PREFIX}*` },
  ];
}

/** Prod's backup key policy, added for backups.rehearsalReaders: decrypt, through S3, for the archive bucket only. */
export function rehearsalKeyStatements(bucketArn: string, readers: string[], region: string): KeyPolicyStatement[] {
  if (readers.length === 0) return [];
  const AWS = readers.map(readerPrincipal).sort();
  return [{ Sid: "RehearsalDecryptDumps", Effect: "Allow", Principal: { AWS }, Action: "kms:Decrypt", Resource: "*", Condition: decryptViaS3(bucketArn, region) }];
}
