import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DEFAULTS } from "../components/config";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { calendarElapses, calendarProblem, isOnCalendar } from "../components/schedules/calendar";
import { scheduledJobs } from "../components/schedules/jobs";
import { renderJobFailedService, renderJobService, renderTimer } from "../components/schedules/systemd";
import { instanceFiles } from "../scripts/preview/plan";
import { loadStackConfig, ofType, one, runStack } from "./harness";
import { requireTool, run } from "./tools";

// Good and bad expressions, judged by systemd's own parser.
const EXPRESSIONS = [
  "*-*-* 02:00:00", "Sun *-*-* 23:00:00", "*-*-01 03:30:00", "daily", "weekly", "monthly",
  "Mon..Fri 08:00", "Sat,Sun 10:00", "Mon", "02:00", "*:0/15", "Fri *-*-1..7 18:00", "*-*-* 2:0",
  "*-*-* 02:00:00 Africa/Kigali", "daily Africa/Kigali", "weekly UTC", "2026-12-24 18:00:00", "*-01,07-01 00:00:00",
  "every night", "Sun *-*-* 25:00:00", "*-13-01 00:00", "Africa/Kigali", "Mooday 10:00",
  "*-*-* 02:00:00 Mars/Olympus", "*-*-* 24:00:00", "", "02:60", "*-*-32 00:00", "0 2 * * *",
];

describe("schedules: OnCalendar validation", () => {
  it("agrees with `systemd-analyze calendar` on every sample", () => {
    requireTool("systemd-analyze");
    const disagreements: string[] = [];
    for (const expr of EXPRESSIONS) {
      const systemd = run("systemd-analyze", ["calendar", expr]).status === 0;
      if (isOnCalendar(expr) !== systemd) disagreements.push(`${JSON.stringify(expr)}: systemd says ${systemd ? "valid" : "invalid"}`);
    }
    assert.deepStrictEqual(disagreements, []);
    // The samples must exercise both answers, or the comparison proves nothing.
    assert.ok(EXPRESSIONS.some(isOnCalendar) && !EXPRESSIONS.every(isOnCalendar));
  });

  it("agrees with `systemd-analyze calendar` on which valid expressions never elapse", () => {
    requireTool("systemd-analyze");
    const samples = [
      "*-02-31 02:00:00", "*-02-30", "*-04-31", "*-06-31 12:00", "2020-01-01", "Sat 2027-02-29", "*-02,04-31",
      "*-*-31", "Mon *-*-31", "Fri *-02-29", "*-02-29", "*-*-* 02:00:00", "Sun *-*-* 23:00:00", "*-*-01 03:30:00",
      "Fri *-*-1..7 18:00", "*-01,07-01 00:00:00", "2199-12-31", "daily", "monthly", "Mon..Fri 08:00", "*-02-28..31",
    ];
    const disagreements: string[] = [];
    for (const expr of samples) {
      const r = run("systemd-analyze", ["calendar", expr]);
      assert.strictEqual(r.status, 0, `${expr}: ${r.stderr}`);
      const never = /Next elapse: never/.test(r.stdout);
      if (calendarElapses(expr) === never) disagreements.push(`${JSON.stringify(expr)}: systemd says ${never ? "never" : "it elapses"}`);
    }
    assert.deepStrictEqual(disagreements, []);
    assert.ok(samples.some((e) => !calendarElapses(e)) && samples.some((e) => calendarElapses(e)));
  });

  it("names why a schedule is refused: a line break, not an expression, never elapsing", () => {
    assert.match(String(calendarProblem("*-*-* 02:00:00\nExecStartPre=/bin/sh")), /must be one line/);
    assert.match(String(calendarProblem("daily\n")), /must be one line/);
    assert.match(String(calendarProblem("every night")), /must be a systemd OnCalendar expression/);
    assert.match(String(calendarProblem("*-02-31 02:00:00")), /never elapses/);
    assert.strictEqual(calendarProblem("Sun *-*-* 23:00:00"), undefined);
  });

  it("rejects cron syntax, the manual's old way", () => {
    assert.strictEqual(isOnCalendar("0 2 * * *"), false);
  });
});

