// Throwaway PostgreSQL 15 clusters for tests: initdb in a temp dir, a free loopback port, run as
// an unprivileged OS user (postgres refuses to run as root, and the tests run as root).
// A missing binary fails the test, naming the Debian package; nothing is skipped.
import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PostgresSizing, renderPgHba, renderPgIdent, renderPostgresqlConf } from "../components/database/postgresql";
import { record, timed } from "./timing";
import { freePort, selfSignedCert } from "./tools";

/** Debian's postgresql-15 layout; PG_BINDIR overrides it. */
export const PG_BINDIR = process.env.PG_BINDIR ?? "/usr/lib/postgresql/15/bin";
/**
 * The OS user clusters run as. Debian's postgresql package creates `postgres`; using it keeps
 * the production pg_hba.conf rule `local all postgres peer` testable as-is.
 */
export const PG_OS_USER = process.env.PG_OS_USER ?? "postgres";

export interface Exec { status: number | null; stdout: string; stderr: string }

function exec(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): Exec {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 180_000, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export function pgBin(name: string): string {
  const p = path.join(PG_BINDIR, name);
  assert.ok(fs.existsSync(p), `${p} is missing: apt-get install -y postgresql (PostgreSQL 15; scripts/workstation/debian-packages.txt)`);
  return p;
}

/** The unprivileged OS user's uid/gid, creating it as a system user if it is missing. */
export function pgOsUser(): { name: string; uid: number; gid: number } {
  let id = exec("id", ["-u", PG_OS_USER]);
  if (id.status !== 0) {
    const add = exec("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER]);
    assert.strictEqual(add.status, 0, `cannot create the unprivileged user ${PG_OS_USER}: ${add.stderr}`);
    id = exec("id", ["-u", PG_OS_USER]);
  }
  const gid = exec("id", ["-g", PG_OS_USER]);
  return { name: PG_OS_USER, uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}


export interface StartOptions {
  /** postgresql.conf text, written to conf.d/test.conf (after the harness defaults, so it wins). */
  conf?: string;
  /** Replaces the pg_hba.conf initdb wrote. */
  hba?: string;
  /** Extra files, relative to the cluster's root dir, owned by the OS user, mode 0600. */
  files?: Record<string, string>;
}

export interface Cluster {
  port: number;
  /** Temp dir owned by the OS user: holds data/, the socket, server.log and any files. */
  root: string;
  dataDir: string;
  /** Unix socket directory, for host= in a connection string. */
  socketDir: string;
  os: { name: string; uid: number; gid: number };
  /** Write a file under root (or an absolute path), owned by the OS user. Returns its path. */
  writeFile(rel: string, content: string, mode?: number): string;
  /** chown a path to the OS user. */
  own(p: string): void;
  /** Run a command as the OS user, in root (180 s unless `timeout` says otherwise, in ms): CI is slow and shared. */
  asUser(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number }): Exec;
  /** `postgres -C <param>`: the value the server would use, from its config files, without starting. */
  showConfig(param: string): string;
  start(opts?: StartOptions): void;
  /** psql as the postgres superuser over the Unix socket; throws with stderr on failure. */
  psql(sql: string, opts?: { db?: string; user?: string }): string;
  /** Server log so far (for failure messages). */
  log(): string;
  /** Stop (fast) and delete the temp dir. Safe to call twice. */
  stop(): void;
}

const SUPERUSER = "postgres";

// Clusters not yet stopped; stopped on exit too, so an aborted run (Ctrl-C, a crash between
// hooks) does not leave servers and temp dirs behind.
const live = new Set<Cluster>();
let exitHook = false;
function track(c: Cluster): void {
  live.add(c);
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => { for (const x of [...live]) x.stop(); });
  }
}

