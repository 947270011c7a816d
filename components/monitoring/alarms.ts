// Pure definitions of the alarms on the host's own metrics: which metric, which dimensions, and
// the window that turns "no datapoint" into "the procedure silently stopped". No Pulumi imports:
// typed config in, plain MetricAlarm arguments out (test/monitoring.test.ts checks them against
// what nourishctl publishes).
import { StackConfig } from "../config";
import { METRIC_NAMESPACE } from "./metrics";
import { needsSmokeProbe, SMOKE_METRIC } from "../app/commands";

export { METRIC_NAMESPACE };

/** CloudWatch's limits on an alarm's window (PutMetricAlarm). */
export const MAX_ALARM_WINDOW_SECONDS = 7 * 86400;
const SHORT_PERIOD_MAX_WINDOW_SECONDS = 86400;

/**
 * "No success in the last 26 h", on hourly buckets. A successful run publishes one datapoint
 * (value 1) in the hour it finishes; an hour without one is missing data, which counts as
 * breaching. The alarm needs all MISSING_EVALUATION_PERIODS (27) hourly Sums below 1, so:
 * - a success at most 26 h ago always lies in one of the last 27 hourly buckets, so it stays OK;
 * - once about 27 h pass without a success every bucket is breaching and it goes to ALARM.
 * So it fires 26-27 h (give or take CloudWatch's aggregation delay) after the last success:
 * nightly runs 24 h apart, plus RandomizedDelaySec=15min, a run that takes longer than usual or a
 * one-hour clock change never trip it; one missed night does, about 2-3 h after the next slot.
 * 3600 s x 27 = 97,200 s: within CloudWatch's 7-day limit, and an hour-long period is not capped
 * at one day as shorter periods are. Not one 86,400-s period: any window exactly a day long
 * misses a run that finishes a few minutes later than the night before.
 */
export const MISSING_PERIOD_SECONDS = 3600;
export const MISSING_WINDOW_HOURS = 26;
export const MISSING_EVALUATION_PERIODS = MISSING_WINDOW_HOURS + 1;

/** One metric an alarm reads: what a publisher sends (namespace, name, dimensions) and how it is aggregated. */
export interface MetricStat<D = string> {
  namespace: string;
  metricName: string;
  dimensions: Record<string, D>;
  /** Sum, Average, Maximum, Minimum, or a percentile such as p95. */
  stat: string;
  period: number;
}

/**
 * Arguments of one aws.cloudwatch.MetricAlarm, minus its actions (the component adds the topic,
 * and `ec2Action` where it says so). D is the type of dimension values: strings in tests,
 * Pulumi Outputs (instance ids, load balancer names) in the component.
 */
export interface MetricAlarmSpec<D = string> {
  /** Resource name stem and alarm name suffix. */
  id: string;
  /** The alarm's name in CloudWatch (MetricAlarm's `name`): what the notification email shows. */
  name: string;
  alarmDescription: string;
  /** One metric … */
  namespace?: string;
  metricName?: string;
  dimensions?: Record<string, D>;
  statistic?: "Sum" | "Average" | "Maximum" | "Minimum";
  extendedStatistic?: string;
  period?: number;
  /** … or an expression over several (`m1`, `m2`, …). */
  expression?: { expression: string; label: string; metrics: Record<string, MetricStat<D>> };
  evaluationPeriods: number;
  datapointsToAlarm: number;
  threshold: number;
  comparisonOperator: "LessThanThreshold" | "GreaterThanThreshold" | "GreaterThanOrEqualToThreshold" | "LessThanOrEqualToThreshold";
  treatMissingData: "breaching" | "notBreaching" | "missing" | "ignore";
  /** EC2's own action besides notifying: recover (system check) or reboot (instance check). */
  ec2Action?: "recover" | "reboot";
}

/** Every metric an alarm reads, as MetricStats. */
export function alarmMetrics<D>(a: MetricAlarmSpec<D>): MetricStat<D>[] {
  if (a.expression) return Object.values(a.expression.metrics);
  return [{ namespace: a.namespace!, metricName: a.metricName!, dimensions: a.dimensions ?? {}, stat: a.extendedStatistic ?? a.statistic!, period: a.period! }];
}

