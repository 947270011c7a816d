// HostTooling: nourishctl and its verb library, delivered through a private S3 bucket by content
// hash. Each version lives under tooling/<hash>/: `manifest.sha256` (sha256sum lines of every
// file of scripts/host and of etc/release-source.env, the release source the stack renders; its
// own SHA-256 is the hash) and host/ (the files, laid out as scripts/host, plus etc/).
// `tooling/current` names the version this stack last deployed.
//
// Who trusts what: a host installs a version only when the manifest's SHA-256 is the hash it was
// given and every file matches the manifest (toolingInstallScript, the one installer). A release
// step is given the hash by the stack (the document's toolingHash parameter); first boot reads it
// from `tooling/current`. So the user data no longer carries the sums and does not change when
// scripts/host does (a changed user data would replace every host). What that gives up: the sums
// came from whoever could change the instances; now the pointer comes from whoever can write this
// bucket. Only the deploying principal can: the hosts' roles and the operator policy may read
// tooling/*, nothing may write it but `pulumi up`, and the bucket is private and TLS-only. The hash
// check still makes a half-uploaded or mixed version fail first boot instead of installing it.
//
// Objects carry the host roles and host path in tags, so the offline preview writes them under
// out/<stack>/hosts/<role>/ like every other host file.
import * as fs from "fs";
import * as path from "path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { accessLogBucketPolicy, accessLogLifecycleRules, encryptedBucketPolicy, housekeepingLifecycleRules } from "../backups/policy";
import { StackConfig } from "../config";
import { keyPolicy } from "../keys/policy";
import { hardenBucket } from "../storage";
import { TOOLING_MANIFEST, TOOLING_POINTER_KEY, toolingInstallScript, toolingPrefix } from "../release/document";
import { GeneratedFile, stackToolingFiles, toolingFilesFor, toolingHash, toolingManifest, TOOLING_DIR } from "../release/steps";

export type HostRoleName = "app" | "db";

/** The objects of one tooling version (scripts/host and the generated files): key, content and which roles install it where. */
export function toolingObjects(dir = TOOLING_DIR, generated: GeneratedFile[] = []): { key: string; content: string; roles: HostRoleName[]; hostPath?: string; mode?: string }[] {
  const hash = toolingHash(dir, generated);
  const manifest = toolingManifest(dir, generated);
  const contentOf = (rel: string) => generated.find((g) => g.rel === rel)?.content ?? fs.readFileSync(path.join(dir, rel), "utf8");
  const targets = new Map<string, { roles: HostRoleName[]; hostPath: string; mode: string }>();
  for (const role of ["app", "db"] as const) {
    for (const f of toolingFilesFor(role, dir, generated)) {
      const t = targets.get(f.source) ?? { roles: [], hostPath: f.target, mode: f.mode };
      t.roles.push(role);
      targets.set(f.source, t);
    }
  }
  return [
    { key: `${toolingPrefix(hash)}/${TOOLING_MANIFEST}`, content: manifest.join("\n") + "\n", roles: [] },
    ...manifest.map((l) => l.slice(66)).map((rel) => ({
      key: `${toolingPrefix(hash)}/host/${rel}`, content: contentOf(rel), roles: targets.get(rel)?.roles ?? [],
      hostPath: targets.get(rel)?.hostPath, mode: targets.get(rel)?.mode,
    })),
    // Last, and after the rest (see dependsOn below): a new host boots only what is complete.
    { key: TOOLING_POINTER_KEY, content: `${hash}\n`, roles: [] },
  ];
}

export interface HostToolingArgs {
  config: StackConfig;
}

