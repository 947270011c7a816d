// Monitoring under mocks: the alert topic, its subscriptions, and the alarms on backups that stop
// silently, checked against what the database host actually publishes (the nourishctl it is given
// and its host.env), so a renamed metric or dimension on either side fails here.
import * as assert from "assert";
import {
  backupAlarms, checkAlarmWindow, MISSING_EVALUATION_PERIODS, MISSING_PERIOD_SECONDS, MISSING_WINDOW_HOURS,
} from "../components/monitoring/alarms";
import { alertKeyPolicy } from "../components/monitoring/policy";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_PATH } from "../components/hosts/user-data";
import { hostFiles } from "../scripts/preview/plan";
import { committedStack, loadStackConfig, ofType, one, ProgramRun, RecordedResource, runStack } from "./harness";

const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";
const TOPIC = "aws:sns/topic:Topic";
const SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription";

/** The alarms on the nightly procedures' success metrics (test/monitoring-coverage.test.ts covers the rest). */
function hostMetricAlarms(r: ProgramRun, namespace: string): RecordedResource[] {
  return ofType(r, ALARM).filter((a) => a.inputs.namespace === namespace && /Success$/.test(String(a.inputs.metricName)));
}

/** A file the database host receives, by its path on the host. */
function dbFile(r: ProgramRun, hostPath: string): string {
  const f = hostFiles(r).find((x) => x.role === "db" && x.path === hostPath);
  assert.ok(f, `the database host gets no ${hostPath}`);
  return f.content;
}

/** What the db host's nourishctl sends with `metric NAME VALUE`: namespace and dimension → host.env variable. */
function publishedBy(r: ProgramRun): { namespace: string; dimensions: Record<string, string>; env: Record<string, string> } {
  const ctl = dbFile(r, NOURISHCTL_PATH);
  const call = /aws cloudwatch put-metric-data[^\n]*\\\n[^\n]*/.exec(ctl)?.[0] ?? "";
  const namespace = /--namespace (\S+)/.exec(call)?.[1];
  const dims = /--dimensions "([^"]+)"/.exec(call)?.[1];
  assert.ok(namespace && dims, `no put-metric-data call in the host's nourishctl:\n${call}`);
  assert.ok(!/--unit\b/.test(call), "the host publishes with a unit now: the alarms must name it");
  const env = Object.fromEntries(dbFile(r, "/etc/nourish-link/host.env").trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
  const dimensions: Record<string, string> = {};
  for (const pair of dims.split(",")) {
    const [name, ref] = pair.split("=");
    const variable = /^\$\{?([A-Z_]+)\}?$/.exec(ref)?.[1];
    assert.ok(variable && env[variable] !== undefined, `dimension ${name}=${ref} is not a host.env variable`);
    dimensions[name] = env[variable];
  }
  return { namespace, dimensions, env };
}

/** The metric a verb library publishes on success (`metric XSuccess 1`). */
function successMetrics(r: ProgramRun, lib: string): string[] {
  return [...dbFile(r, `${NOURISHCTL_LIB_PATH}/${lib}`).matchAll(/^\s*metric (\w+Success) 1$/gm)].map((m) => m[1]);
}

/**
 * CloudWatch's evaluation of the alarm, modelled: hourly Sums of the successes, the last
 * `evaluationPeriods` buckets up to `now` (the newest partly elapsed), missing = breaching,
 * ALARM when `datapointsToAlarm` of them breach. Times in hours.
 */
function inAlarm(spec: { period: number; evaluationPeriods: number; datapointsToAlarm: number }, successes: number[], now: number): boolean {
  const h = spec.period / 3600;
  const newest = Math.floor(now / h);
  let breaching = 0;
  for (let b = newest - spec.evaluationPeriods + 1; b <= newest; b++) {
    const sum = successes.filter((t) => t <= now && Math.floor(t / h) === b).length;
    if (sum < 1) breaching++;
  }
  return breaching >= spec.datapointsToAlarm;
}

