// Monitoring: where alarms go, the hosts' logs, and an alarm for every way the estate breaks.
//
// - An SNS topic, encrypted with a customer-managed KMS key whose policy lets CloudWatch alarms
//   publish (see policy.ts for why not alias/aws/sns), and one email subscription per
//   monitoring.alertEmails address (each address must confirm the email AWS sends it once).
// - One alarm per nightly db-host procedure whose success nourishctl reports as a metric
//   (alarms.ts): BackupSuccess, and PitrBackupSuccess with backups.pitr. Missing data is
//   breaching, so a backup that fails, hangs, or whose timer never fires raises the alarm.
// - Log groups for the hosts' logs (logs.ts), encrypted with their own key and kept
//   monitoring.logRetentionDays, and the metric filters that count 5xx, time requests and
//   count error lines.
// - `watch(estate)`, once the hosts exist: the alarms on the hosts, the traffic, the database and
//   every scheduled job (estateAlarms), and the dashboard.
// Every alarm notifies the topic on ALARM and on OK.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { DISK_FSTYPE, watchedMounts, watchedProcesses } from "./agent";
import { backupAlarms, estateAlarms, MetricAlarmSpec, rehearsalAlarms, UPTIME_REGION, uptimeAlarms, WatchedEstate } from "./alarms";
import { dashboardBody } from "./dashboard";
import { LOG_SOURCES, logGroupName, logMetricNamespace, METRIC_FILTERS } from "./logs";
import { alertKeyPolicy, alertTopicPolicy, logsKeyPolicy } from "./policy";
import { scheduledJobs } from "../schedules/jobs";
import { RDS_LOG_EXPORTS, rdsIdentifier, rdsLogGroupName } from "../database/rds";
import { REPORT_SPEC_KEY, reportSpec, reportStatements } from "./report";

export interface MonitoringArgs {
  config: StackConfig;
}

export class Monitoring extends pulumi.ComponentResource {
  /** The alert topic: every alarm's alarmActions and okActions. */
  readonly topicArn: pulumi.Output<string>;
  /** The key the topic is encrypted with (a publisher other than CloudWatch needs a grant on it). */
  readonly kmsKeyArn: pulumi.Output<string>;
  /** The us-east-1 topic the uptime alarm notifies (monitoring.uptimeCheck). */
  uptimeTopicArn?: pulumi.Output<string>;
  /** The key the log groups are encrypted with. */
  readonly logsKmsKeyArn: pulumi.Output<string>;
  /** The groups RDS's log exports write to (managed database only): the instance waits for them. */
  readonly rdsLogGroups: aws.cloudwatch.LogGroup[];
  /** Every alarm, by id (`db-backup-missing`, `app-0-cpu-high`, …). */
  readonly alarms: Record<string, aws.cloudwatch.MetricAlarm> = {};
  private readonly config: StackConfig;
  private readonly topic: aws.sns.Topic;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:monitoring:Monitoring", name, {}, opts);
    const { config } = args;
    this.config = config;
    const account = aws.getCallerIdentityOutput({}, { parent: this }).accountId;

    const { topic, key } = this.alertTopic(name, config.region, account);
    this.topic = topic;

    for (const a of [...backupAlarms(config), ...rehearsalAlarms(config)]) this.alarm(name, a);

    // The hosts' logs: created here (retention, encryption) so the agent only writes to them.
    const logsKey = new aws.kms.Key(`${name}-logs-key`, {
      description: `nourish-link ${config.stack}: host logs`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.jsonStringify(account.apply((id) => logsKeyPolicy(id, config.region, config.stack, config.database.managed ? rdsIdentifier(config) : undefined))),
    }, { parent: this, protect: config.environment === "prod", retainOnDelete: config.environment === "prod" });
    new aws.kms.Alias(`${name}-logs-key-alias`, { name: `alias/nourish-link-${config.stack}-logs`, targetKeyId: logsKey.keyId }, { parent: this });
    const groups: Record<string, aws.cloudwatch.LogGroup> = {};
    for (const s of LOG_SOURCES) {
      if (config.database.managed && s.roles.every((r) => r === "db")) continue;
      groups[s.source] = new aws.cloudwatch.LogGroup(`${name}-logs-${s.source}`, {
        name: logGroupName(config.stack, s.source),
        retentionInDays: config.monitoring.logRetentionDays,
        kmsKeyId: logsKey.arn,
      }, { parent: this });
    }
    // RDS's log exports: the groups exist, encrypted and with retention, before the instance
    // exports (the Database depends on them); otherwise RDS creates them plain and kept forever.
    this.rdsLogGroups = config.database.managed
      ? RDS_LOG_EXPORTS.map((log) => new aws.cloudwatch.LogGroup(`${name}-logs-rds-${log}`, {
        name: rdsLogGroupName(rdsIdentifier(config), log),
        retentionInDays: config.monitoring.logRetentionDays,
        kmsKeyId: logsKey.arn,
      }, { parent: this }))
      : [];
    for (const f of METRIC_FILTERS) {
      const group = groups[f.source];
      if (!group) continue;
      new aws.cloudwatch.LogMetricFilter(`${name}-filter-${f.id}`, {
        name: `nourish-link-${config.stack}-${f.id}`,
        logGroupName: group.name,
        pattern: f.pattern,
        metricTransformation: {
          namespace: logMetricNamespace(config.stack), name: f.metricName, value: f.value,
          ...(f.defaultValue !== undefined ? { defaultValue: String(f.defaultValue) } : {}),
          ...(f.unit ? { unit: f.unit } : {}),
        },
      }, { parent: this });
    }

