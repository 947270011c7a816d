// Where `npm run diff` learns which inputs AWS cannot change in place: the CloudFormation
// resource schemas' `createOnlyProperties` (AWS maintains them; cfn-lint ships them), mapped to
// the Pulumi types our plans use. `npm run diff:create-only` regenerates create-only.json from
// the installed cfn-lint; test/plan-diff-create-only.test.ts regenerates it and compares, and
// checks that every type of our plans is mapped here or listed as unmapped.
//
// Why a committed file and not cfn-lint at run time: `npm run diff` then needs no Python on a
// workstation, and a cfn-lint upgrade that changes a schema shows up as a failing test and a
// reviewable change to the JSON rather than as a silently different diff.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/**
 * Pulumi type → its CloudFormation type. `renames` gives the Pulumi input of a CloudFormation
 * property (its path after /properties/) whose name is not simply the camel-cased property.
 */
export const MAPPED: Record<string, { cfn: string; renames?: Record<string, string> }> = {
  "aws:acm/certificate:Certificate": { cfn: "AWS::CertificateManager::Certificate" },
  "aws:cloudwatch/dashboard:Dashboard": { cfn: "AWS::CloudWatch::Dashboard" },
  "aws:cloudwatch/logGroup:LogGroup": { cfn: "AWS::Logs::LogGroup", renames: { LogGroupName: "name" } },
  "aws:cloudwatch/logMetricFilter:LogMetricFilter": { cfn: "AWS::Logs::MetricFilter", renames: { FilterName: "name" } },
  "aws:cloudwatch/metricAlarm:MetricAlarm": { cfn: "AWS::CloudWatch::Alarm", renames: { AlarmName: "name" } },
  "aws:ebs/volume:Volume": { cfn: "AWS::EC2::Volume" },
  "aws:ec2/eip:Eip": { cfn: "AWS::EC2::EIP", renames: { Address: "address" } },
  "aws:ec2/flowLog:FlowLog": { cfn: "AWS::EC2::FlowLog", renames: { DeliverLogsPermissionArn: "iamRoleArn", ResourceId: "vpcId" } },
  "aws:ec2/instance:Instance": { cfn: "AWS::EC2::Instance", renames: { ImageId: "ami", NetworkInterfaces: "networkInterfaces", PlacementGroupName: "placementGroup", PrivateIpAddress: "privateIp", SecurityGroups: "securityGroups" } },
  "aws:ec2/internetGateway:InternetGateway": { cfn: "AWS::EC2::InternetGateway" },
  "aws:ec2/natGateway:NatGateway": { cfn: "AWS::EC2::NatGateway", renames: { PrivateIpAddress: "privateIp" } },
  "aws:ec2/routeTable:RouteTable": { cfn: "AWS::EC2::RouteTable" },
  "aws:ec2/routeTableAssociation:RouteTableAssociation": { cfn: "AWS::EC2::SubnetRouteTableAssociation" },
  "aws:ec2/securityGroup:SecurityGroup": { cfn: "AWS::EC2::SecurityGroup", renames: { GroupDescription: "description", GroupName: "name" } },
  "aws:ec2/subnet:Subnet": { cfn: "AWS::EC2::Subnet" },
  "aws:ec2/volumeAttachment:VolumeAttachment": { cfn: "AWS::EC2::VolumeAttachment", renames: { Device: "deviceName" } },
  "aws:ec2/vpc:Vpc": { cfn: "AWS::EC2::VPC" },
  "aws:ec2/vpcEndpoint:VpcEndpoint": { cfn: "AWS::EC2::VPCEndpoint" },
  "aws:iam/instanceProfile:InstanceProfile": { cfn: "AWS::IAM::InstanceProfile", renames: { InstanceProfileName: "name" } },
  "aws:iam/openIdConnectProvider:OpenIdConnectProvider": { cfn: "AWS::IAM::OIDCProvider" },
  "aws:iam/policy:Policy": { cfn: "AWS::IAM::ManagedPolicy", renames: { ManagedPolicyName: "name" } },
  "aws:iam/role:Role": { cfn: "AWS::IAM::Role", renames: { RoleName: "name" } },
  "aws:iam/rolePolicy:RolePolicy": { cfn: "AWS::IAM::RolePolicy", renames: { PolicyName: "name", RoleName: "role" } },
  "aws:kms/alias:Alias": { cfn: "AWS::KMS::Alias", renames: { AliasName: "name" } },
  "aws:kms/key:Key": { cfn: "AWS::KMS::Key" },
  "aws:lb/listener:Listener": { cfn: "AWS::ElasticLoadBalancingV2::Listener" },
  "aws:lb/loadBalancer:LoadBalancer": { cfn: "AWS::ElasticLoadBalancingV2::LoadBalancer", renames: { Scheme: "internal", Type: "loadBalancerType" } },
  "aws:lb/targetGroup:TargetGroup": { cfn: "AWS::ElasticLoadBalancingV2::TargetGroup" },
  "aws:rds/instance:Instance": { cfn: "AWS::RDS::DBInstance", renames: { DBInstanceIdentifier: "identifier", DBName: "dbName", DBSubnetGroupName: "dbSubnetGroupName", MasterUsername: "username" } },
  "aws:rds/parameterGroup:ParameterGroup": { cfn: "AWS::RDS::DBParameterGroup", renames: { DBParameterGroupName: "name" } },
  "aws:rds/subnetGroup:SubnetGroup": { cfn: "AWS::RDS::DBSubnetGroup", renames: { DBSubnetGroupName: "name" } },
  "aws:budgets/budget:Budget": { cfn: "AWS::Budgets::Budget", renames: {} },
  "aws:route53/healthCheck:HealthCheck": { cfn: "AWS::Route53::HealthCheck", renames: { "HealthCheckConfig/Type": "type", "HealthCheckConfig/MeasureLatency": "measureLatency", "HealthCheckConfig/RequestInterval": "requestInterval" } },
  "aws:s3/bucket:Bucket": { cfn: "AWS::S3::Bucket", renames: { BucketName: "bucket", BucketNamePrefix: "bucketPrefix" } },
  "aws:s3/bucketPolicy:BucketPolicy": { cfn: "AWS::S3::BucketPolicy" },
  "aws:sns/topic:Topic": { cfn: "AWS::SNS::Topic", renames: { TopicName: "name" } },
  "aws:sns/topicPolicy:TopicPolicy": { cfn: "AWS::SNS::TopicInlinePolicy", renames: { TopicArn: "arn" } },
  "aws:sns/topicSubscription:TopicSubscription": { cfn: "AWS::SNS::Subscription", renames: { TopicArn: "topic" } },
  "aws:ssm/document:Document": { cfn: "AWS::SSM::Document" },
  "aws:ssm/parameter:Parameter": { cfn: "AWS::SSM::Parameter" },
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": { cfn: "AWS::EC2::SecurityGroupEgress", renames: { CidrIp: "cidrIpv4", CidrIpv6: "cidrIpv6", DestinationPrefixListId: "prefixListId", DestinationSecurityGroupId: "referencedSecurityGroupId", GroupId: "securityGroupId" } },
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": { cfn: "AWS::EC2::SecurityGroupIngress", renames: { CidrIp: "cidrIpv4", CidrIpv6: "cidrIpv6", SourcePrefixListId: "prefixListId", SourceSecurityGroupId: "referencedSecurityGroupId", GroupId: "securityGroupId" } },
};

