// The Release under mocks: `pulumi up` converging the hosts to release.version through SSM Run
// Command, step by step, in both committed stacks with no secret set. The graph (dependsOn), the
// triggers, each step's document parameters, the SSM document, the operator policy, the config
// that removed the SSH path, and no port 22 anywhere.
import * as assert from "assert";
import * as aws from "@pulumi/aws";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, loadConfig, parseSettings } from "../components/config";
import { HostTooling } from "../components/hosts/tooling";
import { Release, STEP_COMMAND } from "../components/release";
import { PARAMETER_NAMES, VERBS } from "../components/release/document";
import { RELEASE_SOURCE_PATH, renderReleaseSource } from "../components/release/source";
import { Artifact, backupKeyFrom, releasePlan, shq, stackToolingFiles, toolingHash, toolingManifest, TOOLING_DIR } from "../components/release/steps";
import { releasePublishStatements } from "../components/releases/policy";
import { ACCOUNT_ID, PROD_RELEASE_KEY_ARN } from "../scripts/preview/mocks";
import { hostFiles, toPlan } from "../scripts/preview/plan";
import { committedStack, one, programError, ProgramRun, RecordedResource, runProgram, runStack, stackConfig } from "./harness";
import { run } from "./tools";
import { parse } from "yaml";

const COMMAND = "command:local:Command";
const BUCKET = "nourish-link-releases";
const GIT_COMMIT = "4c9d381ee11d476062383b684cbe0d11fde4912d";
const SHA = { prod: "57673bba1bb6907251bb58edb0e35dfc1b7a9285e76c8cd82cc2a60e70b1577d", staging: "1a3bb791d9e2b089c21ce61ed837c9685ca7bb4fe487781dafc1132d2ac8e37d" };
const VERSION = { prod: "1.4.1", staging: "1.4.2" };
const MOCK_KEY = "dumps/daily/db_backup_20000101_020000.dump";
/** The committed stack's release: its version and artifact, as Pulumi.<stack>.yaml names them. */
const releaseOf = (stack: "prod" | "staging"): { version: string; artifact: Artifact } => ({
  version: VERSION[stack], artifact: { type: "s3", bucket: BUCKET, key: `releases/${VERSION[stack]}/nourish-link-${VERSION[stack]}.tar.gz`, sha256: SHA[stack] },
});
/** The stack's tooling: scripts/host and the release source its config names. */
const stackHash = (stack: "prod" | "staging", dir = TOOLING_DIR) => toolingHash(dir, stackToolingFiles(releaseOf(stack)));
const toolingObjectsOf = (r: ProgramRun) => r.resources.filter((x) => x.type === "aws:s3/bucketObjectv2:BucketObjectv2" && x.parent?.endsWith("HostTooling::tooling"));

// The Release's own steps (staging's restore rehearsal adds commands of its own: test/rehearsal-plan.test.ts).
const steps = (r: ProgramRun) => r.resources.filter((x) => x.type === COMMAND && x.parent?.endsWith("nourish-link:release:Release::release"));
const byName = (r: ProgramRun) => new Map(steps(r).map((x) => [x.name, x]));

/** The release steps a step depends on, by name. */
function stepDeps(r: ProgramRun, name: string): string[] {
  const urnToName = new Map(steps(r).map((x) => [x.urn, x.name]));
  const step = byName(r).get(name);
  assert.ok(step, `no release step ${name} (have: ${[...byName(r).keys()].join(", ")})`);
  return step.dependsOn.map((u) => urnToName.get(u)).filter((n): n is string => n !== undefined).sort();
}
const env = (x: RecordedResource) => x.inputs.environment as Record<string, string>;
const paramsOf = (r: ProgramRun, name: string) => JSON.parse(env(byName(r).get(name)!)["NL_PARAMETERS"]) as Record<string, string>;
const triggersOf = (r: ProgramRun) => Object.fromEntries(steps(r).map((x) => [x.name, x.inputs.triggers]));
const instanceId = (r: ProgramRun, name: string) => one(r, "aws:ec2/instance:Instance", name).id;

