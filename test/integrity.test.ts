// Corruption caught, not discovered, against real software: the db host's createcluster.conf
// drop-in read by Debian's own pg_createcluster (data checksums on the new cluster); a page of a
// real PostgreSQL 15 table overwritten on disk and `nourishctl db check` (pg_amcheck) finding it,
// its DbCorruption published to moto_server; one stored backup (not the latest) corrupted in
// s3rver and `nourishctl backups verify --all` naming it where `--latest` cannot see it.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CREATECLUSTER_DROPIN_PATH, INITDB_OPTIONS } from "../components/database/postgresql";
import { renderEnvFile } from "../components/hosts/env-file";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { hostFiles } from "../scripts/preview/plan";
import { runStack } from "./harness";
import { Moto, startMoto } from "./moto";
import { Cluster, PG_BINDIR, pgBin, startAppCluster } from "./pg";
import { AWS_CLI, S3, startS3 } from "./s3";
import { requireTool, run } from "./tools";

describe("data checksums: the db host's createcluster.conf drop-in, read by Debian's pg_createcluster", () => {
  let dir = "";
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-cc-")); fs.chmodSync(dir, 0o755); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** pg_createcluster with Debian's own createcluster.conf, its include_dir pointed at `dropins`. */
  const create = (name: string, dropins: string) => {
    const conf = path.join(dir, `${name}.createcluster.conf`);
    const debian = fs.readFileSync("/etc/postgresql-common/createcluster.conf", "utf8");
    assert.match(debian, /^include_dir '\/etc\/postgresql-common\/createcluster\.d'$/m, "Debian's createcluster.conf no longer reads createcluster.d");
    fs.writeFileSync(conf, debian.replace(/^include_dir '\/etc\/postgresql-common\/createcluster\.d'$/m, `include_dir '${dropins}'`));
    const data = path.join(dir, name);
    const r = run("pg_createcluster", [`--createclusterconf=${conf}`, "-d", data, "-l", path.join(dir, `${name}.log`), "-p", "54399", "15", `nl${name}`],
      { env: { ...process.env, PG_CLUSTER_CONF_ROOT: path.join(dir, "etc") }, timeout: 180_000 });
    assert.strictEqual(r.status, 0, r.stderr);
    return run(pgBin("pg_controldata"), [data]).stdout;
  };

  it("is in the db host's user data, and a cluster pg_createcluster makes with it has data_checksums on (without it, off)", async () => {
    requireTool("pg_createcluster");
    const files = hostFiles(await runStack("prod")).filter((f) => f.path === CREATECLUSTER_DROPIN_PATH);
    assert.deepStrictEqual(files.map((f) => f.role), ["db"]);
    assert.match(files[0].content, /^initdb_options = '--data-checksums'$/m);
    const ours = path.join(dir, "ours.d");
    fs.mkdirSync(ours);
    fs.writeFileSync(path.join(ours, path.basename(CREATECLUSTER_DROPIN_PATH)), files[0].content);
    fs.mkdirSync(path.join(dir, "none.d"));
    assert.match(create("with", ours), /^Data page checksum version:\s+1$/m);
    assert.match(create("without", path.join(dir, "none.d")), /^Data page checksum version:\s+0$/m);
  });
});

describe("nourishctl db check: pg_amcheck finds a corrupted page of a real PostgreSQL 15 (DbCorruption to moto_server)", () => {
  let root = "";
  let cluster: Cluster | undefined;
  let moto: Moto;
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], {
    env: { ...process.env, ...moto.env, NOURISH_ROOT: root, PGHOST: cluster!.socketDir, PGPORT: String(cluster!.port), PG_DATA: cluster!.dataDir,
      CLOUDWATCH_ENDPOINT: moto.endpoint, PATH: `${path.dirname(AWS_CLI)}:${PG_BINDIR}:${process.env.PATH}` },
  });
  /** The highest DbCorruption published for the db host in the last hour. */
  const corruption = () => {
    const now = Date.now();
    const r = moto.aws(["cloudwatch", "get-metric-statistics", "--namespace", "NourishLink", "--metric-name", "DbCorruption",
      "--dimensions", "Name=Stack,Value=staging", "Name=Role,Value=db", "--statistics", "Maximum", "--period", "3600",
      "--start-time", new Date(now - 3_600_000).toISOString(), "--end-time", new Date(now + 60_000).toISOString()]);
    assert.strictEqual(r.status, 0, r.stderr);
    const points = JSON.parse(r.stdout).Datapoints as { Maximum: number }[];
    return points.length ? Math.max(...points.map((p) => p.Maximum)) : undefined;
  };

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-dbcheck-"));
    moto = await startMoto();
    // As the db host's clusters are created (createcluster.conf's initdb_options).
    cluster = await startAppCluster({ appPassword: "check-test-password", initdbOptions: [...INITDB_OPTIONS] });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=db\nDB_NAME=dusangire\nSTACK=staging\nREGION=af-south-1\n");
    cluster.psql("CREATE TABLE orders (id int PRIMARY KEY, family text NOT NULL); INSERT INTO orders SELECT g, 'family ' || g FROM generate_series(1, 2000) g; CHECKPOINT", { db: "dusangire" });
  });
  after(() => {
    cluster?.stop();
    moto?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("passes a healthy database (heap and B-tree, --heapallindexed) and publishes DbCorruption 0", () => {
    assert.strictEqual(cluster!.psql("SHOW data_checksums"), "on");
    const r = ctl("db", "check");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /db check: dusangire: heap and B-tree indexes checked by pg_amcheck \(--heapallindexed\), no corruption/);
    assert.strictEqual(corruption(), 0);
  });

  it("finds a page overwritten on disk: exit 1 naming it, DbCorruption above 0", () => {
    const file = path.join(cluster!.dataDir, cluster!.psql("SELECT pg_relation_filepath('orders')", { db: "dusangire" }));
    cluster!.asUser(pgBin("pg_ctl"), ["-D", cluster!.dataDir, "-m", "fast", "-w", "stop"]);
    // Tuples fill a heap page from its end: garble 64 bytes of block 0's last tuples.
    const fd = fs.openSync(file, "r+");
    fs.writeSync(fd, Buffer.alloc(64, 0x7f), 0, 64, 8192 - 200);
    fs.closeSync(fd);
    cluster!.start();
    const r = ctl("db", "check");
    assert.strictEqual(r.status, 1, r.stdout);
    assert.match(r.stderr.trim().split("\n").pop()!, /^nourishctl: db check: 2 problem\(s\) in dusangire: (btree index "dusangire\.public\.orders_pkey"|heap table "dusangire\.public\.orders"): ERROR: invalid page in block 0 of relation base\/\d+\/\d+$/);
    assert.ok(corruption()! > 0, "DbCorruption was not published above 0");
  });

  it("fails in one line, publishing nothing, when it cannot check at all", () => {
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=db\nDB_NAME=no_such_db\nSTACK=staging\nREGION=af-south-1\n");
    const r = ctl("db", "check");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /^nourishctl: db check: pg_amcheck could not check no_such_db \(exit \d+\): .*no_such_db/m);
  });
});

