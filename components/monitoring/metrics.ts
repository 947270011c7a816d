// What the hosts publish to CloudWatch themselves, by name: the one list the alarms and the
// dashboard are built from, and that test/monitoring-coverage.test.ts checks against the scripts
// the hosts actually run. No Pulumi imports.

/** Namespace of every metric `nourishctl` publishes (`metric` in nourishctl, lib/metrics.sh). */
export const METRIC_NAMESPACE = "NourishLink";

/** The dimensions every `nourishctl` metric carries: Stack=$STACK,Role=$ROLE from host.env. */
export function hostMetricDimensions(stack: string, role: "app" | "db"): Record<string, string> {
  return { Stack: stack, Role: role };
}

/** `nourishctl metrics` (lib/metrics.sh), every minute on a self-managed database host. */
export const DB_METRICS = [
  "DbConnections",
  "DbConnectionsUsedPercent",
  "DbLocksWaiting",
  "DbOldestQuerySeconds",
  "DbOldestTransactionSeconds",
  "DbDeadTuplePercentMax",
  "DbCacheHitPercent",
  "DbSizeBytes",
  "DbWalArchiveAgeSeconds",
  // /var/log's size and its largest file (status_log_sizes, lib/status.sh).
  "LogVolumeBytes",
  "LogLargestFileBytes",
] as const;
export type DbMetric = (typeof DB_METRICS)[number];
