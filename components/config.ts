// The stack config: one zod schema, per-environment defaults, and the only place config is read.
// Every key lives under the `nourish-link:` namespace; structured keys are objects
// (`pulumi config set --path backups.retentionDays 35`). Invalid config fails here, before any
// resource is registered, with one line per problem naming the key.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { calendarProblem, isOnCalendar } from "./schedules/calendar";
import { cidrRange, isNetworkAddress, SUBNET_PREFIX } from "./network/cidr";
import { ARTIFACT_PATTERNS, RELEASES_PREFIX, SEMVER } from "./release/patterns";
import { CHECK_WARNING_ID, COMMAND_NAME, MANAGE_ARGUMENT, MANAGE_COMMAND } from "./app/commands";

export const PROJECT = "nourish-link";
export const ENVIRONMENTS = ["staging", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** Keys that hold secrets: they must be set with `pulumi config set --secret`. */
export const SECRET_KEYS = ["djangoSecretKey", "dbPassword"] as const;

/** Keys that existed once: setting one is an error that says what replaced it. */
export const REMOVED_KEYS: Record<string, string> = {
  deploySshKey: "was removed: releases run through AWS Systems Manager Run Command, no SSH key is needed (pulumi config rm deploySshKey)",
  "release.ssh": "was removed: releases run through AWS Systems Manager Run Command, not SSH (pulumi config rm --path release.ssh)",
};
export type SecretKey = (typeof SECRET_KEYS)[number];

const instanceType = z
  .string()
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, { error: "must be an EC2 instance type such as t3.small" });
const schedule = z.string().superRefine((expr, ctx) => {
  const problem = calendarProblem(expr);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
// One of the app's own jobs (app.scheduledCommands): arguments are data, never a shell line.
const scheduledCommand = z.strictObject({
  name: z.string().regex(COMMAND_NAME, { error: "must be lower-case letters, digits and dashes, at most 40 (its unit is nourish-link-manage-<name>)" }),
  schedule,
  command: z.array(z.string()).min(1, { error: "must name a manage.py command, such as [clearsessions]" }).superRefine((args, ctx) => {
    if (args.length > 0 && !MANAGE_COMMAND.test(args[0])) ctx.addIssue({ code: "custom", path: [0], message: "must be a manage.py command name (lower-case letters, digits, _), such as clearsessions" });
    args.slice(1).forEach((a, i) => {
      if (!MANAGE_ARGUMENT.test(a)) ctx.addIssue({ code: "custom", path: [i + 1], message: "must be one argument of letters, digits and . , _ : = @ + / - (no spaces, quotes or shell characters: it is passed as data, never through a shell)" });
    });
  }),
});
const cidr = z.cidrv4({ error: "must be an IPv4 CIDR block such as 203.0.113.10/32" });
const hostname = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, { error: "must be a lower-case DNS name such as app.nourishlink.rw" });
// The SSM document's `version` parameter admits exactly this pattern.
const semver = z.string().regex(new RegExp(`^${SEMVER}$`), { error: "must be a semantic version such as 1.4.2" });
const int = (min: number, max: number) => z.int().min(min).max(max);
/** CloudWatch Logs accepts only these retention periods. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;
const logRetention = z.union(LOG_RETENTION_DAYS.map((d) => z.literal(d)), {
  error: `must be one of CloudWatch's retention periods: ${LOG_RETENTION_DAYS.join(", ")}`,
});

// A git artifact is pinned: a full commit SHA, optionally its tag. Neither can start with `-`, so
// neither can be read as an option by git on the host (which checks them again).
const GIT_COMMIT_RE = /^[0-9a-f]{40}$/;
const GIT_TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._+\/-]*$/;
const GIT_URL_RES = [
  /^https:\/\/[A-Za-z0-9.-]+(:[0-9]+)?\/[A-Za-z0-9._~\/+-]+$/,
  /^ssh:\/\/(git@)?[A-Za-z0-9.-]+(:[0-9]+)?\/[A-Za-z0-9._~\/+-]+$/,
  /^git@[A-Za-z0-9.-]+:[A-Za-z0-9._~\/+-]+$/,
];

/**
 * Why a git URL may not be deployed from, or undefined. The URL lands in the plan's command text,
 * the state and releases.log, so it may carry no credentials: no user info on https (a token
 * alone is one), only `git@` on ssh (a user name, not a secret), no query string. Never quotes
 * the URL: it may hold a token.
 */
export function gitUrlProblem(url: string): string | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1].toLowerCase();
  const authority = (scheme ? url.slice(scheme.length + 3) : url).split(/[/?#]/)[0];
  const at = authority.lastIndexOf("@");
  const userinfo = at >= 0 ? authority.slice(0, at) : undefined;
  const ssh = scheme === "ssh" || scheme === undefined;
  if ((userinfo !== undefined && !(ssh && userinfo === "git")) || url.includes("?")) {
    return "must not carry credentials (a user name, password or token before @, or a query string): it is stored in the stack and shown in command logs; give the hosts a read-only deploy key instead (git@HOST:ORG/REPO)";
  }
  if (!GIT_URL_RES.some((re) => re.test(url))) return "must be a git URL such as https://HOST/ORG/REPO.git, ssh://git@HOST/ORG/REPO.git or git@HOST:ORG/REPO.git";
  return undefined;
}

/**
 * The names Pulumi gives a stack's BackupStore buckets (`backups-archive-1a2b3c4`: the component's
 * name, the bucket's, 7 hex digits). A release bucket must be none of them (the policy pack's
 * release-not-from-backups checks the plan the same way).
 */
export const BACKUP_BUCKET_NAME_RE = /^backups-(archive|pgbackrest|access-logs)-[0-9a-f]{7}$/;

const artifact = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("s3").describe("release tarball in S3"),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: "must be an S3 bucket name such as nourish-link-releases (no wildcard)" }).describe("the releases bucket: prod creates it with this name; staging must name prod's (its releaseBucket output); the app hosts may read the key's folder"),
    // The key lands in an IAM policy's Resource (the app hosts' read grant): a wildcard there
    // would grant more than the one release folder.
    key: z.string().regex(/^[A-Za-z0-9!_.'()-][A-Za-z0-9!_.'()\/-]*$/, { error: "must be a plain object key such as releases/nourish-link-1.4.2.tar.gz: letters, digits and !_.'()-/ only, no wildcard (* ? [ ]), no leading /" })
      .refine((k) => !k.split("/").some((s) => s === "" || s === "." || s === ".."), { error: "must not have empty, '.' or '..' path segments" })
      .describe("object key of the tarball, e.g. releases/nourish-link-1.4.2.tar.gz"),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, { error: "must be the tarball's SHA-256, 64 lower-case hex digits" }),
  }),
  z.strictObject({
    type: z.literal("git").describe("git checkout"),
    url: z.string().superRefine((url, ctx) => {
      const problem = gitUrlProblem(url);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }).describe("https://HOST/PATH, ssh://git@HOST/PATH or git@HOST:PATH; never credentials"),
    commit: z.string().regex(GIT_COMMIT_RE, { error: "must be the full commit SHA to deploy (40 lower-case hex digits, as `git rev-parse HEAD` prints): a branch, tag or short SHA can move" })
      .describe("the commit deployed; the host checks out exactly this commit"),
    tag: z.string().refine((t) => GIT_TAG_RE.test(t) && !/\.\.|\.lock$|[./]$|\/\./.test(t), {
      error: "must be a plain tag name such as v1.4.2 (letters, digits, . _ + - and /; not starting with - or ., no '..')",
    }).optional().describe("optional: the tag of that commit; the host refuses the release unless the tag resolves to the commit"),
  }),
], { error: "must be { type: s3, key, sha256 } or { type: git, url, commit, tag? }" });