describe("Release through SSM Run Command", () => {
  const runs: Record<string, ProgramRun> = {};
  before(async () => {
    runs.prod = await committedStack("prod");
    runs.staging = await committedStack("staging");
  });

  for (const stack of ["staging", "prod"] as const) {
    describe(`the committed ${stack} stack, no secret set`, () => {
      const apps = stack === "prod" ? ["app-0", "app-1"] : ["app-0"];
      const all = ["db", ...apps];
      const n = (kind: string, h: string) => `release-${kind}-${h}`;

      it("runs the manual's order: tooling on every host, backup on the db host, fetch, migrate on app-0, collectstatic, switch host by host, verify", () => {
        const r = runs[stack];
        const expected = [
          ...all.map((h) => n("tooling-install", h)), n("backup", "db"), ...apps.map((h) => n("fetch", h)), n("migrate", "app-0"),
          ...apps.map((h) => n("collectstatic", h)), ...apps.map((h) => n("switch", h)), ...apps.map((h) => n("verify", h)),
        ];
        assert.deepStrictEqual(r.outputs.releaseSteps, expected);
        assert.deepStrictEqual([...byName(r).keys()].sort(), [...expected].sort());
        for (const h of all) assert.deepStrictEqual(stepDeps(r, n("tooling-install", h)), []);
        assert.deepStrictEqual(stepDeps(r, n("backup", "db")), all.map((h) => n("tooling-install", h)).sort());
        for (const h of apps) assert.deepStrictEqual(stepDeps(r, n("fetch", h)), [n("backup", "db"), n("tooling-install", h)]);
        assert.deepStrictEqual(stepDeps(r, n("migrate", "app-0")), apps.map((h) => n("fetch", h)).sort());
        for (const h of apps) assert.deepStrictEqual(stepDeps(r, n("collectstatic", h)), [n("fetch", h), n("migrate", "app-0")].sort());
        // The first switch waits for every host's static files (and, through its key, the backup).
        assert.deepStrictEqual(stepDeps(r, n("switch", "app-0")), [n("backup", "db"), ...apps.map((h) => n("collectstatic", h))].sort());
        if (apps.length > 1) assert.deepStrictEqual(stepDeps(r, n("switch", "app-1")), [n("backup", "db"), n("switch", "app-0")]);
        for (const h of apps) assert.deepStrictEqual(stepDeps(r, n("verify", h)), apps.map((a) => n("switch", a)).sort());
        const steps = r.outputs.releaseSteps as string[];
        steps.forEach((s, i) => { for (const d of stepDeps(r, s)) assert.ok(steps.indexOf(d) < i, `${s} is listed before ${d}`); });
      });

      it("sends each step's verb and parameters to its host's instance, the pre-release backup's key to the switch", () => {
        const r = runs[stack];
        const v = VERSION[stack];
        const hash = stackHash(stack);
        for (const h of all) assert.deepStrictEqual(paramsOf(r, n("tooling-install", h)), { verb: "tooling-install", toolingHash: hash });
        assert.deepStrictEqual(paramsOf(r, n("backup", "db")), { verb: "backup" });
        for (const h of apps) {
          // The version only: where it comes from is the release source in the tooling (below).
          assert.deepStrictEqual(paramsOf(r, n("fetch", h)), { verb: "release-fetch", version: v });
          assert.deepStrictEqual(paramsOf(r, n("collectstatic", h)), { verb: "release-collectstatic", version: v });
          assert.deepStrictEqual(paramsOf(r, n("switch", h)), { verb: "release-switch", version: v, backupKey: MOCK_KEY });
          assert.deepStrictEqual(paramsOf(r, n("verify", h)), { verb: "release-verify", version: v });
        }
        assert.deepStrictEqual(paramsOf(r, n("migrate", "app-0")), { verb: "release-migrate", version: v });
        assert.strictEqual(r.outputs.releasePreReleaseBackup, MOCK_KEY);
        const doc = one(r, "aws:ssm/document:Document", "release-nourishctl");
        for (const x of steps(r)) {
          const host = x.name.endsWith("-db") ? "database-host" : x.name.slice(-5);
          assert.strictEqual(x.inputs.create, STEP_COMMAND, "the command text is fixed: everything else comes through the environment");
          assert.deepStrictEqual(Object.keys(env(x)).sort(), ["NL_DOCUMENT", "NL_INSTANCE_ID", "NL_PARAMETERS", "NL_REGION", "NL_STEP", "NL_TIMEOUT_SECONDS"]);
          assert.strictEqual(env(x).NL_INSTANCE_ID, instanceId(r, host), x.name);
          assert.strictEqual(env(x).NL_DOCUMENT, `nourish-link-${stack}-nourishctl`);
          assert.strictEqual(env(x).NL_STEP, x.name);
          assert.strictEqual(env(x).NL_TIMEOUT_SECONDS, "1800");
          assert.strictEqual(env(x).NL_REGION, "af-south-1");
          assert.strictEqual(doc.inputs.name, env(x).NL_DOCUMENT);
        }
      });

      it("writes the release source into the tooling version the release installs: the app hosts' /etc/nourish-link/release-source.env", () => {
        const r = runs[stack];
        const source = toolingObjectsOf(r).find((o) => o.inputs.key === `tooling/${stackHash(stack)}/host/etc/release-source.env`);
        assert.ok(source, `no release source in tooling/${stackHash(stack)}/`);
        assert.strictEqual(source.inputs.content, renderReleaseSource(releaseOf(stack).version, releaseOf(stack).artifact));
        assert.strictEqual(source.inputs.content, `RELEASE_VERSION=${VERSION[stack]}\nRELEASE_S3_BUCKET=${BUCKET}\nRELEASE_S3_KEY=releases/${VERSION[stack]}/nourish-link-${VERSION[stack]}.tar.gz\nRELEASE_SHA256=${SHA[stack]}\n`);
        assert.deepStrictEqual(source.inputs.tags, { role: "app", hostPath: RELEASE_SOURCE_PATH, mode: "0644" });
        const file = hostFiles(r).find((f) => f.role === "app" && f.path === RELEASE_SOURCE_PATH);
        assert.strictEqual(file?.content, source.inputs.content, "the preview shows it among the app hosts' files");
      });

      it("triggers on the version, the artifact's checksum, the tooling hash and the instance", () => {
        const r = runs[stack];
        for (const x of steps(r)) {
          const host = x.name.endsWith("-db") ? "database-host" : x.name.slice(-5);
          assert.deepStrictEqual(x.inputs.triggers, [`version:${VERSION[stack]}`, `artifact:sha256:${SHA[stack]}`, `tooling:${stackHash(stack)}`, instanceId(r, host)], x.name);
        }
      });

      it("has the SSM document and the operator policy in the plan, and no port 22", () => {
        const plan = toPlan(runs[stack]);
        const types = plan.resources.map((x) => x.type);
        assert.ok(types.includes("aws:ssm/document:Document") && types.includes("aws:iam/policy:Policy"));
        // Every command is a release step, but staging's two restore-rehearsal steps (after the release).
        assert.strictEqual(plan.resources.filter((x) => x.type === COMMAND && !x.name.startsWith("rehearsal-")).length, byName(runs[stack]).size);
        for (const x of plan.resources) {
          const { fromPort, toPort } = x.inputs as { fromPort?: number; toPort?: number };
          if (fromPort !== undefined) assert.ok(!(fromPort <= 22 && 22 <= (toPort ?? fromPort)), `${x.name} opens port 22`);
          for (const rule of ((x.inputs as { ingress?: { fromPort: number; toPort: number }[] }).ingress ?? [])) {
            assert.ok(!(rule.fromPort <= 22 && 22 <= rule.toPort), `${x.name} has an inline rule for port 22`);
          }
        }
        assert.ok(!hostFiles(runs[stack]).some((f) => /ssh_authorized_keys|ssh_pwauth: true/.test(f.content)), "a key in the user data");
        assert.match(String(runs[stack].outputs.operatorPolicyArn), /^arn:aws:iam::/);
        assert.strictEqual(runs[stack].outputs.releaseDocument, `nourish-link-${stack}-nourishctl`);
      });
    });
  }

  it("logs our own verbs' output; keeps pip's, git's and Django's out of the engine's log", () => {
    for (const [name, x] of byName(runs.prod)) {
      const chatty = /-(fetch|migrate|collectstatic)-/.test(name);
      assert.strictEqual(x.inputs.logging, chatty ? "stderr" : "stdoutAndStderr", name);
      assert.strictEqual(x.inputs.addPreviousOutputInEnv, false, name);
    }
  });

  it("waits for the hosts: the db steps for the data volume, installs for the tooling objects, fetches for the artifact grant", () => {
    const prod = runs.prod;
    const urn = (type: string, name: string) => one(prod, type, name).urn;
    const attachment = urn("aws:ec2/volumeAttachment:VolumeAttachment", "database-data");
    for (const s of ["release-tooling-install-db", "release-backup-db"]) assert.ok(byName(prod).get(s)!.dependsOn.includes(attachment), s);
    const pointer = urn("aws:s3/bucketObjectv2:BucketObjectv2", "tooling-current");
    for (const h of ["db", "app-0", "app-1"]) assert.ok(byName(prod).get(`release-tooling-install-${h}`)!.dependsOn.includes(pointer), h);
    const grant = one(prod, "aws:iam/rolePolicy:RolePolicy", "release-artifact-read");
    assert.deepStrictEqual(JSON.parse(String(grant.inputs.policy)).Statement, [
      { Sid: "ReadReleaseArtifacts", Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/releases/${VERSION.prod}/*` },
      { Sid: "DecryptReleaseArtifacts", Effect: "Allow", Action: "kms:Decrypt", Resource: prod.outputs.releaseKmsKeyArn },
    ]);
    for (const i of [0, 1]) assert.ok(byName(prod).get(`release-fetch-app-${i}`)!.dependsOn.includes(grant.urn));
  });

  it("the SSM document: Command, schema 2.2, one aws:runShellScript step, every parameter named with a pattern", () => {
    const doc = one(runs.prod, "aws:ssm/document:Document", "release-nourishctl");
    assert.strictEqual(doc.inputs.documentType, "Command");
    assert.strictEqual(doc.inputs.documentFormat, "JSON");
    assert.strictEqual(doc.inputs.targetType, "/AWS::EC2::Instance");
    const content = JSON.parse(String(doc.inputs.content));
    assert.strictEqual(content.schemaVersion, "2.2");
    assert.deepStrictEqual(Object.keys(content.parameters), ["verb", ...PARAMETER_NAMES]);
    assert.deepStrictEqual(content.parameters.verb.allowedValues, [...VERBS]);
    for (const p of PARAMETER_NAMES) assert.match(content.parameters[p].allowedPattern, /^\^\$\|\^.*\$$/, p);
    assert.deepStrictEqual(content.mainSteps.map((s: { action: string }) => s.action), ["aws:runShellScript"]);
    assert.strictEqual(content.mainSteps[0].inputs.timeoutSeconds, "1800");
    const tooling = one(runs.prod, "aws:s3/bucket:Bucket", "tooling").id;
    assert.ok(content.mainSteps[0].inputs.runCommand.join("\n").includes(`s3://${tooling}/tooling/$hash`), "the tooling bucket is rendered in");
  });

  it("the operator policy: this stack's document, this stack's instances by tag, the invocations, the tooling; nothing else", () => {
    for (const stack of ["staging", "prod"] as const) {
      const r = runs[stack];
      const policy = JSON.parse(String(one(r, "aws:iam/policy:Policy", "release-operator").inputs.policy));
      const docArn = `arn:aws:ssm:af-south-1:${ACCOUNT_ID}:document/nourish-link-${stack}-nourishctl`;
      const toolingArn = `arn:aws:s3:::${one(r, "aws:s3/bucket:Bucket", "tooling").id}`;
      assert.deepStrictEqual(policy, {
        Version: "2012-10-17",
        Statement: [
          { Sid: "SendThisStacksDocument", Effect: "Allow", Action: "ssm:SendCommand", Resource: docArn },
          {
            Sid: "SendToThisStacksHosts", Effect: "Allow", Action: "ssm:SendCommand", Resource: `arn:aws:ec2:af-south-1:${ACCOUNT_ID}:instance/*`,
            Condition: { StringEquals: { "ssm:resourceTag/project": "nourish-link", "ssm:resourceTag/stack": stack } },
          },
          { Sid: "ReadInvocations", Effect: "Allow", Action: ["ssm:GetCommandInvocation", "ssm:ListCommandInvocations"], Resource: "*" },
          { Sid: "ReadTooling", Effect: "Allow", Action: "s3:GetObject", Resource: `${toolingArn}/tooling/*` },
          { Sid: "DecryptTooling", Effect: "Allow", Action: "kms:Decrypt", Resource: `arn:aws:kms:af-south-1:${ACCOUNT_ID}:key/${one(r, "aws:kms/key:Key", "tooling-key").id}` },
          // Publishing to prod's releases bucket (staging names it through its StackReference).
          ...releasePublishStatements({ bucketArn: `arn:aws:s3:::${BUCKET}`, kmsKeyArn: PROD_RELEASE_KEY_ARN }),
        ],
      }, stack);
    }
    // The tags the condition names are on every instance (the provider's default tags).
    const provider = runs.prod.resources.find((x) => x.type === "pulumi:providers:aws")!;
    const tags = JSON.parse(String(provider.inputs.defaultTags)).tags;
    assert.deepStrictEqual({ project: tags.project, stack: tags.stack }, { project: "nourish-link", stack: "prod" });
  });

  it("with a managed database the release stays on: the first app host takes the pre-release backup", async () => {
    const r = await runStack("prod", { set: { database: { managed: true, multiAz: true } } });
    assert.ok(!r.resources.some((x) => x.type === "aws:ec2/instance:Instance" && x.name === "database-host"));
    assert.deepStrictEqual(r.outputs.releaseSteps, [
      "release-tooling-install-app-0", "release-tooling-install-app-1", "release-create-app-role-app-0", "release-backup-app-0", "release-fetch-app-0", "release-fetch-app-1",
      "release-migrate-app-0", "release-collectstatic-app-0", "release-collectstatic-app-1", "release-switch-app-0", "release-switch-app-1",
      "release-verify-app-0", "release-verify-app-1",
    ]);
    assert.strictEqual(env(byName(r).get("release-backup-app-0")!).NL_INSTANCE_ID, instanceId(r, "app-0"));
    // The app's database role exists (made by RDS's master user) before the backup connects as it.
    assert.strictEqual(env(byName(r).get("release-create-app-role-app-0")!).NL_INSTANCE_ID, instanceId(r, "app-0"));
    assert.deepStrictEqual(paramsOf(r, "release-create-app-role-app-0"), { verb: "create-app-role" });
    assert.deepStrictEqual(stepDeps(r, "release-create-app-role-app-0"), ["release-tooling-install-app-0", "release-tooling-install-app-1"]);
    assert.deepStrictEqual(stepDeps(r, "release-backup-app-0"), ["release-create-app-role-app-0"]);
    assert.ok(!runs.prod.resources.some((x) => x.name.startsWith("release-create-app-role")), "a database host's setup makes the role itself");
    // RDS's own master user, its password managed by RDS; the app hosts may read that secret only.
    const rds = one(r, "aws:rds/instance:Instance", "database-rds");
    assert.strictEqual(rds.inputs.username, "nourish_admin");
    assert.strictEqual(rds.inputs.manageMasterUserPassword, true);
    assert.strictEqual(rds.inputs.password, undefined);
    const secretArn = `arn:aws:secretsmanager:af-south-1:${ACCOUNT_ID}:secret:rds!db-${rds.id}-`;
    const master = JSON.parse(String(one(r, "aws:iam/rolePolicy:RolePolicy", "app-rds-master-secret").inputs.policy)).Statement;
    assert.strictEqual(master.length, 1);
    assert.strictEqual(master[0].Action, "secretsmanager:GetSecretValue");
    assert.ok(String(master[0].Resource).startsWith(secretArn), master[0].Resource);
    assert.match(hostFiles(r).find((f) => f.role === "app" && f.path === "/etc/nourish-link/host.env")!.content, new RegExp(`^DB_MASTER_SECRET_ARN="?${secretArn.replace(/[$!]/g, "\\$&")}`, "m"));
    assert.deepStrictEqual(stepDeps(r, "release-fetch-app-0"), ["release-backup-app-0", "release-tooling-install-app-0"]);
    assert.deepStrictEqual(paramsOf(r, "release-switch-app-1").backupKey, MOCK_KEY);
    // What the backup step needs on app-0: the verb in the app role's tooling, pg_dump 15, the
    // managed flag (pg_admin reaches RDS over TLS), and put/read under dumps/ with the backup key.
    const files = hostFiles(r).filter((f) => f.role === "app");
    assert.ok(files.some((f) => f.path === "/usr/local/lib/nourish-link/backup.sh"), "the app role's tooling has no backup.sh");
    assert.match(files.find((f) => f.path === "/etc/nourish-link/host.env")!.content, /^DB_MANAGED=true$/m);
    assert.ok((parse(files.find((f) => f.path === "user-data.yaml")!.content) as { packages: string[] }).packages.includes("postgresql-client-15"));
    const backups = one(r, "aws:s3/bucket:Bucket", "backups-archive");
    const dumps = JSON.parse(String(one(r, "aws:iam/rolePolicy:RolePolicy", "app-dumps").inputs.policy)).Statement;
    assert.deepStrictEqual(dumps.map((x: { Action: unknown; Resource: unknown }) => [x.Action, x.Resource]), [
      ["s3:ListBucket", `arn:aws:s3:::${backups.id}`],
      [["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"], [`arn:aws:s3:::${backups.id}/dumps/*`]],
      [["kms:Decrypt", "kms:GenerateDataKey"], `arn:aws:kms:af-south-1:${ACCOUNT_ID}:key/${one(r, "aws:kms/key:Key", "backups-key").id}`],
    ]);
    // A self-managed database keeps all of that on the database host.
    assert.ok(!runs.prod.resources.some((x) => x.name === "app-dumps"));
    const selfManaged = hostFiles(runs.prod).filter((f) => f.role === "app");
    assert.doesNotMatch(selfManaged.find((f) => f.path === "/etc/nourish-link/host.env")!.content, /DB_MANAGED/);
    assert.ok(!(parse(selfManaged.find((f) => f.path === "user-data.yaml")!.content) as { packages: string[] }).packages.includes("postgresql-client-15"));
  });

  describe("triggers", () => {
    it("are identical for the same config (an unchanged `pulumi up` runs nothing)", async () => {
      const again = await runStack("prod");
      assert.deepStrictEqual(triggersOf(again), triggersOf(runs.prod));
      const envs = (r: ProgramRun) => Object.fromEntries(steps(r).map((x) => [x.name, env(x)]));
      assert.deepStrictEqual(envs(again), envs(runs.prod));
    });

    it("change on every step for a new version (rollback included), artifact or git commit", async () => {
      for (const release of [{ version: "1.4.0" }, { artifact: { sha256: "0".repeat(64) } }]) {
        const other = await runStack("prod", { set: { release } });
        const a = triggersOf(runs.prod);
        const b = triggersOf(other);
        for (const [name, t] of Object.entries(a)) assert.notDeepStrictEqual(b[name], t, `${name} does not re-run for ${JSON.stringify(release)}`);
      }
      const git = await runGitStack();
      assert.deepStrictEqual(paramsOf(git, "release-fetch-app-0"), { verb: "release-fetch", version: "1.4.1" });
      const gitSource = toolingObjectsOf(git).find((o) => String(o.inputs.key).endsWith("/host/etc/release-source.env"))!;
      assert.strictEqual(gitSource.inputs.content, `RELEASE_VERSION=1.4.1\nRELEASE_GIT_URL=https://github.com/nourish-link/dusangire.git\nRELEASE_COMMIT=${GIT_COMMIT}\nRELEASE_TAG=v1.4.1-rc\n`);
      assert.ok(!git.resources.some((x) => x.name === "release-artifact-read"), "no S3 grant for a git artifact");
      assert.strictEqual((byName(git).get("release-migrate-app-0")!.inputs.triggers as string[])[1], `artifact:git:https://github.com/nourish-link/dusangire.git#${GIT_COMMIT}`);
    });

    it("change on every step when one byte of the host tooling changes; the user data does not", async () => {
      const dir = copyTooling();
      try {
        const first = await runRelease(dir);
        fs.appendFileSync(path.join(dir, "lib", fs.readdirSync(path.join(dir, "lib"))[0]), "#");
        const second = await runRelease(dir);
        const t1 = triggersOf(first);
        const t2 = triggersOf(second);
        assert.deepStrictEqual(Object.keys(t1).sort(), ["tooling-install-db", "tooling-install-app-0", "backup-db", "fetch-app-0", "migrate-app-0",
          "collectstatic-app-0", "switch-app-0", "verify-app-0"].map((x) => `release-${x}`).sort());
        for (const name of Object.keys(t1)) {
          assert.notDeepStrictEqual(t2[name], t1[name], `${name} ignores the tooling change`);
          assert.ok((t2[name] as string[]).includes(`tooling:${stackHash("staging", dir)}`));
        }
        assert.strictEqual(paramsOf(second, "release-tooling-install-db").toolingHash, stackHash("staging", dir));
      } finally {
        fs.rmSync(path.dirname(dir), { recursive: true, force: true });
      }
    });
  });

  describe("tooling by content hash", () => {
    it("uploads the manifest, every file under tooling/<hash>/host/, and the pointer last", () => {
      const objects = toolingObjectsOf(runs.prod);
      const hash = stackHash("prod");
      const manifest = toolingManifest(TOOLING_DIR, stackToolingFiles(releaseOf("prod")));
      assert.deepStrictEqual(objects.map((o) => o.inputs.key).sort(), [
        `tooling/${hash}/manifest.sha256`, ...manifest.map((l) => `tooling/${hash}/host/${l.slice(66)}`), "tooling/current",
        // Data, not code: the report's metric list (components/monitoring/report.ts), read by app-0.
        "tooling/report-spec.json",
      ].sort());
      const m = objects.find((o) => String(o.inputs.key).endsWith("manifest.sha256"))!;
      assert.strictEqual(m.inputs.content, manifest.join("\n") + "\n");
      assert.strictEqual(run("sha256sum", [], { input: String(m.inputs.content) }).stdout.split(" ")[0], hash, "the manifest's SHA-256 is the hash");
      const pointer = objects.find((o) => o.inputs.key === "tooling/current")!;
      assert.strictEqual(pointer.inputs.content, `${hash}\n`);
      assert.deepStrictEqual(pointer.dependsOn.filter((u) => u.includes("bucketObjectv2")).sort(), objects.filter((o) => o !== pointer && o.inputs.key !== "tooling/report-spec.json").map((o) => o.urn).sort(), "the pointer waits for the version it names");
    });

    it("the user data does not change when scripts/host changes: it names the pointer, never a hash or a sum", () => {
      for (const stack of ["staging", "prod"] as const) {
        const docs = hostFiles(runs[stack]).filter((f) => f.path === "user-data.yaml");
        assert.deepStrictEqual(docs.map((d) => d.role).sort(), ["app", "db"]);
        for (const d of docs) {
          assert.ok(!d.content.includes(stackHash(stack)), `${stack}/${d.role}: the user data carries the tooling hash`);
          for (const l of toolingManifest(TOOLING_DIR, stackToolingFiles(releaseOf(stack)))) assert.ok(!d.content.includes(l.slice(0, 64)), `${stack}/${d.role}: the user data carries the sum of ${l.slice(66)}`);
          assert.match(d.content, /tooling\/current/);
        }
      }
    });
  });

  describe("config", () => {
    const problemsOf = (raw: Record<string, unknown>, stack = "prod"): string[] => {
      try {
        parseSettings(raw, stack);
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        return e.problems;
      }
      return [];
    };
    const raw = () => {
      const { config } = stackConfig("prod");
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(config)) if (k.startsWith("nourish-link:")) { try { out[k.slice(13)] = JSON.parse(v); } catch { out[k.slice(13)] = v; } }
      return out;
    };

    it("the removed SSH keys fail with one line naming the key and what replaced it, secret or not", async () => {
      const release = raw().release as Record<string, unknown>;
      assert.deepStrictEqual(problemsOf({ ...raw(), release: { ...release, ssh: { user: "admin" } } }),
        ["nourish-link:release.ssh was removed: releases run through AWS Systems Manager Run Command, not SSH (pulumi config rm --path release.ssh)"]);
      for (const secret of [true, false]) {
        const pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHh1bWFu\n-----END PRIVATE KEY-----\n";
        const resources: RecordedResource[] = [];
        const config = stackConfig("prod", secret ? { secrets: { deploySshKey: pem } } : { set: { deploySshKey: pem } });
        const message = await programError(runProgram({ stack: "prod", ...config, resources }));
        assert.strictEqual(message.split("\n").filter((l) => l.startsWith("  ")).join("\n"),
          "  nourish-link:deploySshKey was removed: releases run through AWS Systems Manager Run Command, no SSH key is needed (pulumi config rm deploySshKey)");
        assert.ok(!message.includes("MC4CAQ"), "the error quotes the key");
        assert.deepStrictEqual(resources.map((x) => x.type), ["pulumi:pulumi:Stack"]);
      }
    });

    it("release.stepTimeoutSeconds: default 1800, bounded, and in the document and each step", async () => {
      assert.ok(problemsOf({ ...raw(), release: { ...(raw().release as object), stepTimeoutSeconds: 10 } }).some((p) => /^nourish-link:release\.stepTimeoutSeconds must be at least 60/.test(p)));
      const r = await runStack("staging", { set: { release: { stepTimeoutSeconds: 600 } } });
      assert.strictEqual(JSON.parse(String(one(r, "aws:ssm/document:Document", "release-nourishctl").inputs.content)).mainSteps[0].inputs.timeoutSeconds, "600");
      for (const x of steps(r)) assert.strictEqual(env(x).NL_TIMEOUT_SECONDS, "600");
    });

    it("an S3 artifact names its bucket; artifact values the document would refuse are refused by key", () => {
      const release = raw().release as Record<string, unknown>;
      const artifact = release.artifact as Record<string, unknown>;
      const withArtifact = (a: Record<string, unknown>) => problemsOf({ ...raw(), release: { ...release, artifact: Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) } });
      assert.ok(withArtifact({ ...artifact, bucket: undefined }).includes("nourish-link:release.artifact.bucket is required"));
      assert.ok(withArtifact({ ...artifact, bucket: "Bad_Bucket" }).some((p) => p.startsWith("nourish-link:release.artifact.bucket must be an S3 bucket name")));
      for (const key of ["releases/../x.tar.gz", "releases/$(id).tar.gz", "-x.tar.gz", "a b.tar.gz"]) {
        assert.ok(withArtifact({ ...artifact, key }).some((p) => p.startsWith("nourish-link:release.artifact.key must be an object key")), key);
      }
      const git = { type: "git", url: "https://github.com/nourish-link/dusangire.git", commit: GIT_COMMIT };
      assert.deepStrictEqual(withArtifact({ ...git, tag: "v1.4.2" }), []);
      assert.ok(withArtifact({ ...git, url: "https://github.com/nourish-link/.hidden/x.git" }).some((p) => p.startsWith("nourish-link:release.artifact.url must have no path segment")));
      assert.ok(withArtifact({ ...git, tag: "v1/-x" }).some((p) => p.startsWith("nourish-link:release.artifact.tag must have no part")));
    });
  });

  describe("pure parts", () => {
    it("reads the backup key from the last line nourishctl backup prints, and refuses anything else", () => {
      assert.strictEqual(backupKeyFrom("nourishctl: backup: done: …\ndumps/daily/db_backup_20261101_020000.dump\n"), "dumps/daily/db_backup_20261101_020000.dump");
      for (const bad of ["", "x; reboot", "nourishctl: backup: done: db_backup_x.dump (12 bytes)\n", "x/dumps/daily/db_backup_20261101_020000.dump",
        "dumps/daily/../daily/db_backup_20261101_020000.dump", "dumps/other/db_backup_20261101_020000.dump"]) {
        assert.throws(() => backupKeyFrom(`done\n${bad}\n`), /must print the backup's key/, bad);
      }
    });

    it("quotes shell words", () => {
      assert.strictEqual(shq("s3://b/k.tar.gz"), "s3://b/k.tar.gz");
      assert.strictEqual(run("bash", ["-c", `printf %s ${shq("a'b $(id) \"c\"")}`]).stdout, "a'b $(id) \"c\"");
    });

    it("plans at most one db and N app hosts; rejects a plan without an app host", () => {
      const spec = { prefix: "r", version: "1.0.0", artifact: { type: "git" as const, url: "https://x/y.git", commit: "0".repeat(40) } };
      const plan = releasePlan({ ...spec, hosts: [{ name: "db", role: "db" }, ...[0, 1, 2].map((i) => ({ name: `app-${i}`, role: "app" as const }))] });
      assert.deepStrictEqual(plan.filter((s) => s.kind === "switch").map((s) => s.dependsOn), [
        ["r-collectstatic-app-0", "r-collectstatic-app-1", "r-collectstatic-app-2"], ["r-switch-app-0"], ["r-switch-app-1"],
      ]);
      assert.throws(() => releasePlan({ ...spec, hosts: [{ name: "db", role: "db" }] }), /at least one app host/);
      assert.throws(() => releasePlan({ ...spec, hosts: [{ name: "db", role: "db" }, { name: "db2", role: "db" }, { name: "app-0", role: "app" }] }), /at most one database host/);
    });
  });

  // --- runs with a custom program ----------------------------------------------------------------

  /** A copy of scripts/host in a temp dir (named host, as the real one). */
  function copyTooling(): string {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "nl-tooling-")), "host");
    fs.cpSync(TOOLING_DIR, dir, { recursive: true });
    return dir;
  }

  /** The Release alone, on one db and one app instance, with the tooling hash of `dir`. */
  function runRelease(dir: string): Promise<ProgramRun> {
    return runProgram({
      stack: "staging", ...stackConfig("staging"), program: async () => {
        const c = loadConfig();
        const instance = (name: string) => new aws.ec2.Instance(name, { ami: "ami-0123456789abcdef0", instanceType: "t3.small" });
        const role = new aws.iam.Role("app-role", { assumeRolePolicy: "{}" });
        new Release("release", { config: c, db: { instance: instance("db") }, app: [{ instance: instance("app") }], appRole: role, tooling: new HostTooling("tooling", { config: c }), toolingDir: dir });
      },
    });
  }

  function runGitStack(): Promise<ProgramRun> {
    const { config, secretKeys } = stackConfig("prod");
    config["nourish-link:release"] = JSON.stringify({
      version: "1.4.1", artifact: { type: "git", url: "https://github.com/nourish-link/dusangire.git", commit: GIT_COMMIT, tag: "v1.4.1-rc" },
    });
    return runProgram({ stack: "prod", config, secretKeys });
  }
});
