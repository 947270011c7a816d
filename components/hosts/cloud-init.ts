// Renders a host's cloud-init document (#cloud-config) from the parts each concern contributes:
// packages, files at their paths on the host, and commands. Pure; `cloud-init schema` checks it.
import { stringify } from "yaml";

export interface HostFile {
  path: string;
  content: string;
  /** Octal mode, e.g. "0644"; scripts "0755", anything sensitive "0600". */
  permissions?: string;
  owner?: string;
}

/** What one concern (database, app, monitoring, …) adds to a host. */
export interface CloudInitPart {
  packages?: string[];
  files?: HostFile[];
  /** Shell commands run once at first boot, in order, after packages and files. */
  runcmd?: string[];
}

export interface CloudInitSpec {
  hostname: string;
  timezone: string;
  parts: CloudInitPart[];
}

export function renderCloudInit(spec: CloudInitSpec): string {
  const packages = [...new Set(spec.parts.flatMap((p) => p.packages ?? []))].sort();
  const files = spec.parts.flatMap((p) => p.files ?? []);
  const seen = new Set<string>();
  for (const f of files) {
    if (!f.path.startsWith("/")) throw new Error(`cloud-init: file path must be absolute: ${f.path}`);
    if (seen.has(f.path)) throw new Error(`cloud-init: two parts write ${f.path}`);
    seen.add(f.path);
  }
  const doc = {
    hostname: spec.hostname,
    timezone: spec.timezone,
    package_update: true,
    package_upgrade: true,
    packages,
    write_files: files.map((f) => ({
      path: f.path,
      content: f.content,
      permissions: f.permissions ?? "0644",
      owner: f.owner ?? "root:root",
      // Directories and users some files need are created by the packages; defer writing until then.
      defer: true,
    })),
    runcmd: spec.parts.flatMap((p) => p.runcmd ?? []),
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0, blockQuote: "literal" })}`;
}