export class HostTooling extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  private readonly bucketId: pulumi.Output<string>;
  /** The key the tooling bucket is encrypted with: readers decrypt with it. */
  readonly kmsKeyArn: pulumi.Output<string>;
  /** The content hash of the version uploaded (what the release installs). */
  readonly hash: string;
  /** Every object, pointer last: a host must not boot before its tooling exists. */
  readonly objects: aws.s3.BucketObjectv2[];

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

    // The tooling of this stack: scripts/host and the release source its config names.
    const generated = stackToolingFiles(args.config.release);
    this.hash = toolingHash(TOOLING_DIR, generated);
    const all = toolingObjects(TOOLING_DIR, generated);
    const files = all.slice(0, -1).map((f) => new aws.s3.BucketObjectv2(`${name}-${f.key.split("/").slice(2).join("-").replace(/[/.]/g, "-")}`, {
      bucket: bucket.id,
      key: f.key,
      content: f.content,
      contentType: "text/plain",
      // A new key replaces the object: the new version exists before the old one is deleted.
      ...(f.hostPath ? { tags: { role: f.roles.join(" "), hostPath: f.hostPath, mode: f.mode! } } : {}),
    }, o));
    const pointer = all[all.length - 1];
    const current = new aws.s3.BucketObjectv2(`${name}-current`, {
      bucket: bucket.id, key: pointer.key, content: pointer.content, contentType: "text/plain",
    }, { parent: this, dependsOn: files });
    this.objects = [...files, current];
    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;
    this.bucketId = bucket.id;
    this.registerOutputs({ bucketName: this.bucketName, hash: this.hash });
  }

  /**
   * The cloud-init command (one runcmd entry, run by sh as root) that puts the version named by
   * tooling/current in place before nourishctl setup (toolingInstallScript); otherwise first boot
   * stops here. Its text depends on the bucket and region only, not on the tooling.
   */
  installCommands(region: string): pulumi.Output<string[]> {
    return this.bucketName.apply((bucket) => {
      const pointer = `s3://${bucket}/${TOOLING_POINTER_KEY}`;
      const steps = [
        'fail() { echo "nourish-link: first boot stopped before nourishctl setup: $*" >&2; exit 1; }',
        's3() { if [ -n "${S3_ENDPOINT:-}" ]; then aws --endpoint-url "$S3_ENDPOINT" s3 "$@"; else aws s3 "$@"; fi; }',
        `hash=$(s3 cp --only-show-errors --region ${region} "${pointer}" -) || fail "cannot read ${pointer}"`,
        `case "$hash" in *[!0-9a-f]*|"") fail "${pointer} does not name a tooling version" ;; esac`,
        `[ "\${#hash}" -eq 64 ] || fail "${pointer} does not name a tooling version"`,
        ...toolingInstallScript(bucket, region),
      ];
      // A subshell: its EXIT trap cleans the stage, and `fail` stops first boot through its status.
      return [`( ${steps.join("\n")}\n) || exit 1`];
    });
  }

  /** An object the stack writes for its hosts beside the tooling (tooling/…, readable as the tooling is). */
  putObject(name: string, key: string, content: pulumi.Output<string>): aws.s3.BucketObjectv2 {
    if (!key.startsWith("tooling/")) throw new Error(`tooling: ${key} is not under tooling/`);
    return new aws.s3.BucketObjectv2(name, { bucket: this.bucketId, key, content, contentType: "application/json" }, { parent: this });
  }

  /** Lets a host role read the tooling (every version: a release may install any the stack uploaded). */
  grantRead(name: string, role: aws.iam.Role): aws.iam.RolePolicy {
    return new aws.iam.RolePolicy(name, {
      role: role.id,
      policy: pulumi.all([this.bucketArn, this.kmsKeyArn]).apply(([arn, key]) => JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          this.readStatement(arn),
          // `aws s3 cp --recursive` lists the version's folder.
          { Sid: "ListTooling", Effect: "Allow", Action: "s3:ListBucket", Resource: arn, Condition: { StringLike: { "s3:prefix": ["tooling/*"] } } },
          { Sid: "DecryptTooling", Effect: "Allow", Action: "kms:Decrypt", Resource: key },
        ],
      })),
    }, { parent: this });
  }

  /** Read access to the tooling objects, nothing else of the bucket. */
  readStatement(arn: string): Record<string, unknown> {
    return { Sid: "ReadTooling", Effect: "Allow", Action: "s3:GetObject", Resource: `${arn}/tooling/*` };
  }
}
