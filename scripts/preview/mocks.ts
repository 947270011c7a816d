// Pulumi mocks for the AWS, random and command providers: what the engine and AWS would answer,
// with realistic ids and data-source results, deterministic so plans can be diffed.
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import { MOCK_REHEARSAL_AT, MOCK_VERIFIED_AT } from "./mock-values";

export const ACCOUNT_ID = "123456789012";

export function hex(seed: string, len: number): string {
  return createHash("sha256").update(seed).digest("hex").slice(0, len);
}

/** Prod's backup bucket and key as the prod stack exports them, and the latest backup in it (02:00 in Kigali is 00:00 UTC). */
export const PROD_BACKUP_BUCKET = `backups-archive-${hex("prod:aws:s3/bucket:Bucketbackups-archive", 7)}`;
export const PROD_BACKUP_KEY_ARN = `arn:aws:kms:af-south-1:${ACCOUNT_ID}:key/${hex("prod-backups-key", 8)}-${hex("prod-backups-key1", 4)}-${hex("prod-backups-key2", 4)}-${hex("prod-backups-key3", 4)}-${hex("prod-backups-key4", 12)}`;
/** Prod's releases bucket (Pulumi.prod.yaml's release.artifact.bucket) and its key, as prod exports them. */
export const PROD_RELEASE_BUCKET = "nourish-link-releases";
// The same key id the prod plan gives its releases-key (mockId), so both plans name one key.
export const PROD_RELEASE_KEY_ARN = `arn:aws:kms:af-south-1:${ACCOUNT_ID}:key/${mockId("aws:kms/key:Key", "releases-key")}`;
export const PROD_LATEST_BACKUP = { key: "dumps/daily/db_backup_20261128_000012.dump", sha256: hex("prod backup 2026-11-28", 64), size: 48213750, time: "2026-11-28T00:00:12Z" };

/** EC2 ids carry a type prefix and 17 hex digits; other resources are known by name or ARN. */
const ID_PREFIX: Record<string, string> = {
  "aws:ec2/vpc:Vpc": "vpc-",
  "aws:ec2/subnet:Subnet": "subnet-",
  "aws:ec2/securityGroup:SecurityGroup": "sg-",
  "aws:ec2/instance:Instance": "i-",
  "aws:ebs/volume:Volume": "vol-",
  "aws:ec2/internetGateway:InternetGateway": "igw-",
  "aws:ec2/natGateway:NatGateway": "nat-",
  "aws:ec2/routeTable:RouteTable": "rtb-",
  "aws:ec2/eip:Eip": "eipalloc-",
  "aws:ec2/flowLog:FlowLog": "fl-",
  "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
  "aws:kms/key:Key": "",
};

/** Instance types the mocks know, for the sizing that derives from vCPUs and memory. */
export const INSTANCE_TYPES: Record<string, { vcpus: number; memoryMib: number }> = {
  "t3.micro": { vcpus: 2, memoryMib: 1024 },
  "t3.small": { vcpus: 2, memoryMib: 2048 },
  "t3.medium": { vcpus: 2, memoryMib: 4096 },
  "t3.large": { vcpus: 2, memoryMib: 8192 },
  "t3.xlarge": { vcpus: 4, memoryMib: 16384 },
  "m6i.large": { vcpus: 2, memoryMib: 8192 },
  "m6i.xlarge": { vcpus: 4, memoryMib: 16384 },
  "m6i.2xlarge": { vcpus: 8, memoryMib: 32768 },
  "r6i.large": { vcpus: 2, memoryMib: 16384 },
  "r6i.xlarge": { vcpus: 4, memoryMib: 32768 },
  "c6i.large": { vcpus: 2, memoryMib: 4096 },
  "c6i.xlarge": { vcpus: 4, memoryMib: 8192 },
};

/** The SDK reports a failed invoke by its gRPC `details`, so the message must be there too. */
function mockError(message: string): Error {
  return Object.assign(new Error(message), { details: message });
}

function serviceOf(type: string): string {
  return type.split(":")[1]?.split("/")[0] ?? "unknown";
}

