// `nourishctl report monthly` against moto_server: metrics the test publishes in (and outside) the
// period, the report's spec as the stack renders it, S3 for the spec and the stored report, SNS to
// an SQS queue for the mail, Cost Explorer's answer queued in moto. moto has no
// DescribeAlarmHistory: REPORT_ALARM_HISTORY_FILE stands in for its answer (the one stand-in).
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { REPORT_SPEC_KEY, reportSpec } from "../components/monitoring/report";
import { loadStackConfig } from "./harness";
import { Moto, startMoto } from "./moto";
import { run } from "./tools";

describe("nourishctl report monthly: last month's figures from CloudWatch, stored once and mailed (moto_server)", () => {
  let moto: Moto | undefined;
  let root = "";
  let queueUrl = "";
  // The month before this one, UTC: its 1st and the next 1st.
  const now = new Date();
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
  const at = (days: number, hours = 0) => iso(new Date(start.getTime() + days * 86400e3 + hours * 3600e3));
  const aws = (...args: string[]) => {
    const r = moto!.aws(args);
    assert.strictEqual(r.status, 0, `aws ${args.slice(0, 2).join(" ")}: ${r.stderr}`);
    return r.stdout ? JSON.parse(r.stdout) : {};
  };
  const put = (namespace: string, name: string, dims: Record<string, string>, value: number, timestamp: string) =>
    aws("cloudwatch", "put-metric-data", "--namespace", namespace, "--metric-data", JSON.stringify([{
      MetricName: name, Value: value, Timestamp: timestamp, Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
    }]));
  const env = () => ({
    ...process.env, ...moto!.env, NOURISH_ROOT: root, S3_ENDPOINT: moto!.endpoint, CLOUDWATCH_ENDPOINT: moto!.endpoint,
    SNS_ENDPOINT: moto!.endpoint, CE_ENDPOINT: moto!.endpoint, REPORT_ALARM_HISTORY_FILE: path.join(root, "alarm-history.json"),
  });
  const report = () => run("bash", [NOURISHCTL_SOURCE, "report", "monthly", "--json", "--end", iso(end)], { env: env() });

  before(async () => {
    moto = await startMoto();
    root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-report-"));
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=app\nSTACK=staging\nREGION=af-south-1\nTOOLING_BUCKET=nl-tooling\nBACKUP_BUCKET=nl-backups\n");
    fs.mkdirSync(path.join(root, "srv/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "srv/nourish-link/releases.log"), [
      [at(-2), "switch", "1.3.0", "from 1.2.0", "ci"],
      [at(3), "switch", "1.4.0", "from 1.3.0", "ci"],
      [at(4), "switch", "1.4.1", "refused: health check failed", "ci"],
      [at(5), "rollback", "1.3.0", "from 1.4.0; migrations: none", "alice"],
      [at(9), "switch", "1.4.2", "from 1.3.0", "ci"],
    ].map((f) => f.join("\t") + "\n").join(""));
    // Two alarms of this stack went to ALARM (one twice), one of prod's: only staging's count.
    fs.writeFileSync(path.join(root, "alarm-history.json"), JSON.stringify({ AlarmHistoryItems: [
      { AlarmName: "nourish-link-staging-db-backup-missing", HistoryItemType: "StateUpdate", HistorySummary: "Alarm updated from OK to ALARM" },
      { AlarmName: "nourish-link-staging-db-backup-missing", HistoryItemType: "StateUpdate", HistorySummary: "Alarm updated from ALARM to OK" },
      { AlarmName: "nourish-link-staging-db-backup-missing", HistoryItemType: "StateUpdate", HistorySummary: "Alarm updated from OK to ALARM" },
      { AlarmName: "nourish-link-staging-http-p95", HistoryItemType: "StateUpdate", HistorySummary: "Alarm updated from INSUFFICIENT_DATA to ALARM" },
      { AlarmName: "nourish-link-prod-uptime", HistoryItemType: "StateUpdate", HistorySummary: "Alarm updated from OK to ALARM" },
    ] }));

    const config = await loadStackConfig("staging", { set: { monitoring: { monthlyBudgetUsd: 200 } } });
    const topic = aws("sns", "create-topic", "--name", "alerts").TopicArn as string;
    queueUrl = aws("sqs", "create-queue", "--queue-name", "mail").QueueUrl as string;
    const queueArn = aws("sqs", "get-queue-attributes", "--queue-url", queueUrl, "--attribute-names", "QueueArn").Attributes.QueueArn as string;
    aws("sns", "subscribe", "--topic-arn", topic, "--protocol", "sqs", "--notification-endpoint", queueArn, "--attributes", "RawMessageDelivery=true");
    const spec = reportSpec(config, { hosts: [{ name: "db", role: "db", instanceId: "i-0db", instanceType: "t3.small" }, { name: "app-0", role: "app", instanceId: "i-0app", instanceType: "t3.small" }], jobs: [] }, topic);
    for (const b of ["nl-tooling", "nl-backups"]) aws("s3api", "create-bucket", "--bucket", b, "--create-bucket-configuration", "LocationConstraint=af-south-1");
    // moto_server fails the whole GetMetricData on a percentile (it computes none); CloudWatch
    // computes them. So the spec uploaded here lacks the p95 query, and p95 is n/a below.
    fs.writeFileSync(path.join(root, "spec.json"), JSON.stringify({ ...spec, queries: spec.queries.filter((q) => q.stat !== "p95") }));
    aws("s3api", "put-object", "--bucket", "nl-tooling", "--key", REPORT_SPEC_KEY, "--body", path.join(root, "spec.json"));

    const logs = "NourishLink/Logs/staging";
    const db = { Stack: "staging", Role: "db" };
    put(logs, "HttpRequests", {}, 1200, at(2)); put(logs, "HttpRequests", {}, 800, at(20));
    put(logs, "HttpRequests", {}, 99999, at(-1)); // the month before: not counted
    put(logs, "Http5xx", {}, 30, at(2)); put(logs, "Http5xx", {}, 20, at(21));
    put(logs, "HttpRequestTime", {}, 0.25, at(2));
    put("AWS/EC2", "CPUUtilization", { InstanceId: "i-0app" }, 40, at(1)); put("AWS/EC2", "CPUUtilization", { InstanceId: "i-0app" }, 75.5, at(12));
    put("AWS/EC2", "CPUUtilization", { InstanceId: "i-0db" }, 20, at(1));
    put("CWAgent", "mem_used_percent", { InstanceId: "i-0app" }, 61.25, at(7));
    put("CWAgent", "disk_used_percent", { InstanceId: "i-0app", path: "/", fstype: "ext4" }, 33, at(7));
    put("CWAgent", "disk_used_percent", { InstanceId: "i-0db", path: "/var/lib/postgresql", fstype: "ext4" }, 71.5, at(8));
    put("NourishLink", "DbSizeBytes", db, 1000, at(1)); put("NourishLink", "DbSizeBytes", db, 2048, at(25));
    put("NourishLink", "DbConnections", db, 7, at(1)); put("NourishLink", "DbConnections", db, 12, at(3));
    for (const d of [1, 2, 3]) put("NourishLink", "BackupSuccess", db, 1, at(d, 2));
    put("NourishLink", "JobFailed", { ...db, Job: "verify-backup" }, 1, at(6));
    put("NourishLink", "RestoreRehearsalSeconds", { Stack: "staging", Role: "app" }, 412.5, at(4, 6));
    put("NourishLink", "RestoreRehearsalSeconds", { Stack: "staging", Role: "app" }, 380.25, at(11, 6));
    // Cost Explorer's answer for the next request (moto serves queued results).
    const r = await fetch(`${moto!.endpoint}/moto-api/static/ce/cost-and-usage-results`, {
      method: "POST", headers: { "content-type": "application/json" },
      // For this test's account: in a run of the suite the moto_server is shared, an account per caller.
      body: JSON.stringify({ account_id: moto!.aws(["sts", "get-caller-identity", "--query", "Account", "--output", "text"]).stdout.trim(), results: [{ ResultsByTime: [{ TimePeriod: { Start: iso(start).slice(0, 10), End: iso(end).slice(0, 10) }, Total: { UnblendedCost: { Amount: "123.456", Unit: "USD" } }, Groups: [], Estimated: false }] }] }),
    });
    assert.strictEqual(r.status, 201);
  });
  after(() => {
    moto?.stop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("computes exact figures, stores JSON and Markdown under reports/monthly/ and mails the short text", () => {
    const r = report();
    assert.strictEqual(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    const { releases, rollbacks, ...figures } = doc;
    assert.deepStrictEqual(figures, {
      stack: "staging", report: "monthly", start: iso(start), end: iso(end),
      // No p95 query here (above): n/a.
      traffic: { source: "nginx-log", requests: 2000, errors5xx: 50, errorRatePercent: 2.5, p95Seconds: null },
      uptimePercent: null, uptimeSource: null,
      hosts: [
        { name: "db", cpuMaxPercent: 20, memoryMaxPercent: null, diskMaxPercent: { "/": null, "/var/lib/postgresql": 71.5 } },
        { name: "app-0", cpuMaxPercent: 75.5, memoryMaxPercent: 61.25, diskMaxPercent: { "/": 33 } },
      ],
      database: { sizeBytesMax: 2048, connectionsMax: 12 },
      backups: { taken: 3, verifyFailures: 1 },
      restoreRehearsal: { day: at(11).slice(0, 10), rtoSeconds: 380.25 }, rehearsalHere: true,
      alarmsFired: [{ alarm: "db-backup-missing", times: 2 }, { alarm: "http-p95", times: 1 }],
      cost: { month: iso(start).slice(0, 7), usd: 123.46, budgetUsd: 200, budgetUsedPercent: 61.7 },
    });
    assert.deepStrictEqual(releases.map((x: { version: string }) => x.version), ["1.4.0", "1.4.2"]);
    assert.deepStrictEqual(rollbacks.map((x: { version: string; by: string }) => [x.version, x.by]), [["1.3.0", "alice"]]);

    const key = `reports/monthly/${iso(start).slice(0, 10)}_${iso(end).slice(0, 10)}`;
    const stored = path.join(root, "stored");
    aws("s3api", "get-object", "--bucket", "nl-backups", "--key", `${key}.json`, stored);
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(stored, "utf8")), doc);
    aws("s3api", "get-object", "--bucket", "nl-backups", "--key", `${key}.md`, stored);
    const md = fs.readFileSync(stored, "utf8");
    assert.match(md, /^# NOURISH LINK staging: monthly report$/m);
    assert.match(md, /^\| Requests \| 2000; 5xx: 50 \(2\.5 %\); p95: n\/a \|$/m);
    assert.match(md, /^\| Uptime \| n\/a \(no load balancer or uptime check on this stack\) \|$/m);
    assert.match(md, /^\| app-0 \| CPU max 75\.5 %, memory max 61\.25 %, disk \/ max 33 % \|$/m);
    assert.match(md, /^\| Backups \| 3 taken, 1 verification failures \|$/m);
    assert.match(md, /^\| AWS cost \| 123\.46 USD \(\d{4}-\d{2}\) of a 200 USD budget \(61\.7 %\) \|$/m);
    assert.match(md, /rollback 1\.3\.0 \(from 1\.4\.0; migrations: none, by alice\)/);

    const got = aws("sqs", "receive-message", "--queue-url", queueUrl, "--max-number-of-messages", "10", "--wait-time-seconds", "5");
    assert.strictEqual(got.Messages.length, 1);
    const text = got.Messages[0].Body as string;
    assert.match(text, /^NOURISH LINK staging: monthly report, /);
    assert.match(text, /^Database: size max 2048 bytes, connections max 12$/m);
    assert.match(text, /^Last restore rehearsal: \d{4}-\d{2}-\d{2}, RTO 380\.25 s$/m);
    assert.match(text, /^Alarms fired: 3; db-backup-missing x2; http-p95 x1$/m);
    aws("sqs", "delete-message", "--queue-url", queueUrl, "--receipt-handle", got.Messages[0].ReceiptHandle);
  });

  it("a re-run overwrites nothing and mails nothing again", () => {
    const r = report();
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /reports\/monthly\/\S+ exists already: not stored or mailed again/);
    const got = aws("sqs", "receive-message", "--queue-url", queueUrl, "--wait-time-seconds", "1");
    assert.strictEqual(got.Messages, undefined);
  });

  it("a figure AWS does not give (moto_server has no DescribeAlarmHistory; Cost Explorer out of reach) reads n/a, and the report is still stored and mailed", () => {
    const { REPORT_ALARM_HISTORY_FILE: _, ...rest } = env();
    const without = { ...rest, CE_ENDPOINT: "http://127.0.0.1:9" };
    const earlier = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1));
    const r = run("bash", [NOURISHCTL_SOURCE, "report", "monthly", "--json", "--end", iso(earlier)], { env: without });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /^nourishctl: report monthly: cloudwatch describe-alarm-history failed; alarms fired: n\/a$/m);
    assert.match(r.stderr, /^nourishctl: report monthly: ce get-cost-and-usage failed; AWS cost: n\/a$/m);
    assert.strictEqual(JSON.parse(r.stdout).alarmsFired, null);
    assert.strictEqual(JSON.parse(r.stdout).cost.usd, null);
    const got = aws("sqs", "receive-message", "--queue-url", queueUrl, "--wait-time-seconds", "5");
    assert.match(got.Messages[0].Body, /^Alarms fired: n\/a \(the alarm history could not be read\)$/m);
  });

  it("refuses an --end that is not the 1st of a month, naming it", () => {
    const r = run("bash", [NOURISHCTL_SOURCE, "report", "monthly", "--end", "2026-12-07T00:00:00Z"], { env: env() });
    assert.strictEqual(r.status, 1);
    assert.strictEqual(r.stderr.trim(), "nourishctl: report monthly: --end '2026-12-07T00:00:00Z' is not the 1st of a month at 00:00:00Z");
  });
});
