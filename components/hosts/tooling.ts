// HostTooling: nourishctl and its verb library, delivered through a private S3 bucket because
// they outgrew EC2's 16 KB user-data limit. Each role gets only the verbs it runs; cloud-init
// downloads them to a staging directory, checks them against the SHA-256 sums its user data
// carries (as the release does), and only then installs them, before `nourishctl setup`. Objects
// are laid out as scripts/host (nourishctl, lib/*.sh) and carry their host path in tags, so the
// offline preview writes them under out/<stack>/hosts/<role>/ like every other host file.
import * as fs from "fs";
import * as path from "path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { accessLogBucketPolicy, accessLogLifecycleRules, encryptedBucketPolicy, housekeepingLifecycleRules } from "../backups/policy";
import { StackConfig } from "../config";
import { keyPolicy } from "../keys/policy";
import { hardenBucket } from "../storage";
import { checkedInstall, shq, toolingFilesFor, TOOLING_DIR } from "../release/steps";

export type HostRoleName = "app" | "db";

export interface HostToolingArgs {
  config: StackConfig;
}

export class HostTooling extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  /** The key the tooling bucket is encrypted with: readers decrypt with it. */
  readonly kmsKeyArn: pulumi.Output<string>;
  private readonly bucketArn: pulumi.Output<string>;
  /** The objects of each role, for dependsOn: a host must not boot before its tooling exists. */
  readonly objects: Record<HostRoleName, aws.s3.BucketObjectv2[]>;

  constructor(name: string, args: HostToolingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:hosts:HostTooling", name, {}, opts);
    // Rebuilt from the repository on every deploy, so nothing here needs protecting; but only a
    // staging stack may be destroyed with objects in its buckets (prod keeps its access logs).
    const o = { parent: this };
    const forceDestroy = args.config.environment === "staging";
    // What prod keeps: the access logs (an audit trail) and the key (a deleted key strands objects).
    const keep = { parent: this, protect: !forceDestroy, retainOnDelete: !forceDestroy };
    const account = aws.getCallerIdentityOutput({}, o).accountId;
    const key = new aws.kms.Key(`${name}-key`, {
      description: `nourish-link ${args.config.stack}: host tooling`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.jsonStringify(account.apply((a) => keyPolicy(a))),
    }, keep);
    const bucket = new aws.s3.Bucket(name, { forceDestroy }, o);
    const { publicAccess } = hardenBucket(name, bucket, {
      encryption: { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key.arn }, bucketKeyEnabled: true },
      lifecycle: housekeepingLifecycleRules(),
    }, this);
    new aws.s3.BucketPolicy(`${name}-policy`, {
      bucket: bucket.id,
      policy: pulumi.jsonStringify(pulumi.all([bucket.arn, key.arn]).apply(([b, k]) => encryptedBucketPolicy(b, k))),
    }, { parent: this, dependsOn: [publicAccess] });
    // Who fetched which file (S3 server access logs): SSE-S3, as S3 log delivery requires.
    const logs = new aws.s3.Bucket(`${name}-access-logs`, { forceDestroy }, keep);
    const l = hardenBucket(`${name}-access-logs`, logs, { encryption: { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }, lifecycle: accessLogLifecycleRules() }, this);
    const logPolicy = new aws.s3.BucketPolicy(`${name}-access-logs-policy`, {
      bucket: logs.id,
      policy: pulumi.jsonStringify(pulumi.all([logs.arn, bucket.arn, account]).apply(([lg, b, a]) => accessLogBucketPolicy(lg, "s3/", [b], a))),
    }, { parent: this, dependsOn: [l.publicAccess] });
    new aws.s3.BucketLogging(`${name}-logging`, {
      bucket: bucket.id,
      targetBucket: logs.id,
      targetPrefix: "s3/tooling/",
      targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: "EventTime" } },
    }, { parent: this, dependsOn: [logPolicy] });
    this.kmsKeyArn = key.arn;

    const objectsOf = (role: HostRoleName) => toolingFilesFor(role).map((f) => new aws.s3.BucketObjectv2(`${name}-${role}${f.target.replace(/[/.]/g, "-")}`, {
      bucket: bucket.id,
      key: `tooling/${role}/${f.source}`,
      content: fs.readFileSync(path.join(TOOLING_DIR, f.source), "utf8"),
      contentType: "text/x-shellscript",
      tags: { role, hostPath: f.target, mode: f.mode },
    }, o));
    this.objects = { app: objectsOf("app"), db: objectsOf("db") };
    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;
    this.registerOutputs({ bucketName: this.bucketName });
  }

  /**
   * The cloud-init command (one runcmd entry, run by sh as root) that puts the role's tooling in
   * place before nourishctl setup: downloaded to a staging directory, checked against the sums
   * in this user data, installed only when every file matches. Otherwise first boot stops here.
   */
  installCommands(role: HostRoleName, region: string): pulumi.Output<string[]> {
    return this.bucketName.apply((bucket) => {
      const source = `s3://${bucket}/tooling/${role}/`;
      const steps = [
        "stage=$(mktemp -d)",
        'cd "$stage"',
        `aws s3 cp --recursive --only-show-errors --region ${shq(region)} ${shq(source)} .`,
        ...checkedInstall(role, ""),
        "cd /",
        'rm -rf "$stage"',
      ];
      return [[
        `if ! ( ${steps.join(" &&\n  ")} ); then`,
        `  echo "nourish-link: first boot stopped before nourishctl setup: the tooling from ${source} could not be fetched or does not match the SHA-256 sums in this host's user data (see above)" >&2`,
        "  exit 1",
        "fi",
      ].join("\n")];
    });
  }

  /** Lets `role` read its own role's tooling, nothing else. */
  grantRead(name: string, role: aws.iam.Role, hostRole: HostRoleName): aws.iam.RolePolicy {
    return new aws.iam.RolePolicy(name, {
      role: role.id,
      policy: pulumi.all([this.bucketArn, this.kmsKeyArn]).apply(([arn, key]) => JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Sid: "ReadTooling", Effect: "Allow", Action: "s3:GetObject", Resource: `${arn}/tooling/${hostRole}/*` },
          { Sid: "ListTooling", Effect: "Allow", Action: "s3:ListBucket", Resource: arn, Condition: { StringLike: { "s3:prefix": [`tooling/${hostRole}/*`] } } },
          { Sid: "DecryptTooling", Effect: "Allow", Action: "kms:Decrypt", Resource: key },
        ],
      })),
    }, { parent: this });
  }
}
