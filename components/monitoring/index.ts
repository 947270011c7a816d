// Monitoring: where alarms go and the alarms on procedures that can stop silently.
//
// - An SNS topic, encrypted with a customer-managed KMS key whose policy lets CloudWatch alarms
//   publish (see policy.ts for why not alias/aws/sns), and one email subscription per
//   monitoring.alertEmails address (each address must confirm the email AWS sends it once).
// - One alarm per nightly db-host procedure whose success nourishctl reports as a metric
//   (alarms.ts): BackupSuccess, and PitrBackupSuccess with backups.pitr. Missing data is
//   breaching, so a backup that fails, hangs, or whose timer never fires raises the alarm;
//   ALARM and OK both notify the topic. On a new stack they are in ALARM until the first backup.
//
// Other alarms reuse the topic through `topicArn`.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { backupAlarms } from "./alarms";
import { alertKeyPolicy, alertTopicPolicy } from "./policy";

export interface MonitoringArgs {
  config: StackConfig;
}

export class Monitoring extends pulumi.ComponentResource {
  /** The alert topic: every alarm's alarmActions and okActions. */
  readonly topicArn: pulumi.Output<string>;
  /** The key the topic is encrypted with (a publisher other than CloudWatch needs a grant on it). */
  readonly kmsKeyArn: pulumi.Output<string>;
  /** The alarms on the backups, by id (`db-backup-missing`, `db-pitr-backup-missing`). */
  readonly alarms: Record<string, aws.cloudwatch.MetricAlarm> = {};

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:monitoring:Monitoring", name, {}, opts);
    const { config } = args;
    const account = aws.getCallerIdentityOutput({}, { parent: this }).accountId;

    const key = new aws.kms.Key(`${name}-key`, {
      description: `nourish-link ${config.stack}: alert topic`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.jsonStringify(account.apply(alertKeyPolicy)),
    }, { parent: this, protect: config.environment === "prod", retainOnDelete: config.environment === "prod" });
    new aws.kms.Alias(`${name}-key-alias`, { name: `alias/nourish-link-${config.stack}-alerts`, targetKeyId: key.keyId }, { parent: this });

    const topic = new aws.sns.Topic(`${name}-alerts`, {
      displayName: `NOURISH LINK ${config.stack}`,
      kmsMasterKeyId: key.arn,
    }, { parent: this });
    new aws.sns.TopicPolicy(`${name}-alerts-policy`, {
      arn: topic.arn,
      policy: pulumi.jsonStringify(pulumi.all([topic.arn, account]).apply(([t, a]) => alertTopicPolicy(t, a, config.region))),
    }, { parent: this });

    // Keyed by address, so adding or removing one never touches the others' subscriptions; an
    // address listed twice (in any case) is subscribed once.
    const emails = new Map<string, string>();
    for (const e of config.monitoring.alertEmails) if (!emails.has(e.toLowerCase())) emails.set(e.toLowerCase(), e);
    for (const email of emails.values()) {
      new aws.sns.TopicSubscription(`${name}-email-${email}`, { topic: topic.arn, protocol: "email", endpoint: email }, { parent: this });
    }

    for (const a of backupAlarms(config)) {
      this.alarms[a.id] = new aws.cloudwatch.MetricAlarm(`${name}-${a.id}`, {
        name: a.name,
        alarmDescription: a.alarmDescription,
        namespace: a.namespace,
        metricName: a.metricName,
        dimensions: a.dimensions,
        statistic: a.statistic,
        period: a.period,
        evaluationPeriods: a.evaluationPeriods,
        datapointsToAlarm: a.datapointsToAlarm,
        threshold: a.threshold,
        comparisonOperator: a.comparisonOperator,
        treatMissingData: a.treatMissingData,
        alarmActions: [topic.arn],
        okActions: [topic.arn],
      }, { parent: this });
    }

    this.topicArn = topic.arn;
    this.kmsKeyArn = key.arn;
    this.registerOutputs({ topicArn: this.topicArn, kmsKeyArn: this.kmsKeyArn });
  }
}