/** Every cluster is initdb'd with these: a copy of one data directory is as good as a new one. */
const INITDB_ARGS = ["-U", SUPERUSER, "--auth-local=peer", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"];

/**
 * Starts initdb of a template data directory in `dir` (owned by the OS user) without waiting:
 * `dir/READY` appears when it succeeded, `dir/FAILED` (initdb's stderr) when it did not.
 * The suite's global fixture (test/fixtures.ts) makes one per run and names it in NL_PG_TEMPLATE.
 */
export function initTemplate(dir: string): void {
  const user = pgOsUser();
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, user.uid, user.gid);
  const start = Date.now();
  const child = spawn("runuser", ["-u", user.name, "--", pgBin("initdb"), "-D", path.join(dir, "data"), ...INITDB_ARGS], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  child.on("error", (e) => fs.writeFileSync(path.join(dir, "FAILED"), String(e)));
  child.on("exit", (code) => {
    record("pg.initdb", start, "template");
    fs.writeFileSync(path.join(dir, code === 0 ? "READY" : "FAILED"), code === 0 ? "" : `initdb failed (${code}): ${stderr}`);
  });
}

let processTemplate: string | undefined;
/** The template's data directory: the run's (NL_PG_TEMPLATE), else one this process makes once. */
async function templateDataDir(): Promise<string> {
  let dir = process.env.NL_PG_TEMPLATE;
  if (!dir || !fs.existsSync(dir)) {
    if (!processTemplate) {
      const made = fs.mkdtempSync(path.join(os.tmpdir(), "nlpg-template-"));
      process.once("exit", () => fs.rmSync(made, { recursive: true, force: true }));
      initTemplate(made);
      processTemplate = made;
    }
    dir = processTemplate;
  }
  for (const end = Date.now() + 180_000; !fs.existsSync(path.join(dir, "READY")); await new Promise((r) => setTimeout(r, 50))) {
    if (fs.existsSync(path.join(dir, "FAILED"))) assert.fail(fs.readFileSync(path.join(dir, "FAILED"), "utf8"));
    if (Date.now() > end) assert.fail(`the template cluster in ${dir} was not ready within 180 s`);
  }
  return path.join(dir, "data");
}

/**
 * A new cluster (not started): a copy of the template data directory, which is what initdb with the
 * same arguments would write, without its seconds of CPU. Call start() to run it, stop() in an after hook.
 * `initdbOptions`: more initdb options (the db host's createcluster.conf initdb_options); a cluster
 * with its own options is initdb'd, not copied.
 */
export async function createCluster(initdbOptions: string[] = []): Promise<Cluster> {
  const pgCtl = pgBin("pg_ctl");
  const postgres = pgBin("postgres");
  const psqlBin = pgBin("psql");
  const user = pgOsUser();
  const port = await freePort();
  // Short path: Unix socket paths are limited to ~107 bytes.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nlpg-"));
  fs.chownSync(root, user.uid, user.gid);
  const dataDir = path.join(root, "data");
  let running = false;
  let removed = false;

  const asUser = (cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): Exec =>
    exec("runuser", ["-u", user.name, "--", cmd, ...args], { cwd: root, env: { ...process.env, ...opts.env }, input: opts.input, timeout: opts.timeout ?? 180_000 });
  const own = (p: string): void => fs.chownSync(p, user.uid, user.gid);
  const writeFile = (rel: string, content: string, mode = 0o600): string => {
    const p = path.isAbsolute(rel) ? rel : path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content, { mode });
    fs.chmodSync(p, mode);
    own(p);
    return p;
  };
  const log = (): string => {
    try { return fs.readFileSync(path.join(root, "server.log"), "utf8"); } catch { return ""; }
  };

  const made = initdbOptions.length
    ? timed("pg.initdb", () => asUser(pgBin("initdb"), ["-D", dataDir, ...INITDB_ARGS, ...initdbOptions]))
    // -a keeps the OS user as owner and the 0700 mode postgres insists on.
    : await templateDataDir().then((template) => timed("pg.copy", () => exec("cp", ["-a", template, dataDir])));
  if (made.status !== 0) {
    fs.rmSync(root, { recursive: true, force: true });
    assert.fail(`${initdbOptions.length ? `initdb ${initdbOptions.join(" ")}` : "copying the template cluster"} failed (${made.status}): ${made.stderr}`);
  }
  // Harness defaults first, then conf.d (where tests put the config under test) overrides them.
  fs.appendFileSync(path.join(dataDir, "postgresql.conf"), [
    "",
    "# test harness",
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${root}'`,
    "fsync = off",
    "include_dir = 'conf.d'",
    "",
  ].join("\n"));
  fs.mkdirSync(path.join(dataDir, "conf.d"), { mode: 0o700 });
  own(path.join(dataDir, "conf.d"));

  const cluster: Cluster = {
    port, root, dataDir, socketDir: root, os: user, writeFile, own, asUser, log,
    showConfig(param) {
      const r = asUser(postgres, ["-D", dataDir, "-C", param]);
      assert.strictEqual(r.status, 0, `postgres -C ${param} failed: ${r.stderr}`);
      return r.stdout.trim();
    },
    start(opts = {}) {
      for (const [rel, content] of Object.entries(opts.files ?? {})) writeFile(rel, content);
      if (opts.conf !== undefined) writeFile(path.join(dataDir, "conf.d", "test.conf"), opts.conf);
      if (opts.hba !== undefined) writeFile(path.join(dataDir, "pg_hba.conf"), opts.hba);
      // -w waits until the server accepts connections (pg_ctl polls postmaster.pid and pings).
      const r = timed("pg.start", () => asUser(pgCtl, ["-D", dataDir, "-l", path.join(root, "server.log"), "-w", "-t", "30", "start"]));
      if (r.status !== 0) assert.fail(`pg_ctl start failed (${r.status}): ${r.stderr}\n--- server.log ---\n${log()}`);
      running = true;
    },
    psql(sql, opts = {}) {
      const r = asUser(psqlBin, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", root, "-p", String(port),
        "-U", opts.user ?? SUPERUSER, "-d", opts.db ?? "postgres", "-c", sql]);
      if (r.status !== 0) throw new Error(`psql failed (${r.status}) on ${JSON.stringify(sql)}: ${r.stderr}`);
      return r.stdout.trim();
    },
    stop() {
      live.delete(cluster);
      if (running) {
        running = false;
        const r = timed("pg.stop", () => asUser(pgCtl, ["-D", dataDir, "-m", "fast", "-w", "-t", "30", "stop"]));
        // Last resort, so a stuck server never outlives the test run.
        if (r.status !== 0) asUser(pgCtl, ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
      }
      if (!removed) {
        removed = true;
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
  };
  track(cluster);
  return cluster;
}

/** createCluster + start. */
export async function startCluster(opts: StartOptions = {}): Promise<Cluster> {
  const c = await createCluster();
  try {
    c.start(opts);
  } catch (e) {
    c.stop();
    throw e;
  }
  return c;
}

export interface AppClusterOptions {
  /** Password of the app role `dusangire`. */
  appPassword: string;
  sizing?: PostgresSizing;
  slowQueryMs?: number;
  /** More postgresql.conf, rendered once the cluster's paths are known (archiving, for PITR). */
  extraConf?: (cluster: Cluster) => string;
  /** The app's database and role (default `dusangire` both), rendered into pg_hba.conf and created. */
  names?: { database: string; user: string };
  /** More initdb options (createCluster). */
  initdbOptions?: string[];
}

/**
 * A cluster running the rendered postgresql.conf snippet and pg_hba.conf, as the database host
 * does, with TLS on and the app role and database `dusangire` created.
 */
export async function startAppCluster(o: AppClusterOptions): Promise<Cluster> {
  const names = o.names ?? { database: "dusangire", user: "dusangire" };
  const cluster = await createCluster(o.initdbOptions);
  const { cert, key } = selfSignedCert(cluster.root, "localhost");
  // postgres refuses a key readable by others or not owned by it.
  fs.chmodSync(key, 0o600);
  cluster.own(key);
  cluster.own(cert);
  cluster.start({
    conf: renderPostgresqlConf({
      sizing: o.sizing ?? { vcpus: 2, memoryMib: 2048 }, slowQueryMs: o.slowQueryMs ?? 500, port: cluster.port,
      listenAddresses: "127.0.0.1", sslCertFile: cert, sslKeyFile: key,
    }) + (o.extraConf?.(cluster) ?? ""),
    hba: renderPgHba({ ...names, appCidrs: ["127.0.0.1/32"] }),
    files: { "data/pg_ident.conf": renderPgIdent({ user: names.user }) },
  });
  // Over the Unix socket as the postgres OS user: the rendered `local all postgres peer` line.
  // Quoted: the names are identifiers the renderer accepted, a keyword such as "all" included.
  cluster.psql(`CREATE ROLE "${names.user}" LOGIN PASSWORD '${o.appPassword.replace(/'/g, "''")}'`);
  cluster.psql(`CREATE DATABASE "${names.database}" OWNER "${names.user}"`);
  return cluster;
}

/**
 * A function the app's role can plant, `public.nl_plant(what)`: it logs who ran it (`nl_plant
 * WHAT ran as ROLE (superuser: t|f)` in the server log) and, only when its caller is a superuser,
 * runs a shell command (COPY TO PROGRAM) that creates `marker`. `sql` creates it (run it after
 * `SET ROLE <app role>`); `dispose` removes the marker's directory.
 */
export function superuserProbe(): { marker: string; sql: string; dispose: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-plant-"));
  fs.chmodSync(dir, 0o777);
  const marker = path.join(dir, "ran-as-superuser");
  const sql = `CREATE FUNCTION public.nl_plant(what text) RETURNS boolean LANGUAGE plpgsql AS $f$
      DECLARE su boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
      BEGIN
        RAISE WARNING 'nl_plant % ran as % (superuser: %)', what, current_user, su;
        IF su THEN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'cat > ${marker}'); END IF;
        RETURN true;
      END $f$;`;
  return { marker, sql, dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
