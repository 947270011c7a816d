// Building blocks every host shares: an instance role with only what that host needs, the
// Debian 12 AMI looked up (never hard-coded), and an EC2 instance with IMDSv2 required, an
// encrypted root volume, detailed monitoring (its status-check alarms, recover and reboot, are
// in components/monitoring), and gzip'd cloud-init user data (EC2 caps user data at 16 KB).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { gzipSync } from "zlib";
import { StackConfig } from "../config";

/** Debian's own AWS account publishes the official images. */
export const DEBIAN_OWNER = "136693071363";

export function debianAmi(opts: pulumi.InvokeOutputOptions): pulumi.Output<string> {
  return aws.ec2.getAmiOutput({
    mostRecent: true,
    owners: [DEBIAN_OWNER],
    filters: [
      { name: "name", values: ["debian-12-amd64-*"] },
      { name: "architecture", values: ["x86_64"] },
      { name: "virtualization-type", values: ["hvm"] },
    ],
  }, opts).id;
}

export interface HostRoleArgs {
  config: StackConfig;
  role: "app" | "db";
}

/** The IAM role and instance profile of one host role: SSM Session Manager and the CloudWatch agent. */
export class HostRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly instanceProfileName: pulumi.Output<string>;

  constructor(name: string, args: HostRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:hosts:HostRole", name, {}, opts);
    this.role = new aws.iam.Role(name, {
      description: `nourish-link ${args.config.stack} ${args.role} hosts`,
      assumeRolePolicy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
      }),
    }, { parent: this });
    for (const [id, arn] of [
      ["ssm", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
      ["cloudwatch-agent", "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"],
    ]) {
      new aws.iam.RolePolicyAttachment(`${name}-${id}`, { role: this.role.name, policyArn: arn }, { parent: this });
    }
    this.instanceProfileName = new aws.iam.InstanceProfile(name, { role: this.role.name }, { parent: this }).name;
    this.registerOutputs({ roleArn: this.role.arn });
  }
}

export interface HostArgs {
  config: StackConfig;
  role: "app" | "db";
  instanceType: string;
  subnetId: pulumi.Input<string>;
  availabilityZone?: pulumi.Input<string>;
  securityGroupIds: pulumi.Input<string>[];
  instanceProfileName: pulumi.Input<string>;
  rootVolumeGb: number;
  userData: pulumi.Input<string>;
  /** The customer-managed key of the root volume. */
  volumeKmsKeyArn: pulumi.Input<string>;
  /** What must exist before the host boots (the tooling its cloud-init fetches). */
  dependsOn?: pulumi.Resource[];
}

/** One EC2 host (components/monitoring watches it). */
export class Host extends pulumi.ComponentResource {
  readonly instance: aws.ec2.Instance;

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:hosts:Host", name, {}, opts);
    const { config } = args;
    // ignoreChanges on the AMI: it is looked up, and a newer image must not replace a running host.
    this.instance = new aws.ec2.Instance(name, {
      ami: debianAmi({ parent: this }),
      instanceType: args.instanceType,
      subnetId: args.subnetId,
      availabilityZone: args.availabilityZone,
      vpcSecurityGroupIds: args.securityGroupIds,
      iamInstanceProfile: args.instanceProfileName,
      monitoring: true,
      metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1, instanceMetadataTags: "enabled" },
      rootBlockDevice: { encrypted: true, kmsKeyId: args.volumeKmsKeyArn, volumeType: "gp3", volumeSize: args.rootVolumeGb, deleteOnTermination: true },
      // On prod a host is only terminated on purpose (turn this off first: see the RUNBOOK).
      disableApiTermination: config.environment === "prod",
      userDataBase64: pulumi.output(args.userData).apply((doc) => gzipSync(doc).toString("base64")),
      tags: { Name: `nourish-link-${config.stack}-${name}`, role: args.role },
    }, { parent: this, ignoreChanges: ["ami"], dependsOn: args.dependsOn });

    this.registerOutputs({ instanceId: this.instance.id });
  }
}
