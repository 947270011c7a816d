// The releases bucket's documents, pure: ARNs in, JSON-shaped objects out. What may happen there:
// - read: the app hosts of both stacks, releases/ only (their Release's grant: the artifact's
//   folder, and Decrypt with the releases key);
// - publish: whoever holds a stack's operator policy (people, and the CI role that attaches it)
//   and the publisher role of ci.github.appRepository: a new key under releases/, never an
//   overwrite (the bucket policy wants If-None-Match: * on every key), never a delete;
// - TLS only, SSE-KMS with the releases key only (the backup buckets' encryptedBucketPolicy).
import { denyOverwriting, encryptedBucketPolicy, PolicyDocument, Statement } from "../backups/policy";
import { RELEASES_PREFIX } from "../release/patterns";

export { RELEASES_PREFIX };

export interface ReleaseBucketArns { bucketArn: string; kmsKeyArn: string }

/** TLS only, the releases key only, and every key write-once. */
export function releaseBucketPolicy(a: ReleaseBucketArns): PolicyDocument {
  const doc = encryptedBucketPolicy(a.bucketArn, a.kmsKeyArn);
  return { ...doc, Statement: [...doc.Statement, denyOverwriting("DenyOverwritingReleases", [`${a.bucketArn}/*`])] };
}

/** Publishing a release: list and read releases/ (is this version there already?), put a new key, use the key. */
export function releasePublishStatements(a: ReleaseBucketArns): Statement[] {
  return [
    { Sid: "ListReleases", Effect: "Allow", Action: "s3:ListBucket", Resource: a.bucketArn, Condition: { StringLike: { "s3:prefix": [`${RELEASES_PREFIX}*`] } } },
    { Sid: "PublishReleases", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: `${a.bucketArn}/${RELEASES_PREFIX}*` },
    { Sid: "ReleasesKey", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: a.kmsKeyArn },
  ];
}

/** Staging names prod's bucket in release.artifact.bucket: it must be the one prod exports. */
export function releaseBucketMismatch(configured: string, exported: unknown, prodStack: string): string | undefined {
  if (typeof exported !== "string" || exported === "") return `nourish-link:rehearsal.prodStack: stack ${prodStack} has no releaseBucket output (is its release.artifact an s3 one, and has it run pulumi up?)`;
  if (exported !== configured) return `nourish-link:release.artifact.bucket must be ${JSON.stringify(exported)}, the releases bucket of ${prodStack} (its releaseBucket output), got ${JSON.stringify(configured)}`;
  return undefined;
}
