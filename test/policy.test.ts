// The policy pack (policy/policies.ts) against out/<stack>/plan.json as `npm start` writes it:
// every committed stack and variant passes every rule, and each rule catches a deliberately bad
// resource (a copy of the plan with one thing broken).
import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { gzipSync } from "zlib";
import { plaintextSecret, policies } from "../policy/policies";
import { checkPlan, formatViolations } from "../policy/plan";
import { Plan, PlanResource } from "../scripts/preview/plan";
import { ROOT } from "../scripts/preview/stack-file";
import { planOf, VARIANTS } from "./variants";

function res(plan: Plan, type: string, name: string): PlanResource {
  const r = plan.resources.find((x) => x.type === type && x.name === name);
  assert.ok(r, `no ${type} ${name} in the plan`);
  return r;
}

function drop(plan: Plan, type: string, name: string): void {
  const r = res(plan, type, name);
  plan.resources = plan.resources.filter((x) => x !== r);
}

const withoutDenies = (policy: unknown) => JSON.stringify({ ...JSON.parse(String(policy)), Statement: JSON.parse(String(policy)).Statement.filter((s: { Effect: string }) => s.Effect !== "Deny") });

/** One deliberately bad change per rule: [rule, variant it starts from, what to break]. */
const BREAKS: [string, string, string, (p: Plan) => void][] = [
  ["s3-public-access-blocked", "prod", "public bucket policies allowed on the tooling bucket", (p) => { res(p, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "tooling-public-access").inputs.blockPublicPolicy = false; }],
  ["s3-sse-kms", "prod", "tooling bucket on SSE-S3", (p) => { res(p, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "tooling-encryption").inputs.rules = [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }]; }],
  ["s3-versioning", "prod", "backup archive without versioning", (p) => drop(p, "aws:s3/bucketVersioning:BucketVersioning", "backups-archive-versioning")],
  ["s3-tls-only", "prod", "pgBackRest bucket policy without its TLS deny", (p) => { const b = res(p, "aws:s3/bucketPolicy:BucketPolicy", "backups-pgbackrest-policy"); b.inputs.policy = withoutDenies(b.inputs.policy); }],
  ["s3-access-logging", "prod", "backup archive not logged", (p) => drop(p, "aws:s3/bucketLogging:BucketLogging", "backups-archive-logging")],
  ["s3-lifecycle", "staging", "tooling bucket without lifecycle", (p) => drop(p, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "tooling-lifecycle")],
  ["s3-no-force-destroy-on-prod", "prod", "prod tooling bucket with forceDestroy", (p) => { res(p, "aws:s3/bucket:Bucket", "tooling").inputs.forceDestroy = true; }],
  ["ec2-imdsv2", "staging", "IMDSv1 on the app host", (p) => { (res(p, "aws:ec2/instance:Instance", "app-0").inputs.metadataOptions as Record<string, unknown>).httpTokens = "optional"; }],
  ["ec2-volumes-encrypted-cmk", "prod", "data volume on the default EBS key", (p) => { delete res(p, "aws:ebs/volume:Volume", "database-data").inputs.kmsKeyId; }],
  ["ec2-instance-role", "staging", "database host without an instance profile", (p) => { delete res(p, "aws:ec2/instance:Instance", "database-host").inputs.iamInstanceProfile; }],
  ["ec2-detailed-monitoring", "staging", "basic monitoring only", (p) => { res(p, "aws:ec2/instance:Instance", "app-0").inputs.monitoring = false; }],
  ["ec2-termination-protection-on-prod", "prod", "prod database host without termination protection", (p) => { res(p, "aws:ec2/instance:Instance", "database-host").inputs.disableApiTermination = false; }],
  ["ec2-database-not-public", "prod", "an Elastic IP on the database host", (p) => {
    const db = res(p, "aws:ec2/instance:Instance", "database-host");
    p.resources.push({ ...res(p, "aws:ec2/natGateway:NatGateway", "network-nat"), type: "aws:ec2/eip:Eip", name: "db-ip", urn: `${db.urn}-ip`, inputs: { instance: db.id }, propertyDependencies: { instance: [db.urn] } });
  }],
  ["sg-no-open-ingress", "prod", "PostgreSQL open to the internet", (p) => { const r = res(p, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "network-db-from-app"); r.inputs.cidrIpv4 = "0.0.0.0/0"; delete r.inputs.referencedSecurityGroupId; }],
  ["sg-rule-descriptions", "prod", "an ingress rule without a description", (p) => { delete res(p, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "network-app-from-alb").inputs.description; }],
  ["vpc-default-sg-closed", "staging", "the default security group left to AWS", (p) => drop(p, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "network-default")],
  ["log-group-retention-kms", "prod", "flow logs without a key", (p) => { delete res(p, "aws:cloudwatch/logGroup:LogGroup", "network-flow-logs").inputs.kmsKeyId; }],
  ["alarm-has-action", "prod", "a backup alarm that notifies nobody", (p) => { res(p, "aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-db-backup-missing").inputs.alarmActions = []; }],
  ["sns-encrypted", "staging", "alert topic in clear", (p) => { delete res(p, "aws:sns/topic:Topic", "monitoring-alerts").inputs.kmsMasterKeyId; }],
  ["sns-tls-only", "prod", "topic policy without its TLS deny", (p) => { const t = res(p, "aws:sns/topicPolicy:TopicPolicy", "monitoring-alerts-policy"); t.inputs.policy = withoutDenies(t.inputs.policy); }],
  ["kms-policy-and-rotation", "prod", "secrets key without rotation", (p) => { res(p, "aws:kms/key:Key", "secrets-key").inputs.enableKeyRotation = false; }],
  ["alb-hardened", "prod", "ALB without access logs", (p) => { delete res(p, "aws:lb/loadBalancer:LoadBalancer", "app-alb").inputs.accessLogs; }],
  ["alb-modern-tls", "prod", "HTTPS listener on a TLS 1.0 policy", (p) => { res(p, "aws:lb/listener:Listener", "app-https").inputs.sslPolicy = "ELBSecurityPolicy-2016-08"; }],
  ["rds-hardened", "prod-managed-db", "RDS without IAM auth", (p) => { res(p, "aws:rds/instance:Instance", "database-rds").inputs.iamDatabaseAuthenticationEnabled = false; }],
  ["rds-log-groups", "prod-managed-db", "RDS exporting into a group the stack does not create", (p) => {
    res(p, "aws:cloudwatch/logGroup:LogGroup", "monitoring-logs-rds-upgrade").inputs.name = "/aws/rds/instance/someone-else/upgrade";
  }],
  ["release-not-from-backups", "prod", "the release artifact read from the backup archive", (p) => {
    const grant = res(p, "aws:iam/rolePolicy:RolePolicy", "release-artifact-read");
    const archive = res(p, "aws:s3/bucket:Bucket", "backups-archive");
    grant.inputs.policy = JSON.stringify({ Version: "2012-10-17", Statement: [{ Sid: "ReadReleaseArtifacts", Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${archive.id}/dumps/daily/*` }] });
  }],
  ["prod-data-protected", "prod", "prod backup archive not protected", (p) => { res(p, "aws:s3/bucket:Bucket", "backups-archive").options.protect = false; }],
  ["no-plaintext-secrets", "staging", "a database password in the app host's user data", (p) => {
    const i = res(p, "aws:ec2/instance:Instance", "app-0");
    i.inputs.userDataBase64 = gzipSync("#cloud-config\nwrite_files:\n  - path: /etc/nourish-link/app.env\n    content: DB_PASSWORD=correct-horse-battery\n").toString("base64");
  }],
  ["tags", "staging", "a VPC on a provider without default tags", (p) => { res(p, "aws:ec2/vpc:Vpc", "network-vpc").options.provider = null; }],
];

describe("policy pack (policy/)", function () {
  this.timeout(300_000);
  const plans = new Map<string, Plan>();
  before(async () => {
    for (const [name] of VARIANTS) plans.set(name, await planOf(name));
  });

  for (const [name] of VARIANTS) {
    it(`${name}: passes every rule`, async () => {
      const violations = await checkPlan(plans.get(name)!);
      assert.strictEqual(violations.length, 0, formatViolations(violations));
    });
  }

  it("serves as a policy pack: policy/index.ts builds the PolicyPack and announces its gRPC port, as the CLI expects", async () => {
    // The CLI starts the pack in policy/ and reads the port from its stdout.
    const child = spawn(process.execPath, ["-r", "esbuild-register", "-e", 'require("./index.ts")'], { cwd: path.join(ROOT, "policy"), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    try {
      const port = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no port announced in 60 s: ${out}${err}`)), 60_000);
        child.stdout.on("data", (d) => { out += d; const m = /^(\d+)\s*$/m.exec(out); if (m) { clearTimeout(timer); resolve(m[1]); } });
        child.stderr.on("data", (d) => { err += d; });
        child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the pack exited (${code}): ${out}${err}`)); });
      });
      assert.ok(Number(port) > 0);
    } finally {
      child.removeAllListeners("exit");
      child.kill();
    }
  });

  it("names a Checkov or cdk-nag equivalent in every rule, and every rule has a negative test below", () => {
    for (const p of policies) {
      assert.match(p.description, /Checkov|cdk-nag/, p.name);
      assert.strictEqual(p.enforcementLevel, "mandatory", p.name);
    }
    assert.deepStrictEqual(BREAKS.map(([rule]) => rule).sort(), policies.map((p) => p.name).sort());
  });

  for (const [rule, variant, what, breakIt] of BREAKS) {
    it(`${rule} catches: ${what}`, async () => {
      const plan = structuredClone(plans.get(variant)!);
      breakIt(plan);
      const violations = await checkPlan(plan);
      assert.ok(violations.some((v) => v.policy === rule), `${rule} missed it; violations:\n${formatViolations(violations) || "none"}`);
      // Only that rule fired: the break is exactly what the rule is about.
      assert.ok(violations.every((v) => v.policy === rule), formatViolations(violations));
    });
  }

  it("catches internet ingress on a port other than 80/443 even on the entry point", async () => {
    const plan = structuredClone(plans.get("prod")!);
    Object.assign(res(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "network-alb-https").inputs, { fromPort: 22, toPort: 22 });
    assert.match(formatViolations(await checkPlan(plan)), /\[sg-no-open-ingress\] network-alb-https: ingress from the internet on 22-22/);
  });

  it("finds plain-text secrets in command text, and not the parameter names hosts look secrets up by", () => {
    assert.strictEqual(plaintextSecret("DB_PASSWORD_PARAMETER=/nourish-link/prod/db-password\nDJANGO_SECRET_KEY_PARAMETER=/x"), undefined);
    assert.strictEqual(plaintextSecret('PGPASSWORD="$(aws ssm get-parameter …)"'), undefined);
    assert.match(String(plaintextSecret("export PGPASSWORD=s3cr3t-v4lue-123")), /password/);
    assert.match(String(plaintextSecret("-----BEGIN OPENSSH PRIVATE KEY-----")), /private key/);
    assert.match(String(plaintextSecret("postgresql://app:pw@db/x")), /database URL/);
  });
});

describe("npm run policy (the pack without the Pulumi CLI)", function () {
  const policyCli = (args: string[]) => spawnSync("node", ["-r", "esbuild-register", path.join(ROOT, "scripts", "policy-check.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });

  it("--help prints its usage; an unknown argument or a --plan that is not there is refused in one line", () => {
    const help = policyCli(["--help"]);
    assert.strictEqual(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: npm run policy \[-- --stack <staging\|prod> \| --plan <plan\.json>\]/);
    const bad = policyCli(["--stak", "prod"]);
    assert.strictEqual(bad.status, 2);
    assert.match(bad.stderr, /^policy: unknown argument '--stak'/);
    const missing = policyCli(["--plan", path.join(ROOT, "out", "no-such-stack", "plan.json")]);
    assert.strictEqual(missing.status, 2);
    assert.match(missing.stderr, /^policy: --plan \S+ does not exist$/m);
  });

  it("checks the stack as it is now, never a plan an earlier preview left in out/; --plan checks the file named", async () => {
    // A stale, failing plan where an earlier `npm start` would have left it: --stack ignores it.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-policy-"));
    try {
      const stale = path.join(dir, "plan.json");
      const plan = await planOf("staging");
      (res(plan, "aws:ec2/instance:Instance", "app-0").inputs.metadataOptions as Record<string, unknown>).httpTokens = "optional";
      fs.writeFileSync(stale, JSON.stringify(plan));
      const now = policyCli(["--stack", "staging"]);
      assert.strictEqual(now.status, 0, now.stderr);
      assert.match(now.stdout, /^policy: stack staging \(previewed now\) passes every rule$/m);
      const named = policyCli(["--plan", stale]);
      assert.strictEqual(named.status, 1, named.stdout);
      assert.match(named.stderr, new RegExp(`^policy: \\d+ violation\\(s\\) in ${stale.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:`, "m"));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