describe("schedules: systemd timers for the manual's procedures", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-timers-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const jobsOf = async (stack: string, role: "app" | "db", set: Record<string, unknown> = {}) =>
    scheduledJobs(await loadStackConfig(stack, { set }), role);

  it("runs the nightly backup at the configured time, catching up missed runs, with a random delay", async () => {
    const backup = (await jobsOf("prod", "db")).find((j) => j.id === "backup");
    assert.ok(backup, "no backup job on the prod database host");
    const timer = renderTimer(backup);
    assert.match(timer, /^OnCalendar=\*-\*-\* 02:00:00 Africa\/Kigali$/m);
    assert.match(timer, /^Persistent=true$/m);
    assert.match(timer, /^RandomizedDelaySec=15min$/m);
    assert.match(renderJobService(backup), /^ExecStart=\/usr\/local\/sbin\/nourishctl backup$/m);
    const moved = (await jobsOf("prod", "db", { backups: { schedule: "*-*-* 03:15:00" } })).find((j) => j.id === "backup");
    assert.match(renderTimer(moved!), /^OnCalendar=\*-\*-\* 03:15:00 Africa\/Kigali$/m);
  });

  it("verifies the latest backup weekly (Sunday 04:00 by default), catching up missed runs, only with backups", async () => {
    const verify = (await jobsOf("prod", "db")).find((j) => j.id === "verify-backup");
    assert.ok(verify, "no verify-backup job on the prod database host");
    const timer = renderTimer(verify);
    assert.match(timer, /^OnCalendar=Sun \*-\*-\* 04:00:00 Africa\/Kigali$/m);
    assert.match(timer, /^Persistent=true$/m);
    assert.match(timer, /^RandomizedDelaySec=15min$/m);
    assert.match(timer, /^Unit=nourish-link-verify-backup\.service$/m);
    assert.match(renderJobService(verify), /^ExecStart=\/usr\/local\/sbin\/nourishctl backups verify --latest$/m);
    const moved = (await jobsOf("prod", "db", { maintenance: { verifyBackupSchedule: "Sat *-*-* 05:30:00" } })).find((j) => j.id === "verify-backup");
    assert.match(renderTimer(moved!), /^OnCalendar=Sat \*-\*-\* 05:30:00 Africa\/Kigali$/m);
    for (const set of [{ backups: { enabled: false, pitr: false } }, { database: { managed: true } }]) {
      assert.ok(!(await jobsOf("staging", "db", set)).some((j) => j.id === "verify-backup"), `verify-backup with ${JSON.stringify(set)}`);
    }
    assert.ok(!(await jobsOf("prod", "app")).some((j) => j.id === "verify-backup"), "verify-backup on an app host");
  });

  it("staging rehearses prod's restore weekly (db host restores, app hosts finish an hour later) and reports its age hourly; prod and a managed database never", async () => {
    const db = (await jobsOf("staging", "db")).find((j) => j.id === "restore-rehearsal")!;
    assert.match(renderJobService(db), /^ExecStart=\/usr\/local\/sbin\/nourishctl restore-rehearsal --latest$/m);
    assert.match(renderTimer(db), /^OnCalendar=Sat \*-\*-\* 05:00:00 Africa\/Kigali$/m);
    const app = await jobsOf("staging", "app");
    const verify = app.find((j) => j.id === "restore-rehearsal-verify")!;
    assert.match(renderJobService(verify), /^ExecStart=\/usr\/local\/sbin\/nourishctl restore-rehearsal-verify$/m);
    assert.match(renderTimer(verify), /^OnCalendar=Sat \*-\*-\* 06:00:00 Africa\/Kigali$/m);
    const age = app.find((j) => j.id === "restore-rehearsal-age")!;
    assert.match(renderJobService(age), /^ExecStart=\/usr\/local\/sbin\/nourishctl restore-rehearsal-verify --report-age$/m);
    assert.match(renderTimer(age), /^OnCalendar=\*-\*-\* \*:17:00 Africa\/Kigali$/m);
    const moved = (await jobsOf("staging", "db", { rehearsal: { schedule: "Wed *-*-* 03:00:00" } })).find((j) => j.id === "restore-rehearsal")!;
    assert.match(renderTimer(moved), /^OnCalendar=Wed \*-\*-\* 03:00:00 Africa\/Kigali$/m);
    for (const [stack, set] of [["prod", {}], ["staging", { rehearsal: { enabled: false } }], ["staging", { database: { managed: true } }]] as const) {
      for (const role of ["db", "app"] as const) {
        assert.ok(!(await jobsOf(stack, role, set)).some((j) => j.id.startsWith("restore-rehearsal")), `${stack} ${role} ${JSON.stringify(set)}`);
      }
    }
  });

  it("puts database jobs on the database host only, and none for a managed database", async () => {
    assert.deepStrictEqual((await jobsOf("prod", "db")).map((j) => j.id), ["status", "vacuum", "reindex", "db-check", "metrics", "backup", "verify-backup", "verify-all-backups", "log-archive", "pitr-backup"]);
    assert.deepStrictEqual((await jobsOf("prod", "db", { backups: { pitr: false } })).map((j) => j.id), ["status", "vacuum", "reindex", "db-check", "metrics", "backup", "verify-backup", "verify-all-backups", "log-archive"]);
    assert.deepStrictEqual((await jobsOf("staging", "db", { backups: { enabled: false, pitr: false } })).map((j) => j.id), ["status", "vacuum", "reindex", "db-check", "metrics", "restore-rehearsal"]);
    assert.deepStrictEqual((await jobsOf("prod", "app")).map((j) => j.id), ["status", "log-archive", "manage-daily-orders", "weekly-report", "monthly-report"]);
    // app-0 writes the reports and runs the app's jobs; the other app hosts run the weekly checks only.
    const others = scheduledJobs(await loadStackConfig("prod"), "app", false);
    assert.deepStrictEqual(others.map((j) => j.id), ["status", "log-archive", "weekly-report"]);
    assert.match(renderJobService(others.find((j) => j.id === "weekly-report")!), /^ExecStart=\/usr\/local\/sbin\/nourishctl report weekly --checks-only$/m);
    assert.match(renderJobService((await jobsOf("prod", "app")).find((j) => j.id === "monthly-report")!), /^ExecStart=\/usr\/local\/sbin\/nourishctl report monthly$/m);
    assert.deepStrictEqual((await jobsOf("staging", "app", { backups: { enabled: false, pitr: false } })).map((j) => j.id), ["status", "manage-daily-orders", "smoke-probe", "weekly-report", "monthly-report", "restore-rehearsal-verify", "restore-rehearsal-age"]);
    assert.deepStrictEqual((await jobsOf("prod", "db", { database: { managed: true } })).map((j) => j.id), ["status"]);
  });

  it("renders units `systemd-analyze verify` accepts, with calendars systemd parses", async () => {
    requireTool("systemd-analyze");
    const units: string[] = [];
    const jobs = await jobsOf("prod", "db");
    // Every timer the db host gets, the weekly backup verification included.
    assert.deepStrictEqual(jobs.map((j) => j.id).filter((id) => ["backup", "verify-backup", "pitr-backup"].includes(id)), ["backup", "verify-backup", "pitr-backup"]);
    for (const job of jobs) {
      const service = path.join(dir, `nourish-link-${job.id}.service`);
      fs.writeFileSync(service, renderJobService(job, NOURISHCTL_SOURCE));
      fs.writeFileSync(path.join(dir, `nourish-link-${job.id}.timer`), renderTimer(job));
      units.push(service, path.join(dir, `nourish-link-${job.id}.timer`));
      const cal = run("systemd-analyze", ["calendar", `${job.onCalendar} ${job.timezone}`]);
      assert.strictEqual(cal.status, 0, cal.stderr);
    }
    // Every job reports its failure through the template unit, which must not report its own.
    const failed = path.join(dir, "nourish-link-job-failed@.service");
    fs.writeFileSync(failed, renderJobFailedService(NOURISHCTL_SOURCE));
    for (const job of jobs) assert.match(renderJobService(job), new RegExp(`^OnFailure=nourish-link-job-failed@${job.id}\\.service$`, "m"));
    assert.doesNotMatch(renderJobFailedService(), /OnFailure=/);
    assert.match(renderJobFailedService(), /^ExecStart=\/usr\/local\/sbin\/nourishctl job-failed %i$/m);
    const r = run("systemd-analyze", ["verify", ...units, path.join(dir, "nourish-link-job-failed@backup.service")], { env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` } });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stderr.trim(), "", "verify printed diagnostics");
  });

  it("publishes the database's metrics every minute, on the minute, on a self-managed database host only", async () => {
    const metrics = (await jobsOf("prod", "db")).find((j) => j.id === "metrics");
    assert.ok(metrics, "no metrics job on the prod database host");
    const timer = renderTimer(metrics);
    assert.match(timer, /^OnCalendar=\*-\*-\* \*:\*:00 Africa\/Kigali$/m);
    assert.match(timer, /^RandomizedDelaySec=0$/m);
    assert.match(timer, /^AccuracySec=1s$/m);
    assert.match(renderJobService(metrics), /^ExecStart=\/usr\/local\/sbin\/nourishctl metrics$/m);
    const next = run("systemd-analyze", ["calendar", "--iterations=2", `${metrics.onCalendar} UTC`]).stdout;
    const times = [...next.matchAll(/(?:Next elapse|Iter\. #2): \w+ (\S+ \S+)/g)].map((m) => Date.parse(`${m[1]}Z`));
    assert.strictEqual(times.length, 2, next);
    assert.strictEqual(times[1] - times[0], 60_000, next);
    assert.ok(!(await jobsOf("prod", "app")).some((j) => j.id === "metrics"));
  });

  it("archives logs monthly on every host (maintenance.logArchiveSchedule), only with backups", async () => {
    for (const role of ["app", "db"] as const) {
      const job = (await jobsOf("prod", role)).find((j) => j.id === "log-archive");
      assert.ok(job, `no log-archive job on the ${role} host`);
      assert.match(renderTimer(job), /^OnCalendar=\*-\*-01 04:30:00 Africa\/Kigali$/m);
      assert.match(renderJobService(job), /^ExecStart=\/usr\/local\/sbin\/nourishctl logs archive$/m);
      const moved = (await jobsOf("prod", role, { maintenance: { logArchiveSchedule: "*-*-02 05:00:00" } })).find((j) => j.id === "log-archive");
      assert.match(renderTimer(moved!), /^OnCalendar=\*-\*-02 05:00:00 Africa\/Kigali$/m);
    }
  });

  it("runs the weekly report on app hosts only (maintenance.weeklyReportSchedule, Sunday 22:00), failure alarmed", async () => {
    const job = (await jobsOf("prod", "app")).find((j) => j.id === "weekly-report");
    assert.ok(job, "no weekly-report job on the app hosts");
    assert.match(renderTimer(job), /^OnCalendar=Sun \*-\*-\* 22:00:00 Africa\/Kigali$/m);
    const unit = renderJobService(job);
    assert.match(unit, /^ExecStart=\/usr\/local\/sbin\/nourishctl report weekly$/m);
    assert.match(unit, /^OnFailure=nourish-link-job-failed@weekly-report\.service$/m);
    const moved = (await jobsOf("prod", "app", { maintenance: { weeklyReportSchedule: "Mon *-*-* 07:00:00" } })).find((j) => j.id === "weekly-report");
    assert.match(renderTimer(moved!), /^OnCalendar=Mon \*-\*-\* 07:00:00 Africa\/Kigali$/m);
    assert.ok(!(await jobsOf("prod", "db")).some((j) => j.id === "weekly-report"), "weekly-report on the database host");
  });

  it("the app's scheduled commands: a timer each on app-0 only, running `nourishctl job run NAME` with its arguments as data, failure reported; units systemd-analyze verifies", async () => {
    requireTool("systemd-analyze");
    const scheduledCommands = [
      { name: "daily-orders", schedule: "*-*-* 05:30:00", command: ["daily_orders", "--since=yesterday"] },
      { name: "clearsessions", schedule: "daily", command: ["clearsessions"] },
    ];
    const prod = await runStack("prod", { set: { app: { scheduledCommands } } });
    const files = (name: string) => instanceFiles(one(prod, "aws:ec2/instance:Instance", name));
    const app0 = files("app-0");
    const app1 = files("app-1");
    const service = app0.get("/etc/systemd/system/nourish-link-manage-daily-orders.service");
    const timer = app0.get("/etc/systemd/system/nourish-link-manage-daily-orders.timer");
    assert.ok(service && timer, `app-0 has no daily-orders units: ${[...app0.keys()].filter((p) => p.includes("manage")).join(", ")}`);
    assert.match(service, /^ExecStart=\/usr\/local\/sbin\/nourishctl job run daily-orders$/m);
    assert.match(service, /^OnFailure=nourish-link-job-failed@manage-daily-orders\.service$/m);
    assert.match(timer, /^OnCalendar=\*-\*-\* 05:30:00 Africa\/Kigali$/m);
    assert.strictEqual(app0.get("/etc/nourish-link/jobs/daily-orders.args"), "daily_orders\n--since=yesterday\n");
    assert.match(app0.get("/etc/systemd/system/nourish-link-manage-clearsessions.timer")!, /^OnCalendar=daily Africa\/Kigali$/m);
    // app-1 runs the same site, but not the app's jobs: they run once per stack.
    assert.deepStrictEqual([...app1.keys()].filter((p) => /manage-|\/jobs\//.test(p)), []);
    assert.ok(app1.has("/etc/systemd/system/nourish-link-weekly-report.timer"), "app-1 lost its own timers");
    // The failure alarm of each, on the JobFailed the OnFailure= unit publishes.
    const alarm = one(prod, "aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-job-failed-app-manage-daily-orders");
    assert.deepStrictEqual(alarm.inputs.dimensions, { Stack: "prod", Role: "app", Job: "manage-daily-orders" });
    // The units as written, with the template unit their failure starts, pass systemd's verifier.
    const units: string[] = [];
    for (const [p, content] of app0) {
      if (!/nourish-link-(manage-[a-z-]+\.(service|timer)|job-failed@\.service)$/.test(p)) continue;
      const f = path.join(dir, path.basename(p));
      fs.writeFileSync(f, content.replace(/\/usr\/local\/sbin\/nourishctl/g, NOURISHCTL_SOURCE));
      if (!p.endsWith("@.service")) units.push(f);
    }
    assert.strictEqual(units.length, 4, units.join(", "));
    const r = run("systemd-analyze", ["verify", ...units, path.join(dir, "nourish-link-job-failed@manage-daily-orders.service")], { env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` } });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stderr.trim(), "", "verify printed diagnostics");
    // The default (the committed stacks name the sample app's job instead): clearsessions daily.
    const config = await loadStackConfig("prod");
    const byDefault = scheduledJobs({ ...config, app: { ...config.app, scheduledCommands: DEFAULTS.prod.app!.scheduledCommands as typeof config.app.scheduledCommands } }, "app").find((j) => j.id === "manage-clearsessions")!;
    assert.deepStrictEqual(byDefault.verb, ["job", "run", "clearsessions"]);
  });

  it("staging, which nothing outside watches, probes itself every 5 minutes from app-0 with an alarm; prod behind its ALB does not", async () => {
    const staging = await runStack("staging");
    const app0 = instanceFiles(one(staging, "aws:ec2/instance:Instance", "app-0"));
    const service = app0.get("/etc/systemd/system/nourish-link-smoke-probe.service");
    assert.ok(service, "no smoke probe on staging's app-0");
    assert.match(service, /^ExecStart=\/usr\/local\/sbin\/nourishctl smoke --publish$/m);
    assert.doesNotMatch(service, /OnFailure=/, "the probe publishes its own result; a JobFailed of it would go unwatched");
    const timer = app0.get("/etc/systemd/system/nourish-link-smoke-probe.timer")!;
    assert.match(timer, /^OnCalendar=\*-\*-\* \*:00\/5:00 Africa\/Kigali$/m);
    const next = run("systemd-analyze", ["calendar", "--iterations=2", "*-*-* *:00/5:00 UTC"]).stdout;
    const times = [...next.matchAll(/(?:Next elapse|Iter\. #2): \w+ (\S+ \S+)/g)].map((m) => Date.parse(`${m[1]}Z`));
    assert.strictEqual(times[1] - times[0], 300_000, next);
    const alarm = one(staging, "aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-app-smoke");
    assert.strictEqual(alarm.inputs.metricName, "SmokeCheckFailed");
    assert.deepStrictEqual(alarm.inputs.dimensions, { Stack: "staging", Role: "app" });
    assert.strictEqual(alarm.inputs.treatMissingData, "breaching", "a probe that stops must alarm");
    assert.match(String(alarm.inputs.alarmDescription), /See docs\/RUNBOOK\.md, "Alarms", `app-smoke`\.$/);
    // Its failure is the app-smoke alarm's, not a second job-failed alarm.
    assert.ok(!ofType(staging, "aws:cloudwatch/metricAlarm:MetricAlarm").some((a) => a.name === "monitoring-job-failed-app-smoke-probe"));
    const prod = await runStack("prod");
    assert.ok(!instanceFiles(one(prod, "aws:ec2/instance:Instance", "app-0")).has("/etc/systemd/system/nourish-link-smoke-probe.timer"));
    assert.ok(!ofType(prod, "aws:cloudwatch/metricAlarm:MetricAlarm").some((a) => a.name === "monitoring-app-smoke"));
  });

  it("refuses a job whose schedule systemd would not parse", () => {
    assert.throws(() => renderTimer({ id: "x", description: "x", onCalendar: "every night", timezone: "UTC", verb: ["status"] }), /not a systemd OnCalendar/);
  });
});
