// The releases bucket: where release tarballs live (releases/<...>), created by the prod stack and
// named by its release.artifact.bucket (a deterministic name: both committed stacks carry it, and
// a bucket name is global, so a fork sets its own in both files). Versioned, SSE-KMS with a key of
// its own, TLS only, public access blocked, ACLs off, every key write-once (policy.ts), access
// logged into the backups' access-log bucket (BackupStore's `alsoLog`); protected and retained on
// prod. Staging reads prod's through a StackReference (rehearsal.prodStack) and refuses a
// release.artifact.bucket that is not prod's releaseBucket output.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { housekeepingLifecycleRules } from "../backups/policy";
import { PROJECT, StackConfig } from "../config";
import { keyPolicy } from "../keys/policy";
import { hardenBucket } from "../storage";
import { releaseBucketMismatch, releaseBucketPolicy } from "./policy";

/** What the Release, the operator policy and the publisher need of the releases bucket. */
export interface ReleaseBucketRef {
  bucketName: pulumi.Output<string>;
  bucketArn: pulumi.Output<string>;
  kmsKeyArn: pulumi.Output<string>;
}

export class ReleaseBucket extends pulumi.ComponentResource implements ReleaseBucketRef {
  readonly bucket: aws.s3.Bucket;
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  readonly kmsKeyArn: pulumi.Output<string>;

  constructor(name: string, args: { config: StackConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:releases:ReleaseBucket", name, {}, opts);
    const { config } = args;
    const artifact = config.release.artifact;
    if (artifact.type !== "s3") throw new Error("ReleaseBucket: release.artifact is not an s3 one");
    const prod = config.environment === "prod";
    const keep = { parent: this, protect: prod, retainOnDelete: prod };
    const account = aws.getCallerIdentityOutput({}, { parent: this }).accountId;
    this.bucket = new aws.s3.Bucket(`${name}-bucket`, { bucket: artifact.bucket, forceDestroy: !prod }, keep);
    const key = new aws.kms.Key(`${name}-key`, {
      description: `nourish-link ${config.stack}: release artifacts`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.jsonStringify(account.apply((a) => keyPolicy(a))),
    }, keep);
    new aws.kms.Alias(`${name}-key-alias`, { name: `alias/${PROJECT}-${config.stack}-releases`, targetKeyId: key.keyId }, { parent: this });
    const hardened = hardenBucket(`${name}-bucket`, this.bucket, {
      encryption: { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key.arn }, bucketKeyEnabled: true },
      lifecycle: housekeepingLifecycleRules(),
    }, this);
    new aws.s3.BucketPolicy(`${name}-bucket-policy`, {
      bucket: this.bucket.id,
      policy: pulumi.jsonStringify(pulumi.all([this.bucket.arn, key.arn]).apply(([bucketArn, kmsKeyArn]) => releaseBucketPolicy({ bucketArn, kmsKeyArn }))),
    }, { parent: this, dependsOn: [hardened.publicAccess] });
    this.bucketName = this.bucket.bucket;
    this.bucketArn = this.bucket.arn;
    this.kmsKeyArn = key.arn;
    this.registerOutputs({ bucketName: this.bucketName, kmsKeyArn: this.kmsKeyArn });
  }
}

/**
 * Staging: prod's releases bucket, read from prod's outputs (releaseBucket, releaseKmsKeyArn)
 * through a StackReference to rehearsal.prodStack. The bucket must be the one release.artifact.bucket
 * names, or the preview stops with one line naming that key.
 */
export function prodReleaseBucket(name: string, config: StackConfig, parent: pulumi.Resource): ReleaseBucketRef {
  const artifact = config.release.artifact;
  if (artifact.type !== "s3") throw new Error("prodReleaseBucket: release.artifact is not an s3 one");
  const prodStack = config.rehearsal.prodStack;
  const ref = new pulumi.StackReference(`${name}-prod`, { name: prodStack }, { parent });
  const bucketName = ref.requireOutput("releaseBucket").apply((v: unknown) => {
    const problem = releaseBucketMismatch(artifact.bucket, v, prodStack);
    if (problem) throw new Error(problem);
    return v as string;
  });
  const kmsKeyArn = ref.requireOutput("releaseKmsKeyArn").apply((v: unknown) => {
    if (typeof v !== "string" || v === "") throw new Error(`nourish-link:rehearsal.prodStack: stack ${prodStack} has no releaseKmsKeyArn output`);
    return v;
  });
  return { bucketName, bucketArn: bucketName.apply((b) => `arn:aws:s3:::${b}`), kmsKeyArn };
}
