// A managed database (RDS): the pre-release backup and the way back run on the first app host.
// Real PostgreSQL 15 stands in for RDS as the app host sees it: TCP only, TLS required
// (rds.force_ssl: plain TCP is rejected), scram, no superuser and no local socket for us; the
// app's database user owns the database (CREATEDB for restore-beside). The app role's tooling
// (exactly the files an app host installs) creates the app's role as RDS's master user (secret in
// moto's Secrets Manager), runs `nourishctl backup` into s3rver and `nourishctl restore --key`
// back, with app.env as setup writes it.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderEnvFile } from "../components/hosts/env-file";
import { renderDocument, substitute } from "../components/release/document";
import { toolingFilesFor, TOOLING_DIR } from "../components/release/steps";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_PATH } from "../components/hosts/user-data";
import { Cluster, createCluster, PG_BINDIR } from "./pg";
import { AWS_CLI, S3, startS3 } from "./s3";
import { requireTool, run, selfSignedCert } from "./tools";
import { Moto, startMoto } from "./moto";
import { startFakePostgres } from "./fake-postgres";

const BUCKET = "nl-test-managed-backups";
// Quotes, a dollar, a backslash and a space: read as data, never as shell.
const APP_PASSWORD = `app "pw" $HOME \\ 'x'`;
const DJANGO_KEY = "django-key-never-in-output";
const MASTER = "nourish_admin";
const MASTER_PASSWORD = "master-pw-never-in-output";