/** Who may read prod's dumps for a rehearsal: a role ARN or an account id (never a wildcard). */
const REHEARSAL_READER_RE = /^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:role\/[A-Za-z0-9+=,.@_\/-]+)$/;

/** RDS's rules for a DBInstanceIdentifier, as stored (lower case). */
export const RDS_IDENTIFIER_RE = /^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$/;
/** Roles that are superusers or reserved on PostgreSQL and RDS: never the app's. */
// database.user and database.name are written into pg_hba.conf, where these words are keywords
// (`all` matches every role, superusers included), or are PostgreSQL's own names: never the app's.
const KEYWORD = "pg_hba.conf reads it as a keyword that matches other roles or databases, superusers included";
const PG_HBA_WORDS: Record<string, string> = {
  all: KEYWORD, sameuser: KEYWORD, samerole: KEYWORD, replication: KEYWORD,
  public: "PostgreSQL reserves it as a role name", none: "PostgreSQL reserves it as a role name",
  postgres: "it is PostgreSQL's superuser and maintenance database",
  template0: "it is one of PostgreSQL's template databases", template1: "it is one of PostgreSQL's template databases",
};
const notHbaWord = [
  (v: string) => !Object.hasOwn(PG_HBA_WORDS, v),
  { abort: true, error: (iss: { input?: unknown }) => `must not be ${JSON.stringify(iss.input)}: ${PG_HBA_WORDS[String(iss.input)]}` },
] as const;

export const RESERVED_DB_USERS = ["postgres", "rdsadmin", "rds_superuser", "rdsrepladmin", "rds_replication", "root", "admin", "template0", "template1"];

/**
 * A time zone the hosts' systemd accepts in OnCalendar (the schedules carry it): a zoneinfo name
 * in its canonical spelling (Intl accepts `africa/kigali`, systemd does not), or UTC.
 */
function isHostTimeZone(tz: string): boolean {
  if (tz === "UTC") return true;
  if (!isOnCalendar(`*-*-* 00:00:00 ${tz}`)) return false;
  try { return new Intl.DateTimeFormat("en", { timeZone: tz }).resolvedOptions().timeZone === tz; } catch { return false; }
}

