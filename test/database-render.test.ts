import * as assert from "assert";
import * as path from "path";
import {
  PostgresSizing, postgresTuning, renderPgHba, renderPostgresqlConf,
} from "../components/database/postgresql";
import { Cluster, createCluster, pgBin, startAppCluster } from "./pg";
import { run } from "./tools";

const T3_SMALL: PostgresSizing = { vcpus: 2, memoryMib: 2048 };
const M6I_LARGE: PostgresSizing = { vcpus: 2, memoryMib: 8192 };
const R6I_XLARGE: PostgresSizing = { vcpus: 4, memoryMib: 32768 };

// SHOW prints memory and time settings in the largest exact unit ("2GB", "500ms").
function toNumber(v: string): number {
  const m = /^(-?\d+)\s*(kB|MB|GB|TB|ms|s|min|h|d)?$/.exec(v.trim());
  assert.ok(m, `unexpected setting value ${JSON.stringify(v)}`);
  const factor: Record<string, number> = { kB: 1 / 1024, MB: 1, GB: 1024, TB: 1024 * 1024, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
  return Number(m[1]) * (m[2] ? factor[m[2]] : 1);
}

// `postgres -C` prints the raw number in the setting's base unit: 8kB pages or kB for memory.
const BASE_KB: Record<string, number> = { shared_buffers: 8, effective_cache_size: 8, work_mem: 1, maintenance_work_mem: 1 };
function rawMb(param: string, raw: string): number {
  assert.match(raw, /^\d+$/, `postgres -C ${param} printed ${JSON.stringify(raw)}`);
  return (Number(raw) * BASE_KB[param]) / 1024;
}

// Connect over TCP as the app would (psql runs as root here: a client, not the server).
function tcpPsql(cluster: Cluster, conninfo: string, sql: string, pw: string): { status: number | null; stdout: string; stderr: string } {
  return run(pgBin("psql"), ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
    `host=127.0.0.1 port=${cluster.port} connect_timeout=5 ${conninfo}`, "-c", sql], {
    env: { PATH: process.env.PATH, PGPASSWORD: pw },
  });
}

describe("database: PostgreSQL tuning (PGTune-style)", () => {
  it("sizes a t3.small, an m6i.large and an r6i.xlarge from RAM and vCPUs", () => {
    assert.deepStrictEqual(postgresTuning(T3_SMALL), {
      sharedBuffersMb: 512, effectiveCacheSizeMb: 1536, workMemMb: 5, maintenanceWorkMemMb: 128,
      maxConnections: 100, maxWorkerProcesses: 8, maxParallelWorkers: 2, maxParallelWorkersPerGather: 1,
    });
    assert.deepStrictEqual(postgresTuning(M6I_LARGE), {
      sharedBuffersMb: 2048, effectiveCacheSizeMb: 6144, workMemMb: 20, maintenanceWorkMemMb: 512,
      maxConnections: 100, maxWorkerProcesses: 8, maxParallelWorkers: 2, maxParallelWorkersPerGather: 1,
    });
    assert.deepStrictEqual(postgresTuning(R6I_XLARGE), {
      sharedBuffersMb: 8192, effectiveCacheSizeMb: 24576, workMemMb: 58, maintenanceWorkMemMb: 2048,
      maxConnections: 140, maxWorkerProcesses: 8, maxParallelWorkers: 4, maxParallelWorkersPerGather: 2,
    });
  });

  it("bounds work_mem to [4MB, 64MB], maintenance_work_mem to 2GB and max_connections to [100, 200]", () => {
    const tiny = postgresTuning({ memoryMib: 512, vcpus: 1 });
    assert.strictEqual(tiny.workMemMb, 4);
    assert.strictEqual(tiny.maxConnections, 100);
    assert.strictEqual(tiny.maxParallelWorkers, 1);
    const huge = postgresTuning({ memoryMib: 262144, vcpus: 32 });
    assert.strictEqual(huge.workMemMb, 64);
    assert.strictEqual(huge.maintenanceWorkMemMb, 2048);
    assert.strictEqual(huge.maxConnections, 200);
    assert.strictEqual(huge.maxWorkerProcesses, 32);
    assert.strictEqual(huge.sharedBuffersMb, 65536);
  });

  it("rejects impossible sizing, naming the field", () => {
    assert.throws(() => postgresTuning({ memoryMib: 256, vcpus: 2 }), /sizing\.memoryMib must be an integer from 512/);
    assert.throws(() => postgresTuning({ memoryMib: 2048.5, vcpus: 2 }), /sizing\.memoryMib/);
    assert.throws(() => postgresTuning({ memoryMib: 2048, vcpus: 0 }), /sizing\.vcpus/);
    assert.throws(() => postgresTuning({ memoryMib: 2048, vcpus: NaN }), /sizing\.vcpus/);
  });
});

