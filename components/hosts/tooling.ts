// HostTooling: nourishctl and its verb library, delivered through a private S3 bucket because
// they outgrew EC2's 16 KB user-data limit. Each role gets only the verbs it runs; cloud-init
// copies them into place before `nourishctl setup`. Objects carry their host path in tags, so
// the offline preview writes them under out/<stack>/hosts/<role>/ like every other host file.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { denyInsecureTransport } from "../backups/policy";
import { hardenBucket } from "../storage";
import { nourishctlFiles } from "./user-data";

export type HostRoleName = "app" | "db";

export class HostTooling extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  private readonly bucketArn: pulumi.Output<string>;
  /** The objects of each role, for dependsOn: a host must not boot before its tooling exists. */
  readonly objects: Record<HostRoleName, aws.s3.BucketObjectv2[]>;

  constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:hosts:HostTooling", name, {}, opts);
    // Rebuilt from the repository on every deploy, so nothing here needs protecting.
    const o = { parent: this };
    const bucket = new aws.s3.Bucket(name, { forceDestroy: true }, o);
    const { publicAccess } = hardenBucket(name, bucket, { encryption: { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } } }, this);
    new aws.s3.BucketPolicy(`${name}-policy`, {
      bucket: bucket.id,
      policy: bucket.arn.apply((arn) => JSON.stringify({ Version: "2012-10-17", Statement: [denyInsecureTransport(arn)] })),
    }, { parent: this, dependsOn: [publicAccess] });

    const objectsOf = (role: HostRoleName) => nourishctlFiles(role).map((f) => new aws.s3.BucketObjectv2(`${name}-${role}${f.path.replace(/[/.]/g, "-")}`, {
      bucket: bucket.id,
      key: `tooling/${role}${f.path}`,
      content: f.content,
      contentType: "text/x-shellscript",
      tags: { role, hostPath: f.path, mode: f.permissions ?? "0644" },
    }, o));
    this.objects = { app: objectsOf("app"), db: objectsOf("db") };
    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;
    this.registerOutputs({ bucketName: this.bucketName });
  }

  /** Cloud-init commands that put the role's tooling in place (run before nourishctl setup). */
  installCommands(role: HostRoleName, region: string): pulumi.Output<string[]> {
    return this.bucketName.apply((bucket) => [
      `aws s3 cp --recursive --only-show-errors --region ${region} s3://${bucket}/tooling/${role}/ /`,
      ...nourishctlFiles(role).filter((f) => f.permissions === "0755").map((f) => `chmod 0755 ${f.path}`),
    ]);
  }

  /** Lets `role` read its own role's tooling, nothing else. */
  grantRead(name: string, role: aws.iam.Role, hostRole: HostRoleName): aws.iam.RolePolicy {
    return new aws.iam.RolePolicy(name, {
      role: role.id,
      policy: this.bucketArn.apply((arn) => JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Sid: "ReadTooling", Effect: "Allow", Action: "s3:GetObject", Resource: `${arn}/tooling/${hostRole}/*` },
          { Sid: "ListTooling", Effect: "Allow", Action: "s3:ListBucket", Resource: arn, Condition: { StringLike: { "s3:prefix": [`tooling/${hostRole}/*`] } } },
        ],
      })),
    }, { parent: this });
  }
}