describe("monitoring: alarms on backups that stop silently", () => {
  let prod: ProgramRun;
  let staging: ProgramRun;
  before(async () => {
    prod = await committedStack("prod");
    staging = await committedStack("staging");
  });

  it("has one encrypted alert topic, on a key CloudWatch alarms may use (not alias/aws/sns)", () => {
    for (const r of [prod, staging]) {
      const topic = one(r, TOPIC, "monitoring-alerts");
      const key = one(r, "aws:kms/key:Key", "monitoring-key");
      assert.strictEqual(topic.inputs.kmsMasterKeyId, `arn:aws:kms:af-south-1:123456789012:key/${key.id}`);
      assert.strictEqual(key.inputs.enableKeyRotation, true);
      const statements = JSON.parse(String(key.inputs.policy)).Statement as { Effect: string; Principal: { Service?: string[]; AWS?: string }; Action: string | string[] }[];
      const cw = statements.find((s) => s.Principal.Service?.includes("cloudwatch.amazonaws.com"));
      assert.deepStrictEqual(cw?.Action, ["kms:Decrypt", "kms:GenerateDataKey*"]);
      assert.deepStrictEqual((cw as { Condition?: unknown })?.Condition, { StringEquals: { "aws:SourceAccount": "123456789012" } }, "no confused-deputy guard");
      assert.ok(statements.some((s) => s.Principal.AWS === "arn:aws:iam::123456789012:root" && s.Action === "kms:*"), "the account can no longer administer the key");
    }
    assert.throws(() => alertKeyPolicy("not-an-account"), /not an AWS account id/);
  });

  it("subscribes each monitoring.alertEmails address once, by email", async () => {
    for (const [r, stack] of [[prod, "prod"], [staging, "staging"]] as const) {
      const topic = one(r, TOPIC, "monitoring-alerts");
      const subs = ofType(r, SUBSCRIPTION).filter((x) => x.name.startsWith("monitoring-email-"));
      const expected = (await loadStackConfig(stack)).monitoring.alertEmails;
      assert.ok(expected.length >= 1);
      assert.deepStrictEqual(subs.map((s) => s.inputs.endpoint).sort(), [...expected].sort());
      for (const s of subs) {
        assert.strictEqual(s.inputs.protocol, "email");
        assert.strictEqual(s.inputs.topic, r.outputs.alertTopicArn);
        assert.strictEqual(s.parent, topic.parent, "subscription outside the Monitoring component");
      }
    }
    assert.deepStrictEqual(ofType(prod, SUBSCRIPTION).filter((x) => x.name.startsWith("monitoring-email-")).map((s) => s.inputs.endpoint).sort(), ["oncall@nourishlink.rw", "ops@nourishlink.rw"]);
    const more = await runStack("staging", { set: { monitoring: { alertEmails: ["ops@nourishlink.rw", "dba@nourishlink.rw", "OPS@nourishlink.rw"] } } });
    assert.deepStrictEqual(ofType(more, SUBSCRIPTION).map((s) => s.inputs.endpoint).sort(), ["dba@nourishlink.rw", "ops@nourishlink.rw"]);
  });

  it("checks uptime from outside on prod (Route 53 on the public health URL), alarming in us-east-1 to a topic there with the same emails", async () => {
    const check = one(prod, "aws:route53/healthCheck:HealthCheck", "monitoring-uptime");
    assert.deepStrictEqual(
      { type: check.inputs.type, fqdn: check.inputs.fqdn, port: check.inputs.port, resourcePath: check.inputs.resourcePath, enableSni: check.inputs.enableSni, requestInterval: check.inputs.requestInterval, failureThreshold: check.inputs.failureThreshold },
      { type: "HTTPS", fqdn: "app.nourishlink.rw", port: 443, resourcePath: "/health/", enableSni: true, requestInterval: 30, failureThreshold: 3 });
    const alarm = one(prod, "aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-uptime");
    assert.deepStrictEqual(
      { namespace: alarm.inputs.namespace, metricName: alarm.inputs.metricName, dimensions: alarm.inputs.dimensions, comparisonOperator: alarm.inputs.comparisonOperator, threshold: alarm.inputs.threshold, treatMissingData: alarm.inputs.treatMissingData },
      { namespace: "AWS/Route53", metricName: "HealthCheckStatus", dimensions: { HealthCheckId: check.id }, comparisonOperator: "LessThanThreshold", threshold: 1, treatMissingData: "breaching" });
    // The alarm, its topic, key and subscriptions through a us-east-1 provider: Route 53's metrics are only there.
    const provider = one(prod, "pulumi:providers:aws", "monitoring-us-east-1");
    assert.strictEqual(provider.inputs.region, "us-east-1");
    const east = ["monitoring-uptime", "monitoring-us-east-1-alerts", "monitoring-us-east-1-key", "monitoring-us-east-1-alerts-policy"];
    for (const r of prod.resources.filter((x) => east.includes(x.name) && x.type !== "aws:route53/healthCheck:HealthCheck")) {
      assert.match(String(r.provider), /::monitoring-us-east-1::/, `${r.type} ${r.name} is not in us-east-1`);
    }
    const topic = String(prod.outputs.uptimeAlertTopicArn);
    assert.match(topic, /^arn:aws:sns:us-east-1:123456789012:/);
    assert.deepStrictEqual(alarm.inputs.alarmActions, [topic]);
    assert.deepStrictEqual(alarm.inputs.okActions, [topic]);
    const eastTopic = one(prod, TOPIC, "monitoring-us-east-1-alerts");
    assert.strictEqual(eastTopic.inputs.kmsMasterKeyId, `arn:aws:kms:us-east-1:123456789012:key/${one(prod, "aws:kms/key:Key", "monitoring-us-east-1-key").id}`);
    const policy = JSON.parse(String(one(prod, "aws:sns/topicPolicy:TopicPolicy", "monitoring-us-east-1-alerts-policy").inputs.policy));
    assert.match(JSON.stringify(policy), /arn:aws:cloudwatch:us-east-1:123456789012:alarm:\*/, "CloudWatch in us-east-1 may not publish");
    const subs = ofType(prod, SUBSCRIPTION).filter((x) => x.name.startsWith("monitoring-us-east-1-email-"));
    assert.deepStrictEqual(subs.map((x) => [x.inputs.endpoint, x.inputs.topic]).sort(), [["oncall@nourishlink.rw", topic], ["ops@nourishlink.rw", topic]]);
    // Off on staging by default; on when asked.
    assert.strictEqual(ofType(staging, "aws:route53/healthCheck:HealthCheck").length, 0);
    assert.strictEqual(staging.outputs.uptimeAlertTopicArn, undefined);
    const on = await runStack("staging", { set: { monitoring: { uptimeCheck: true } } });
    assert.strictEqual(one(on, "aws:route53/healthCheck:HealthCheck", "monitoring-uptime").inputs.fqdn, "staging.nourishlink.rw");
  });

  it("alarms on exactly the metric, namespace and dimensions the database host publishes", () => {
    for (const [r, stack] of [[prod, "prod"], [staging, "staging"]] as const) {
      const host = publishedBy(r);
      assert.strictEqual(host.env.STACK, stack);
      assert.strictEqual(host.env.ROLE, "db");
      assert.deepStrictEqual(host.dimensions, { Stack: stack, Role: "db" });
      assert.deepStrictEqual(successMetrics(r, "backup.sh"), ["BackupSuccess"]);
      assert.ok(successMetrics(r, "pitr.sh").includes("PitrBackupSuccess"));
      const alarms = hostMetricAlarms(r, host.namespace);
      assert.deepStrictEqual(alarms.map((a) => a.inputs.metricName).sort(), ["BackupSuccess", "PitrBackupSuccess"]);
      for (const a of alarms) {
        assert.strictEqual(a.inputs.namespace, "NourishLink");
        assert.deepStrictEqual(a.inputs.dimensions, host.dimensions, `${a.name}: dimensions differ from what the host sends`);
        assert.strictEqual(a.inputs.unit, undefined, `${a.name}: a unit the host does not send matches no datapoint`);
        assert.strictEqual(a.inputs.name, `nourish-link-${stack}-${a.name.replace(/^monitoring-/, "")}`);
      }
    }
  });

  it("fires when no backup succeeded for 26 h: Sum < 1, missing data breaching, within CloudWatch's limits", () => {
    for (const a of hostMetricAlarms(prod, "NourishLink")) {
      const i = a.inputs as Record<string, number | string>;
      assert.strictEqual(i.statistic, "Sum");
      assert.strictEqual(i.comparisonOperator, "LessThanThreshold");
      assert.strictEqual(i.threshold, 1);
      assert.strictEqual(i.treatMissingData, "breaching");
      assert.strictEqual(i.datapointsToAlarm, i.evaluationPeriods, `${a.name}: one success anywhere in the window must keep it OK`);
      const window = Number(i.period) * Number(i.evaluationPeriods);
      assert.ok(window >= 26 * 3600, `${a.name}: window ${window} s is shorter than 24 h + slack`);
      assert.ok(window <= 7 * 86400, `${a.name}: window ${window} s is over CloudWatch's 7 days`);
      assert.ok(Number(i.period) >= 3600 || window <= 86400, `${a.name}: a sub-hour period caps the window at a day`);
      assert.strictEqual(Number(i.period) % 60, 0);
    }
    assert.throws(() => checkAlarmWindow({ id: "x", period: 60, evaluationPeriods: 1500, datapointsToAlarm: 1500 }), /one day/);
    assert.throws(() => checkAlarmWindow({ id: "x", period: 86400, evaluationPeriods: 8, datapointsToAlarm: 8 }), /7 days/);
    assert.throws(() => checkAlarmWindow({ id: "x", period: 90, evaluationPeriods: 2, datapointsToAlarm: 2 }), /multiple of 60/);
  });

  it("stays OK on nightly backups (delay, slow runs, a clock change) and fires 26-27 h after the last one", () => {
    const spec = { period: MISSING_PERIOD_SECONDS, evaluationPeriods: MISSING_EVALUATION_PERIODS, datapointsToAlarm: MISSING_EVALUATION_PERIODS };
    assert.strictEqual(MISSING_WINDOW_HOURS, 26);
    // 30 nights at 02:00 + up to 15 min delay + 5-35 min of work; from night 12 on the clock is an
    // hour back (a DST change), so that night comes 25 h after the one before.
    const nights = Array.from({ length: 30 }, (_, d) => d * 24 + 2 + ((d * 7) % 15) / 60 + (5 + ((d * 13) % 30)) / 60 + (d >= 12 ? 1 : 0));
    for (let now = nights[0] + 0.01; now < nights[29] + 24; now += 1 / 60) {
      assert.ok(!inAlarm(spec, nights, now), `false alarm at hour ${now.toFixed(2)}`);
    }
    // The backup stops after the last night: ALARM 26-27 h later, and not before.
    const last = nights[29];
    assert.ok(!inAlarm(spec, nights, last + MISSING_WINDOW_HOURS - 0.01));
    assert.ok(inAlarm(spec, nights, last + MISSING_WINDOW_HOURS + 1.01));
    // One daily period would not do: its bucket is empty each day until that night's backup lands.
    assert.ok(inAlarm({ period: 86400, evaluationPeriods: 1, datapointsToAlarm: 1 }, [2.2, 26.25], 26.22));
  });

  it("notifies the topic on ALARM and on OK", () => {
    const topicArn = String(prod.outputs.alertTopicArn);
    assert.ok(topicArn.startsWith("arn:aws:sns:af-south-1:") && topicArn.endsWith(one(prod, TOPIC, "monitoring-alerts").id), `alertTopicArn ${topicArn} is not the topic's`);
    for (const a of hostMetricAlarms(prod, "NourishLink")) {
      assert.deepStrictEqual(a.inputs.alarmActions, [topicArn], `${a.name}: alarm actions`);
      assert.deepStrictEqual(a.inputs.okActions, [topicArn], `${a.name}: OK actions`);
    }
  });

  it("alarms on PitrBackupSuccess only with backups.pitr", async () => {
    const noPitr = await runStack("prod", { set: { backups: { pitr: false } } });
    assert.deepStrictEqual(hostMetricAlarms(noPitr, "NourishLink").map((a) => a.inputs.metricName), ["BackupSuccess"]);
    const config = await loadStackConfig("prod", { set: { backups: { pitr: false } } });
    assert.deepStrictEqual(backupAlarms(config).map((a) => a.metricName), ["BackupSuccess"]);
  });

  it("has no backup alarm without backups, nor for RDS (no host publishes there); the topic stays for every other alarm", async () => {
    for (const set of [{ backups: { enabled: false, pitr: false } }, { database: { managed: true } }]) {
      const r = await runStack("staging", { set });
      const what = JSON.stringify(set);
      assert.deepStrictEqual(hostMetricAlarms(r, "NourishLink"), [], `${what}: backup alarms`);
      assert.strictEqual(ofType(r, TOPIC).length, 1, `${what}: alert topic`);
      assert.strictEqual(String(r.outputs.alertTopicArn), `arn:aws:sns:af-south-1:123456789012:${one(r, TOPIC, "monitoring-alerts").id}`);
      assert.ok(ofType(r, ALARM).some((a) => a.inputs.metricName === "StatusCheckFailed_System"), "the hosts' recovery alarms are gone too: the filter proves nothing");
    }
  });
});
