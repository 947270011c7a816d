// Pure renderers for the PostgreSQL 15 host: the conf.d snippet and pg_hba.conf.
// No Pulumi imports: typed settings in, file text out, validated by the real `postgres`.
import { isIP } from "net";

export interface PostgresSizing {
  memoryMib: number;
  vcpus: number;
}

export interface PostgresTuning {
  sharedBuffersMb: number;
  effectiveCacheSizeMb: number;
  workMemMb: number;
  maintenanceWorkMemMb: number;
  maxConnections: number;
  maxWorkerProcesses: number;
  maxParallelWorkers: number;
  maxParallelWorkersPerGather: number;
}

export interface PostgresConfSettings {
  sizing: PostgresSizing;
  /** log_min_duration_statement: statements slower than this feed the weekly slow-query review. */
  slowQueryMs: number;
  /** Default 5432. */
  port?: number;
  /** Default '*': the security group and pg_hba.conf decide who gets in. */
  listenAddresses?: string;
  sslCertFile: string;
  sslKeyFile: string;
}

export interface PgHbaSettings {
  database: string;
  user: string;
  appCidrs: string[];
}

/** Where the snippet lands on the host; Debian's postgresql.conf has `include_dir = 'conf.d'`. */
export const POSTGRESQL_CONF_PATH = "/etc/postgresql/15/main/conf.d/nourish-link.conf";
export const PG_HBA_PATH = "/etc/postgresql/15/main/pg_hba.conf";
export const PG_IDENT_PATH = "/etc/postgresql/15/main/pg_ident.conf";
/** The pg_ident.conf map by which nourishctl (the postgres OS user) logs in as the app's role. */
export const PG_IDENT_MAP = "nourishctl";

const MIN_MEMORY_MIB = 512;

