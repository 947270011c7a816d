// The CloudWatch agent: its rendered configuration validated against the agent's own JSON schema
// (vendored, draft-04, with ajv), and `nourishctl agent install` in a sandbox with a throwaway
// signing key and a stand-in package built with dpkg-deb: installed only when the signature
// verifies against a key with the pinned fingerprint, nothing installed otherwise.
import * as assert from "assert";
import Ajv from "ajv-draft-04";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AGENT_VENDOR_DIR, agentEnv, agentSigningKey, renderAgentConfig } from "../components/monitoring/agent";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { loadStackConfig } from "./harness";
import { requireTool, run } from "./tools";

describe("CloudWatch agent configuration, against the agent's own schema", () => {
  const schema = JSON.parse(fs.readFileSync(path.join(AGENT_VENDOR_DIR, "schema.json"), "utf8"));
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);

  it("vendors the schema with its licence and source", () => {
    assert.match(fs.readFileSync(path.join(AGENT_VENDOR_DIR, "LICENSE"), "utf8"), /MIT License/);
    assert.match(fs.readFileSync(path.join(AGENT_VENDOR_DIR, "SOURCE.md"), "utf8"), /aws\/amazon-cloudwatch-agent/);
  });

  it("renders a valid config for every role of every stack, managed database too", async () => {
    for (const [stack, set] of [["staging", {}], ["prod", {}], ["prod", { database: { managed: true } }]] as const) {
      const config = await loadStackConfig(stack, { set });
      for (const role of ["app", "db"] as const) {
        const doc = renderAgentConfig(config, role);
        assert.ok(validate(doc), `${stack} ${role}: ${JSON.stringify(validate.errors, null, 1)}`);
      }
    }
  });

  it("the schema catches a config the agent would refuse (so the check can fail)", async () => {
    // A plausible slip: the stack's time zone where the agent accepts only UTC or Local.
    const doc = renderAgentConfig(await loadStackConfig("staging"), "db") as any;
    doc.logs.logs_collected.files.collect_list[0].timezone = "Africa/Kigali";
    assert.strictEqual(validate(doc), false);
    const journald = renderAgentConfig(await loadStackConfig("staging"), "app") as any;
    journald.logs.logs_collected.journald.collect_list[0].units = [];
    assert.strictEqual(validate(journald), false);
  });

  it("collects what the alarms need: memory, swap, disk per mount without device, the role's processes, the role's logs", async () => {
    const config = await loadStackConfig("prod");
    const db = renderAgentConfig(config, "db") as any;
    assert.deepStrictEqual(db.metrics.metrics_collected.disk, { resources: ["/", "/var/lib/postgresql"], measurement: ["used_percent"], drop_device: true });
    assert.deepStrictEqual(db.metrics.metrics_collected.procstat.map((p: any) => p.exe ?? p.pattern), ["postgres"]);
    assert.deepStrictEqual(db.logs.logs_collected.files.collect_list.map((f: any) => f.log_group_name), ["/nourish-link/prod/postgresql"]);
    const app = renderAgentConfig(config, "app") as any;
    assert.deepStrictEqual(app.metrics.metrics_collected.procstat.map((p: any) => p.exe ?? p.pattern), ["nginx", "gunicorn"]);
    assert.deepStrictEqual(app.logs.logs_collected.journald.collect_list.map((j: any) => [j.log_group_name, j.units]), [["/nourish-link/prod/app", ["nourish-link-app@*"]], ["/nourish-link/prod/jobs", ["nourish-link-*"]]]);
    assert.deepStrictEqual(agentEnv(config, undefined), { AGENT_VERSION: "1.300070.0" });
  });
});

