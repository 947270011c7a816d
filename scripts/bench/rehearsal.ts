// Restore rehearsal against the data-directory floor (issue 11), side by side in one run on one
// generated database (scripts/bench/generate.ts), backed up by the real `nourishctl backup` of a
// prod db host sandbox into "prod's bucket" (s3rver, loopback):
//   - floor: `cp -a` of the stopped data directory, and back (the back copy is timed);
//   - manual: plain `pg_restore` of that backup into a new database, as the manual does;
//   - candidate: `pg_restore -j 2 --exit-on-error` (no --single-transaction), same file;
//   - ours: `nourishctl restore-rehearsal --latest` on a staging db host sandbox (pointer, download,
//     checksum, pg_restore into a new database, checks, scrub, swap), timed until the restored data
//     answers in staging's live database, and broken down from its xtrace stamps (scripts/bench/steps.ts).
// Each restore runs BENCH_ROUNDS times (default 2), interleaved, and the best run counts: this
// machine is shared. Then download and checksum apart: coreutils' sha256sum against bk_sha256, and
// the one-pass candidate `aws s3 cp s3://… - | tee | sha256sum`.
// The app host's half (`restore-rehearsal-verify`: migrate, check --deploy, health) needs the
// Django app and is not run here; it is the roughly constant cost measured by `npm run rehearse`.
//
// Usage: npm run bench:rehearsal [-- <GiB of incompressible data, default 1>]
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderEnvFile } from "../../components/hosts/env-file";
import { NOURISHCTL_LIB_SOURCE, NOURISHCTL_SOURCE } from "../../components/hosts/user-data";
import { PG_BINDIR, pgBin, startAppCluster } from "../../test/pg";
import { AWS_CLI, startS3 } from "../../test/s3";
import { generateIncompressible } from "./generate";
import { Milestone, STAMP_PS4, stepsOf } from "./steps";

const gib = Number(process.argv[2] ?? "1");
const rounds = Number(process.env.BENCH_ROUNDS ?? "2");
const PROD_BUCKET = "bench-prod-backups";
const PROD_DB = "dusangire_prod";
const STAGING_DB = "dusangire";