function requireInteger(where: string, value: number, min: number, max: number, unit = ""): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${where} must be an integer from ${min} to ${max}${unit}, got ${String(value)}`);
  }
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * PGTune-style rule for a dedicated web/OLTP database host:
 * - shared_buffers = 25% of RAM, effective_cache_size = 75% (what the OS page cache will hold);
 * - maintenance_work_mem = RAM/16, capped at 2 GB (VACUUM/REINDEX/CREATE INDEX gain nothing above);
 * - max_connections = 100 for up to 2 vCPUs, +20 per extra vCPU, capped at 200: gunicorn workers
 *   scale with app hosts, but more backends than cores only add contention;
 * - work_mem = (RAM - shared_buffers) / (max_connections * 3), bounded to [4 MB, 64 MB], since one
 *   query may use several sort/hash nodes at once;
 * - max_worker_processes = max(8, vCPUs) (8 is PostgreSQL's default), max_parallel_workers =
 *   vCPUs, max_parallel_workers_per_gather = max(1, vCPUs / 2) so one query can't take every core.
 */
export function postgresTuning(s: PostgresSizing): PostgresTuning {
  requireInteger("sizing.memoryMib", s.memoryMib, MIN_MEMORY_MIB, 16 * 1024 * 1024, " MiB");
  requireInteger("sizing.vcpus", s.vcpus, 1, 1024);
  const ram = s.memoryMib;
  const sharedBuffersMb = Math.floor(ram / 4);
  const maxConnections = clamp(100 + 20 * (s.vcpus - 2), 100, 200);
  return {
    sharedBuffersMb,
    effectiveCacheSizeMb: Math.floor((ram * 3) / 4),
    workMemMb: clamp(Math.floor((ram - sharedBuffersMb) / (maxConnections * 3)), 4, 64),
    maintenanceWorkMemMb: Math.min(Math.floor(ram / 16), 2048),
    maxConnections,
    maxWorkerProcesses: Math.max(8, s.vcpus),
    maxParallelWorkers: s.vcpus,
    maxParallelWorkersPerGather: Math.max(1, Math.floor(s.vcpus / 2)),
  };
}

// A value goes inside '…' in postgresql.conf; quotes and line breaks would break out of it.
function confString(where: string, value: string): string {
  if (typeof value !== "string" || value.length === 0 || /['\\\r\n\0]/.test(value)) {
    throw new Error(`${where} must be a non-empty string without quotes, backslashes or line breaks, got ${JSON.stringify(value)}`);
  }
  return `'${value}'`;
}

function absolutePath(where: string, value: string): string {
  const quoted = confString(where, value);
  if (!value.startsWith("/")) throw new Error(`${where} must be an absolute path, got ${JSON.stringify(value)}`);
  return quoted;
}

function listenAddresses(value: string): string {
  const where = "listenAddresses";
  confString(where, value);
  const parts = value.split(",").map((p) => p.trim());
  // '*', IP addresses or host names, comma-separated: what postgres itself accepts.
  const ok = parts.every((p) => p === "*" || isIP(p) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(p));
  if (!ok) throw new Error(`${where} must be '*' or a comma-separated list of addresses, got ${JSON.stringify(value)}`);
  return `'${parts.join(",")}'`;
}

/** The conf.d snippet for POSTGRESQL_CONF_PATH. Memory values carry units ('512MB'). */
export function renderPostgresqlConf(s: PostgresConfSettings): string {
  const t = postgresTuning(s.sizing);
  requireInteger("slowQueryMs", s.slowQueryMs, 0, 24 * 3600 * 1000, " ms");
  const port = s.port ?? 5432;
  requireInteger("port", port, 1, 65535);
  const lines = [
    "# Managed by nourish-link-infra (Pulumi). Local edits are overwritten on the next deploy.",
    `# Tuned for ${s.sizing.memoryMib} MiB RAM and ${s.sizing.vcpus} vCPU(s), PGTune-style (web/OLTP).`,
    "",
    "# Connections",
    `listen_addresses = ${listenAddresses(s.listenAddresses ?? "*")}`,
    `port = ${port}`,
    `max_connections = ${t.maxConnections}`,
    "",
    "# Memory",
    `shared_buffers = ${t.sharedBuffersMb}MB`,
    `effective_cache_size = ${t.effectiveCacheSizeMb}MB`,
    `work_mem = ${t.workMemMb}MB`,
    `maintenance_work_mem = ${t.maintenanceWorkMemMb}MB`,
    "",
    "# Parallelism",
    `max_worker_processes = ${t.maxWorkerProcesses}`,
    `max_parallel_workers = ${t.maxParallelWorkers}`,
    `max_parallel_workers_per_gather = ${t.maxParallelWorkersPerGather}`,
    "",
    "# Storage: EBS gp3 is SSD, so random reads cost little more than sequential ones",
    "random_page_cost = 1.1",
    "effective_io_concurrency = 200",
    "",
    "# TLS only, modern protocols; pg_hba.conf rejects plaintext TCP",
    "ssl = on",
    `ssl_cert_file = ${absolutePath("sslCertFile", s.sslCertFile)}`,
    `ssl_key_file = ${absolutePath("sslKeyFile", s.sslKeyFile)}`,
    "ssl_min_protocol_version = 'TLSv1.2'",
    "password_encryption = 'scram-sha-256'",
    "",
    "# Logging for the manual's weekly slow-query review",
    `log_min_duration_statement = ${s.slowQueryMs}`,
    "log_line_prefix = '%m [%p] %q%u@%d '",
    "log_lock_waits = on",
    "log_temp_files = 0",
    "",
    "# Query statistics (needs a restart to load; CREATE EXTENSION pg_stat_statements in the database)",
    "shared_preload_libraries = 'pg_stat_statements'",
    "pg_stat_statements.track = all",
  ];
  return lines.join("\n") + "\n";
}

// Names as Django and the manual use them: nothing in them needs escaping inside pg_hba.conf's quotes.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

// Quoted, a pg_hba.conf keyword (all, sameuser, samerole, replication) matches only the role or
// database of that name: config refuses those names, and the file never reads them as keywords.
const quoted = (name: string): string => `"${name}"`;

