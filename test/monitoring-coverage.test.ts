// Every alarm watches a metric something in the package publishes, with the same namespace, name
// and dimensions, and every metric we publish is alarmed or on the dashboard. Publishers are read
// from what the plan and the hosts actually get, not from the constants the alarms are built from:
// - AWS itself: AWS/EC2 for each instance in the plan (CPU credits on t* types only),
//   AWS/ApplicationELB for the load balancer and target group, AWS/RDS for the RDS instance;
// - the CloudWatch agent: the config file each host role receives, named as the agent names
//   metrics (measurement prefixed by plugin, omit_hostname, append_dimensions, drop_device);
// - log metric filters in the plan;
// - nourishctl: `metric NAME` calls and lib/metrics.sh's SQL in the scripts each role receives,
//   `nourishctl job-failed` through each job unit's OnFailure=, dimensions from host.env.
import * as assert from "assert";
import * as fs from "fs";
import { estateAlarms, WatchedEstate } from "../components/monitoring/alarms";
import { DISK_FSTYPE, watchedMounts, watchedProcesses } from "../components/monitoring/agent";
import { LOG_SOURCES, logMetricNamespace } from "../components/monitoring/logs";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_PATH, NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { hex } from "../scripts/preview/mocks";
import { hostFiles } from "../scripts/preview/plan";
import { loadStackConfig, ofType, one, ProgramRun, RecordedResource, runStack } from "./harness";

const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";

interface Metric { namespace: string; metricName: string; dimensions: Record<string, string> }
const key = (m: Metric) => `${m.namespace} ${m.metricName} ${JSON.stringify(Object.entries(m.dimensions).sort())}`;

/** The metrics an alarm reads (one, or each of its expression's). */
function alarmReads(a: RecordedResource): Metric[] {
  const i = a.inputs as Record<string, any>;
  if (i.metricQueries) {
    return (i.metricQueries as any[]).filter((q) => q.metric).map((q) => ({ namespace: q.metric.namespace, metricName: q.metric.metricName, dimensions: q.metric.dimensions ?? {} }));
  }
  return [{ namespace: i.namespace, metricName: i.metricName, dimensions: i.dimensions ?? {} }];
}

function filesOf(r: ProgramRun, role: string): Map<string, string> {
  return new Map(hostFiles(r).filter((f) => f.role === role).map((f) => [f.path, f.content]));
}

