// The release rehearsal (DESIGN.md, "Interfaces" 3): the real nourishctl against real PostgreSQL,
// nginx (rendered site) and gunicorn (rendered unit) on loopback with the sample Django app.
// Each drill runs a release or a rollback, most of them under continuous load, and records what
// an operator would ask afterwards: did any request fail, how long did the switch and the
// rollback take, which release is serving, and is every acknowledged order in the database.
import { spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { GUNICORN_SERVICE_NAME, renderGunicornService } from "../../components/app/gunicorn";
import { renderNginxSite } from "../../components/app/nginx";
import { NOURISHCTL_SOURCE } from "../../components/hosts/user-data";
import { Cluster, PG_BINDIR, startAppCluster } from "../../test/pg";
import { AWS_CLI, S3, startS3 } from "../../test/s3";
import { freePort } from "../../test/tools";
import { Artifact, ArtifactName, buildArtifacts } from "./artifacts";
import { LoadResult, startLoad } from "./load";
import { get, Proc, siteSettings, sleep, startNginx, stopProcess, writeNginxConf } from "./loopback";

const DOMAIN = "app.nourishlink.test";
const BUCKET = "nourish-link-rehearsal-backups";

export interface Drill {
  name: string;
  description: string;
  passed: boolean;
  /** Why it did not pass; empty when it did. */
  problems: string[];
  expected: { exit: "ok" | "fails"; serving: string };
  exitCode: number;
  /** nourishctl's last line (its one-line reason on failure). */
  said: string;
  serving: string;
  /** The newest applied migration of the app `meals` afterwards. */
  mealsMigration: string;
  requestsSent: number;
  requestsFailed: number;
  byStatus: Record<string, number>;
  ordersAcknowledged: number;
  ordersMissing: number;
  /** `release switch` from start to finish: new gunicorn up, health gate, switch, verify, old one drained. */
  switchSeconds?: number;
  /** From the start of the rollback until the previous release serves again. */
  rollbackSeconds?: number;
  /** The whole rollback, including stopping the failed release and reversing its migrations. */
  rollbackTotalSeconds?: number;
  stepSeconds: Record<string, number>;
  /** A restore's database kept aside, and the orders in it the restored one lacks (taken after the backup). */
  keptDatabase?: string;
  ordersOnlyInKeptDatabase?: number;
}

export interface Report {
  startedAt: string;
  seconds: number;
  passed: boolean;
  drills: Drill[];
}

interface Ran { code: number; stdout: string; stderr: string; seconds: number }

/** Runs nourishctl without blocking the event loop (the load generator shares it). */
function ctl(env: NodeJS.ProcessEnv, args: string[]): Promise<Ran> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn("bash", [NOURISHCTL_SOURCE, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
  });
}

const lastLine = (r: Ran) => (r.stderr.trim() || r.stdout.trim()).split("\n").pop() ?? "";
const round = (s: number) => Math.round(s * 100) / 100;

export interface RehearsalOptions {
  log?: (line: string) => void;
  /** Keep the sandbox (for debugging); it is removed otherwise. */
  keep?: boolean;
}