function cidr(where: string, value: string): string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(typeof value === "string" ? value : "");
  const family = m ? isIP(m[1]) : 0;
  const bits = m ? Number(m[2]) : NaN;
  if (!m || family === 0 || bits > (family === 4 ? 32 : 128)) {
    throw new Error(`${where} must be an address/prefix CIDR such as 10.40.1.0/24, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** pg_hba.conf: the app connects over TLS with SCRAM from its subnets only; everything else is refused. */
export function renderPgHba(s: PgHbaSettings): string {
  for (const [where, v] of [["database", s.database], ["user", s.user]] as const) {
    if (typeof v !== "string" || !IDENTIFIER.test(v)) {
      throw new Error(`${where} must be a lower-case SQL identifier (a-z, 0-9, _), got ${JSON.stringify(v)}`);
    }
  }
  if (!Array.isArray(s.appCidrs) || s.appCidrs.length === 0) {
    throw new Error("appCidrs must list at least one CIDR, or the app could never connect");
  }
  const cidrs = s.appCidrs.map((c, i) => cidr(`appCidrs[${i}]`, c));
  const row = (...cols: string[]): string => cols.map((c, i) => (i < cols.length - 1 ? c.padEnd(i === 3 ? 20 : 10) : c)).join(" ");
  return [
    "# Managed by nourish-link-infra (Pulumi). Local edits are overwritten on the next deploy.",
    "# First match wins.",
    row("# TYPE", "DATABASE", "USER", "ADDRESS", "METHOD"),
    "# Operators and nourishctl act as the postgres OS user over the local socket.",
    row("local", "all", "postgres", "", "peer"),
    "# nourishctl restores and checks a dump as the app's role, never as a superuser: the postgres",
    "# OS user may log in as it over the local socket (pg_ident.conf, map nourishctl).",
    row("local", "all", quoted(s.user), "", `peer map=${PG_IDENT_MAP}`),
    "# The app: TLS and SCRAM only, from its own subnets, to its own database.",
    ...cidrs.map((c) => row("hostssl", quoted(s.database), quoted(s.user), c, "scram-sha-256")),
    "# Everything else over TCP, including any plaintext attempt, is refused.",
    row("host", "all", "all", "0.0.0.0/0", "reject"),
    row("host", "all", "all", "::/0", "reject"),
    "",
  ].join("\n");
}

/**
 * pg_ident.conf: the postgres OS user (nourishctl on the database host) may log in as the app's
 * role, so that a restore runs what a dump holds with the app's rights, not a superuser's.
 */
export function renderPgIdent(s: { user: string }): string {
  if (typeof s.user !== "string" || !IDENTIFIER.test(s.user)) {
    throw new Error(`user must be a lower-case SQL identifier (a-z, 0-9, _), got ${JSON.stringify(s.user)}`);
  }
  return [
    "# Managed by nourish-link-infra (Pulumi). Local edits are overwritten on the next deploy.",
    "# MAPNAME       SYSTEM-USERNAME  PG-USERNAME",
    `${PG_IDENT_MAP.padEnd(15)} postgres         ${s.user}`,
    "",
  ].join("\n");
}

/**
 * pg_createcluster's settings for every cluster created on the db host, in the include_dir of
 * Debian's own /etc/postgresql-common/createcluster.conf (its conffile stays the package's). Written
 * before the postgresql package is installed (cloud-init's write_files runs first), so the main
 * cluster the package creates already has them: data checksums, which make PostgreSQL refuse a page
 * the disk changed under it (an ERROR naming the block) instead of reading garbage. They can only be
 * chosen at initdb (or with pg_checksums on a stopped cluster).
 */
export const CREATECLUSTER_DROPIN_PATH = "/etc/postgresql-common/createcluster.d/nourish-link.conf";
export const INITDB_OPTIONS = ["--data-checksums"] as const;

export function renderCreateClusterConf(): string {
  return [
    "# Managed by nourish-link-infra (components/database/postgresql.ts). Read by pg_createcluster.",
    `initdb_options = '${INITDB_OPTIONS.join(" ")}'`,
    "",
  ].join("\n");
}
