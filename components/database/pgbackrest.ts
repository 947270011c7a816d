// Pure renderers for point-in-time recovery with pgBackRest: its configuration file and the
// postgresql.conf lines that archive every WAL segment to it. No Pulumi imports; the tests read
// the output with the real `pgbackrest` and `postgres`.
//
// The repository passphrase is a secret and never goes through Pulumi's plan or cloud-init user
// data: the Pulumi side renders a TEMPLATE (no `cipherPass`), whose cipher line holds
// CIPHER_PASS_PLACEHOLDER, and ships it as PGBACKREST_TEMPLATE_PATH. `nourishctl pitr setup`
// reads the passphrase from SSM (PGBACKREST_CIPHER_PARAMETER) and writes PGBACKREST_CONF_PATH,
// mode 0640 root:postgres. Tests pass `cipherPass` to get a finished file directly.

/** The one stanza of the estate. */
export const PGBACKREST_STANZA = "nourish-link";
/** The finished file (with the passphrase), written on the host by `nourishctl pitr setup`. */
export const PGBACKREST_CONF_PATH = "/etc/pgbackrest/pgbackrest.conf";
/** The template shipped by Pulumi: everything but the passphrase. */
export const PGBACKREST_TEMPLATE_PATH = "/etc/pgbackrest/pgbackrest.conf.in";
/** Where the archive settings land: a conf.d file of its own beside POSTGRESQL_CONF_PATH. */
export const ARCHIVE_CONF_PATH = "/etc/postgresql/15/main/conf.d/nourish-link-archive.conf";
/** Stands in for the passphrase in the template; nourishctl refuses a file that still holds it. */
export const CIPHER_PASS_PLACEHOLDER = "@PGBACKREST_CIPHER_PASS@";
/** The recovery point objective: a WAL segment is archived at least this often. */
export const MAX_ARCHIVE_TIMEOUT_SECONDS = 60;
/** Full backups are taken weekly (`nourishctl pitr backup` picks full when the last is this old). */
export const FULL_BACKUP_INTERVAL_DAYS = 7;

export type PgbackrestCredentials =
  /** The instance role (IMDS); the default and the only choice on a host. */
  | { type: "auto" }
  /** A fixed key pair: tests against s3rver only. */
  | { type: "shared"; key: string; secret: string };

/** Settings of a test S3 (s3rver behind nginx with a self-signed certificate). */
export interface PgbackrestTestStorage {
  /** repo1-storage-port: the HTTPS port of the front. */
  port?: number;
  /** repo1-s3-uri-style=path (s3rver has no virtual-host buckets). */
  pathStyle?: boolean;
  /** repo1-storage-verify-tls=n: only ever set here, explicitly, for a throwaway certificate. */
  insecureSkipTlsVerify?: boolean;
}

export interface PgbackrestConfSettings {
  bucket: string;
  region: string;
  /** Default s3.<region>.amazonaws.com. */
  endpoint?: string;
  /** Default { type: "auto" } (the instance role). */
  credentials?: PgbackrestCredentials;
  /** Prefix inside the bucket; default /pgbackrest. */
  repoPath?: string;
  /** repo1-retention-full: full backups kept (see pitrRetention). */
  retentionFull: number;
  /** repo1-retention-diff: differential backups kept. */
  retentionDiff: number;
  /**
   * The repository passphrase. Absent: the line holds CIPHER_PASS_PLACEHOLDER and the result is a
   * template for nourishctl to fill on the host. Never pass a real passphrase from Pulumi.
   */
  cipherPass?: string;
  /** Default zst. */
  compressType?: "zst" | "lz4";
  /** Parallel processes for backup/restore; default 2. */
  processMax?: number;
  /** The data directory; default Debian's /var/lib/postgresql/15/main. */
  pgPath?: string;
  /** Default 5432. */
  pgPort?: number;
  /** Default Debian's /var/run/postgresql. */
  pgSocketPath?: string;
  /** Async archiving queue; default /var/spool/pgbackrest (Debian's package creates it). */
  spoolPath?: string;
  /** Default pgBackRest's /var/log/pgbackrest. */
  logPath?: string;
  /** Default pgBackRest's /tmp/pgbackrest. */
  lockPath?: string;
  /** Tests only. */
  testStorage?: PgbackrestTestStorage;
}

export interface ArchiveSettings {
  /** archive_timeout: a segment is switched and archived at least this often; at most 60 (the RPO). */
  archiveTimeoutSeconds: number;
  /** Passed to pgbackrest as --config; default its own /etc/pgbackrest/pgbackrest.conf (tests only). */
  configPath?: string;
}