export const stackConfigSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS).describe("staging or prod; defaults to the stack name"),
  domain: hostname.describe("public DNS name of the site"),
  network: z.strictObject({
    vpcCidr: cidr.describe("address range of the stack's VPC"),
    availabilityZones: int(2, 3).describe("availability zones the VPC spans"),
    adminCidrs: z.array(cidr).max(20).describe("addresses allowed to SSH to the hosts (only when sshAccess is on)"),
    sshAccess: z.boolean().describe("open port 22 to adminCidrs; off means SSM Session Manager only"),
    flowLogRetentionDays: logRetention.describe("days VPC flow logs are kept"),
  }),
  app: z.strictObject({
    instanceType: instanceType.describe("EC2 type of the gunicorn/nginx hosts"),
    count: int(1, 20).describe("number of app hosts; more than one puts them behind an ALB"),
    rootVolumeGb: int(8, 1024).describe("encrypted root volume of each app host"),
    gunicornWorkers: int(1, 64).optional().describe("gunicorn workers per host (default: 2 x vCPUs + 1)"),
    clientMaxBodySize: z.string().regex(/^[1-9]\d*[kKmM]?$/, { error: "must be an nginx size above 0 such as 10m (0 would turn the limit off)" }).describe("largest upload nginx accepts"),
    tls: z.enum(["alb", "nginx"]).describe("where HTTPS terminates: an ALB with an ACM certificate, or nginx with certbot on a single host"),
    scheduledCommands: z.array(scheduledCommand).superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((c, i) => {
        if (seen.has(c.name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `'${c.name}' is named twice: each command needs its own name (its unit is nourish-link-manage-<name>)` });
        seen.add(c.name);
      });
    }).describe("the app's own jobs: each `{ name, schedule, command }` is a timer on the first app host running the live release's `manage.py COMMAND ARGS…` as the app user with app.env (`nourishctl job run NAME`); a failure raises job-failed-app-manage-<name> (default: clearsessions daily; setting the list replaces it)"),
  }),
  database: z.strictObject({
    managed: z.boolean().describe("RDS PostgreSQL instead of PostgreSQL on EC2"),
    instanceType: instanceType.describe("EC2 type of the database host (db. prefix added for RDS)"),
    dataVolumeGb: int(20, 16384).describe("encrypted data volume (or RDS storage)"),
    // 32 at most: restore derives <name>_before_restore_YYYYmmdd_HHMMSS (name + 31), and PostgreSQL
    // truncates identifiers past 63 bytes, which can make a derived name the live database's.
    name: z.string().regex(/^[a-z_][a-z0-9_]{0,31}$/, { error: "must be a PostgreSQL identifier of at most 32 characters (restore derives <name>_before_restore_YYYYmmdd_HHMMSS, which must fit in 63)" })
      .refine(...notHbaWord).describe("database name"),
    user: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: "must be a PostgreSQL identifier" }).refine(...notHbaWord)
      .refine((u) => !RESERVED_DB_USERS.includes(u) && !/^(pg_|rds_|rds)/.test(u), { error: `must not be a superuser or reserved role (${"postgres, rdsadmin, rds_superuser, pg_*"}): the app connects with least privilege` }).describe("role the app connects as"),
    masterUser: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: "must be a PostgreSQL identifier" })
      .refine((u) => !RESERVED_DB_USERS.includes(u) && !/^(pg_|rds_|rds)/.test(u), { error: "must not be a name RDS or PostgreSQL reserves (postgres, rdsadmin, rds_*, pg_*)" })
      .describe("RDS's master user (managed only; its password is RDS-managed in Secrets Manager); the app's role database.user is created by nourishctl create-app-role"),
    multiAz: z.boolean().optional().describe("RDS Multi-AZ standby (managed only; default: on for prod with database.managed, off otherwise)"),
    // RDS's rules for DBInstanceIdentifier: 1-63 letters, digits, hyphens; a letter first; no
    // hyphen last or twice in a row. RDS stores it in lower case, and CloudWatch log groups carry it.
    rdsIdentifier: z.string().regex(RDS_IDENTIFIER_RE, { error: "must be an RDS instance identifier: 1-63 lower-case letters, digits and hyphens, a letter first, no hyphen last or twice in a row" })
      .optional().describe("RDS instance identifier (managed only; default nourish-link-<stack>; an instance created before it existed: set its current identifier, see RUNBOOK)"),
    slowQueryMs: int(0, 600000).describe("log_min_duration_statement, for the weekly slow-query review"),
  }),
  backups: z.strictObject({
    enabled: z.boolean().describe("nightly dumps and WAL archiving; required on prod"),
    schedule: schedule.describe("when the nightly backup runs (systemd OnCalendar)"),
    retentionDays: int(1, 3650).describe("days daily backups are kept"),
    monthlyRetentionMonths: int(0, 120).describe("months monthly backups (a copy of the 1st's) are kept in a colder storage class; 0 takes none"),
    localRetentionDays: int(0, 90).describe("days a local copy stays in backups/ on the database host"),
    pitr: z.boolean().describe("continuous WAL archiving with pgBackRest for point-in-time recovery"),
    objectLock: z.boolean().describe("S3 Object Lock (compliance mode) on the backup bucket"),
    rehearsalReaders: z.array(z.string().regex(REHEARSAL_READER_RE, { error: "must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME) or a 12-digit AWS account id" })).max(10)
      .describe("prod: who may read dumps/ and decrypt them for staging's restore rehearsal (staging's database host role and whoever previews staging, or staging's account id); read-only, nothing else"),
  }),
  maintenance: z.strictObject({
    timezone: z.string().refine(isHostTimeZone, { error: "must be an IANA time zone as spelled in /usr/share/zoneinfo, such as Africa/Kigali or UTC" }).describe("time zone of every schedule on the hosts"),
    healthCheckSchedule: schedule.describe("morning checklist: services, agents, connections, disk; on the app hosts the smoke checks too (`nourishctl smoke`: `manage.py check --deploy`, the health path through nginx, the app's smoke command)"),
    vacuumSchedule: schedule.describe("weekly VACUUM ANALYZE"),
    reindexSchedule: schedule.describe("monthly REINDEX and ANALYZE"),
    verifyBackupSchedule: schedule.describe("weekly `nourishctl backups verify --latest`: download the newest dump, check its SHA-256 and pg_restore --list (only with backups.enabled)"),
    weeklyReportSchedule: schedule.describe("weekly `nourishctl report weekly` on every app host: `manage.py check --deploy` and outdated packages of the live release (DeployCheckIssues, OutdatedPackages); on app-0 also the week's report (docs/MONITORING.md)"),
    monthlyReportSchedule: schedule.describe("monthly `nourishctl report monthly` on app-0: last calendar month's report to the backup bucket's reports/ prefix and the alert topic (docs/MONITORING.md)"),
    logArchiveSchedule: schedule.describe("monthly `nourishctl logs archive` on every host: last month's rotated logs to the backup bucket's logs/ prefix (only with backups.enabled)"),
    dbCheckSchedule: schedule.describe("weekly `nourishctl db check` on the database host: pg_amcheck of the app's tables and B-tree indexes, DbCorruption to CloudWatch (self-managed database only)"),
    verifyAllBackupsSchedule: schedule.describe("monthly `nourishctl backups verify --all`: every retained backup downloaded and checked against its manifest, not only the latest (only with backups.enabled)"),
  }),
  monitoring: z.strictObject({
    alertEmails: z.array(z.email({ error: "must be an email address", pattern: /^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$/ })).max(10).describe("who alarms notify; at least one on prod"),
    diskFreeMinPercent: int(5, 50).describe("`nourishctl status` fails, and each mount's disk alarm fires, when free disk falls below this (the manual: 20%)"),
    cpuHighPercent: int(50, 100).describe("alarm when a host's (or RDS's) CPU averages above this for 15 minutes"),
    cpuCreditsMin: int(0, 1000).describe("alarm when a burstable (t*) host's CPU credit balance falls below this"),
    memoryHighPercent: int(50, 99).describe("alarm when a host's used memory averages above this for 15 minutes (RDS: freeable memory below the rest)"),
    logRetentionDays: logRetention.describe("days host logs (nginx, gunicorn, PostgreSQL, nourishctl jobs) are kept in CloudWatch Logs"),
    journalMaxMb: int(64, 10240).describe("journald's cap on each host's persistent journal (SystemMaxUse, a journald.conf.d drop-in); the monthly `nourishctl logs archive` keeps the month's journal of the app and the database in the bucket"),
    logVolumeMaxMb: int(100, 100000).describe("`nourishctl status` fails, and the log-volume alarm fires, when /var/log on a host holds more than this (status names the largest file)"),
    http5xxPercent: int(1, 100).describe("alarm when more than this share of requests fail with 5xx over 5 minutes (twice in a row)"),
    p95Seconds: z.number().min(0.05).max(60).describe("alarm when the 95th percentile response time stays above this many seconds for 15 minutes"),
    errorLinesPer5Min: int(1, 100000).describe("alarm when gunicorn and Django log more ERROR/CRITICAL/Traceback lines than this in 5 minutes"),
    dbConnectionsPercent: int(10, 100).describe("alarm when database connections exceed this share of max_connections"),
    longQuerySeconds: int(10, 86400).describe("alarm when a database query has been running longer than this"),
    walArchiveStallSeconds: int(60, 86400).describe("alarm when a WAL segment has waited this long to be archived (PITR)"),
    backupSizeDropPercent: int(10, 100).describe("alarm when the nightly dump is this much smaller than the night before"),
    backupBucketMaxGb: int(1, 100000).describe("alarm (backup-bucket-size) when the backup archive bucket holds more than this many GB in S3 Standard (AWS/S3 BucketSizeBytes, daily): expiry stopped, or the dumps grew"),
    monthlyBudgetUsd: z.number().positive({ error: "must be a positive number of US dollars" }).max(1_000_000).optional()
      .describe("an AWS Budget on the account's monthly cost, alerting the alert topic at 80% and 100% (actual), and the figure the reports compare the month's cost with (default: none: only the account's owner knows what it should cost)"),
    uptimeCheck: z.boolean().describe("a Route 53 health check on https://<domain><release.healthPath> from Route 53's checkers in several regions, every 30 s; its alarm (uptime, in us-east-1 where Route 53 publishes) notifies a topic there with the same emails"),
    agentVersion: z.string().regex(/^\d+\.\d+\.\d+(b\d+)?$/, { error: "must be a CloudWatch agent version such as 1.300070.0" }).describe("CloudWatch agent release installed on every host at first boot from AWS's regional bucket (pinned; journald logs need 1.300070.0 or newer; docs/AGENTS.md)"),
  }),
  agents: z.strictObject({
    ssmVersion: z.string().regex(/^\d+\.\d+\.\d+\.\d+$/, { error: "must be an SSM agent release such as 3.3.3598.0 (four numbers; not latest)" })
      .describe("SSM agent release installed on every host at first boot from AWS's regional bucket (pinned; Run Command and Session Manager need it; docs/AGENTS.md)"),
  }),
  rehearsal: z.strictObject({
    enabled: z.boolean().optional().describe("restore prod's latest backup into this stack's database on every `pulumi up` with a newer backup, and weekly (default: on for staging with a database host; refused on prod)"),
    prodStack: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, { error: "must be a stack reference such as organization/nourish-link/prod (self-managed backend) or ORG/nourish-link/prod" })
      .describe("the prod stack whose backupBucket and backupKmsKeyArn outputs the rehearsal reads (unless rehearsal.source is set)"),
    source: z.strictObject({
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: "must be an S3 bucket name" }).describe("prod's backup bucket"),
      kmsKeyArn: z.string().regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/, { error: "must be a KMS key ARN such as arn:aws:kms:af-south-1:123456789012:key/UUID" }).describe("prod's backup key"),
    }).optional().describe("prod's backup bucket and key when prod is in another account (instead of rehearsal.prodStack)"),
    scrubColumns: z.array(z.string().regex(/^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$/, { error: "must be table.column (lower-case PostgreSQL identifiers, schema public), such as families.email" })).max(100)
      .describe("text columns replaced by a digest before the app sees the restored data"),
    schedule: schedule.describe("when the database host's weekly rehearsal restores prod's latest backup (systemd OnCalendar)"),
    verifySchedule: schedule.describe("when the app hosts finish the weekly rehearsal (migrate, checks, metrics): after rehearsal.schedule"),
  }),
  release: z.strictObject({
    version: semver.describe("the release the stack runs; rolling back is setting it and release.artifact back"),
    artifact: artifact.describe("where release.version comes from, the only source the app hosts fetch from; git: the full commit SHA, an optional tag that must point at it, a URL without credentials"),
    keepReleases: int(2, 50).describe("releases kept on each host for rollback"),
    healthPath: z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/, { error: "must be a URL path starting with / (letters, digits and ._~-/ only: it is written into nginx and health checks)" }).describe("URL that must answer 200 before a release gets traffic"),
    stepTimeoutSeconds: int(60, 172800).describe("how long one release step may run on a host before it fails (SSM Run Command's timeout)"),
    silencedChecks: z.array(z.string().regex(CHECK_WARNING_ID, { error: "must be a Django system check warning id such as security.W004 (errors cannot be silenced)" }))
      .describe("warnings of `manage.py check --deploy` that the smoke checks (`nourishctl smoke`: after a switch, after a restore, the morning check) accept; any other warning fails them"),
  }),
  promotion: z.strictObject({
    maxRehearsalAgeDays: int(1, 90).describe("`npm run promote` refuses unless staging's last restore rehearsal succeeded within this many days (read from the stack promoted into)"),
  }),
  ci: z.strictObject({
    github: z.strictObject({
      repository: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, { error: "must be a GitHub repository as owner/name, such as nourishlink/nourish-link-infra (no wildcard)" }).optional()
        .describe("GitHub repository whose Actions may deploy this stack: creates the CI role (stack output ciRoleArn); unset: no CI role"),
      appRepository: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, { error: "must be a GitHub repository as owner/name, such as nourishlink/nourish-link (no wildcard)" }).optional()
        .describe("the app's GitHub repository: jobs of its main branch may assume the publisher role (stack output releasePublisherRoleArn), which only puts new releases in the releases bucket; needs ci.github.repository"),
      environment: z.string().regex(/^[A-Za-z0-9_.-]{1,255}$/, { error: "must be a GitHub environment name (letters, digits, . _ -; no wildcard)" }).optional()
        .describe("the GitHub environment whose jobs may assume the CI role (default: the stack's environment, staging or prod)"),
      oidcProviderArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/token\.actions\.githubusercontent\.com$/, { error: "must be the ARN of the account's GitHub OIDC provider (arn:aws:iam::ACCOUNT:oidc-provider/token.actions.githubusercontent.com)" }).optional()
        .describe("an existing GitHub OIDC provider (an account has at most one); unset: the stack creates it"),
      stateBucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: "must be an S3 bucket name (no wildcard)" }).optional()
        .describe("the S3 bucket of the self-managed Pulumi backend (s3://BUCKET): the CI role may read and write this project's stack state there"),
      stateKeyArn: z.string().regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/, { error: "must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)" }).optional()
        .describe("the KMS key of the state bucket's encryption or of an awskms:// secrets provider: the preview role may decrypt with it"),
      deployPolicyArns: z.array(z.string().regex(/^arn:aws[a-z-]*:iam::(aws|\d{12}):policy\/[A-Za-z0-9+=,.@_\/-]+$/, { error: "must be an IAM policy ARN" })).max(10)
        .describe("policies attached to the CI role so that `pulumi up` may change the estate (it creates IAM roles: effectively administrator); empty: releases and state only"),
    }),
  }),
  djangoSecretKey: z.string().min(50, { error: "must be at least 50 characters" }).optional().describe("Django SECRET_KEY (secret; generated when unset)"),
  dbPassword: z.string().min(16, { error: "must be at least 16 characters" }).optional().describe("app database password (secret; generated when unset)"),
});