export function mockId(type: string, name: string): string {
  if (type === "aws:kms/key:Key") return `${hex(name, 8)}-${hex(name + 1, 4)}-${hex(name + 2, 4)}-${hex(name + 3, 4)}-${hex(name + 4, 12)}`;
  const prefix = ID_PREFIX[type];
  return prefix !== undefined ? `${prefix}${hex(type + name, 17)}` : `${name}-${hex(type + name, 7)}`;
}

/**
 * The property the engine fills in with an auto-name (the logical name and a random suffix) when
 * the program leaves it unset, as `pulumi preview` shows it. Without it an output such as an
 * instance profile's `name` would be undefined and every input built from it would vanish.
 */
const AUTONAMED: Record<string, string> = {
  "aws:iam/role:Role": "name",
  "aws:iam/instanceProfile:InstanceProfile": "name",
  "aws:iam/rolePolicy:RolePolicy": "name",
  "aws:iam/policy:Policy": "name",
  "aws:s3/bucket:Bucket": "bucket",
  "aws:s3/bucketV2:BucketV2": "bucket",
  "aws:ec2/securityGroup:SecurityGroup": "name",
  "aws:ec2/launchTemplate:LaunchTemplate": "name",
  "aws:lb/loadBalancer:LoadBalancer": "name",
  "aws:lb/targetGroup:TargetGroup": "name",
  "aws:sns/topic:Topic": "name",
  "aws:cloudwatch/logGroup:LogGroup": "name",
  "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
  "aws:rds/instance:Instance": "identifier",
  "aws:rds/parameterGroup:ParameterGroup": "name",
  "aws:rds/subnetGroup:SubnetGroup": "name",
  "aws:ssm/document:Document": "name",
  "aws:ssm/parameter:Parameter": "name",
};

/** The auto-named inputs of a resource the program left unnamed: `{ name: "app-role-1a2b3c4" }`. */
export function autoNames(type: string, name: string, inputs: Record<string, unknown>): Record<string, string> {
  const prop = AUTONAMED[type];
  if (!prop || inputs[prop] !== undefined || (type.startsWith("aws:") && inputs[`${prop}Prefix`] !== undefined)) return {};
  // Like the provider: lower case where AWS wants it (bucket names, RDS identifiers).
  const base = prop === "bucket" || prop === "identifier" ? name.toLowerCase() : name;
  return { [prop]: `${base}-${hex(type + name, 7)}` };
}

export class AwsMocks implements pulumi.runtime.Mocks {
  private readonly providerRegions = new Map<string, string>();
  constructor(private readonly region: string) {}

  newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
    // A bucket's id is its name: the one the program gives, or the auto-name.
    const named = args.type === "aws:s3/bucket:Bucket" && typeof args.inputs.bucket === "string" ? args.inputs.bucket : undefined;
    const id = args.id || named || mockId(args.type, args.name);
    const state: Record<string, unknown> = { ...args.inputs, ...autoNames(args.type, args.name, args.inputs) };
    // A resource with an explicit provider lives in that provider's region (the uptime alarm's us-east-1).
    if (args.type === "pulumi:providers:aws" && typeof args.inputs.region === "string") this.providerRegions.set(id, args.inputs.region);
    const region = this.providerRegions.get(args.provider?.split("::").pop() ?? "") ?? this.region;
    if (args.type.startsWith("aws:")) {
      const service = serviceOf(args.type);
      state.arn ??= `arn:aws:${service}:${region}:${ACCOUNT_ID}:${args.name}/${id}`;
      state.tagsAll ??= args.inputs.tags;
    }
    switch (args.type) {
      case "aws:kms/key:Key":
        state.keyId = id;
        state.arn = `arn:aws:kms:${region}:${ACCOUNT_ID}:key/${id}`;
        break;
      case "aws:iam/role:Role":
        state.arn = `arn:aws:iam::${ACCOUNT_ID}:role/${args.inputs.name ?? id}`;
        state.name ??= id;
        break;
      case "aws:iam/policy:Policy":
        state.arn = `arn:aws:iam::${ACCOUNT_ID}:policy/${args.inputs.name ?? id}`;
        break;
      case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        state.arn = `arn:aws:iam::${ACCOUNT_ID}:oidc-provider/${String(args.inputs.url).replace(/^https:\/\//, "")}`;
        break;
      case "aws:sns/topic:Topic":
        // As SNS names it (no "/": the IAM evaluator of scripts/access/ parses it).
        state.arn = `arn:aws:sns:${region}:${ACCOUNT_ID}:${id}`;
        break;
      case "aws:ssm/document:Document":
        state.arn = `arn:aws:ssm:${region}:${ACCOUNT_ID}:document/${args.inputs.name}`;
        break;
      case "aws:ssm/parameter:Parameter":
        state.arn = `arn:aws:ssm:${region}:${ACCOUNT_ID}:parameter${args.inputs.name}`;
        break;
      case "aws:s3/bucket:Bucket":
      case "aws:s3/bucketV2:BucketV2":
        state.bucket ??= id;
        state.arn = `arn:aws:s3:::${state.bucket}`;
        break;
      case "aws:ec2/instance:Instance":
        state.privateIp = `10.0.${parseInt(hex(args.name, 2), 16) % 250}.${10 + (parseInt(hex(args.name, 4), 16) % 200)}`;
        state.privateDns = `ip-${String(state.privateIp).replace(/\./g, "-")}.${region}.compute.internal`;
        state.primaryNetworkInterfaceId = `eni-${hex(args.name, 17)}`;
        break;
      case "aws:ec2/eip:Eip":
        state.publicIp = `203.0.113.${parseInt(hex(args.name, 2), 16) % 250}`;
        break;
      case "aws:lb/loadBalancer:LoadBalancer":
        state.dnsName = `${args.name}-${parseInt(hex(args.name, 8), 16)}.${region}.elb.amazonaws.com`;
        state.arn = `arn:aws:elasticloadbalancing:${region}:${ACCOUNT_ID}:loadbalancer/app/${args.name}/${hex(args.name, 16)}`;
        // What CloudWatch's LoadBalancer dimension holds.
        state.arnSuffix = `app/${args.name}/${hex(args.name, 16)}`;
        break;
      case "aws:lb/targetGroup:TargetGroup":
        state.arn = `arn:aws:elasticloadbalancing:${region}:${ACCOUNT_ID}:targetgroup/${args.name}/${hex(args.name, 16)}`;
        state.arnSuffix = `targetgroup/${args.name}/${hex(args.name, 16)}`;
        break;
      case "aws:acm/certificate:Certificate":
        state.arn = `arn:aws:acm:${region}:${ACCOUNT_ID}:certificate/${id}`;
        state.domainValidationOptions = [{
          domainName: args.inputs.domainName,
          resourceRecordName: `_${hex(args.name, 32)}.${args.inputs.domainName}.`,
          resourceRecordType: "CNAME",
          resourceRecordValue: `_${hex(args.name + "v", 32)}.acm-validations.aws.`,
        }];
        break;
      case "aws:rds/instance:Instance":
        state.identifier ??= `${args.name}-${hex(args.name, 7)}`;
        state.address = `${args.name}.${hex(args.name, 12)}.${region}.rds.amazonaws.com`;
        // RDS's managed master password lives in a secret RDS names rds!db-<resource id>.
        if (args.inputs.manageMasterUserPassword) {
          state.masterUserSecrets = [{ secretArn: `arn:aws:secretsmanager:${region}:${ACCOUNT_ID}:secret:rds!db-${id}-${hex(args.name, 6)}`, secretStatus: "active", kmsKeyId: `arn:aws:kms:${region}:${ACCOUNT_ID}:alias/aws/secretsmanager` }];
        }
        break;
      case "command:local:Command": {
        // The mocks run nothing: each step "prints" one recognisable line; the backup verb prints
        // a key of its real shape (the Release reads it from the last line and checks it), the
        // rehearsal's verify step its JSON summary (the stack output restoreRehearsal), the release's
        // verify verb its success line with a time (the Release exports it as releaseVerified).
        const params = String(args.inputs.environment?.NL_PARAMETERS ?? "");
        const verify = /"verb":"release-verify","version":"([^"]+)"/.exec(params);
        state.stdout = /"verb":"backup"/.test(params)
          ? "dumps/daily/db_backup_20000101_020000.dump"
          : /"verb":"restore-rehearsal-verify"/.test(params)
            ? JSON.stringify({ ok: true, at: MOCK_REHEARSAL_AT, backupKey: PROD_LATEST_BACKUP.key, backupSha256: PROD_LATEST_BACKUP.sha256, seconds: 74.6, backupAgeSeconds: 14523 })
            : verify ? `nourishctl: release verify: ${verify[1]} answers through nginx at ${MOCK_VERIFIED_AT}`
              : `mock-output-${hex(args.name, 12)}`;
        state.stderr = "";
        break;
      }
      case "pulumi:pulumi:StackReference":
        // The prod stack's outputs the rehearsal reads, as `pulumi stack output --stack prod` gives them.
        state.outputs = { backupBucket: PROD_BACKUP_BUCKET, backupKmsKeyArn: PROD_BACKUP_KEY_ARN, releaseBucket: PROD_RELEASE_BUCKET, releaseKmsKeyArn: PROD_RELEASE_KEY_ARN };
        state.secretOutputNames = [];
        break;
      case "random:index/randomPassword:RandomPassword":
      case "random:index/randomString:RandomString":
        // A recognisable value, so tests can prove it never leaks into plans or files.
        state.result = `mockgen${hex(args.name, Number(args.inputs.length ?? 32) - 7)}`;
        break;
    }
    return { id, state };
  }

  call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
    switch (args.token) {
      case "aws:index/getCallerIdentity:getCallerIdentity":
        return { accountId: ACCOUNT_ID, arn: `arn:aws:iam::${ACCOUNT_ID}:user/ci`, userId: "AIDACKCEVSQ6C2EXAMPLE", id: ACCOUNT_ID };
      case "aws:index/getRegion:getRegion":
        return { name: this.region, region: this.region, id: this.region, description: this.region, endpoint: `ec2.${this.region}.amazonaws.com` };
      case "aws:index/getPartition:getPartition":
        return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
      case "aws:index/getAvailabilityZones:getAvailabilityZones": {
        const names = ["a", "b", "c"].map((s) => `${this.region}${s}`);
        return { names, zoneIds: names.map((_, i) => `${this.region.replace(/-/g, "").slice(0, 4)}-az${i + 1}`), id: this.region, state: "available" };
      }
      case "aws:ec2/getAmi:getAmi": {
        const owner = (args.inputs.owners ?? [])[0] ?? "136693071363";
        return { id: `ami-${hex(JSON.stringify(args.inputs), 17)}`, imageId: `ami-${hex(JSON.stringify(args.inputs), 17)}`, name: "debian-12-amd64-20261101-1918", ownerId: owner, architecture: "x86_64", rootDeviceName: "/dev/xvda", creationDate: "2026-11-01T19:18:00.000Z" };
      }
      case "aws:ec2/getInstanceType:getInstanceType": {
        const known = INSTANCE_TYPES[args.inputs.instanceType];
        if (!known) throw mockError(`mocks: no data for instance type ${args.inputs.instanceType}; add it to INSTANCE_TYPES`);
        return { id: args.inputs.instanceType, instanceType: args.inputs.instanceType, defaultVcpus: known.vcpus, memorySize: known.memoryMib };
      }
      case "aws:elb/getServiceAccount:getServiceAccount":
        return { id: "098369216593", arn: "arn:aws:iam::098369216593:root" };
      case "aws:s3/getObject:getObject":
        // The latest pointer `nourishctl backup` writes in prod's bucket (whichever bucket config names); nothing else is read.
        if (args.inputs.key === "dumps/daily/latest.json") {
          return { id: `${args.inputs.bucket}/${args.inputs.key}`, bucket: args.inputs.bucket, key: args.inputs.key, contentType: "application/json", body: JSON.stringify(PROD_LATEST_BACKUP) };
        }
        throw mockError(`mocks: no object s3://${args.inputs.bucket}/${args.inputs.key}`);
      case "aws:iam/getPolicyDocument:getPolicyDocument":
        return { id: "policy", json: JSON.stringify({ Version: "2012-10-17", Statement: args.inputs.statements ?? [] }) };
      default:
        // A data source nobody mocked would silently return nothing: say which one.
        throw mockError(`mocks: no answer for data source ${args.token}; add it to scripts/preview/mocks.ts`);
    }
  }
}
