// The release as a plan of steps: which host runs which nourishctl verb (a verb of the stack's
// SSM document, document.ts), after which other steps, re-run on which triggers. Pure (no
// Pulumi): the Release component turns each step into a command resource; tests read the plan.
//
//   tooling-install   every host: this tooling version from the bucket, checked by SHA-256
//   create-app-role   managed database only: the first app host, as RDS's master user
//   backup            db host (managed database: the first app host), its key printed last
//   fetch             every app host, after the backup
//   migrate           the first app host only, after every fetch
//   collectstatic     every app host, after the migration
//   switch            app-0 after every collectstatic, then app-1 after app-0, …
//   verify            every app host, after every switch
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_PATH, roleLibs } from "../hosts/user-data";
import { DocumentParams } from "./document";
import { RELEASE_SOURCE_PATH, RELEASE_SOURCE_TOOLING_FILE, renderReleaseSource } from "./source";

/** The host tooling: nourishctl and its verb library (lib/*.sh). */
export const TOOLING_DIR = path.resolve(__dirname, "..", "..", "scripts", "host");

export type Artifact =
  | { type: "s3"; bucket: string; key: string; sha256: string }
  | { type: "git"; url: string; commit: string; tag?: string };

export type StepKind = "tooling-install" | "create-app-role" | "backup" | "fetch" | "migrate" | "collectstatic" | "switch" | "verify";

export interface ReleaseHost {
  /** Unique in the release: "db", "app-0", "app-1", … */
  name: string;
  role: "app" | "db";
}

export interface Step {
  /** The resource name. */
  name: string;
  kind: StepKind;
  host: ReleaseHost;
  /** Names of the steps that must have succeeded first. */
  dependsOn: string[];
  /** The document's parameters; `backupKey` is the pre-release backup (the switch passes it on). */
  params: (backupKey: string) => DocumentParams;
  /** What re-runs the step when it changes (the host's instance id is added by the component). */
  triggers: string[];
  /** Output of tools that are not ours (pip, git, Django): kept secret in the state. */
  chatty: boolean;
}

export interface ReleaseSpec {
  prefix: string;
  version: string;
  artifact: Artifact;
  /**
   * The db host (none with a managed database), then the app hosts in order: the first app host
   * migrates and switches first, and takes the pre-release backup when there is no db host.
   */
  hosts: ReleaseHost[];
  /** Default: the repository's scripts/host. */
  toolingDir?: string;
}

/** Single-quotes a word for a POSIX shell. */
export function shq(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Every regular file under `dir`, as paths relative to it, sorted (the same order on every machine). */
function filesUnder(dir: string, rel = ""): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) return filesUnder(dir, p);
      return e.isFile() ? [p] : [];
    });
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/**
 * A file a tooling version carries besides scripts/host: what the stack renders for its hosts
 * (the release source), at `rel` in the version and `target` on the hosts of `roles`.
 */
export interface GeneratedFile { rel: string; content: string; target: string; roles: ("app" | "db")[] }

/** What the stack adds to its tooling: the app hosts' release source (source.ts). */
export function stackToolingFiles(release: { version: string; artifact: Artifact }): GeneratedFile[] {
  return [{ rel: RELEASE_SOURCE_TOOLING_FILE, content: renderReleaseSource(release.version, release.artifact), target: RELEASE_SOURCE_PATH, roles: ["app"] }];
}

/** `sha256sum` lines ("<hex>  <path>") for every file of the tooling directory, then the generated ones. */
export function toolingManifest(dir = TOOLING_DIR, generated: GeneratedFile[] = []): string[] {
  return [
    ...filesUnder(dir).map((rel) => `${sha256(fs.readFileSync(path.join(dir, rel)))}  ${rel}`),
    ...generated.map((g) => `${sha256(g.content)}  ${g.rel}`),
  ];
}

/** The tooling's content hash: SHA-256 over every file of scripts/host and the generated ones (names and bytes). */
export function toolingHash(dir = TOOLING_DIR, generated: GeneratedFile[] = []): string {
  return sha256(toolingManifest(dir, generated).join("\n") + "\n");
}

/** The tooling a host of `role` gets: the CLI, the verb libraries that serve its role, the generated files for it. */
export function toolingFilesFor(role: "app" | "db", dir = TOOLING_DIR, generated: GeneratedFile[] = []): { source: string; target: string; mode: string }[] {
  const libs = roleLibs(role, path.join(dir, "lib"));
  return [
    ...libs.map((f) => ({ source: `lib/${f}`, target: `${NOURISHCTL_LIB_PATH}/${f}`, mode: "0644" })),
    ...generated.filter((g) => g.roles.includes(role)).map((g) => ({ source: g.rel, target: g.target, mode: "0644" })),
    // The CLI last: it sources the libraries, so a new CLI never meets old ones.
    { source: "nourishctl", target: NOURISHCTL_PATH, mode: "0755" },
  ];
}

/** What identifies the artifact: its checksum, or the git URL and commit. */
export function artifactId(artifact: Artifact): string {
  return artifact.type === "s3" ? `sha256:${artifact.sha256}` : `git:${artifact.url}#${artifact.commit}`;
}

/** The triggers of every release step: a new version, artifact or tooling runs them all again. */
export function releaseTriggers(version: string, artifact: Artifact, tooling: string): string[] {
  return [`version:${version}`, `artifact:${artifactId(artifact)}`, `tooling:${tooling}`];
}

