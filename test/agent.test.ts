// The agents: the CloudWatch agent's rendered configuration validated against the agent's own JSON
// schema (vendored, draft-04, with ajv); `nourishctl agent install` in a sandbox root fetching
// stand-in packages (test/agent-debs.ts, real dpkg-deb and dpkg) from the S3 emulator at the
// buckets and keys AWS serves them from; `nourishctl status` on a missing agent; the pinned
// versions in the hosts' user data.
import * as assert from "assert";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import Ajv from "ajv-draft-04";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { agentPackage, agentsEnv } from "../components/hosts/agents";
import { hostEnv, NOURISHCTL_SOURCE, renderHostCloudInit } from "../components/hosts/user-data";
import { AGENT_VENDOR_DIR, renderAgentConfig } from "../components/monitoring/agent";
import { agentPackagePaths, buildAgentStandIns, buildDeb, PINNED } from "./agent-debs";
import { PROD_BACKUP_BUCKET } from "../scripts/preview/mocks";
import { committedStack, loadStackConfig, ofType, one } from "./harness";
import { S3, startS3 } from "./s3";
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
    assert.deepStrictEqual(agentsEnv(config), { SSM_AGENT_VERSION: "3.3.3598.0", CLOUDWATCH_AGENT_VERSION: "1.300070.0" });
  });
});

const LIB = path.join(path.dirname(NOURISHCTL_SOURCE), "lib");

describe("where the agents come from: AWS's regional buckets, the pinned versions", () => {
  const sourced = (fn: string, env: Record<string, string>) => run("bash", ["-c", `. "$1"; ${fn}`, "agent", NOURISHCTL_SOURCE], {
    env: { ...process.env, NOURISH_ROOT: "/nonexistent", NOURISH_LIB: LIB, REGION: "af-south-1", SSM_AGENT_VERSION: "3.3.3598.0", CLOUDWATCH_AGENT_VERSION: "1.300070.0", ...env },
  });

  it("are AWS's documented latest/ paths with the version in its place", () => {
    assert.deepStrictEqual(agentPackage("ssm", "af-south-1", "3.3.3598.0"), {
      package: "amazon-ssm-agent", bucket: "amazon-ssm-af-south-1", key: "3.3.3598.0/debian_amd64/amazon-ssm-agent.deb",
      url: "https://s3.af-south-1.amazonaws.com/amazon-ssm-af-south-1/3.3.3598.0/debian_amd64/amazon-ssm-agent.deb",
    });
    assert.deepStrictEqual(agentPackage("cloudwatch", "eu-west-1", "1.300064.0b1337"), {
      package: "amazon-cloudwatch-agent", bucket: "amazoncloudwatch-agent-eu-west-1", key: "debian/amd64/1.300064.0b1337/amazon-cloudwatch-agent.deb",
      url: "https://amazoncloudwatch-agent-eu-west-1.s3.eu-west-1.amazonaws.com/debian/amd64/1.300064.0b1337/amazon-cloudwatch-agent.deb",
    });
  });

  it("the host builds the same URLs as the program, and keeps bucket and key behind a stand-in endpoint", () => {
    for (const a of ["ssm", "cloudwatch"] as const) {
      const r = sourced(`agent_url ${a}`, {});
      assert.strictEqual(r.stdout.trim(), agentPackage(a, "af-south-1", a === "ssm" ? "3.3.3598.0" : "1.300070.0").url, r.stderr);
      const p = agentPackagePaths("af-south-1", { ssm: "3.3.3598.0", cloudwatch: "1.300070.0" })[a];
      assert.strictEqual(sourced(`agent_url ${a}`, { AGENT_S3_ENDPOINT: "http://127.0.0.1:9" }).stdout.trim(), `http://127.0.0.1:9/${p.bucket}/${p.key}`);
    }
  });

  it("every host's host.env pins both versions and its cloud-init installs curl and runs setup (which installs them)", async () => {
    const config = await loadStackConfig("prod", { set: { agents: { ssmVersion: "3.3.3050.0" }, monitoring: { agentVersion: "1.300064.0b1337" } } });
    for (const role of ["app", "db"] as const) {
      const env = hostEnv(config, role, {}).content;
      assert.match(env, /^SSM_AGENT_VERSION=3\.3\.3050\.0$/m);
      assert.match(env, /^CLOUDWATCH_AGENT_VERSION=1\.300064\.0b1337$/m);
      const doc = renderHostCloudInit(config, role, { packages: [], files: [] }, []);
      assert.match(doc, /- curl$/m);
      assert.match(doc, /\/usr\/local\/sbin\/nourishctl setup/);
    }
  });

  it("agents.ssmVersion must be a four-number release (not latest)", async () => {
    for (const bad of ["latest", "3.3", "3.3.3598.0; reboot", "v3.3.3598.0"]) {
      await assert.rejects(loadStackConfig("staging", { set: { agents: { ssmVersion: bad } } }), /nourish-link:agents\.ssmVersion must be an SSM agent release such as 3\.3\.3598\.0/);
    }
  });
});

