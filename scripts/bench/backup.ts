// Backup and restore benchmark (issue #4), side by side in one run on one generated database:
//   - the manual's way: plain `pg_dump -Fc` / `pg_restore`;
//   - ours: `nourishctl backup` (dump, SHA-256, manifest, upload to S3) and
//     `nourishctl restore` (download, verify, restore beside the live database, check, swap);
//   - ours, physical: `nourishctl pitr backup full` and `nourishctl pitr recover` (pgBackRest);
//   - the floor: a plain copy of the stopped data directory, and back.
// Then RPO: orders committed under load, the server killed, `pitr recover` from the repository,
// and how much acknowledged data came back. Real PostgreSQL 15, pgBackRest, s3rver (behind
// nginx TLS for pgBackRest) and the aws CLI, on loopback.
//
// Usage: npm run bench:backup [-- <GiB of incompressible data, default 1>]
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderEnvFile } from "../../components/hosts/env-file";
import { NOURISHCTL_SOURCE } from "../../components/hosts/user-data";
import { PG_BINDIR, pgBin } from "../../test/pg";
import { startPitrCluster } from "../../test/pgbackrest";
import { startS3 } from "../../test/s3";
import { generateIncompressible } from "./generate";

const gib = Number(process.argv[2] ?? "1");

function seconds(f: () => void): number {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { env, encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"] });
}

async function main(): Promise<void> {
  const s3 = await startS3({ buckets: ["bench-backups", "bench-pgbackrest"], tls: true });
  const { cluster, confPath } = await startPitrCluster(s3, "bench-pgbackrest", "bench-passphrase-not-a-secret-0123456789",
    { appPassword: "bench-password-not-secret", sizing: { memoryMib: 4096, vcpus: 2 } });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-bench-"));
  try {
    const { size } = generateIncompressible(cluster, "dusangire", "dusangire", gib);

    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    // As the rehearsal bench writes it (the db host's host.env has named its role since issue 9).
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), renderEnvFile("host.env", {
      ROLE: "db", STACK: "bench", REGION: "us-east-1", DB_NAME: "dusangire", DB_USER: "dusangire", BACKUP_BUCKET: "bench-backups",
      S3_ENDPOINT: s3.endpoint, BACKUP_LOCAL_DAYS: "7", PITR: "true", PGBACKREST_BUCKET: "bench-pgbackrest",
    }));
    const env = {
      ...process.env, ...s3.env, NOURISH_ROOT: root, PGHOST: cluster.socketDir, PGPORT: String(cluster.port),
      PATH: `${PG_BINDIR}:${process.env.PATH}`, PGBACKREST_CONFIG: confPath, PG_DATA: cluster.dataDir,
    };
    const ctl = (...args: string[]) => sh("bash", [NOURISHCTL_SOURCE, ...args], env);
    const asPg = (bin: string, args: string[]) => {
      const r = cluster.asUser(pgBin(bin), ["-h", cluster.socketDir, "-p", String(cluster.port), ...args], { timeout: 3_600_000 });
      if (r.status !== 0) throw new Error(`${bin} failed: ${r.stderr}`);
    };
    const dump = path.join(cluster.root, "manual.dump");

    const t: Record<string, number> = {};
    ctl("pitr", "setup");
    t.physicalBackup = seconds(() => ctl("pitr", "backup", "full"));
    t.manualBackup = seconds(() => asPg("pg_dump", ["-Fc", "-f", dump, "dusangire"]));
    t.oursBackup = seconds(() => ctl("backup"));
    // The floor: stop, copy the data directory, start again (only the copy is timed).
    const pgCtl = (...a: string[]) => cluster.asUser(pgBin("pg_ctl"), ["-D", cluster.dataDir, "-w", "-t", "600", ...a], { timeout: 600_000 });
    const copy = path.join(cluster.root, "copy");
    pgCtl("-m", "fast", "stop");
    t.floorBackup = seconds(() => sh("cp", ["-a", cluster.dataDir, copy]));
    t.floorRestore = seconds(() => sh("cp", ["-a", copy, path.join(cluster.root, "copy-back")]));
    fs.rmSync(copy, { recursive: true, force: true });
    fs.rmSync(path.join(cluster.root, "copy-back"), { recursive: true, force: true });
    pgCtl("-l", path.join(cluster.root, "server.log"), "start");

    cluster.psql("CREATE DATABASE manual_restore OWNER dusangire");
    t.manualRestore = seconds(() => asPg("pg_restore", ["-d", "manual_restore", dump]));
    cluster.psql("DROP DATABASE manual_restore");
    // RTO: from `nourishctl restore --latest` (swap) to the restored database answering.
    const expected = cluster.psql("SELECT count(*) FROM blobs", { db: "dusangire" });
    t.oursRestore = seconds(() => {
      ctl("restore", "--latest");
      if (cluster.psql("SELECT count(*) FROM blobs", { db: "dusangire" }) !== expected) throw new Error("restored row count differs");
    });

    // RTO of the physical path: the server dies, `pitr recover` until it serves again. First the
    // nightly differential, as the timer leaves the repository: without it, recovery would also
    // replay the WAL of the logical restore above (1.2 GB), which no real night writes.
    // The logical restore kept the previous database aside: drop it, so the cluster recovered is
    // the size the floor copied.
    ctl("restore-cleanup", "--older-than", "0");
    ctl("pitr", "backup", "diff");
    pgCtl("-m", "immediate", "stop");
    let recoverSteps = "";
    t.physicalRestore = seconds(() => {
      recoverSteps = ctl("pitr", "recover", "--yes").split("\n").find((l) => l.includes("pitr recover: took")) ?? "";
      if (cluster.psql("SELECT count(*) FROM blobs", { db: "dusangire" }) !== expected) throw new Error("recovered row count differs");
    });

    const r = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
    const row = (what: string, manual: number, ours: number, physical: number, floor: number) =>
      `${what.padEnd(8)} ${[manual, ours, physical, floor].map((x) => `${x.toFixed(1)}s`.padStart(9)).join(" ")}   ${r(ours, floor).padStart(10)} ${r(physical, floor).padStart(14)} ${r(manual, floor).padStart(12)}`;
    console.log(`\n${"".padEnd(8)} ${"manual".padStart(9)} ${"ours".padStart(9)} ${"physical".padStart(9)} ${"floor".padStart(9)}   ours/floor physical/floor manual/floor`);
    console.log(row("backup", t.manualBackup, t.oursBackup, t.physicalBackup, t.floorBackup));
    console.log(row("restore", t.manualRestore, t.oursRestore, t.physicalRestore, t.floorRestore));
    console.log(`\nRTO, restore command to serving: logical (nourishctl restore --latest) ${t.oursRestore.toFixed(1)} s; physical (nourishctl pitr recover) ${t.physicalRestore.toFixed(1)} s for ${size}`);
    console.log(`physical restore, where the time went: ${recoverSteps.replace(/^nourishctl: /, "")}`);
    console.log(`target, restore within 2x the data-directory copy: physical ${t.physicalRestore <= 2 * t.floorRestore ? "met" : "NOT met"}, logical ${t.oursRestore <= 2 * t.floorRestore ? "met" : "NOT met"}`);

    await measureRpo(cluster.psql.bind(cluster), ctl, pgCtl, cluster.port, cluster.socketDir);
  } finally {
    cluster.stop();
    await s3.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/**
 * RPO: orders committed one by one under load for longer than archive_timeout, the server killed
 * (host dies, its data gone), `pitr recover` from the repository; how many acknowledged orders
 * came back, and how many seconds of them were lost.
 */
async function measureRpo(psql: (sql: string, o?: { db?: string }) => string, ctl: (...a: string[]) => string,
  pgCtl: (...a: string[]) => unknown, port: number, socketDir: string): Promise<void> {
  const loadSeconds = Number(process.env.RPO_LOAD_SECONDS ?? "90");
  psql("CREATE TABLE rpo_orders (id bigint PRIMARY KEY, committed_at timestamptz NOT NULL DEFAULT clock_timestamp()); ALTER TABLE rpo_orders OWNER TO dusangire", { db: "dusangire" });
  // One commit per order, acknowledged on stdout only after COMMIT returned.
  // As the postgres OS user: peer authentication on the socket, as nourishctl has it.
  const loader = spawn("runuser", ["-u", "postgres", "--", "/usr/bin/python3", "-u", "-c", `
import psycopg2, sys, time
conn = psycopg2.connect(host=${JSON.stringify(socketDir)}, port=${port}, dbname="dusangire", user="postgres")
conn.autocommit = True
cur = conn.cursor()
i = 0
while True:
    i += 1
    try:
        cur.execute("INSERT INTO rpo_orders (id) VALUES (%s)", (i,))
    except Exception:
        break
    print(i, time.time(), flush=True)
    time.sleep(0.005)
`], { stdio: ["ignore", "pipe", "ignore"] });
  let acked = 0;
  let ackedAt = 0;
  loader.stdout.on("data", (c: Buffer) => {
    const lines = c.toString().trim().split("\n");
    const [id, at] = lines[lines.length - 1].split(" ");
    acked = Number(id);
    ackedAt = Number(at);
  });
  const loadStartedAt = Date.now() / 1000;
  await new Promise((res) => setTimeout(res, loadSeconds * 1000));
  const archiver = psql("SELECT pg_walfile_name(pg_current_wal_lsn()) || ' current, last archived ' || coalesce(last_archived_wal, 'none') || ', failed ' || failed_count FROM pg_stat_archiver");
  console.log(`\nRPO load: ${acked} orders acknowledged; WAL ${archiver}`);
  pgCtl("-m", "immediate", "stop");
  await new Promise((res) => loader.once("exit", res));
  const started = Date.now();
  ctl("pitr", "recover", "--yes");
  const rto = (Date.now() - started) / 1000;
  // The table itself is lost when its creation never left the unarchived segment.
  const exists = psql("SELECT to_regclass('rpo_orders') IS NOT NULL", { db: "dusangire" }) === "t";
  const [restored, lastAt] = exists
    ? psql("SELECT coalesce(max(id), 0), coalesce(extract(epoch FROM max(committed_at)), 0) FROM rpo_orders", { db: "dusangire" }).split("|")
    : ["0", String(loadStartedAt)];
  const lost = acked - Number(restored);
  const lostSeconds = lost > 0 ? ackedAt - (Number(lastAt) > 0 ? Number(lastAt) : loadStartedAt) : 0;
  console.log(`\nRPO: ${acked} orders acknowledged over ${loadSeconds} s, ${restored} back after the host died and \`pitr recover\` (${rto.toFixed(1)} s):`);
  console.log(`     ${lost} lost = ${lostSeconds.toFixed(1)} s of orders (target <= 60 s: ${lostSeconds <= 60 ? "met" : "NOT met"}); with the data volume intact nothing is lost (synchronous commit).`);
}

main().catch((e) => { console.error(`bench: ${(e as Error).message}`); process.exit(1); });