export async function rehearse(o: RehearsalOptions = {}): Promise<Report> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-rehearsal-"));
  // The database cluster runs as the postgres OS user, which must reach the backup directory.
  fs.chmodSync(dir, 0o755);
  let cluster: Cluster | undefined;
  let s3: S3 | undefined;
  let nginx: Proc | undefined;
  const appRoot = path.join(dir, "app");
  const dbRoot = path.join(dir, "db");
  let appEnv: NodeJS.ProcessEnv = {};
  try {
    const artifacts = new Map(buildArtifacts(path.join(dir, "artifacts")).map((a) => [a.name, a]));
    const art = (name: ArtifactName): Artifact => artifacts.get(name) ?? (() => { throw new Error(`no artifact ${name}`); })();
    const password = randomBytes(18).toString("base64url");
    cluster = await startAppCluster({ appPassword: password });
    s3 = await startS3({ buckets: [BUCKET] });
    const port = await freePort();
    const srv = path.join(appRoot, "srv/nourish-link");
    for (const d of ["etc/nourish-link", "etc/systemd/system", "run/nourish-link", "srv/nourish-link/releases", "srv/nourish-link/shared/static", "srv/nourish-link/shared/media"]) {
      fs.mkdirSync(path.join(appRoot, d), { recursive: true });
    }
    const envFile = (file: string, vars: Record<string, string>) =>
      fs.writeFileSync(file, Object.entries(vars).map(([k, v]) => `${k}='${v.replace(/'/g, "'\\''")}'\n`).join(""), { mode: 0o600 });
    envFile(path.join(appRoot, "etc/nourish-link/host.env"), {
      ROLE: "app", DOMAIN, HEALTH_PATH: "/health/", KEEP_RELEASES: "3", TLS: "alb", APP_LOCAL_URL: `http://127.0.0.1:${port}`, VERIFY_CHECKS: "5",
    });
    envFile(path.join(appRoot, "etc/nourish-link/app.env"), {
      DJANGO_SETTINGS_MODULE: "dusangire.settings", DJANGO_ALLOWED_HOSTS: DOMAIN, DJANGO_SECRET_KEY: randomBytes(40).toString("base64url"),
      DATABASE_HOST: "127.0.0.1", DATABASE_PORT: String(cluster.port), DATABASE_NAME: "dusangire", DATABASE_USER: "dusangire",
      DATABASE_PASSWORD: password, DATABASE_SSLMODE: "require",
      STATIC_ROOT: path.join(srv, "shared/static"), MEDIA_ROOT: path.join(srv, "shared/media"),
    });
    fs.writeFileSync(path.join(appRoot, "etc/systemd/system", GUNICORN_SERVICE_NAME), renderGunicornService({
      workers: 3, releasesDir: path.join(srv, "releases"), runDir: path.join(appRoot, "run/nourish-link"),
      envFile: path.join(appRoot, "etc/nourish-link/app.env"), gracefulTimeoutSeconds: 10,
    }));
    // nginx exactly as rendered for the hosts (ALB mode), its paths moved into the sandbox.
    const site = siteSettings(path.join(dir, "nginx"), DOMAIN, {
      tls: undefined, listenHttp: `127.0.0.1:${port}`, upstream: path.join(appRoot, "run/nourish-link/app.sock"),
      staticRoot: path.join(srv, "shared/static"), mediaRoot: path.join(srv, "shared/media"),
      maintenanceRoot: path.join(dir, "nginx/maintenance"), maintenanceFlag: path.join(srv, "maintenance/on"),
    });
    fs.mkdirSync(path.join(srv, "maintenance"), { recursive: true });
    // What `nourishctl setup` leaves on a new host: the maintenance page until the first release.
    fs.writeFileSync(path.join(srv, "maintenance/on"), "first-release\n");
    nginx = await startNginx(path.join(dir, "nginx"), writeNginxConf(path.join(dir, "nginx"), renderNginxSite(site)), port, DOMAIN);

    const basePath = `${PG_BINDIR}:${path.dirname(AWS_CLI)}:${process.env.PATH}`;
    appEnv = { ...process.env, NOURISH_ROOT: appRoot, PIP_NO_INDEX: "1", PATH: basePath };
    fs.mkdirSync(path.join(dbRoot, "etc/nourish-link"), { recursive: true });
    envFile(path.join(dbRoot, "etc/nourish-link/host.env"), {
      ROLE: "db", STACK: "rehearsal", REGION: "us-east-1", DB_NAME: "dusangire", DB_USER: "dusangire", BACKUP_BUCKET: BUCKET, S3_ENDPOINT: s3.endpoint,
    });
    const dbEnv = { ...process.env, ...s3.env, NOURISH_ROOT: dbRoot, PGHOST: cluster.socketDir, PGPORT: String(cluster.port), PATH: basePath };

    const db = cluster;
    const headers = { Host: DOMAIN, "X-Forwarded-Proto": "https" };
    const serving = async () => {
      const r = await get(port, "/health/", headers).catch(() => undefined);
      return r?.status === 200 ? String(r.headers["x-release"] ?? "?") : `none (${r?.status ?? "no answer"})`;
    };
    const missingOrders = (refs: string[]): number => {
      if (refs.length === 0) return 0;
      const found = Number(db.psql(`SELECT count(*) FROM meals_order WHERE ref IN (${refs.map((r) => `'${r}'`).join(",")})`, { db: "dusangire" }).trim());
      return refs.length - found;
    };
    /** `nourishctl backup` on the db host ends with the key, as the Release component reads it. */
    const preReleaseBackup = async (): Promise<string> => {
      const r = await ctl(dbEnv, ["backup"]);
      const key = r.stdout.trim().split("\n").pop() ?? "";
      if (r.code !== 0 || !/^dumps\/daily\/db_backup_\d{8}_\d{6}\.dump$/.test(key)) throw new Error(`pre-release backup failed: ${lastLine(r)}`);
      return key;
    };
    const source = (a: Artifact) => ["--file", a.file, "--sha256", a.sha256];
    let menuItemId = 0;

    const drills: Drill[] = [];
    /** Runs `body` (the nourishctl steps) under load unless noLoad, then checks the outcome. */
    const drill = async (name: string, description: string, expected: Drill["expected"], noLoad: boolean,
      body: (d: Drill) => Promise<Ran>): Promise<Drill> => {
      log(`drill ${name}: ${description}`);
      const d: Drill = {
        name, description, passed: false, problems: [], expected, exitCode: 0, said: "", serving: "", mealsMigration: "", requestsSent: 0, requestsFailed: 0,
        byStatus: {}, ordersAcknowledged: 0, ordersMissing: 0, stepSeconds: {},
      };
      const load = noLoad ? undefined : startLoad({ url: `http://127.0.0.1:${port}`, host: DOMAIN, menuItemId });
      if (load) await sleep(1000);
      const ran = await body(d);
      if (load) await sleep(1000);
      const result: LoadResult | undefined = await load?.stop();
      d.exitCode = ran.code;
      d.said = lastLine(ran);
      d.serving = await serving();
      d.mealsMigration = db.psql("SELECT max(name) FROM django_migrations WHERE app = 'meals'", { db: "dusangire" }).trim();
      if (result) {
        d.requestsSent = result.sent;
        d.requestsFailed = result.failed;
        d.byStatus = result.byStatus;
        d.ordersAcknowledged = result.acknowledgedOrders.length;
        d.ordersMissing = missingOrders(result.acknowledgedOrders);
      }
      if ((ran.code === 0) !== (expected.exit === "ok")) d.problems.push(`nourishctl exited ${ran.code}, expected it to ${expected.exit === "ok" ? "succeed" : "fail"}: ${d.said}`);
      if (d.serving !== expected.serving) d.problems.push(`serving ${d.serving}, expected ${expected.serving}`);
      if (d.requestsFailed > 0) d.problems.push(`${d.requestsFailed} of ${d.requestsSent} requests failed: ${JSON.stringify(d.byStatus)}`);
      if (d.ordersMissing > 0) d.problems.push(`${d.ordersMissing} acknowledged orders are not in the database`);
      if (!noLoad && d.requestsSent === 0) d.problems.push("no load was sent");
      if (d.rollbackSeconds !== undefined && d.rollbackSeconds >= 5) d.problems.push(`rollback took ${d.rollbackSeconds}s (limit 5s)`);
      d.passed = d.problems.length === 0;
      log(`  ${d.passed ? "passed" : "FAILED"}: ${d.said}${d.problems.length ? `\n  ${d.problems.join("\n  ")}` : ""}`);
      drills.push(d);
      return d;
    };
    /** A whole release as the Release component runs it: one nourishctl step at a time, each timed. */
    const release = async (d: Drill, a: Artifact): Promise<Ran> => {
      const backup = await preReleaseBackup();
      let last: Ran | undefined;
      for (const step of ["fetch", "migrate", "collectstatic", "switch"]) {
        const extra = step === "fetch" ? source(a) : step === "switch" ? ["--pre-release-backup", backup] : [];
        last = await ctl(appEnv, ["release", step, a.version, ...extra]);
        d.stepSeconds[step] = round(last.seconds);
        if (last.code !== 0) break;
      }
      if (d.stepSeconds.switch !== undefined) d.switchSeconds = d.stepSeconds.switch;
      const m = /rolled back in ([0-9.]+)s|serving again ([0-9.]+)s after/.exec(last!.stderr + last!.stdout);
      if (m) {
        d.rollbackSeconds = round(Number(m[1] ?? m[2]));
        d.rollbackTotalSeconds = d.stepSeconds.switch;
      }
      return last!;
    };

    const rollback = async (d: Drill, args: string[]): Promise<Ran> => {
      const r = await ctl(appEnv, ["rollback", ...args]);
      d.rollbackTotalSeconds = round(r.seconds);
      const m = /serving again ([0-9.]+)s after/.exec(r.stdout);
      if (m) d.rollbackSeconds = round(Number(m[1]));
      return r;
    };
    const v1 = art("v1");
    const v2 = art("v2");
    await drill("first-release", `${v1.version} on a new host (maintenance page until then)`, { exit: "ok", serving: v1.version }, true,
      (d) => release(d, v1));
    menuItemId = Number(JSON.parse((await get(port, "/menu/", headers)).body)[0].id);

    await drill("upgrade-under-load", `${v1.version} → ${v2.version} (adds a field and its migration) under load`,
      { exit: "ok", serving: v2.version }, false, (d) => release(d, v2));
    await drill("bad-migration", `${art("bad-migration").version}: its second migration fails midway`,
      { exit: "fails", serving: v2.version }, false, (d) => release(d, art("bad-migration")));
    await drill("bad-health", `${art("bad-health").version}: healthy on its socket, failing behind nginx after the switch`,
      { exit: "fails", serving: v2.version }, false, (d) => release(d, art("bad-health")));
    // What `pulumi config set nourish-link:release.version 1.0.0; pulumi up` runs on the host.
    await drill("rollback", `release.version set back to ${v1.version}: the Release's steps roll ${v2.version} back, its migration reversed`,
      { exit: "ok", serving: v1.version }, false, (d) => release(d, v1));
    await drill("re-upgrade", `${v2.version} again (already installed: no fetch)`, { exit: "ok", serving: v2.version }, false, (d) => release(d, v2));
    const irr = art("irreversible");
    await drill("irreversible-release", `${irr.version}: a migration with no way back`, { exit: "ok", serving: irr.version }, false, (d) => release(d, irr));
    await drill("irreversible-rollback-refused", `nourishctl rollback from ${irr.version}: refused before touching anything`,
      { exit: "fails", serving: irr.version }, false, async (d) => {
        return rollback(d, []);
      });
    await drill("irreversible-rollback-keep-schema", `nourishctl rollback --keep-schema: ${v2.version}'s code on ${irr.version}'s schema`,
      { exit: "ok", serving: v2.version }, false, async (d) => {
        return rollback(d, [v2.version, "--keep-schema"]);
      });
    // The way back from an irreversible migration: the pre-release backup, restored on the db
    // host, then the previous release on it. Without load: a restore returns the database to the
    // backup's moment, so orders taken since then stay only in the database the restore keeps aside.
    await drill("irreversible-re-release", `${irr.version} again`, { exit: "ok", serving: irr.version }, false, (d) => release(d, irr));
    await drill("irreversible-rollback-restore", `the pre-release backup of ${irr.version} restored on the db host, then nourishctl rollback ${v2.version} --database-restored`,
      { exit: "ok", serving: v2.version }, true, async (d) => {
        const key = fs.readFileSync(path.join(srv, "releases", irr.version, ".nourish/pre-release-backup"), "utf8").trim();
        const restored = await ctl(dbEnv, ["restore", "--key", key, "--replace-live", "--yes"]);
        d.stepSeconds.restore = round(restored.seconds);
        if (restored.code !== 0) return restored;
        const kept = db.psql("SELECT datname FROM pg_database WHERE datname LIKE 'dusangire_before_restore_%' ORDER BY 1 DESC LIMIT 1").trim();
        const orders = (name: string) => Number(db.psql("SELECT count(*) FROM meals_order", { db: name }).trim());
        d.ordersOnlyInKeptDatabase = orders(kept) - orders("dusangire");
        d.keptDatabase = kept;
        return rollback(d, [v2.version, "--database-restored"]);
      });
    return { startedAt: new Date(started).toISOString(), seconds: round((Date.now() - started) / 1000), passed: drills.every((d) => d.passed), drills };
  } finally {
    // Stop every release's gunicorn the sandbox started, then the services.
    const run = path.join(appRoot, "run");
    for (const f of fs.existsSync(run) ? fs.readdirSync(run).filter((f) => f.startsWith("nourish-link-app@")) : []) {
      const pid = Number(fs.readFileSync(path.join(run, f), "utf8"));
      try { process.kill(pid, "SIGTERM"); } catch { /* already gone */ }
    }
    await stopProcess(nginx?.child);
    await s3?.stop();
    cluster?.stop();
    if (!o.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function summary(r: Report): string {
  const lines = [`release rehearsal: ${r.passed ? "PASSED" : "FAILED"} (${r.drills.length} drills, ${r.seconds}s)`, ""];
  lines.push("| drill | passed | serving | requests (failed) | orders acked (missing) | switch s | rollback s (total) |");
  lines.push("|---|---|---|---|---|---|---|");
  for (const d of r.drills) {
    lines.push(`| ${d.name} | ${d.passed ? "yes" : "NO"} | ${d.serving} | ${d.requestsSent} (${d.requestsFailed}) | ${d.ordersAcknowledged} (${d.ordersMissing}) | ${d.switchSeconds ?? "—"} | ${d.rollbackSeconds ?? "—"}${d.rollbackTotalSeconds !== undefined ? ` (${d.rollbackTotalSeconds})` : ""} |`);
  }
  lines.push("");
  for (const d of r.drills) {
    const kept = d.keptDatabase ? ` (${d.ordersOnlyInKeptDatabase} orders taken after the backup are in ${d.keptDatabase}, kept aside)` : "";
    lines.push(`- ${d.name}: ${d.description}${kept}. nourishctl: ${d.said}${d.problems.length ? ` PROBLEMS: ${d.problems.join("; ")}` : ""}`);
  }
  return lines.join("\n") + "\n";
}
