// Backup and restore benchmark (issue #4), side by side in one run on one generated database:
//   - the manual's way: plain `pg_dump -Fc` / `pg_restore`;
//   - ours: `nourishctl backup` (dump, SHA-256, manifest, upload to S3) and
//     `nourishctl restore` (download, verify, restore beside the live database, check, swap);
//   - the floor: a plain copy of the stopped data directory, and back.
// It prints each time and the ratios, then RTO (restore command to serving the restored data).
// Real PostgreSQL 15, s3rver as S3 and the aws CLI, on loopback.
//
// Usage: npm run bench:backup [-- <GiB of incompressible data, default 1>]
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_SOURCE } from "../../components/hosts/user-data";
import { PG_BINDIR, pgBin, startAppCluster } from "../../test/pg";
import { startS3 } from "../../test/s3";

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
  const s3 = await startS3({ buckets: ["bench-backups"] });
  const cluster = await startAppCluster({ appPassword: "bench-password-not-secret", sizing: { memoryMib: 4096, vcpus: 2 } });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-bench-"));
  try {
    // 1 KiB random values stay below the TOAST threshold: nothing compresses them.
    const rows = Math.round(gib * 1024 * 1024);
    console.log(`generating ${gib} GiB of incompressible rows (${rows} x 1 KiB)…`);
    cluster.psql("CREATE EXTENSION IF NOT EXISTS pgcrypto", { db: "dusangire" });
    cluster.psql("CREATE TABLE blobs (id bigserial PRIMARY KEY, data bytea NOT NULL); ALTER TABLE blobs OWNER TO dusangire", { db: "dusangire" });
    for (let done = 0; done < rows; done += 100_000) {
      cluster.psql(`INSERT INTO blobs (data) SELECT gen_random_bytes(1024) FROM generate_series(1, ${Math.min(100_000, rows - done)})`, { db: "dusangire" });
    }
    cluster.psql("VACUUM ANALYZE blobs", { db: "dusangire" });
    cluster.psql("CHECKPOINT");
    const size = cluster.psql("SELECT pg_size_pretty(pg_database_size('dusangire'))");
    console.log(`database dusangire: ${size}`);

    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"),
      `ROLE=db\nSTACK=bench\nREGION=us-east-1\nDB_NAME=dusangire\nBACKUP_BUCKET=bench-backups\nS3_ENDPOINT=${s3.endpoint}\nBACKUP_LOCAL_DAYS=7\n`);
    const env = { ...process.env, ...s3.env, NOURISH_ROOT: root, PGHOST: cluster.socketDir, PGPORT: String(cluster.port), PATH: `${PG_BINDIR}:${process.env.PATH}` };
    const ctl = (...args: string[]) => sh("bash", [NOURISHCTL_SOURCE, ...args], env);
    const asPg = (bin: string, args: string[]) => {
      const r = cluster.asUser(pgBin(bin), ["-h", cluster.socketDir, "-p", String(cluster.port), ...args]);
      if (r.status !== 0) throw new Error(`${bin} failed: ${r.stderr}`);
    };
    const dump = path.join(cluster.root, "manual.dump");

    const t: Record<string, number> = {};
    t.manualBackup = seconds(() => asPg("pg_dump", ["-Fc", "-f", dump, "dusangire"]));
    t.oursBackup = seconds(() => ctl("backup"));
    // The floor: stop, copy the data directory, start again (only the copy is timed).
    const pgCtl = (...a: string[]) => cluster.asUser(pgBin("pg_ctl"), ["-D", cluster.dataDir, "-w", "-t", "60", ...a]);
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

    const r = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
    console.log(`\n${"".padEnd(10)} ${"manual".padStart(9)} ${"ours".padStart(9)} ${"floor".padStart(9)}   ours/floor  manual/floor  ours/manual`);
    console.log(`${"backup".padEnd(10)} ${t.manualBackup.toFixed(1).padStart(8)}s ${t.oursBackup.toFixed(1).padStart(8)}s ${t.floorBackup.toFixed(1).padStart(8)}s   ${r(t.oursBackup, t.floorBackup).padStart(10)}  ${r(t.manualBackup, t.floorBackup).padStart(12)}  ${r(t.oursBackup, t.manualBackup).padStart(11)}`);
    console.log(`${"restore".padEnd(10)} ${t.manualRestore.toFixed(1).padStart(8)}s ${t.oursRestore.toFixed(1).padStart(8)}s ${t.floorRestore.toFixed(1).padStart(8)}s   ${r(t.oursRestore, t.floorRestore).padStart(10)}  ${r(t.manualRestore, t.floorRestore).padStart(12)}  ${r(t.oursRestore, t.manualRestore).padStart(11)}`);
    console.log(`\nRTO (nourishctl restore --latest to serving the restored data): ${t.oursRestore.toFixed(1)} s for ${size}; target: restore within 2x the data-directory copy: ${t.oursRestore <= 2 * t.floorRestore ? "met" : "NOT met"}`);
  } finally {
    cluster.stop();
    await s3.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(`bench: ${(e as Error).message}`); process.exit(1); });