/** Throws unless CloudWatch would accept the alarm's period and window. */
export function checkAlarmWindow(a: { id: string; period: number; evaluationPeriods: number; datapointsToAlarm: number }): void {
  const window = a.period * a.evaluationPeriods;
  if (!(a.period === 10 || a.period === 20 || a.period === 30 || (a.period > 0 && a.period % 60 === 0))) throw new Error(`${a.id}: period ${a.period} must be 10, 20, 30 or a multiple of 60`);
  if (window > MAX_ALARM_WINDOW_SECONDS) throw new Error(`${a.id}: period x evaluationPeriods is ${window} s, over CloudWatch's 7 days`);
  if (a.period < 3600 && window > SHORT_PERIOD_MAX_WINDOW_SECONDS) throw new Error(`${a.id}: with a period under an hour the window may not exceed one day (${window} s)`);
  if (a.datapointsToAlarm < 1 || a.datapointsToAlarm > a.evaluationPeriods) throw new Error(`${a.id}: datapointsToAlarm must be 1..evaluationPeriods`);
}

/**
 * The row of docs/RUNBOOK.md's "Alarms" table that says what to do about alarm `id`: per-host
 * alarms share a `<host>-…` row, job failures a `job-failed-<role>-<job>` row. Every description
 * ends by naming it (test/monitoring-coverage.test.ts resolves each one in the RUNBOOK).
 */
export function runbookRow(id: string, perHost: boolean): string {
  if (perHost) return id.replace(/^(app-\d+|db)-/, "<host>-");
  return id.replace(/^job-failed-(app|db)-.*$/, "job-failed-<role>-<job>");
}
const seeRunbook = (id: string, perHost = false): string => `See docs/RUNBOOK.md, "Alarms", \`${runbookRow(id, perHost)}\`.`;

/** An alarm that fires when a nightly db-host procedure has not reported success for ~26 h. */
function missingSuccess(config: StackConfig, id: string, metricName: string, what: string, verb: string, unit: string): MetricAlarmSpec<string> {
  const spec: MetricAlarmSpec = {
    id,
    name: `nourish-link-${config.stack}-${id}`,
    alarmDescription:
      `NOURISH LINK ${config.stack}: no successful ${what} on the database host for ${MISSING_WINDOW_HOURS} h ` +
      `(${METRIC_NAMESPACE}/${metricName} missing). On the host: systemctl status ${unit}; journalctl -u ${unit}; ` +
      `then run \`nourishctl ${verb}\`, which clears the alarm when it succeeds. ${seeRunbook(id)}`,
    namespace: METRIC_NAMESPACE,
    metricName,
    // Exactly what `metric` in nourishctl sends: Stack=$STACK,Role=$ROLE from host.env. No unit:
    // the host publishes without one, and an alarm with a unit would never match its datapoints.
    dimensions: { Stack: config.stack, Role: "db" },
    statistic: "Sum",
    period: MISSING_PERIOD_SECONDS,
    evaluationPeriods: MISSING_EVALUATION_PERIODS,
    datapointsToAlarm: MISSING_EVALUATION_PERIODS,
    threshold: 1,
    comparisonOperator: "LessThanThreshold",
    // No datapoint is the failure we are looking for: a backup that fails, hangs or never starts
    // publishes nothing.
    treatMissingData: "breaching",
  };
  checkAlarmWindow({ ...spec, period: spec.period! });
  return spec;
}

/**
 * The alarms on the nightly backups of a self-managed database host: `nourishctl backup`
 * (BackupSuccess) and, with PITR, `nourishctl pitr backup` (PitrBackupSuccess). None without
 * backups, and none for RDS (no host runs nourishctl there, so nothing would ever report).
 */
export function backupAlarms(config: StackConfig): MetricAlarmSpec[] {
  if (!config.backups.enabled || config.database.managed) return [];
  const alarms = [missingSuccess(config, "db-backup-missing", "BackupSuccess", "nightly backup (nourishctl backup)", "backup", "nourish-link-backup")];
  if (config.backups.pitr) {
    alarms.push(missingSuccess(config, "db-pitr-backup-missing", "PitrBackupSuccess", "pgBackRest backup (nourishctl pitr backup)", "pitr backup", "nourish-link-pitr-backup"));
  }
  return alarms;
}

/** Days without a successful restore rehearsal before its alarm fires: a weekly run, a day's slack. */
export const REHEARSAL_STALE_DAYS = 8;

/**
 * Staging's restore rehearsal: RestoreRehearsalAgeSeconds, which the app hosts publish hourly
 * (`nourishctl restore-rehearsal-verify --report-age`), above 8 days for two hours, or missing
 * (the hosts stopped reporting). A gauge, because CloudWatch cannot look 8 days back for a
 * missing success (an alarm's window is at most 7 days).
 */
