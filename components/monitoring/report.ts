// The weekly and monthly reports' view of the estate (`nourishctl report weekly|monthly`, lib/report.sh):
// which CloudWatch metrics give each figure, with the exact namespace, name and dimensions their
// publishers send (the same as the alarms', alarms.ts). Pure: the watched estate in, the JSON the
// stack writes to the tooling bucket's REPORT_SPEC_KEY out (the app hosts read tooling/* already;
// their own instance ids cannot be in their user data). And the IAM statements the report needs.
import { StackConfig } from "../config";
import { DISK_FSTYPE, watchedMounts } from "./agent";
import { WatchedEstate } from "./alarms";
import { logMetricNamespace } from "./logs";
import { METRIC_NAMESPACE } from "./metrics";

/** Where the stack writes the report's spec, beside the tooling (what the app hosts may read). */
export const REPORT_SPEC_KEY = "tooling/report-spec.json";
/** The period of the uptime samples: a 5-minute sample without a healthy target counts as down. */
export const UPTIME_SAMPLE_SECONDS = 300;

/** One GetMetricData query; `period` "report" is the whole report's period (one figure). */
export interface ReportQuery {
  id: string;
  namespace: string;
  metricName: string;
  dimensions: Record<string, string>;
  stat: "Sum" | "Maximum" | "Minimum" | "Average" | "p95";
  period: "report" | number;
}

export interface ReportSpec {
  stack: string;
  /** Alarms of this stack are named `<alarmPrefix><id>` (alarms.ts). */
  alarmPrefix: string;
  topicArn: string;
  monthlyBudgetUsd: number | null;
  /** How the traffic figures are measured: the ALB's metrics or the nginx access log's. */
  traffic: "alb" | "nginx-log";
  /** Uptime: the ALB's healthy targets; null where the stack has nothing to measure it with. */
  uptime: "alb-healthy-targets" | null;
  database: "host" | "rds";
  /** Staging's app hosts publish the rehearsal's figures; prod rehearses nothing itself. */
  rehearsal: boolean;
  hosts: { name: string; cpu: string; memory: string | null; disks: { path: string; id: string }[] }[];
  queries: ReportQuery[];
}

export function reportSpec(config: StackConfig, estate: WatchedEstate<string>, topicArn: string): ReportSpec {
  const q: ReportQuery[] = [];
  const add = (id: string, namespace: string, metricName: string, dimensions: Record<string, string>, stat: ReportQuery["stat"], period: ReportQuery["period"] = "report") =>
    q.push({ id, namespace, metricName, dimensions, stat, period });
  const nl = (role: "app" | "db") => ({ Stack: config.stack, Role: role });

  if (estate.alb) {
    const lb = { LoadBalancer: estate.alb.loadBalancer };
    add("requests", "AWS/ApplicationELB", "RequestCount", lb, "Sum");
    add("errors_target", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, "Sum");
    add("errors_elb", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb, "Sum");
    add("p95", "AWS/ApplicationELB", "TargetResponseTime", lb, "p95");
    add("healthy", "AWS/ApplicationELB", "HealthyHostCount", { TargetGroup: estate.alb.targetGroup, LoadBalancer: estate.alb.loadBalancer }, "Minimum", UPTIME_SAMPLE_SECONDS);
  } else {
    const ns = logMetricNamespace(config.stack);
    add("requests", ns, "HttpRequests", {}, "Sum");
    add("errors_target", ns, "Http5xx", {}, "Sum");
    add("p95", ns, "HttpRequestTime", {}, "p95");
  }

  const hosts: ReportSpec["hosts"] = estate.hosts.map((h, i) => {
    add(`cpu${i}`, "AWS/EC2", "CPUUtilization", { InstanceId: h.instanceId }, "Maximum");
    add(`mem${i}`, "CWAgent", "mem_used_percent", { InstanceId: h.instanceId }, "Maximum");
    const disks = watchedMounts(h.role).map((path, j) => {
      add(`disk${i}_${j}`, "CWAgent", "disk_used_percent", { InstanceId: h.instanceId, path, fstype: DISK_FSTYPE }, "Maximum");
      return { path, id: `disk${i}_${j}` };
    });
    return { name: h.name, cpu: `cpu${i}`, memory: `mem${i}`, disks };
  });
  if (estate.rds) {
    const db = { DBInstanceIdentifier: estate.rds.identifier };
    add("cpu_rds", "AWS/RDS", "CPUUtilization", db, "Maximum");
    add("db_connections", "AWS/RDS", "DatabaseConnections", db, "Maximum");
    hosts.push({ name: "rds", cpu: "cpu_rds", memory: null, disks: [] });
  } else {
    add("db_size", METRIC_NAMESPACE, "DbSizeBytes", nl("db"), "Maximum");
    add("db_connections", METRIC_NAMESPACE, "DbConnections", nl("db"), "Maximum");
    // `nourishctl backup` publishes BackupSuccess 1 per dump; `backups verify` publishes nothing
    // itself: its timer's failures (JobFailed, Job=verify-backup) are what CloudWatch knows.
    add("backups", METRIC_NAMESPACE, "BackupSuccess", nl("db"), "Sum");
    add("verify_failed", METRIC_NAMESPACE, "JobFailed", { ...nl("db"), Job: "verify-backup" }, "Sum");
  }
  const rehearsal = config.rehearsal.enabled === true && !config.database.managed;
  if (rehearsal) {
    // One figure a day: the report takes the last day that has one.
    add("rehearsal_seconds", METRIC_NAMESPACE, "RestoreRehearsalSeconds", nl("app"), "Maximum", 86400);
  }
  return {
    stack: config.stack,
    alarmPrefix: `nourish-link-${config.stack}-`,
    topicArn,
    monthlyBudgetUsd: config.monitoring.monthlyBudgetUsd ?? null,
    traffic: estate.alb ? "alb" : "nginx-log",
    uptime: estate.alb ? "alb-healthy-targets" : null,
    database: estate.rds ? "rds" : "host",
    rehearsal,
    hosts,
    queries: q,
  };
}

/**
 * What `nourishctl report` needs beyond reading the tooling: the metrics and the alarm history
 * (CloudWatch grants both on * only), the month's cost (Cost Explorer: * only) and publishing the
 * short text to the alert topic (and its key, which encrypts the topic). Storing the report under
 * the backup bucket's reports/ is the backup store's grant (backups/policy.ts reportStoreStatements).
 */
export function reportStatements(arns: { topic: string; topicKey: string }): Record<string, unknown>[] {
  return [
    { Sid: "ReportReadMetrics", Effect: "Allow", Action: ["cloudwatch:GetMetricData", "cloudwatch:DescribeAlarmHistory"], Resource: "*" },
    { Sid: "ReportReadCost", Effect: "Allow", Action: "ce:GetCostAndUsage", Resource: "*" },
    { Sid: "ReportPublish", Effect: "Allow", Action: "sns:Publish", Resource: arns.topic },
    { Sid: "ReportPublishKey", Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: arns.topicKey },
  ];
}
