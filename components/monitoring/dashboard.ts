// The dashboard: the manual's weekly numbers on one page (requests, error rate, p95, uptime,
// CPU/memory/disk per host, database connections and size, backups and maintenance). Pure:
// typed config and the watched estate in, the dashboard body out (D: dimension values, strings in
// tests, Outputs in the component).
import { StackConfig } from "../config";
import { AGENT_NAMESPACE, DISK_FSTYPE, watchedMounts, watchedProcesses } from "./agent";
import { JOB_FAILED_METRIC, WatchedEstate } from "./alarms";
import { logMetricNamespace } from "./logs";
import { METRIC_NAMESPACE } from "./metrics";

/** One line of a widget: namespace, metric name, then dimension name/value pairs, then options. */
export type WidgetMetric<D> = (string | D | Record<string, unknown>)[];

export interface Widget<D> {
  type: "metric";
  x: number; y: number; width: number; height: number;
  properties: { title: string; region: string; stat: string; period: number; view: "timeSeries" | "singleValue"; metrics: WidgetMetric<D>[] };
}

/** Metric lines of a widget as { namespace, metricName, dimensions } (for tests and coverage). */
export function widgetMetrics<D>(w: Widget<D>): { namespace: string; metricName: string; dimensions: Record<string, D> }[] {
  return w.properties.metrics.map((line) => {
    const parts = line.filter((p) => typeof p !== "object" || p === null) as (string | D)[];
    const [namespace, metricName, ...rest] = parts;
    const dimensions: Record<string, D> = {};
    for (let i = 0; i + 1 < rest.length; i += 2) dimensions[String(rest[i])] = rest[i + 1] as D;
    return { namespace: String(namespace), metricName: String(metricName), dimensions };
  });
}