/** Everything the estate in this plan publishes, with who publishes it. */
function published(r: ProgramRun, stack: string): Map<string, { m: Metric; by: string; ours: boolean }> {
  const out = new Map<string, { m: Metric; by: string; ours: boolean }>();
  const put = (m: Metric, by: string, ours: boolean) => out.set(key(m), { m, by, ours });
  const instances = ofType(r, "aws:ec2/instance:Instance");
  for (const i of instances) {
    const InstanceId = i.id;
    for (const n of ["CPUUtilization", "StatusCheckFailed_System", "StatusCheckFailed_Instance"]) put({ namespace: "AWS/EC2", metricName: n, dimensions: { InstanceId } }, "EC2", false);
    if (/^t\d/.test(String(i.inputs.instanceType))) put({ namespace: "AWS/EC2", metricName: "CPUCreditBalance", dimensions: { InstanceId } }, "EC2 (burstable)", false);
  }
  const lbs = ofType(r, "aws:lb/loadBalancer:LoadBalancer");
  const tgs = ofType(r, "aws:lb/targetGroup:TargetGroup");
  for (const lb of lbs) {
    // CloudWatch's dimensions are the ARN suffixes, as the mocks give them (the ARN's tail).
    const LoadBalancer = `app/${lb.name}/${hex(lb.name, 16)}`;
    for (const n of ["RequestCount", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "TargetResponseTime"]) put({ namespace: "AWS/ApplicationELB", metricName: n, dimensions: { LoadBalancer } }, "ALB", false);
    for (const tg of tgs) for (const n of ["UnHealthyHostCount", "HealthyHostCount"]) put({ namespace: "AWS/ApplicationELB", metricName: n, dimensions: { LoadBalancer, TargetGroup: `targetgroup/${tg.name}/${hex(tg.name, 16)}` } }, "ALB", false);
  }
  for (const db of ofType(r, "aws:rds/instance:Instance")) {
    for (const n of ["CPUUtilization", "FreeableMemory", "FreeStorageSpace", "DatabaseConnections", "MaximumUsedTransactionIDs"]) put({ namespace: "AWS/RDS", metricName: n, dimensions: { DBInstanceIdentifier: String(db.inputs.identifier ?? `${db.name}-${hex(db.name, 7)}`) } }, "RDS", false);
  }
  // S3 publishes each bucket's size per storage class, daily (the mocks' bucket id is its name).
  for (const b of ofType(r, "aws:s3/bucket:Bucket")) put({ namespace: "AWS/S3", metricName: "BucketSizeBytes", dimensions: { BucketName: b.id, StorageType: "StandardStorage" } }, "S3", false);
  // Route 53 publishes each health check's status (in us-east-1, where the uptime alarm lives).
  for (const hc of ofType(r, "aws:route53/healthCheck:HealthCheck")) put({ namespace: "AWS/Route53", metricName: "HealthCheckStatus", dimensions: { HealthCheckId: hc.id } }, "Route 53", false);
  for (const f of ofType(r, "aws:cloudwatch/logMetricFilter:LogMetricFilter")) {
    const t = f.inputs.metricTransformation as { namespace: string; name: string };
    put({ namespace: t.namespace, metricName: t.name, dimensions: {} }, `metric filter ${f.name}`, true);
  }
  for (const role of ["app", "db"]) {
    const files = filesOf(r, role);
    const ids = instances.filter((i) => (i.inputs.tags as Record<string, string>).role === role).map((i) => i.id);
    if (!ids.length) continue;
    // The agent, as it names what its config asks for.
    const agentFile = files.get("/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json");
    assert.ok(agentFile, `${role} hosts get no CloudWatch agent config`);
    const agent = JSON.parse(agentFile);
    assert.strictEqual(agent.agent.omit_hostname, true, "the agent would add a host dimension");
    assert.deepStrictEqual(agent.metrics.append_dimensions, { InstanceId: "${aws:InstanceId}" });
    const ns = agent.metrics.namespace as string;
    const mc = agent.metrics.metrics_collected;
    for (const InstanceId of ids) {
      for (const plugin of ["mem", "swap"]) for (const m of mc[plugin].measurement) put({ namespace: ns, metricName: m.startsWith(`${plugin}_`) ? m : `${plugin}_${m}`, dimensions: { InstanceId } }, `agent ${plugin}`, true);
      assert.strictEqual(mc.disk.drop_device, true);
      for (const path of mc.disk.resources) for (const m of mc.disk.measurement) put({ namespace: ns, metricName: `disk_${m}`, dimensions: { InstanceId, path, fstype: DISK_FSTYPE } }, "agent disk", true);
      for (const p of mc.procstat) {
        const [by] = ["exe", "pattern", "pid_file"].filter((k) => k in p);
        for (const m of p.measurement) put({ namespace: ns, metricName: `procstat_lookup_${m}`, dimensions: { InstanceId, [by]: p[by], pid_finder: "native" } }, "agent procstat", true);
      }
    }
    // nourishctl: the scripts this role receives, their namespace and dimensions from host.env.
    const env = Object.fromEntries((files.get("/etc/nourish-link/host.env") ?? "").trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2).map((v) => v.replace(/^"|"$/g, "")) as [string, string]));
    assert.strictEqual(env.STACK, stack);
    const ctl = files.get(NOURISHCTL_PATH) ?? "";
    const call = /aws cloudwatch put-metric-data[^\n]*\\\n[^\n]*/.exec(ctl)?.[0] ?? "";
    assert.match(call, /--namespace NourishLink\b/);
    assert.match(call, /--dimensions "Stack=\$STACK,Role=\$ROLE"/);
    const dims = { Stack: env.STACK, Role: env.ROLE };
    const libs = [...files].filter(([p]) => p.startsWith(`${NOURISHCTL_LIB_PATH}/`));
    for (const [p, text] of libs) {
      // backup.sh on an app host refuses every verb unless the database is managed (bk_here;
      // test/managed-backup.test.ts): only then does an app host publish the backup metrics.
      if (role === "app" && p.endsWith("/backup.sh") && env.DB_MANAGED !== "true") {
        assert.match(text, /^bk_here\(\) \{\n  \[ "\$\{ROLE:-\}" != app \] \|\| \[ "\$DB_MANAGED" = true \]/m);
        continue;
      }
      for (const m of text.matchAll(/^\s*metric (\w+) /gm)) put({ namespace: "NourishLink", metricName: m[1], dimensions: dims }, `nourishctl (${p})`, true);
      if (p.endsWith("/metrics.sh")) {
        assert.match(text, /put-metric-data [^\n]*--namespace NourishLink /);
        assert.match(text, /json_build_object\('Name', 'Stack', 'Value', :'stack'\), json_build_object\('Name', 'Role', 'Value', :'role'\)/);
        for (const m of text.matchAll(/^\s*\('(\w+)', '(?:Count|Percent|Seconds|Bytes)'/gm)) put({ namespace: "NourishLink", metricName: m[1], dimensions: dims }, "nourishctl metrics", true);
      }
      if (p.endsWith("/jobs.sh")) {
        assert.match(text, /--namespace NourishLink\s+\\\n\s+--metric-name JobFailed --dimensions "Stack=\$STACK,Role=\$ROLE,Job=\$job"/);
        assert.match(files.get("/etc/systemd/system/nourish-link-job-failed@.service") ?? "", /^ExecStart=\/usr\/local\/sbin\/nourishctl job-failed %i$/m);
        for (const [unit, content] of files) {
          const job = /^OnFailure=nourish-link-job-failed@([a-z0-9-]+)\.service$/m.exec(content)?.[1];
          if (unit.endsWith(".service") && job) put({ namespace: "NourishLink", metricName: "JobFailed", dimensions: { ...dims, Job: job } }, `OnFailure= of ${unit}`, true);
        }
      }
    }
  }
  return out;
}