describe("database: renderers' input validation", () => {
  const ok = { sizing: T3_SMALL, slowQueryMs: 500, sslCertFile: "/etc/ssl/certs/pg.crt", sslKeyFile: "/etc/ssl/private/pg.key" };

  it("renders units and defaults (port 5432, listen on all addresses)", () => {
    const conf = renderPostgresqlConf(ok);
    assert.match(conf, /^shared_buffers = 512MB$/m);
    assert.match(conf, /^port = 5432$/m);
    assert.match(conf, /^listen_addresses = '\*'$/m);
    assert.match(conf, /^log_min_duration_statement = 500$/m);
  });

  it("rejects bad conf settings, naming the setting", () => {
    assert.throws(() => renderPostgresqlConf({ ...ok, sizing: { memoryMib: 100, vcpus: 1 } }), /sizing\.memoryMib/);
    assert.throws(() => renderPostgresqlConf({ ...ok, slowQueryMs: -1 }), /slowQueryMs/);
    assert.throws(() => renderPostgresqlConf({ ...ok, port: 70000 }), /port/);
    assert.throws(() => renderPostgresqlConf({ ...ok, sslKeyFile: "pg.key" }), /sslKeyFile must be an absolute path/);
    assert.throws(() => renderPostgresqlConf({ ...ok, sslCertFile: "/x'\nssl = off" }), /sslCertFile/);
    assert.throws(() => renderPostgresqlConf({ ...ok, listenAddresses: "10.0.0.1 ; rm" }), /listenAddresses/);
  });

  it("rejects bad pg_hba settings, naming the setting", () => {
    const hba = { database: "dusangire", user: "dusangire", appCidrs: ["10.40.1.0/24"] };
    assert.throws(() => renderPgHba({ ...hba, appCidrs: [] }), /appCidrs must list at least one/);
    assert.throws(() => renderPgHba({ ...hba, appCidrs: ["10.40.1.0/24", "10.40.2.0/33"] }), /appCidrs\[1\]/);
    assert.throws(() => renderPgHba({ ...hba, appCidrs: ["10.40.1.0"] }), /appCidrs\[0\]/);
    assert.throws(() => renderPgHba({ ...hba, database: "Dusangire db" }), /database/);
    assert.throws(() => renderPgHba({ ...hba, user: "" }), /user/);
  });

  it("pg_hba.conf allows the app only over hostssl with SCRAM, before a catch-all reject", () => {
    const lines = renderPgHba({ database: "dusangire", user: "dusangire", appCidrs: ["10.40.1.0/24", "10.40.2.0/24"] })
      .split("\n").filter((l) => l.trim() && !l.startsWith("#")).map((l) => l.trim().split(/\s+/));
    assert.deepStrictEqual(lines, [
      ["local", "all", "postgres", "peer"],
      ["local", "all", '"dusangire"', "peer", "map=nourishctl"],
      ["hostssl", '"dusangire"', '"dusangire"', "10.40.1.0/24", "scram-sha-256"],
      ["hostssl", '"dusangire"', '"dusangire"', "10.40.2.0/24", "scram-sha-256"],
      ["host", "all", "all", "0.0.0.0/0", "reject"],
      ["host", "all", "all", "::/0", "reject"],
    ]);
  });
});

describe("database: postgresql.conf snippet judged by `postgres -C`", () => {
  let cluster: Cluster | undefined;
  after(() => cluster?.stop());

  it("is accepted by PostgreSQL 15 and yields the tuned values", async () => {
    cluster = await createCluster();
    const conf = renderPostgresqlConf({
      sizing: M6I_LARGE, slowQueryMs: 500, port: cluster.port,
      sslCertFile: "/etc/ssl/certs/ssl-cert-snakeoil.pem", sslKeyFile: "/etc/ssl/private/ssl-cert-snakeoil.key",
    });
    cluster.writeFile(path.join(cluster.dataDir, "conf.d", "nourish-link.conf"), conf);
    const t = postgresTuning(M6I_LARGE);
    const show = (p: string): string => cluster!.showConfig(p);
    assert.strictEqual(rawMb("shared_buffers", show("shared_buffers")), t.sharedBuffersMb);
    assert.strictEqual(rawMb("effective_cache_size", show("effective_cache_size")), t.effectiveCacheSizeMb);
    assert.strictEqual(rawMb("work_mem", show("work_mem")), t.workMemMb);
    assert.strictEqual(rawMb("maintenance_work_mem", show("maintenance_work_mem")), t.maintenanceWorkMemMb);
    assert.strictEqual(show("max_connections"), String(t.maxConnections));
    assert.strictEqual(show("log_min_duration_statement"), "500"); // base unit: ms
    assert.strictEqual(show("ssl"), "on");
    assert.strictEqual(show("ssl_min_protocol_version"), "TLSv1.2");
    assert.strictEqual(show("password_encryption"), "scram-sha-256");
    assert.strictEqual(show("shared_preload_libraries"), "pg_stat_statements");
    assert.strictEqual(show("log_lock_waits"), "on");
    assert.strictEqual(show("listen_addresses"), "*");
  });
});