export type StackSettings = z.infer<typeof stackConfigSchema>;

const CIDR_RE = /^(\d{1,3})(\.\d{1,3}){3}\/\d{1,2}$/;
/** The broadest admin range accepted: a /16 (65 536 addresses). */
export const MAX_ADMIN_PREFIX = 16;

function overlaps(a: string, b: string): boolean {
  const [a0, a1] = cidrRange(a);
  const [b0, b1] = cidrRange(b);
  return a0 <= b1 && b0 <= a1;
}

function toIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/**
 * Rules across keys. They run on the merged settings even when other keys are invalid (zod
 * skips refinements then), so one run lists every problem; each rule checks the types it reads.
 */
function crossKeyProblems(c: any): [string, string][] {
  const out: [string, string][] = [];
  const fail = (key: string, message: string) => out.push([key, message]);
  if (c.environment === "prod" && c.backups?.enabled === false) fail("backups.enabled", "must be true on prod: prod may not run without backups");
  if (c.environment === "prod" && Array.isArray(c.monitoring?.alertEmails) && c.monitoring.alertEmails.length === 0) fail("monitoring.alertEmails", "must list at least one address on prod: alarms need a destination");
  const admin = c.network?.adminCidrs;
  if (c.network?.sshAccess === true && Array.isArray(admin) && admin.length === 0) fail("network.adminCidrs", "must list at least one address when network.sshAccess is true");
  if (Array.isArray(admin)) {
    const cidrs = admin.map((a: unknown) => (typeof a === "string" && CIDR_RE.test(a) ? a : undefined));
    cidrs.forEach((a, i) => {
      if (a === undefined) return;
      if (a.endsWith("/0")) fail(`network.adminCidrs[${i}]`, "must not be open to the whole internet; list your admin addresses");
      else if (Number(a.split("/")[1]) < MAX_ADMIN_PREFIX) fail(`network.adminCidrs[${i}]`, `is broader than /${MAX_ADMIN_PREFIX}: list your admin addresses, not a whole provider's range`);
      if (!isNetworkAddress(a)) fail(`network.adminCidrs[${i}]`, `must be a network address (${cidrRange(a).map(toIp)[0]}/${a.split("/")[1]}): ${a} has host bits set`);
      const j = cidrs.findIndex((b, k) => k < i && b !== undefined && overlaps(a, b));
      if (j >= 0) fail(`network.adminCidrs[${i}]`, cidrs[j] === a ? `duplicates network.adminCidrs[${j}]` : `overlaps network.adminCidrs[${j}] (${cidrs[j]})`);
    });
    // Split ranges (0.0.0.0/1 + 128.0.0.0/1) are as broad as one: count what the list covers.
    const total = cidrs.reduce((n, a) => n + (a ? cidrRange(a)[1] - cidrRange(a)[0] + 1 : 0), 0);
    if (total > 2 ** (32 - MAX_ADMIN_PREFIX)) fail("network.adminCidrs", `together cover ${total} addresses, more than a /${MAX_ADMIN_PREFIX} (${2 ** (32 - MAX_ADMIN_PREFIX)})`);
  }
  const vpc = c.network?.vpcCidr;
  if (typeof vpc === "string" && CIDR_RE.test(vpc)) {
    const prefix = Number(vpc.split("/")[1]);
    const zones = typeof c.network?.availabilityZones === "number" ? c.network.availabilityZones : 2;
    // A public and a private /20 per zone must fit: 2 × zones subnets, rounded up to a power of 2.
    const widest = SUBNET_PREFIX - Math.ceil(Math.log2(2 * zones));
    if (!isNetworkAddress(vpc)) fail("network.vpcCidr", `must be a network address such as ${toIp(cidrRange(vpc)[0])}/${prefix}: ${vpc} has host bits set`);
    if (prefix < 16 || prefix > widest) fail("network.vpcCidr", `must be a /16 to /${widest} block: AWS allows /16 at most, and ${2 * zones} subnets of /${SUBNET_PREFIX} (network.availabilityZones: ${zones}) must fit`);
  }
  if (c.app?.tls === "nginx" && typeof c.app?.count === "number" && c.app.count > 1) fail("app.tls", "must be alb when app.count is more than 1: certbot on nginx serves a single host");
  if (c.database?.multiAz === true && c.database?.managed === false) fail("database.multiAz", "requires database.managed: true (Multi-AZ is an RDS feature)");
  if (typeof c.database?.masterUser === "string" && c.database.masterUser === (c.database.user ?? "dusangire")) {
    fail("database.masterUser", "must differ from database.user: the app connects with least privilege, never as RDS's master user");
  }
  if (c.database?.rdsIdentifier !== undefined && c.database?.managed === false) fail("database.rdsIdentifier", "requires database.managed: true (it names the RDS instance)");
  if (c.backups?.pitr === true && c.backups?.enabled === false) fail("backups.pitr", "requires backups.enabled: true");
  if (c.environment === "prod" && c.rehearsal?.enabled === true) fail("rehearsal.enabled", "must be false on prod: a restore rehearsal replaces the stack's live database with prod's backup (it runs on staging)");
  else if (c.rehearsal?.enabled === true && c.database?.managed === true) fail("rehearsal.enabled", "requires database.managed: false (the rehearsal runs on the stack's database host); set it to false");
  const { localRetentionDays: local, retentionDays: kept } = c.backups ?? {};
  if (typeof local === "number" && typeof kept === "number" && local > kept) fail("backups.localRetentionDays", "must not exceed backups.retentionDays");
  // What the hosts fetch may have no part that git, the AWS CLI or a path could read as an option
  // or `..`: refused here, by key, rather than on a host halfway through a release.
  const artifact = c.release?.artifact;
  if (artifact?.type === "s3" && typeof artifact.bucket === "string" && BACKUP_BUCKET_NAME_RE.test(artifact.bucket)) {
    fail("release.artifact.bucket", "must not be a backup bucket of this package (backups-archive-…, backups-pgbackrest-…): the app hosts' read grant would reach its dumps");
  }
  if (artifact?.type === "s3" && typeof artifact.key === "string" && !artifact.key.startsWith(RELEASES_PREFIX)) {
    fail("release.artifact.key", `must be under ${RELEASES_PREFIX} (the only folder of the releases bucket the app hosts may read), such as ${RELEASES_PREFIX}1.4.2/nourish-link-1.4.2.tar.gz`);
  }
  if (c.ci?.github?.appRepository !== undefined && c.ci?.github?.repository === undefined) fail("ci.github.appRepository", "requires ci.github.repository (the publisher role uses the CI role's GitHub OIDC provider)");
  if (artifact?.type === "s3" && typeof artifact.bucket === "string" && typeof artifact.key === "string" && !ARTIFACT_PATTERNS.s3Object.test(`s3://${artifact.bucket}/${artifact.key}`)) {
    fail("release.artifact.key", "must be an object key of letters, digits, . _ - + = ~ and /, with no segment starting with . or -");
  }
  if (artifact?.type === "git" && typeof artifact.url === "string" && gitUrlProblem(artifact.url) === undefined && !ARTIFACT_PATTERNS.gitUrl.test(artifact.url)) {
    fail("release.artifact.url", "must have no path segment starting with . or -");
  }
  if (artifact?.type === "git" && typeof artifact.tag === "string" && !ARTIFACT_PATTERNS.tag.test(artifact.tag)) {
    fail("release.artifact.tag", "must have no part starting with - or . after a /");
  }
  return out;
}

