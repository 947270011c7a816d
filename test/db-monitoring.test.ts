// The database host's own view of itself, against a real PostgreSQL 15: `nourishctl status`
// (the cluster, connections, the oldest query, --json; a crashed cluster reported down), and the
// self-healing drop-ins checked by systemd against the packages' own units.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { PG_CLUSTER_UNIT, renderRestartDropIn, restartDropIns } from "../components/hosts/restart";
import { Cluster, PG_BINDIR, pgBin, startAppCluster } from "./pg";
import { DB_METRICS } from "../components/monitoring/metrics";
import { startMoto, Moto } from "./moto";
import { AWS_CLI } from "./s3";
import { requireTool, run } from "./tools";

describe("self-healing: restart drop-ins for nginx and the PostgreSQL cluster", () => {
  let dir = "";
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-dropins-")); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  /** systemd-analyze verify of `unit` with the rendered drop-ins in front of the packages' units. */
  const verify = (unit: string) => run("systemd-analyze", ["verify", unit], { env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` } });
  const place = (files: { path: string; content: string }[]) => {
    for (const f of files) {
      const p = path.join(dir, f.path.replace(/^\/etc\/systemd\/system\//, ""));
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, f.content);
    }
  };

  it("restarts nginx (app) and the cluster unit postgresql@15-main (db) on failure, with a start limit", () => {
    assert.deepStrictEqual(restartDropIns("app").map((f) => f.path), ["/etc/systemd/system/nginx.service.d/nourish-link-restart.conf"]);
    assert.deepStrictEqual(restartDropIns("db").map((f) => f.path), [`/etc/systemd/system/${PG_CLUSTER_UNIT}.d/nourish-link-restart.conf`]);
    for (const role of ["app", "db"] as const) {
      const text = restartDropIns(role)[0].content;
      assert.match(text, /^\[Service\]\nRestart=on-failure\nRestartSec=5$/m);
      assert.match(text, /^\[Unit\]\nStartLimitIntervalSec=600\nStartLimitBurst=5$/m);
    }
    assert.throws(() => renderRestartDropIn("x.service", { restartSec: 60, burst: 5, intervalSec: 300 }), /never trips/);
  });

  it("passes `systemd-analyze verify` on Debian's own nginx and postgresql@ units, which read them", () => {
    requireTool("systemd-analyze");
    for (const unit of ["nginx.service", "postgresql@.service"]) assert.ok(fs.existsSync(`/lib/systemd/system/${unit}`), `${unit} is missing: apt-get install -y nginx postgresql`);
    place([...restartDropIns("app"), ...restartDropIns("db")]);
    for (const unit of ["nginx.service", PG_CLUSTER_UNIT]) {
      const r = verify(unit);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stderr.trim(), "", `${unit}: ${r.stderr}`);
    }
    // The same check sees a drop-in systemd would ignore: it proves verify read ours.
    place([{ path: `/etc/systemd/system/${PG_CLUSTER_UNIT}.d/zz-typo.conf`, content: "[Service]\nRestart=on-failur\n" }]);
    assert.match(verify(PG_CLUSTER_UNIT).stderr, /zz-typo\.conf:2: Failed to parse service restart specifier/);
  });
});

describe("nourishctl status on the database host, against a real PostgreSQL 15", () => {
  let root = "";
  let cluster: Cluster | undefined;
  const sessions: ChildProcess[] = [];
  const env = () => ({ ...process.env, NOURISH_ROOT: root, PGHOST: cluster!.socketDir, PGPORT: String(cluster!.port), PG_DATA: cluster!.dataDir, PATH: `${PG_BINDIR}:${process.env.PATH}` });
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], { env: env() });
  /** A psql session left running as the postgres OS user (killed in `after`). */
  const session = (sql: string) => {
    const p = spawn("runuser", ["-u", "postgres", "--", pgBin("psql"), "-X", "-q", "-h", cluster!.socketDir, "-p", String(cluster!.port), "-d", "dusangire", "-c", sql], { cwd: cluster!.root, stdio: "ignore" });
    sessions.push(p);
    return p;
  };

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-status-"));
    cluster = await startAppCluster({ appPassword: "status-test-password" });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), `ROLE=db\nDB_NAME=dusangire\nSTACK=staging\nDISK_FREE_MIN_PERCENT=1\n`);
    fs.mkdirSync(path.join(root, "var/lib/postgresql"), { recursive: true });
  });
  after(() => {
    for (const p of sessions) p.kill();
    cluster?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("reports the cluster unit, connections and the oldest running query, also as --json", async () => {
    session("SELECT pg_sleep(120)");
    // Until the sleeping query shows up in pg_stat_activity, a second old (status counts whole seconds).
    for (let i = 0; i < 100 && cluster!.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(120)%' AND now() - query_start >= interval '1.1 s'") !== "1"; i++) await new Promise((r) => setTimeout(r, 100));
    const r = ctl("status");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok: postgresql@15-main is running/);
    assert.match(r.stdout, /ok: \d+ of 100 connections in use; oldest running query: [1-9]\d* s \(pid \d+\)/);
    const j = ctl("status", "--json");
    assert.strictEqual(j.status, 0, j.stderr);
    const doc = JSON.parse(j.stdout);
    assert.strictEqual(doc.ok, true);
    assert.strictEqual(doc.role, "db");
    assert.deepStrictEqual(doc.checks.map((c: { check: string }) => c.check), ["postgresql@15-main", "connections", "disk /", "disk /var/lib/postgresql", "logs"]);
    const sleeper = cluster!.psql("SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(120)%'");
    assert.strictEqual(doc.database.oldest_query_pid, Number(sleeper));
    assert.ok(doc.database.oldest_query_seconds >= 1, j.stdout);
    assert.strictEqual(doc.database.max_connections, 100);
    assert.ok(doc.database.connections >= 1);
    assert.doesNotMatch(j.stdout, /pg_sleep/, "query text in the status output");
  });

  it("reports a crashed cluster down (the postmaster killed), in text and --json", () => {
    const pid = fs.readFileSync(path.join(cluster!.dataDir, "postmaster.pid"), "utf8").split("\n")[0];
    process.kill(Number(pid), "SIGKILL");
    // Debian's postgresql.service would still say active here; the cluster's own check does not.
    for (let i = 0; i < 50; i++) { try { process.kill(Number(pid), 0); } catch { break; } run("sleep", ["0.1"]); }
    const r = ctl("status");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /FAIL: postgresql@15-main is not running/);
    assert.match(r.stderr, /FAIL: PostgreSQL does not answer queries/);
    assert.match(r.stderr, /status: checks failed$/m);
    const j = ctl("status", "--json");
    assert.strictEqual(j.status, 1);
    const doc = JSON.parse(j.stdout);
    assert.strictEqual(doc.ok, false);
    assert.deepStrictEqual(doc.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { check: string }) => c.check), ["postgresql@15-main", "connections"]);
    assert.ok(!("database" in doc));
    // Back up for whoever runs next; the crash is recovered from WAL.
    cluster!.start();
    assert.strictEqual(ctl("status").status, 0);
  });

  it("gives /var/log's size and its largest file, publishes LogVolumeBytes, and fails above LOG_VOLUME_MAX_MB", () => {
    const env = path.join(root, "etc/nourish-link/host.env");
    const before = fs.readFileSync(env, "utf8");
    fs.mkdirSync(path.join(root, "var/log/postgresql"), { recursive: true });
    fs.writeFileSync(path.join(root, "var/log/postgresql/postgresql-15-main.log.1"), Buffer.alloc(3 * 1048576, 0x61));
    fs.writeFileSync(path.join(root, "var/log/small.log"), "x\n");
    try {
      const ok = ctl("status");
      assert.strictEqual(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /ok: \/var\/log holds 3 MB; largest file \/var\/log\/postgresql\/postgresql-15-main\.log\.1 \(3 MB\)/);
      // What `du -sb` counts (directories included), published for the log-volume alarm.
      assert.strictEqual(fs.readFileSync(path.join(root, "var/lib/nourish-link/metrics/LogVolumeBytes"), "utf8").trim(), run("du", ["-sb", path.join(root, "var/log")]).stdout.split("\t")[0]);
      fs.writeFileSync(env, `${before}LOG_VOLUME_MAX_MB=2\n`);
      const j = ctl("status", "--json");
      assert.strictEqual(j.status, 1);
      const doc = JSON.parse(j.stdout);
      assert.strictEqual(doc.logs.largest_file, "/var/log/postgresql/postgresql-15-main.log.1");
      assert.strictEqual(doc.logs.largest_bytes, 3 * 1048576);
      assert.ok(doc.logs.bytes >= 3 * 1048576);
      assert.deepStrictEqual(doc.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { detail: string }) => c.detail),
        ["/var/log holds 3 MB; largest file /var/log/postgresql/postgresql-15-main.log.1 (3 MB), above LOG_VOLUME_MAX_MB 2 MB"]);
    } finally {
      fs.writeFileSync(env, before);
      fs.rmSync(path.join(root, "var/log"), { recursive: true, force: true });
    }
  });

  it("refuses an unknown option by name", () => {
    const r = ctl("status", "--jsn");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /status: unknown option '--jsn'/);
  });
});

describe("nourishctl metrics: the database's numbers to CloudWatch (moto_server), against a real PostgreSQL 15", () => {
  let root = "";
  let cluster: Cluster | undefined;
  let moto: Moto | undefined;
  const sessions: ChildProcess[] = [];
  const env = (extra: Record<string, string> = {}) => ({
    ...process.env, ...moto!.env, NOURISH_ROOT: root, PGHOST: cluster!.socketDir, PGPORT: String(cluster!.port),
    PG_DATA: cluster!.dataDir, CLOUDWATCH_ENDPOINT: moto!.endpoint,
    // The real PostgreSQL 15 tools and the Debian aws CLI (a Python shim earlier on PATH may shadow it).
    PATH: `${PG_BINDIR}:${path.dirname(AWS_CLI)}:${process.env.PATH}`, ...extra,
  });
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], { env: env() });
  const psqlSession = (sql: string) => {
    const p = spawn("runuser", ["-u", "postgres", "--", pgBin("psql"), "-X", "-q", "-h", cluster!.socketDir, "-p", String(cluster!.port), "-d", "dusangire", "-c", sql], { cwd: cluster!.root, stdio: "ignore" });
    sessions.push(p);
  };
  const until = async (what: string, sql: string, want: string) => {
    for (let i = 0; i < 100; i++) {
      if (cluster!.psql(sql, { db: "dusangire" }) === want) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`waited 10 s for ${what}`);
  };
  const dry = (): Record<string, number> => {
    const r = ctl("metrics", "--dry-run");
    assert.strictEqual(r.status, 0, r.stderr);
    return Object.fromEntries((JSON.parse(r.stdout) as { MetricName: string; Value: number }[]).map((d) => [d.MetricName, d.Value]));
  };

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-metrics-"));
    moto = await startMoto();
    // Archiving on, with a command that fails until the test creates archive-ok: a stalled archiver.
    cluster = await startAppCluster({
      appPassword: "metrics-test-password",
      extraConf: (c) => `archive_mode = on\narchive_command = 'test -f ${c.root}/archive-ok'\nautovacuum = off\n`,
    });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=db\nDB_NAME=dusangire\nSTACK=staging\nREGION=af-south-1\n");
    fs.mkdirSync(path.join(root, "var/log/postgresql"), { recursive: true });
    fs.writeFileSync(path.join(root, "var/log/postgresql/postgresql-15-main.log"), "x".repeat(5000));
    fs.writeFileSync(path.join(root, "var/log/syslog"), "y".repeat(100));
    // A bloated table: the largest one, with half its rows deleted and autovacuum off.
    cluster.psql("CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, repeat('meal ', 20) FROM generate_series(1, 20000) g; ANALYZE orders; DELETE FROM orders WHERE id % 2 = 0", { db: "dusangire" });
    cluster.psql("CREATE TABLE menu (id int PRIMARY KEY); INSERT INTO menu VALUES (1)", { db: "dusangire" });
    // A long query, and a lock held by an open transaction with a second session waiting on it.
    psqlSession("SELECT pg_sleep(300)");
    psqlSession("BEGIN; LOCK TABLE menu IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300)");
    await until("the lock holder", "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'menu' AND l.granted AND l.mode = 'AccessExclusiveLock'", "1");
    psqlSession("SELECT * FROM menu");
    await until("the blocked session", "SELECT count(*) FROM pg_locks WHERE NOT granted", "1");
    cluster.psql("SELECT pg_switch_wal()");
    // The long query two seconds old (the server, whose start the archive age counts from, is older).
    await until("the long query to run 2 s", "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(300)' AND now() - query_start >= interval '2 s'", "1");
  });
  after(() => {
    for (const p of sessions) p.kill();
    cluster?.stop();
    moto?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("measures connections, the blocked lock, the long query and transaction, bloat, cache, size and a stalled archiver", () => {
    const m = dry();
    assert.deepStrictEqual(Object.keys(m).sort(), [...DB_METRICS].sort(), "publishes exactly the metrics monitoring knows");
    assert.ok(m.DbConnections >= 4, `connections ${m.DbConnections}`);
    assert.strictEqual(m.DbConnectionsUsedPercent, Math.round(m.DbConnections * 100 / 100 * 1000) / 1000);
    assert.strictEqual(m.DbLocksWaiting, 1);
    assert.ok(m.DbOldestQuerySeconds >= 2, `oldest query ${m.DbOldestQuerySeconds}`);
    assert.ok(m.DbOldestTransactionSeconds >= m.DbOldestQuerySeconds - 1, `oldest transaction ${m.DbOldestTransactionSeconds}`);
    assert.ok(m.DbDeadTuplePercentMax >= 45 && m.DbDeadTuplePercentMax <= 55, `dead tuples ${m.DbDeadTuplePercentMax}%`);
    assert.ok(m.DbCacheHitPercent > 50 && m.DbCacheHitPercent <= 100, `cache hit ${m.DbCacheHitPercent}`);
    assert.strictEqual(m.DbSizeBytes, Number(cluster!.psql("SELECT pg_database_size('dusangire')")));
    // /var/log: its size as du counts it, and its largest file.
    assert.strictEqual(m.LogVolumeBytes, Number(run("du", ["-sb", path.join(root, "var/log")]).stdout.split("\t")[0]));
    assert.strictEqual(m.LogLargestFileBytes, 5000);
    // Archiving fails: a segment waits, and the age counts from the server's start (none archived yet).
    assert.ok(m.DbWalArchiveAgeSeconds >= 2, `archive age ${m.DbWalArchiveAgeSeconds}`);
  });

  it("reports the archiver healthy (0) once the waiting segments are archived, and no bloat after VACUUM", async () => {
    cluster!.writeFile("archive-ok", "");
    // The archiver backs off after failures; new WAL wakes it.
    cluster!.psql("INSERT INTO orders VALUES (0, 'new'); SELECT pg_switch_wal()", { db: "dusangire" });
    await until("the archiver", "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'", "0");
    assert.strictEqual(dry().DbWalArchiveAgeSeconds, 0);
    // VACUUM clears the bloat the alarm-free dashboard shows.
    cluster!.psql("VACUUM orders", { db: "dusangire" });
    assert.strictEqual(dry().DbDeadTuplePercentMax, 0);
  });

  it("publishes them in one put-metric-data call, and a job's failure with its name, read back with list-metrics and get-metric-statistics", () => {
    const r = ctl("metrics");
    assert.strictEqual(r.status, 0, r.stderr);
    // A failed job unit's OnFailure= runs `nourishctl job-failed <job>`: one metric with the job's name.
    const failed = ctl("job-failed", "backup");
    assert.strictEqual(failed.status, 0, failed.stderr);
    assert.match(failed.stderr, /job-failed: nourish-link-backup failed; JobFailed published/);
    const listed = JSON.parse(moto!.aws(["cloudwatch", "list-metrics", "--namespace", "NourishLink"]).stdout).Metrics as { MetricName: string; Dimensions: { Name: string; Value: string }[] }[];
    assert.deepStrictEqual(listed.map((x) => x.MetricName).sort(), [...DB_METRICS, "JobFailed"].sort());
    for (const x of listed.filter((l) => l.MetricName !== "JobFailed")) assert.deepStrictEqual(x.Dimensions, [{ Name: "Stack", Value: "staging" }, { Name: "Role", Value: "db" }], x.MetricName);
    assert.deepStrictEqual(listed.find((l) => l.MetricName === "JobFailed")!.Dimensions, [{ Name: "Stack", Value: "staging" }, { Name: "Role", Value: "db" }, { Name: "Job", Value: "backup" }]);
    assert.match(ctl("job-failed", "../x").stderr, /job-failed: '\.\.\/x' is not a job name/);
    const now = new Date();
    const stats = JSON.parse(moto!.aws(["cloudwatch", "get-metric-statistics", "--namespace", "NourishLink", "--metric-name", "DbLocksWaiting",
      "--dimensions", "Name=Stack,Value=staging", "Name=Role,Value=db", "--statistics", "Maximum", "--period", "60",
      "--start-time", new Date(now.getTime() - 600_000).toISOString(), "--end-time", new Date(now.getTime() + 60_000).toISOString()]).stdout);
    assert.deepStrictEqual(stats.Datapoints.map((d: { Maximum: number }) => d.Maximum), [1]);
  });

  it("fails with one line naming the database when it cannot read", () => {
    const r = run("bash", [NOURISHCTL_SOURCE, "metrics"], { env: env({ PGPORT: "1" }) });
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr.trim(), /^nourishctl: metrics: cannot read the numbers from dusangire: psql: error: .*$/);
    assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
  });
});