describe("database: a real PostgreSQL 15 running the rendered conf and pg_hba.conf", () => {
  let cluster: Cluster | undefined;
  const password = "correct horse battery staple";
  after(() => cluster?.stop());

  const appPsql = (conninfo: string, sql: string, pw = password) => tcpPsql(cluster!, conninfo, sql, pw);

  before(async function () {
    cluster = await startAppCluster({ appPassword: password, sizing: T3_SMALL, slowQueryMs: 200 });
  });

  it("runs with the tuned settings", () => {
    const show = (p: string): string => cluster!.psql(`SHOW ${p}`);
    const t = postgresTuning(T3_SMALL);
    assert.strictEqual(toNumber(show("shared_buffers")), t.sharedBuffersMb);
    assert.strictEqual(toNumber(show("work_mem")), t.workMemMb);
    assert.strictEqual(show("max_connections"), String(t.maxConnections));
    assert.strictEqual(toNumber(show("log_min_duration_statement")), 200);
    assert.strictEqual(show("ssl"), "on");
    assert.strictEqual(show("port"), String(cluster!.port));
  });

  it("stores the app password as SCRAM-SHA-256", () => {
    assert.strictEqual(cluster!.psql("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'dusangire'"), "t");
  });

  it("has pg_stat_statements preloaded, so the extension's view is queryable", () => {
    cluster!.psql("CREATE EXTENSION pg_stat_statements", { db: "dusangire" });
    cluster!.psql("SELECT 42 AS answer", { db: "dusangire" });
    assert.strictEqual(cluster!.psql("SELECT count(*) > 0 FROM pg_stat_statements WHERE query LIKE '%answer%'", { db: "dusangire" }), "t");
  });

  it("lets the app in over TLS with its password, and logs its slow queries with user@db", () => {
    const r = appPsql("sslmode=require user=dusangire dbname=dusangire",
      "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid(); SELECT pg_sleep(0.25)");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout.split("\n")[0], "t");
    assert.match(cluster!.log(), /dusangire@dusangire LOG: {2}duration: \d+\.\d+ ms {2}statement: SELECT ssl FROM pg_stat_ssl/);
  });

  it("refuses plaintext TCP, even with the right password", () => {
    const r = appPsql("sslmode=disable user=dusangire dbname=dusangire", "SELECT 1");
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stderr, /pg_hba\.conf rejects connection .*no encryption/);
  });

  it("refuses a wrong password", () => {
    const r = appPsql("sslmode=require user=dusangire dbname=dusangire", "SELECT 1", "wrong");
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stderr, /password authentication failed for user "dusangire"/);
  });

  it("refuses the app user on any other database, and the superuser over TCP", () => {
    const other = appPsql("sslmode=require user=dusangire dbname=postgres", "SELECT 1");
    assert.match(other.stderr, /pg_hba\.conf rejects connection/);
    const su = appPsql("sslmode=require user=postgres dbname=dusangire", "SELECT 1");
    assert.match(su.stderr, /pg_hba\.conf rejects connection/);
  });
});

// Config refuses pg_hba.conf's keywords as database.user/name; the renderer quotes both fields all
// the same, so that a keyword reaching it names one role or database and never widens the app's line.
describe("database: pg_hba.conf names the app's role and database literally, keywords included", () => {
  let cluster: Cluster | undefined;
  const password = "correct horse battery staple";
  const bossPassword = "another long superuser password";
  after(() => cluster?.stop());

  before(async function () {
    cluster = await startAppCluster({ appPassword: password, names: { database: "all", user: "all" } });
    cluster.psql(`CREATE ROLE boss SUPERUSER LOGIN PASSWORD '${bossPassword}'`);
  });

  it("renders the names quoted", () => {
    const app = renderPgHba({ database: "all", user: "all", appCidrs: ["10.40.1.0/24"] }).split("\n").filter((l) => l.startsWith("hostssl"));
    assert.deepStrictEqual(app.map((l) => l.trim().split(/\s+/)), [["hostssl", '"all"', '"all"', "10.40.1.0/24", "scram-sha-256"]]);
  });

  it("lets the app role in to its database over TLS", () => {
    const r = tcpPsql(cluster!, "sslmode=require user=all dbname=all", "SELECT current_user || '@' || current_database()", password);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout.trim(), "all@all");
  });

  it("does not let a superuser with a password in through the app's line, to any database", () => {
    for (const db of ["all", "postgres"]) {
      const r = tcpPsql(cluster!, `sslmode=require user=boss dbname=${db}`, "SELECT 1", bossPassword);
      assert.notStrictEqual(r.status, 0, `the superuser got in to ${db}: ${r.stdout}`);
      assert.match(r.stderr, /pg_hba\.conf rejects connection .*user "boss"/);
    }
  });

  it("does not let the app role into another database", () => {
    const r = tcpPsql(cluster!, "sslmode=require user=all dbname=postgres", "SELECT 1", password);
    assert.match(r.stderr, /pg_hba\.conf rejects connection .*user "all", database "postgres"/);
  });
});