export function rehearsalAlarms(config: StackConfig): MetricAlarmSpec[] {
  if (!config.rehearsal.enabled || config.database.managed) return [];
  const spec: MetricAlarmSpec = {
    id: "restore-rehearsal-stale",
    name: `nourish-link-${config.stack}-restore-rehearsal-stale`,
    alarmDescription:
      `NOURISH LINK ${config.stack}: no restore rehearsal of prod's backup has succeeded for ${REHEARSAL_STALE_DAYS} days ` +
      `(${METRIC_NAMESPACE}/RestoreRehearsalAgeSeconds, or the app hosts stopped reporting it). On the database host: journalctl -u nourish-link-restore-rehearsal; ` +
      "on the app host: journalctl -u nourish-link-restore-rehearsal-verify; then `nourishctl restore-rehearsal --latest` and `nourishctl restore-rehearsal-verify`. " + seeRunbook("restore-rehearsal-stale"),
    namespace: METRIC_NAMESPACE,
    metricName: "RestoreRehearsalAgeSeconds",
    dimensions: { Stack: config.stack, Role: "app" },
    statistic: "Maximum",
    period: 3600,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    threshold: REHEARSAL_STALE_DAYS * 86400,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "breaching",
  };
  checkAlarmWindow({ ...spec, period: spec.period! });
  return [spec];
}

/** Where Route 53 publishes its health checks' metrics, and so where their alarms must live. */
export const UPTIME_REGION = "us-east-1";

/**
 * The outside view (monitoring.uptimeCheck): Route 53's checkers ask https://<domain><healthPath>
 * every 30 s from several places; HealthCheckStatus is 1 while most of them get a 2xx/3xx. Three
 * minutes down raises the alarm; no data (the check deleted, Route 53 silent) counts as down.
 */
export function uptimeAlarms<D>(config: StackConfig, healthCheckId: D): MetricAlarmSpec<D>[] {
  const spec: MetricAlarmSpec<D> = {
    id: "uptime",
    name: `nourish-link-${config.stack}-uptime`,
    alarmDescription:
      `NOURISH LINK ${config.stack}: https://${config.domain}${config.release.healthPath} has not answered Route 53's health checkers for 3 minutes ` +
      "(from outside AWS: DNS, the load balancer or TLS, not only the hosts). Check `nourishctl status` on the app hosts, the ALB's targets, " +
      "the certificate and the domain's DNS records. " + seeRunbook("uptime"),
    namespace: "AWS/Route53",
    metricName: "HealthCheckStatus",
    dimensions: { HealthCheckId: healthCheckId },
    statistic: "Minimum",
    period: 60,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    threshold: 1,
    comparisonOperator: "LessThanThreshold",
    treatMissingData: "breaching",
  };
  checkAlarmWindow({ ...spec, period: spec.period! });
  return [spec];
}

// ---------------------------------------------------------------------------------------------
// Every other way the estate breaks. Each alarm names exactly the metric its publisher sends:
// AWS itself (AWS/EC2, AWS/ApplicationELB, AWS/RDS), the CloudWatch agent (agent.ts), a log
// metric filter (logs.ts) or nourishctl (metrics.ts); test/monitoring-coverage.test.ts checks
// both sides. What each one means and what to do: docs/RUNBOOK.md, "Alarms".

/** A host the alarms watch. */
export interface WatchedHost<D> {
  /** Resource name stem: `db`, `app-0`, … */
  name: string;
  role: "app" | "db";
  instanceId: D;
  instanceType: string;
}

export interface WatchedEstate<D> {
  hosts: WatchedHost<D>[];
  /** ALB dimensions (`arnSuffix`es) when app.tls is alb. */
  alb?: { loadBalancer: D; targetGroup: D };
  /** The RDS instance when database.managed. */
  rds?: { identifier: D };
  /** The scheduled jobs of each role that runs any (schedules/jobs.ts), for the job-failure alarms. */
  jobs: { role: "app" | "db"; ids: string[] }[];
  /** The backup archive bucket's name, when backups.enabled (its size alarm). */
  backupBucket?: D;
}

