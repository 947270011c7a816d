// Pure definitions of the alarms on the host's own metrics: which metric, which dimensions, and
// the window that turns "no datapoint" into "the procedure silently stopped". No Pulumi imports:
// typed config in, plain MetricAlarm arguments out (test/monitoring.test.ts checks them against
// what nourishctl publishes).
import { StackConfig } from "../config";

/** Namespace of every metric `nourishctl` publishes (`metric` in scripts/host/nourishctl). */
export const METRIC_NAMESPACE = "NourishLink";

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

/** Arguments of one aws.cloudwatch.MetricAlarm, minus its actions (the component adds the topic). */
export interface MetricAlarmSpec {
  /** Resource name stem and alarm name suffix. */
  id: string;
  /** The alarm's name in CloudWatch (MetricAlarm's `name`): what the notification email shows. */
  name: string;
  alarmDescription: string;
  namespace: string;
  metricName: string;
  dimensions: Record<string, string>;
  statistic: "Sum";
  period: number;
  evaluationPeriods: number;
  datapointsToAlarm: number;
  threshold: number;
  comparisonOperator: "LessThanThreshold";
  treatMissingData: "breaching";
}

/** Throws unless CloudWatch would accept the alarm's period and window. */
export function checkAlarmWindow(a: Pick<MetricAlarmSpec, "id" | "period" | "evaluationPeriods" | "datapointsToAlarm">): void {
  const window = a.period * a.evaluationPeriods;
  if (!(a.period === 10 || a.period === 20 || a.period === 30 || (a.period > 0 && a.period % 60 === 0))) throw new Error(`${a.id}: period ${a.period} must be 10, 20, 30 or a multiple of 60`);
  if (window > MAX_ALARM_WINDOW_SECONDS) throw new Error(`${a.id}: period x evaluationPeriods is ${window} s, over CloudWatch's 7 days`);
  if (a.period < 3600 && window > SHORT_PERIOD_MAX_WINDOW_SECONDS) throw new Error(`${a.id}: with a period under an hour the window may not exceed one day (${window} s)`);
  if (a.datapointsToAlarm < 1 || a.datapointsToAlarm > a.evaluationPeriods) throw new Error(`${a.id}: datapointsToAlarm must be 1..evaluationPeriods`);
}

/** An alarm that fires when a nightly db-host procedure has not reported success for ~26 h. */
function missingSuccess(config: StackConfig, id: string, metricName: string, what: string, verb: string, unit: string): MetricAlarmSpec {
  const spec: MetricAlarmSpec = {
    id,
    name: `nourish-link-${config.stack}-${id}`,
    alarmDescription:
      `NOURISH LINK ${config.stack}: no successful ${what} on the database host for ${MISSING_WINDOW_HOURS} h ` +
      `(${METRIC_NAMESPACE}/${metricName} missing). On the host: systemctl status ${unit}; journalctl -u ${unit}; ` +
      `then run \`nourishctl ${verb}\`, which clears the alarm when it succeeds. See docs/RUNBOOK.md.`,
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
  checkAlarmWindow(spec);
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
