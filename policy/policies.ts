// The guardrails every stack must pass: what this package creates, checked as `pulumi preview
// --policy-pack policy` sees it (index.ts builds the PolicyPack from this list) and as the tests
// see it, against out/<stack>/plan.json (plan.ts). No PolicyPack here: its constructor starts a
// gRPC server. Each description names the Checkov or cdk-nag rule it stands for.
//
// Rules follow references through propertyDependencies (which resource an input comes from), as
// ids and ARNs of new resources are unknown during a real preview. Reading an unknown value throws
// inside @pulumi/policy and the rule is reported as not applicable, never as passed.
import { gunzipSync } from "zlib";
import type { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { BACKUP_BUCKET_NAME_RE } from "../components/config";

type Props = Record<string, any>;
/** What a rule needs of a resource: PolicyResource, or the args of validateResource. */
type Res = Pick<PolicyResource, "type" | "props" | "urn" | "name" | "opts"> & { propertyDependencies?: Record<string, PolicyResource[]>; provider?: { props: Props } };

export const T = {
  bucket: "aws:s3/bucket:Bucket",
  bucketV2: "aws:s3/bucketV2:BucketV2",
  publicAccess: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  encryption: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  versioning: "aws:s3/bucketVersioning:BucketVersioning",
  bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
  logging: "aws:s3/bucketLogging:BucketLogging",
  lifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  object: "aws:s3/bucketObjectv2:BucketObjectv2",
  instance: "aws:ec2/instance:Instance",
  launchTemplate: "aws:ec2/launchTemplate:LaunchTemplate",
  volume: "aws:ebs/volume:Volume",
  eip: "aws:ec2/eip:Eip",
  subnet: "aws:ec2/subnet:Subnet",
  routeTable: "aws:ec2/routeTable:RouteTable",
  routeTableAssociation: "aws:ec2/routeTableAssociation:RouteTableAssociation",
  igw: "aws:ec2/internetGateway:InternetGateway",
  vpc: "aws:ec2/vpc:Vpc",
  defaultSg: "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
  sg: "aws:ec2/securityGroup:SecurityGroup",
  ingress: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  egress: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  topic: "aws:sns/topic:Topic",
  topicPolicy: "aws:sns/topicPolicy:TopicPolicy",
  key: "aws:kms/key:Key",
  lb: "aws:lb/loadBalancer:LoadBalancer",
  listener: "aws:lb/listener:Listener",
  rds: "aws:rds/instance:Instance",
  remoteCommand: "command:remote:Command",
  localCommand: "command:local:Command",
} as const;

/** TLS policies of ALB listeners that allow TLS 1.2 and 1.3 only, with forward-secret ciphers. */
export const MODERN_TLS_POLICIES = [
  "ELBSecurityPolicy-TLS13-1-2-2021-06",
  "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
  "ELBSecurityPolicy-TLS13-1-3-2021-06",
  "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
  "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
];

/** The tags every taggable resource carries (the provider's defaultTags in this package). */
export const REQUIRED_TAGS = ["project", "stack", "environment"];

/** AWS resource types of this package that take tags. */
export const TAGGABLE = new Set<string>([
  T.bucket, T.bucketV2, T.object, T.instance, T.launchTemplate, T.volume, T.eip, T.subnet, T.routeTable, T.igw, T.vpc, T.defaultSg, T.sg,
  T.ingress, T.egress, T.logGroup, T.alarm, T.topic, T.key, T.lb, T.listener, T.rds,
  "aws:ec2/natGateway:NatGateway", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:ec2/flowLog:FlowLog", "aws:iam/role:Role",
  "aws:iam/instanceProfile:InstanceProfile", "aws:ssm/parameter:Parameter", "aws:ssm/document:Document", "aws:lb/targetGroup:TargetGroup",
  "aws:acm/certificate:Certificate", "aws:rds/parameterGroup:ParameterGroup", "aws:rds/subnetGroup:SubnetGroup", "aws:iam/policy:Policy",
]);

// ---------------------------------------------------------------------------------------------
// Helpers

function deps(r: Res, prop: string): PolicyResource[] {
  return r.propertyDependencies?.[prop] ?? [];
}

function refersTo(r: Res, prop: string, target: Res): boolean {
  return deps(r, prop).some((d) => d.urn === target.urn);
}

function referrers(resources: Res[], type: string, prop: string, target: Res): Res[] {
  return resources.filter((r) => r.type === type && refersTo(r, prop, target));
}

function json(v: unknown): any {
  if (typeof v !== "string") return v;
  try { return JSON.parse(v); } catch { return undefined; }
}

function list<X>(v: X | X[] | undefined): X[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** The stack's environment, from the provider's default tags (this package's provider sets them). */
export function environmentOf(r: Res): string | undefined {
  return json(r.provider?.props?.defaultTags)?.tags?.environment ?? r.props?.tags?.environment;
}

const isProd = (r: Res) => environmentOf(r) === "prod";

/** True when a policy document denies every request that is not over TLS. */
function deniesInsecureTransport(policy: unknown, service: "s3" | "sns"): boolean {
  return list(json(policy)?.Statement).some((s: any) =>
    s?.Effect === "Deny"
    && list(s.Action).some((a: string) => a === "*" || a === `${service}:*` || (service === "sns" && a === "sns:Publish"))
    && String(s.Condition?.Bool?.["aws:SecureTransport"]) === "false");
}

function isBucket(r: Res): boolean {
  return r.type === T.bucket || r.type === T.bucketV2;
}

/** Buckets that receive server access logs or ALB access logs (S3 and ELB can only write SSE-S3 there). */
function accessLogBuckets(resources: Res[]): Set<string> {
  const out = new Set<string>();
  for (const r of resources) {
    if (r.type === T.logging) deps(r, "targetBucket").forEach((b) => out.add(b.urn));
    if (r.type === T.lb) deps(r, "accessLogs").filter(isBucket).forEach((b) => out.add(b.urn));
  }
  return out;
}

/** Buckets whose every object is a resource of the stack (rebuilt on each deploy: nothing to keep). */
function rebuiltBuckets(resources: Res[]): Set<string> {
  const out = new Set<string>();
  for (const r of resources) if (r.type === T.object) deps(r, "bucket").forEach((b) => out.add(b.urn));
  return out;
}

/** Subnets routed to an internet gateway. */
function publicSubnets(resources: Res[]): Set<string> {
  const publicTables = resources.filter((r) => r.type === T.routeTable && deps(r, "routes").some((d) => d.type === T.igw));
  const out = new Set<string>();
  for (const a of resources) {
    if (a.type === T.routeTableAssociation && publicTables.some((t) => refersTo(a, "routeTableId", t))) deps(a, "subnetId").forEach((s) => out.add(s.urn));
  }
  return out;
}

/** Security groups that are the public entry point: on a load balancer or on an instance with an Elastic IP. */
function entryPointGroups(resources: Res[]): Set<string> {
  const out = new Set<string>();
  for (const r of resources) {
    if (r.type === T.lb) deps(r, "securityGroups").forEach((g) => out.add(g.urn));
    if (r.type === T.eip) {
      for (const i of deps(r, "instance")) (i.propertyDependencies?.vpcSecurityGroupIds ?? []).forEach((g) => out.add(g.urn));
    }
  }
  return out;
}

// Secrets in text the hosts or the command provider receive.
const SECRET_PATTERNS: [RegExp, string][] = [
  [/-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/, "a private key"],
  [/\b(AKIA|ASIA)[0-9A-Z]{16}\b/, "an AWS access key id"],
  [/aws_secret_access_key\s*[=:]\s*\S{20,}/i, "an AWS secret access key"],
  [/\b[A-Z0-9_]*(PASSWORD|PASSWD|SECRET_KEY|CIPHER_PASS|TOKEN)\s*=\s*['"]?(?![$@'"\s]|\S*_PARAMETER\b)[^\s'"]{8,}/, "a password, secret key or token assigned in plain text"],
  [/postgres(ql)?:\/\/[^:/\s]+:[^@/\s]+@/, "a database URL with a password"],
];

/** Why `text` looks like it carries a secret, or undefined. `[secret]` is the plan's mark for a secret value. */
export function plaintextSecret(text: string): string | undefined {
  if (text.includes("[secret]")) return "a secret value (marked [secret] in the plan)";
  for (const [re, what] of SECRET_PATTERNS) if (re.test(text)) return what;
  return undefined;
}

function userDataText(props: Props): string[] {
  const out: string[] = [];
  if (typeof props.userData === "string") out.push(props.userData);
  if (typeof props.userDataBase64 === "string") {
    if (props.userDataBase64 === "[secret]") out.push("[secret]");
    else {
      const raw = Buffer.from(props.userDataBase64, "base64");
      out.push((raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString("utf8"));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rule builders

type Check<A> = (r: A) => string | string[] | undefined;

function resourceRule(name: string, description: string, types: string[], check: Check<ResourceValidationArgs>): ResourceValidationPolicy {
  return {
    name, description, enforcementLevel: "mandatory",
    validateResource: (args, report) => {
      if (!types.includes(args.type)) return;
      for (const m of list(check(args))) report(m);
    },
  };
}

function stackRule(name: string, description: string, check: (resources: PolicyResource[]) => [Res, string][]): StackValidationPolicy {
  return {
    name, description, enforcementLevel: "mandatory",
    validateStack: (args, report) => {
      for (const [r, m] of check(args.resources)) report(`${r.name}: ${m}`, r.urn);
    },
  };
}

/** A stack rule over every bucket. */
function bucketRule(name: string, description: string, check: (bucket: Res, all: PolicyResource[], logBucket: boolean) => string | undefined): StackValidationPolicy {
  return stackRule(name, description, (all) => {
    const logs = accessLogBuckets(all);
    return all.filter(isBucket).flatMap((b) => {
      const m = check(b, all, logs.has(b.urn));
      return m ? [[b, m] as [Res, string]] : [];
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The rules

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  // S3
  bucketRule("s3-public-access-blocked", "S3 buckets block all public access (Checkov CKV2_AWS_6, CKV_AWS_53..56; cdk-nag AwsSolutions-S1 companion S3BucketLevelPublicAccessProhibited)", (b, all) => {
    const ok = referrers(all, T.publicAccess, "bucket", b).some((p) => p.props.blockPublicAcls === true && p.props.blockPublicPolicy === true && p.props.ignorePublicAcls === true && p.props.restrictPublicBuckets === true);
    return ok ? undefined : "no BucketPublicAccessBlock with all four settings on";
  }),
  bucketRule("s3-sse-kms", "S3 buckets are encrypted with SSE-KMS under a customer key; access-log buckets (S3 and ELB log delivery cannot write SSE-KMS) at least SSE-S3 (Checkov CKV_AWS_145; cdk-nag S3DefaultEncryptionKMS)", (b, all, logBucket) => {
    const rules = referrers(all, T.encryption, "bucket", b).flatMap((e) => list(e.props.rules));
    const byDefault = rules.map((r: any) => r?.applyServerSideEncryptionByDefault ?? {});
    if (byDefault.some((d: any) => d.sseAlgorithm === "aws:kms" && d.kmsMasterKeyId)) return undefined;
    if (logBucket && byDefault.some((d: any) => d.sseAlgorithm === "AES256")) return undefined;
    return "not encrypted with SSE-KMS under a customer key";
  }),
  bucketRule("s3-versioning", "S3 buckets are versioned (Checkov CKV_AWS_21; cdk-nag S3BucketVersioningEnabled)", (b, all) =>
    referrers(all, T.versioning, "bucket", b).some((v) => v.props.versioningConfiguration?.status === "Enabled") ? undefined : "versioning is not enabled"),
  bucketRule("s3-tls-only", "S3 bucket policies deny requests not made over TLS (cdk-nag AwsSolutions-S10; Checkov CKV_AWS_379 family)", (b, all) =>
    referrers(all, T.bucketPolicy, "bucket", b).some((p) => deniesInsecureTransport(p.props.policy, "s3")) ? undefined : "no bucket policy denies aws:SecureTransport false"),
  bucketRule("s3-access-logging", "S3 buckets have server access logging, access-log buckets excepted (Checkov CKV_AWS_18; cdk-nag AwsSolutions-S1)", (b, all, logBucket) =>
    logBucket || referrers(all, T.logging, "bucket", b).length > 0 ? undefined : "no server access logging"),
  bucketRule("s3-lifecycle", "S3 buckets have lifecycle rules, so old versions and uploads do not pile up (Checkov CKV2_AWS_61)", (b, all) =>
    referrers(all, T.lifecycle, "bucket", b).some((l) => list(l.props.rules).length > 0) ? undefined : "no lifecycle configuration"),
  resourceRule("s3-no-force-destroy-on-prod", "No forceDestroy on prod buckets: destroying the stack must not empty them (cdk-nag/CDK: removalPolicy RETAIN without autoDeleteObjects; no Checkov equivalent)", [T.bucket, T.bucketV2], (r) =>
    isProd(r) && r.props.forceDestroy === true ? "forceDestroy is on in prod" : undefined),

  // EC2
  resourceRule("ec2-imdsv2", "Instances require IMDSv2 (Checkov CKV_AWS_79; cdk-nag EC2IMDSv2Enabled)", [T.instance, T.launchTemplate], (r) =>
    r.props.metadataOptions?.httpTokens === "required" ? undefined : "IMDSv1 is allowed (metadataOptions.httpTokens is not required)"),
  resourceRule("ec2-volumes-encrypted-cmk", "Root and data volumes are encrypted with a customer-managed key (Checkov CKV_AWS_8, CKV_AWS_3, CKV_AWS_189; cdk-nag EC2EBSVolumeEncrypted)", [T.instance, T.volume], (r) => {
    const volumes: [string, any][] = r.type === T.volume ? [["volume", r.props]] : [["root volume", r.props.rootBlockDevice ?? {}], ...list(r.props.ebsBlockDevices).map((d: any) => [`volume ${d?.deviceName}`, d] as [string, any])];
    return volumes.filter(([, v]) => !(v.encrypted === true && v.kmsKeyId)).map(([what]) => `${what} is not encrypted with a customer-managed key`);
  }),
  resourceRule("ec2-instance-role", "Instances have an instance profile (role) attached (Checkov CKV2_AWS_41; cdk-nag EC2InstanceProfileAttached)", [T.instance], (r) =>
    r.props.iamInstanceProfile ? undefined : "no instance profile"),
  resourceRule("ec2-detailed-monitoring", "Instances have detailed monitoring (Checkov CKV_AWS_126; cdk-nag EC2InstanceDetailedMonitoringEnabled)", [T.instance], (r) =>
    r.props.monitoring === true ? undefined : "detailed monitoring is off"),
  resourceRule("ec2-termination-protection-on-prod", "Prod instances have termination protection (cdk-nag EC2InstanceTerminationProtection)", [T.instance], (r) =>
    isProd(r) && r.props.disableApiTermination !== true ? "termination protection is off in prod" : undefined),
  stackRule("ec2-database-not-public", "The database host has no public IP: not public by launch, no Elastic IP, not in a subnet routed to an internet gateway (Checkov CKV_AWS_88; cdk-nag EC2InstanceNoPublicIp)", (all) => {
    const publicOnes = publicSubnets(all);
    return all.filter((r) => r.type === T.instance && r.props.tags?.role === "db").flatMap((db): [Res, string][] => {
      const why: string[] = [];
      if (db.props.associatePublicIpAddress === true) why.push("associatePublicIpAddress is on");
      if (referrers(all, T.eip, "instance", db).length) why.push("an Elastic IP is attached");
      if (deps(db, "subnetId").some((s) => publicOnes.has(s.urn) || s.props.mapPublicIpOnLaunch === true)) why.push("it is in a public subnet");
      return why.map((w) => [db, `database host is reachable from the internet: ${w}`]);
    });
  }),

  // Security groups
  stackRule("sg-no-open-ingress", "No ingress from 0.0.0.0/0 or ::/0 except 80/443 on the entry point (Checkov CKV_AWS_24, CKV_AWS_25, CKV_AWS_260; cdk-nag AwsSolutions-EC23)", (all) => {
    const entry = entryPointGroups(all);
    const out: [Res, string][] = [];
    const open = (x: any) => x?.cidrIpv4 === "0.0.0.0/0" || x?.cidrIpv6 === "::/0" || list(x?.cidrBlocks).includes("0.0.0.0/0") || list(x?.ipv6CidrBlocks).includes("::/0");
    const webPort = (x: any) => x.fromPort === x.toPort && [80, 443].includes(Number(x.fromPort)) && String(x.ipProtocol ?? x.protocol) === "tcp";
    for (const r of all) {
      if (r.type === T.ingress && open(r.props)) {
        const onEntry = deps(r, "securityGroupId").some((g) => entry.has(g.urn));
        if (!(onEntry && webPort(r.props))) out.push([r, `ingress from the internet on ${r.props.fromPort}-${r.props.toPort} ${onEntry ? "" : "to a group that is not the entry point"}`.trim()]);
      }
      if (r.type === T.sg) for (const i of list<any>(r.props.ingress)) if (open(i) && !(entry.has(r.urn) && webPort(i))) out.push([r, `inline ingress from the internet on ${i.fromPort}-${i.toPort}`]);
    }
    return out;
  }),
  resourceRule("sg-rule-descriptions", "Every security group and rule has a description (Checkov CKV_AWS_23)", [T.sg, T.ingress, T.egress], (r) => {
    const missing = (d: unknown) => typeof d !== "string" || d.trim() === "" || d === "Managed by Pulumi";
    if (missing(r.props.description)) return "no description";
    return [...list<any>(r.props.ingress), ...list<any>(r.props.egress)].filter((x) => missing(x?.description)).map(() => "an inline rule has no description");
  }),
  stackRule("vpc-default-sg-closed", "Each VPC's default security group allows nothing (Checkov CKV2_AWS_12; cdk-nag VPCDefaultSecurityGroupClosed)", (all) =>
    all.filter((r) => r.type === T.vpc).flatMap((vpc): [Res, string][] => {
      const d = referrers(all, T.defaultSg, "vpcId", vpc);
      if (d.length === 0) return [[vpc, "its default security group is not managed (AWS's default allows all traffic within the group and all egress)"]];
      return d.filter((g) => list(g.props.ingress).length > 0 || list(g.props.egress).length > 0).map((g) => [g, "the default security group has rules"]);
    })),

  // Logs, alarms, SNS, KMS
  resourceRule("log-group-retention-kms", "Log groups have a retention period and a KMS key (Checkov CKV_AWS_66, CKV_AWS_158; cdk-nag CloudWatchLogGroupEncrypted, CloudWatchLogGroupRetentionPeriod)", [T.logGroup], (r) => [
    ...(Number(r.props.retentionInDays) > 0 ? [] : ["no retention period"]),
    ...(r.props.kmsKeyId ? [] : ["not encrypted with a KMS key"]),
  ]),
  resourceRule("alarm-has-action", "Every alarm has an action (Checkov CKV_AWS_319; cdk-nag CloudWatchAlarmAction)", [T.alarm], (r) =>
    list(r.props.alarmActions).length > 0 && r.props.actionsEnabled !== false ? undefined : "no alarm action"),
  resourceRule("sns-encrypted", "SNS topics are encrypted with a KMS key (Checkov CKV_AWS_26; cdk-nag AwsSolutions-SNS2)", [T.topic], (r) =>
    r.props.kmsMasterKeyId ? undefined : "not encrypted"),
  stackRule("sns-tls-only", "SNS topic policies deny publishing without TLS (cdk-nag AwsSolutions-SNS3)", (all) =>
    all.filter((r) => r.type === T.topic).flatMap((topic): [Res, string][] =>
      referrers(all, T.topicPolicy, "arn", topic).some((p) => deniesInsecureTransport(p.props.policy, "sns")) ? [] : [[topic, "no topic policy denies aws:SecureTransport false"]])),
  resourceRule("kms-policy-and-rotation", "KMS keys have an explicit key policy and rotation (Checkov CKV_AWS_7, CKV2_AWS_64; cdk-nag AwsSolutions-KMS5)", [T.key], (r) => [
    ...(r.props.enableKeyRotation === true ? [] : ["key rotation is off"]),
    ...(json(r.props.policy)?.Statement ? [] : ["no explicit key policy"]),
  ]),

  // Load balancer
  resourceRule("alb-hardened", "Load balancers write access logs and drop invalid headers (Checkov CKV_AWS_91, CKV_AWS_131; cdk-nag AwsSolutions-ELB2, ALBHttpDropInvalidHeaderEnabled)", [T.lb], (r) => [
    ...(r.props.accessLogs?.enabled === true && r.props.accessLogs?.bucket ? [] : ["no access logs"]),
    ...(r.props.loadBalancerType === "network" || r.props.dropInvalidHeaderFields === true ? [] : ["invalid header fields are not dropped"]),
  ]),
  resourceRule("alb-modern-tls", "HTTPS listeners use a TLS 1.2+ policy and HTTP listeners only redirect to HTTPS (Checkov CKV_AWS_103, CKV_AWS_2; cdk-nag ELBTlsHttpsListenersOnly)", [T.listener], (r) => {
    if (r.props.protocol === "HTTPS" || r.props.protocol === "TLS") return MODERN_TLS_POLICIES.includes(r.props.sslPolicy) ? undefined : `TLS policy ${r.props.sslPolicy} is not a TLS 1.2+ policy`;
    const actions = list<any>(r.props.defaultActions);
    return actions.length > 0 && actions.every((a) => a.type === "redirect" && a.redirect?.protocol === "HTTPS") ? undefined : "a plain HTTP listener that does not redirect to HTTPS";
  }),

  // RDS
  resourceRule("rds-hardened", "RDS is encrypted, private, deletion-protected, with IAM auth, log exports and enhanced monitoring, Multi-AZ on prod (Checkov CKV_AWS_16, CKV_AWS_17, CKV_AWS_293, CKV_AWS_161, CKV_AWS_129, CKV_AWS_118, CKV_AWS_157; cdk-nag AwsSolutions-RDS2, RDS3, RDS10, RDS11)", [T.rds], (r) => {
    const p = r.props;
    return [
      ...(p.storageEncrypted === true ? [] : ["storage is not encrypted"]),
      ...(p.publiclyAccessible === true ? ["publicly accessible"] : []),
      ...(p.deletionProtection === true ? [] : ["no deletion protection"]),
      ...(p.iamDatabaseAuthenticationEnabled === true ? [] : ["IAM database authentication is off"]),
      ...(list(p.enabledCloudwatchLogsExports).includes("postgresql") ? [] : ["PostgreSQL logs are not exported"]),
      ...(Number(p.monitoringInterval) > 0 ? [] : ["no enhanced monitoring"]),
      ...(isProd(r) && p.multiAz !== true ? ["not Multi-AZ in prod"] : []),
    ];
  }),

  stackRule("rds-log-groups", "RDS exports its logs into log groups the stack creates first (retention and KMS, checked by log-group-retention-kms) under a fixed identifier; otherwise RDS creates /aws/rds/instance/<id>/<log> unencrypted and kept forever (no single Checkov or cdk-nag rule: it makes CKV_AWS_66 and CKV_AWS_158 hold for those groups)", (all) =>
    all.filter((r) => r.type === T.rds).flatMap((rds): [Res, string][] => {
      const id = rds.props.identifier;
      if (typeof id !== "string" || !id) return [[rds, "no fixed identifier: its log groups cannot exist before it exports"]];
      const dependencies = (rds as { dependencies?: PolicyResource[] }).dependencies ?? [];
      return list<string>(rds.props.enabledCloudwatchLogsExports).flatMap((log): [Res, string][] => {
        const name = `/aws/rds/instance/${id}/${log}`;
        const group = all.find((g) => g.type === T.logGroup && g.props.name === name);
        if (!group) return [[rds, `exports ${log} into ${name}, which the stack does not create`]];
        return dependencies.some((d) => d.urn === group.urn) ? [] : [[rds, `may export ${log} before ${name} exists (no dependsOn)`]];
      });
    })),

  // Protection of prod data
  stackRule("release-not-from-backups", "The app hosts' policies name no backup bucket but through the backup store's own log-archive grant: a release artifact in the backup bucket would give them every dump (no Checkov or cdk-nag equivalent; least privilege, cdk-nag AwsSolutions-IAM5 family)", (all) => {
    const backupNames = all.filter((r) => r.type === T.bucket && r.urn.includes("nourish-link:backups:BackupStore$") && typeof r.props.bucket === "string").map((r) => r.props.bucket as string);
    const isBackup = (name: string) => BACKUP_BUCKET_NAME_RE.test(name) || backupNames.includes(name);
    // The app hosts' roles: instance (tag role=app) → its instance profile → the profile's role.
    const appInstances = all.filter((r) => (r.type === T.instance || r.type === T.launchTemplate) && r.props.tags?.role === "app");
    const profiles = appInstances.flatMap((i) => [...deps(i, "iamInstanceProfile"), ...deps(i, "iamInstanceProfile.name"), ...deps(i, "iamInstanceProfile.arn")]);
    const appRoles = profiles.flatMap((pr) => deps(pr, "role"));
    const out: [Res, string][] = [];
    for (const p of all.filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && !r.urn.includes("nourish-link:backups:BackupStore$"))) {
      if (!appRoles.some((role) => refersTo(p, "role", role)) || typeof p.props.policy !== "string") continue;
      const statements = ([] as { Resource?: string | string[] }[]).concat(JSON.parse(p.props.policy).Statement);
      for (const res of statements.flatMap((st) => ([] as string[]).concat(st.Resource ?? []))) {
        const bucket = /^arn:aws:s3:::([^/]+)/.exec(res)?.[1];
        if (bucket && isBackup(bucket)) out.push([p, `grants the app hosts ${res}, in a backup bucket (release.artifact.bucket?)`]);
      }
    }
    return out;
  }),
  stackRule("prod-data-protected", "On prod, data resources (buckets not rebuilt from the repository, volumes, RDS, KMS keys) are protected and retained on delete (cdk-nag/CDK: RemovalPolicy.RETAIN; no Checkov equivalent)", (all) => {
    const rebuilt = rebuiltBuckets(all);
    return all.filter((r) => isProd(r) && ((isBucket(r) && !rebuilt.has(r.urn)) || [T.volume, T.rds, T.key].includes(r.type as never)))
      .flatMap((r): [Res, string][] => {
        const opts = r.opts as { protect: boolean; retainOnDelete?: boolean };
        return [
          ...(opts.protect ? [] : [[r, "not protected on prod"] as [Res, string]]),
          // Only the offline plan knows retainOnDelete: @pulumi/policy does not pass it.
          ...("retainOnDelete" in opts && !opts.retainOnDelete ? [[r, "not retained on delete on prod"] as [Res, string]] : []),
        ];
      });
  }),

  // Secrets
  resourceRule("no-plaintext-secrets", "No secret in plain text in user data, command text or command environment (Checkov CKV_AWS_46, CKV_AWS_45)", [T.instance, T.launchTemplate, T.remoteCommand, T.localCommand], (r) => {
    const texts: [string, string][] = [
      ...userDataText(r.props).map((t): [string, string] => ["user data", t]),
      ...(["create", "update", "delete"] as const).filter((k) => typeof r.props[k] === "string").map((k): [string, string] => [`command ${k}`, r.props[k]]),
      ...Object.entries(r.props.environment ?? {}).map(([k, v]): [string, string] => [`environment ${k}`, `${k}=${v}`]),
    ];
    return texts.flatMap(([where, t]) => {
      const why = plaintextSecret(t);
      return why ? [`${where} carries ${why}`] : [];
    });
  }),

  // Tags
  resourceRule("tags", `Every taggable resource carries ${REQUIRED_TAGS.join(", ")} (its own tags or the provider's defaultTags) (Checkov CKV_AWS_* tagging via bc_aws_general tag checks; cdk-nag has none: CDK Tags.of)`, [...TAGGABLE], (r) => {
    const fromProvider = json(r.provider?.props?.defaultTags)?.tags ?? {};
    const missing = REQUIRED_TAGS.filter((t) => !r.props.tags?.[t] && !fromProvider[t]);
    return missing.length ? `missing tags: ${missing.join(", ")}` : undefined;
  }),
];