/** What `nourishctl job-failed` (lib/jobs.sh) sends when a job unit fails (OnFailure=). */
export const JOB_FAILED_METRIC = "JobFailed";
/** The lowest max_connections postgresTuning gives (2 vCPUs): the RDS connection alarm's base. */
export const MIN_MAX_CONNECTIONS = 100;
/** AWS's advice for MaximumUsedTransactionIDs: act well before wraparound at 2^31. */
export const MAX_USED_XIDS = 1_000_000_000;
/** RDS freeable memory below this is swapping territory for a small instance. */
export const RDS_MIN_FREEABLE_BYTES = 256 * 1024 ** 2;

const AGENT = "CWAgent";

function ec2Stat<D>(metricName: string, instanceId: D, stat: MetricStat["stat"], period: number): Pick<MetricAlarmSpec<D>, "namespace" | "metricName" | "dimensions" | "statistic" | "period"> {
  return { namespace: "AWS/EC2", metricName, dimensions: { InstanceId: instanceId }, statistic: stat as MetricAlarmSpec["statistic"], period };
}

/** What the hosts' own publishers produce, by role (agent.ts and logs.ts supply them). */
export interface HostPublishers {
  processes(role: "app" | "db"): { name: string; by: string; value: string }[];
  mounts(role: "app" | "db"): string[];
  fstype: string;
  logNamespace: string;
}

