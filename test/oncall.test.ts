// nourishctl's emergency verbs (issue 14) against real services on loopback: an app host (nginx
// with the rendered site, the live release's gunicorn from the rendered unit, both run by the
// sandbox's service seam) and a db host (a real PostgreSQL 15 with the rendered configuration).
// status sees each service down, restart brings it back and proves it answers; logs counts what
// was planted. One cluster and one nginx for the whole file.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { contractAppEnv } from "../components/app/contract";
import { GUNICORN_SERVICE_NAME, renderGunicornService } from "../components/app/gunicorn";
import { renderNginxSite } from "../components/app/nginx";
import { renderEnvFile } from "../components/hosts/env-file";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { buildArtifacts } from "../scripts/rehearsal/artifacts";
import { siteSettings, writeNginxConf } from "../scripts/rehearsal/loopback";
import { Cluster, PG_BINDIR, startAppCluster } from "./pg";
import { freePort, requireTool, run } from "./tools";

const DOMAIN = "app.nourishlink.test";

describe("nourishctl on-call verbs: restart, status and logs against real services", function () {
  this.timeout(300_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-oncall-verbs-"));
  const appRoot = path.join(dir, "app");
  const dbRoot = path.join(dir, "db");
  const srv = path.join(appRoot, "srv/nourish-link");
  let cluster: Cluster;
  let port: number;
  let standbyProc: ChildProcess | undefined;
  const appEnv = () => ({ ...process.env, NOURISH_ROOT: appRoot, PIP_NO_INDEX: "1" });
  const dbEnv = () => ({ ...process.env, NOURISH_ROOT: dbRoot, PGHOST: cluster.socketDir, PGPORT: String(cluster.port), PG_DATA: cluster.dataDir, PATH: `${PG_BINDIR}:${process.env.PATH}` });
  const app = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], { env: appEnv(), timeout: 180_000 });
  const db = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], { env: dbEnv(), timeout: 180_000 });
  const pidOf = (service: string) => Number(fs.readFileSync(path.join(appRoot, "run", `${service}.pid`), "utf8"));
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  // A crash: the service's main process and its workers die at once (SIGKILL, by pid).
  const killAndWait = async (pid: number) => {
    const pids = [pid, ...run("ps", ["-o", "pid=", "--ppid", String(pid)]).stdout.split(/\s+/).filter(Boolean).map(Number)];
    for (const p of pids) process.kill(p, "SIGKILL");
    for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
  };
  const health = () => run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", `Host: ${DOMAIN}`, "-H", "X-Forwarded-Proto: https", `http://127.0.0.1:${port}/health/`]).stdout;

  before(async () => {
    for (const t of ["nginx", "gunicorn", "curl", "flock", "ss"]) requireTool(t);
    const password = randomBytes(18).toString("base64url");
    cluster = await startAppCluster({ appPassword: password });
    port = await freePort();
    for (const d of ["etc/nourish-link", "etc/systemd/system", "run/nourish-link", "var/log/nourish-link", "srv/nourish-link/releases", "srv/nourish-link/shared/static", "srv/nourish-link/shared/media", "srv/nourish-link/maintenance"]) {
      fs.mkdirSync(path.join(appRoot, d), { recursive: true });
    }
    const envFile = (file: string, vars: Record<string, string>) => fs.writeFileSync(file, renderEnvFile(file, vars), { mode: 0o600 });
    envFile(path.join(appRoot, "etc/nourish-link/host.env"), {
      ROLE: "app", DOMAIN, HEALTH_PATH: "/health/", TLS: "alb", APP_LOCAL_URL: `http://127.0.0.1:${port}`, VERIFY_CHECKS: "3", DISK_FREE_MIN_PERCENT: "1",
    });
    // The app's environment as the hosts write it (the app contract), pointed at the loopback services.
    envFile(path.join(appRoot, "etc/nourish-link/app.env"), contractAppEnv({
      DJANGO_SETTINGS_MODULE: "dusangire.settings", DJANGO_ALLOWED_HOSTS: DOMAIN, DJANGO_SECRET_KEY: randomBytes(40).toString("base64url"),
      DATABASE_HOST: "127.0.0.1", DATABASE_PORT: String(cluster.port), DATABASE_NAME: "dusangire", DATABASE_USER: "dusangire",
      DATABASE_PASSWORD: password, DATABASE_SSLMODE: "require", PGCHANNELBINDING: "require",
      STATIC_ROOT: path.join(srv, "shared/static"), MEDIA_ROOT: path.join(srv, "shared/media"),
    }));
    fs.writeFileSync(path.join(appRoot, "etc/systemd/system", GUNICORN_SERVICE_NAME), renderGunicornService({
      workers: 2, releasesDir: path.join(srv, "releases"), runDir: path.join(appRoot, "run/nourish-link"),
      envFile: path.join(appRoot, "etc/nourish-link/app.env"), gracefulTimeoutSeconds: 5,
    }));
    // nginx with the rendered site, its logs where the hosts keep them, run by the sandbox's
    // service seam from a unit file as systemd would run nginx.service.
    const p = path.join(dir, "nginx");
    const site = siteSettings(p, DOMAIN, {
      tls: undefined, listenHttp: `127.0.0.1:${port}`, upstream: path.join(appRoot, "run/nourish-link/app.sock"),
      staticRoot: path.join(srv, "shared/static"), mediaRoot: path.join(srv, "shared/media"),
      maintenanceRoot: path.join(p, "maintenance"), maintenanceFlag: path.join(srv, "maintenance/on"),
      accessLog: path.join(appRoot, "var/log/nourish-link/nginx-access.log"), errorLog: path.join(appRoot, "var/log/nourish-link/nginx-error.log"),
    });
    const conf = writeNginxConf(p, renderNginxSite(site));
    fs.writeFileSync(conf, `daemon off;\n${fs.readFileSync(conf, "utf8")}`);
    fs.writeFileSync(path.join(appRoot, "etc/systemd/system/nginx.service"),
      `[Service]\nExecStart=/usr/sbin/nginx -p ${p} -c ${conf} -e ${path.join(p, "logs/startup-error.log")}\n`);
    fs.writeFileSync(path.join(srv, "maintenance/on"), "first-release\n");

    fs.mkdirSync(path.join(dbRoot, "etc/nourish-link"), { recursive: true });
    envFile(path.join(dbRoot, "etc/nourish-link/host.env"), { ROLE: "db", STACK: "staging", DB_NAME: "dusangire", DB_USER: "dusangire", DISK_FREE_MIN_PERCENT: "1" });
  });
  after(() => {
    standbyProc?.kill();
    const runDir = path.join(appRoot, "run");
    for (const f of fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((f) => f.endsWith(".pid")) : []) {
      try { process.kill(Number(fs.readFileSync(path.join(runDir, f), "utf8")), "SIGKILL"); } catch { /* gone */ }
    }
    cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses in one line: no target, a target of the other role, an unknown option, and without --yes", () => {
    const cases: [string[], RegExp, (...a: string[]) => ReturnType<typeof run>][] = [
      [["restart"], /^nourishctl: restart: say what: app, nginx, postgresql or all/, app],
      [["restart", "postgresql", "--yes"], /^nourishctl: restart: postgresql runs on the db host, this is an app host/, app],
      [["restart", "nginx", "--yes"], /^nourishctl: restart: nginx runs on the app hosts, this is the db host/, db],
      [["restart", "gunicorn", "--yes"], /^nourishctl: restart: 'gunicorn' is not a service to restart/, app],
      [["restart", "app", "--force"], /^nourishctl: restart: unknown option '--force'/, app],
      [["restart", "postgresql"], /^nourishctl: restart: would restart postgresql on this db host .*add --yes.*nothing restarted$/, db],
    ];
    for (const [args, re, ctl] of cases) {
      const r = ctl(...args);
      assert.strictEqual(r.status, 1, args.join(" "));
      assert.match(r.stderr.trim(), re);
      assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    assert.match(app("restart", "--help").stdout, /usage: nourishctl restart app\|nginx\|postgresql\|all --yes/);
  });

  it("restart nginx starts it and proves it answers (the maintenance page before any release)", () => {
    const r = app("restart", "nginx", "--yes");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /restart: nginx restarted; answers 503 \(no live release yet/);
  });

  it("with a live release and its warm standby, status reports the live gunicorn down and restart app brings only it back, verified through nginx", async () => {
    const a = buildArtifacts(path.join(dir, "artifacts")).find((x) => x.name === "v2")!;
    for (const step of [["fetch", a.version, "--file", a.file, "--sha256", a.sha256], ["migrate", a.version], ["collectstatic", a.version], ["switch", a.version]]) {
      const r = app("release", ...step);
      assert.strictEqual(r.status, 0, `release ${step.join(" ")}: ${r.stderr}`);
    }
    // 1.1.0 is live; a warm standby (the release a switch replaced) runs beside it as its own unit.
    // A stand-in process is enough to see that restart leaves it alone (installing a second
    // release costs half a minute).
    standbyProc = spawn("sleep", ["600"], { stdio: "ignore" });
    const standby = standbyProc.pid!;
    fs.writeFileSync(path.join(appRoot, "run/nourish-link-app@1.0.0.pid"), String(standby));
    let s = app("status");
    assert.strictEqual(s.status, 0, s.stderr);
    assert.match(s.stdout, /ok: nourish-link-app@1\.1\.0 is running/);

    await killAndWait(pidOf("nourish-link-app@1.1.0"));
    s = app("status", "--json");
    assert.strictEqual(s.status, 1);
    const report = JSON.parse(s.stdout);
    // The smoke checks (nourishctl smoke: health through nginx) fail with it: nothing serves the app.
    assert.deepStrictEqual(report.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { check: string }) => c.check), ["nourish-link-app@1.1.0", "smoke"]);
    assert.match(health(), /^50[23]$/);

    const r = app("restart", "app", "--yes", "--json");
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.ok, true);
    assert.strictEqual(out.restarted[0].service, "app");
    assert.match(out.restarted[0].detail, /nourish-link-app@1\.1\.0 restarted; \/health\/ answers 200 through nginx/);
    assert.strictEqual(health(), "200");
    assert.strictEqual(pidOf("nourish-link-app@1.0.0"), standby, "the warm standby was restarted too");
    assert.ok(alive(standby));
    assert.strictEqual(app("status").status, 0);
  });

  it("status reports nginx down; restart all brings it back with the app, verified", async () => {
    await killAndWait(pidOf("nginx"));
    const s = app("status");
    assert.strictEqual(s.status, 1);
    assert.match(s.stderr, /FAIL: nginx is not running/);
    const r = app("restart", "all", "--yes");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /restart: nourish-link-app@1\.1\.0 restarted; .* through nginx/);
    assert.match(r.stdout, /restart: nginx restarted; answers \d{3}\b/);
    assert.strictEqual(app("status").status, 0);
    const alone = app("restart", "nginx", "--yes");
    assert.strictEqual(alone.status, 0, alone.stderr);
    assert.match(alone.stdout, /restart: nginx restarted; \/health\/ answers 200 through it/);
  });

  it("restart app fails, naming why, when the release cannot come back healthy", () => {
    const env = path.join(appRoot, "etc/nourish-link/app.env");
    const saved = fs.readFileSync(env, "utf8");
    // The database is unreachable for the app: /health/ answers 503, the health gate refuses.
    fs.writeFileSync(env, saved.replace(/DATABASE_PORT=.*/, "DATABASE_PORT=1"));
    try {
      const r = run("bash", [NOURISHCTL_SOURCE, "restart", "app", "--yes"], { env: { ...appEnv(), HEALTH_TIMEOUT: "4" }, timeout: 180_000 });
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /restart: FAIL: nourish-link-app@1\.1\.0 restarted but \/health\/ did not answer 200/);
      assert.match(r.stderr, /restart: app did not come back healthy/);
    } finally {
      fs.writeFileSync(env, saved);
    }
    assert.strictEqual(app("restart", "app", "--yes").status, 0);
  });

  it("logs errors counts what the app, nginx and the access log recorded, by type, within --since", () => {
    const logDir = path.join(appRoot, "var/log/nourish-link");
    const g = (d: Date) => `[${d.toISOString().slice(0, 19).replace("T", " ")} +0000]`;
    const now = new Date();
    const old = new Date(Date.now() - 3 * 3600_000);
    fs.writeFileSync(path.join(logDir, "nourish-link-app@9.9.9.log"), [
      `${g(now)} [77] [INFO] Booting worker with pid: 77`,
      ...[1, 2, 3].flatMap((i) => ["Internal Server Error: /orders/" + i + "/", "Traceback (most recent call last):", '  File "views.py", line 9, in order', "ZeroDivisionError: division by zero"]),
      "Traceback (most recent call last):", '  File "x.py", line 1', "psycopg2.OperationalError: could not connect to server",
      `${g(now)} [78] [ERROR] Exception in worker process 78`,
      `${g(now)} [79] [ERROR] Exception in worker process 79`,
      `${g(old)} [70] [ERROR] Worker timeout 70`,
    ].join("\n") + "\n");
    const access = (t: Date, status: number, uri: string, rt: number) => JSON.stringify({ time: t.toISOString().replace(/\.\d+Z$/, "+00:00"), request_id: `r${rt}`, method: "GET", uri, status, request_time: rt, upstream_response_time: String(rt) });
    fs.appendFileSync(path.join(logDir, "nginx-access.log"), [
      access(now, 502, "/orders/12/?token=s3cr3t", 2.5), access(now, 502, "/orders/13/", 0.2), access(now, 200, "/menu/", 4.75), access(old, 500, "/old/", 30),
    ].join("\n") + "\n");
    const r = app("logs", "errors", "--json");
    assert.strictEqual(r.status, 0, r.stderr);
    const types = Object.fromEntries((JSON.parse(r.stdout).types as { type: string; count: number }[]).map((t) => [t.type, t.count]));
    assert.strictEqual(types["exception ZeroDivisionError"], 3);
    assert.strictEqual(types["exception psycopg2.OperationalError"], 1);
    assert.strictEqual(types["ERROR Exception in worker process N"], 2);
    assert.strictEqual(types["HTTP 502 GET /orders/N/"], 2);
    // Three hours ago is outside the default hour, inside --since 4h.
    assert.strictEqual(types["ERROR Worker timeout N"], undefined);
    assert.strictEqual(types["HTTP 500 GET /old/"], undefined);
    const wide = JSON.parse(app("logs", "errors", "--since", "4h", "--json").stdout);
    assert.ok(wide.types.some((t: { type: string; count: number }) => t.type === "ERROR Worker timeout N" && t.count === 1));
    const text = app("logs", "errors").stdout;
    assert.match(text, /^ +3 +exception ZeroDivisionError +\[app, last /m);

    const a = app("logs", "access", "--top", "2", "--json");
    assert.strictEqual(a.status, 0, a.stderr);
    const acc = JSON.parse(a.stdout);
    assert.deepStrictEqual(acc.slowest.map((s: { path: string; request_time: number }) => [s.path, s.request_time]), [["/menu/", 4.75], ["/orders/12/", 2.5]]);
    assert.ok(!a.stdout.includes("s3cr3t"), "a query string reached the output");
    assert.ok(acc.by_status["5xx"] >= 2);
    for (const bad of ["1", "0m", "5 m", "-1h", "1w", "99999999s", "1h;id"]) {
      const b = app("logs", "errors", "--since", bad);
      assert.strictEqual(b.status, 1, bad);
      assert.match(b.stderr, /logs errors: --since: '.*' is not a duration/);
    }
    assert.match(app("logs", "db").stderr, /logs db: PostgreSQL's log is on the db host/);
  });

  it("db host: status reports the stopped cluster, restart postgresql brings it back and pg_isready answers", () => {
    let s = db("status");
    assert.strictEqual(s.status, 0, s.stderr);
    const stop = cluster.asUser(path.join(PG_BINDIR, "pg_ctl"), ["-D", cluster.dataDir, "-m", "fast", "-w", "stop"]);
    assert.strictEqual(stop.status, 0, stop.stderr);
    s = db("status");
    assert.strictEqual(s.status, 1);
    assert.match(s.stderr, /FAIL: postgresql@15-main is not running/);
    assert.match(s.stderr, /FAIL: PostgreSQL does not answer queries/);
    const r = db("restart", "postgresql", "--yes", "--json");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).restarted[0].detail, /postgresql@15-main restarted; pg_isready: accepting connections/);
    s = db("status");
    assert.strictEqual(s.status, 0, s.stderr);
    assert.strictEqual(cluster.psql("SELECT 1", { db: "dusangire" }), "1");
  });

  it("db host: logs errors and logs db count PostgreSQL's errors by type and list the slowest statements", () => {
    const t = (d: Date) => `${d.toISOString().replace("T", " ").replace("Z", "")} UTC`;
    const now = new Date();
    fs.mkdirSync(path.join(dbRoot, "var/log/postgresql"), { recursive: true });
    fs.writeFileSync(path.join(dbRoot, "var/log/postgresql/postgresql-15-main.log"), [
      `${t(now)} [101] dusangire@dusangire ERROR:  relation "meals_ordr" does not exist at character 15`,
      `${t(now)} [101] dusangire@dusangire STATEMENT:  SELECT * FROM meals_ordr`,
      `${t(now)} [102] dusangire@dusangire ERROR:  relation "meals_x" does not exist at character 15`,
      `${t(now)} [103] dusangire@dusangire FATAL:  password authentication failed for user "dusangire"`,
      `${t(now)} [104] dusangire@dusangire LOG:  duration: 1532.250 ms  statement: SELECT pg_sleep(1.5)`,
      `${t(now)} [105] dusangire@dusangire LOG:  duration: 612.000 ms  statement: UPDATE meals_order SET ref = ref`,
      `${t(new Date(Date.now() - 7200_000))} [99] dusangire@dusangire ERROR:  deadlock detected`,
    ].join("\n") + "\n");
    const r = db("logs", "db", "--json");
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepStrictEqual(out.types.map((x: { count: number; type: string }) => [x.count, x.type]), [
      [2, 'ERROR: relation "?" does not exist at character N'],
      [1, 'FATAL: password authentication failed for user "?"'],
    ]);
    assert.deepStrictEqual(out.slowest_statements.map((x: { duration_ms: number }) => x.duration_ms), [1532.25, 612]);
    assert.strictEqual(JSON.parse(db("logs", "errors", "--since", "3h", "--json").stdout).errors, 4);
    assert.match(db("logs", "access").stderr, /logs access: nginx's access log is on the app hosts/);
  });
});
