// nourishctl db diagnose / db kill-long-queries (issue 14) against a real PostgreSQL 15 with the
// rendered configuration: a long query, a blocked lock, an idle transaction and a bloated table.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { Cluster, PG_BINDIR, startAppCluster } from "./pg";
import { run } from "./tools";

const APP_PASSWORD = "oncall-test-password";

describe("nourishctl db: the manual's locks and long queries, on a real PostgreSQL", function () {
  this.timeout(300_000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-oncall-"));
  let cluster: Cluster;
  const sessions: ChildProcess[] = [];
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, "db", ...args], {
    env: { ...process.env, NOURISH_ROOT: root, PGHOST: cluster.socketDir, PGPORT: String(cluster.port), PATH: `${PG_BINDIR}:${process.env.PATH}` },
    timeout: 180_000,
  });
  /** A psql session in the background: the app user over TCP (TLS), or the superuser over the socket. */
  const session = (sql: string | string[], as: "app" | "postgres" = "app"): { child: ChildProcess; exited: Promise<{ code: number | null; stderr: string }> } => {
    const commands = (Array.isArray(sql) ? sql : [sql]).flatMap((c) => ["-c", c]);
    const psql = path.join(PG_BINDIR, "psql");
    // The superuser over the socket as its OS user (peer authentication, as on the host).
    const [cmd, args] = as === "app"
      ? [psql, [`host=127.0.0.1 port=${cluster.port} dbname=dusangire user=dusangire sslmode=require application_name=oncall-test`, "-X", "-q", ...commands]]
      : ["runuser", ["-u", cluster.os.name, "--", psql, "-h", cluster.socketDir, "-p", String(cluster.port), "-U", "postgres", "-d", "dusangire", "-X", "-q", ...commands]];
    const child = spawn(cmd, args, { cwd: cluster.root, env: { ...process.env, PGPASSWORD: APP_PASSWORD }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (c) => (stderr += c));
    sessions.push(child);
    return { child, exited: new Promise((resolve) => child.on("close", (code) => resolve({ code, stderr }))) };
  };
  const waitFor = async (sql: string, what: string) => {
    for (let i = 0; i < 100; i++) {
      if (cluster.psql(sql, { db: "dusangire" }) === "t") return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`never saw ${what}: ${cluster.psql("SELECT pid, usename, state, query FROM pg_stat_activity WHERE backend_type = 'client backend'")}\n${sessions.map((c) => c.exitCode).join(",")}`);
  };

  before(async () => {
    cluster = await startAppCluster({ appPassword: APP_PASSWORD });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=db\nDB_NAME=dusangire\nDB_USER=dusangire\nSTACK=staging\n");
    cluster.psql("CREATE EXTENSION pg_stat_statements", { db: "dusangire" });
    // A bloated table: rows deleted, autovacuum kept off it so the dead tuples stay.
    cluster.psql(`CREATE TABLE meals_order (id serial PRIMARY KEY, ref text) WITH (autovacuum_enabled = off);
      INSERT INTO meals_order (ref) SELECT 'order ' || g FROM generate_series(1, 2000) g;
      DELETE FROM meals_order WHERE id % 4 <> 0;
      ALTER TABLE meals_order OWNER TO dusangire`, { db: "dusangire" });
    cluster.psql("ANALYZE meals_order", { db: "dusangire" });
  });
  after(() => {
    for (const s of sessions) s.kill("SIGKILL");
    cluster?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("has --help and refuses what it does not know, naming it", () => {
    const help = ctl("--help");
    assert.strictEqual(help.status, 0, help.stderr);
    assert.match(help.stdout, /usage: nourishctl db diagnose/);
    assert.match(ctl("frobnicate").stderr, /^nourishctl: db: unknown command 'frobnicate' \(diagnose, kill-long-queries or check\)$/m);
    const bad = ctl("kill-long-queries", "--older-than", "5 minutes", "--yes");
    assert.strictEqual(bad.status, 1);
    assert.match(bad.stderr, /^nourishctl: db kill-long-queries: --older-than: '5 minutes' is not a duration \(such as 30s, 5m, 1h\); nothing changed$/m);
    assert.match(ctl("kill-long-queries", "--yes").stderr, /say how old with --older-than/);
    assert.match(ctl("kill-long-queries", "--older-than", "1s", "--user", "x'; DROP TABLE meals_order; --", "--yes").stderr, /is not a database role name/);
  });

  describe("with a lock held, a query blocked behind it, a long query and an idle transaction", () => {
    let holder: ReturnType<typeof session>;
    let blocked: ReturnType<typeof session>;
    let long: ReturnType<typeof session>;
    let idle: ReturnType<typeof session>;
    let superuserLong: ReturnType<typeof session>;

    before(async () => {
      holder = session("BEGIN; LOCK TABLE meals_order IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT");
      await waitFor("SELECT count(*) = 1 FROM pg_locks WHERE relation = 'meals_order'::regclass AND mode = 'AccessExclusiveLock' AND granted", "the lock");
      blocked = session("SELECT count(*) FROM meals_order");
      long = session("SELECT pg_sleep(60) /* the report */");
      // An idle transaction holding a row lock: a cancel cannot end it.
      idle = session(["BEGIN", "SELECT pg_advisory_xact_lock(42)", "\\! sleep 60"]);
      superuserLong = session("SELECT pg_sleep(60) /* maintenance */", "postgres");
      await waitFor("SELECT count(*) = 1 FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0", "the blocked query");
      await waitFor("SELECT count(*) = 2 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60) /*%' AND state = 'active' AND pid <> pg_backend_pid()", "the long queries");
      // Every session older than diagnose's 1 s threshold, with margin.
      await waitFor("SELECT now() - max(backend_start) >= interval '1.5 s' FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()", "the sessions to be 1.5 s old");
    });

    it("db diagnose --json: who blocks whom, what runs too long, connections, bloated tables, top statements", () => {
      const r = ctl("diagnose", "--older-than", "1s", "--json");
      assert.strictEqual(r.status, 0, r.stderr);
      const d = JSON.parse(r.stdout);
      assert.strictEqual(d.database, "dusangire");
      assert.strictEqual(d.threshold_seconds, 1);
      assert.strictEqual(d.max_connections, Number(cluster.psql("SHOW max_connections")));
      assert.strictEqual(d.blocked.length, 1, r.stdout);
      assert.strictEqual(d.blocked[0].waiting_pid, holderBlocked().waiting);
      assert.strictEqual(d.blocked[0].blocking_pid, holderBlocked().blocking);
      assert.match(d.blocked[0].waiting_query, /SELECT count\(\*\) FROM meals_order/);
      assert.match(d.blocked[0].blocking_query, /pg_sleep\(60\)/);
      const longQueries = d.long_running.map((s: { query: string }) => s.query).join("\n");
      assert.match(longQueries, /pg_sleep\(60\) \/\* the report \*\//);
      assert.match(longQueries, /pg_sleep\(60\) \/\* maintenance \*\//);
      assert.ok(d.connections.reduce((n: number, c: { connections: number }) => n + c.connections, 0) >= 5);
      const bloated = d.most_dead_tuples.find((t: { table: string }) => t.table === "meals_order");
      assert.ok(bloated && bloated.dead_rows === 1500 && bloated.dead_percent === 75, JSON.stringify(d.most_dead_tuples));
      assert.strictEqual(d.largest_tables[0].table, "meals_order");
      assert.ok(Array.isArray(d.top_statements) && d.top_statements.length > 0);
      // Connections by state, each against max_connections; statements by total time, most first.
      for (const c of d.connections as { connections: number; percent_of_max: number }[]) {
        assert.strictEqual(c.percent_of_max, Math.round(1000 * c.connections / d.max_connections) / 10, JSON.stringify(c));
      }
      const totals = (d.top_statements as { total_ms: number }[]).map((x) => x.total_ms);
      assert.deepStrictEqual(totals, [...totals].sort((a, b) => b - a));
    });

    it("db diagnose reads as a report: one table per section", () => {
      const r = ctl("diagnose", "--older-than", "1s");
      assert.strictEqual(r.status, 0, r.stderr);
      for (const title of ["== connections by state (max_connections", "== blocked: waiting for a lock, and who holds it", "== running for more than 1s",
        "== largest tables", "== most dead tuples", "== top statements by total time"]) assert.ok(r.stdout.includes(title), title);
      assert.match(r.stdout, /waiting_pid \| waiting_user/);
    });

    it("kill-long-queries without --yes names what it would cancel and changes nothing", () => {
      const r = ctl("kill-long-queries", "--older-than", "1s");
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(r.stdout, /would cancel pid \d+ \(dusangire on dusangire, active, .*pg_sleep\(60\) \/\* the report \*\//);
      assert.match(r.stdout, /nothing changed: add --yes to cancel them/);
      assert.doesNotMatch(r.stdout, /maintenance/, "another user's query is not the app's");
      assert.strictEqual(cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60) /*%' AND state = 'active' AND pid <> pg_backend_pid()"), "2");
    });

    it("kill-long-queries --yes cancels the app user's long queries, which frees the lock; the superuser's is left alone", async () => {
      const r = ctl("kill-long-queries", "--older-than", "1s", "--yes");
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(r.stdout, /cancelled pid \d+ .*pg_sleep\(60\) \/\* the report \*\//);
      assert.match(r.stdout, /idle in a transaction: a cancel does not end it, --terminate does/);
      const cancelled = await long.exited;
      assert.match(cancelled.stderr, /canceling statement due to user request/);
      assert.match((await holder.exited).stderr, /canceling statement due to user request/);
      // The waiting query had run for more than 1 s as well: it is cancelled, or, when its blocker's
      // cancel lands first, it gets the lock and finishes before its own cancel arrives. Either way
      // the lock it waited for is free now.
      const waited = await blocked.exited;
      assert.ok(waited.code === 0 || /canceling statement due to user request/.test(waited.stderr), `the blocked query: ${JSON.stringify(waited)}`);
      assert.strictEqual(cluster.psql("SET lock_timeout = '2s'; SELECT count(*) FROM meals_order", { db: "dusangire" }), "500");
      assert.strictEqual(superuserLong.child.exitCode, null, "the superuser's query still runs");
      assert.strictEqual(idle.child.exitCode, null, "a cancel does not end an idle transaction");
    });

    it("kill-long-queries --terminate --yes ends the idle transaction, and --json says what it did", async () => {
      const r = ctl("kill-long-queries", "--older-than", "1s", "--terminate", "--yes", "--json");
      assert.strictEqual(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.strictEqual(out.action, "terminate");
      assert.strictEqual(out.sessions.length, 1, r.stdout);
      assert.match(out.sessions[0].state, /^idle in transaction/);
      assert.strictEqual(out.sessions[0].signalled, true);
      await waitFor("SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory'", "the advisory lock released");
      assert.strictEqual(superuserLong.child.exitCode, null);
    });
  });

  /** The blocked session and its blocker, as PostgreSQL sees them. */
  function holderBlocked(): { waiting: number; blocking: number } {
    const [waiting, blocking] = cluster.psql("SELECT pid, (pg_blocking_pids(pid))[1] FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0").split("|").map(Number);
    return { waiting, blocking };
  }
});