export function estateAlarms<D>(config: StackConfig, estate: WatchedEstate<D>, host: HostPublishers): MetricAlarmSpec<D>[] {
  const m = config.monitoring;
  const out: MetricAlarmSpec<D>[] = [];
  const add = (a: Omit<MetricAlarmSpec<D>, "name" | "alarmDescription"> & { means: string; todo: string }) => {
    const { means, todo, ...spec } = a;
    const full: MetricAlarmSpec<D> = {
      ...spec,
      name: `nourish-link-${config.stack}-${a.id}`,
      alarmDescription: `NOURISH LINK ${config.stack}: ${means}. ${todo} ${seeRunbook(a.id, estate.hosts.some((h) => a.id.startsWith(`${h.name}-`) && a.dimensions?.InstanceId === h.instanceId))}`,
    };
    const period = spec.period ?? Object.values(spec.expression?.metrics ?? {})[0]?.period;
    checkAlarmWindow({ id: a.id, period: period!, evaluationPeriods: spec.evaluationPeriods, datapointsToAlarm: spec.datapointsToAlarm });
    out.push(full);
  };

  for (const h of estate.hosts) {
    const on = `on ${h.name}`;
    add({
      id: `${h.name}-status-system`, ...ec2Stat("StatusCheckFailed_System", h.instanceId, "Maximum", 60), evaluationPeriods: 2, datapointsToAlarm: 2,
      threshold: 1, comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "missing", ec2Action: "recover",
      means: `AWS's system status check fails ${on} (hardware or host network)`, todo: "EC2 recovers the instance onto new hardware (same id, volumes, address); check it comes back with `nourishctl status`.",
    });
    add({
      id: `${h.name}-status-instance`, ...ec2Stat("StatusCheckFailed_Instance", h.instanceId, "Maximum", 60), evaluationPeriods: 3, datapointsToAlarm: 3,
      threshold: 1, comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "missing", ec2Action: "reboot",
      means: `the instance status check fails ${on} (kernel, memory exhaustion, network config)`, todo: "EC2 reboots it; check it comes back with `nourishctl status`; if it repeats, read the console output (aws ec2 get-console-output).",
    });
    add({
      id: `${h.name}-cpu-high`, ...ec2Stat("CPUUtilization", h.instanceId, "Average", 300), evaluationPeriods: 3, datapointsToAlarm: 3,
      threshold: m.cpuHighPercent, comparisonOperator: "GreaterThanThreshold", treatMissingData: "missing",
      means: `CPU ${on} averaged above ${m.cpuHighPercent}% for 15 minutes`, todo: "Find the process (top, `nourishctl status --json`); a size up is app.instanceType / database.instanceType.",
    });
    if (/^t\d/.test(h.instanceType)) {
      add({
        id: `${h.name}-cpu-credits-low`, ...ec2Stat("CPUCreditBalance", h.instanceId, "Minimum", 300), evaluationPeriods: 3, datapointsToAlarm: 3,
        threshold: m.cpuCreditsMin, comparisonOperator: "LessThanThreshold", treatMissingData: "missing",
        means: `the burstable instance ${h.name} is running out of CPU credits (below ${m.cpuCreditsMin})`, todo: "It will be throttled to its baseline soon: find the load (`nourishctl status --json`, top), or move to a larger or non-burstable type.",
      });
    }
    add({
      id: `${h.name}-memory-high`, namespace: AGENT, metricName: "mem_used_percent", dimensions: { InstanceId: h.instanceId }, statistic: "Average", period: 300,
      evaluationPeriods: 3, datapointsToAlarm: 3, threshold: m.memoryHighPercent, comparisonOperator: "GreaterThanThreshold",
      // The agent's heartbeat: no memory figure means the agent (or the host) stopped reporting.
      treatMissingData: "breaching",
      means: `used memory ${on} averaged above ${m.memoryHighPercent}% for 15 minutes, or the CloudWatch agent stopped reporting`,
      todo: "`nourishctl status` (says whether the CloudWatch agent runs), `free -h`; gunicorn workers are app.gunicornWorkers.",
    });
    for (const mount of host.mounts(h.role)) {
      const slug = mount === "/" ? "root" : mount.replace(/^\/|\/$/g, "").replace(/\//g, "-");
      add({
        id: `${h.name}-disk-${slug}`, namespace: AGENT, metricName: "disk_used_percent", dimensions: { InstanceId: h.instanceId, path: mount as unknown as D, fstype: host.fstype as unknown as D },
        statistic: "Maximum", period: 300, evaluationPeriods: 2, datapointsToAlarm: 2,
        threshold: 100 - m.diskFreeMinPercent, comparisonOperator: "GreaterThanThreshold", treatMissingData: "missing",
        means: `${mount} ${on} has less than ${m.diskFreeMinPercent}% free (monitoring.diskFreeMinPercent)`,
        todo: "`nourishctl status` (disk), `du -xsh /var/log/* /srv/nourish-link/*`; old local backups go after backups.localRetentionDays; grow the volume (app.rootVolumeGb, database.dataVolumeGb).",
      });
    }
    for (const p of host.processes(h.role)) {
      add({
        id: `${h.name}-process-${p.name}`, namespace: AGENT, metricName: "procstat_lookup_pid_count",
        dimensions: { InstanceId: h.instanceId, [p.by]: p.value as unknown as D, pid_finder: "native" as unknown as D },
        statistic: "Minimum", period: 60, evaluationPeriods: 3, datapointsToAlarm: 3, threshold: 1, comparisonOperator: "LessThanThreshold",
        treatMissingData: "breaching",
        means: `no ${p.name} process ${on} for 3 minutes (systemd's restarts did not bring it back)`,
        todo: `\`nourishctl status\`, \`journalctl -u ${p.name === "postgres" ? "postgresql@15-main" : p.name === "gunicorn" ? "'nourish-link-app@*'" : p.name}\`; a new app host runs no gunicorn until its first release.`,
      });
    }
  }

  // Requests: the ALB's own metrics behind an ALB, the nginx access log's otherwise.
  const logNs = host.logNamespace;
  if (estate.alb) {
    const lb = { LoadBalancer: estate.alb.loadBalancer };
    const elb = (metricName: string, stat: string, period = 300): MetricStat<D> => ({ namespace: "AWS/ApplicationELB", metricName, dimensions: lb, stat, period });
    add({
      id: "http-5xx-rate", expression: { expression: "100 * (FILL(m1, 0) + FILL(m2, 0)) / m3", label: "5xx %", metrics: { m1: elb("HTTPCode_Target_5XX_Count", "Sum"), m2: elb("HTTPCode_ELB_5XX_Count", "Sum"), m3: elb("RequestCount", "Sum") } },
      evaluationPeriods: 2, datapointsToAlarm: 2, threshold: m.http5xxPercent, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      means: `more than ${m.http5xxPercent}% of requests failed with 5xx for 10 minutes`, todo: "Read the app log group (…/app) and `nourishctl release list`; a bad release: `nourishctl rollback`.",
    });
    add({
      id: "http-p95", namespace: "AWS/ApplicationELB", metricName: "TargetResponseTime", dimensions: lb, extendedStatistic: "p95", period: 300,
      evaluationPeriods: 3, datapointsToAlarm: 3, threshold: m.p95Seconds, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      means: `95% of requests took longer than ${m.p95Seconds} s for 15 minutes`, todo: "`nourishctl db diagnose` on the database host (long queries, top statements), `nourishctl logs access` on an app host (slowest requests), CPU and memory of the hosts.",
    });
    add({
      id: "unhealthy-targets", namespace: "AWS/ApplicationELB", metricName: "UnHealthyHostCount", dimensions: { TargetGroup: estate.alb.targetGroup, LoadBalancer: estate.alb.loadBalancer },
      statistic: "Maximum", period: 60, evaluationPeriods: 3, datapointsToAlarm: 3, threshold: 1, comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "notBreaching",
      means: "an app host fails the ALB's health check (release.healthPath) for 3 minutes", todo: "`nourishctl status` on each app host; the ALB sends traffic to the healthy ones meanwhile.",
    });
  } else {
    const log = (metricName: string, stat: string): MetricStat<D> => ({ namespace: logNs, metricName, dimensions: {}, stat, period: 300 });
    add({
      id: "http-5xx-rate", expression: { expression: "100 * FILL(m1, 0) / m2", label: "5xx %", metrics: { m1: log("Http5xx", "Sum"), m2: log("HttpRequests", "Sum") } },
      evaluationPeriods: 2, datapointsToAlarm: 2, threshold: m.http5xxPercent, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      means: `more than ${m.http5xxPercent}% of requests failed with 5xx for 10 minutes (nginx access log)`, todo: "Read the app log group (…/app) and `nourishctl release list`; a bad release: `nourishctl rollback`.",
    });
    add({
      id: "http-p95", namespace: logNs, metricName: "HttpRequestTime", dimensions: {}, extendedStatistic: "p95", period: 300,
      evaluationPeriods: 3, datapointsToAlarm: 3, threshold: m.p95Seconds, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      means: `95% of requests took longer than ${m.p95Seconds} s for 15 minutes (nginx access log)`, todo: "`nourishctl db diagnose` on the database host (long queries, top statements), `nourishctl logs access` on an app host (slowest requests), CPU and memory of the hosts.",
    });
  }
  add({
    id: "app-errors", namespace: logNs, metricName: "AppErrors", dimensions: {}, statistic: "Sum", period: 300, evaluationPeriods: 1, datapointsToAlarm: 1,
    threshold: m.errorLinesPer5Min, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
    means: `more than ${m.errorLinesPer5Min} ERROR/CRITICAL/Traceback lines from gunicorn and Django in 5 minutes`, todo: "`nourishctl logs errors --since 1h` on an app host counts them by type (document -logs, kind=errors); across hosts, the app log group in CloudWatch Logs Insights.",
  });

  if (config.database.managed && estate.rds) {
    const db = { DBInstanceIdentifier: estate.rds.identifier };
    const rds = (id: string, metricName: string, statistic: MetricAlarmSpec["statistic"], threshold: number, op: MetricAlarmSpec["comparisonOperator"], means: string) => add({
      id, namespace: "AWS/RDS", metricName, dimensions: db, statistic, period: 300, evaluationPeriods: 3, datapointsToAlarm: 3, threshold, comparisonOperator: op,
      treatMissingData: "missing", means, todo: "RDS console: Performance Insights (on), events and logs of the instance.",
    });
    rds("rds-cpu-high", "CPUUtilization", "Average", m.cpuHighPercent, "GreaterThanThreshold", `RDS CPU averaged above ${m.cpuHighPercent}% for 15 minutes`);
    rds("rds-memory-low", "FreeableMemory", "Average", RDS_MIN_FREEABLE_BYTES, "LessThanThreshold", "RDS freeable memory below 256 MiB for 15 minutes");
    rds("rds-storage-low", "FreeStorageSpace", "Minimum", Math.floor(config.database.dataVolumeGb * 1024 ** 3 * m.diskFreeMinPercent / 100), "LessThanThreshold",
      `RDS free storage below ${m.diskFreeMinPercent}% of database.dataVolumeGb`);
    rds("rds-connections-high", "DatabaseConnections", "Maximum", Math.floor(MIN_MAX_CONNECTIONS * m.dbConnectionsPercent / 100), "GreaterThanThreshold",
      `RDS connections above ${m.dbConnectionsPercent}% of ${MIN_MAX_CONNECTIONS}`);
    rds("rds-xid-high", "MaximumUsedTransactionIDs", "Maximum", MAX_USED_XIDS, "GreaterThanThreshold", "transaction ids used above 1 billion: wraparound protection is near (VACUUM is not keeping up)");
  }

  if (!config.database.managed) {
    const dims = { Stack: config.stack as unknown as D, Role: "db" as unknown as D };
    const db = (metricName: string, stat: MetricAlarmSpec["statistic"]) => ({ namespace: METRIC_NAMESPACE, metricName, dimensions: dims, statistic: stat, period: 60 });
    add({
      id: "db-connections-high", ...db("DbConnectionsUsedPercent", "Maximum"), evaluationPeriods: 5, datapointsToAlarm: 3,
      threshold: m.dbConnectionsPercent, comparisonOperator: "GreaterThanThreshold",
      // The heartbeat of `nourishctl metrics`: no figure means the database or the timer is down.
      treatMissingData: "breaching",
      means: `database connections above ${m.dbConnectionsPercent}% of max_connections, or \`nourishctl metrics\` stopped reporting (database down?)`,
      todo: "`nourishctl status --json` on the database host; `systemctl status nourish-link-metrics.timer`.",
    });
    add({
      id: "db-lock-waits", ...db("DbLocksWaiting", "Minimum"), evaluationPeriods: 5, datapointsToAlarm: 5, threshold: 1, comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "notBreaching",
      means: "sessions have been waiting for a lock for 5 minutes", todo: "`nourishctl db diagnose` on the database host (document -db-diagnose) shows who blocks whom; `nourishctl db kill-long-queries --older-than 5m --yes` (document -db-kill-long-queries; --terminate for an idle transaction) frees a stuck lock.",
    });
    add({
      id: "db-long-query", ...db("DbOldestQuerySeconds", "Maximum"), evaluationPeriods: 2, datapointsToAlarm: 2, threshold: m.longQuerySeconds, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      means: `a query has been running longer than ${m.longQuerySeconds} s`, todo: "`nourishctl db diagnose` on the database host (document -db-diagnose) names it; `nourishctl db kill-long-queries --older-than 5m --yes` (document -db-kill-long-queries) cancels it if it should not run.",
    });
    add({
      id: "db-wal-archive-stalled", ...db("DbWalArchiveAgeSeconds", "Maximum"), evaluationPeriods: 5, datapointsToAlarm: 5, threshold: m.walArchiveStallSeconds, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      means: `a WAL segment has waited more than ${m.walArchiveStallSeconds} s to be archived: point-in-time recovery is falling behind and pg_wal grows`,
      todo: "`nourishctl pitr info` (the newest WAL in the repository); `nourishctl logs db` shows archive-push's error.",
    });
    // `nourishctl db check` (weekly, pg_amcheck): any problem is corruption. Its state holds from one
    // check to the next; a check that does not run raises job-failed-db-db-check instead.
    add({
      id: "db-corruption", namespace: METRIC_NAMESPACE, metricName: "DbCorruption", dimensions: dims, statistic: "Maximum", period: 86400,
      evaluationPeriods: 1, datapointsToAlarm: 1, threshold: 0, comparisonOperator: "GreaterThanThreshold", treatMissingData: "ignore",
      means: "the weekly `nourishctl db check` (pg_amcheck) found corrupted pages, tuples or index entries in the app's database",
      todo: "`nourishctl db check` on the database host names each; keep every backup (they are under retention), `nourishctl backups verify --all`, then restore the newest good one (`nourishctl restore`) or rebuild a corrupted index (REINDEX).",
    });
    if (config.backups.enabled) {
      add({
        id: "db-backup-size-drop",
        expression: { expression: "100 * DIFF(m1) / (m1 - DIFF(m1))", label: "change from the night before, %", metrics: { m1: { namespace: METRIC_NAMESPACE, metricName: "BackupSizeBytes", dimensions: dims, stat: "Maximum", period: 86400 } } },
        evaluationPeriods: 1, datapointsToAlarm: 1, threshold: -m.backupSizeDropPercent, comparisonOperator: "LessThanThreshold", treatMissingData: "notBreaching",
        means: `the nightly dump is more than ${m.backupSizeDropPercent}% smaller than the night before (data lost, or a dump of the wrong database)`,
        todo: "`nourishctl backups list` (sizes), row counts of the big tables; keep the older backups (they are under retention).",
      });
    }
  }

  // S3 publishes each bucket's size once a day (AWS/S3 BucketSizeBytes, per storage class): the
  // archive's S3 Standard share is the recent dumps and logs, so steady growth past the cap means
  // expiry stopped working or the dumps grew.
  if (estate.backupBucket !== undefined) {
    add({
      id: "backup-bucket-size", namespace: "AWS/S3", metricName: "BucketSizeBytes",
      dimensions: { BucketName: estate.backupBucket, StorageType: "StandardStorage" as unknown as D },
      statistic: "Maximum", period: 86400, evaluationPeriods: 1, datapointsToAlarm: 1, threshold: m.backupBucketMaxGb * 1024 ** 3, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      means: `the backup archive bucket holds more than ${m.backupBucketMaxGb} GB in S3 Standard (monitoring.backupBucketMaxGb)`,
      todo: "`nourishctl backups list` (sizes and ages: are old dumps expiring, did the dumps grow?); the bucket's lifecycle rules in the S3 console; raise monitoring.backupBucketMaxGb if the growth is the app's.",
    });
  }

  // `nourishctl status` (the morning check, every host) publishes /var/log's size: rotation keeps
  // logs until the monthly archive has them, so a failed archive shows here before the disk fills.
  for (const role of ["app", "db"] as const) {
    if (!estate.hosts.some((h) => h.role === role)) continue;
    add({
      id: `log-volume-${role}`, namespace: METRIC_NAMESPACE, metricName: "LogVolumeBytes", dimensions: { Stack: config.stack as unknown as D, Role: role as unknown as D },
      statistic: "Maximum", period: 86400, evaluationPeriods: 1, datapointsToAlarm: 1, threshold: m.logVolumeMaxMb * 1048576, comparisonOperator: "GreaterThanThreshold", treatMissingData: "ignore",
      means: `/var/log on ${role === "app" ? "an app host" : "the database host"} holds more than ${m.logVolumeMaxMb} MB (monitoring.logVolumeMaxMb)`,
      todo: "`nourishctl status` on the host names the largest file; `journalctl -u nourish-link-log-archive` (did last month's archive fail?), `nourishctl logs archive YYYYMM`.",
    });
  }

  // `nourishctl report weekly` on the app hosts: the manual's weekly security check. Its state
  // holds from one report to the next (missing data between them is ignored); a report that does
  // not run raises job-failed-app-weekly-report instead.
  if (estate.hosts.some((h) => h.role === "app")) {
    add({
      id: "app-deploy-check", namespace: METRIC_NAMESPACE, metricName: "DeployCheckIssues", dimensions: { Stack: config.stack as unknown as D, Role: "app" as unknown as D },
      statistic: "Maximum", period: 86400, evaluationPeriods: 1, datapointsToAlarm: 1, threshold: 0, comparisonOperator: "GreaterThanThreshold", treatMissingData: "ignore",
      means: "the weekly `manage.py check --deploy` of the live release found issues (security settings)",
      todo: "`nourishctl report weekly` on an app host lists them; fix the settings in the next release.",
    });
  }

  // Staging has no load balancer or uptime check: the first app host's smoke probe every 5 minutes
  // (`nourishctl smoke --publish`) publishes SmokeCheckFailed; a probe that stops reporting alarms too.
  if (needsSmokeProbe(config) && estate.hosts.some((h) => h.role === "app")) {
    add({
      id: "app-smoke", namespace: METRIC_NAMESPACE, metricName: SMOKE_METRIC, dimensions: { Stack: config.stack as unknown as D, Role: "app" as unknown as D },
      statistic: "Maximum", period: 300, evaluationPeriods: 3, datapointsToAlarm: 2, threshold: 1, comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "breaching",
      means: "the smoke checks of the first app host (`manage.py check --deploy`, the health path through nginx, the app's smoke command) failed twice in 15 minutes, or its probe stopped reporting",
      todo: "`nourishctl smoke` on the first app host names the failing check; `journalctl -u nourish-link-smoke-probe`; a bad release: `nourishctl rollback`.",
    });
  }

  for (const { role, ids } of estate.jobs) {
    for (const job of ids) {
      add({
        id: `job-failed-${role}-${job}`, namespace: METRIC_NAMESPACE, metricName: JOB_FAILED_METRIC,
        dimensions: { Stack: config.stack as unknown as D, Role: role as unknown as D, Job: job as unknown as D },
        statistic: "Sum", period: 300, evaluationPeriods: 1, datapointsToAlarm: 1, threshold: 1, comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "notBreaching",
        means: `the scheduled job nourish-link-${job} failed on a${role === "app" ? "n app" : " database"} host`,
        todo: `\`nourishctl status\` and \`journalctl -u nourish-link-${job}\` on the host, fix, then \`systemctl start nourish-link-${job}\`.`,
      });
    }
  }
  return out;
}