describe("managed database: backup and restore from the app host", function () {
  let cluster: Cluster;
  let s3: S3;
  let moto: Moto;
  let secretArn = "";
  let logBefore = 0;
  let createAppRole: { status: number | null; stdout: string; stderr: string };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-managed-"));
  const etc = path.join(root, "etc/nourish-link");
  let env: NodeJS.ProcessEnv;

  const hostEnv = (vars: Record<string, string> = {}): void => {
    fs.writeFileSync(path.join(etc, "host.env"), renderEnvFile("host.env", {
      ROLE: "app", STACK: "staging", REGION: "af-south-1", DB_HOST: "127.0.0.1", DB_NAME: "dusangire", DB_USER: "dusangire",
      BACKUP_BUCKET: BUCKET, S3_ENDPOINT: s3.endpoint, DB_MANAGED: "true", DB_MASTER_SECRET_ARN: secretArn, ...vars,
    }));
  };
  const appEnv = (vars: Record<string, string> = {}): void => {
    // As setup's write_app_env has it (DATABASE_* and the Django key).
    fs.writeFileSync(path.join(etc, "app.env"), renderEnvFile("app.env", {
      DJANGO_SETTINGS_MODULE: "dusangire.settings", DATABASE_HOST: "127.0.0.1", DATABASE_NAME: "dusangire", DATABASE_USER: "dusangire",
      DATABASE_SSLMODE: "require", PGCHANNELBINDING: "require", DATABASE_PASSWORD: APP_PASSWORD, DJANGO_SECRET_KEY: DJANGO_KEY, ...vars,
    }), { mode: 0o640 });
  };
  const ctl = (...args: string[]) => {
    const r = run("bash", [path.join(root, NOURISHCTL_PATH), ...args], { env, timeout: 180_000 });
    for (const secret of [APP_PASSWORD, DJANGO_KEY, MASTER_PASSWORD]) assert.ok(!(r.stdout + r.stderr).includes(secret), `nourishctl ${args.join(" ")} printed a secret`);
    return r;
  };
  const ok = (r: { status: number | null; stdout: string; stderr: string }, what: string) =>
    assert.strictEqual(r.status, 0, `${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}\n--- server.log ---\n${cluster.log().slice(-2000)}`);
  const databases = (): string[] => cluster.psql("SELECT datname FROM pg_database ORDER BY 1").split("\n");
  const s3Keys = (): string[] => {
    const r = s3.aws(["s3api", "list-objects-v2", "--bucket", BUCKET, "--query", "Contents[].Key", "--output", "text"]);
    assert.strictEqual(r.status, 0, r.stderr);
    return r.stdout.trim().split(/\s+/).filter((k) => k && k !== "None");
  };
  const orders = (db = "dusangire") => cluster.psql("SELECT count(*) || ':' || md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o", { db });

  before(async function () {
    this.timeout(180_000);
    for (const t of ["flock", "sha256sum", "python3", "openssl"]) requireTool(t);
    assert.ok(fs.existsSync(path.join(PG_BINDIR, "pg_dump")), "pg_dump is missing: apt-get install -y postgresql");
    fs.mkdirSync(etc, { recursive: true });
    // The app role's tooling, at its paths on the host, as tooling-install lays it out.
    for (const f of toolingFilesFor("app")) {
      fs.mkdirSync(path.dirname(path.join(root, f.target)), { recursive: true });
      fs.copyFileSync(path.join(TOOLING_DIR, f.source), path.join(root, f.target));
    }
    cluster = await createCluster();
    const { cert, key } = selfSignedCert(cluster.root, "localhost");
    fs.chmodSync(key, 0o600);
    cluster.own(key);
    cluster.own(cert);
    cluster.start({
      // Every statement logged: the passwords must never be in one.
      conf: `ssl = on\nssl_cert_file = '${cert}'\nssl_key_file = '${key}'\npassword_encryption = 'scram-sha-256'\nlog_statement = 'all'\n`,
      // RDS with rds.force_ssl = 1: TLS and a password, or nothing. The socket is the harness's own way in.
      hba: "local all postgres peer\nhostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 reject\n",
    });
    // As RDS creates it: a master user that is not a superuser (CREATEROLE, CREATEDB), owning the
    // database; and, as an instance whose app connected as the master had, a table the master owns.
    cluster.psql(`CREATE ROLE ${MASTER} LOGIN CREATEROLE CREATEDB PASSWORD '${MASTER_PASSWORD}'`);
    cluster.psql(`CREATE DATABASE dusangire OWNER ${MASTER}`);
    cluster.psql(`SET ROLE ${MASTER}; CREATE TABLE legacy_notes (id serial PRIMARY KEY, note text); CREATE VIEW legacy_view AS SELECT note FROM legacy_notes`, { db: "dusangire" });
    // nourishctl reads the secret with the credentials s3rver takes: moto's default account.
    moto = await startMoto({ defaultAccount: true });
    const secret = moto.aws(["secretsmanager", "create-secret", "--name", "rds!db-nourish-link-test", "--secret-string", JSON.stringify({ username: MASTER, password: MASTER_PASSWORD })]);
    assert.strictEqual(secret.status, 0, secret.stderr);
    secretArn = JSON.parse(secret.stdout).ARN;
    s3 = await startS3({ buckets: [BUCKET] });
    // No PGHOST: the only way in is DATABASE_HOST over TCP; PGPORT stands in for RDS's 5432.
    env = { ...process.env, NOURISH_ROOT: root, NOURISH_LIB: path.join(root, NOURISHCTL_LIB_PATH), PGPORT: String(cluster.port), ...s3.env, SECRETS_ENDPOINT: moto.endpoint,
      PATH: `${PG_BINDIR}:${path.dirname(AWS_CLI)}:${process.env.PATH}` };
    for (const k of ["PGHOST", "PGUSER", "PGPASSWORD", "PGDATABASE"]) delete env[k];
    hostEnv();
    appEnv();
    // The Release's step before the backup: the app's role, made by the master user.
    logBefore = cluster.log().length;
    // Through the release document's script, as SSM runs it on app-0.
    const script = substitute(renderDocument({ toolingBucket: "unused", region: "af-south-1", timeoutSeconds: 60 }), { verb: "create-app-role" });
    createAppRole = run("bash", ["-c", script], { env, timeout: 180_000 });
    ok(createAppRole, "create-app-role");
    cluster.psql(`SET ROLE dusangire;
      CREATE TABLE menu_items (id serial PRIMARY KEY, name text NOT NULL);
      CREATE TABLE orders (id serial PRIMARY KEY, menu_item_id integer REFERENCES menu_items, quantity integer NOT NULL);
      CREATE TABLE django_migrations (id serial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied timestamptz NOT NULL);
      INSERT INTO menu_items (name) SELECT 'dish ' || i FROM generate_series(1, 50) i;
      INSERT INTO orders (menu_item_id, quantity) SELECT 1 + i % 50, 1 + i % 4 FROM generate_series(1, 2000) i;
      INSERT INTO django_migrations (app, name, applied) VALUES ('orders', '0001_initial', now()), ('orders', '0002_quantity', now());`, { db: "dusangire" });
  });

  after(async () => {
    cluster?.stop();
    await s3?.stop();
    moto?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("creates the app's role as RDS's master user: least privilege, owner of the app database and what the master made there; idempotent", () => {
    ok(createAppRole, "create-app-role");
    const role = () => cluster.psql("SELECT rolcanlogin, rolcreatedb, rolsuper, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = 'dusangire'");
    assert.strictEqual(role(), "t|t|f|f|f");
    const owners = () => cluster.psql(`SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'dusangire'
      UNION ALL SELECT string_agg(relname || '=' || pg_get_userbyid(relowner), ',' ORDER BY relname) FROM pg_class WHERE relname LIKE 'legacy%' AND relkind IN ('r', 'S', 'v')`, { db: "dusangire" });
    assert.strictEqual(owners(), "dusangire\nlegacy_notes=dusangire,legacy_notes_id_seq=dusangire,legacy_view=dusangire");
    // The app logs in over TLS with app.env's password; the server never saw it in a statement.
    assert.strictEqual(run(path.join(PG_BINDIR, "psql"), ["-XAtc", "SELECT current_user", `host=127.0.0.1 port=${cluster.port} dbname=dusangire user=dusangire sslmode=require`], { env: { ...process.env, PGPASSWORD: APP_PASSWORD } }).stdout.trim(), "dusangire");
    const log = cluster.log().slice(logBefore);
    assert.match(log, /ALTER ROLE dusangire WITH LOGIN CREATEDB NOCREATEROLE PASSWORD 'SCRAM-SHA-256\$4096:/);
    assert.ok(!log.includes(APP_PASSWORD) && !log.includes(MASTER_PASSWORD), "a password reached the server log");
    // Again: same state, no error.
    ok(ctl("create-app-role"), "create-app-role again");
    assert.strictEqual(role(), "t|t|f|f|f");
    assert.strictEqual(owners(), "dusangire\nlegacy_notes=dusangire,legacy_notes_id_seq=dusangire,legacy_view=dusangire");
    // Refusals: a database host's way, and a master that is the app's user.
    hostEnv({ DB_MANAGED: "" });
    try {
      assert.match(ctl("create-app-role").stderr, /create-app-role: only with a managed database/);
    } finally {
      hostEnv();
    }
  });

  let key = "";
  it("backs up RDS from the app role's tooling over TLS: same bucket, key format, manifest, checksum and metrics", () => {
    assert.match(ctl("help").stdout, /restore-cleanup/);
    const r = ctl("backup");
    ok(r, "backup");
    key = r.stdout.trim().split("\n").pop()!;
    assert.match(key, /^dumps\/daily\/db_backup_\d{8}_\d{6}\.dump$/);
    assert.ok(s3Keys().includes(key.replace(/\.dump$/, ".json")), "manifest uploaded beside the dump");
    const name = path.basename(key, ".dump");
    const manifest = JSON.parse(fs.readFileSync(path.join(root, "var/backups/nourish-link", `${name}.json`), "utf8"));
    assert.strictEqual(manifest.database, "dusangire");
    assert.deepStrictEqual(manifest.migrations, { orders: "0002_quantity" });
    assert.deepStrictEqual(manifest.tables, ["public.django_migrations", "public.legacy_notes", "public.menu_items", "public.orders"]);
    assert.deepStrictEqual(manifest.row_counts, { "public.django_migrations": 2, "public.legacy_notes": 0, "public.menu_items": 50, "public.orders": 2000 });
    assert.match(manifest.tools.dump, /pg_dump \(PostgreSQL\) 15\./);
    assert.strictEqual(fs.readFileSync(path.join(root, "var/lib/nourish-link/metrics/BackupSuccess"), "utf8").trim(), "1");
    // It went over TLS as the app's user: the server logged no other way in (pg_hba rejects plain TCP).
    assert.strictEqual(cluster.psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'dusangire' AND NOT s.ssl"), "0");
    ok(ctl("backups", "verify", "--key", key), "backups verify");
  });

  it("refuses a backup file that does not match its manifest before touching any database", () => {
    const tampered = key.replace(/_\d{6}\.dump$/, "_235959.dump");
    const tmp = path.join(root, "tampered.dump");
    fs.writeFileSync(tmp, "not the dump the manifest describes");
    assert.strictEqual(s3.aws(["s3", "cp", tmp, `s3://${BUCKET}/${tampered}`]).status, 0);
    const got = s3.aws(["s3", "cp", `s3://${BUCKET}/${key.replace(/\.dump$/, ".json")}`, `s3://${BUCKET}/${tampered.replace(/\.dump$/, ".json")}`]);
    assert.strictEqual(got.status, 0, got.stderr);
    const before = databases();
    const r = ctl("restore", "--key", tampered);
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /is corrupted or truncated: sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}; refusing it/);
    assert.deepStrictEqual(databases(), before);
  });

  it("on prod refuses to replace the live database without --replace-live --yes, changing nothing", () => {
    hostEnv({ STACK: "prod" });
    try {
      const before = databases();
      const r = ctl("restore", "--key", key);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /refusing to replace the live database dusangire on STACK=prod without --replace-live --yes/);
      assert.deepStrictEqual(databases(), before);
    } finally {
      hostEnv();
    }
  });

  it("restores --key beside the live database, checks it, swaps it in and keeps the old one, owned by the app's user", () => {
    const atBackup = orders();
    cluster.psql("SET ROLE dusangire; DELETE FROM orders WHERE id > 1000; INSERT INTO django_migrations (app, name, applied) VALUES ('orders', '0003_oops', now())", { db: "dusangire" });
    const damaged = orders();
    assert.notStrictEqual(damaged, atBackup);
    const r = ctl("restore", "--key", key);
    ok(r, "restore");
    assert.match(r.stdout, /sha256 matches its manifest/);
    assert.match(r.stdout, /row counts match the manifest \(4 tables\)/);
    assert.match(r.stdout, /migration state matches the manifest/);
    assert.strictEqual(orders(), atBackup);
    const kept = databases().filter((d) => /^dusangire_before_restore_\d{8}_\d{6}$/.test(d));
    assert.strictEqual(kept.length, 1, databases().join(" "));
    assert.strictEqual(orders(kept[0]), damaged);
    assert.strictEqual(cluster.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'dusangire'"), "dusangire");
    assert.strictEqual(cluster.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'", { db: "dusangire" }), "dusangire");
    // And the kept copy goes only when asked, by name.
    ok(ctl("restore-cleanup", kept[0]), "restore-cleanup");
    assert.ok(!databases().includes(kept[0]));
  });

  it("refuses on an app host whose database is not managed, and a DATABASE_SSLMODE without TLS", () => {
    hostEnv({ DB_MANAGED: "" });
    try {
      for (const v of [["backup"], ["restore", "--key", key], ["restore-cleanup", "x"], ["backups", "list"]]) {
        const r = ctl(...v);
        assert.strictEqual(r.status, 1, v.join(" "));
        assert.match(r.stderr, /runs on the database host; on an app host only with a managed database \(DB_MANAGED=true in .*host\.env\)/);
      }
    } finally {
      hostEnv();
    }
    appEnv({ DATABASE_SSLMODE: "prefer" });
    try {
      const r = ctl("backup");
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /DATABASE_SSLMODE='prefer' in .*app\.env: the managed database is reached over TLS only/);
    } finally {
      appEnv();
    }
  });

  it("gives a host posing as the database no password, with or without PGCHANNELBINDING in app.env, and refuses any value but require", async () => {
    const fake = await startFakePostgres();
    try {
      // An app.env written before PGCHANNELBINDING existed: nourishctl requires channel binding all the same.
      fs.writeFileSync(path.join(etc, "app.env"), renderEnvFile("app.env", {
        DJANGO_SETTINGS_MODULE: "dusangire.settings", DATABASE_HOST: "127.0.0.1", DATABASE_PORT: String(fake.port), DATABASE_NAME: "dusangire",
        DATABASE_USER: "dusangire", DATABASE_SSLMODE: "require", DATABASE_PASSWORD: APP_PASSWORD, DJANGO_SECRET_KEY: DJANGO_KEY,
      }), { mode: 0o640 });
      for (const verb of [["backup"], ["create-app-role"]]) {
        const r = ctl(...verb);
        assert.strictEqual(r.status, 1, verb.join(" "));
        assert.match(r.stderr, /channel binding required/, verb.join(" "));
      }
      assert.strictEqual(fake.startups, 2, "nourishctl never reached the host posing as the database");
      assert.deepEqual(fake.captured, [], "a password went to the host posing as the database");
      appEnv({ DATABASE_PORT: String(fake.port), PGCHANNELBINDING: "prefer" });
      const r = ctl("backup");
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /PGCHANNELBINDING='prefer' in .*app\.env: the managed database is reached with SCRAM channel binding only \(require\)/);
      assert.strictEqual(fake.startups, 2);
    } finally {
      appEnv();
      await fake.stop();
    }
  });

  it("every app host takes the one database lock: app-1's restore is refused while app-0 backs up, app-1's backup waits for app-0's restore", async function () {
    this.timeout(180_000);
    // app-1: the same tooling, host.env and app.env under another root, so no local lock is shared.
    const root1 = fs.mkdtempSync(path.join(os.tmpdir(), "nl-managed-app1-"));
    fs.cpSync(path.join(root, "etc"), path.join(root1, "etc"), { recursive: true });
    fs.cpSync(path.join(root, path.dirname(NOURISHCTL_PATH)), path.join(root1, path.dirname(NOURISHCTL_PATH)), { recursive: true });
    fs.cpSync(path.join(root, NOURISHCTL_LIB_PATH), path.join(root1, NOURISHCTL_LIB_PATH), { recursive: true });
    const env1 = { ...env, NOURISH_ROOT: root1, NOURISH_LIB: path.join(root1, NOURISHCTL_LIB_PATH) };
    const sleeper = path.join(root1, "sleep-3");
    fs.writeFileSync(sleeper, "#!/bin/sh\nsleep 3\n", { mode: 0o755 });
    const start = (e: NodeJS.ProcessEnv, args: string[]) => {
      const c = spawn("bash", [path.join(root, NOURISHCTL_PATH), ...args], { env: e, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      c.stdout.on("data", (d) => { out += d; });
      c.stderr.on("data", (d) => { out += d; });
      return { pid: c.pid!, done: new Promise<{ code: number | null; out: string }>((resolve) => c.on("exit", (code) => resolve({ code, out }))) };
    };
    const advisory = () => cluster.psql("SELECT coalesce(string_agg(a.application_name || ':' || l.mode, ','), '') FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted");
    const holding = async (pid: number) => {
      for (const end = Date.now() + 30_000; !advisory().includes(`(pid ${pid})`); await new Promise((r) => setTimeout(r, 20))) {
        assert.ok(Date.now() < end, `pid ${pid} never took the database lock`);
      }
    };
    try {
      // app-0 backs up (its DJANGO_MANAGE step sleeps): app-1's restore is refused, naming it.
      const backup = start({ ...env, DJANGO_MANAGE: "sleep 3; echo '[X] orders.0002_quantity'" }, ["backup"]);
      await holding(backup.pid);
      assert.match(advisory(), new RegExp(`nourishctl backup \\(pid ${backup.pid}\\) on \\S+:ShareLock`));
      const refused = run("bash", [path.join(root1, NOURISHCTL_PATH), "restore", "--key", key, "--as", "dusangire_lockcopy"], { env: env1, timeout: 60_000 });
      assert.strictEqual(refused.status, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, new RegExp(`restore: the database is busy: nourishctl backup \\(pid ${backup.pid}\\) on \\S+ from 127\\.0\\.0\\.1; not starting \\(advisory lock on 127\\.0\\.0\\.1\\)`));
      assert.ok(!databases().includes("dusangire_lockcopy"));
      const b = await backup.done;
      assert.strictEqual(b.code, 0, b.out);
      assert.strictEqual(advisory(), "", "the lock outlived the backup");

      // app-0 restores a copy (it lingers before its rename): app-1's backup waits, then runs.
      const restore = start({ ...env, BK_BEFORE_SWAP: sleeper }, ["restore", "--key", key, "--as", "dusangire_lockcopy"]);
      await holding(restore.pid);
      assert.match(advisory(), /nourishctl restore \(pid \d+\) on \S+:ExclusiveLock/);
      const waited = run("bash", [path.join(root1, NOURISHCTL_PATH), "backup"], { env: { ...env1, DB_LOCK_WAIT_SECONDS: "60" }, timeout: 120_000 });
      const r = await restore.done;
      assert.strictEqual(r.code, 0, r.out);
      assert.strictEqual(waited.status, 0, waited.stdout + waited.stderr);
      assert.match(waited.stdout + waited.stderr, new RegExp(`backup: waiting up to 60 s for: nourishctl restore \\(pid ${restore.pid}\\) on \\S+ from 127\\.0\\.0\\.1`));
      assert.strictEqual(advisory(), "");
    } finally {
      cluster.psql("DROP DATABASE IF EXISTS dusangire_lockcopy WITH (FORCE)");
      fs.rmSync(root1, { recursive: true, force: true });
    }
  });
});
