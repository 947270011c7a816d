// The release as a plan of steps: which host runs which nourishctl verb, after which other steps,
// re-run on which triggers. Pure (no Pulumi): the Release component turns each step into a
// command resource; tests read the plan directly.
//
//   tooling-copy → tooling-install   every host: scripts/host copied over SSH, checked, installed
//   backup                           db host: `nourishctl backup`, its key printed last
//   fetch                            every app host, after the backup
//   migrate                          the first app host only, after every fetch
//   collectstatic                    every app host, after the migration
//   switch                           app-0 after every collectstatic, then app-1 after app-0, …
//   verify                           every app host, after every switch
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_PATH, roleLibs } from "../hosts/user-data";
import { DEFAULT_SSH_USER } from "./ssh";

/** The host tooling the release copies: nourishctl and its verb library (lib/*.sh). */
export const TOOLING_DIR = path.resolve(__dirname, "..", "..", "scripts", "host");

export type Artifact =
  | { type: "s3"; bucket?: string; key: string; sha256: string }
  | { type: "git"; url: string; commit: string; tag?: string };

export type StepKind = "tooling-copy" | "tooling-install" | "backup" | "fetch" | "migrate" | "collectstatic" | "switch" | "verify";
export type Logging = "stdout" | "stderr" | "stdoutAndStderr" | "none";

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
  /** The shell command run over SSH; `backupKey` is the pre-release backup (switch uses it). */
  command?: (backupKey: string) => string;
  /** tooling-copy: the directory copied, and where to (scripts/host lands in remotePath/host). */
  copy?: { source: string; remotePath: string };
  /** What re-runs the step when it changes (the host's identity is added by the component). */
  triggers: string[];
  /** What the engine shows of the command's output while it runs. */
  logging: Logging;
  /** Outputs kept secret in the state: output of tools that are not ours (pip, git, Django). */
  secretOutputs: ("stdout" | "stderr")[];
}

