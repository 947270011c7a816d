// nourishctl restore-rehearsal (the database host's half of staging's weekly restore test, issue
// 11) against real software: one PostgreSQL 15 cluster holding a "prod" database (backed up by
// the real `nourishctl backup` of a prod db host sandbox into a prod bucket on s3rver) and the
// "staging" live database that the staging db host sandbox replaces with it.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderEnvFile } from "../components/hosts/env-file";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { Cluster, PG_BINDIR, startAppCluster, superuserProbe } from "./pg";
import { AWS_CLI, S3, startS3 } from "./s3";
import { requireTool, run } from "./tools";

const PROD_BUCKET = "nl-test-prod-backups";
const STAGING_DB = "dusangire";
const PROD_DB = "dusangire_prod";

describe("nourishctl restore-rehearsal: prod's backup into staging's live database", function () {
  let cluster: Cluster;
  let s3: S3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-rehearsal-"));
  const prodRoot = path.join(dir, "prod");
  const stagingRoot = path.join(dir, "staging");
  let base: NodeJS.ProcessEnv;
  let backupKey = "";
  let backupSha = "";

  const hostEnv = (root: string, vars: Record<string, string>) => {
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), renderEnvFile("host.env", { ROLE: "db", REGION: "us-east-1", DB_USER: "dusangire", S3_ENDPOINT: s3.endpoint, ...vars }));
  };
  const stagingEnv = (vars: Record<string, string> = {}) => hostEnv(stagingRoot, { STACK: "staging", DB_NAME: STAGING_DB, REHEARSAL_SOURCE_BUCKET: PROD_BUCKET, ...vars });
  const ctl = (root: string, ...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], { env: { ...base, NOURISH_ROOT: root }, timeout: 180_000 });
  const databases = () => cluster.psql("SELECT datname FROM pg_database ORDER BY 1").split("\n");
  /** Rows and an md5 of every row of every table, and the database's comment: equal means untouched. */
  const state = (db: string) => ({
    rows: cluster.psql("SELECT string_agg(t, ',' ORDER BY t) FROM (SELECT 'families:' || count(*) || ':' || md5(string_agg(f::text, ',' ORDER BY id)) t FROM families f UNION ALL SELECT 'orders:' || count(*) || ':' || md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o) x", { db }),
    comment: cluster.psql(`SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = '${db}'`),
  });
  const upload = (file: string, key: string) => assert.strictEqual(s3.aws(["s3", "cp", "--only-show-errors", file, `s3://${PROD_BUCKET}/${key}`]).status, 0);

  before(async function () {
    this.timeout(300_000);
    for (const t of ["flock", "sha256sum", "python3"]) requireTool(t);
    cluster = await startAppCluster({ appPassword: "app-pw-for-tests" });
    s3 = await startS3({ buckets: [PROD_BUCKET] });
    base = { ...process.env, PGHOST: cluster.socketDir, PGPORT: String(cluster.port), ...s3.env, PATH: `${PG_BINDIR}:${path.dirname(AWS_CLI)}:${process.env.PATH}` };
    fs.chmodSync(dir, 0o755);
    hostEnv(prodRoot, { STACK: "prod", DB_NAME: PROD_DB, BACKUP_BUCKET: PROD_BUCKET });
    stagingEnv();
    const schema = (db: string, families: number, tag: string) => cluster.psql(`SET ROLE dusangire;
      CREATE TABLE families (id serial PRIMARY KEY, name text NOT NULL, email varchar(60) UNIQUE NOT NULL, phone text);
      CREATE TABLE orders (id serial PRIMARY KEY, family_id integer REFERENCES families, quantity integer NOT NULL);
      CREATE TABLE django_migrations (id serial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied timestamptz NOT NULL);
      INSERT INTO families (name, email, phone) SELECT '${tag} family ' || i, 'parent' || i || '@${tag}.example', CASE WHEN i % 3 = 0 THEN NULL ELSE '+25078' || i END FROM generate_series(1, ${families}) i;
      INSERT INTO orders (family_id, quantity) SELECT 1 + i % ${families}, 1 + i % 4 FROM generate_series(1, ${families * 10}) i;
      INSERT INTO django_migrations (app, name, applied) VALUES ('meals', '0001_initial', now());`, { db });
    cluster.psql(`CREATE DATABASE ${PROD_DB} OWNER dusangire`);
    schema(PROD_DB, 3000, "prod");
    schema(STAGING_DB, 50, "staging");
    // Prod's nightly backup, by the real verb: dump, manifest, then the latest pointer.
    const b = ctl(prodRoot, "backup");
    assert.strictEqual(b.status, 0, b.stderr);
    backupKey = b.stdout.trim().split("\n").pop()!;
    const pointer = path.join(dir, "latest.json");
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${PROD_BUCKET}/dumps/daily/latest.json`, pointer]).status, 0);
    const p = JSON.parse(fs.readFileSync(pointer, "utf8"));
    assert.strictEqual(p.key, backupKey);
    backupSha = p.sha256;
  });

  after(async () => {
    cluster?.stop();
    await s3?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses before touching anything: prod, no source bucket, a bad scrub column, a wrong or missing checksum", () => {
    const before = { dbs: databases(), staging: state(STAGING_DB) };
    const refused = (args: string[], why: RegExp, vars: Record<string, string> = {}) => {
      stagingEnv(vars);
      const r = ctl(stagingRoot, "restore-rehearsal", ...args);
      assert.notStrictEqual(r.status, 0, `accepted: ${args.join(" ")} ${JSON.stringify(vars)}`);
      const lines = r.stderr.trim().split("\n");
      assert.match(lines[lines.length - 1], why);
    };
    refused(["--key", backupKey, "--sha256", backupSha], /refused on STACK=prod/, { STACK: "prod" });
    refused(["--key", backupKey, "--sha256", backupSha], /REHEARSAL_SOURCE_BUCKET .* is not set/, { REHEARSAL_SOURCE_BUCKET: "" });
    refused(["--key", backupKey, "--sha256", backupSha], /scrub column 'families\.email;drop' .* is not table\.column/, { REHEARSAL_SCRUB_COLUMNS: "families.email;drop" });
    refused(["--key", backupKey], /give --key KEY --sha256 HEX/);
    refused(["--key", "dumps/daily/../x.dump", "--sha256", backupSha], /is not a PostgreSQL backup key/);
    // The plan named another checksum: this backup is not the one it promised.
    refused(["--key", backupKey, "--sha256", "0".repeat(64)], new RegExp(`backup ${backupKey} has sha256 ${backupSha}, not the 0{64} it was named by`));
    // A column the backup lacks, or one that is not text: found in the checked copy, before the swap.
    refused(["--key", backupKey, "--sha256", backupSha], /scrub column families\.nickname .* does not exist in backup .*nothing swapped in/, { REHEARSAL_SCRUB_COLUMNS: "families.nickname" });
    refused(["--key", backupKey, "--sha256", backupSha], /scrub column orders\.quantity is integer; only text columns/, { REHEARSAL_SCRUB_COLUMNS: "orders.quantity" });
    stagingEnv();
    assert.deepStrictEqual(databases(), before.dbs, "no database created or left behind");
    assert.deepStrictEqual(state(STAGING_DB), before.staging, "staging's live database untouched");
  });

  it("with the latest backup corrupted (one byte flipped) fails loudly naming it and leaves staging's database exactly as it was", () => {
    const good = path.join(dir, "good.dump");
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${PROD_BUCKET}/${backupKey}`, good]).status, 0);
    const bytes = fs.readFileSync(good);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length / 2)] ^= 0x01;
    fs.writeFileSync(path.join(dir, "flipped.dump"), flipped);
    upload(path.join(dir, "flipped.dump"), backupKey);
    const before = { dbs: databases(), staging: state(STAGING_DB) };
    try {
      const r = ctl(stagingRoot, "restore-rehearsal", "--latest");
      assert.notStrictEqual(r.status, 0, "a corrupted backup was restored");
      const last = r.stderr.trim().split("\n").pop()!;
      assert.match(last, new RegExp(`restore: backup ${backupKey} is corrupted or truncated: sha256 [0-9a-f]{64}, manifest says ${backupSha}; refusing it`));
      assert.ok(!r.stdout.includes('"phase"'), "no summary of a failed rehearsal");
      assert.deepStrictEqual(databases(), before.dbs);
      assert.deepStrictEqual(state(STAGING_DB), before.staging);
    } finally {
      upload(good, backupKey);
    }
  });

  it("with the manifest's row count of a table edited (the dump intact) fails naming the table and both counts; staging's database exactly as it was", () => {
    const manifestKey = backupKey.replace(/\.dump$/, ".json");
    const good = path.join(dir, "good.json");
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${PROD_BUCKET}/${manifestKey}`, good]).status, 0);
    const manifest = JSON.parse(fs.readFileSync(good, "utf8"));
    assert.deepStrictEqual(manifest.row_counts, { "public.django_migrations": 1, "public.families": 3000, "public.orders": 30000 });
    fs.writeFileSync(path.join(dir, "edited.json"), JSON.stringify({ ...manifest, row_counts: { ...manifest.row_counts, "public.orders": 30001 } }));
    upload(path.join(dir, "edited.json"), manifestKey);
    const before = { dbs: databases(), staging: state(STAGING_DB) };
    try {
      const r = ctl(stagingRoot, "restore-rehearsal", "--latest");
      assert.notStrictEqual(r.status, 0, "a backup whose manifest disagrees with it was swapped in");
      const last = r.stderr.trim().split("\n").pop()!;
      assert.match(last, new RegExp(`^nourishctl: restore: check failed: public\\.orders has 30000 rows in ${STAGING_DB}_restore_\\d{8}_\\d{6}, the manifest of ${backupKey} says 30001$`));
      assert.ok(!r.stdout.includes('"phase"'), "no summary of a failed rehearsal");
      assert.deepStrictEqual(databases(), before.dbs);
      assert.deepStrictEqual(state(STAGING_DB), before.staging);
    } finally {
      upload(good, manifestKey);
    }
  });

  it("--latest restores the pointer's backup into staging's live database, scrubbed, keeps the previous one, records the rehearsal", () => {
    const prod = state(PROD_DB);
    const stagingBefore = state(STAGING_DB);
    stagingEnv({ REHEARSAL_SCRUB_COLUMNS: "families.email families.phone" });
    const r = ctl(stagingRoot, "restore-rehearsal", "--latest");
    stagingEnv();
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /restore: row counts match the manifest \(3 tables\)/);
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.deepStrictEqual(Object.keys(summary), ["phase", "backupKey", "backupSha256", "backupTime", "restoreSeconds", "backupAgeSeconds"]);
    assert.strictEqual(summary.backupKey, backupKey);
    assert.strictEqual(summary.backupSha256, backupSha);
    assert.ok(summary.restoreSeconds > 0 && summary.restoreSeconds < 120, `${summary.restoreSeconds}`);
    assert.ok(summary.backupAgeSeconds >= 0 && summary.backupAgeSeconds < 600, `${summary.backupAgeSeconds}`);
    // Prod's rows, with the scrubbed columns replaced (distinct values stay distinct, NULLs stay NULL).
    assert.strictEqual(cluster.psql("SELECT count(*) FROM families", { db: STAGING_DB }), "3000");
    assert.strictEqual(cluster.psql("SELECT count(*) FROM orders", { db: STAGING_DB }), "30000");
    assert.strictEqual(cluster.psql("SELECT count(*) FROM families WHERE email LIKE '%@prod.example' OR phone LIKE '+250%'", { db: STAGING_DB }), "0");
    assert.strictEqual(cluster.psql("SELECT count(DISTINCT email) FROM families WHERE email LIKE 'scrubbed-%'", { db: STAGING_DB }), "3000");
    assert.strictEqual(cluster.psql("SELECT count(*) FROM families WHERE phone IS NULL", { db: STAGING_DB }), "1000");
    assert.strictEqual(cluster.psql("SELECT max(length(email)) <= 60 FROM families", { db: STAGING_DB }), "t");
    assert.strictEqual(cluster.psql("SELECT name FROM families WHERE id = 7", { db: STAGING_DB }), "prod family 7", "unscrubbed columns are prod's");
    assert.deepStrictEqual(state(PROD_DB), prod, "prod's database is only read");
    // The way back: staging's previous database, kept whole.
    const kept = databases().filter((d) => d.startsWith(`${STAGING_DB}_before_restore_`));
    assert.strictEqual(kept.length, 1, databases().join(" "));
    assert.strictEqual(state(kept[0]).rows, stagingBefore.rows);
    // The record the app host's half reads.
    assert.match(state(STAGING_DB).comment, new RegExp(`^nourishctl restore-rehearsal key=${backupKey} sha256=${backupSha} backup_time=\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ started=\\d+ restore_seconds=[0-9.]+$`));
    // The app keeps its access (owner and grants as in the dump).
    assert.strictEqual(cluster.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'dusangire'"), "dusangire");
  });

  it("a manifest whose time carries SQL (the dump and its checksum untouched) is refused naming the field; nothing runs, staging's database exactly as it was", () => {
    const manifestKey = backupKey.replace(/\.dump$/, ".json");
    const good = path.join(dir, "good-time.json");
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${PROD_BUCKET}/${manifestKey}`, good]).status, 0);
    const manifest = JSON.parse(fs.readFileSync(good, "utf8"));
    const markers = fs.mkdtempSync(path.join(os.tmpdir(), "nl-time-"));
    fs.chmodSync(markers, 0o777);
    const marker = path.join(markers, "pwned");
    // `date -d` reads this as the plain time: it ignores text in parentheses.
    const time = `${manifest.time} (x'; COPY (SELECT 1) TO PROGRAM 'touch ${marker}'; --)`;
    assert.strictEqual(run("date", ["-u", "-d", time, "+%s"]).status, 0, "date -d accepts the hostile time");
    fs.writeFileSync(path.join(dir, "hostile.json"), JSON.stringify({ ...manifest, time }));
    upload(path.join(dir, "hostile.json"), manifestKey);
    const before = { dbs: databases(), staging: state(STAGING_DB) };
    try {
      const r = ctl(stagingRoot, "restore-rehearsal", "--key", backupKey, "--sha256", backupSha);
      assert.notStrictEqual(r.status, 0, "a manifest with SQL in its time was accepted");
      assert.match(r.stderr.trim().split("\n").pop()!, new RegExp(`^nourishctl: restore: the manifest of ${backupKey} has a time that is not YYYY-MM-DDTHH:MM:SSZ; refusing it$`));
      assert.ok(!fs.existsSync(marker), "the manifest's SQL ran");
      assert.deepStrictEqual(databases(), before.dbs);
      assert.deepStrictEqual(state(STAGING_DB), before.staging);
    } finally {
      upload(good, manifestKey);
      fs.rmSync(markers, { recursive: true, force: true });
    }
  });

  it("runs the dump and the scrub as the app's role: a function the app planted in prod never runs as a superuser", () => {
    // Planted in prod by the app's role: a CHECK (evaluated by pg_restore on every row) and a
    // trigger on a scrubbed table (fired by the scrub's UPDATE), both calling a function that, only
    // when its caller is a superuser, runs a shell command (COPY TO PROGRAM).
    const { marker, sql: plantSql, dispose } = superuserProbe();
    cluster.psql(`SET ROLE dusangire;
      ${plantSql}
      CREATE FUNCTION public.nl_plant_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
      BEGIN PERFORM public.nl_plant('trigger'); RETURN NEW; END $f$;
      CREATE TRIGGER nl_plant BEFORE UPDATE ON families FOR EACH ROW EXECUTE FUNCTION public.nl_plant_trigger();
      CREATE TABLE planted (id serial PRIMARY KEY, note text CHECK (public.nl_plant('check')));
      INSERT INTO planted (note) VALUES ('a');`, { db: PROD_DB });
    const b = ctl(prodRoot, "backup");
    assert.strictEqual(b.status, 0, b.stderr);
    const key = b.stdout.trim().split("\n").pop()!;
    const sha = JSON.parse(s3.aws(["s3", "cp", `s3://${PROD_BUCKET}/dumps/daily/latest.json`, "-"]).stdout).sha256;
    const logBefore = cluster.log().length;
    stagingEnv({ REHEARSAL_SCRUB_COLUMNS: "families.email" });
    try {
      const r = ctl(stagingRoot, "restore-rehearsal", "--key", key, "--sha256", sha);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.ok(!fs.existsSync(marker), "the planted function ran a shell command as a superuser");
      const log = cluster.log().slice(logBefore);
      assert.match(log, /nl_plant check ran as dusangire \(superuser: f\)/, "the CHECK ran during the restore, as the app's role");
      assert.match(log, /nl_plant trigger ran as dusangire \(superuser: f\)/, "the trigger ran during the scrub, as the app's role");
      assert.doesNotMatch(log, /superuser: t/);
      assert.strictEqual(cluster.psql("SELECT count(*) FROM families WHERE email LIKE 'scrubbed-%'", { db: STAGING_DB }), "3000");
    } finally {
      stagingEnv();
      dispose();
    }
  });
});