    if (config.monitoring.uptimeCheck) this.uptimeCheck(name, account);

    // monitoring.monthlyBudgetUsd: the account's actual monthly cost at 80% and 100% of it, to the
    // alert topic (whose policies let Budgets publish). Off without the key: see its description.
    const budget = config.monitoring.monthlyBudgetUsd;
    if (budget !== undefined) {
      new aws.budgets.Budget(`${name}-budget`, {
        name: `nourish-link-${config.stack}-monthly`,
        budgetType: "COST",
        timeUnit: "MONTHLY",
        limitAmount: budget.toFixed(2),
        limitUnit: "USD",
        notifications: [80, 100].map((threshold) => ({
          comparisonOperator: "GREATER_THAN", threshold, thresholdType: "PERCENTAGE", notificationType: "ACTUAL", subscriberSnsTopicArns: [this.topic.arn],
        })),
      }, { parent: this });
    }

    this.topicArn = this.topic.arn;
    this.kmsKeyArn = key.arn;
    this.logsKmsKeyArn = logsKey.arn;
    this.registerOutputs({ topicArn: this.topicArn, kmsKeyArn: this.kmsKeyArn, logsKmsKeyArn: this.logsKmsKeyArn });
  }

  /** The alarms on the hosts, the traffic, the database and the jobs, and the dashboard. */
  watch(name: string, estate: WatchedEstate<pulumi.Output<string>>): void {
    const config = this.config;
    const specs = estateAlarms(config, estate, {
      processes: watchedProcesses, mounts: watchedMounts, fstype: DISK_FSTYPE, logNamespace: logMetricNamespace(config.stack),
    });
    for (const a of specs) this.alarm(name, a);
    new aws.cloudwatch.Dashboard(`${name}-dashboard`, {
      dashboardName: `nourish-link-${config.stack}`,
      dashboardBody: pulumi.jsonStringify(pulumi.output(dashboardBody(config, estate))),
    }, { parent: this });
  }

  /**
   * The weekly and monthly reports (`nourishctl report`, on app-0): their spec (report.ts) beside
   * the tooling, where the app hosts read it, and the app hosts' rights to compute, store and mail them.
   */
  report(name: string, estate: WatchedEstate<pulumi.Output<string>>, to: {
    putObject(name: string, key: string, content: pulumi.Output<string>): pulumi.Resource;
    appRole: aws.iam.Role;
  }): void {
    const config = this.config;
    const resolved = pulumi.output({
      hosts: estate.hosts.map((h) => pulumi.output(h.instanceId).apply((instanceId) => ({ ...h, instanceId }))),
      alb: estate.alb ? pulumi.all([estate.alb.loadBalancer, estate.alb.targetGroup]).apply(([loadBalancer, targetGroup]) => ({ loadBalancer, targetGroup })) : undefined,
      rds: estate.rds ? pulumi.output(estate.rds.identifier).apply((identifier) => ({ identifier })) : undefined,
      topic: this.topic.arn,
    });
    const spec = resolved.apply((r) => JSON.stringify(reportSpec(config, { hosts: r.hosts, alb: r.alb, rds: r.rds, jobs: estate.jobs }, r.topic), null, 2) + "\n");
    to.putObject(`${name}-report-spec`, REPORT_SPEC_KEY, spec);
    new aws.iam.RolePolicy(`${name}-report`, {
      role: to.appRole.id,
      policy: pulumi.all([this.topic.arn, this.kmsKeyArn]).apply(([topic, topicKey]) => JSON.stringify({
        Version: "2012-10-17", Statement: reportStatements({ topic, topicKey }),
      })),
    }, { parent: this });
  }

  /**
   * An alert topic in `region`, encrypted with a key of its own whose policy lets CloudWatch
   * alarms publish (see policy.ts for why not alias/aws/sns), and one email subscription per
   * monitoring.alertEmails address (each must confirm the email AWS sends it once). Keyed by
   * address, so adding or removing one never touches the others; an address listed twice (in any
   * case) is subscribed once.
   */
  private alertTopic(name: string, region: string, account: pulumi.Output<string>, provider?: aws.Provider): { topic: aws.sns.Topic; key: aws.kms.Key } {
    const config = this.config;
    const opts = { parent: this, ...(provider ? { provider } : {}) };
    const key = new aws.kms.Key(`${name}-key`, {
      description: `nourish-link ${config.stack}: alert topic${provider ? ` (${region})` : ""}`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.jsonStringify(account.apply(alertKeyPolicy)),
    }, { ...opts, protect: config.environment === "prod", retainOnDelete: config.environment === "prod" });
    new aws.kms.Alias(`${name}-key-alias`, { name: `alias/nourish-link-${config.stack}-alerts`, targetKeyId: key.keyId }, opts);
    const topic = new aws.sns.Topic(`${name}-alerts`, {
      displayName: `NOURISH LINK ${config.stack}`,
      kmsMasterKeyId: key.arn,
    }, opts);
    new aws.sns.TopicPolicy(`${name}-alerts-policy`, {
      arn: topic.arn,
      policy: pulumi.jsonStringify(pulumi.all([topic.arn, account]).apply(([t, a]) => alertTopicPolicy(t, a, region))),
    }, opts);
    const emails = new Map<string, string>();
    for (const e of config.monitoring.alertEmails) if (!emails.has(e.toLowerCase())) emails.set(e.toLowerCase(), e);
    for (const email of emails.values()) {
      new aws.sns.TopicSubscription(`${name}-email-${email}`, { topic: topic.arn, protocol: "email", endpoint: email }, opts);
    }
    return { topic, key };
  }

  /**
   * The manual's uptime figure, from outside the estate: a Route 53 health check on the public
   * health URL. Route 53 publishes HealthCheckStatus only in us-east-1, and an alarm can notify
   * only a topic of its own region, so the alarm and a second alert topic live there.
   */
  private uptimeCheck(name: string, account: pulumi.Output<string>): void {
    const config = this.config;
    const check = new aws.route53.HealthCheck(`${name}-uptime`, {
      type: "HTTPS",
      fqdn: config.domain,
      port: 443,
      resourcePath: config.release.healthPath,
      enableSni: true,
      requestInterval: 30,
      failureThreshold: 3,
      tags: { Name: `nourish-link-${config.stack}-uptime` },
    }, { parent: this });
    // The same tags as the stack's own provider (components/index.ts), in us-east-1.
    const provider = new aws.Provider(`${name}-${UPTIME_REGION}`, {
      region: UPTIME_REGION,
      defaultTags: { tags: { project: "nourish-link", stack: config.stack, environment: config.environment } },
    }, { parent: this });
    const { topic } = this.alertTopic(`${name}-${UPTIME_REGION}`, UPTIME_REGION, account, provider);
    this.uptimeTopicArn = topic.arn;
    for (const a of uptimeAlarms(config, check.id)) this.alarm(name, a, { topic, provider });
  }

  private alarm(name: string, a: MetricAlarmSpec<pulumi.Input<string>>, to: { topic: aws.sns.Topic; provider?: aws.Provider } = { topic: this.topic }): void {
    const ec2 = a.ec2Action ? [`arn:aws:automate:${this.config.region}:ec2:${a.ec2Action}`] : [];
    const single = a.expression ? {} : {
      namespace: a.namespace, metricName: a.metricName, dimensions: a.dimensions,
      statistic: a.statistic, extendedStatistic: a.extendedStatistic, period: a.period,
    };
    const math = a.expression ? {
      metricQueries: [
        { id: "e1", expression: a.expression.expression, label: a.expression.label, returnData: true },
        ...Object.entries(a.expression.metrics).map(([id, m]) => ({
          id, returnData: false,
          metric: { namespace: m.namespace, metricName: m.metricName, dimensions: m.dimensions, stat: m.stat, period: m.period },
        })),
      ],
    } : {};
    this.alarms[a.id] = new aws.cloudwatch.MetricAlarm(`${name}-${a.id}`, {
      name: a.name,
      alarmDescription: a.alarmDescription,
      ...single,
      ...math,
      evaluationPeriods: a.evaluationPeriods,
      datapointsToAlarm: a.datapointsToAlarm,
      threshold: a.threshold,
      comparisonOperator: a.comparisonOperator,
      treatMissingData: a.treatMissingData,
      alarmActions: [...ec2, to.topic.arn],
      okActions: [to.topic.arn],
    }, { parent: this, ...(to.provider ? { provider: to.provider } : {}) });
  }
}