/**
 * Types with no CloudFormation schema to map to (a Terraform-only resource, or a CloudFormation
 * property of another type): a change to one is printed as "may replace".
 */
export const UNMAPPED: Record<string, string> = {
  "aws:acm/certificateValidation:CertificateValidation": "a provider-side waiter; CloudFormation has no such type",
  "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "adopts the VPC's default group; CloudFormation has no such type",
  "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy": "a property of AWS::EC2::VPCEndpoint (PolicyDocument) in CloudFormation",
  "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "a property of AWS::IAM::Role (ManagedPolicyArns) in CloudFormation",
  "aws:lb/targetGroupAttachment:TargetGroupAttachment": "a property of AWS::ElasticLoadBalancingV2::TargetGroup (Targets) in CloudFormation",
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "a property of AWS::S3::Bucket in CloudFormation",
  "aws:s3/bucketLogging:BucketLogging": "a property of AWS::S3::Bucket in CloudFormation",
  "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": "a property of AWS::S3::Bucket in CloudFormation",
  "aws:s3/bucketObjectv2:BucketObjectv2": "S3 objects are not CloudFormation resources",
  "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "a property of AWS::S3::Bucket in CloudFormation",
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "a property of AWS::S3::Bucket in CloudFormation",
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "a property of AWS::S3::Bucket in CloudFormation",
  "aws:s3/bucketVersioning:BucketVersioning": "a property of AWS::S3::Bucket in CloudFormation",
  "pulumi:providers:aws": "the provider itself; a changed provider setting may replace what it manages",
};

/** Types whose replacement rule is Pulumi's own, not AWS's (scripts/diff/replace.ts applies them). */
export const PULUMI_RULES: Record<string, string> = {
  "command:local:Command": "replaced when its triggers change",
  "random:index/randomPassword:RandomPassword": "every input is create-only (a new password)",
  "pulumi:pulumi:Stack": "the stack itself: never replaced",
  "pulumi:pulumi:StackReference": "read, not managed",
};

