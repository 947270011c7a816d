// nourishctl backup / backups / restore / restore-cleanup (issue #4) against real software: a
// PostgreSQL 15 cluster configured as the database host, s3rver through the real aws CLI, real
// pg_dump/pg_restore, sqlite3. Tests share one cluster and bucket and run in order.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderEnvFile } from "../components/hosts/env-file";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { Cluster, PG_BINDIR, pgBin, startAppCluster, superuserProbe } from "./pg";
import { AWS_CLI, S3, startS3 } from "./s3";
import { requireTool, run, untilLocked } from "./tools";

const BUCKET = "nl-test-backups";
const APP_PASSWORD = "app-pw-for-tests";
const TABLES = ["menu_items", "orders", "subscriptions", "order_events", "django_migrations", "kitchen_notes"];
// A table whose name pg_dump must quote (a quote, a dash, a dot and a space in it: `pg_restore --list`
// prints it bare, so only the dump's own SQL names it), inheriting from another.
const ODD_TABLE = 'Kitchen-"Notes".v2 draft';
const ODD_TABLE_SQL = `"${ODD_TABLE.replace(/"/g, '""')}"`;
/** Each table's rows when the first backup runs: what its manifest's row_counts must say. */
const ROW_COUNTS = { "public.django_migrations": 5, "public.kitchen_notes": 2, [`public.${ODD_TABLE}`]: 7, "public.menu_items": 200,
  "public.order_events": 100000, "public.orders": 5000, "public.refunds": 0, "public.subscriptions": 1500 };

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("nourishctl backup and restore", function () {
  let cluster: Cluster;
  let s3: S3;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-backup-"));
  const backupDir = path.join(root, "var/backups/nourish-link");
  const metrics = path.join(root, "var/lib/nourish-link/metrics");
  const lockDir = path.join(root, "run/lock/nourish-link");
  let env: NodeJS.ProcessEnv;

  const hostEnv = (vars: Record<string, string> = {}): void => {
    const all: Record<string, string> = { ROLE: "db", STACK: "staging", REGION: "us-east-1", DB_NAME: "dusangire", DB_USER: "dusangire",
      BACKUP_BUCKET: BUCKET, S3_ENDPOINT: s3.endpoint, ...vars };
    // Written as the hosts get it: systemd EnvironmentFile= quoting, read by nourishctl as data.
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), renderEnvFile("host.env", all));
  };
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], { env, timeout: 180_000 });
  const ok = (r: { status: number | null; stdout: string; stderr: string }, what: string) =>
    assert.strictEqual(r.status, 0, `${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const databases = (): string[] => cluster.psql("SELECT datname FROM pg_database ORDER BY 1").split("\n");
  /** Row count and an md5 of every row, per table: equal means identical content. */
  const checksums = (db: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const t of TABLES) out[t] = cluster.psql(`SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM ${t} t`, { db });
    return out;
  };
  const s3Keys = (): string[] => {
    const r = s3.aws(["s3api", "list-objects-v2", "--bucket", BUCKET, "--query", "Contents[].Key", "--output", "text"]);
    assert.strictEqual(r.status, 0, r.stderr);
    return r.stdout.trim().split(/\s+/).filter((k) => k && k !== "None");
  };
  const latestDumpKey = (): string => s3Keys().filter((k) => /^dumps\/daily\/db_backup_\d{8}_\d{6}\.dump$/.test(k)).sort().pop()!;
  /** The app's own path in: TCP, TLS, SCRAM, as the role `dusangire` (the rendered pg_hba.conf). */
  const asApp = (sql: string) => run(pgBin("psql"), ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql,
    `host=127.0.0.1 port=${cluster.port} dbname=dusangire user=dusangire sslmode=require`], { env: { ...process.env, PGPASSWORD: APP_PASSWORD } });

  before(async function () {
    this.timeout(180_000);
    for (const t of ["flock", "sha256sum", "python3"]) requireTool(t);
    requireTool("sqlite3");
    assert.ok(fs.existsSync(path.join(PG_BINDIR, "pg_dump")), "pg_dump is missing: apt-get install -y postgresql");
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    cluster = await startAppCluster({ appPassword: APP_PASSWORD });
    s3 = await startS3({ buckets: [BUCKET] });
    // The real PostgreSQL 15 tools and the Debian aws CLI (a Python shim earlier on PATH may shadow it).
    env = { ...process.env, NOURISH_ROOT: root, PGHOST: cluster.socketDir, PGPORT: String(cluster.port), ...s3.env,
      PATH: `${PG_BINDIR}:${path.dirname(AWS_CLI)}:${process.env.PATH}` };
    hostEnv();
    // The app's schema, created by the app role as Django's migrate would; the extension as setup does.
    cluster.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", { db: "dusangire" });
    cluster.psql(`SET ROLE dusangire;
      CREATE TABLE menu_items (id serial PRIMARY KEY, name text NOT NULL, price_rwf integer NOT NULL, available boolean DEFAULT true);
      CREATE TABLE subscriptions (id serial PRIMARY KEY, family text NOT NULL, plan text NOT NULL, starts date NOT NULL);
      CREATE TABLE orders (id serial PRIMARY KEY, menu_item_id integer REFERENCES menu_items, subscription_id integer REFERENCES subscriptions,
        quantity integer NOT NULL, created_at timestamptz NOT NULL);
      CREATE INDEX orders_created ON orders (created_at);
      CREATE TABLE order_events (id bigserial PRIMARY KEY, order_id integer NOT NULL, kind text NOT NULL, at timestamptz NOT NULL);
      CREATE TABLE django_migrations (id serial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied timestamptz NOT NULL);
      INSERT INTO menu_items (name, price_rwf) SELECT 'dish ' || i, 500 + i * 10 FROM generate_series(1, 200) i;
      INSERT INTO subscriptions (family, plan, starts) SELECT 'family ' || i, (ARRAY['weekly','monthly'])[1 + i % 2], date '2024-01-01' + i % 300 FROM generate_series(1, 1500) i;
      INSERT INTO orders (menu_item_id, subscription_id, quantity, created_at)
        SELECT 1 + i % 200, 1 + i % 1500, 1 + i % 4, timestamptz '2024-01-01' + i * interval '7 minutes' FROM generate_series(1, 5000) i;
      INSERT INTO order_events (order_id, kind, at)
        SELECT 1 + i % 5000, (ARRAY['placed','paid','delivered'])[1 + i % 3], timestamptz '2024-01-01' + i * interval '1 minute' FROM generate_series(1, 100000) i;
      INSERT INTO django_migrations (app, name, applied) VALUES
        ('contenttypes', '0001_initial', now()), ('contenttypes', '0002_remove_content_type_name', now()),
        ('orders', '0001_initial', now()), ('orders', '0002_order_quantity', now()), ('menu', '0001_initial', now());
      CREATE TABLE refunds (id serial PRIMARY KEY, order_id integer NOT NULL);
      CREATE TABLE kitchen_notes (id serial PRIMARY KEY, body text);
      CREATE TABLE ${ODD_TABLE_SQL} () INHERITS (kitchen_notes);
      INSERT INTO kitchen_notes (body) VALUES ('parent row one'), ('parent row two');
      INSERT INTO ${ODD_TABLE_SQL} (body) VALUES (E'two\\nlines'), (E'a\\ttab'), (E'back\\\\slash'), (E'\\\\.'), (E'\\\\.\\n\\\\.'), (''), (NULL);`, { db: "dusangire" });
    // Its rows really hold newlines, a tab, backslashes and lines that look like COPY's end marker (\.).
    assert.strictEqual(cluster.psql(`SELECT string_agg(body, '|' ORDER BY id) FROM ONLY ${ODD_TABLE_SQL}`, { db: "dusangire" }), "two\nlines|a\ttab|back\\slash|\\.|\\.\n\\.|");
  });

  after(async () => {
    cluster?.stop();
    await s3?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("has --help for every new verb", () => {
    for (const v of [["backup"], ["backups", "list"], ["backups", "verify"], ["restore"], ["restore-cleanup"]]) {
      const r = ctl(...v, "--help");
      assert.strictEqual(r.status, 0, `${v.join(" ")} --help: ${r.stderr}`);
      assert.match(r.stdout, /usage: nourishctl/);
    }
    assert.match(ctl("help").stdout, /restore-cleanup/);
  });

  it("backs up to the bucket with a manifest, records BackupSuccess, lists and verifies it", () => {
    // Local copies older than BACKUP_LOCAL_DAYS (7) go; newer ones stay.
    fs.mkdirSync(backupDir, { recursive: true });
    const old = path.join(backupDir, "db_backup_20000101_000000.dump");
    const recent = path.join(backupDir, "db_backup_20000102_000000.dump");
    for (const f of [old, recent]) fs.writeFileSync(f, "x");
    const eightDaysAgo = new Date(Date.now() - 8 * 86400_000);
    fs.utimesSync(old, eightDaysAgo, eightDaysAgo);
    const r = ctl("backup");
    ok(r, "backup");
    const key = latestDumpKey();
    assert.ok(key, `no dumps/daily/db_backup_YYYYMMDD_HHMMSS.dump in ${s3Keys().join(" ")}`);
    const name = path.basename(key, ".dump");
    assert.ok(s3Keys().includes(`dumps/daily/${name}.json`), "manifest uploaded beside the dump");
    assert.strictEqual(fs.readFileSync(path.join(metrics, "BackupSuccess"), "utf8").trim(), "1");
    // The local copy and its manifest.
    const manifest = JSON.parse(fs.readFileSync(path.join(backupDir, `${name}.json`), "utf8"));
    const local = fs.readFileSync(path.join(backupDir, `${name}.dump`));
    assert.strictEqual(manifest.size_bytes, local.length);
    assert.strictEqual(manifest.database, "dusangire");
    assert.match(manifest.server_version, /^15\./);
    assert.match(manifest.sha256, /^[0-9a-f]{64}$/);
    assert.deepStrictEqual(manifest.migrations, { contenttypes: "0002_remove_content_type_name", menu: "0001_initial", orders: "0002_order_quantity" });
    assert.strictEqual(manifest.app_migration_state, "unknown");
    assert.deepStrictEqual(manifest.tables, Object.keys(ROW_COUNTS).sort());
    // Exact rows per table, as the dump holds them: an empty table, the quoted name, an inheritance
    // parent's own rows (not its child's), rows with newlines, tabs and backslashes.
    assert.deepStrictEqual(manifest.row_counts, ROW_COUNTS);
    assert.deepStrictEqual(Object.keys(manifest.row_counts), Object.keys(ROW_COUNTS).sort(), "sorted");
    assert.ok(typeof manifest.duration_seconds === "number" && manifest.tools.dump.includes("pg_dump"));
    // The object in S3 is the local file, byte for byte.
    const down = path.join(root, "down.dump");
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${BUCKET}/${key}`, down]).status, 0);
    assert.ok(fs.readFileSync(down).equals(local));
    // The latest pointer, written after the manifest, names exactly this backup.
    const pointer = path.join(root, "latest.json");
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${BUCKET}/dumps/daily/latest.json`, pointer]).status, 0);
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(pointer, "utf8")), { key, sha256: manifest.sha256, size: local.length, time: manifest.time });
    const head = s3.aws(["s3api", "head-object", "--bucket", BUCKET, "--key", "dumps/daily/latest.json", "--query", "ContentType", "--output", "text"]);
    assert.strictEqual(head.stdout.trim(), "application/json");
    // backups list and --latest read past it: it is not a backup.
    assert.ok(!/latest\.json/.test(ctl("backups", "list").stdout));

    const list = ctl("backups", "list");
    ok(list, "backups list");
    assert.match(list.stdout.split("\n")[0], new RegExp(`^${key}\\t${local.length}\\t\\S+\\tmanifest$`));
    ok(ctl("backups", "verify", "--latest"), "backups verify --latest");
    ok(ctl("backups", "verify", "--key", key), "backups verify --key");
    assert.ok(!fs.existsSync(old) && fs.existsSync(recent), "local retention");
    fs.rmSync(recent);
  });

  it("on the 1st of the month also copies to dumps/monthly/, and records DJANGO_MANAGE's migration state", () => {
    // A `date` that says it is 1 March 02:00 UTC when backup asks for its timestamp.
    const fake = path.join(root, "fakebin");
    fs.mkdirSync(fake, { recursive: true });
    fs.writeFileSync(path.join(fake, "date"), '#!/bin/sh\n[ "$*" = "-u +%Y%m%d_%H%M%S" ] && { echo 20000301_020000; exit 0; }\nexec /bin/date "$@"\n', { mode: 0o755 });
    // As a stack with backups.objectLock writes it (components/backups/index.ts, lockEnv).
    hostEnv({ DJANGO_MANAGE: "printf '[X] orders.0002_order_quantity\\n'", BACKUP_LOCK_DAYS: "daily=35 monthly=372 logs=365" });
    const backupOnThe1st = () => run("bash", [NOURISHCTL_SOURCE, "backup"], { env: { ...env, PATH: `${fake}:${env.PATH}` } });
    let again;
    try {
      ok(backupOnThe1st(), "backup on the 1st");
      // The same second again: its keys exist, and S3's conditional write refuses to replace them.
      again = backupOnThe1st();
    } finally {
      hostEnv();
    }
    assert.notStrictEqual(again.status, 0, "a second backup overwrote the first one's dump");
    assert.match(again.stderr, /backup failed at step upload: db_backup_20000301_020000\.dump to s3:\/\/\S+\/dumps\/daily\/db_backup_20000301_020000\.dump/);
    // Every dump and manifest went up as one write-once PUT, locked for as long as its class is
    // kept (a day spare); the latest.json pointer, rewritten every night, is the one plain PUT.
    const days = (h: Record<string, string>) => Math.floor((Date.parse(h["x-amz-object-lock-retain-until-date"]) - Date.now()) / 86_400_000);
    const puts = s3.puts().filter((p) => p.key.includes("20000301_020000"));
    const first = (key: string) => puts.find((p) => p.key === key)!.headers;
    for (const [key, lock] of [["dumps/daily/db_backup_20000301_020000.dump", 35], ["dumps/daily/db_backup_20000301_020000.json", 35],
      ["dumps/monthly/db_backup_20000301_020000.dump", 372], ["dumps/monthly/db_backup_20000301_020000.json", 372]] as const) {
      const h = first(key);
      assert.strictEqual(h["if-none-match"], "*", key);
      assert.strictEqual(h["x-amz-object-lock-mode"], "COMPLIANCE", key);
      assert.strictEqual(days(h), lock, key);
      assert.strictEqual(Buffer.from(h["x-amz-checksum-sha256"], "base64").toString("hex"), h["x-amz-meta-sha256"], key);
    }
    const latest = s3.puts().filter((p) => p.key === "dumps/daily/latest.json").pop()!;
    assert.strictEqual(latest.headers["if-none-match"], undefined);
    const keys = s3Keys().filter((k) => k.includes("20000301_020000"));
    assert.deepStrictEqual(keys.sort(), ["dumps/daily/db_backup_20000301_020000.dump", "dumps/daily/db_backup_20000301_020000.json",
      "dumps/monthly/db_backup_20000301_020000.dump", "dumps/monthly/db_backup_20000301_020000.json"]);
    const manifest = JSON.parse(fs.readFileSync(path.join(backupDir, "db_backup_20000301_020000.json"), "utf8"));
    assert.strictEqual(manifest.app_migration_state, "[X] orders.0002_order_quantity");
    ok(ctl("backups", "verify", "--key", "dumps/monthly/db_backup_20000301_020000.dump"), "verify the monthly copy");
    s3.aws(["s3", "rm", `s3://${BUCKET}/dumps/`, "--recursive", "--exclude", "*", "--include", "*db_backup_20000301_020000.*"]);
    assert.deepStrictEqual(s3Keys().filter((k) => k.includes("20000301")), []);
  });

  it("takes no monthly copy on the 1st when backups.monthlyRetentionMonths is 0 (none would ever expire)", () => {
    const fake = path.join(root, "fakebin");
    fs.mkdirSync(fake, { recursive: true });
    fs.writeFileSync(path.join(fake, "date"), '#!/bin/sh\n[ "$*" = "-u +%Y%m%d_%H%M%S" ] && { echo 20000401_020000; exit 0; }\nexec /bin/date "$@"\n', { mode: 0o755 });
    hostEnv({ BACKUP_MONTHLY_RETENTION_MONTHS: "0" });
    try {
      ok(run("bash", [NOURISHCTL_SOURCE, "backup"], { env: { ...env, PATH: `${fake}:${env.PATH}` } }), "backup on the 1st");
    } finally {
      hostEnv();
    }
    assert.deepStrictEqual(s3Keys().filter((k) => k.includes("20000401_020000")).sort(),
      ["dumps/daily/db_backup_20000401_020000.dump", "dumps/daily/db_backup_20000401_020000.json"]);
    s3.aws(["s3", "rm", `s3://${BUCKET}/dumps/`, "--recursive", "--exclude", "*", "--include", "*db_backup_20000401_020000.*"]);
  });

  it("restores the latest backup --as a copy with identical rows and content; re-running replaces the copy", () => {
    const before = databases();
    const r = ctl("restore", "--latest", "--as", "dusangire_copy");
    ok(r, "restore --as");
    assert.match(r.stdout, /public\.order_events\s+100000/);
    assert.match(r.stdout, /row counts match the manifest \(8 tables\)/);
    assert.match(r.stdout, /migration state matches/);
    assert.deepStrictEqual(checksums("dusangire_copy"), checksums("dusangire"));
    assert.strictEqual(cluster.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'", { db: "dusangire_copy" }), "dusangire");
    ok(ctl("restore", "--latest", "--as", "dusangire_copy"), "restore --as again");
    assert.deepStrictEqual(databases(), [...before, "dusangire_copy"].sort());
    // It never overwrites a database it did not make.
    const refuse = ctl("restore", "--latest", "--as", "postgres");
    assert.notStrictEqual(refuse.status, 0);
    assert.match(refuse.stderr, /postgres exists and was not made by a restore/);
    cluster.psql("DROP DATABASE dusangire_copy");
  });

  it("refuses a corrupted or truncated backup, naming it, and touches no database", () => {
    const key = latestDumpKey();
    const good = path.join(backupDir, path.basename(key));
    const manifest = good.replace(/\.dump$/, ".json");
    const live = checksums("dusangire");
    const dbs = databases();
    const refused = (args: string[], name: string) => {
      const r = ctl(...args);
      assert.notStrictEqual(r.status, 0, `${args.join(" ")} accepted a damaged backup`);
      assert.ok(r.stderr.includes(name), `message names ${name}: ${r.stderr}`);
      assert.match(r.stderr, /corrupted or truncated/);
    };
    // One byte flipped, in the bucket with the good backup's manifest.
    const bytes = fs.readFileSync(good);
    const flipped = path.join(root, "db_backup_20000101_000001.dump");
    const flippedBytes = Buffer.from(bytes);
    flippedBytes[Math.floor(flippedBytes.length / 2)] ^= 0xff;
    fs.writeFileSync(flipped, flippedBytes);
    const badKey = `dumps/daily/${path.basename(flipped)}`;
    assert.strictEqual(s3.aws(["s3", "cp", flipped, `s3://${BUCKET}/${badKey}`]).status, 0);
    assert.strictEqual(s3.aws(["s3", "cp", manifest, `s3://${BUCKET}/${badKey.replace(/\.dump$/, ".json")}`]).status, 0);
    refused(["restore", "--key", badKey], badKey);
    refused(["restore", "--key", badKey, "--as", "dusangire_copy"], badKey);
    refused(["backups", "verify", "--key", badKey], badKey);
    // A dump without a manifest (an interrupted upload) is listed as such, never picked, refused by key.
    const orphan = "dumps/daily/db_backup_20991231_000000.dump";
    assert.strictEqual(s3.aws(["s3", "cp", good, `s3://${BUCKET}/${orphan}`]).status, 0);
    assert.match(ctl("backups", "list").stdout.split("\n")[0], new RegExp(`^${orphan}\\t\\d+\\t\\S+\\tNO-MANIFEST$`));
    const orphanRestore = ctl("restore", "--key", orphan);
    assert.notStrictEqual(orphanRestore.status, 0);
    assert.match(orphanRestore.stderr, /db_backup_20991231_000000\.dump has no manifest/);
    const v = ctl("backups", "verify", "--latest");
    ok(v, "verify --latest skips the dump without a manifest");
    assert.ok(v.stdout.includes(key), v.stdout);
    s3.aws(["s3", "rm", `s3://${BUCKET}/${orphan}`]);
    // Truncated to 60%, a local file with its manifest beside it.
    const truncated = path.join(root, "db_backup_20000101_000002.dump");
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    fs.copyFileSync(manifest, truncated.replace(/\.dump$/, ".json"));
    refused(["restore", "--file", truncated], truncated);
    // Without a manifest there is nothing to verify against: refused too.
    fs.rmSync(truncated.replace(/\.dump$/, ".json"));
    const noManifest = ctl("restore", "--file", truncated);
    assert.notStrictEqual(noManifest.status, 0);
    assert.match(noManifest.stderr, /has no manifest/);

    assert.deepStrictEqual(checksums("dusangire"), live);
    assert.deepStrictEqual(databases(), dbs);
    s3.aws(["s3", "rm", `s3://${BUCKET}/dumps/daily/`, "--recursive", "--exclude", "*", "--include", "*db_backup_20000101_*"]);
  });

  it("refuses a backup whose manifest's row count differs from the restored table, naming both; the live database stays as it was", () => {
    const key = latestDumpKey();
    const good = path.join(backupDir, path.basename(key));
    const manifest = JSON.parse(fs.readFileSync(good.replace(/\.dump$/, ".json"), "utf8"));
    const table = `public.${ODD_TABLE}`;
    const rows = manifest.row_counts[table];
    assert.strictEqual(rows, ROW_COUNTS[table]);
    // The dump itself is untouched (its sha256 matches): only the count check can catch this.
    const file = path.join(root, "db_backup_20000101_000004.dump");
    fs.copyFileSync(good, file);
    fs.writeFileSync(file.replace(/\.dump$/, ".json"), JSON.stringify({ ...manifest, row_counts: { ...manifest.row_counts, [table]: rows + 1 } }));
    const live = checksums("dusangire");
    const dbs = databases();
    for (const args of [[], ["--as", "dusangire_copy"]]) {
      const r = ctl("restore", "--file", file, ...args);
      assert.strictEqual(r.status, 1, `restore ${args.join(" ")} accepted a manifest whose count differs:\n${r.stdout}`);
      const last = r.stderr.trim().split("\n").pop()!;
      assert.match(last, new RegExp(`^nourishctl: restore: check failed: ${escapeRe(table)} has ${rows} rows in dusangire_restore_\\d{8}_\\d{6}, the manifest of ${escapeRe(file)} says ${rows + 1}$`));
      assert.match(r.stdout, /sha256 matches its manifest/);
      assert.deepStrictEqual(databases(), dbs, "the restored copy is dropped, nothing swapped or renamed");
      assert.deepStrictEqual(checksums("dusangire"), live, "the live database untouched");
    }
    // A manifest from before row_counts: restored, saying once that counts were not compared.
    const older = { ...manifest };
    delete older.row_counts;
    fs.writeFileSync(file.replace(/\.dump$/, ".json"), JSON.stringify(older));
    const r = ctl("restore", "--file", file, "--as", "dusangire_copy");
    ok(r, "restore of a backup whose manifest predates row_counts");
    assert.strictEqual(r.stdout.split(`row counts not compared: the manifest of ${file} predates them (no row_counts)`).length, 2, r.stdout);
    assert.doesNotMatch(r.stdout, /row counts match/);
    assert.deepStrictEqual(checksums("dusangire_copy"), live);
    cluster.psql("DROP DATABASE dusangire_copy");
    for (const f of [file, file.replace(/\.dump$/, ".json")]) fs.rmSync(f);
  });

  it("a failed backup exits non-zero naming the step and records no success", () => {
    const keys = s3Keys();
    const pointer = path.join(root, "latest-pointer.json");
    const readPointer = (): string => {
      assert.strictEqual(s3.aws(["s3", "cp", `s3://${BUCKET}/dumps/daily/latest.json`, pointer]).status, 0, "no dumps/daily/latest.json");
      return fs.readFileSync(pointer, "utf8");
    };
    const before = readPointer();
    for (const [vars, step] of [[{ DB_NAME: "no_such_db" }, "dump"], [{ BACKUP_BUCKET: "no-such-bucket" }, "upload"]] as const) {
      fs.rmSync(metrics, { recursive: true, force: true });
      hostEnv(vars);
      const r = ctl("backup");
      assert.notStrictEqual(r.status, 0, `backup succeeded with ${JSON.stringify(vars)}`);
      assert.match(r.stderr, new RegExp(`backup failed at step ${step}`));
      assert.ok(!fs.existsSync(path.join(metrics, "BackupSuccess")), "no BackupSuccess metric after a failure");
    }
    hostEnv();
    // The count step: a pg_restore that cannot stream the new dump's data.
    const fake = path.join(root, "fakebin-count");
    fs.mkdirSync(fake, { recursive: true });
    fs.writeFileSync(path.join(fake, "pg_restore"), `#!/bin/sh\ncase " $* " in *" --data-only "*) echo "pg_restore: error: could not read from input file: end of file" >&2; exit 1 ;; esac\nexec ${PG_BINDIR}/pg_restore "$@"\n`, { mode: 0o755 });
    fs.rmSync(metrics, { recursive: true, force: true });
    const count = run("bash", [NOURISHCTL_SOURCE, "backup"], { env: { ...env, PATH: `${fake}:${env.PATH}` }, timeout: 180_000 });
    assert.strictEqual(count.status, 1, count.stdout);
    assert.match(count.stderr.trim(), /^nourishctl: backup failed at step count: cannot count the rows in the dump of dusangire: pg_restore --data-only exited 1: pg_restore: error: could not read from input file: end of file$/);
    assert.ok(!fs.existsSync(path.join(metrics, "BackupSuccess")), "no BackupSuccess metric after a failed count");
    assert.deepStrictEqual(s3Keys(), keys, "nothing new in the bucket");
    // The pointer still names the last backup that completed (a failed one never moves it).
    assert.strictEqual(readPointer(), before);
    assert.deepStrictEqual(fs.readdirSync(backupDir).filter((f) => f.endsWith(".partial")), []);
  });

  it("two backups never overlap: the second exits non-zero while the first holds the lock", async function () {
    // Deterministic: something holds the lock.
    fs.mkdirSync(lockDir, { recursive: true });
    const holder = spawn("flock", [path.join(lockDir, "backup.lock"), "sleep", "30"], { stdio: "ignore", detached: true });
    const gone = new Promise((r) => holder.once("exit", r));
    try {
      await untilLocked(path.join(lockDir, "backup.lock"));
      const r = ctl("backup");
      assert.notStrictEqual(r.status, 0);
      assert.match(r.stderr, /another backup is running/);
    } finally {
      process.kill(-holder.pid!, "SIGKILL");
      await gone;
    }
    // And two real ones started together: one runs, the other refuses.
    const runOne = () => new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn("bash", [NOURISHCTL_SOURCE, "backup"], { env, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      c.stderr.on("data", (d) => { err += d; });
      c.on("exit", (code) => resolve({ code, err }));
    });
    const results = await Promise.all([runOne(), runOne()]);
    assert.deepStrictEqual(results.map((x) => x.code).sort(), [0, 1], JSON.stringify(results));
    assert.match(results.find((x) => x.code === 1)!.err, /another backup is running/);
  });

  it("restore swaps on a non-prod stack, keeps the previous database, the app keeps access; prod needs --replace-live --yes", async () => {
    ok(ctl("backup"), "backup");
    const atBackup = checksums("dusangire");
    cluster.psql("SET ROLE dusangire; INSERT INTO orders (menu_item_id, quantity, created_at) VALUES (1, 99, now())", { db: "dusangire" });
    const afterInsert = checksums("dusangire");

    // prod: refused, nothing changed.
    hostEnv({ STACK: "prod" });
    const dbs = databases();
    const refused = ctl("restore", "--latest");
    assert.notStrictEqual(refused.status, 0);
    assert.match(refused.stderr, /STACK=prod without --replace-live --yes/);
    assert.notStrictEqual(ctl("restore", "--latest", "--replace-live").status, 0);
    assert.deepStrictEqual(databases(), dbs);
    assert.deepStrictEqual(checksums("dusangire"), afterInsert);

    hostEnv({ STACK: "staging" });
    // An app session is open on the live database: the swap terminates it.
    const session = spawn(pgBin("psql"), ["-X", "-c", "SELECT pg_sleep(60)",
      `host=127.0.0.1 port=${cluster.port} dbname=dusangire user=dusangire sslmode=require`], { env: { ...process.env, PGPASSWORD: APP_PASSWORD }, stdio: "ignore" });
    const sessionEnded = new Promise((resolve) => session.once("exit", resolve));
    const deadline = Date.now() + 10_000;
    while (cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'dusangire' AND usename = 'dusangire'") !== "1") {
      assert.ok(Date.now() < deadline, "the app session did not connect");
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = ctl("restore", "--latest");
    ok(r, "restore (swap)");
    await sessionEnded;
    const kept = databases().filter((d) => /^dusangire_before_restore_\d{8}_\d{6}$/.test(d));
    assert.strictEqual(kept.length, 1, databases().join(" "));
    assert.match(r.stdout, new RegExp(`kept as ${kept[0]}`));
    assert.deepStrictEqual(checksums("dusangire"), atBackup, "the row inserted after the backup is gone");
    assert.deepStrictEqual(checksums(kept[0]), afterInsert, "the previous database is kept as it was");
    assert.ok(!databases().some((d) => d.startsWith("dusangire_restore_")));
    // The app role, over its own TLS+SCRAM path, reads and writes as before.
    const app = asApp("INSERT INTO orders (menu_item_id, quantity, created_at) VALUES (2, 1, now()) RETURNING quantity; UPDATE menu_items SET available = false WHERE id = 1; SELECT count(*) FROM order_events");
    assert.strictEqual(app.status, 0, app.stderr);
    assert.match(app.stdout, /100000/);

    // prod with the explicit flags does swap.
    hostEnv({ STACK: "prod" });
    ok(ctl("restore", "--latest", "--replace-live", "--yes"), "restore on prod with --replace-live --yes");
    hostEnv();
    assert.deepStrictEqual(checksums("dusangire"), atBackup);
    const keptNow = databases().filter((d) => d.startsWith("dusangire_before_restore_"));
    assert.ok(keptNow.length >= 1);

    // restore-cleanup: lists without arguments, refuses other names, drops what it is told.
    const list = ctl("restore-cleanup");
    ok(list, "restore-cleanup (list)");
    assert.match(list.stdout, new RegExp(kept[0]));
    assert.notStrictEqual(ctl("restore-cleanup", "dusangire").status, 0);
    ok(ctl("restore-cleanup", kept[0]), "restore-cleanup NAME");
    assert.ok(!databases().includes(kept[0]));
    ok(ctl("restore-cleanup", "--older-than", "0"), "restore-cleanup --older-than 0");
    assert.deepStrictEqual(databases().filter((d) => d.includes("_before_restore_")), []);
  });

  it("a restore killed midway leaves the live database serving and untouched; re-running succeeds", async function () {
    const live = checksums("dusangire");
    const dbs = databases();
    const child = spawn("bash", [NOURISHCTL_SOURCE, "restore", "--latest"], { env, detached: true, stdio: "ignore" });
    const exited = new Promise((r) => child.once("exit", r));
    let seen = false;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if (databases().some((d) => d.startsWith("dusangire_restore_"))) { seen = true; break; }
      await new Promise((r) => setTimeout(r, 10));
    }
    // Killed like systemd's KillMode=control-group or a lost SSH session: everything it started.
    process.kill(-child.pid!, "SIGKILL");
    await exited;
    assert.ok(seen, "the restore finished before its temp database was seen; the dataset is too small");
    assert.deepStrictEqual(checksums("dusangire"), live, "live database untouched");
    assert.match(asApp("SELECT count(*) FROM orders").stdout, /^\d+/);
    // A restore killed between closing the live database to connections and its swap: re-run reopens it.
    cluster.psql("ALTER DATABASE dusangire WITH ALLOW_CONNECTIONS false");
    const r = ctl("restore", "--latest");
    ok(r, "re-run after a kill");
    assert.match(r.stdout, /reopened dusangire/);
    assert.strictEqual(cluster.psql("SELECT datallowconn FROM pg_database WHERE datname = 'dusangire'"), "t");
    assert.ok(!databases().some((d) => d.startsWith("dusangire_restore_")), databases().join(" "));
    const kept = databases().filter((d) => d.startsWith("dusangire_before_restore_"));
    assert.deepStrictEqual(databases(), [...dbs, ...kept].sort());
    assert.deepStrictEqual(fs.readdirSync(backupDir).filter((f) => f.startsWith(".restore.") && f !== ".restore.lock"), [], "no temp dirs left");
    ok(ctl("restore-cleanup", "--older-than", "0"), "restore-cleanup");
  });

  it("--at on a host without PITR refuses with the reason and creates nothing", () => {
    const dbs = databases();
    const r = ctl("restore", "--at", "2024-01-01 00:00:00+00", "--as", "dusangire_pitr");
    assert.notStrictEqual(r.status, 0);
    // Without pitr.sh: "needs pgBackRest (PITR off on this host)"; with it, pitr.sh's own reason.
    assert.match(r.stderr, /PITR off on this host|point-in-time recovery is off/);
    assert.deepStrictEqual(databases(), dbs);
  });

  /** The newest local backup file (its manifest beside it), for restore --file. */
  const latestLocalDump = (): string => path.join(backupDir, fs.readdirSync(backupDir).filter((f) => /^db_backup_\d{8}_\d{6}\.dump$/.test(f)).sort().pop()!);
  /** A live database named `name` holding the same rows as dusangire. */
  const liveCopyOfDusangire = (name: string): void => {
    cluster.psql(`DROP DATABASE IF EXISTS "${name}"`);
    cluster.psql(`CREATE DATABASE "${name}" OWNER dusangire TEMPLATE dusangire`);
  };

  it("a 63-character database name: restore --file F --as copy refuses up front, naming it; the live database keeps every row", () => {
    const long = "dusangire_" + "l".repeat(53);
    assert.strictEqual(long.length, 63);
    ok(ctl("backup"), "backup");
    const file = latestLocalDump();
    liveCopyOfDusangire(long);
    const rows = checksums(long);
    const dbs = databases();
    hostEnv({ DB_NAME: long });
    try {
      const r = ctl("restore", "--file", file, "--as", "copy");
      assert.notStrictEqual(r.status, 0, `restore with a 63-character DB_NAME ran:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^nourishctl: restore: database name ${long}_restore_\\d{8}_\\d{6} is 87 bytes, PostgreSQL keeps only 63 \\(DB_NAME=${long} in .*host\\.env is too long`, "m"));
    } finally {
      hostEnv();
    }
    assert.deepStrictEqual(databases(), dbs, "no database created or dropped");
    assert.deepStrictEqual(checksums(long), rows, "the live database keeps its rows");
    cluster.psql(`DROP DATABASE "${long}"`);
  });

  it("33-62 characters: restore refuses up front; restore-cleanup leaves a kept database whose time was truncated, with a warning", () => {
    const mid = "dusangire_" + "m".repeat(30);
    const file = latestLocalDump();
    liveCopyOfDusangire(mid);
    const rows = checksums(mid);
    // What an older nourishctl left: <db>_before_restore_<ts> cut to 63 bytes by PostgreSQL.
    const truncated = `${mid}_before_restore_20240101_000000`.slice(0, 63);
    cluster.psql(`CREATE DATABASE "${truncated}" TEMPLATE template0`);
    const dbs = databases();
    hostEnv({ DB_NAME: mid });
    try {
      for (const args of [["--as", "copy"], []]) {
        const r = ctl("restore", "--file", file, ...args);
        assert.notStrictEqual(r.status, 0, `restore ${args.join(" ")} with a 40-character DB_NAME ran:\n${r.stdout}`);
        assert.match(r.stderr, new RegExp(`restore: database name ${mid}_restore_\\d{8}_\\d{6} is 64 bytes, PostgreSQL keeps only 63`));
      }
      for (const args of [["--older-than", "0"], []]) {
        const c = ctl("restore-cleanup", ...args);
        ok(c, `restore-cleanup ${args.join(" ")}`);
        assert.ok(c.stderr.includes(`warning: restore-cleanup: skipping ${truncated}: not <name>_before_restore_YYYYmmdd_HHMMSS`), c.stderr);
      }
      assert.notStrictEqual(ctl("restore-cleanup", truncated).status, 0, "restore-cleanup NAME drops only what a restore kept");
    } finally {
      hostEnv();
    }
    assert.deepStrictEqual(databases(), dbs, "nothing dropped");
    assert.deepStrictEqual(checksums(mid), rows);
    cluster.psql(`DROP DATABASE "${mid}"`);
    cluster.psql(`DROP DATABASE "${truncated}"`);
  });

  it("the sweep of interrupted restores drops only <db>_restore_YYYYmmdd_HHMMSS, never a database merely starting like one", () => {
    cluster.psql("CREATE DATABASE dusangire_restore_notes TEMPLATE template0");
    cluster.psql("CREATE DATABASE dusangire_restore_20240101_000000 TEMPLATE template0");
    const r = ctl("restore", "--file", latestLocalDump(), "--as", "dusangire_copy");
    ok(r, "restore --as");
    assert.match(r.stdout, /dropped dusangire_restore_20240101_000000, left by an interrupted restore/);
    assert.ok(databases().includes("dusangire_restore_notes"), databases().join(" "));
    assert.ok(!databases().includes("dusangire_restore_20240101_000000"));
    cluster.psql("DROP DATABASE dusangire_restore_notes");
    cluster.psql("DROP DATABASE dusangire_copy");
  });

  it("one database lock: a restore is refused while a backup runs, a backup waits (bounded) while a restore runs; the database intact", async function () {
    this.timeout(300_000);
    const live = checksums("dusangire");
    const dbs = databases();
    /** A real nourishctl verb started in the background; resolves with its exit. */
    const start = (args: string[], vars: Record<string, string> = {}) => {
      const c = spawn("bash", [NOURISHCTL_SOURCE, ...args], { env: { ...env, ...vars }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      c.stdout.on("data", (d) => { out += d; });
      c.stderr.on("data", (d) => { out += d; });
      return { pid: c.pid!, done: new Promise<{ code: number | null; out: string }>((resolve) => c.on("exit", (code) => resolve({ code, out }))) };
    };
    /** Until `verb` holds the database lock: its holder line names its pid. */
    const holding = async (verb: string, pid: number) => {
      const info = path.join(lockDir, `${verb}.info`);
      const deadline = Date.now() + 30_000;
      while (!(fs.existsSync(info) && fs.readFileSync(info, "utf8").includes(`(pid ${pid})`))) {
        assert.ok(Date.now() < deadline, `${verb} did not take the lock`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };

    // A backup holds the lock (its DJANGO_MANAGE step sleeps): restore and restore-cleanup are refused at once.
    const backup = start(["backup"], { DJANGO_MANAGE: "sleep 4; echo '[X] orders.0002_order_quantity'" });
    await holding("backup", backup.pid);
    const restore = ctl("restore", "--latest", "--as", "dusangire_copy");
    assert.strictEqual(restore.status, 1, restore.stdout);
    assert.match(restore.stderr, new RegExp(`^nourishctl: restore: the database is busy: backup by \\S+ since \\S+ \\(pid ${backup.pid}\\); not starting \\(lock .*db\\.lock\\)$`, "m"));
    const cleanup = ctl("restore-cleanup", "--older-than", "0");
    assert.strictEqual(cleanup.status, 1);
    assert.match(cleanup.stderr, /restore-cleanup: the database is busy: backup by/);
    const b = await backup.done;
    assert.strictEqual(b.code, 0, b.out);

    // A restore holds it: a backup that may not wait is refused; one that may, waits and then runs.
    const restoring = start(["restore", "--latest", "--as", "dusangire_copy"]);
    await holding("restore", restoring.pid);
    hostEnv({ DB_LOCK_WAIT_SECONDS: "0" });
    const refused = ctl("backup");
    hostEnv();
    assert.strictEqual(refused.status, 1, refused.stdout);
    assert.match(refused.stderr, new RegExp(`^nourishctl: backup: the database is busy: restore by \\S+ since \\S+ \\(pid ${restoring.pid}\\); gave up after 0 s`, "m"));
    const waited = ctl("backup");
    ok(waited, "backup waiting for the restore");
    assert.match(waited.stdout, /backup: waiting up to 900 s for: restore by/);
    const rr = await restoring.done;
    assert.strictEqual(rr.code, 0, rr.out);

    assert.deepStrictEqual(checksums("dusangire"), live, "the live database intact");
    assert.deepStrictEqual(checksums("dusangire_copy"), live);
    assert.deepStrictEqual(databases(), [...dbs, "dusangire_copy"].sort());
    cluster.psql("DROP DATABASE dusangire_copy");
  });

  it("refuses a backup key outside dumps/daily/ or dumps/monthly/, or with anything before the name", () => {
    for (const key of ["x/dumps/daily/db_backup_20240101_000000.dump", "dumps/daily/../daily/db_backup_20240101_000000.dump",
      "dumps/daily/evil_db_backup_20240101_000000.dump", "-dumps/daily/db_backup_20240101_000000.dump", "dumps/db_backup_20240101_000000.dump",
      "logs/db_backup_20240101_000000.dump"]) {
      for (const args of [["restore", "--key", key, "--as", "dusangire_copy"], ["backups", "verify", "--key", key]]) {
        const r = ctl(...args);
        assert.strictEqual(r.status, 1, `${args.join(" ")} accepted`);
        assert.ok(r.stderr.includes(`${key} is not a backup key (dumps/daily/ or dumps/monthly/`), r.stderr);
      }
    }
    // backups list shows only keys of that shape.
    const stray = "dumps/daily/evil_db_backup_29990101_000000.dump";
    const file = latestLocalDump();
    assert.strictEqual(s3.aws(["s3", "cp", file, `s3://${BUCKET}/${stray}`]).status, 0);
    assert.strictEqual(s3.aws(["s3", "cp", file.replace(/\.dump$/, ".json"), `s3://${BUCKET}/${stray.replace(/\.dump$/, ".json")}`]).status, 0);
    try {
      const list = ctl("backups", "list");
      ok(list, "backups list");
      assert.ok(!list.stdout.includes("evil_"), list.stdout);
      assert.ok(!ctl("backups", "verify", "--latest").stdout.includes("evil_"));
    } finally {
      s3.aws(["s3", "rm", `s3://${BUCKET}/dumps/daily/`, "--recursive", "--exclude", "*", "--include", "evil_*"]);
    }
  });

  it("SQLite: backup, then verify-copy-swap keeps the previous file; a corrupted backup is refused", () => {
    const dbFile = path.join(root, "srv/nourish-link/db.sqlite3");
    fs.mkdirSync(path.dirname(dbFile), { recursive: true });
    const sql = (file: string, q: string) => {
      const r = run("sqlite3", [file, q]);
      assert.strictEqual(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    sql(dbFile, `CREATE TABLE orders (id INTEGER PRIMARY KEY, qty INTEGER);
      CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, app TEXT, name TEXT, applied TEXT);
      WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 3000) INSERT INTO orders SELECT i, i % 5 FROM s;
      INSERT INTO django_migrations (app, name, applied) VALUES ('orders', '0001_initial', 'now');
      CREATE TABLE "odd ""name""" (id INTEGER PRIMARY KEY);`);
    fs.chmodSync(dbFile, 0o640);
    hostEnv({ SQLITE_PATH: dbFile });
    try {
      ok(ctl("backup"), "backup (sqlite)");
      const key = s3Keys().filter((k) => /^dumps\/daily\/db_backup_\d{8}_\d{6}\.sqlite3$/.test(k)).sort().pop();
      assert.ok(key, s3Keys().join(" "));
      const manifest = JSON.parse(fs.readFileSync(path.join(backupDir, path.basename(key!, ".sqlite3") + ".json"), "utf8"));
      assert.deepStrictEqual(manifest.migrations, { orders: "0001_initial" });
      assert.deepStrictEqual(manifest.row_counts, { "main.django_migrations": 1, "main.orders": 3000, 'main.odd "name"': 0 });
      ok(ctl("backups", "verify", "--latest"), "backups verify (sqlite)");
      const atBackup = sql(dbFile, "SELECT count(*), sum(qty) FROM orders");
      sql(dbFile, "INSERT INTO orders VALUES (99999, 7)");
      const afterInsert = sql(dbFile, "SELECT count(*), sum(qty) FROM orders");

      // Corrupted: refused, naming the file; the live file untouched.
      const bad = path.join(root, "db_backup_20000101_000003.sqlite3");
      const bytes = fs.readFileSync(path.join(backupDir, path.basename(key!)));
      bytes[bytes.length - 100] ^= 0xff;
      fs.writeFileSync(bad, bytes);
      fs.copyFileSync(path.join(backupDir, path.basename(key!, ".sqlite3") + ".json"), bad.replace(/\.sqlite3$/, ".json"));
      const liveBytes = fs.readFileSync(dbFile);
      const refused = ctl("restore", "--file", bad);
      assert.notStrictEqual(refused.status, 0);
      assert.ok(refused.stderr.includes(bad), refused.stderr);
      assert.ok(fs.readFileSync(dbFile).equals(liveBytes), "live SQLite file untouched");
      assert.deepStrictEqual(fs.readdirSync(path.dirname(dbFile)), ["db.sqlite3"]);
      // A manifest whose count differs from the file's rows: refused before the file is moved in.
      const edited = path.join(root, "db_backup_20000101_000005.sqlite3");
      fs.copyFileSync(path.join(backupDir, path.basename(key!)), edited);
      fs.writeFileSync(edited.replace(/\.sqlite3$/, ".json"), JSON.stringify({ ...manifest, row_counts: { ...manifest.row_counts, "main.orders": 2999 } }));
      const counted = ctl("restore", "--file", edited);
      assert.strictEqual(counted.status, 1, counted.stdout);
      assert.match(counted.stderr.trim().split("\n").pop()!, new RegExp(`^nourishctl: restore: check failed: main\\.orders has 3000 rows in ${escapeRe(path.dirname(dbFile))}/\\.db\\.sqlite3\\.restore\\.\\w+, the manifest of ${escapeRe(edited)} says 2999; ${escapeRe(dbFile)} untouched$`));
      assert.ok(fs.readFileSync(dbFile).equals(liveBytes), "live SQLite file untouched");
      assert.deepStrictEqual(fs.readdirSync(path.dirname(dbFile)), ["db.sqlite3"]);

      // Good: swapped in, previous kept, 0600.
      const r = ctl("restore", "--latest");
      ok(r, "restore (sqlite)");
      assert.match(r.stdout, /row counts match the manifest \(3 tables\)/);
      assert.strictEqual(sql(dbFile, "SELECT count(*), sum(qty) FROM orders"), atBackup);
      const kept = fs.readdirSync(path.dirname(dbFile)).filter((f) => /^db\.sqlite3\.before_restore_\d{8}_\d{6}$/.test(f));
      assert.strictEqual(kept.length, 1, fs.readdirSync(path.dirname(dbFile)).join(" "));
      assert.strictEqual(sql(path.join(path.dirname(dbFile), kept[0]), "SELECT count(*), sum(qty) FROM orders"), afterInsert);
      assert.strictEqual(fs.statSync(dbFile).mode & 0o777, 0o600);
      assert.match(r.stdout, /kept as .*before_restore_/);
      ok(ctl("restore-cleanup", path.join(path.dirname(dbFile), kept[0])), "restore-cleanup (sqlite)");
      assert.deepStrictEqual(fs.readdirSync(path.dirname(dbFile)), ["db.sqlite3"]);
    } finally {
      hostEnv();
    }
  });

  it("restore --as on prod runs what the dump holds as the app's role: a function the app planted never runs as a superuser", () => {
    // Planted by the app's role: a CHECK calling a function that, only when its caller is a
    // superuser, runs a shell command (COPY TO PROGRAM). pg_restore evaluates the CHECK on every row.
    const { marker, sql: plantSql, dispose } = superuserProbe();
    cluster.psql(`SET ROLE dusangire;
      ${plantSql}
      CREATE TABLE planted (id serial PRIMARY KEY, note text CHECK (public.nl_plant('check')));
      INSERT INTO planted (note) VALUES ('a'), ('b');`, { db: "dusangire" });
    hostEnv({ STACK: "prod" });
    try {
      ok(ctl("backup"), "backup (planted)");
      const logBefore = cluster.log().length;
      const r = ctl("restore", "--latest", "--as", "dusangire_planted");
      ok(r, "restore --as (planted)");
      assert.ok(!fs.existsSync(marker), "the planted function ran a shell command as a superuser during the restore");
      const log = cluster.log().slice(logBefore);
      assert.match(log, /nl_plant check ran as dusangire \(superuser: f\)/, "the planted CHECK ran during the restore, as the app's role");
      assert.doesNotMatch(log, /superuser: t/);
      // Everything restored is the app's (pg_stat_statements' views are the extension's, created by setup's superuser).
      assert.strictEqual(cluster.psql(`SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class c WHERE relnamespace = 'public'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`, { db: "dusangire_planted" }), "dusangire");
      assert.strictEqual(cluster.psql("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'", { db: "dusangire_planted" }), "1");
      assert.strictEqual(cluster.psql("SELECT count(*) FROM planted", { db: "dusangire_planted" }), "2");
    } finally {
      hostEnv();
      dispose();
    }
  });
});
