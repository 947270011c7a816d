// Stand-ins for AWS's two agent packages, built with the real dpkg-deb, for tests that install
// them as a host would (test/agent.test.ts in the sandbox; a booted Debian 12 under systemd): a
// package of the right name and version with a systemd unit and a tiny script as the agent. The
// CloudWatch stand-in's amazon-cloudwatch-agent-ctl takes `-a fetch-config -m ec2 -s -c file:PATH`
// as the real one does: it refuses a file that is not JSON, keeps the loaded config at
// LOADED_CONFIG and (with -s) restarts the agent's unit.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { AgentName, agentPackage } from "../components/hosts/agents";
import { DEFAULTS } from "../components/config";
import { run } from "./tools";

/** The versions the stacks pin by default (agents.ssmVersion, monitoring.agentVersion). */
export const PINNED = { ssm: DEFAULTS.staging.agents!.ssmVersion!, cloudwatch: DEFAULTS.staging.monitoring!.agentVersion! };
/** Where the CloudWatch stand-in's ctl keeps the config it was given. */
export const LOADED_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/loaded-config.json";

/** The bucket and key a host fetches each agent's package from, for `region` and the versions. */
export function agentPackagePaths(region: string, versions: Record<AgentName, string> = PINNED): Record<AgentName, { bucket: string; key: string }> {
  const of = (a: AgentName) => { const p = agentPackage(a, region, versions[a]); return { bucket: p.bucket, key: p.key }; };
  return { ssm: of("ssm"), cloudwatch: of("cloudwatch") };
}

export interface DebSpec {
  name: string;
  version: string;
  arch?: string;
  /** Files by path on the host (no leading /): content, and mode (default 0644). */
  files: Record<string, { content: string; mode?: number }>;
}

/** Builds one .deb with dpkg-deb into `dir`; returns its path. */
export function buildDeb(dir: string, spec: DebSpec): string {
  const root = fs.mkdtempSync(path.join(dir, `${spec.name}-`));
  fs.mkdirSync(path.join(root, "DEBIAN"));
  fs.writeFileSync(path.join(root, "DEBIAN/control"), [
    `Package: ${spec.name}`, `Version: ${spec.version}`, `Architecture: ${spec.arch ?? "amd64"}`,
    "Maintainer: nourish-link tests <tests@nourish-link.invalid>", `Description: stand-in for ${spec.name} (nourish-link tests)`, "",
  ].join("\n"));
  for (const [p, f] of Object.entries(spec.files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), f.content, { mode: f.mode ?? 0o644 });
  }
  const out = path.join(dir, `${spec.name}_${spec.version}_${spec.arch ?? "amd64"}.deb`);
  const r = run("dpkg-deb", ["--build", "--root-owner-group", root, out]);
  assert.strictEqual(r.status, 0, `dpkg-deb: ${r.stderr}`);
  fs.rmSync(root, { recursive: true, force: true });
  return out;
}

const unit = (name: string, exec: string) => `[Unit]
Description=stand-in for ${name} (nourish-link tests)
After=network-online.target

[Service]
ExecStart=${exec}
Restart=always

[Install]
WantedBy=multi-user.target
`;

const CTL = `#!/bin/sh
# Stand-in for amazon-cloudwatch-agent-ctl: -a fetch-config -m ec2 [-s] -c file:PATH
set -eu
action= mode= config= start=0
while [ $# -gt 0 ]; do
  case "$1" in
    -a) action=$2; shift 2 ;;
    -m) mode=$2; shift 2 ;;
    -c) config=$2; shift 2 ;;
    -s) start=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$action" = fetch-config ] && [ "$mode" = ec2 ] || { echo "only -a fetch-config -m ec2" >&2; exit 2; }
case "$config" in file:*) config=\${config#file:} ;; *) echo "only -c file:PATH" >&2; exit 2 ;; esac
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$config" || { echo "$config is not JSON" >&2; exit 1; }
cp "$config" ${LOADED_CONFIG}
[ "$start" -eq 0 ] || systemctl restart amazon-cloudwatch-agent.service
`;

/** The two stand-in packages, at the pinned versions unless told otherwise. */
export async function buildAgentStandIns(dir: string, versions: Record<AgentName, string> = PINNED): Promise<{ ssm: string; cloudwatch: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const agent = (name: string, v: string) => ({ content: `#!/bin/sh\necho "stand-in ${name} ${v}"\nexec sleep infinity\n`, mode: 0o755 });
  const ssm = buildDeb(dir, {
    name: "amazon-ssm-agent", version: `${versions.ssm}-1`,
    files: {
      "usr/bin/amazon-ssm-agent": agent("amazon-ssm-agent", versions.ssm),
      "lib/systemd/system/amazon-ssm-agent.service": { content: unit("amazon-ssm-agent", "/usr/bin/amazon-ssm-agent") },
    },
  });
  const cw = "opt/aws/amazon-cloudwatch-agent";
  const cloudwatch = buildDeb(dir, {
    name: "amazon-cloudwatch-agent", version: `${versions.cloudwatch}-1`,
    files: {
      [`${cw}/bin/amazon-cloudwatch-agent`]: agent("amazon-cloudwatch-agent", versions.cloudwatch),
      [`${cw}/bin/amazon-cloudwatch-agent-ctl`]: { content: CTL, mode: 0o755 },
      "lib/systemd/system/amazon-cloudwatch-agent.service": { content: unit("amazon-cloudwatch-agent", `/${cw}/bin/amazon-cloudwatch-agent`) },
    },
  });
  return { ssm, cloudwatch };
}
