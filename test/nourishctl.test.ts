// nourishctl in a sandbox root: the morning check against real processes and a real df.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { Cluster, PG_BINDIR, startAppCluster } from "./pg";
import { run } from "./tools";

describe("nourishctl", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-host-"));
  // Stands in for a running service; started in `before` so a filtered run never leaks it.
  let sleeper: ChildProcess;
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], { env: { ...process.env, NOURISH_ROOT: root } });
  const env = (vars: string) => fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), vars);

  before(() => {
    sleeper = spawn("sleep", ["300"], { stdio: "ignore" });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.mkdirSync(path.join(root, "run"), { recursive: true });
  });
  after(() => {
    sleeper.kill();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("has --help for every verb and refuses an unknown one by name", () => {
    assert.match(ctl("help").stdout, /status/);
    assert.strictEqual(ctl("status", "--help").status, 0);
    assert.strictEqual(ctl("setup", "--help").status, 0);
    const bad = ctl("frobnicate");
    assert.strictEqual(bad.status, 1);
    assert.match(bad.stderr, /nourishctl: unknown verb 'frobnicate'/);
  });

  // The live release's gunicorn is a service of the app host once there is a release.
  const live = (version: string) => {
    fs.mkdirSync(path.join(root, "srv/nourish-link"), { recursive: true });
    fs.rmSync(path.join(root, "srv/nourish-link/current"), { force: true });
    fs.symlinkSync(`releases/${version}`, path.join(root, "srv/nourish-link/current"));
  };

  it("status passes when the role's services run and the disk has room", () => {
    env("ROLE=app\nDISK_FREE_MIN_PERCENT=1\n");
    live("1.4.2");
    for (const s of ["nginx", "nourish-link-app@1.4.2"]) fs.writeFileSync(path.join(root, "run", `${s}.pid`), String(sleeper.pid));
    const r = ctl("status");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok: nginx is running/);
    assert.match(r.stdout, /ok: nourish-link-app@1.4.2 is running/);
    assert.match(r.stdout, /ok: \/ has \d+% free/);
  });

  it("status fails naming the service that is down", () => {
    env("ROLE=app\nDISK_FREE_MIN_PERCENT=1\n");
    live("1.4.2");
    fs.writeFileSync(path.join(root, "run", "nourish-link-app@1.4.2.pid"), "999999");
    const r = ctl("status");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /FAIL: nourish-link-app@1.4.2 is not running/);
  });

  it("status fails when free disk is below the threshold (the manual's 20%)", () => {
    env("ROLE=app\nDISK_FREE_MIN_PERCENT=100\n");
    fs.writeFileSync(path.join(root, "run", "nourish-link-app@1.4.2.pid"), String(sleeper.pid));
    const r = ctl("status");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /FAIL: \/ has \d+% free, below 100%/);
  });

  it("refuses to act without a role", () => {
    env("");
    const r = ctl("status");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /ROLE is not set/);
  });
});

describe("nourishctl maintain, on a real PostgreSQL", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-db-"));
  let cluster: Cluster | undefined;
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], {
    env: { ...process.env, NOURISH_ROOT: root, PGHOST: cluster!.socketDir, PGPORT: String(cluster!.port), PATH: `${PG_BINDIR}:${process.env.PATH}` },
  });

  before(async () => {
    cluster = await startAppCluster({ appPassword: "maintain-test-password" });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=db\nDB_NAME=dusangire\nSTACK=staging\n");
    cluster.psql("CREATE TABLE orders (id serial PRIMARY KEY, item text); INSERT INTO orders (item) SELECT 'meal ' || g FROM generate_series(1, 500) g; CREATE INDEX ON orders (item)", { db: "dusangire" });
  });
  after(() => {
    cluster?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("vacuum runs VACUUM ANALYZE on dusangire and records success", () => {
    const r = ctl("maintain", "vacuum");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(cluster!.psql("SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'orders'", { db: "dusangire" }), "t");
    assert.strictEqual(fs.readFileSync(path.join(root, "var/lib/nourish-link/metrics/MaintenanceVacuumSuccess"), "utf8").trim(), "1");
  });

  it("reindex rebuilds the indexes concurrently (new files) and analyzes", () => {
    const before = cluster!.psql("SELECT relfilenode FROM pg_class WHERE relname = 'orders_item_idx'", { db: "dusangire" });
    const r = ctl("maintain", "reindex");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.notStrictEqual(cluster!.psql("SELECT relfilenode FROM pg_class WHERE relname = 'orders_item_idx'", { db: "dusangire" }), before);
  });

  it("fails naming the database when it does not exist, and records no success", () => {
    fs.rmSync(path.join(root, "var/lib/nourish-link/metrics"), { recursive: true, force: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=db\nDB_NAME=nosuchdb\nSTACK=staging\n");
    const r = ctl("maintain", "vacuum");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /maintain vacuum: vacuumdb failed on nosuchdb/);
    assert.ok(!fs.existsSync(path.join(root, "var/lib/nourish-link/metrics/MaintenanceVacuumSuccess")));
  });
});
