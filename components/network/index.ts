// Network: a dedicated VPC over the configured availability zones. Public subnets hold the ALB
// (or a single TLS-terminating app host) and the NAT gateway; private subnets hold the database
// and, behind an ALB, the app hosts. Security groups open exactly: 80/443 to the web entry point,
// 80 from the ALB to the app hosts, 5432 from the app hosts to the database, 22 from the admin
// CIDRs only when network.sshAccess is on (otherwise SSM Session Manager). A quarantine group
// (no ingress; HTTPS to the VPC's SSM and Logs endpoints only) for `npm run incident -- isolate`. VPC flow logs on.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { keyPolicy, logsServiceStatement } from "../keys/policy";
import { subnetCidrs } from "./cidr";
import { flowLogTrustPolicy } from "./flow-logs";
import { s3EndpointPolicy } from "./s3-endpoint";

export interface NetworkArgs {
  config: StackConfig;
  /** True when an ALB terminates TLS in front of the app hosts. */
  behindAlb: boolean;
}

export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly publicSubnetIds: pulumi.Output<string>[];
  readonly privateSubnetIds: pulumi.Output<string>[];
  /** Address ranges of the subnets, known before deployment (pg_hba.conf needs them). */
  readonly publicSubnetCidrs: string[];
  readonly privateSubnetCidrs: string[];
  readonly availabilityZones: pulumi.Output<string>[];
  readonly albSecurityGroupId?: pulumi.Output<string>;
  readonly appSecurityGroupId: pulumi.Output<string>;
  readonly dbSecurityGroupId: pulumi.Output<string>;
  /** `npm run incident -- isolate` moves a host here (tag Name=nourish-link-<stack>-quarantine, which it looks up). */
  readonly quarantineSecurityGroupId: pulumi.Output<string>;
  private readonly s3Endpoint: aws.ec2.VpcEndpoint;
  private readonly region: string;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:network:Network", name, {}, opts);
    const { config, behindAlb } = args;
    const net = config.network;
    const parent = { parent: this };

    const vpc = new aws.ec2.Vpc(`${name}-vpc`, {
      cidrBlock: net.vpcCidr, enableDnsHostnames: true, enableDnsSupport: true, tags: { Name: `nourish-link-${config.stack}` },
    }, parent);
    const zones = aws.getAvailabilityZonesOutput({ state: "available" }, parent);
    const azCount = net.availabilityZones;
    const publicCidrs = subnetCidrs(net.vpcCidr, 20, azCount, 0);
    const privateCidrs = subnetCidrs(net.vpcCidr, 20, azCount, azCount);
    this.availabilityZones = publicCidrs.map((_, i) => zones.names[i]);
    this.publicSubnetCidrs = publicCidrs;
    this.privateSubnetCidrs = privateCidrs;

    // Take over the VPC's default security group and leave it without rules: nothing can be put
    // in it by mistake and reach or be reached.
    new aws.ec2.DefaultSecurityGroup(`${name}-default`, { vpcId: vpc.id, tags: { Name: `nourish-link-${config.stack}-default-closed` } }, parent);
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id }, parent);
    const publicRt = new aws.ec2.RouteTable(`${name}-public`, { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }] }, parent);
    const publicSubnets = publicCidrs.map((cidr, i) => {
      const s = new aws.ec2.Subnet(`${name}-public-${i}`, {
        vpcId: vpc.id, cidrBlock: cidr, availabilityZone: this.availabilityZones[i], mapPublicIpOnLaunch: false, tags: { Name: `nourish-link-${config.stack}-public-${i}`, tier: "public" },
      }, parent);
      new aws.ec2.RouteTableAssociation(`${name}-public-${i}`, { subnetId: s.id, routeTableId: publicRt.id }, parent);
      return s;
    });
    // One NAT gateway: private hosts reach Debian mirrors, SSM and CloudWatch through it.
    const natIp = new aws.ec2.Eip(`${name}-nat`, { domain: "vpc" }, parent);
    const nat = new aws.ec2.NatGateway(`${name}-nat`, { subnetId: publicSubnets[0].id, allocationId: natIp.id }, { parent: this, dependsOn: [igw] });
    const privateRt = new aws.ec2.RouteTable(`${name}-private`, { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", natGatewayId: nat.id }] }, parent);
    const privateSubnets = privateCidrs.map((cidr, i) => {
      const s = new aws.ec2.Subnet(`${name}-private-${i}`, {
        vpcId: vpc.id, cidrBlock: cidr, availabilityZone: this.availabilityZones[i], tags: { Name: `nourish-link-${config.stack}-private-${i}`, tier: "private" },
      }, parent);
      new aws.ec2.RouteTableAssociation(`${name}-private-${i}`, { subnetId: s.id, routeTableId: privateRt.id }, parent);
      return s;
    });
    // Backups, release artifacts and the agents' packages go to S3 without crossing the NAT
    // gateway; restrictS3Endpoint limits which buckets.
    this.s3Endpoint = new aws.ec2.VpcEndpoint(`${name}-s3`, {
      vpcId: vpc.id, serviceName: `com.amazonaws.${config.region}.s3`, vpcEndpointType: "Gateway", routeTableIds: [privateRt.id, publicRt.id],
    }, parent);

    const group = (id: string, description: string) =>
      new aws.ec2.SecurityGroup(`${name}-${id}`, { vpcId: vpc.id, description, tags: { Name: `nourish-link-${config.stack}-${id}` } }, parent);
    const ingress = (id: string, sg: aws.ec2.SecurityGroup, port: number, from: { cidr?: string; sg?: aws.ec2.SecurityGroup }, description: string) =>
      new aws.vpc.SecurityGroupIngressRule(`${name}-${id}`, {
        securityGroupId: sg.id, ipProtocol: "tcp", fromPort: port, toPort: port, description,
        cidrIpv4: from.cidr, referencedSecurityGroupId: from.sg?.id,
      }, parent);
    const egress = (id: string, sg: aws.ec2.SecurityGroup, port: number, to: { cidr?: string; sg?: aws.ec2.SecurityGroup }, description: string) =>
      new aws.vpc.SecurityGroupEgressRule(`${name}-${id}`, {
        securityGroupId: sg.id, ipProtocol: "tcp", fromPort: port, toPort: port, description,
        cidrIpv4: to.cidr, referencedSecurityGroupId: to.sg?.id,
      }, parent);

    const app = group("app", "NOURISH LINK app hosts (nginx, gunicorn)");
    const db = group("db", "NOURISH LINK PostgreSQL");
    if (behindAlb) {
      const alb = group("alb", "NOURISH LINK load balancer");
      ingress("alb-http", alb, 80, { cidr: "0.0.0.0/0" }, "HTTP, redirected to HTTPS");
      ingress("alb-https", alb, 443, { cidr: "0.0.0.0/0" }, "HTTPS");
      egress("alb-to-app", alb, 80, { sg: app }, "to nginx on the app hosts");
      ingress("app-from-alb", app, 80, { sg: alb }, "from the load balancer only");
      this.albSecurityGroupId = alb.id;
    } else {
      ingress("app-http", app, 80, { cidr: "0.0.0.0/0" }, "HTTP, redirected to HTTPS (and certbot)");
      ingress("app-https", app, 443, { cidr: "0.0.0.0/0" }, "HTTPS, terminated by nginx");
    }
    ingress("db-from-app", db, 5432, { sg: app }, "PostgreSQL from the app hosts only");
    egress("app-to-db", app, 5432, { sg: db }, "PostgreSQL");
    for (const [sg, id] of [[app, "app"], [db, "db"]] as const) {
      // Package mirrors, SSM, CloudWatch, S3, certbot: HTTP and HTTPS out, nothing else.
      egress(`${id}-out-https`, sg, 443, { cidr: "0.0.0.0/0" }, "HTTPS: AWS APIs, S3, package mirrors");
      egress(`${id}-out-http`, sg, 80, { cidr: "0.0.0.0/0" }, "HTTP: Debian package mirrors");
      if (net.sshAccess) {
        net.adminCidrs.forEach((cidr, i) => ingress(`${id}-ssh-${i}`, sg, 22, { cidr }, `SSH from admin ${cidr}`));
      }
    }

    // Quarantine (`npm run incident -- isolate`, a security incident): no ingress at all; egress only HTTPS
    // inside the VPC, which reaches nothing but the interface endpoints below. The host keeps
    // running for forensics, is still reachable through SSM and still ships its logs, and can
    // reach nothing else (no NAT, no S3 gateway: its route to S3 is by prefix list, not the VPC).
    const quarantine = group("quarantine", "NOURISH LINK quarantine: no ingress; HTTPS to the SSM and CloudWatch Logs endpoints in the VPC only");
    egress("quarantine-out", quarantine, 443, { cidr: net.vpcCidr }, "HTTPS to the interface endpoints in the VPC (SSM, CloudWatch Logs)");
    // Interface endpoints for what a quarantined host still needs: SSM (Run Command, Session
    // Manager) and CloudWatch Logs. Private DNS makes every host of the VPC use them. One subnet:
    // an endpoint costs per subnet and hour, and these carry little traffic.
    const endpoints = group("endpoints", "NOURISH LINK interface endpoints (SSM, CloudWatch Logs)");
    ingress("endpoints-https", endpoints, 443, { cidr: net.vpcCidr }, "HTTPS from the hosts in the VPC");
    for (const service of ["ssm", "ssmmessages", "ec2messages", "logs"]) {
      new aws.ec2.VpcEndpoint(`${name}-${service}`, {
        vpcId: vpc.id, serviceName: `com.amazonaws.${config.region}.${service}`, vpcEndpointType: "Interface",
        subnetIds: [privateSubnets[0].id], securityGroupIds: [endpoints.id], privateDnsEnabled: true,
      }, parent);
    }

    // Flow logs are encrypted with a key of their own that only CloudWatch Logs, for this one log
    // group of this account, may use besides the account's IAM policies.
    const account = aws.getCallerIdentityOutput({}, parent).accountId;
    const flowLogGroupName = `/nourish-link/${config.stack}/vpc-flow-logs`;
    const flowLogKey = new aws.kms.Key(`${name}-flow-logs-key`, {
      description: `nourish-link ${config.stack}: VPC flow logs`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.jsonStringify(account.apply((a) => keyPolicy(a, [logsServiceStatement(config.region, a, flowLogGroupName)]))),
    }, { parent: this, protect: config.environment === "prod", retainOnDelete: config.environment === "prod" });
    const flowLogs = new aws.cloudwatch.LogGroup(`${name}-flow-logs`, {
      name: flowLogGroupName, retentionInDays: net.flowLogRetentionDays, kmsKeyId: flowLogKey.arn,
    }, parent);
    const flowRole = new aws.iam.Role(`${name}-flow-logs`, {
      assumeRolePolicy: pulumi.jsonStringify(account.apply((a) => flowLogTrustPolicy(config.region, a))),
    }, parent);
    new aws.iam.RolePolicy(`${name}-flow-logs`, {
      role: flowRole.id,
      policy: pulumi.jsonStringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"], Resource: pulumi.interpolate`${flowLogs.arn}:*` }],
      }),
    }, parent);
    new aws.ec2.FlowLog(`${name}-flow-log`, {
      vpcId: vpc.id, trafficType: "ALL", logDestinationType: "cloud-watch-logs", logDestination: flowLogs.arn, iamRoleArn: flowRole.arn,
    }, parent);

    this.region = config.region;
    this.vpcId = vpc.id;
    this.publicSubnetIds = publicSubnets.map((s) => s.id);
    this.privateSubnetIds = privateSubnets.map((s) => s.id);
    this.appSecurityGroupId = app.id;
    this.dbSecurityGroupId = db.id;
    this.quarantineSecurityGroupId = quarantine.id;
    this.registerOutputs({ vpcId: this.vpcId, publicSubnetIds: this.publicSubnetIds, privateSubnetIds: this.privateSubnetIds });
  }

  /**
   * Limits the S3 gateway endpoint to AWS's agent buckets and `buckets` (this stack's own, known
   * once the components that own them exist): no other bucket in the region is reachable from the VPC.
   */
  restrictS3Endpoint(name: string, buckets: pulumi.Input<string>[]): aws.ec2.VpcEndpointPolicy {
    return new aws.ec2.VpcEndpointPolicy(name, {
      vpcEndpointId: this.s3Endpoint.id,
      policy: pulumi.all(buckets).apply((b) => JSON.stringify(s3EndpointPolicy(this.region, b))),
    }, { parent: this });
  }
}
