// One app host and one db host on loopback, as the rehearsal and the switch benchmark need them:
// the real nourishctl in two sandbox roots, a real PostgreSQL 15 (rendered configuration, TLS),
// s3rver for the db host's backups, nginx with the rendered site (ALB mode) in front of the
// sandbox's socket, and the rendered gunicorn unit. Nothing is deployed yet: the app host shows
// the maintenance page, as `nourishctl setup` leaves a new host.
import { spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { contractAppEnv } from "../../components/app/contract";
import { GUNICORN_SERVICE_NAME, renderGunicornService } from "../../components/app/gunicorn";
import { renderNginxSite } from "../../components/app/nginx";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_SOURCE } from "../../components/hosts/user-data";
import { toolingObjects } from "../../components/hosts/tooling";
import { DocumentParams, renderDocument, substitute } from "../../components/release/document";
import { RELEASE_SOURCE_PATH, renderReleaseSource } from "../../components/release/source";
import { toolingHash } from "../../components/release/steps";
import { renderEnvFile } from "../../components/hosts/env-file";
import { Cluster, PG_BINDIR, startAppCluster } from "../../test/pg";
import { AWS_CLI, S3, startS3 } from "../../test/s3";
import { freePort } from "../../test/tools";
import { Artifact, ArtifactName, buildArtifacts } from "./artifacts";
import { get, Proc, siteSettings, startNginx, stopProcess, writeNginxConf } from "./loopback";

export const DOMAIN = "app.nourishlink.test";
const BUCKET = "nourish-link-rehearsal-backups";
const TOOLING_BUCKET = "nourish-link-rehearsal-tooling";
const RELEASES_BUCKET = "nourish-link-rehearsal-releases";
/** "Prod's" backup bucket, which the restore rehearsal reads (REHEARSAL_SOURCE_BUCKET of the db host). */
export const PROD_BUCKET = "nourish-link-rehearsal-prod-backups";
/** What the rehearsal scrubs before the app sees prod's data. */
export const SCRUB_COLUMNS = "meals_subscription.family_name";
/** The stack's SSM document, as rendered for the rehearsal's tooling bucket. */
const DOCUMENT = renderDocument({ toolingBucket: TOOLING_BUCKET, region: "us-east-1", timeoutSeconds: 1800 });

export interface Ran { code: number; stdout: string; stderr: string; seconds: number }

/** Runs nourishctl directly from the repository, without blocking the event loop (a load generator may share it). */
export function ctlDirect(env: NodeJS.ProcessEnv, args: string[]): Promise<Ran> {
  return spawnTimed(env, "bash", [NOURISHCTL_SOURCE, ...args]);
}

/**
 * What SSM runs for a nourishctl invocation of a release, rollback or restore: the document's
 * parameters for `args` (documentParamsFor), substituted into the rendered document's script as
 * SSM does, run by bash in the host's sandbox root against the tooling the document installed
 * there. So the drills exercise the exact text the stack's SSM document carries.
 */
export function ctl(env: NodeJS.ProcessEnv, args: string[]): Promise<Ran> {
  const source = releaseSourceFor(args);
  if (source !== undefined) fs.writeFileSync(path.join(env.NOURISH_ROOT!, RELEASE_SOURCE_PATH), source, { mode: 0o644 });
  return spawnTimed(env, "bash", ["-c", substitute(DOCUMENT, documentParamsFor(args))]);
}

/**
 * For `release fetch VERSION --file F --sha256 H`: the release source `pulumi up` with that
 * release would have installed with the tooling, naming the object the rehearsal uploaded F as,
 * in its local S3. The document itself carries the version only.
 */
export function releaseSourceFor(args: string[]): string | undefined {
  const [verb, step, version, ...rest] = args;
  if (verb !== "release" || step !== "fetch") return undefined;
  const opt = (name: string) => { const i = rest.indexOf(name); return i >= 0 ? rest[i + 1] : undefined; };
  const file = opt("--file");
  if (!file) throw new Error(`the rehearsal releases its own artifacts: nourishctl ${args.join(" ")} names no --file`);
  return renderReleaseSource(version, { type: "s3", bucket: RELEASES_BUCKET, key: path.basename(file), sha256: opt("--sha256") ?? "" });
}