/** The restore rehearsal's steps, by the first command of each in its trace (lib/rehearsal.sh, lib/backup.sh). */
export const REHEARSAL_STEPS: Milestone[] = [
  { step: "latest pointer", pattern: /^aws_cli s3 cp .*latest\.json/ },
  { step: "download", pattern: /^aws_cli s3 cp .*--recursive/ },
  { step: "checksum", pattern: /^bk_sha256 / },
  { step: "readable, create db", pattern: /^pg_restore --list / },
  { step: "pg_restore", pattern: /^pg_app pg_restore / },
  { step: "checks", pattern: /^bk_dump_tables / },
  { step: "scrub", pattern: /^rr_scrub / },
  { step: "swap", pattern: /^bk_swap / },
  { step: "record, answer", pattern: /^bk_psql postgres -v d=\S+ -v 'c=nourishctl restore-rehearsal key=/ },
];

const now = () => Date.now() / 1000;
function seconds(f: () => void): number {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e9;
}
function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { env, encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"] });
}

async function main(): Promise<void> {
  if (!(gib > 0)) throw new Error(`GiB must be a positive number, not '${process.argv[2]}'`);
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new Error(`BENCH_ROUNDS must be a positive integer, not '${process.env.BENCH_ROUNDS}'`);
  const loadBefore = os.loadavg();
  const s3 = await startS3({ buckets: [PROD_BUCKET] });
  const cluster = await startAppCluster({ appPassword: "bench-password-not-secret", sizing: { memoryMib: 4096, vcpus: 2 } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-bench-rehearsal-"));
  try {
    cluster.psql(`CREATE DATABASE ${PROD_DB} OWNER dusangire`);
    const { size } = generateIncompressible(cluster, PROD_DB, "dusangire", gib);
    // Staging's live database before the rehearsal: the app's, small.
    cluster.psql("CREATE TABLE blobs (id bigserial PRIMARY KEY, data bytea NOT NULL); ALTER TABLE blobs OWNER TO dusangire", { db: STAGING_DB });

    const prodRoot = path.join(dir, "prod");
    const stagingRoot = path.join(dir, "staging");
    const hostEnv = (root: string, vars: Record<string, string>) => {
      fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
      fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), renderEnvFile("host.env", { ROLE: "db", REGION: "us-east-1", DB_USER: "dusangire", S3_ENDPOINT: s3.endpoint, ...vars }));
    };
    hostEnv(prodRoot, { STACK: "prod", DB_NAME: PROD_DB, BACKUP_BUCKET: PROD_BUCKET });
    hostEnv(stagingRoot, { STACK: "staging", DB_NAME: STAGING_DB, REHEARSAL_SOURCE_BUCKET: PROD_BUCKET });
    const env = { ...process.env, ...s3.env, PGHOST: cluster.socketDir, PGPORT: String(cluster.port), PATH: `${PG_BINDIR}:${path.dirname(AWS_CLI)}:${process.env.PATH}` };
    const ctl = (root: string, ...args: string[]) => sh("bash", [NOURISHCTL_SOURCE, ...args], { ...env, NOURISH_ROOT: root });
    const asPg = (bin: string, args: string[]) => {
      const r = cluster.asUser(pgBin(bin), ["-h", cluster.socketDir, "-p", String(cluster.port), ...args], { timeout: 3_600_000 });
      if (r.status !== 0) throw new Error(`${bin} failed: ${r.stderr}`);
    };

    const t: Record<string, number> = {};
    t.backup = seconds(() => ctl(prodRoot, "backup"));
    const key = JSON.parse(s3.aws(["s3", "cp", `s3://${PROD_BUCKET}/dumps/daily/latest.json`, "-"]).stdout).key as string;
    // The manual's restores read the same file, where the postgres user can read it (not timed).
    const dump = path.join(cluster.root, "prod.dump");
    fs.copyFileSync(path.join(prodRoot, "var/backups/nourish-link", path.basename(key)), dump);
    cluster.own(dump);
    const expected = cluster.psql("SELECT count(*) FROM blobs", { db: PROD_DB });

    // The floor: stop, copy the data directory, copy it back (timed), start again.
    const pgCtl = (...a: string[]) => cluster.asUser(pgBin("pg_ctl"), ["-D", cluster.dataDir, "-w", "-t", "600", ...a], { timeout: 600_000 });
    const copy = path.join(cluster.root, "copy");
    const back = path.join(cluster.root, "copy-back");
    pgCtl("-m", "fast", "stop");
    const dataMb = Number(sh("du", ["-sm", cluster.dataDir]).split("\t")[0]);
    // This machine is shared: every variant runs ROUNDS times, interleaved, and the best run counts.
    const floors: number[] = [];
    for (let i = 0; i < rounds; i++) {
      sh("cp", ["-a", cluster.dataDir, copy]);
      floors.push(seconds(() => sh("cp", ["-a", copy, back])));
      fs.rmSync(copy, { recursive: true, force: true });
      fs.rmSync(back, { recursive: true, force: true });
    }
    pgCtl("-l", path.join(cluster.root, "server.log"), "start");

    const restoreInto = (db: string, args: string[]) => {
      cluster.psql(`CREATE DATABASE ${db} OWNER dusangire TEMPLATE template0`);
      const s = seconds(() => {
        asPg("pg_restore", ["-d", db, ...args, dump]);
        if (cluster.psql("SELECT count(*) FROM blobs", { db }) !== expected) throw new Error(`${db}: restored row count differs`);
      });
      cluster.psql(`DROP DATABASE ${db}`);
      return s;
    };
    // Ours, traced: PS4 is not taken from the environment by a root shell, so set it, then run
    // nourishctl in this shell ($0 = its path, so it runs its verb rather than acting sourced).
    // The trace goes to a copy of stderr (fd 29, one nourishctl does not use): nourishctl reads some commands' stderr (`2>&1`)
    // and must not find the trace in it.
    const rehearse = () => {
      const started = now();
      const r = spawnSync("bash", ["-c", `exec 29>&2; BASH_XTRACEFD=29; PS4='${STAMP_PS4}'; set -x; . "$0" "$@"`, NOURISHCTL_SOURCE, "restore-rehearsal", "--latest"],
        { env: { ...env, NOURISH_ROOT: stagingRoot }, encoding: "utf8", maxBuffer: 256 << 20, timeout: 3_600_000 });
      if (r.status !== 0) throw new Error(`restore-rehearsal failed: ${r.stderr.split("\n").filter((l) => l.startsWith("nourishctl:")).pop()}`);
      if (cluster.psql("SELECT count(*) FROM blobs", { db: STAGING_DB }) !== expected) throw new Error("rehearsal: restored row count differs");
      const ended = now();
      if (process.env.BENCH_TRACE) fs.writeFileSync(process.env.BENCH_TRACE, r.stderr);
      const run = { seconds: ended - started, steps: stepsOf(r.stderr, REHEARSAL_STEPS, started, ended), reported: JSON.parse(r.stdout.trim().split("\n").pop()!).restoreSeconds as number };
      // The database it kept aside goes (not timed), so every round restores beside the same data.
      ctl(stagingRoot, "restore-cleanup", "--older-than", "0");
      return run;
    };
    const runs: Record<string, number[]> = { manual: [], single: [], j2: [], ours: [] };
    const ours: ReturnType<typeof rehearse>[] = [];
    for (let i = 0; i < rounds; i++) {
      runs.manual.push(restoreInto("manual_restore", []));
      runs.single.push(restoreInto("manual_single", ["--exit-on-error", "--single-transaction"]));
      runs.j2.push(restoreInto("manual_j2", ["--exit-on-error", "-j", "2"]));
      ours.push(rehearse());
      runs.ours.push(ours[i].seconds);
    }
    const best = (xs: number[]) => Math.min(...xs);
    t.floor = best(floors);
    t.manual = best(runs.manual);
    t.manualSingle = best(runs.single);
    t.manualJ2 = best(runs.j2);
    const bestOurs = ours.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    t.ours = bestOurs.seconds;
    const steps = bestOurs.steps;
    const summary = { restoreSeconds: bestOurs.reported };

    // Download and checksum, apart: two passes as bk_fetch and bk_check_file make them (sha256sum
    // of coreutils, as before, and bk_sha256), against one pass (aws s3 cp - | tee | sha256sum).
    const probe = path.join(dir, "probe");
    fs.mkdirSync(probe);
    const local = path.join(probe, path.basename(key));
    t.download = seconds(() => sh(AWS_CLI, ["--endpoint-url", s3.endpoint, "s3", "cp", "--only-show-errors", "--recursive", `s3://${PROD_BUCKET}/dumps/daily/`, `${probe}/`, "--exclude", "*", "--include", path.basename(key)], env));
    t.sha = seconds(() => sh("sha256sum", [local]));
    t.bkSha = seconds(() => sh("bash", ["-c", `. "$1"; bk_sha256 "$2"`, "bench-sha", NOURISHCTL_SOURCE, local], { ...env, NOURISH_LIB: NOURISHCTL_LIB_SOURCE }));
    fs.rmSync(local);
    t.onePass = seconds(() => sh("bash", ["-o", "pipefail", "-c", `"$0" --endpoint-url "$1" s3 cp --only-show-errors "$2" - | tee "$3" | sha256sum`,
      AWS_CLI, s3.endpoint, `s3://${PROD_BUCKET}/${key}`, local], env));
    fs.rmSync(probe, { recursive: true, force: true });
    const loadAfter = os.loadavg();

    const f = t.floor;
    const line = (what: string, s: number) => `| ${what} | ${s.toFixed(1)} s | ${(s / f).toFixed(2)}× |`;
    console.log(`\nbench:rehearsal, ${gib} GiB requested: ${PROD_DB} = ${size}, data directory ${dataMb} MB; backup (nourishctl backup) ${t.backup.toFixed(1)} s; best of ${rounds}`);
    console.log(`load average before ${loadBefore.map((x) => x.toFixed(2)).join(", ")}; after ${loadAfter.map((x) => x.toFixed(2)).join(", ")}\n`);
    console.log("| restore | seconds | ÷ floor |\n| --- | --- | --- |");
    console.log(line("floor: `cp -a` of the stopped data directory, back", f));
    console.log(line("manual: `pg_restore` into a new database", t.manual));
    console.log(line("`pg_restore --exit-on-error --single-transaction` (ours' flags)", t.manualSingle));
    console.log(line("candidate: `pg_restore --exit-on-error -j 2`", t.manualJ2));
    console.log(line("**ours: `nourishctl restore-rehearsal --latest`, to the data answering**", t.ours));
    console.log(`\nours, where the time went (xtrace stamps; restoreSeconds it reported: ${summary.restoreSeconds}):\n`);
    console.log("| step | seconds | share |\n| --- | --- | --- |");
    for (const s of steps) console.log(`| ${s.step} | ${s.seconds.toFixed(2)} | ${(100 * s.seconds / t.ours).toFixed(0)} % |`);
    const all = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
    console.log(`\nevery run (s), best counted: floor ${all(floors)}; manual ${all(runs.manual)}; --single-transaction ${all(runs.single)}; -j 2 ${all(runs.j2)}; ours ${all(runs.ours)}`);
    console.log(`download + checksum: two passes (aws s3 cp --recursive, then sha256sum) ${t.download.toFixed(1)} + ${t.sha.toFixed(1)} s, with bk_sha256 ${t.download.toFixed(1)} + ${t.bkSha.toFixed(1)} s; one pass (aws s3 cp - | tee | sha256sum) ${t.onePass.toFixed(1)} s`);
    console.log(`goal, ours within 1.5× the floor: ${t.ours <= 1.5 * f ? "met" : "NOT met"} (${(t.ours / f).toFixed(2)}×); plus restore-rehearsal-verify on the app host, measured apart (npm run rehearse)`);
  } finally {
    cluster.stop();
    await s3.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) main().catch((e) => { console.error(`bench: ${(e as Error).message}`); process.exit(1); });