export interface ReleaseSpec {
  prefix: string;
  version: string;
  artifact: Artifact;
  /** The db host, then the app hosts in order: the first app host migrates and switches first. */
  hosts: ReleaseHost[];
  sshUser: string;
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

/** `sha256sum` lines ("<hex>  <path>") for every file of the tooling directory. */
export function toolingManifest(dir = TOOLING_DIR): string[] {
  return filesUnder(dir).map((rel) => `${sha256(fs.readFileSync(path.join(dir, rel)))}  ${rel}`);
}

/** The tooling's content hash: SHA-256 over every file of scripts/host (names and bytes). */
export function toolingHash(dir = TOOLING_DIR): string {
  return sha256(toolingManifest(dir).join("\n") + "\n");
}

/** The tooling a host of `role` gets: the CLI, and the verb libraries that serve its role. */
export function toolingFilesFor(role: "app" | "db", dir = TOOLING_DIR): { source: string; target: string; mode: string }[] {
  const libs = roleLibs(role, path.join(dir, "lib"));
  return [
    ...libs.map((f) => ({ source: `lib/${f}`, target: `${NOURISHCTL_LIB_PATH}/${f}`, mode: "0644" })),
    // The CLI last: it sources the libraries, so a new CLI never meets old ones.
    { source: "nourishctl", target: NOURISHCTL_PATH, mode: "0755" },
  ];
}

/** The SSH user's home, where the tooling is staged (private to that user, unlike /tmp). */
export function homeOf(user: string): string {
  return user === "root" ? "/root" : `/home/${user}`;
}

/** Where a tooling version is copied to: one directory per content hash, in the SSH user's home. */
export function stagingPath(user: string, hash: string): string {
  return `${homeOf(user)}/nourish-link-tooling-${hash.slice(0, 16)}`;
}

/**
 * Commands that check a role's tooling, staged in the current directory as in scripts/host
 * (nourishctl, lib/*.sh), against the repository's SHA-256, and only when every file matches
 * install them as root: the libraries, then the CLI. `asRoot` prefixes what needs root ("sudo -n "
 * over SSH; nothing at first boot, which runs as root). Shared by the release and first boot.
 */
export function checkedInstall(role: "app" | "db", asRoot: string, dir = TOOLING_DIR): string[] {
  const files = toolingFilesFor(role, dir);
  const sums = new Map(toolingManifest(dir).map((l) => [l.slice(66), l.slice(0, 64)]));
  return [
    `printf '%s\\n' ${files.map((f) => shq(`${sums.get(f.source)}  ${f.source}`)).join(" ")} | sha256sum --check --strict --quiet -`,
    `${asRoot}install -d -m 0755 -o root -g root ${shq(NOURISHCTL_LIB_PATH)}`,
    ...files.map((f) => `${asRoot}install -m ${f.mode} -o root -g root ${shq(f.source)} ${shq(f.target)}`),
  ];
}

/**
 * Waits for first boot to finish (a new host's `nourishctl setup`), checks the staged files
 * against their SHA-256, installs the role's files as root, removes libraries the role no longer
 * has and older staging directories. Safe to re-run: it keeps this version's staging directory.
 */
export function toolingInstallCommand(role: "app" | "db", user: string, dir = TOOLING_DIR): string {
  const hash = toolingHash(dir);
  const staged = `${stagingPath(user, hash)}/${path.basename(dir)}`;
  const files = toolingFilesFor(role, dir);
  const libs = files.filter((f) => f.target.startsWith(`${NOURISHCTL_LIB_PATH}/`));
  const keep = libs.map((f) => `! -name ${shq(path.basename(f.target))}`).join(" ");
  return [
    "set -eu",
    "rc=0; cloud-init status --wait >/dev/null 2>&1 || rc=$?",
    `if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then echo "nourish-link: this host's first boot did not finish cleanly (cloud-init status $rc); see /var/log/cloud-init-output.log" >&2; exit 1; fi`,
    `cd ${shq(staged)}`,
    ...checkedInstall(role, "sudo -n ", dir),
    `sudo -n find ${shq(NOURISHCTL_LIB_PATH)} -maxdepth 1 -type f -name '*.sh' ${keep} -delete`,
    `find ${shq(homeOf(user))} -maxdepth 1 -type d -name 'nourish-link-tooling-*' ! -name ${shq(path.basename(stagingPath(user, hash)))} -exec rm -rf {} +`,
    `echo "nourish-link: tooling ${hash.slice(0, 16)} installed (${files.length} files)"`,
  ].join("\n");
}

const nourishctl = (...args: string[]) => ["sudo", "-n", NOURISHCTL_PATH, ...args].map(shq).join(" ");

/** Where `nourishctl release fetch` gets the release from. */
export function artifactArgs(artifact: Artifact): string[] {
  if (artifact.type === "git") return ["--git", artifact.url, "--commit", artifact.commit, ...(artifact.tag ? ["--tag", artifact.tag] : [])];
  if (!artifact.bucket) throw new Error("release: the s3 artifact has no bucket (nourish-link:release.artifact.bucket)");
  return ["--s3", `s3://${artifact.bucket}/${artifact.key}`, "--sha256", artifact.sha256];
}

/** What identifies the artifact: its checksum, or the git URL and commit. */
export function artifactId(artifact: Artifact): string {
  return artifact.type === "s3" ? `sha256:${artifact.sha256}` : `git:${artifact.url}#${artifact.commit}`;
}

/** The triggers of every release step: a new version, artifact or tooling runs them all again. */
export function releaseTriggers(version: string, artifact: Artifact, tooling: string): string[] {
  return [`version:${version}`, `artifact:${artifactId(artifact)}`, `tooling:${tooling}`];
}

/** The copy of the tooling re-runs only when the tooling changes. */
export function toolingTriggers(tooling: string): string[] {
  return [`tooling:${tooling}`];
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
  const dir = spec.toolingDir ?? TOOLING_DIR;
  const tooling = toolingHash(dir);
  const triggers = releaseTriggers(spec.version, spec.artifact, tooling);
  const db = spec.hosts.filter((h) => h.role === "db");
  const apps = spec.hosts.filter((h) => h.role === "app");
  if (db.length !== 1) throw new Error(`release: needs exactly one database host, got ${db.length}`);
  if (apps.length === 0) throw new Error("release: needs at least one app host");
  const v = spec.version;
  const name = (kind: StepKind, h: ReleaseHost) => `${spec.prefix}-${kind}-${h.name}`;
  const steps: Step[] = [];
  const add = (s: Omit<Step, "name" | "triggers" | "logging" | "secretOutputs"> & Partial<Pick<Step, "triggers" | "logging" | "secretOutputs">>) => {
    const step: Step = { triggers, logging: "stdoutAndStderr", secretOutputs: [], ...s, name: name(s.kind, s.host) };
    steps.push(step);
    return step.name;
  };

  const installs = [...db, ...apps].map((h) => {
    const copy = add({
      kind: "tooling-copy", host: h, dependsOn: [], triggers: toolingTriggers(tooling),
      copy: { source: dir, remotePath: stagingPath(spec.sshUser, tooling) },
    });
    return add({ kind: "tooling-install", host: h, dependsOn: [copy], command: () => toolingInstallCommand(h.role, spec.sshUser, dir) });
  });
  // Our own concise output: logged, and the key is what the switch needs.
  const backup = add({ kind: "backup", host: db[0], dependsOn: installs, command: () => nourishctl("backup") });
  // pip, git and Django print what they like: show errors while it runs, keep the rest out of the state.
  const chatty = { logging: "stderr" as const, secretOutputs: ["stdout" as const, "stderr" as const] };
  const fetches = apps.map((h, i) => add({
    kind: "fetch", host: h, dependsOn: [backup, installs[1 + i]], ...chatty,
    command: () => nourishctl("release", "fetch", v, ...artifactArgs(spec.artifact)),
  }));
  const migrate = add({ kind: "migrate", host: apps[0], dependsOn: fetches, ...chatty, command: () => nourishctl("release", "migrate", v) });
  const statics = apps.map((h, i) => add({
    kind: "collectstatic", host: h, dependsOn: [migrate, fetches[i]], ...chatty, command: () => nourishctl("release", "collectstatic", v),
  }));
  // One host at a time: the first gates the rest, each waits for the one before it.
  const switches: string[] = [];
  apps.forEach((h) => switches.push(add({
    kind: "switch", host: h, dependsOn: switches.length ? [switches[switches.length - 1]] : statics,
    command: (backupKey) => nourishctl("release", "switch", v, "--pre-release-backup", backupKey),
  })));
  apps.forEach((h) => add({ kind: "verify", host: h, dependsOn: [...switches], command: () => nourishctl("release", "verify", v) }));
  return steps;
}

export interface SshSettings {
  user?: string;
  bastion?: { host: string; user?: string; port?: number };
}

/** How the release reaches a host: as `user` on port 22, through the bastion when there is one. */
export function sshRoute(ssh: SshSettings): { user: string; port: number; proxy?: { host: string; user: string; port: number } } {
  const user = ssh.user ?? DEFAULT_SSH_USER;
  const b = ssh.bastion;
  return { user, port: 22, ...(b ? { proxy: { host: b.host, user: b.user ?? user, port: b.port ?? 22 } } : {}) };
}