function requireInteger(where: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${where} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

// One ini value on one line: no line breaks, and nothing pgBackRest's parser would misread.
function iniValue(where: string, value: unknown, pattern = /^[^\s=\r\n\0]+$/): string {
  if (typeof value !== "string" || !pattern.test(value)) {
    throw new Error(`${where} must be a non-empty value without spaces, '=' or line breaks, got ${JSON.stringify(value)}`);
  }
  return value;
}

function absolutePath(where: string, value: unknown): string {
  const v = iniValue(where, value, /^\/[A-Za-z0-9_./@+-]*$/);
  return v;
}

/**
 * Retention rule. Full backups are weekly (FULL_BACKUP_INTERVAL_DAYS), differentials daily in
 * between. Keeping ceil(retentionDays / 7) + 1 fulls means that when the oldest is expired, the
 * next oldest is still at least retentionDays old, so any point of the last retentionDays days
 * can be recovered (pgBackRest keeps the WAL of every retained full). Differentials: the last 7,
 * one week of daily restore points that replay little WAL.
 */
export function pitrRetention(retentionDays: number): { retentionFull: number; retentionDiff: number } {
  requireInteger("backups.retentionDays", retentionDays, 1, 3650);
  return { retentionFull: Math.ceil(retentionDays / FULL_BACKUP_INTERVAL_DAYS) + 1, retentionDiff: 7 };
}

/** /etc/pgbackrest/pgbackrest.conf (or, without cipherPass, its template). */
export function renderPgbackrestConf(s: PgbackrestConfSettings): string {
  const bucket = iniValue("bucket", s.bucket, /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/);
  const region = iniValue("region", s.region, /^[a-z]{2}(-[a-z]+)+-\d$/);
  const endpoint = iniValue("endpoint", s.endpoint ?? `s3.${region}.amazonaws.com`, /^[A-Za-z0-9.-]+$/);
  const credentials = s.credentials ?? { type: "auto" };
  const retentionFull = requireInteger("retentionFull", s.retentionFull, 1, 9999999);
  const retentionDiff = requireInteger("retentionDiff", s.retentionDiff, 1, 9999999);
  const compressType = s.compressType ?? "zst";
  if (compressType !== "zst" && compressType !== "lz4") throw new Error(`compressType must be zst or lz4, got ${JSON.stringify(compressType)}`);
  const processMax = requireInteger("processMax", s.processMax ?? 2, 1, 64);
  const pgPort = requireInteger("pgPort", s.pgPort ?? 5432, 1, 65535);
  let cipherPass = CIPHER_PASS_PLACEHOLDER;
  if (s.cipherPass !== undefined) {
    cipherPass = iniValue("cipherPass", s.cipherPass, /^[\x21-\x7e]{20,}$/);
    if (cipherPass.includes(CIPHER_PASS_PLACEHOLDER)) throw new Error("cipherPass must be a real passphrase, not the placeholder");
  }

  const repo: string[] = [
    "repo1-type=s3",
    `repo1-s3-bucket=${bucket}`,
    `repo1-s3-region=${region}`,
    `repo1-s3-endpoint=${endpoint}`,
  ];
  if (credentials.type === "auto") {
    repo.push("repo1-s3-key-type=auto");
  } else if (credentials.type === "shared") {
    repo.push("repo1-s3-key-type=shared",
      `repo1-s3-key=${iniValue("credentials.key", credentials.key)}`,
      `repo1-s3-key-secret=${iniValue("credentials.secret", credentials.secret)}`);
  } else {
    throw new Error(`credentials.type must be auto or shared, got ${JSON.stringify((credentials as { type: unknown }).type)}`);
  }
  const t = s.testStorage ?? {};
  if (t.port !== undefined) repo.push(`repo1-storage-port=${requireInteger("testStorage.port", t.port, 1, 65535)}`);
  if (t.pathStyle === true) repo.push("repo1-s3-uri-style=path");
  if (t.insecureSkipTlsVerify === true) repo.push("repo1-storage-verify-tls=n");
  repo.push(
    `repo1-path=${absolutePath("repoPath", s.repoPath ?? "/pgbackrest")}`,
    `repo1-retention-full=${retentionFull}`,
    `repo1-retention-diff=${retentionDiff}`,
    "repo1-cipher-type=aes-256-cbc",
    `repo1-cipher-pass=${cipherPass}`,
  );

  const global = [
    `compress-type=${compressType}`,
    `process-max=${processMax}`,
    "start-fast=y",
    "archive-async=y",
    `spool-path=${absolutePath("spoolPath", s.spoolPath ?? "/var/spool/pgbackrest")}`,
  ];
  if (s.logPath !== undefined) global.push(`log-path=${absolutePath("logPath", s.logPath)}`);
  if (s.lockPath !== undefined) global.push(`lock-path=${absolutePath("lockPath", s.lockPath)}`);
  global.push("log-level-console=warn", "log-level-file=info");

  return [
    "# Managed by nourish-link-infra. Written by `nourishctl pitr setup`; mode 0640 root:postgres.",
    "# The repository is encrypted (aes-256-cbc); its passphrase lives in SSM Parameter Store.",
    "[global]",
    ...repo,
    ...global,
    "",
    `[${PGBACKREST_STANZA}]`,
    `pg1-path=${absolutePath("pgPath", s.pgPath ?? "/var/lib/postgresql/15/main")}`,
    `pg1-port=${pgPort}`,
    `pg1-socket-path=${absolutePath("pgSocketPath", s.pgSocketPath ?? "/var/run/postgresql")}`,
    "",
  ].join("\n");
}

/** postgresql.conf lines (for ARCHIVE_CONF_PATH) that archive every WAL segment to pgBackRest. */
export function renderArchiveSettings(s: ArchiveSettings): string {
  const timeout = s.archiveTimeoutSeconds;
  if (typeof timeout !== "number" || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_ARCHIVE_TIMEOUT_SECONDS) {
    throw new Error(`archiveTimeoutSeconds must be an integer from 1 to ${MAX_ARCHIVE_TIMEOUT_SECONDS} (the recovery point objective), got ${JSON.stringify(timeout)}`);
  }
  // The command sits inside '…' in postgresql.conf: the path must not break out of it.
  const config = s.configPath === undefined ? "" : ` --config=${absolutePath("configPath", s.configPath)}`;
  return [
    "# Managed by nourish-link-infra. Continuous WAL archiving to pgBackRest (point-in-time recovery).",
    "# archive_mode needs a restart; the rest a reload.",
    "wal_level = replica",
    "archive_mode = on",
    `archive_command = 'pgbackrest${config} --stanza=${PGBACKREST_STANZA} archive-push %p'`,
    `archive_timeout = ${timeout}`,
    "# pgBackRest backs up over the socket with pg_backup_start; a couple of senders for pg_basebackup",
    "# or a replica later.",
    "max_wal_senders = 3",
    "",
  ].join("\n");
}