describe("nourishctl agent install against the S3 emulator: the pinned packages, checked, or one line naming the agent", function () {
  this.timeout(120_000);
  const REGION = "af-south-1";
  const paths = agentPackagePaths(REGION);
  let dir = "";
  let root = "";
  let s3: S3;
  let debs: { ssm: string; cloudwatch: string };
  const ctl = (args: string[], extra: Record<string, string> = {}) => run("bash", [NOURISHCTL_SOURCE, ...args], {
    env: { ...process.env, NOURISH_ROOT: root, AGENT_S3_ENDPOINT: s3.endpoint, ...extra },
  });
  const put = (file: string, where: { bucket: string; key: string }) => {
    const r = s3.aws(["s3", "cp", "--quiet", file, `s3://${where.bucket}/${where.key}`]);
    assert.strictEqual(r.status, 0, r.stderr);
  };
  const env = (vars: Record<string, string> = {}) => fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"),
    Object.entries({ ROLE: "app", STACK: "staging", REGION, DISK_FREE_MIN_PERCENT: "1", SSM_AGENT_VERSION: PINNED.ssm, CLOUDWATCH_AGENT_VERSION: PINNED.cloudwatch, ...vars })
      .map(([k, v]) => `${k}=${v}\n`).join(""));
  const installed = (pkg: string) => run("dpkg-query", [`--admindir=${root}/var/lib/dpkg`, "-W", "-f=${db:Status-Status} ${Version}", pkg]).stdout;
  const freshRoot = () => {
    fs.rmSync(root, { recursive: true, force: true });
    for (const d of ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc/nourish-link", "run", "opt/aws/amazon-cloudwatch-agent/etc"]) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.writeFileSync(path.join(root, "var/lib/dpkg/status"), "");
    env();
  };
  const oneLine = (r: { status: number | null; stderr: string }, why: RegExp) => {
    assert.strictEqual(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.strictEqual(lines.length, 1, r.stderr);
    assert.match(lines[0], why);
  };

  before(async () => {
    for (const t of ["dpkg-deb", "dpkg", "dpkg-query", "curl"]) requireTool(t);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-agents-"));
    root = path.join(dir, "root");
    debs = await buildAgentStandIns(path.join(dir, "debs"));
    s3 = await startS3({ buckets: [paths.ssm.bucket, paths.cloudwatch.bucket] });
    put(debs.ssm, paths.ssm);
    put(debs.cloudwatch, paths.cloudwatch);
  });
  after(async () => {
    await s3?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(freshRoot);

  it("status reports each pinned agent missing, with where it would come from", () => {
    const sleeper = run("bash", ["-c", "sleep 60 >/dev/null 2>&1 & echo $!"]).stdout.trim();
    fs.writeFileSync(path.join(root, "run/nginx.pid"), sleeper);
    try {
      const r = ctl(["status"], { AGENT_S3_ENDPOINT: "" });
      assert.strictEqual(r.status, 1, r.stdout);
      assert.match(r.stdout, /ok: nginx is running/);
      assert.ok(r.stderr.includes(`FAIL: amazon-ssm-agent is not installed (pinned ${PINNED.ssm} from ${agentPackage("ssm", REGION, PINNED.ssm).url}; 'nourishctl agent install ssm' says why)`), r.stderr);
      assert.match(r.stderr, /FAIL: amazon-cloudwatch-agent is not installed/);
      const j = JSON.parse(ctl(["status", "--json"]).stdout);
      assert.deepStrictEqual(j.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { check: string }) => c.check), ["amazon-ssm-agent", "amazon-cloudwatch-agent"]);
    } finally {
      process.kill(Number(sleeper));
    }
  });

  it("installs both pinned packages from their buckets and keys; status then wants them running", () => {
    const r = ctl(["agent", "install"]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`agent install: amazon-ssm-agent ${PINNED.ssm.replace(/\./g, "\\.")} installed from ${s3.endpoint}/${paths.ssm.bucket}/${paths.ssm.key.replace(/\./g, "\\.")}`));
    assert.match(r.stdout, /agent install: amazon-cloudwatch-agent 1\.300070\.0 installed from .*\/amazoncloudwatch-agent-af-south-1\/debian\/amd64\/1\.300070\.0\/amazon-cloudwatch-agent\.deb/);
    assert.strictEqual(installed("amazon-ssm-agent"), `installed ${PINNED.ssm}-1`);
    assert.strictEqual(installed("amazon-cloudwatch-agent"), `installed ${PINNED.cloudwatch}-1`);
    assert.ok(fs.existsSync(path.join(root, "lib/systemd/system/amazon-ssm-agent.service")));
    const s = ctl(["agent", "status"]);
    assert.strictEqual(s.status, 1);
    assert.match(s.stderr, /FAIL: amazon-ssm-agent 3\.3\.3598\.0-1 is installed but not running/);
    // Installed at the pin: a second run downloads nothing (the emulator is not asked).
    assert.strictEqual(ctl(["agent", "install"], { AGENT_S3_ENDPOINT: "http://127.0.0.1:9" }).status, 0);
  });

  it("a download that fails installs nothing and says which agent, from where, in one line; the other agent still installs", () => {
    env({ SSM_AGENT_VERSION: "3.3.9999.0" });
    const r = ctl(["agent", "install"]);
    oneLine(r, /^nourishctl: agent install: amazon-ssm-agent 3\.3\.9999\.0: cannot download http:\/\/127\.0\.0\.1:\d+\/amazon-ssm-af-south-1\/3\.3\.9999\.0\/debian_amd64\/amazon-ssm-agent\.deb \(curl: \(22\) .*404.*\); installing nothing$/);
    assert.strictEqual(installed("amazon-ssm-agent"), "");
    assert.match(installed("amazon-cloudwatch-agent"), /^installed /);
  });

  it("refuses another package, another version, another architecture or no package at the pinned key", () => {
    const cases: [string, RegExp][] = [
      [buildDeb(dir, { name: "evil-agent", version: `${PINNED.ssm}-1`, files: { "usr/bin/evil": { content: "x" } } }), /holds package 'evil-agent', not amazon-ssm-agent; installing nothing$/],
      [buildDeb(dir, { name: "amazon-ssm-agent", version: "3.3.1.0-1", files: { "usr/bin/amazon-ssm-agent": { content: "x" } } }), /holds version 3\.3\.1\.0-1, not the pinned 3\.3\.3598\.0; installing nothing$/],
      [buildDeb(dir, { name: "amazon-ssm-agent", version: `${PINNED.ssm}-1`, arch: "arm64", files: { "usr/bin/amazon-ssm-agent": { content: "x" } } }), /is built for arm64, not amd64; installing nothing$/],
      [path.join(AGENT_VENDOR_DIR, "LICENSE"), /is not a Debian package; installing nothing$/],
    ];
    try {
      for (const [file, why] of cases) {
        freshRoot();
        put(file, paths.ssm);
        const r = ctl(["agent", "install", "ssm"]);
        oneLine(r, new RegExp(`^nourishctl: agent install: amazon-ssm-agent 3\\.3\\.3598\\.0: .*${why.source}`));
        assert.strictEqual(installed("amazon-ssm-agent"), "", `${file} installed`);
      }
    } finally {
      put(debs.ssm, paths.ssm);
    }
  });

  it("setup installs the agents first, carries on, and fails at its end in one line naming the agent", () => {
    env({ CLOUDWATCH_AGENT_VERSION: "1.300099.0" });
    const r = run("bash", ["-c", '. "$1"; setup_agents; echo "setup carries on"; setup_agents_verdict', "setup", NOURISHCTL_SOURCE], {
      env: { ...process.env, NOURISH_ROOT: root, NOURISH_LIB: LIB, AGENT_S3_ENDPOINT: s3.endpoint },
    });
    assert.match(r.stdout, /agent install: amazon-ssm-agent 3\.3\.3598\.0 installed[^]*setup carries on/);
    oneLine(r, /^nourishctl: setup: agent install: amazon-cloudwatch-agent 1\.300099\.0: cannot download .*\/amazoncloudwatch-agent-af-south-1\/debian\/amd64\/1\.300099\.0\/amazon-cloudwatch-agent\.deb .*; installing nothing$/);
    // cmd_setup: the agents before the role's setup, the verdict last.
    const body = run("bash", ["-c", '. "$1"; declare -f cmd_setup', "setup", NOURISHCTL_SOURCE], { env: { ...process.env, NOURISH_ROOT: root, NOURISH_LIB: LIB } }).stdout.trim().split("\n");
    assert.ok(body.findIndex((l) => /^\s*setup_agents;?$/.test(l)) < body.findIndex((l) => /setup_(app|db)/.test(l)), "setup_agents runs first");
    assert.match(body[body.length - 2], /^\s*setup_agents_verdict;?$/);
  });
});