function dashboardReads(r: ProgramRun): Set<string> {
  const d = ofType(r, "aws:cloudwatch/dashboard:Dashboard");
  assert.strictEqual(d.length, 1);
  const body = JSON.parse(String(d[0].inputs.dashboardBody)) as { widgets: { properties: { metrics: unknown[][] } }[] };
  const seen = new Set<string>();
  for (const w of body.widgets) for (const line of w.properties.metrics) {
    const parts = line.filter((p) => typeof p === "string") as string[];
    const [namespace, metricName, ...rest] = parts;
    const dimensions: Record<string, string> = {};
    for (let i = 0; i + 1 < rest.length; i += 2) dimensions[rest[i]] = rest[i + 1];
    seen.add(key({ namespace, metricName, dimensions }));
  }
  return seen;
}

const VARIANTS: [string, Record<string, unknown>][] = [
  ["staging", {}],
  ["prod", {}],
  ["prod", { database: { managed: true } }],
  ["staging", { backups: { enabled: false, pitr: false } }],
];

describe("monitoring: every alarm watches what something publishes, everything published is watched", () => {
  const runs: { stack: string; set: Record<string, unknown>; r: ProgramRun }[] = [];
  before(async () => {
    for (const [stack, set] of VARIANTS) runs.push({ stack, set, r: await runStack(stack, { set }) });
  });

  it("every alarm's metrics are published with exactly that namespace, name and dimensions", () => {
    for (const { stack, set, r } of runs) {
      const pub = published(r, stack);
      const alarms = ofType(r, ALARM);
      assert.ok(alarms.length > 20, `${stack} ${JSON.stringify(set)}: only ${alarms.length} alarms`);
      const orphans: string[] = [];
      for (const a of alarms) for (const m of alarmReads(a)) if (!pub.has(key(m))) orphans.push(`${a.name}: ${key(m)}`);
      assert.deepStrictEqual(orphans, [], `${stack} ${JSON.stringify(set)}: alarms on metrics nothing publishes`);
    }
  });

  it("every metric we publish (agent, log filters, nourishctl) is alarmed or on the dashboard", () => {
    for (const { stack, set, r } of runs) {
      const pub = published(r, stack);
      const watched = new Set([...ofType(r, ALARM).flatMap((a) => alarmReads(a).map(key)), ...dashboardReads(r)]);
      const unwatched = [...pub.values()].filter((p) => p.ours && !watched.has(key(p.m))).map((p) => `${p.by}: ${key(p.m)}`);
      assert.deepStrictEqual(unwatched, [], `${stack} ${JSON.stringify(set)}`);
      // And the dashboard shows only what is published.
      const bogus = [...dashboardReads(r)].filter((k) => !pub.has(k));
      assert.deepStrictEqual(bogus, [], `${stack} ${JSON.stringify(set)}: dashboard lines nothing publishes`);
    }
  });

  it("every alarm notifies the topic on ALARM and on OK; the status checks also recover and reboot", () => {
    for (const { r } of runs) {
      const mainTopic = String(r.outputs.alertTopicArn);
      assert.match(mainTopic, /^arn:aws:sns:af-south-1:/);
      for (const a of ofType(r, ALARM)) {
        // Route 53's status exists only in us-east-1: its alarm notifies the topic there.
        const topic = a.inputs.namespace === "AWS/Route53" ? String(r.outputs.uptimeAlertTopicArn) : mainTopic;
        if (a.inputs.namespace === "AWS/Route53") assert.match(topic, /^arn:aws:sns:us-east-1:/, a.name);
        const actions = a.inputs.alarmActions as string[];
        assert.strictEqual(actions[actions.length - 1], topic, `${a.name}: alarm actions ${actions}`);
        assert.deepStrictEqual(a.inputs.okActions, [topic], `${a.name}: OK actions`);
        const metric = String(a.inputs.metricName);
        const ec2 = actions.slice(0, -1);
        if (metric === "StatusCheckFailed_System") assert.deepStrictEqual(ec2, ["arn:aws:automate:af-south-1:ec2:recover"], a.name);
        else if (metric === "StatusCheckFailed_Instance") assert.deepStrictEqual(ec2, ["arn:aws:automate:af-south-1:ec2:reboot"], a.name);
        else assert.deepStrictEqual(ec2, [], a.name);
        assert.ok(a.inputs.treatMissingData, `${a.name}: treatMissingData not chosen`);
      }
    }
  });

  it("has an alarm for each way the prod estate breaks", () => {
    const prod = runs.find((x) => x.stack === "prod" && !Object.keys(x.set).length)!.r;
    const names = ofType(prod, ALARM).map((a) => a.name.replace(/^monitoring-/, ""));
    for (const want of [
      "db-status-system", "db-status-instance", "db-cpu-high", "db-memory-high", "db-disk-root", "db-disk-var-lib-postgresql", "db-process-postgres",
      "app-0-status-system", "app-1-status-instance", "app-1-cpu-credits-low", "app-0-process-nginx", "app-1-process-gunicorn", "app-0-disk-root",
      "http-5xx-rate", "http-p95", "unhealthy-targets", "app-errors", "db-connections-high", "db-lock-waits", "db-long-query", "db-wal-archive-stalled",
      "db-backup-missing", "db-pitr-backup-missing", "db-backup-size-drop", "job-failed-db-backup", "job-failed-db-metrics", "job-failed-app-status",
      "app-deploy-check", "job-failed-app-weekly-report", "uptime", "backup-bucket-size",
    ]) assert.ok(names.includes(want), `prod has no ${want} alarm`);
    assert.ok(!names.includes("db-cpu-credits-low"), "m6i is not burstable");
    const rds = ofType(runs.find((x) => JSON.stringify(x.set).includes("managed"))!.r, ALARM).map((a) => a.name.replace(/^monitoring-/, ""));
    for (const want of ["rds-cpu-high", "rds-memory-low", "rds-storage-low", "rds-connections-high", "rds-xid-high"]) assert.ok(rds.includes(want), `managed: no ${want}`);
    assert.ok(!rds.some((n) => n.startsWith("db-")), `managed: host alarms for a database host that does not exist: ${rds.filter((n) => n.startsWith("db-"))}`);
  });

  it("reads every monitoring threshold from config", async () => {
    const base = await loadStackConfig("prod");
    const estate: WatchedEstate<string> = {
      hosts: [{ name: "db", role: "db", instanceId: "i-db", instanceType: "t3.small" }, { name: "app-0", role: "app", instanceId: "i-app", instanceType: "t3.small" }],
      jobs: [{ role: "db", ids: ["backup"] }], backupBucket: "backups-archive",
    };
    const pubs = { processes: watchedProcesses, mounts: watchedMounts, fstype: DISK_FSTYPE, logNamespace: logMetricNamespace("prod") };
    const thresholds = (c: typeof base) => Object.fromEntries(estateAlarms(c, estate, pubs).map((a) => [a.id, a.threshold]));
    const before = thresholds(base);
    const keys = ["cpuHighPercent", "cpuCreditsMin", "memoryHighPercent", "diskFreeMinPercent", "http5xxPercent", "p95Seconds", "errorLinesPer5Min", "dbConnectionsPercent", "longQuerySeconds", "walArchiveStallSeconds", "backupSizeDropPercent", "backupBucketMaxGb"] as const;
    for (const k of keys) {
      const changed = thresholds({ ...base, monitoring: { ...base.monitoring, [k]: (base.monitoring[k] as number) + 1 } });
      assert.notDeepStrictEqual(changed, before, `monitoring.${k} changes no alarm`);
    }
    const prod = runs.find((x) => x.stack === "prod" && !Object.keys(x.set).length)!.r;
    const groups = ofType(prod, "aws:cloudwatch/logGroup:LogGroup").filter((x) => x.name.startsWith("monitoring-logs-"));
    assert.deepStrictEqual(groups.map((g) => g.inputs.name).sort(), LOG_SOURCES.map((s) => `/nourish-link/prod/${s.source}`).sort());
    for (const g of groups) {
      assert.strictEqual(g.inputs.retentionInDays, base.monitoring.logRetentionDays, `${g.inputs.name}`);
      assert.strictEqual(g.inputs.kmsKeyId, `arn:aws:kms:af-south-1:123456789012:key/${one(prod, "aws:kms/key:Key", "monitoring-logs-key").id}`);
    }
  });

  it("every alarm names a RUNBOOK row that exists and a nourishctl verb or SSM document to run, never raw SQL", () => {
    const runbook = fs.readFileSync("docs/RUNBOOK.md", "utf8");
    const section = runbook.slice(runbook.indexOf("## Alarms"), runbook.indexOf("\n## ", runbook.indexOf("## Alarms") + 5));
    // Each row's first cell names its alarm ids in backticks; its last cell says what to do.
    const rows = section.split("\n").filter((l) => l.startsWith("| `")).map((l) => l.split(" | "));
    const rowIds = new Set(rows.flatMap((cells) => [...cells[0].matchAll(/`([^`]+)`/g)].map((m) => m[1])));
    assert.ok(rowIds.has("<host>-cpu-high") && rowIds.has("db-lock-waits"), "the RUNBOOK's Alarms table");
    const SQL = /\bSELECT\b|\bFROM pg_|pg_(cancel|terminate)_backend/;
    for (const cells of rows) assert.doesNotMatch(cells[cells.length - 1], SQL, `the RUNBOOK's row ${cells[0]} says to run SQL`);
    const verbs = new Set([...fs.readFileSync(NOURISHCTL_SOURCE, "utf8").matchAll(/^cmd_([a-z_]+)\(\)/gm)].map((m) => m[1].replace(/_/g, "-")));
    for (const lib of fs.readdirSync("scripts/host/lib")) {
      for (const m of fs.readFileSync(`scripts/host/lib/${lib}`, "utf8").matchAll(/^cmd_([a-z_]+)\(\)/gm)) verbs.add(m[1].replace(/_/g, "-"));
    }
    for (const { stack, set, r } of runs) {
      for (const a of ofType(r, ALARM)) {
        const d = String(a.inputs.alarmDescription);
        const where = `${stack} ${JSON.stringify(set)} ${a.inputs.name}`;
        const row = /See docs\/RUNBOOK\.md, "Alarms", `([^`]+)`\.$/.exec(d);
        assert.ok(row, `${where}: the description does not end by naming its RUNBOOK row: ${d}`);
        assert.ok(rowIds.has(row[1]), `${where}: RUNBOOK has no Alarms row \`${row[1]}\``);
        assert.doesNotMatch(d, SQL, `${where}: raw SQL in the description`);
        // RDS's alarms: AWS runs that database, there is no host to run a verb on; the row says what to do.
        if (/-rds-/.test(String(a.inputs.name))) continue;
        const named = [...d.matchAll(/`nourishctl ([a-z-]+)/g)].map((m) => m[1]);
        assert.ok(named.length > 0 || /document -[a-z-]+/.test(d), `${where}: names no nourishctl verb or SSM document: ${d}`);
        for (const v of named) assert.ok(verbs.has(v), `${where}: nourishctl has no verb ${v}`);
      }
    }
  });

  it("docs/MONITORING.md and docs/RUNBOOK.md (Alarms) list each alarm the plans create", () => {
    const readme = fs.readFileSync("docs/MONITORING.md", "utf8");
    const runbook = fs.readFileSync("docs/RUNBOOK.md", "utf8");
    const alarmsSection = runbook.slice(runbook.indexOf("## Alarms"), runbook.indexOf("\n## ", runbook.indexOf("## Alarms") + 5));
    assert.ok(alarmsSection.length > 1000, "no Alarms section in the RUNBOOK");
    const ids = new Set<string>();
    for (const { stack, r } of runs) {
      for (const a of ofType(r, ALARM)) {
        const id = String(a.inputs.name).replace(`nourish-link-${stack}-`, "");
        const dims = (a.inputs.dimensions ?? {}) as Record<string, string>;
        ids.add(dims.InstanceId ? id.replace(/^(app-\d+|db)-/, "<host>-") : id.replace(/^job-failed-(app|db)-.*$/, "job-failed-<role>-<job>"));
      }
    }
    assert.ok(ids.size > 20);
    const missing = [...ids].filter((id) => !alarmsSection.includes(`\`${id}\``) || !readme.includes(`\`${id}\``));
    assert.deepStrictEqual(missing, [], "alarms docs/MONITORING.md or the RUNBOOK does not list");
  });
});