describe("nourishctl backups verify --all: every retained backup checked in the bucket (s3rver)", () => {
  let root = "";
  let cluster: Cluster | undefined;
  let s3: S3;
  const BUCKET = "nl-verify-all";
  const KEYS = ["dumps/daily/db_backup_20261206_020000.dump", "dumps/daily/db_backup_20261207_020000.dump", "dumps/monthly/db_backup_20261201_020000.dump"];
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], {
    env: { ...process.env, ...s3.env, NOURISH_ROOT: root, S3_ENDPOINT: s3.endpoint, PATH: `${path.dirname(AWS_CLI)}:${PG_BINDIR}:${process.env.PATH}` },
  });

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-verify-all-"));
    s3 = await startS3({ buckets: [BUCKET] });
    cluster = await startAppCluster({ appPassword: "verify-all-password" });
    cluster.psql("CREATE TABLE menu (id int PRIMARY KEY, dish text); INSERT INTO menu SELECT g, 'dish ' || g FROM generate_series(1, 500) g", { db: "dusangire" });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), renderEnvFile("host.env", { ROLE: "db", DB_NAME: "dusangire", STACK: "staging", BACKUP_BUCKET: BUCKET }));
    // A real dump, stored under each key with its manifest, as `nourishctl backup` stores them.
    const dump = path.join(cluster.root, "d.dump");
    const d = cluster.asUser(pgBin("pg_dump"), ["-Fc", "-h", cluster.socketDir, "-p", String(cluster.port), "-U", "postgres", "-f", dump, "dusangire"]);
    assert.strictEqual(d.status, 0, d.stderr);
    const sha = run("sha256sum", [dump]).stdout.split(" ")[0];
    const manifest = path.join(root, "m.json");
    fs.writeFileSync(manifest, JSON.stringify({ sha256: sha, time: "2026-12-07T02:00:00Z" }));
    for (const k of KEYS) {
      assert.strictEqual(s3.aws(["s3", "cp", dump, `s3://${BUCKET}/${k}`]).status, 0);
      assert.strictEqual(s3.aws(["s3", "cp", manifest, `s3://${BUCKET}/${k.replace(/\.dump$/, ".json")}`]).status, 0);
    }
  });
  after(async () => {
    cluster?.stop();
    await s3?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("passes when every backup matches its manifest", () => {
    const r = ctl("backups", "verify", "--all");
    assert.strictEqual(r.status, 0, r.stderr);
    for (const k of KEYS) assert.match(r.stdout, new RegExp(`backups verify: ok: ${k} `));
    assert.match(r.stdout, /all 3 backups in s3:\/\/nl-verify-all\/dumps\/ match their manifests and are readable/);
  });

  it("names the one stored backup corrupted in the bucket (not the latest), which --latest does not see, and checks the rest", () => {
    const bad = KEYS[0];
    const down = path.join(root, "bad.dump");
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${BUCKET}/${bad}`, down]).status, 0);
    const bytes = fs.readFileSync(down);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(down, bytes);
    assert.strictEqual(s3.aws(["s3", "cp", down, `s3://${BUCKET}/${bad}`]).status, 0);
    assert.strictEqual(ctl("backups", "verify", "--latest").status, 0, "the latest backup is fine");
    const r = ctl("backups", "verify", "--all");
    assert.strictEqual(r.status, 1, r.stdout);
    assert.match(r.stderr, new RegExp(`FAILED: backup ${bad} is corrupted or truncated: sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}`));
    for (const k of KEYS.slice(1)) assert.match(r.stdout, new RegExp(`backups verify: ok: ${k} `));
    assert.match(r.stderr.trim().split("\n").pop()!, new RegExp(`^nourishctl: backups verify: 1 of 3 backups failed: ${bad}$`));
  });
});
