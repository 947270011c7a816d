// The offline preview as operators run it: `npm start [-- --stack prod]`, a real subprocess.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ONCALL_PROCEDURES } from "../components/oncall/documents";
import { Plan } from "../scripts/preview/plan";
import { ROOT } from "../scripts/preview/stack-file";
import { stackConfig } from "./harness";
import { run } from "./tools";

function preview(args: string[]) {
  // As `npm start` runs it (package.json), minus npm.
  return run(process.execPath, ["-r", "./scripts/ts-cache.js", path.join(ROOT, "scripts", "synth.ts"), ...args], { cwd: ROOT });
}

describe("offline preview (npm start)", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "nl-preview-"));
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  for (const stack of ["staging", "prod"]) {
    it(`previews ${stack}: prints the tree and writes out/${stack}/plan.json`, () => {
      const r = preview(["--stack", stack, "--out", out]);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stderr, "", "the preview printed warnings");
      assert.match(r.stdout, new RegExp(`pulumi:pulumi:Stack\\s+nourish-link-${stack}\\s+create`));
      assert.match(r.stdout, /└─ nourish-link:index:NourishLink/);
      assert.match(r.stdout, /By type:\n\s+\d+\s+\S+:/);
      // Like pulumi preview: types as it shows them, an Outputs section, every line in 100 columns.
      assert.match(r.stdout, /^ \+ .*aws:ec2:Vpc\s+network-vpc\s+create$/m);
      for (const l of r.stdout.split("\n")) assert.ok([...l].length <= 100, `${[...l].length} columns: ${l}`);
      const outputs = r.stdout.slice(r.stdout.indexOf("\nOutputs:\n"));
      const { version, artifact } = (stackConfig(stack).config["nourish-link:release"] ? JSON.parse(stackConfig(stack).config["nourish-link:release"]) : {}) as { version: string; artifact: { key: string; sha256: string } };
      assert.ok(outputs.includes(`\n    release deployed : ${version} (s3 ${artifact.key}, sha256 ${artifact.sha256.slice(0, 12)}…)\n`), outputs.slice(0, 600));
      if (stack === "staging") assert.match(outputs, /\n {4}rehearsal restores: prod's dumps\/daily\/\S+\.dump\n {24}taken \S+Z, sha256 [0-9a-f]{12}…, after the release\n {24}\(offline: the mocks' backup/);
      else assert.doesNotMatch(outputs, /rehearsal restores/);

      const plan = JSON.parse(fs.readFileSync(path.join(out, stack, "plan.json"), "utf8")) as Plan;
      assert.strictEqual(plan.stack, stack);
      assert.strictEqual(plan.project, "nourish-link");
      const urns = new Set(plan.resources.map((r) => r.urn));
      assert.ok(plan.resources.length > 5);
      for (const r of plan.resources) {
        for (const k of ["urn", "id", "type", "name", "inputs", "dependsOn"]) assert.ok(k in r, `${r.urn} lacks ${k}`);
        if (r.type !== "pulumi:pulumi:Stack") assert.ok(r.parent && urns.has(r.parent), `${r.urn}: parent ${r.parent} is not in the plan`);
        for (const d of r.dependsOn) assert.ok(urns.has(d), `${r.urn}: dependency ${d} is not in the plan`);
      }
      // Options, as the engine would act on them (the policy pack checks protection with them).
      for (const r of plan.resources) {
        assert.deepStrictEqual(Object.keys(r.options).sort(), ["deleteBeforeReplace", "dependsOn", "ignoreChanges", "protect", "provider", "replaceOnChanges", "retainOnDelete"], r.urn);
        for (const d of r.options.dependsOn) assert.ok(r.dependsOn.includes(d), `${r.urn}: option dependsOn ${d} not among its dependencies`);
        // Everything on the stack's provider, but the uptime alarm and its topic: Route 53 publishes only in us-east-1.
        const east = r.type.startsWith("aws:") && /::monitoring-(uptime|us-east-1-.*)$/.test(r.urn) && r.type !== "aws:route53/healthCheck:HealthCheck";
        if (r.type.startsWith("aws:")) assert.match(String(r.options.provider), east ? /pulumi:providers:aws::monitoring-us-east-1$/ : /pulumi:providers:aws::nourish-link-aws$/, `${r.urn} not on the ${east ? "us-east-1" : "stack's"} provider`);
      }
      const volume = plan.resources.find((r) => r.type === "aws:ebs/volume:Volume");
      if (volume) assert.deepStrictEqual([volume.options.protect, volume.options.retainOnDelete], [true, true]);
      // Auto-named outputs are defined, as the engine would name them: every host gets its profile.
      const profiles = new Map(plan.resources.filter((r) => r.type === "aws:iam/instanceProfile:InstanceProfile").map((p) => [p.inputs.name, p]));
      for (const i of plan.resources.filter((r) => r.type === "aws:ec2/instance:Instance")) {
        assert.ok(profiles.has(i.inputs.iamInstanceProfile), `${i.name}: iamInstanceProfile ${i.inputs.iamInstanceProfile} is not a planned instance profile`);
        assert.deepStrictEqual(i.options.ignoreChanges, ["ami"]);
        assert.ok(i.options.dependsOn.length > 0, `${i.name}: waits for nothing (its tooling)`);
      }
      // A reference between resources can be followed by id: the alias targets the key.
      const key = plan.resources.find((r) => r.type === "aws:kms/key:Key");
      const alias = plan.resources.find((r) => r.type === "aws:kms/alias:Alias");
      assert.strictEqual(alias?.inputs.targetKeyId, key?.id);
      assert.strictEqual(fs.existsSync(path.join(out, stack, "hosts")), true);
      // The release chain, with no secret set: one step client per step, the SSM document, no port 22.
      const steps = plan.resources.filter((r) => r.type === "command:local:Command").map((r) => r.name);
      assert.ok(steps.includes("release-backup-db") && steps.includes("release-switch-app-0") && steps.includes("release-verify-app-0"), steps.join(", "));
      assert.match(r.stdout, /command:local:Command\s+release-tooling-install-db/);
      // The release's document, and one per on-call procedure (test/oncall-documents.test.ts).
      const documents = plan.resources.filter((r) => r.type === "aws:ssm/document:Document").map((r) => r.name);
      assert.deepStrictEqual(documents.filter((n) => !n.startsWith("oncall-")), ["release-nourishctl"]);
      assert.strictEqual(documents.filter((n) => n.startsWith("oncall-")).length, ONCALL_PROCEDURES.length);
      for (const x of plan.resources) {
        const { fromPort, toPort } = x.inputs as { fromPort?: number; toPort?: number };
        if (fromPort !== undefined) assert.ok(!(fromPort <= 22 && 22 <= (toPort ?? fromPort)), `${x.name} opens port 22`);
      }
    });
  }

  it("--details lists every alarm with its metric, threshold and action, in 100 columns", () => {
    const r = preview(["--stack", "prod", "--out", out, "--details"]);
    assert.strictEqual(r.status, 0, r.stderr);
    const plan = JSON.parse(fs.readFileSync(path.join(out, "prod", "plan.json"), "utf8")) as Plan;
    const alarms = plan.resources.filter((x) => x.type === "aws:cloudwatch/metricAlarm:MetricAlarm");
    assert.match(r.stdout, new RegExp(`\\nAlarms \\(${alarms.length}\\):\\n`));
    assert.match(r.stdout, /\n {4}monitoring-app-errors\n {8}NourishLink\/Logs\/prod\/AppErrors > 10 for 1×300s → monitoring-alerts\n/);
    for (const a of alarms) assert.ok(r.stdout.includes(`\n    ${a.name}\n        `), `${a.name} is not listed`);
    for (const l of r.stdout.split("\n")) assert.ok([...l].length <= 100, `${[...l].length} columns: ${l}`);
    assert.doesNotMatch(preview(["--stack", "prod", "--out", out]).stdout, /\nAlarms \(/, "alarms only with --details");
  });

  it("rejects an unknown stack by name", () => {
    const r = preview(["--stack", "qa", "--out", out]);
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stderr, /unknown stack 'qa': there is no Pulumi\.qa\.yaml \(known stacks: prod, staging\)/);
  });

  it("exits non-zero on a stack file with bad values, naming each key, and writes nothing", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-root-"));
    fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
    fs.writeFileSync(path.join(root, "Pulumi.prod.yaml"), fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")
      .replace("retentionDays: 35", "retentionDays: -1")
      .replace("vpcCidr: 10.40.0.0/16", "vpcCidr: 10.40.0.0")
      .replace("enabled: true", "enabled: false"));
    const r = preview(["--stack", "prod", "--root", root, "--out", path.join(root, "out")]);
    fs.rmSync(root, { recursive: true, force: true });
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /nourish-link:backups\.retentionDays must be at least 1/);
    assert.match(r.stderr, /nourish-link:network\.vpcCidr must be an IPv4 CIDR block/);
    assert.match(r.stderr, /nourish-link:backups\.enabled must be true on prod/);
    assert.strictEqual(r.stdout.includes("create"), false, "printed a plan for invalid config");
  });

  it("refuses __proto__, constructor and prototype keys in the stack file, naming the key and the file, and writes nothing", () => {
    // Pulumi hands the program these keys and the program refuses them: the preview must not drop them
    // and validate another config than Pulumi would.
    const cases: [string, (t: string) => string, string][] = [
      ["nested __proto__", (t) => t.replace("  nourish-link:backups:\n", "  nourish-link:backups:\n    __proto__:\n      enabled: false\n"), "nourish-link:backups.__proto__"],
      ["a top-level key", (t) => t.replace("  nourish-link:backups:\n", "  nourish-link:__proto__:\n    environment: staging\n  nourish-link:backups:\n"), "nourish-link:__proto__"],
      ["a key without namespace", (t) => t.replace("  nourish-link:backups:\n", "  __proto__: x\n  nourish-link:backups:\n"), "__proto__"],
      ["constructor in a list", (t) => t.replace("  nourish-link:backups:\n", "  nourish-link:scratch:\n    - constructor: 1\n  nourish-link:backups:\n"), "nourish-link:scratch[0].constructor"],
      ["prototype", (t) => t.replace("  nourish-link:backups:\n", "  nourish-link:backups:\n    prototype: {}\n"), "nourish-link:backups.prototype"],
    ];
    for (const [what, edit, key] of cases) {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-root-"));
      fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
      const text = fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8");
      assert.notStrictEqual(edit(text), text, what);
      fs.writeFileSync(path.join(root, "Pulumi.prod.yaml"), edit(text));
      const r = preview(["--stack", "prod", "--root", root, "--out", path.join(root, "out")]);
      const wrote = fs.existsSync(path.join(root, "out", "prod"));
      fs.rmSync(root, { recursive: true, force: true });
      assert.strictEqual(r.status, 1, `${what}: exit ${r.status}\n${r.stdout.slice(0, 300)}`);
      assert.strictEqual(r.stderr.trim(), `error: Pulumi.prod.yaml: ${key} is not allowed: __proto__, constructor and prototype are never settings`, what);
      assert.ok(!wrote, `${what}: wrote a plan`);
    }
  });

  it("keeps secrets out of everything it writes and prints", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-root-"));
    fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
    // `pulumi config set --secret` stores ciphertext; offline it reads as a placeholder marked secret.
    fs.writeFileSync(path.join(root, "Pulumi.staging.yaml"), fs.readFileSync(path.join(ROOT, "Pulumi.staging.yaml"), "utf8")
      + "  nourish-link:djangoSecretKey:\n    secure: v1:Q2lwaGVydGV4dA==:bm90IGEgcmVhbCBjaXBoZXJ0ZXh0\n");
    const r = preview(["--stack", "staging", "--root", root, "--out", path.join(root, "out")]);
    const written = fs.readFileSync(path.join(root, "out", "staging", "plan.json"), "utf8");
    fs.rmSync(root, { recursive: true, force: true });
    assert.strictEqual(r.status, 0, r.stderr);
    const plan = JSON.parse(written) as Plan;
    const param = plan.resources.find((x) => x.type === "aws:ssm/parameter:Parameter" && x.name.endsWith("django-secret-key"));
    assert.strictEqual(param?.inputs.value, "[secret]");
    for (const leak of ["offline-preview-placeholder", "mockgen"]) {
      assert.ok(!written.includes(leak) && !r.stdout.includes(leak) && !r.stderr.includes(leak), `${leak}… leaked`);
    }
  });

  describe("refuses what would write or delete in the wrong place", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nl-out-"));
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const projectCopy = (stackFile: (text: string) => string = (t) => t) => {
      const root = fs.mkdtempSync(path.join(tmp, "root-"));
      fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
      fs.writeFileSync(path.join(root, "Pulumi.staging.yaml"), stackFile(fs.readFileSync(path.join(ROOT, "Pulumi.staging.yaml"), "utf8")));
      return root;
    };

    it("an option without its value (`--out` alone would mean the current directory)", () => {
      for (const args of [["--out"], ["--out", "--stack", "prod"], ["--root"], ["--stack"]]) {
        const r = preview(args);
        assert.strictEqual(r.status, 1, args.join(" "));
        assert.match(r.stderr, new RegExp(`^error: ${args[0]} needs (a directory|a stack name) \\(usage: npm start`), args.join(" "));
        assert.strictEqual(r.stdout, "");
      }
    });

    it("--root at a directory without Pulumi.yaml, naming it", () => {
      const r = preview(["--root", tmp]);
      assert.strictEqual(r.status, 1);
      assert.strictEqual(r.stderr.trim(), `error: --root: ${tmp} has no Pulumi.yaml (give the project's directory)`);
    });

    it("an --out whose <stack> directory is not an earlier preview: nothing in it is touched", () => {
      const out = path.join(tmp, "home");
      fs.mkdirSync(path.join(out, "staging"), { recursive: true });
      fs.writeFileSync(path.join(out, "staging", "notes.txt"), "mine\n");
      const r = preview(["--out", out]);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /^error: --out: .*\/home\/staging is not an earlier preview of 'staging' \(it holds notes\.txt\); nothing was touched/);
      assert.strictEqual(fs.readFileSync(path.join(out, "staging", "notes.txt"), "utf8"), "mine\n");
    });

    it("invalid config after a good preview leaves no stale plan behind", () => {
      const good = projectCopy();
      const out = path.join(tmp, "out");
      assert.strictEqual(preview(["--root", good, "--out", out]).status, 0);
      assert.ok(fs.existsSync(path.join(out, "staging", "plan.json")));
      const bad = projectCopy((t) => t.replace(/retentionDays: \d+/, "retentionDays: -1"));
      const r = preview(["--root", bad, "--out", out]);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /nourish-link:backups\.retentionDays must be at least 1/);
      assert.ok(!fs.existsSync(path.join(out, "staging", "plan.json")), "the previous plan.json is still there");
      assert.ok(!fs.existsSync(path.join(out, "staging", "hosts")), "the previous host files are still there");
    });
  });
});