/**
 * The pre-release backup's key: the last line `nourishctl backup` prints. Anything else (an
 * empty output, a sentence) means the verb broke its contract, and the release stops here.
 */
export function backupKeyFrom(stdout: string | undefined): string {
  const last = (stdout ?? "").split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? "";
  // The whole key as nourishctl backup writes it (BK_KEY_RE in scripts/host/lib/backup.sh).
  if (!/^dumps\/(daily|monthly)\/db_backup_\d{8}_\d{6}\.(dump|sqlite3)$/.test(last)) {
    throw new Error(`release: 'nourishctl backup' on the database host must print the backup's key as its last line, got ${JSON.stringify(last.slice(0, 80))}`);
  }
  return last;
}

/** The whole release, in the order its steps run. */
export function releasePlan(spec: ReleaseSpec): Step[] {
  // The tooling version carries the release source: a new version or artifact is a new tooling hash.
  const tooling = toolingHash(spec.toolingDir ?? TOOLING_DIR, stackToolingFiles(spec));
  const triggers = releaseTriggers(spec.version, spec.artifact, tooling);
  const db = spec.hosts.filter((h) => h.role === "db");
  const apps = spec.hosts.filter((h) => h.role === "app");
  if (db.length > 1) throw new Error(`release: needs at most one database host, got ${db.length}`);
  if (apps.length === 0) throw new Error("release: needs at least one app host");
  const version = spec.version;
  const steps: Step[] = [];
  const add = (s: Omit<Step, "name" | "triggers" | "chatty"> & { chatty?: boolean }) => {
    const step: Step = { triggers, chatty: false, ...s, name: `${spec.prefix}-${s.kind}-${s.host.name}` };
    steps.push(step);
    return step.name;
  };

  // Every release starts by installing its tooling version on every host: the verbs below are
  // the ones this commit of the repository knows.
  const installs = [...db, ...apps].map((h) => add({ kind: "tooling-install", host: h, dependsOn: [], params: () => ({ verb: "tooling-install", toolingHash: tooling }) }));
  // A managed database has no host of ours: the first app host makes the app's database role as
  // RDS's master user (every release: idempotent, and the backup connects as that role), then
  // backs the database up (into the same bucket).
  const roleStep = db.length ? [] : [add({ kind: "create-app-role", host: apps[0], dependsOn: installs, params: () => ({ verb: "create-app-role" }) })];
  const backup = add({ kind: "backup", host: db[0] ?? apps[0], dependsOn: roleStep.length ? roleStep : installs, params: () => ({ verb: "backup" }) });
  const installOf = (h: ReleaseHost) => installs[[...db, ...apps].indexOf(h)];
  const fetches = apps.map((h) => add({
    kind: "fetch", host: h, dependsOn: [backup, installOf(h)].filter((d, i, a) => a.indexOf(d) === i), chatty: true,
    // The version only: the host fetches what its release source (from the tooling just installed) names.
    params: () => ({ verb: "release-fetch", version }),
  }));
  const migrate = add({ kind: "migrate", host: apps[0], dependsOn: fetches, chatty: true, params: () => ({ verb: "release-migrate", version }) });
  const statics = apps.map((h, i) => add({
    kind: "collectstatic", host: h, dependsOn: [migrate, fetches[i]], chatty: true, params: () => ({ verb: "release-collectstatic", version }),
  }));
  // One host at a time: the first gates the rest, each waits for the one before it.
  const switches: string[] = [];
  apps.forEach((h) => switches.push(add({
    kind: "switch", host: h, dependsOn: switches.length ? [switches[switches.length - 1]] : statics,
    params: (backupKey) => ({ verb: "release-switch", version, backupKey }),
  })));
  apps.forEach((h) => add({ kind: "verify", host: h, dependsOn: [...switches], params: () => ({ verb: "release-verify", version }) }));
  return steps;
}

/** What staging exports as proof that its release answered through nginx (promotion reads it). */
export interface ReleaseVerified {
  ok: boolean;
  version: string;
  /** ISO 8601 UTC: the latest host's verification. */
  at: string;
}

/** The line `nourishctl release verify VERSION` prints last on success (scripts/host/lib/release.sh). */
const VERIFIED_RE = /^nourishctl: release verify: (\S+) answers through nginx at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/;

/**
 * The verification of `version` from every app host's verify step output: ok only when each host
 * says that version answers through nginx. An output that breaks the contract gives ok false (the
 * release is live by then; promotion, not this `pulumi up`, is what must stop).
 */
export function verifiedFrom(version: string, stdouts: (string | undefined)[]): ReleaseVerified {
  const times: string[] = [];
  for (const out of stdouts) {
    const last = (out ?? "").split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? "";
    const m = VERIFIED_RE.exec(last);
    if (!m || m[1] !== version) return { ok: false, version, at: times.sort().pop() ?? "" };
    times.push(m[2]);
  }
  return { ok: times.length > 0, version, at: times.sort().pop() ?? "" };
}

/** The artifact as the stack exports it (releaseArtifact): what identifies it, nothing to fetch it with. */
export type ReleaseArtifactOutput =
  | { kind: "s3"; key: string; sha256: string }
  | { kind: "git"; url: string; commit: string; tag?: string };

export function releaseArtifactOutput(a: Artifact): ReleaseArtifactOutput {
  return a.type === "s3"
    ? { kind: "s3", key: a.key, sha256: a.sha256 }
    : { kind: "git", url: a.url, commit: a.commit, ...(a.tag ? { tag: a.tag } : {}) };
}
