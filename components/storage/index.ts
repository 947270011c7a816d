// What every bucket of the estate gets, whatever it holds: objects owned by the bucket owner
// (ACLs off), all public access blocked, versioning, default encryption and, when given,
// lifecycle rules. Returns what a bucket policy or Object Lock must wait for.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface BucketBaseline {
  encryption: aws.types.input.s3.BucketServerSideEncryptionConfigurationRule;
  lifecycle?: pulumi.Input<aws.types.input.s3.BucketLifecycleConfigurationRule>[];
}

export function hardenBucket(id: string, bucket: aws.s3.Bucket, b: BucketBaseline, parent: pulumi.Resource) {
  const o = { parent };
  new aws.s3.BucketOwnershipControls(`${id}-ownership`, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } }, o);
  const publicAccess = new aws.s3.BucketPublicAccessBlock(`${id}-public-access`, {
    bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true,
  }, o);
  const versioning = new aws.s3.BucketVersioning(`${id}-versioning`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, o);
  new aws.s3.BucketServerSideEncryptionConfiguration(`${id}-encryption`, { bucket: bucket.id, rules: [b.encryption] }, o);
  if (b.lifecycle) {
    new aws.s3.BucketLifecycleConfiguration(`${id}-lifecycle`, { bucket: bucket.id, rules: b.lifecycle }, { parent, dependsOn: [versioning] });
  }
  return { publicAccess, versioning };
}