export function dashboardBody<D>(config: StackConfig, estate: WatchedEstate<D>): { widgets: Widget<D>[] } {
  const widgets: Widget<D>[] = [];
  const region = config.region;
  let y = 0;
  const widget = (title: string, stat: string, metrics: WidgetMetric<D>[], period = 300, view: "timeSeries" | "singleValue" = "timeSeries") => {
    widgets.push({ type: "metric", x: (widgets.length % 2) * 12, y, width: 12, height: 6, properties: { title, region, stat, period, view, metrics } });
    if (widgets.length % 2 === 0) y += 6;
  };
  const logNs = logMetricNamespace(config.stack);
  const db = (name: string): WidgetMetric<D> => [METRIC_NAMESPACE, name, "Stack", config.stack as unknown as D, "Role", "db" as unknown as D];

  // Traffic: the ALB's view when there is one, the nginx access log's always.
  widget("Requests (nginx access log)", "Sum", [[logNs, "HttpRequests"], [logNs, "Http5xx"]]);
  widget("Response time p95 (s)", "p95", [[logNs, "HttpRequestTime"], ...(estate.alb ? [["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", estate.alb.loadBalancer] as WidgetMetric<D>] : [])]);
  if (estate.alb) {
    const lb = ["LoadBalancer", estate.alb.loadBalancer] as const;
    widget("ALB requests and 5xx", "Sum", [["AWS/ApplicationELB", "RequestCount", ...lb], ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", ...lb], ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", ...lb]]);
    widget("Healthy / unhealthy app hosts", "Minimum", [
      ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", estate.alb.targetGroup, ...lb],
      ["AWS/ApplicationELB", "UnHealthyHostCount", "TargetGroup", estate.alb.targetGroup, ...lb],
    ], 60);
  }
  widget(config.database.managed ? "Errors logged (app)" : "Errors logged (app, PostgreSQL)", "Sum", [[logNs, "AppErrors"], ...(config.database.managed ? [] : [[logNs, "PostgresErrors"]])]);

  // Hosts: uptime as the status checks and the processes, CPU, memory, disk.
  widget("CPU % per host", "Average", estate.hosts.map((h) => ["AWS/EC2", "CPUUtilization", "InstanceId", h.instanceId, { label: h.name }]));
  const burstable = estate.hosts.filter((h) => /^t\d/.test(h.instanceType));
  if (burstable.length) widget("CPU credits (burstable hosts)", "Minimum", burstable.map((h) => ["AWS/EC2", "CPUCreditBalance", "InstanceId", h.instanceId, { label: h.name }]));
  widget("Memory and swap used % per host", "Average", estate.hosts.flatMap((h) => [
    [AGENT_NAMESPACE, "mem_used_percent", "InstanceId", h.instanceId, { label: `${h.name} memory` }],
    [AGENT_NAMESPACE, "swap_used_percent", "InstanceId", h.instanceId, { label: `${h.name} swap` }],
  ] as WidgetMetric<D>[]));
  widget("Disk used % per mount", "Maximum", estate.hosts.flatMap((h) => watchedMounts(h.role).map((path): WidgetMetric<D> =>
    [AGENT_NAMESPACE, "disk_used_percent", "InstanceId", h.instanceId, "path", path as unknown as D, "fstype", DISK_FSTYPE as unknown as D, { label: `${h.name} ${path}` }])));
  widget("Uptime: status checks failed", "Maximum", estate.hosts.flatMap((h) => [
    ["AWS/EC2", "StatusCheckFailed_System", "InstanceId", h.instanceId, { label: `${h.name} system` }],
    ["AWS/EC2", "StatusCheckFailed_Instance", "InstanceId", h.instanceId, { label: `${h.name} instance` }],
  ] as WidgetMetric<D>[]), 60);
  widget("Uptime: processes running", "Minimum", estate.hosts.flatMap((h) => watchedProcesses(h.role).map((p): WidgetMetric<D> =>
    [AGENT_NAMESPACE, "procstat_lookup_pid_count", "InstanceId", h.instanceId, p.by, p.value as unknown as D, "pid_finder", "native" as unknown as D, { label: `${h.name} ${p.name}` }])), 60);

  // The database: nourishctl metrics on a self-managed host, RDS's own otherwise.
  if (config.database.managed && estate.rds) {
    const id = ["DBInstanceIdentifier", estate.rds.identifier] as const;
    widget("RDS connections", "Maximum", [["AWS/RDS", "DatabaseConnections", ...id]]);
    widget("RDS CPU %, free memory and storage", "Average", [["AWS/RDS", "CPUUtilization", ...id], ["AWS/RDS", "FreeableMemory", ...id], ["AWS/RDS", "FreeStorageSpace", ...id], ["AWS/RDS", "MaximumUsedTransactionIDs", ...id]]);
    // RDS keeps its own nightly backups; the logical dumps here are the releases' pre-release
    // backups, taken on the first app host (a datapoint per release, so no "missing" alarm).
    const app = (name: string): WidgetMetric<D> => [METRIC_NAMESPACE, name, "Stack", config.stack as unknown as D, "Role", "app" as unknown as D];
    widget("Pre-release backups (first app host): success, size, duration", "Maximum", [app("BackupSuccess"), app("BackupSizeBytes"), app("BackupDurationSeconds")], 86400);
  } else {
    widget("Database connections", "Maximum", [db("DbConnections"), db("DbConnectionsUsedPercent")], 60);
    widget("Database size (bytes)", "Maximum", [db("DbSizeBytes")], 3600);
    widget("Locks waiting, oldest query and transaction (s)", "Maximum", [db("DbLocksWaiting"), db("DbOldestQuerySeconds"), db("DbOldestTransactionSeconds")], 60);
    widget("Bloat and cache: dead tuples % (largest tables), cache hit %", "Average", [db("DbDeadTuplePercentMax"), db("DbCacheHitPercent")], 300);
    widget("WAL archive age (s)", "Maximum", [db("DbWalArchiveAgeSeconds")], 60);
    // The last backup's age: a datapoint per night; its absence is what the backup alarms watch.
    widget("Backups: success, size, duration", "Maximum", [db("BackupSuccess"), db("PitrBackupSuccess"), db("BackupSizeBytes"), db("BackupDurationSeconds")], 86400);
    widget("Maintenance and rehearsals: vacuum, reindex, PITR recovery", "Maximum", [db("MaintenanceVacuumSuccess"), db("MaintenanceReindexSuccess"), db("PitrRecoverSuccess")], 86400);
  }
  // The weekly report of the live release (lib/report.sh).
  const app = (name: string): WidgetMetric<D> => [METRIC_NAMESPACE, name, "Stack", config.stack as unknown as D, "Role", "app" as unknown as D];
  // /var/log per role (nourishctl status on every host, metrics on the database host): rotated logs
  // wait for the monthly archive; the log-volume alarms watch LogVolumeBytes.
  const logRoles = (["app", "db"] as const).filter((r) => estate.hosts.some((h) => h.role === r));
  if (logRoles.length) widget("Logs: /var/log and its largest file (bytes)", "Maximum", logRoles.flatMap((r): WidgetMetric<D>[] => ["LogVolumeBytes", "LogLargestFileBytes"].map((n): WidgetMetric<D> =>
    [METRIC_NAMESPACE, n, "Stack", config.stack as unknown as D, "Role", r as unknown as D, { label: `${r} ${n}` }])), 3600);
  if (estate.hosts.some((h) => h.role === "app")) widget("Weekly: deploy check issues, outdated packages", "Maximum", [app("DeployCheckIssues"), app("OutdatedPackages")], 604800);
  // The smoke checks' probe (`nourishctl smoke --publish`): every 5 minutes where nothing outside
  // watches the site (staging, alarm app-smoke); by hand elsewhere, where the widget stays empty.
  if (estate.hosts.some((h) => h.role === "app")) widget("Smoke checks failed (1) or passed (0)", "Maximum", [app("SmokeCheckFailed")], 300);
  // Restore rehearsals (staging): every app host carries the verb that publishes these; on prod,
  // where it refuses to run, the widget stays empty.
  widget("Restore rehearsals: success, RTO (s), backup age at restore (s), since last success (s)", "Maximum",
    [app("RestoreRehearsalSuccess"), app("RestoreRehearsalSeconds"), app("RestoreRehearsalBackupAgeSeconds"), app("RestoreRehearsalAgeSeconds")], 3600);
  widget("Scheduled jobs failed", "Sum", estate.jobs.flatMap(({ role, ids }) => ids.map((job): WidgetMetric<D> =>
    [METRIC_NAMESPACE, JOB_FAILED_METRIC, "Stack", config.stack as unknown as D, "Role", role as unknown as D, "Job", job as unknown as D])), 3600);
  return { widgets };
}
