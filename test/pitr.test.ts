// Point-in-time recovery: the pgBackRest renderers, read by the real pgbackrest, and the
// `nourishctl pitr` verbs against a real PostgreSQL 15 cluster archiving into s3rver (behind
// nginx with a throwaway certificate, since pgBackRest speaks only HTTPS to S3).
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  CIPHER_PASS_PLACEHOLDER, PgbackrestConfSettings, pitrRetention, renderArchiveSettings, renderPgbackrestConf,
} from "../components/database/pgbackrest";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { Cluster, PG_BINDIR, pgBin } from "./pg";
import { startPitrCluster, TEST_ARCHIVE_TIMEOUT_SECONDS } from "./pgbackrest";
import { AWS_CLI, S3, startS3 } from "./s3";
import { requireTool, run } from "./tools";

// Characters a careless substitution would mangle (& in bash patterns, $ in shells).
const PASS = "correct&horse$battery%staple/0123456789";
const BASE: PgbackrestConfSettings = { bucket: "nl-backups", region: "eu-west-1", retentionFull: 6, retentionDiff: 7 };

describe("pitr: pgBackRest renderers", () => {
  it("renders an encrypted S3 repository on the instance role, with the AWS endpoint by default", () => {
    const conf = renderPgbackrestConf({ ...BASE, cipherPass: PASS });
    for (const line of [
      "[global]", "repo1-type=s3", "repo1-s3-bucket=nl-backups", "repo1-s3-region=eu-west-1",
      "repo1-s3-endpoint=s3.eu-west-1.amazonaws.com", "repo1-s3-key-type=auto", "repo1-path=/pgbackrest",
      "repo1-retention-full=6", "repo1-retention-diff=7", "repo1-cipher-type=aes-256-cbc", `repo1-cipher-pass=${PASS}`,
      "compress-type=zst", "process-max=2", "start-fast=y", "archive-async=y", "spool-path=/var/spool/pgbackrest",
      "[nourish-link]", "pg1-path=/var/lib/postgresql/15/main", "pg1-port=5432", "pg1-socket-path=/var/run/postgresql",
    ]) assert.ok(conf.split("\n").includes(line), `missing ${line} in\n${conf}`);
    // Test-only relaxations appear only when asked for.
    assert.doesNotMatch(conf, /verify-tls|uri-style|storage-port|repo1-s3-key=|key-secret/);
  });

  it("puts the passphrase only where it is given; without it, a template with a placeholder", () => {
    const template = renderPgbackrestConf(BASE);
    assert.ok(template.includes(`repo1-cipher-pass=${CIPHER_PASS_PLACEHOLDER}\n`));
    assert.ok(!template.includes(PASS));
    const conf = renderPgbackrestConf({ ...BASE, cipherPass: PASS });
    assert.strictEqual(conf.split("\n").filter((l) => l.includes(PASS)).length, 1);
    // What nourishctl does on the host: the filled template is exactly the finished file.
    assert.strictEqual(template.replace(CIPHER_PASS_PLACEHOLDER, PASS), conf);
    assert.ok(!renderArchiveSettings({ archiveTimeoutSeconds: 60 }).includes("cipher"));
    assert.throws(() => renderPgbackrestConf({ ...BASE, cipherPass: "short" }), /cipherPass/);
    assert.throws(() => renderPgbackrestConf({ ...BASE, cipherPass: `${PASS}\nrepo1-type=posix` }), /cipherPass/);
  });

  it("takes shared keys and the s3rver relaxations only when given explicitly", () => {
    const conf = renderPgbackrestConf({
      ...BASE, cipherPass: PASS, endpoint: "127.0.0.1", credentials: { type: "shared", key: "K", secret: "S" },
      testStorage: { port: 8443, pathStyle: true, insecureSkipTlsVerify: true }, compressType: "lz4",
    });
    for (const line of ["repo1-s3-endpoint=127.0.0.1", "repo1-s3-key-type=shared", "repo1-s3-key=K", "repo1-s3-key-secret=S",
      "repo1-storage-port=8443", "repo1-s3-uri-style=path", "repo1-storage-verify-tls=n", "compress-type=lz4"]) {
      assert.ok(conf.split("\n").includes(line), `missing ${line}`);
    }
    assert.throws(() => renderPgbackrestConf({ ...BASE, bucket: "Bad_Bucket" }), /bucket/);
    assert.throws(() => renderPgbackrestConf({ ...BASE, retentionFull: 0 }), /retentionFull/);
    assert.throws(() => renderPgbackrestConf({ ...BASE, pgPath: "relative/path" }), /pgPath/);
  });

  it("keeps enough weekly fulls to cover backups.retentionDays", () => {
    assert.deepStrictEqual(pitrRetention(35), { retentionFull: 6, retentionDiff: 7 });
    assert.deepStrictEqual(pitrRetention(7), { retentionFull: 2, retentionDiff: 7 });
    assert.deepStrictEqual(pitrRetention(1), { retentionFull: 2, retentionDiff: 7 });
    assert.throws(() => pitrRetention(0), /backups\.retentionDays/);
  });

  it("archives through pgbackrest at least once a minute, and rejects a looser RPO", () => {
    const conf = renderArchiveSettings({ archiveTimeoutSeconds: 60 });
    for (const line of ["wal_level = replica", "archive_mode = on", "archive_timeout = 60",
      "archive_command = 'pgbackrest --stanza=nourish-link archive-push %p'"]) assert.ok(conf.split("\n").includes(line), `missing ${line}`);
    assert.match(renderArchiveSettings({ archiveTimeoutSeconds: 30, configPath: "/tmp/x/pgbackrest.conf" }),
      /^archive_command = 'pgbackrest --config=\/tmp\/x\/pgbackrest\.conf --stanza=nourish-link archive-push %p'$/m);
    assert.throws(() => renderArchiveSettings({ archiveTimeoutSeconds: 61 }), /archiveTimeoutSeconds must be an integer from 1 to 60/);
    assert.throws(() => renderArchiveSettings({ archiveTimeoutSeconds: 0 }), /archiveTimeoutSeconds/);
    assert.throws(() => renderArchiveSettings({ archiveTimeoutSeconds: 60, configPath: "/tmp/it's" }), /configPath/);
  });
});

