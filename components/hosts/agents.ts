// The two AWS agents every host installs at first boot (`nourishctl agent install`, run by
// `nourishctl setup`): the SSM agent (Run Command, Session Manager: how releases and procedures
// reach a host) and the CloudWatch agent (memory, disk, process metrics and the hosts' logs).
// Debian's AMIs ship neither and Debian's archive has neither, so each comes from AWS's regional
// S3 bucket over HTTPS, at the version pinned in stack config. Pure: scripts/host/lib/agent.sh
// builds the same URLs (test/agent.test.ts holds them equal); docs/AGENTS.md says why this way.
import type { StackConfig } from "../config";

export type AgentName = "ssm" | "cloudwatch";

export interface AgentPackage {
  /** The Debian package's name, which is also its systemd unit's. */
  package: "amazon-ssm-agent" | "amazon-cloudwatch-agent";
  bucket: string;
  key: string;
  /** As AWS documents it: path-style for the SSM agent, virtual-hosted for the CloudWatch agent. */
  url: string;
}

/**
 * Where a host fetches an agent's Debian package for `region` and `version`: AWS's own
 * `latest/` paths (docs/AGENTS.md cites them) with the pinned version in place of `latest`.
 */
export function agentPackage(agent: AgentName, region: string, version: string): AgentPackage {
  if (agent === "ssm") {
    const bucket = `amazon-ssm-${region}`;
    const key = `${version}/debian_amd64/amazon-ssm-agent.deb`;
    return { package: "amazon-ssm-agent", bucket, key, url: `https://s3.${region}.amazonaws.com/${bucket}/${key}` };
  }
  const bucket = `amazoncloudwatch-agent-${region}`;
  const key = `debian/amd64/${version}/amazon-cloudwatch-agent.deb`;
  return { package: "amazon-cloudwatch-agent", bucket, key, url: `https://${bucket}.s3.${region}.amazonaws.com/${key}` };
}

/**
 * AWS's buckets the hosts read through the VPC's S3 gateway endpoint: the two agents' packages,
 * and `aws-ssm-<region>`, the modules AWS's own documents (AWS-RunPatchBaseline and the like)
 * download, as "SSM Agent communications with AWS managed S3 buckets" lists them. Not the
 * Windows, Distributor, Patch Manager snapshot or macOS buckets: no host here needs them.
 */
export function awsAgentBuckets(region: string): string[] {
  return [agentPackage("ssm", region, "x").bucket, `aws-ssm-${region}`, agentPackage("cloudwatch", region, "x").bucket];
}

/** host.env variables `nourishctl agent install` and `nourishctl status` read. */
export function agentsEnv(config: StackConfig): Record<string, string> {
  return { SSM_AGENT_VERSION: config.agents.ssmVersion, CLOUDWATCH_AGENT_VERSION: config.monitoring.agentVersion };
}