/** The typed config every component receives. Secret keys are secret Outputs, never strings. */
export type StackConfig = Omit<StackSettings, SecretKey> & {
  stack: string;
  /** `aws:region`, the provider's own key. */
  region: string;
  secrets: Partial<Record<SecretKey, pulumi.Output<string>>>;
};

type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer _U)[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

const COMMON: DeepPartial<StackSettings> = {
  network: { availabilityZones: 2, adminCidrs: [], sshAccess: false },
  app: { rootVolumeGb: 20, clientMaxBodySize: "10m", scheduledCommands: [{ name: "clearsessions", schedule: "*-*-* 03:15:00", command: ["clearsessions"] }] },
  database: { managed: false, name: "dusangire", user: "dusangire", masterUser: "nourish_admin", slowQueryMs: 500 },
  backups: { enabled: true, schedule: "*-*-* 02:00:00", monthlyRetentionMonths: 12, localRetentionDays: 7, pitr: true, rehearsalReaders: [] },
  maintenance: {
    timezone: "Africa/Kigali",
    healthCheckSchedule: "*-*-* 06:00:00",
    vacuumSchedule: "Sun *-*-* 23:00:00",
    reindexSchedule: "*-*-01 03:30:00",
    verifyBackupSchedule: "Sun *-*-* 04:00:00",
    logArchiveSchedule: "*-*-01 04:30:00",
    weeklyReportSchedule: "Sun *-*-* 22:00:00",
    dbCheckSchedule: "Wed *-*-* 03:00:00",
    verifyAllBackupsSchedule: "*-*-02 05:00:00",
    monthlyReportSchedule: "*-*-01 07:00:00",
  },
  monitoring: {
    alertEmails: [], diskFreeMinPercent: 20, cpuHighPercent: 85, cpuCreditsMin: 20, memoryHighPercent: 90,
    http5xxPercent: 5, p95Seconds: 2, errorLinesPer5Min: 10, dbConnectionsPercent: 80, longQuerySeconds: 300, walArchiveStallSeconds: 900,
    backupSizeDropPercent: 50, backupBucketMaxGb: 50, agentVersion: "1.300070.0", journalMaxMb: 1024, logVolumeMaxMb: 4096,
  },
  // An SSM agent release of early 2026; docs/AGENTS.md says how to move the pin.
  agents: { ssmVersion: "3.3.3598.0" },
  release: { keepReleases: 5, healthPath: "/health/", stepTimeoutSeconds: 1800, silencedChecks: [] },
  // A week between rehearsals (the manual's weekly restore test) and a day's slack.
  promotion: { maxRehearsalAgeDays: 8 },
  ci: { github: { deployPolicyArns: [] } },
  // Prod's nightly backup runs at 02:00: the rehearsal restores it on Saturday morning, the app hosts finish an hour later.
  rehearsal: { prodStack: `organization/${PROJECT}/prod`, scrubColumns: [], schedule: "Sat *-*-* 05:00:00", verifySchedule: "Sat *-*-* 06:00:00" },
};

/** Per-environment defaults: prod is sized and protected for real traffic, staging is cheap. */
export const DEFAULTS: Record<Environment, DeepPartial<StackSettings>> = {
  staging: merge(COMMON, {
    network: { vpcCidr: "10.41.0.0/16", flowLogRetentionDays: 30 },
    app: { instanceType: "t3.small", count: 1, tls: "nginx" },
    database: { instanceType: "t3.small", dataVolumeGb: 20 },
    backups: { retentionDays: 14, objectLock: false },
    monitoring: { logRetentionDays: 30, uptimeCheck: false },
  }),
  prod: merge(COMMON, {
    network: { vpcCidr: "10.40.0.0/16", flowLogRetentionDays: 90 },
    app: { instanceType: "t3.medium", count: 2, tls: "alb" },
    database: { instanceType: "m6i.large", dataVolumeGb: 100 },
    backups: { retentionDays: 35, objectLock: true },
    monitoring: { logRetentionDays: 90, uptimeCheck: true },
  }),
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep merge for config layers: objects merge key by key, anything else (arrays too) replaces. */
export function merge<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(out[k], v);
  return out as T;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "object") return "an object";
  return String(v);
}

