// What every host's cloud-init carries besides its role's part: the host environment nourishctl
// reads, awscli (SSM, S3), curl (the agents) and security updates, then nourishctl fetched and
// `nourishctl setup`, which installs the SSM and CloudWatch agents first.
import * as fs from "fs";
import * as path from "path";
import { StackConfig } from "../config";
import { CloudInitPart, HostFile, renderCloudInit } from "./cloud-init";
import { renderEnvFile } from "./env-file";
import { agentsEnv } from "./agents";

export const NOURISHCTL_SOURCE = path.resolve(__dirname, "..", "..", "scripts", "host", "nourishctl");
export const NOURISHCTL_LIB_SOURCE = path.join(path.dirname(NOURISHCTL_SOURCE), "lib");
export const NOURISHCTL_PATH = "/usr/local/sbin/nourishctl";
export const NOURISHCTL_LIB_PATH = "/usr/local/lib/nourish-link";

/** The roles a verb library serves, from its `# nourishctl-roles: db` line (none: every role). */
export function libRoles(content: string): ("app" | "db")[] {
  const m = /^# nourishctl-roles: (.+)$/m.exec(content);
  return m ? m[1].split(/[ ,]+/).filter(Boolean) as ("app" | "db")[] : ["app", "db"];
}

/** The verb libraries (file names in `libDir`) that serve `role`. */
export function roleLibs(role: "app" | "db", libDir = NOURISHCTL_LIB_SOURCE): string[] {
  if (!fs.existsSync(libDir)) return [];
  return fs.readdirSync(libDir).filter((f) => f.endsWith(".sh")).sort()
    .filter((f) => libRoles(fs.readFileSync(path.join(libDir, f), "utf8")).includes(role));
}

/** The CLI and the verb libraries a host of `role` runs, at their paths on the host. */
export function nourishctlFiles(role: "app" | "db"): HostFile[] {
  const libs = roleLibs(role);
  return [
    { path: NOURISHCTL_PATH, content: fs.readFileSync(NOURISHCTL_SOURCE, "utf8"), permissions: "0755" },
    ...libs.map((f) => ({ path: `${NOURISHCTL_LIB_PATH}/${f}`, content: fs.readFileSync(path.join(NOURISHCTL_LIB_SOURCE, f), "utf8") })),
  ];
}
export const HOST_ENV_PATH = "/etc/nourish-link/host.env";

/** /etc/nourish-link/host.env: names and ids only; secrets stay in SSM and are fetched when used. */
export function hostEnv(config: StackConfig, role: "app" | "db", extra: Record<string, string>): HostFile {
  const vars: Record<string, string> = {
    ROLE: role, STACK: config.stack, REGION: config.region,
    DISK_FREE_MIN_PERCENT: String(config.monitoring.diskFreeMinPercent),
    LOG_VOLUME_MAX_MB: String(config.monitoring.logVolumeMaxMb),
    // The SSM and CloudWatch agents' pinned versions (nourishctl agent install, status).
    ...agentsEnv(config),
    // What `nourishctl release` reads on an app host: how many releases to keep, what must answer 200.
    ...(role === "app" ? { KEEP_RELEASES: String(config.release.keepReleases), HEALTH_PATH: config.release.healthPath, SILENCED_CHECKS: config.release.silencedChecks.join(" ") } : {}),
    ...extra,
  };
  return { path: HOST_ENV_PATH, content: renderEnvFile("host.env", vars), permissions: "0640" };
}

/**
 * A host's cloud-init: its role's part, then the common packages, then `install` (the commands
 * that fetch nourishctl, see HostTooling) and `nourishctl setup`.
 */
export function renderHostCloudInit(config: StackConfig, role: "app" | "db", part: CloudInitPart, install: string[]): string {
  const common: CloudInitPart = {
    // curl fetches the SSM and CloudWatch agents (nourishctl agent install).
    packages: ["awscli", "curl", "unattended-upgrades"],
    runcmd: [...install, `${NOURISHCTL_PATH} setup`],
  };
  const doc = renderCloudInit({
    hostname: `nourish-link-${config.stack}-${role}`,
    timezone: config.maintenance.timezone,
    // The role's files first, then the CLI; setup runs last, once everything is in place.
    parts: [{ ...part, runcmd: [] }, common, { runcmd: part.runcmd }],
  });
  return doc;
}