describe("pitr: nourishctl with real pgBackRest, PostgreSQL 15 and S3", () => {
  const BUCKET = "nl-pitr";
  let s3: S3;
  let cluster: Cluster;
  let root: string;
  let confPath: string;
  let settings: PgbackrestConfSettings;
  let firstBackupDone = false;

  const metricFile = () => path.join(root, "var/lib/nourish-link/metrics/PitrBackupSuccess");
  const ctl = (args: string[], env: Record<string, string> = {}) => run("bash", [NOURISHCTL_SOURCE, ...args], {
    encoding: "utf8",
    timeout: 300_000,
    env: {
      ...process.env, NOURISH_ROOT: root, PGHOST: cluster.socketDir, PGPORT: String(cluster.port),
      PGBACKREST_CONFIG: confPath, ...env,
    },
  });
  const ok = (r: { status: number | null; stdout: string; stderr: string }, what: string) =>
    assert.strictEqual(r.status, 0, `${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const psql = (sql: string, db = "dusangire") => cluster.psql(sql, { db });
  const databases = () => psql("SELECT datname FROM pg_database ORDER BY 1", "postgres").split("\n");
  const leftovers = () => fs.readdirSync(path.join(root, "var/lib/postgresql")).filter((f) => f.startsWith("pitr-restore"));

  before(async function () {
    this.timeout(180_000);
    requireTool("pgbackrest");
    s3 = await startS3({ buckets: [BUCKET], tls: true });
    root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-pitr-"));
    // postgres reaches the restore work directory under it (as under /var/lib/postgresql on a host).
    fs.chmodSync(root, 0o755);
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.mkdirSync(path.join(root, "var/lib/postgresql"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"),
      `ROLE=db\nSTACK=test\nREGION=us-east-1\nDB_NAME=dusangire\nDB_USER=dusangire\nPITR=true\nPGBACKREST_BUCKET=${BUCKET}\nPGBACKREST_CIPHER_PARAMETER=/nourish-link/test/pgbackrest-cipher-pass\n`);

    ({ cluster, confPath, settings } = await startPitrCluster(s3, BUCKET, PASS, { appPassword: "pitr-test-password-0123" }));
    cluster.psql("CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL)", { db: "dusangire" });
    cluster.psql("ALTER TABLE orders OWNER TO dusangire", { db: "dusangire" });
  });

  // pgBackRest's own logs say why a step failed.
  afterEach(function () {
    if (this.currentTest?.state !== "failed" || !cluster) return;
    const dir = path.join(cluster.root, "log");
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      console.log(`--- ${f} ---\n${fs.readFileSync(path.join(dir, f), "utf8").split("\n").slice(-15).join("\n")}`);
    }
  });

  after(async () => {
    cluster?.stop();
    await s3?.stop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("runs PostgreSQL with the rendered archive settings", () => {
    assert.strictEqual(cluster.psql("SHOW archive_mode"), "on");
    assert.strictEqual(cluster.psql("SHOW archive_timeout"), `${TEST_ARCHIVE_TIMEOUT_SECONDS}s`);
    assert.strictEqual(cluster.psql("SHOW wal_level"), "replica");
  });

  it("has --help for pitr and refuses when PITR is off", () => {
    ok(ctl(["pitr", "--help"]), "pitr --help");
    ok(ctl(["pitr", "restore", "--help"]), "pitr restore --help");
    assert.match(ctl(["help"]).stdout, /pitr/);
    // host.env is sourced after the environment: switch it off there.
    const envFile = path.join(root, "etc/nourish-link/host.env");
    const saved = fs.readFileSync(envFile, "utf8");
    fs.writeFileSync(envFile, saved.replace("PITR=true", "PITR=false"));
    try {
      const r = ctl(["pitr", "backup"]);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /point-in-time recovery is off/);
    } finally {
      fs.writeFileSync(envFile, saved);
    }
  });

  it("pitr setup fills the template with the passphrase from SSM (0640 root:postgres), creates the stanza and checks archiving", () => {
    // A stand-in `aws` for `aws ssm get-parameter`: the passphrase reaches nourishctl on stdout.
    const bin = path.join(root, "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, "aws"), `#!/bin/sh\ncase "$*" in *"ssm get-parameter"*"--name /nourish-link/test/pgbackrest-cipher-pass"*) echo '${PASS}' ;; *) exit 3 ;; esac\n`, { mode: 0o755 });
    const template = path.join(root, "etc/pgbackrest/pgbackrest.conf.in");
    fs.mkdirSync(path.dirname(template), { recursive: true });
    fs.writeFileSync(template, renderPgbackrestConf(settings));
    const filled = path.join(root, "etc/pgbackrest/pgbackrest.conf");
    const r = ctl(["pitr", "setup"], { PATH: `${bin}:${process.env.PATH}`, PGBACKREST_CONFIG: filled });
    ok(r, "pitr setup");
    assert.match(r.stdout, /stanza nourish-link ready, WAL archiving works/);
    assert.ok(!r.stdout.includes(PASS) && !r.stderr.includes(PASS), "the passphrase leaked into the output");
    assert.strictEqual(fs.readFileSync(filled, "utf8"), renderPgbackrestConf({ ...settings, cipherPass: PASS }));
    const st = fs.statSync(filled);
    assert.strictEqual(st.mode & 0o777, 0o640);
    assert.strictEqual(st.uid, 0);
    assert.strictEqual(st.gid, cluster.os.gid);
    // Safe to re-run (stanza-create is idempotent).
    ok(ctl(["pitr", "setup"], { PATH: `${bin}:${process.env.PATH}`, PGBACKREST_CONFIG: filled }), "pitr setup (again)");
    // From here on the test's pre-rendered copy, as tests normally have it.
    fs.rmSync(template);
    ok(ctl(["pitr", "setup"]), "pitr setup (pre-rendered config)");
  });

  it("passes `pgbackrest check` (the real validator) with the rendered configuration", () => {
    const r = cluster.asUser("pgbackrest", [`--config=${confPath}`, "--stanza=nourish-link", "check"]);
    assert.strictEqual(r.status, 0, r.stderr + r.stdout);
  });

  it("takes a full backup first, a differential next, shows them in info, and stores them encrypted in S3", () => {
    fs.rmSync(metricFile(), { force: true });
    const full = ctl(["pitr", "backup"]);
    ok(full, "pitr backup");
    assert.match(full.stdout, /full backup done/);
    firstBackupDone = true;
    assert.strictEqual(fs.readFileSync(metricFile(), "utf8").trim(), "1");
    const diff = ctl(["pitr", "backup"]);
    ok(diff, "pitr backup (second)");
    assert.match(diff.stdout, /diff backup done/);
    const info = ctl(["pitr", "info"]);
    ok(info, "pitr info");
    assert.match(info.stdout, /stanza: nourish-link\s+status: ok/);
    assert.match(info.stdout, /cipher: aes-256-cbc/);
    assert.match(info.stdout, /full backup: \d{8}-\d{6}F/);
    assert.match(info.stdout, /diff backup: \d{8}-\d{6}F_\d{8}-\d{6}D/);

    // Narrow listings: s3rver cannot page past 1000 keys (its continuation token uses a cipher
    // OpenSSL 3 no longer offers), and one full backup alone is ~1300 files.
    const backups = s3.aws(["s3", "ls", `s3://${BUCKET}/pgbackrest/backup/nourish-link/`]);
    assert.strictEqual(backups.status, 0, backups.stderr);
    assert.match(backups.stdout, /backup\.info\n/);
    assert.match(backups.stdout, /PRE \d{8}-\d{6}F\//);
    const ls = s3.aws(["s3", "ls", "--recursive", `s3://${BUCKET}/pgbackrest/archive/`]);
    assert.strictEqual(ls.status, 0, ls.stderr);
    const wal = /(pgbackrest\/archive\/nourish-link\/\S+\/[0-9A-F]{24}-[0-9a-f]{40}\.zst)/.exec(ls.stdout);
    assert.ok(wal, `no archived WAL segment in\n${ls.stdout}`);
    for (const key of ["pgbackrest/backup/nourish-link/backup.info", wal[1]]) {
      const out = path.join(root, "object");
      const get = s3.aws(["s3", "cp", `s3://${BUCKET}/${key}`, out]);
      assert.strictEqual(get.status, 0, get.stderr);
      const bytes = fs.readFileSync(out);
      // OpenSSL's encrypted format, not an ini file or a zstd frame (28 b5 2f fd).
      assert.strictEqual(bytes.subarray(0, 8).toString("latin1"), "Salted__", `${key} is not encrypted`);
      assert.ok(!bytes.includes("backrest-format"), `${key} holds plain text`);
    }
  });

  it("one database lock: a recovery or a pitr restore is refused while a backup runs, a pitr backup runs beside it; PostgreSQL untouched", async function () {
    this.timeout(300_000);
    assert.ok(firstBackupDone, "needs the backup of the previous test");
    const lockDir = path.join(root, "run/lock/nourish-link");
    const started = psql("SELECT pg_postmaster_start_time()", "postgres");
    const rows = psql("SELECT count(*) FROM orders");
    // A real logical backup into this test's bucket, held on the lock by its DJANGO_MANAGE step
    // until the test opens the gate (no fixed sleep to outlast: it holds exactly as long as needed).
    const gate = path.join(root, "backup-may-finish");
    fs.rmSync(gate, { force: true });
    const child = spawn("bash", [NOURISHCTL_SOURCE, "backup"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env, ...s3.env, NOURISH_ROOT: root, PGHOST: cluster.socketDir, PGPORT: String(cluster.port), PGBACKREST_CONFIG: confPath,
        BACKUP_BUCKET: BUCKET, S3_ENDPOINT: s3.endpoint, DJANGO_MANAGE: `while [ ! -e '${gate}' ]; do sleep 0.05; done; echo applied`,
        PATH: `${PG_BINDIR}:${path.dirname(AWS_CLI)}:${process.env.PATH}`,
      },
    });
    let out = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { out += d; });
    const done = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      const info = path.join(lockDir, "backup.info");
      const deadline = Date.now() + 30_000;
      while (!(fs.existsSync(info) && fs.readFileSync(info, "utf8").includes(`(pid ${child.pid})`))) {
        assert.ok(Date.now() < deadline, `backup did not take the lock:\n${out}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const busy = (verb: string) => new RegExp(`^nourishctl: ${verb}: the database is busy: backup by \\S+ since \\S+ \\(pid ${child.pid}\\); not starting \\(lock .*db\\.lock\\)$`, "m");
      const recover = ctl(["pitr", "recover", "--yes"], { PG_DATA: cluster.dataDir });
      assert.strictEqual(recover.status, 1, recover.stdout);
      assert.match(recover.stderr, busy("pitr recover"));
      const restore = ctl(["pitr", "restore", "--at", psql("SELECT clock_timestamp()"), "--as", "dusangire_race"]);
      assert.strictEqual(restore.status, 1, restore.stdout);
      assert.match(restore.stderr, busy("pitr restore"));
      // Two readers of the live cluster may overlap.
      ok(ctl(["pitr", "backup", "incr"]), "pitr backup beside a backup");
      assert.strictEqual(child.exitCode, null, "the backup ended before the pitr backup did; the test proves no overlap");
    } finally {
      fs.writeFileSync(gate, "");
    }
    assert.strictEqual(await done, 0, out);
    assert.strictEqual(psql("SELECT pg_postmaster_start_time()", "postgres"), started, "PostgreSQL was restarted");
    assert.strictEqual(psql("SELECT count(*) FROM orders"), rows);
    assert.ok(!databases().includes("dusangire_race"));
    assert.deepStrictEqual(fs.readdirSync(path.dirname(cluster.dataDir)).filter((f) => f.includes("before_recover")), []);
  });

  it("restores the database as it was at a moment into a new database, leaving the live one alone", () => {
    assert.ok(firstBackupDone, "needs the backup of the previous test");
    psql("INSERT INTO orders VALUES (1, 'A: isombe for class 3')");
    const at = psql("SELECT clock_timestamp()");
    run("sleep", ["0.3"]);
    psql("INSERT INTO orders VALUES (2, 'B: ibiharage for class 4')");
    const committed = Date.now();
    // Measure the archive lag: commit of B → its WAL segment archived in S3.
    const segment = psql("SELECT pg_walfile_name(pg_switch_wal())", "postgres");
    for (;;) {
      const archived = psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", "postgres");
      if (archived >= segment) break;
      assert.ok(Date.now() - committed < 60_000, `segment ${segment} not archived within 60 s (last ${archived})`);
      run("sleep", ["0.05"]);
    }
    const lagMs = Date.now() - committed;
    console.log(`      archive lag: commit → WAL segment ${segment} in S3 in ${lagMs} ms`);

    const r = ctl(["pitr", "restore", "--at", at, "--as", "dusangire_pitr"]);
    ok(r, "pitr restore");
    assert.match(r.stdout, /dusangire_pitr holds dusangire as of/);
    assert.strictEqual(psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders", "dusangire_pitr"), "1");
    assert.strictEqual(psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,2");
    assert.strictEqual(psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'dusangire_pitr'", "postgres"), "dusangire");
    // Restored as the app's role (never a superuser): what it restored is the app's.
    assert.strictEqual(psql("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'orders'", "dusangire_pitr"), "dusangire");
    assert.deepStrictEqual(leftovers(), [], "the temporary cluster was not removed");
    // The live cluster still archives (the temporary one never pushed into the repository).
    const check = cluster.asUser("pgbackrest", [`--config=${confPath}`, "--stanza=nourish-link", "check"]);
    assert.strictEqual(check.status, 0, check.stderr);
    // The target exists now: a second restore under the same name is refused.
    const again = ctl(["pitr", "restore", "--at", at, "--as", "dusangire_pitr"]);
    assert.strictEqual(again.status, 1);
    assert.match(again.stderr, /database dusangire_pitr already exists/);
  });

  it("refuses a time in the future or before the oldest backup, creating nothing", () => {
    const future = ctl(["pitr", "restore", "--at", "2999-01-01 00:00:00+00", "--as", "dusangire_future"]);
    assert.strictEqual(future.status, 1);
    assert.match(future.stderr, /nourishctl: restore: 2999-01-01 00:00:00\+00 is in the future/);
    const early = ctl(["pitr", "restore", "--at", "2001-01-01 00:00:00+00", "--as", "dusangire_early"]);
    assert.strictEqual(early.status, 1);
    assert.match(early.stderr, /nourishctl: restore: 2001-01-01 00:00:00\+00 is before the end of the oldest backup/);
    const junk = ctl(["pitr", "restore", "--at", "yesterday-ish", "--as", "dusangire_junk"]);
    assert.strictEqual(junk.status, 1);
    assert.match(junk.stderr, /'yesterday-ish' is not an explicit time with its UTC offset/);
    // PostgreSQL would read these; only an explicit timestamp with its offset is a point to recover to.
    for (const phrase of ["yesterday", "now", "2025-03-01 14:05:00"]) {
      const r = ctl(["pitr", "restore", "--at", phrase, "--as", "dusangire_junk"]);
      assert.strictEqual(r.status, 1, `${phrase} accepted`);
      assert.ok(r.stderr.includes(`'${phrase}' is not an explicit time with its UTC offset`), r.stderr);
    }
    for (const db of ["dusangire_future", "dusangire_early", "dusangire_junk"]) assert.ok(!databases().includes(db), `${db} was created`);
    assert.deepStrictEqual(leftovers(), []);
  });

  it("a 63-character database name: restore --at T --as copy refuses up front, naming it; the live database keeps every row", () => {
    const long = "dusangire_" + "l".repeat(53);
    psql(`CREATE DATABASE "${long}" OWNER dusangire`, "postgres");
    psql("CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL); INSERT INTO orders SELECT i, 'meal ' || i FROM generate_series(1, 500) i;" +
      "CREATE TABLE menu (id int PRIMARY KEY); INSERT INTO menu SELECT generate_series(1, 40);", long);
    const counts = () => psql("SELECT (SELECT count(*) FROM orders) || ',' || (SELECT count(*) FROM menu)", long);
    assert.strictEqual(counts(), "500,40");
    const dbs = databases();
    const envFile = path.join(root, "etc/nourish-link/host.env");
    const saved = fs.readFileSync(envFile, "utf8");
    fs.writeFileSync(envFile, saved.replace("DB_NAME=dusangire", `DB_NAME=${long}`));
    try {
      const r = ctl(["restore", "--at", psql("SELECT clock_timestamp()"), "--as", "copy"]);
      assert.strictEqual(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`^nourishctl: restore: database name ${long}_restore_\\d{8}_\\d{6} is 87 bytes, PostgreSQL keeps only 63 \\(DB_NAME=${long} in `, "m"));
    } finally {
      fs.writeFileSync(envFile, saved);
    }
    assert.deepStrictEqual(databases(), dbs);
    assert.strictEqual(counts(), "500,40");
    psql(`DROP DATABASE "${long}"`, "postgres");
  });

  it("recover --at refuses a GNU date phrase or a future time before stopping PostgreSQL", () => {
    const started = psql("SELECT pg_postmaster_start_time()", "postgres");
    for (const [at, why] of [["next week", /'next week' is not an explicit time with its UTC offset/], ["yesterday", /'yesterday' is not an explicit time/],
      ["2999-01-01 00:00:00+00", /2999-01-01 00:00:00\+00 is in the future/]] as const) {
      const r = ctl(["pitr", "recover", "--at", at, "--yes"], { PG_DATA: cluster.dataDir });
      assert.strictEqual(r.status, 1, `recover --at '${at}' ran:\n${r.stdout}`);
      assert.match(r.stderr, new RegExp(`^nourishctl: pitr recover: ${why.source}`, "m"));
      assert.doesNotMatch(r.stdout, /stopping PostgreSQL/);
    }
    assert.strictEqual(psql("SELECT pg_postmaster_start_time()", "postgres"), started, "PostgreSQL was stopped");
    assert.deepStrictEqual(fs.readdirSync(path.dirname(cluster.dataDir)).filter((f) => f.includes("before_recover")), []);
  });

  it("a restore that fails half-way stops and removes its temporary cluster, creating nothing", () => {
    const at = psql("SELECT clock_timestamp()");
    const r = ctl(["pitr", "restore", "--at", at, "--as", "dusangire_broken"], { PITR_RECOVERY_TIMEOUT: "0" });
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /nourishctl: restore: recovery did not finish within 0 s/);
    assert.deepStrictEqual(leftovers(), []);
    assert.ok(!databases().includes("dusangire_broken"));
    const ps = run("ps", ["-eo", "args"]);
    assert.ok(!ps.stdout.includes(path.join(root, "var/lib/postgresql/pitr-restore")), "the temporary postgres still runs");
  });

  it("a failing backup (wrong bucket) exits non-zero naming the step, and reports no success metric", () => {
    const wrong = path.join(cluster.root, "pgbackrest-wrong.conf");
    fs.writeFileSync(wrong, renderPgbackrestConf({ ...settings, bucket: "nl-no-such-bucket", cipherPass: PASS }), { mode: 0o640 });
    fs.chownSync(wrong, 0, cluster.os.gid);
    fs.rmSync(metricFile(), { force: true });
    const r = ctl(["pitr", "backup", "full"], { PGBACKREST_CONFIG: wrong });
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /nourishctl: pitr backup: full backup failed/);
    assert.ok(!fs.existsSync(metricFile()), "a failed backup reported success");
  });

  it("recover rebuilds the whole cluster after the host lost its data, keeping the old directory, with no archived commit lost", () => {
    assert.ok(firstBackupDone, "needs the backup of an earlier test");
    const refused = ctl(["pitr", "recover"], { PG_DATA: cluster.dataDir });
    assert.strictEqual(refused.status, 1);
    assert.match(refused.stderr, /replaces the whole cluster on this host; say --yes/);

    psql("INSERT INTO orders VALUES (3, 'C: committed just before the crash')");
    const segment = psql("SELECT pg_walfile_name(pg_switch_wal())", "postgres");
    const deadline = Date.now() + 60_000;
    while (psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", "postgres") < segment) {
      assert.ok(Date.now() < deadline, `segment ${segment} not archived within 60 s`);
      run("sleep", ["0.05"]);
    }
    // The host dies: PostgreSQL killed, its data directory gone to garbage.
    cluster.asUser(pgBin("pg_ctl"), ["-D", cluster.dataDir, "-m", "immediate", "-w", "stop"]);
    fs.writeFileSync(path.join(cluster.dataDir, "PG_VERSION"), "garbage");

    const started = Date.now();
    const r = ctl(["pitr", "recover", "--yes"], { PG_DATA: cluster.dataDir });
    ok(r, "pitr recover");
    console.log(`      recover: repository → serving in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.match(r.stdout, /pitr recover: PostgreSQL serving, recovered to the end of the archived WAL; previous data in .*before_recover_/);
    assert.strictEqual(psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,2,3");
    assert.strictEqual(psql("SELECT pg_is_in_recovery()", "postgres"), "f");
    const kept = fs.readdirSync(path.dirname(cluster.dataDir)).filter((f) => f.startsWith(`${path.basename(cluster.dataDir)}.before_recover_`));
    assert.strictEqual(kept.length, 1, "the previous data directory was not kept");
    assert.strictEqual(fs.readFileSync(metricFile().replace("PitrBackupSuccess", "PitrRecoverSuccess"), "utf8").trim(), "1");
  });

  it("after a recovery, archive_timeout switches segments again: a commit reaches the repository within archive_timeout", function () {
    // Without the checkpoint `pitr recover` runs after promotion, PostgreSQL's checkpointer sleeps
    // for checkpoint_timeout (5 min) and no timed switch happens: the RPO right after a recovery.
    // The test cluster's archive_timeout is TEST_ARCHIVE_TIMEOUT_SECONDS (the hosts' is 60).
    this.timeout(300_000);
    psql("INSERT INTO orders VALUES (4, 'D: committed after the recovery')");
    const segment = psql("SELECT pg_walfile_name(pg_current_wal_lsn())", "postgres");
    const started = Date.now();
    while (psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", "postgres") < segment) {
      assert.ok(Date.now() - started < (TEST_ARCHIVE_TIMEOUT_SECONDS + 15) * 1000, `segment ${segment} (holding a commit) still not archived ${Math.round((Date.now() - started) / 1000)} s later`);
      run("sleep", ["0.5"]);
    }
    console.log(`      after recovery: commit archived by archive_timeout in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