describe("the S3 gateway endpoint: AWS's agent buckets and this stack's own, nothing else (offline IAM evaluation)", function () {
  this.timeout(300_000);
  const ACCOUNT = "123456789012";
  // Whoever asks may do anything in S3 by its own policy: only the endpoint's policy decides.
  const anything = { name: "anything", policy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }] } };
  const through = async (policy: unknown, action: string, resource: string) => {
    const r = await runSimulation({
      request: { principal: `arn:aws:iam::${ACCOUNT}:role/app-host`, action, resource: { resource, accountId: ACCOUNT }, contextVariables: { "aws:SecureTransport": "true" } },
      identityPolicies: [anything], serviceControlPolicies: [], resourceControlPolicies: [], vpcEndpointPolicies: [{ name: "s3-endpoint", policy }],
    }, {});
    if (r.resultType === "error") assert.fail(`the evaluator refused ${action} on ${resource}: ${JSON.stringify(r.errors)}`);
    return r.overallResult === "Allowed";
  };

  it("prod and staging: the agents' packages and the stack's buckets pass; any other bucket, and writing to AWS's, do not", async () => {
    for (const stack of ["prod", "staging"]) {
      const r = await committedStack(stack);
      const endpoint = one(r, "aws:ec2/vpcEndpoint:VpcEndpoint", "network-s3");
      const policies = ofType(r, "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy");
      assert.deepStrictEqual(policies.map((p) => p.inputs.vpcEndpointId), [endpoint.id], `${stack}: one policy, on the S3 endpoint`);
      const policy = JSON.parse(String(policies[0].inputs.policy));
      const bucket = (name: string) => one(r, "aws:s3/bucket:Bucket", name).id;
      const ours = [bucket("tooling"), bucket("backups-archive"), bucket("backups-pgbackrest"), "nourish-link-releases",
        // Staging's restore rehearsal reads prod's backups (the mocks' prod stack reference).
        ...(stack === "staging" ? [PROD_BACKUP_BUCKET] : [])];
      for (const b of ours) {
        for (const action of ["s3:GetObject", "s3:PutObject"]) assert.strictEqual(await through(policy, action, `arn:aws:s3:::${b}/some/key`), true, `${stack}: ${action} on ${b}`);
        assert.strictEqual(await through(policy, "s3:ListBucket", `arn:aws:s3:::${b}`), true, `${stack}: list ${b}`);
      }
      for (const a of ["ssm", "cloudwatch"] as const) {
        const p = agentPackage(a, "af-south-1", "1.2.3");
        assert.strictEqual(await through(policy, "s3:GetObject", `arn:aws:s3:::${p.bucket}/${p.key}`), true, `${stack}: ${p.package}`);
        assert.strictEqual(await through(policy, "s3:PutObject", `arn:aws:s3:::${p.bucket}/${p.key}`), false, `${stack}: writing to ${p.bucket}`);
      }
      assert.strictEqual(await through(policy, "s3:GetObject", "arn:aws:s3:::aws-ssm-af-south-1/modules/x"), true, "AWS's SSM document modules");
      for (const other of ["someone-elses-bucket", "aws-windows-downloads-af-south-1", "amazon-ssm-eu-west-1", "amazon-ssm-af-south-1-evil"]) {
        for (const action of ["s3:GetObject", "s3:PutObject"]) assert.strictEqual(await through(policy, action, `arn:aws:s3:::${other}/x`), false, `${stack}: ${action} on ${other}`);
      }
    }
  });
});