/** What the alarms watch, from the built estate: the hosts, the ALB, RDS, and each role's jobs. */
export function watchedEstate(
  config: StackConfig,
  app: { instances: aws.ec2.Instance[]; albDimensions?: { loadBalancer: pulumi.Output<string>; targetGroup: pulumi.Output<string> } },
  database: { instance?: aws.ec2.Instance; rdsIdentifier?: pulumi.Output<string> },
  backups?: { bucketName: pulumi.Output<string> },
): WatchedEstate<pulumi.Output<string>> {
  const hosts = [
    ...(database.instance ? [{ name: "db", role: "db" as const, instanceId: database.instance.id, instanceType: config.database.instanceType }] : []),
    ...app.instances.map((i, n) => ({ name: `app-${n}`, role: "app" as const, instanceId: i.id, instanceType: config.app.instanceType })),
  ];
  return {
    hosts,
    alb: app.albDimensions,
    rds: database.rdsIdentifier ? { identifier: database.rdsIdentifier } : undefined,
    jobs: (["db", "app"] as const).filter((role) => hosts.some((h) => h.role === role))
      .map((role) => ({ role, ids: scheduledJobs(config, role).filter((j) => !j.watchedBy).map((j) => j.id) })),
    backupBucket: backups?.bucketName,
  };
}