/** Turns a zod issue into "must be …", the wording every config error uses. */
function phrase(iss: z.core.$ZodRawIssue): string {
  // A secret's value is never echoed back, not even in an error.
  if ((SECRET_KEYS as readonly PropertyKey[]).includes(iss.path?.[0] as PropertyKey)) return iss.code === "too_small" ? `must be at least ${iss.minimum} characters` : "must be a string";
  switch (iss.code) {
    case "invalid_type":
      return iss.input === undefined ? "is required" : `must be ${article(iss.expected)}, got ${describeValue(iss.input)}`;
    case "too_small":
      return iss.origin === "array" ? `must list at least ${iss.minimum} item(s)` : iss.origin === "string" ? `must be at least ${iss.minimum} characters` : `must be at least ${iss.minimum}, got ${describeValue(iss.input)}`;
    case "too_big":
      return iss.origin === "array" ? `must list at most ${iss.maximum} item(s)` : iss.origin === "string" ? `must be at most ${iss.maximum} characters` : `must be at most ${iss.maximum}, got ${describeValue(iss.input)}`;
    case "invalid_value":
      return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(", ")}, got ${describeValue(iss.input)}`;
    case "invalid_union":
      return `has an unexpected value ${describeValue(iss.input)}`;
    default:
      return iss.message ?? "is invalid";
  }
}

function article(t: string): string {
  if (t === "int") return "an integer";
  if (t === "object") return "an object";
  if (t === "array") return "a list";
  return `a ${t}`;
}

function keyName(path: readonly PropertyKey[]): string {
  return `${PROJECT}:` + path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("");
}

/**
 * Validates raw settings (the values of `nourish-link:*` keys, JSON already parsed) for an
 * environment, with that environment's defaults under them. Pure: used by loadConfig and tests.
 */
export function parseSettings(raw: Record<string, unknown>, stack: string): StackSettings {
  // Before any merge: `__proto__` would set the merged object's prototype instead of a key.
  const unsafe = unsafeKeys(raw, []);
  if (unsafe.length) throw new ConfigError(unsafe.map((p) => `${keyName(p)} is not allowed: __proto__, constructor and prototype are never settings`));
  const envName = raw.environment ?? ((ENVIRONMENTS as readonly string[]).includes(stack) ? stack : undefined);
  if (envName === undefined) {
    throw new ConfigError([`${PROJECT}:environment is required for stack '${stack}': set it to one of ${ENVIRONMENTS.join(", ")}`]);
  }
  const defaults = Object.hasOwn(DEFAULTS, envName as string) ? DEFAULTS[envName as Environment] : {};
  const removed: string[] = [];
  const rawLeft: Record<string, unknown> = { ...raw };
  for (const [key, why] of Object.entries(REMOVED_KEYS)) {
    const [top, sub] = key.split(".");
    const holder = sub ? rawLeft[top] : rawLeft;
    if (!isPlainObject(holder) || !Object.hasOwn(holder, sub ?? top)) continue;
    removed.push(`${PROJECT}:${key} ${why}`);
    if (sub) rawLeft[top] = Object.fromEntries(Object.entries(holder).filter(([k]) => k !== sub));
    else delete rawLeft[top];
  }
  const merged = merge({ environment: envName, ...defaults }, rawLeft);
  const result = stackConfigSchema.safeParse(merged, { error: phrase });
  const problems = [...removed, ...(result.error?.issues ?? []).flatMap((iss) =>
    iss.code === "unrecognized_keys"
      ? iss.keys.map((k) => `${keyName([...iss.path, k])} is not a known setting`)
      : [`${keyName(iss.path)} ${iss.message}`],
  )];
  problems.push(...crossKeyProblems(merged).map(([key, message]) => `${PROJECT}:${key} ${message}`));
  // The default RDS identifier carries the stack's name, which Pulumi allows more freely than RDS.
  const db = result.data?.database;
  if (db?.managed && db.rdsIdentifier === undefined && !RDS_IDENTIFIER_RE.test(`${PROJECT}-${stack}`)) {
    problems.push(`${PROJECT}:database.rdsIdentifier must be set: the default ${PROJECT}-${stack} is not an RDS instance identifier (lower-case letters, digits and single hyphens)`);
  }
  if (problems.length || !result.success) throw new ConfigError(problems);
  // Unset: a staging stack with a database host of its own rehearses prod's restore; nothing else does.
  result.data.rehearsal.enabled ??= result.data.environment === "staging" && !result.data.database.managed;
  return result.data;
}

export const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Paths of keys (at any depth) that could reach an object's prototype. */
export function unsafeKeys(v: unknown, at: PropertyKey[]): PropertyKey[][] {
  if (Array.isArray(v)) return v.flatMap((x, i) => unsafeKeys(x, [...at, i]));
  if (!isPlainObject(v)) return [];
  return Object.keys(v).flatMap((k) => (UNSAFE_KEYS.has(k) ? [[...at, k]] : unsafeKeys(v[k], [...at, k])));
}

/**
 * Namespaces a stack file may use: ours, the AWS provider's and Pulumi's own. A key anywhere else
 * (`nourish_link:database`) would be ignored without a word, its whole block with it.
 */
export const KNOWN_NAMESPACES = [PROJECT, "aws", "pulumi"];

function namespaceProblem(fullKey: string): string | undefined {
  const colon = fullKey.indexOf(":");
  const ns = colon < 0 ? "" : fullKey.slice(0, colon);
  if (KNOWN_NAMESPACES.includes(ns)) return undefined;
  const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");
  const near = KNOWN_NAMESPACES.find((k) => squash(k) === squash(ns));
  return near
    ? `${fullKey} is under the misspelled namespace '${ns}': it would be ignored; did you mean ${near}:${fullKey.slice(colon + 1)}?`
    : `${fullKey} is under an unknown namespace '${ns}': stack config keys belong to ${KNOWN_NAMESPACES.map((n) => `${n}:`).join(", ")}`;
}

/** Reads `nourish-link:*` from the Pulumi runtime, validates it, and wraps secrets. */
export function loadConfig(): StackConfig {
  const stack = pulumi.getStack();
  const raw: Record<string, unknown> = {};
  const problems: string[] = [];
  const all = pulumi.runtime.allConfig();
  const region = all["aws:region"];
  if (region === undefined) problems.push("aws:region is required (pulumi config set aws:region af-south-1)");
  else if (!/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(region)) problems.push(`aws:region must be an AWS region such as af-south-1, got ${describeValue(region)}`);
  for (const [fullKey, value] of Object.entries(all)) {
    const nsProblem = namespaceProblem(fullKey);
    if (nsProblem) problems.push(nsProblem);
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    const key = fullKey.slice(PROJECT.length + 1);
    if (UNSAFE_KEYS.has(key)) {
      problems.push(`${fullKey} is not allowed: __proto__, constructor and prototype are never settings`);
      continue;
    }
    const isSecretKey = (SECRET_KEYS as readonly string[]).includes(key);
    // Reported by parseSettings as removed, whichever way it was set.
    if (Object.hasOwn(REMOVED_KEYS, key)) { raw[key] = "[removed]"; continue; }
    const isSecret = isConfigSecret(fullKey);
    if (isSecretKey && !isSecret) problems.push(`${fullKey} must be set with --secret (pulumi config set --secret ${key} …)`);
    if (!isSecretKey && isSecret) problems.push(`${fullKey} is not a secret setting: set it without --secret so it is not mistaken for one`);
    raw[key] = isSecretKey ? value : parseValue(value);
  }
  let settings: StackSettings;
  try {
    settings = parseSettings(raw, stack);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError([...problems, ...e.problems]);
    throw e;
  }
  if (problems.length) throw new ConfigError(problems);

  const secrets: StackConfig["secrets"] = {};
  const rest: Record<string, unknown> = { ...settings };
  for (const k of SECRET_KEYS) {
    const v = settings[k];
    if (v !== undefined) secrets[k] = pulumi.secret(v);
    delete rest[k];
  }
  return { ...(rest as Omit<StackSettings, SecretKey>), stack, region: region as string, secrets };
}

// The SDK exports isConfigSecret at runtime but marks it @internal, so its typing is stripped.
const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret(k: string): boolean }).isConfigSecret;

/** Pulumi hands structured values to the program as JSON text, scalars as plain text. */
function parseValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
