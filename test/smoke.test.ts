// The smoke checks after a change, and the app's own scheduled commands, on a loopback app host:
// real nourishctl, the sample Django app (test/fixtures/dusangire) on real PostgreSQL, gunicorn
// and nginx (scripts/rehearsal/host.ts), CloudWatch in moto_server.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { appCommandJobs, jobArgsFiles } from "../components/schedules/jobs";
import { renderJobFailedService, renderJobService } from "../components/schedules/systemd";
import { Artifact, buildArtifacts, SMOKE_RELEASES } from "../scripts/rehearsal/artifacts";
import { ctlDirect, lastLine, LoopbackHosts, startLoopbackHosts } from "../scripts/rehearsal/host";
import { loadStackConfig } from "./harness";
import { Moto, startMoto } from "./moto";
import { requireTool } from "./tools";

describe("smoke checks and the app's scheduled commands (loopback app host, real Django)", function () {
  this.timeout(600_000);
  let h: LoopbackHosts;
  let moto: Moto;
  let art: Record<string, Artifact>;
  const hostEnv = () => path.join(h.appRoot, "etc/nourish-link/host.env");
  const ctl = (...args: string[]) => ctlDirect({ ...h.appEnv, ...moto.env, CLOUDWATCH_ENDPOINT: moto.endpoint }, args);
  const release = (a: Artifact) => ctl("release", a.version, "--file", a.file, "--sha256", a.sha256);
  const log = () => fs.readFileSync(path.join(h.srv, "releases.log"), "utf8");

  before(async () => {
    for (const t of ["nginx", "gunicorn", "flock", "curl"]) requireTool(t);
    moto = await startMoto();
    h = await startLoopbackHosts();
    // What job-failed names its metric by (a host's host.env has both).
    fs.appendFileSync(hostEnv(), "STACK=\"smoke\"\nREGION=\"af-south-1\"\n");
    art = Object.fromEntries([
      ...buildArtifacts(path.join(h.dir, "smoke-artifacts"), SMOKE_RELEASES),
      h.art("v1"),
    ].map((a) => [a.name, a]));
    const r = await release(art.v1);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.strictEqual(await h.serving(), "1.0.0");
  });
  after(async () => {
    await h?.stop();
    moto?.stop();
  });

  it("`nourishctl smoke` passes on a good release: check --deploy, health through nginx, the app's smoke command (its order rolled back)", async () => {
    const orders = () => Number(h.db.psql("SELECT count(*) FROM meals_order", { db: "dusangire" }).trim());
    const before = orders();
    const r = await ctl("smoke", "--publish");
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /smoke: 1\.0\.0 passes check --deploy, answers through nginx, and its smoke command/);
    assert.strictEqual(orders(), before, "the smoke command's order was not rolled back");
    assert.strictEqual(fs.readFileSync(path.join(h.appRoot, "var/lib/nourish-link/metrics/SmokeCheckFailed"), "utf8").trim(), "0");
    // The morning check runs them too (its other checks, the services' pid files, are not this sandbox's).
    const status = await ctl("status", "--json");
    const checks = (JSON.parse(status.stdout.trim().split("\n").pop()!) as { checks: { check: string; ok: boolean; detail: string }[] }).checks;
    assert.deepStrictEqual(checks.find((c) => c.check === "smoke"), { check: "smoke", ok: true, detail: "1.0.0 passes the smoke checks (check --deploy, health through nginx, smoke command)" });
  });

  it("a release whose smoke command fails after the switch is rolled back, saying why", async () => {
    const r = await release(art["bad-smoke"]);
    assert.strictEqual(r.code, 1, r.stdout);
    assert.match(lastLine(r), /release switch: 1\.0\.1 failed verification after the switch \(manage\.py smoke of 1\.0\.1 failed: .*orders cannot be placed in this release\); rolled back in [\d.]+s to 1\.0\.0/);
    assert.strictEqual(await h.serving(), "1.0.0");
    assert.match(log(), /\trollback\t1\.0\.0\tautomatic, from 1\.0\.1/);
  });

  it("a deploy warning fails the smoke checks and rolls back, unless release.silencedChecks lists it", async () => {
    const warned = await release(art["deploy-warning"]);
    assert.strictEqual(warned.code, 1, warned.stdout);
    assert.match(lastLine(warned), /1\.0\.2 failed verification after the switch \(manage\.py check --deploy of 1\.0\.2 reports meals\.W001 \(not in release\.silencedChecks\)\); rolled back/);
    assert.strictEqual(await h.serving(), "1.0.0");
    // An unrelated silenced id does not cover it; its own does.
    fs.appendFileSync(hostEnv(), "SILENCED_CHECKS=\"security.W004 meals.W001\"\n");
    const silenced = await release(art["deploy-warning"]);
    assert.strictEqual(silenced.code, 0, silenced.stderr);
    assert.strictEqual(await h.serving(), "1.0.2");
    const smoke = await ctl("smoke");
    assert.strictEqual(smoke.code, 0, smoke.stderr);
    assert.match(smoke.stdout, /\(silenced: security\.W004 meals\.W001\)/);
  });

  it("a scheduled command runs the live release's manage.py as rendered; one that fails fails its unit and publishes JobFailed", async () => {
    const config = await loadStackConfig("staging", { set: { app: { scheduledCommands: [
      { name: "daily-orders", schedule: "*-*-* 05:30:00", command: ["daily_orders"] },
      { name: "daily-orders-broken", schedule: "*-*-* 05:45:00", command: ["daily_orders", "--fail"] },
    ] } } });
    // What pulumi up puts on app-0: the arguments as data, one per line.
    for (const f of jobArgsFiles(config)) {
      fs.mkdirSync(path.dirname(path.join(h.appRoot, f.path)), { recursive: true });
      fs.writeFileSync(path.join(h.appRoot, f.path), f.content);
    }
    // Each unit's ExecStart, as rendered, run the way systemd would (the nourishctl under test).
    const execStart = (unit: string) => unit.match(/^ExecStart=\/usr\/local\/sbin\/nourishctl (.*)$/m)![1].split(" ");
    const [good, broken] = appCommandJobs(config);
    const ok = await ctl(...execStart(renderJobService(good)));
    assert.strictEqual(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /job run: daily-orders: manage\.py daily_orders on 1\.0\.2/);
    assert.match(ok.stdout, /daily_orders: \d+ active subscription/);

    const unit = renderJobService(broken);
    const failed = await ctl(...execStart(unit));
    assert.strictEqual(failed.code, 1, "the unit must fail");
    assert.match(lastLine(failed), /^nourishctl: job run: daily-orders-broken: manage\.py daily_orders of 1\.0\.2 exited 1$/);
    assert.match(failed.stderr, /daily_orders: failing as asked/);
    // systemd then starts the OnFailure= unit with the job's id as its instance.
    const instance = unit.match(/^OnFailure=nourish-link-job-failed@(.*)\.service$/m)![1];
    assert.strictEqual(instance, "manage-daily-orders-broken");
    const reported = await ctl(...execStart(renderJobFailedService()).map((a) => a.replace("%i", instance)));
    assert.strictEqual(reported.code, 0, reported.stderr);
    const metrics = JSON.parse(moto.aws(["cloudwatch", "list-metrics", "--namespace", "NourishLink", "--metric-name", "JobFailed"]).stdout) as { Metrics: { Dimensions: { Name: string; Value: string }[] }[] };
    const dims = metrics.Metrics.map((m) => Object.fromEntries(m.Dimensions.map((d) => [d.Name, d.Value])));
    assert.deepStrictEqual(dims, [{ Stack: "smoke", Role: "app", Job: "manage-daily-orders-broken" }]);
  });

  it("refuses a job this host does not run, and arguments that are not plain data", async () => {
    const none = await ctl("job", "run", "nightly-export");
    assert.strictEqual(none.code, 1);
    assert.match(lastLine(none), /job run: this host runs no command nightly-export \(.*jobs\/nightly-export\.args is missing/);
    fs.writeFileSync(path.join(h.appRoot, "etc/nourish-link/jobs/tampered.args"), "daily_orders\n$(touch /tmp/x)\n");
    const bad = await ctl("job", "run", "tampered");
    assert.strictEqual(bad.code, 1);
    assert.match(lastLine(bad), /holds an argument with characters other than letters, digits/);
  });
});