/** The document parameters of a nourishctl argv the Release or an operator sends. */
export function documentParamsFor(args: string[]): DocumentParams {
  const [verb, ...rest] = args;
  const opt = (name: string) => { const i = rest.indexOf(name); return i >= 0 ? rest[i + 1] : undefined; };
  const fail = () => { throw new Error(`the SSM document has no verb for nourishctl ${args.join(" ")}`); };
  if (verb === "backup" && rest.length === 0) return { verb: "backup" };
  if (verb === "release") {
    const [step, version] = rest;
    if (step === "fetch") return { verb: "release-fetch", version };
    if (step === "switch") return { verb: "release-switch", version, backupKey: opt("--pre-release-backup") ?? "" };
    if (step === "migrate" || step === "collectstatic" || step === "verify") return { verb: `release-${step}`, version };
    return fail();
  }
  if (verb === "rollback") {
    if (rest.length === 0) return { verb: "rollback" };
    if (rest.length === 1) return { verb: "rollback", version: rest[0] };
    if (rest[1] === "--keep-schema") return { verb: "rollback-keep-schema", version: rest[0] };
    if (rest[1] === "--database-restored") return { verb: "rollback-database-restored", version: rest[0] };
    return fail();
  }
  if (verb === "restore" && rest.includes("--replace-live") && rest.includes("--yes")) return { verb: "restore-replace-live", backupKey: opt("--key") ?? "" };
  if (verb === "restore-rehearsal") return { verb: "restore-rehearsal", backupKey: opt("--key") ?? "", sha256: opt("--sha256") ?? "" };
  if (verb === "restore-rehearsal-verify" && rest.length === 0) return { verb: "restore-rehearsal-verify" };
  return fail();
}

function spawnTimed(env: NodeJS.ProcessEnv, cmd: string, args: string[]): Promise<Ran> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
  });
}

export const lastLine = (r: Ran) => (r.stderr.trim() || r.stdout.trim()).split("\n").pop() ?? "";

export interface LoopbackHosts {
  dir: string;
  /** The app host's sandbox root, and its /srv/nourish-link. */
  appRoot: string;
  srv: string;
  /** nginx's port on 127.0.0.1. */
  port: number;
  appEnv: NodeJS.ProcessEnv;
  dbEnv: NodeJS.ProcessEnv;
  db: Cluster;
  art(name: ArtifactName): Artifact;
  /** The release answering the health URL through nginx, or why none does. */
  serving(): Promise<string>;
  /** How many of these acknowledged order refs the database lacks. */
  missingOrders(refs: string[]): number;
  /** `nourishctl backup` on the db host; returns the key it prints last. */
  preReleaseBackup(): Promise<string>;
  stop(keep?: boolean): Promise<void>;
}