/** Our own components hold no cloud resource of their own: their children carry any replacement. */
export const isComponent = (type: string) => type.startsWith("nourish-link:");

export interface CreateOnlyTable {
  /** Where it came from: cfn-lint's version and the region whose schemas were read. */
  source: string;
  /** Pulumi type → { cfn type, create-only Pulumi inputs, CloudFormation properties with no Pulumi input } */
  types: Record<string, { cfn: string; createOnly: string[]; noPulumiInput: string[] }>;
}

export const TABLE_FILE = path.join(__dirname, "create-only.json");
const REGION = "af-south-1";

const PYTHON = `
import json, sys
try:
    import cfnlint, cfnlint.version
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER as M
except ImportError as e:
    print("IMPORT " + str(e)); sys.exit(3)
region, types = sys.argv[1], sys.argv[2:]
def schema(t):
    try:
        return M.get_resource_schema(region, t).schema
    except Exception:  # a global service's type (AWS::Budgets::Budget) is published for us-east-1 only
        return M.get_resource_schema("us-east-1", t).schema
out = {t: schema(t).get("createOnlyProperties") or [] for t in types}
print(json.dumps({"version": cfnlint.version.__version__, "types": out}))
`;

/** Each CloudFormation type's createOnlyProperties, as the installed cfn-lint has them. */
function readCfnLint(cfnTypes: string[]): { version: string; types: Record<string, string[]> } {
  const r = spawnSync("python3", ["-c", PYTHON, REGION, ...cfnTypes], { encoding: "utf8" });
  if (r.error) throw new Error(`python3 is not available (${(r.error as NodeJS.ErrnoException).code}): cfn-lint's schemas cannot be read`);
  if (r.status === 3) throw new Error(`cfn-lint is not installed for python3 (${r.stdout.trim()}): pip install cfn-lint==1.51.0`);
  if (r.status !== 0) throw new Error(`reading cfn-lint's schemas failed: ${r.stderr.trim().split("\n").pop()}`);
  return JSON.parse(r.stdout) as { version: string; types: Record<string, string[]> };
}

/** The inputs a Pulumi type accepts, from @pulumi/aws's declarations (`interface <Name>Args`). */
export function pulumiInputs(type: string): Set<string> {
  const m = /^aws:([a-z0-9]+)\/([A-Za-z0-9]+):([A-Za-z0-9]+)$/.exec(type);
  if (!m) throw new Error(`${type} is not an @pulumi/aws type`);
  const file = path.join(path.dirname(require.resolve("@pulumi/aws/package.json")), m[1], `${m[2]}.d.ts`);
  const text = fs.readFileSync(file, "utf8");
  const start = text.indexOf(`export interface ${m[3]}Args {`);
  if (start < 0) throw new Error(`${file} has no ${m[3]}Args`);
  const body = text.slice(start, text.indexOf("\n}", start));
  return new Set([...body.matchAll(/^ {4}(?:readonly )?(\w+)\??:/gm)].map((x) => x[1]));
}

const camel = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** The table, generated from the installed cfn-lint (what `npm run diff:create-only` writes). */
export function generateTable(): CreateOnlyTable {
  const cfn = readCfnLint([...new Set(Object.values(MAPPED).map((m) => m.cfn))]);
  const types: CreateOnlyTable["types"] = {};
  for (const [type, m] of Object.entries(MAPPED).sort(([a], [b]) => a.localeCompare(b))) {
    const inputs = pulumiInputs(type);
    const createOnly: string[] = [], noPulumiInput: string[] = [];
    for (const p of cfn.types[m.cfn]) {
      const prop = p.replace(/^\/properties\//, "");
      const name = m.renames?.[prop] ?? camel(prop);
      (inputs.has(name) ? createOnly : noPulumiInput).push(inputs.has(name) ? name : prop);
    }
    types[type] = { cfn: m.cfn, createOnly: createOnly.sort(), noPulumiInput: noPulumiInput.sort() };
  }
  return { source: `cfn-lint ${cfn.version}, CloudFormation resource schemas of ${REGION}`, types };
}

export function loadTable(): CreateOnlyTable {
  return JSON.parse(fs.readFileSync(TABLE_FILE, "utf8")) as CreateOnlyTable;
}

if (require.main === module) {
  try {
    const table = generateTable();
    fs.writeFileSync(TABLE_FILE, JSON.stringify(table, null, 2) + "\n");
    console.log(`wrote ${path.relative(process.cwd(), TABLE_FILE)} (${Object.keys(table.types).length} types, ${table.source})`);
  } catch (e) {
    console.error(`diff:create-only: ${(e as Error).message}`);
    process.exit(1);
  }
}