describe("nourishctl agent install: pinned version, signature checked, nothing installed otherwise", () => {
  let dir = "";
  let root = "";
  let repo = "";
  const gpgHome = (name: string) => path.join(dir, `gnupg-${name}`);
  const fingerprints: Record<string, string> = {};
  const gpg = (home: string, args: string[], input?: string) => run("gpg", ["--batch", "--homedir", home, ...args], { input });
  const keyOf = (name: string) => {
    fs.mkdirSync(gpgHome(name), { mode: 0o700 });
    assert.strictEqual(gpg(gpgHome(name), ["--passphrase", "", "--quick-gen-key", `${name} <${name}@example.com>`, "ed25519", "sign", "1d"]).status, 0);
    fingerprints[name] = /^fpr:+([0-9A-F]{40}):/m.exec(gpg(gpgHome(name), ["--with-colons", "--fingerprint"]).stdout)![1];
  };
  const sign = (name: string) => assert.strictEqual(gpg(gpgHome(name), ["--yes", "--detach-sign", "-o", path.join(repo, "amazon-cloudwatch-agent.deb.sig"), path.join(repo, "amazon-cloudwatch-agent.deb")]).status, 0);
  const deliverKey = (name: string) => {
    fs.mkdirSync(path.join(root, "usr/local/share/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "usr/local/share/nourish-link/amazon-cloudwatch-agent.gpg"), gpg(gpgHome(name), ["--armor", "--export"]).stdout);
  };
  const env = (fingerprint: string) => fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), `ROLE=app\nSTACK=staging\nREGION=af-south-1\nAGENT_VERSION=1.300070.0\nAGENT_KEY_FINGERPRINT=${fingerprint}\n`);
  const install = () => run("bash", [NOURISHCTL_SOURCE, "agent", "install"], { env: { ...process.env, NOURISH_ROOT: root, AGENT_PACKAGE_URL: `file://${repo}` } });
  const installed = () => fs.existsSync(path.join(root, "opt/aws/amazon-cloudwatch-agent/bin/marker"));
  const refused = (why: RegExp) => {
    const r = install();
    assert.strictEqual(r.status, 1, r.stdout);
    assert.match(r.stderr.trim(), why);
    assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(!installed(), "installed anyway");
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-agent-"));
    root = path.join(dir, "root");
    repo = path.join(dir, "repo");
    for (const t of ["gpg", "gpgv", "dpkg-deb", "curl"]) requireTool(t);
    keyOf("aws");
    keyOf("mallory");
    // The stand-in package: real dpkg-deb, one marker file where the agent's binaries go.
    const pkg = path.join(dir, "pkg");
    fs.mkdirSync(path.join(pkg, "DEBIAN"), { recursive: true });
    fs.mkdirSync(path.join(pkg, "opt/aws/amazon-cloudwatch-agent/bin"), { recursive: true });
    fs.writeFileSync(path.join(pkg, "DEBIAN/control"), "Package: amazon-cloudwatch-agent\nVersion: 1.300070.0\nArchitecture: amd64\nMaintainer: test <t@example.com>\nDescription: stand-in for the test\n");
    fs.writeFileSync(path.join(pkg, "opt/aws/amazon-cloudwatch-agent/bin/marker"), "agent\n");
    fs.mkdirSync(repo);
    assert.strictEqual(run("dpkg-deb", ["--build", "--root-owner-group", pkg, path.join(repo, "amazon-cloudwatch-agent.deb")]).status, 0);
    // The sandbox: an empty dpkg database, the agent's config.
    for (const d of ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc/nourish-link", "opt/aws/amazon-cloudwatch-agent/etc"]) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.writeFileSync(path.join(root, "var/lib/dpkg/status"), "");
    fs.writeFileSync(path.join(root, "opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"), "{}\n");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("refuses without AWS's key, naming where it is missing (the state of this repository: none vendored)", () => {
    assert.strictEqual(agentSigningKey(), undefined, "a key is vendored now: update SIGNING-KEY.md and this test");
    env(fingerprints.aws);
    sign("aws");
    refused(/^nourishctl: agent install: no AWS signing key at .*amazon-cloudwatch-agent\.gpg .*; installing nothing$/);
  });

  it("refuses a key whose fingerprint is not the pinned one", () => {
    deliverKey("mallory");
    env(fingerprints.aws);
    refused(/the signing key's fingerprint is [0-9A-F]{40}, not the pinned [0-9A-F]{40}; installing nothing$/);
  });

  it("refuses a package signed by another key, and a package changed after signing", () => {
    deliverKey("aws");
    env(fingerprints.aws);
    sign("mallory");
    refused(/the signature of amazon-cloudwatch-agent 1\.300070\.0 does not verify against AWS's key [0-9A-F]{40}; installing nothing$/);
    sign("aws");
    const deb = path.join(repo, "amazon-cloudwatch-agent.deb");
    const good = fs.readFileSync(deb);
    fs.appendFileSync(deb, "x");
    refused(/does not verify/);
    fs.writeFileSync(deb, good);
  });

  it("installs the pinned version when its signature verifies against the pinned key", () => {
    const r = install();
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /agent install: amazon-cloudwatch-agent 1\.300070\.0 installed \(signature by [0-9A-F]{40} verified\)/);
    assert.ok(installed());
    assert.match(run("dpkg", [`--root=${root}`, "-l", "amazon-cloudwatch-agent"]).stdout, /^ii\s+amazon-cloudwatch-agent\s+1\.300070\.0/m);
  });
});