/** `artifacts`: more release tarballs (`npm run artifact`'s) the releases bucket holds beside the rehearsal's, for `release fetch V --file F`. */
export async function startLoopbackHosts(o: { artifacts?: string[] } = {}): Promise<LoopbackHosts> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-rehearsal-"));
  // The database cluster runs as the postgres OS user, which must reach the backup directory.
  fs.chmodSync(dir, 0o755);
  let cluster: Cluster | undefined;
  let s3: S3 | undefined;
  let nginx: Proc | undefined;
  const appRoot = path.join(dir, "app");
  const dbRoot = path.join(dir, "db");
  const stop = async (keep = false) => {
    // Stop every release's gunicorn the sandbox started, then the services.
    const run = path.join(appRoot, "run");
    for (const f of fs.existsSync(run) ? fs.readdirSync(run).filter((f) => f.startsWith("nourish-link-app@")) : []) {
      const pid = Number(fs.readFileSync(path.join(run, f), "utf8"));
      try { process.kill(pid, "SIGTERM"); } catch { /* already gone */ }
    }
    await stopProcess(nginx?.child);
    await s3?.stop();
    cluster?.stop();
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const artifacts = new Map(buildArtifacts(path.join(dir, "artifacts")).map((a) => [a.name, a]));
    const art = (name: ArtifactName): Artifact => artifacts.get(name) ?? (() => { throw new Error(`no artifact ${name}`); })();
    const password = randomBytes(18).toString("base64url");
    cluster = await startAppCluster({ appPassword: password });
    s3 = await startS3({ buckets: [BUCKET, TOOLING_BUCKET, RELEASES_BUCKET, PROD_BUCKET] });
    // The tooling as the stack uploads it, and the artifacts where the Release would fetch them:
    // staged as the buckets' trees, one `aws s3 cp --recursive` each (not a CLI start-up per object).
    const upload = (tree: string, bucket: string) => {
      const r = s3!.aws(["s3", "cp", "--only-show-errors", "--recursive", tree, `s3://${bucket}/`]);
      if (r.status !== 0) throw new Error(`cannot upload ${tree} to ${bucket}: ${r.stderr}`);
    };
    const stage = (tree: string, key: string, content: Buffer | string) => {
      fs.mkdirSync(path.dirname(path.join(tree, key)), { recursive: true });
      fs.writeFileSync(path.join(tree, key), content);
    };
    for (const o of toolingObjects()) stage(path.join(dir, "upload/tooling"), o.key, o.content);
    for (const file of [...[...artifacts.values()].map((a) => a.file), ...(o.artifacts ?? [])]) stage(path.join(dir, "upload/releases"), path.basename(file), fs.readFileSync(file));
    upload(path.join(dir, "upload/tooling"), TOOLING_BUCKET);
    upload(path.join(dir, "upload/releases"), RELEASES_BUCKET);
    // No cloud-init runs here: the document's wait for first boot finds it done.
    fs.mkdirSync(path.join(dir, "bin"));
    fs.writeFileSync(path.join(dir, "bin/cloud-init"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const port = await freePort();
    const srv = path.join(appRoot, "srv/nourish-link");
    for (const d of ["etc/nourish-link", "etc/systemd/system", "run/nourish-link", "srv/nourish-link/releases", "srv/nourish-link/shared/static", "srv/nourish-link/shared/media"]) {
      fs.mkdirSync(path.join(appRoot, d), { recursive: true });
    }
    const envFile = (file: string, vars: Record<string, string>) => fs.writeFileSync(file, renderEnvFile(file, vars), { mode: 0o600 });
    envFile(path.join(appRoot, "etc/nourish-link/host.env"), {
      ROLE: "app", DOMAIN, HEALTH_PATH: "/health/", KEEP_RELEASES: "3", TLS: "alb", APP_LOCAL_URL: `http://127.0.0.1:${port}`, VERIFY_CHECKS: "5",
    });
    // The app's environment as the hosts write it (the app contract), pointed at the loopback services.
    envFile(path.join(appRoot, "etc/nourish-link/app.env"), contractAppEnv({
      DJANGO_SETTINGS_MODULE: "dusangire.settings", DJANGO_ALLOWED_HOSTS: DOMAIN, DJANGO_SECRET_KEY: randomBytes(40).toString("base64url"),
      DATABASE_HOST: "127.0.0.1", DATABASE_PORT: String(cluster.port), DATABASE_NAME: "dusangire", DATABASE_USER: "dusangire",
      DATABASE_PASSWORD: password, DATABASE_SSLMODE: "require", PGCHANNELBINDING: "require",
      STATIC_ROOT: path.join(srv, "shared/static"), MEDIA_ROOT: path.join(srv, "shared/media"),
    }));
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

    const basePath = `${path.join(dir, "bin")}:${PG_BINDIR}:${path.dirname(AWS_CLI)}:${process.env.PATH}`;
    // S3_ENDPOINT: the document's and nourishctl's aws calls go to the local S3; NOURISH_LIB: the
    // libraries the document installed in the sandbox root (a host's /usr/local/lib/nourish-link).
    const appEnv: NodeJS.ProcessEnv = {
      ...process.env, ...s3.env, S3_ENDPOINT: s3.endpoint, NOURISH_ROOT: appRoot, NOURISH_LIB: path.join(appRoot, NOURISHCTL_LIB_PATH), PIP_NO_INDEX: "1", PATH: basePath,
    };
    fs.mkdirSync(path.join(dbRoot, "etc/nourish-link"), { recursive: true });
    envFile(path.join(dbRoot, "etc/nourish-link/host.env"), {
      ROLE: "db", STACK: "rehearsal", REGION: "us-east-1", DB_NAME: "dusangire", DB_USER: "dusangire", BACKUP_BUCKET: BUCKET, S3_ENDPOINT: s3.endpoint,
      REHEARSAL_SOURCE_BUCKET: PROD_BUCKET, REHEARSAL_SCRUB_COLUMNS: SCRUB_COLUMNS,
    });
    const dbEnv = {
      ...process.env, ...s3.env, S3_ENDPOINT: s3.endpoint, NOURISH_ROOT: dbRoot, NOURISH_LIB: path.join(dbRoot, NOURISHCTL_LIB_PATH),
      PGHOST: cluster.socketDir, PGPORT: String(cluster.port), PATH: basePath,
    };
    // Each host's first release step: the tooling installed through the document, as on a host.
    for (const [role, env] of [["app", appEnv], ["db", dbEnv]] as const) {
      const r = await spawnTimed(env, "bash", ["-c", substitute(DOCUMENT, { verb: "tooling-install", toolingHash: toolingHash() })]);
      if (r.code !== 0) throw new Error(`tooling-install on the ${role} host failed: ${lastLine(r)}`);
    }

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
    return { dir, appRoot, srv, port, appEnv, dbEnv, db, art, serving, missingOrders, preReleaseBackup, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
