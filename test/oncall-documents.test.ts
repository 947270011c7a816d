// The on-call procedures as SSM documents (issue 14), under Pulumi's mocks: one Command document
// (schema 2.2) per procedure, each calling one existing nourishctl verb with a fixed argv; their
// allowedPatterns refuse injection; the rendered scripts pass shellcheck as sh and, run as SSM
// runs them, hand nourishctl exactly the argv they promise. Also the quarantine group, the
// endpoints it still reaches, who may isolate and snapshot (evaluated offline: the on-call
// operator, never a host) and the stack output.
import { runSimulation } from "@cloud-copilot/iam-simulate";
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_PATH, NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { ONCALL_PROCEDURES, oncallVerbs, substituteOncall } from "../components/oncall/documents";
import { ACCOUNT_ID } from "../scripts/preview/mocks";
import { committedStack, ofType, one, ProgramRun } from "./harness";
import { requireTool, run } from "./tools";

const ACCOUNT = ACCOUNT_ID;

// What an attacker might type into a console field: each must fail every parameter's pattern.
const INJECTIONS = ["app; reboot", "app && reboot", "app|id", "$(id)", "`id`", "app\nreboot", "'app'", '"app"', "-rf", "--all-users",
  "app\\", "${IFS}", "a>b", "a<b", "(app)", "{app}", "app #", "../etc", ""];

describe("on-call SSM documents, quarantine and incident rights (Pulumi mocks)", function () {
  this.timeout(300_000);
  let staging: ProgramRun;
  let prod: ProgramRun;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-oncall-docs-"));
  before(async () => {
    staging = await committedStack("staging");
    prod = await committedStack("prod");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const docs = (r: ProgramRun) => ofType(r, "aws:ssm/document:Document").filter((d) => d.name.startsWith("oncall-"));

  it("one Command document (schema 2.2, aws:runShellScript) per procedure, named for the stack", () => {
    for (const [stack, r] of [["staging", staging], ["prod", prod]] as const) {
      const found = docs(r);
      assert.deepStrictEqual(found.map((d) => d.name).sort(), ONCALL_PROCEDURES.map((p) => `oncall-${p.name}`).sort());
      for (const p of ONCALL_PROCEDURES) {
        const d = one(r, "aws:ssm/document:Document", `oncall-${p.name}`);
        assert.strictEqual(d.inputs.name, `nourish-link-${stack}-${p.name}`);
        assert.strictEqual(d.inputs.documentType, "Command");
        assert.strictEqual(d.inputs.targetType, "/AWS::EC2::Instance");
        const content = JSON.parse(String(d.inputs.content));
        assert.strictEqual(content.schemaVersion, "2.2");
        assert.deepStrictEqual(content.mainSteps.map((s: { action: string }) => s.action), ["aws:runShellScript"]);
        assert.deepStrictEqual(Object.keys(content.parameters), Object.keys(p.parameters), p.name);
        for (const [k, v] of Object.entries(content.parameters) as [string, { allowedPattern: string }][]) {
          assert.match(v.allowedPattern, /^\^.*\$$/, `${p.name}.${k} is anchored`);
        }
      }
    }
    for (const p of ["restart", "db-kill-long-queries"]) {
      assert.ok("confirm" in ONCALL_PROCEDURES.find((x) => x.name === p)!.parameters, `${p} is disruptive: it needs confirm=yes`);
    }
  });

  it("every allowedPattern refuses injection attempts, and SSM would refuse them before anything runs", () => {
    for (const p of ONCALL_PROCEDURES) {
      for (const [k, def] of Object.entries(p.parameters)) {
        const re = new RegExp(def.pattern);
        for (const bad of INJECTIONS) assert.ok(!re.test(bad), `${p.name}.${k} admits ${JSON.stringify(bad)}`);
        if (def.default !== undefined) assert.ok(re.test(def.default), `${p.name}.${k}'s default fails its own pattern`);
        assert.throws(() => substituteOncall(p, { ...p.example, [k]: "x; reboot" }), /InvalidParameters/);
      }
      assert.throws(() => substituteOncall(p, { ...p.example, evil: "1" }), /InvalidParameters: evil is not a parameter/);
    }
    assert.throws(() => substituteOncall(ONCALL_PROCEDURES.find((p) => p.name === "restart")!, { service: "app" }), /restart needs confirm/);
  });

  it("each document calls an existing nourishctl verb, and its script passes shellcheck as sh", () => {
    requireTool("shellcheck");
    const help = run("bash", [NOURISHCTL_SOURCE, "help"]).stdout;
    const verbs = new Set([...help.matchAll(/^ {2}([a-z-]+) /gm)].map((m) => m[1]));
    assert.ok(verbs.has("status") && verbs.has("restart"), help);
    for (const p of ONCALL_PROCEDURES) {
      const used = oncallVerbs(p);
      assert.ok(used.length > 0, p.name);
      for (const v of used) assert.ok(verbs.has(v), `${p.name} calls nourishctl ${v}, which is not a verb (${[...verbs].join(", ")})`);
      const content = JSON.parse(String(one(staging, "aws:ssm/document:Document", `oncall-${p.name}`).inputs.content));
      const file = path.join(dir, `${p.name}.sh`);
      fs.writeFileSync(file, content.mainSteps[0].inputs.runCommand.join("\n") + "\n");
      const sc = run("shellcheck", ["-s", "sh", file]);
      assert.strictEqual(sc.status, 0, `${p.name}: ${sc.stdout}`);
    }
    // The subcommands the db documents use are the ones `db` knows.
    const dbHelp = run("bash", [NOURISHCTL_SOURCE, "db", "--help"]).stdout;
    assert.match(dbHelp, /nourishctl db diagnose \[--older-than DURATION\]/);
    assert.match(dbHelp, /nourishctl db kill-long-queries --older-than DURATION \[--terminate\]/);
  });

  it("run as SSM runs them, the scripts hand nourishctl exactly the argv they promise, whatever the values", () => {
    // A stand-in nourishctl at the host's path in a sandbox root prints its argv, one per line.
    const root = path.join(dir, "root");
    fs.mkdirSync(path.dirname(path.join(root, NOURISHCTL_PATH)), { recursive: true });
    fs.writeFileSync(path.join(root, NOURISHCTL_PATH), "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n", { mode: 0o755 });
    const argv = (name: string, params: Record<string, string>) => {
      const r = run("sh", ["-c", substituteOncall(ONCALL_PROCEDURES.find((p) => p.name === name)!, params)], { env: { ...process.env, NOURISH_ROOT: root } });
      return { status: r.status, argv: r.stdout.split("\n").slice(0, -1), stderr: r.stderr };
    };
    assert.deepStrictEqual(argv("status", {}).argv, ["status", "--json"]);
    assert.deepStrictEqual(argv("restart", { service: "postgresql", confirm: "yes" }).argv, ["restart", "postgresql", "--yes"]);
    assert.deepStrictEqual(argv("logs", {}).argv, ["logs", "errors", "--since", "1h"]);
    assert.deepStrictEqual(argv("logs", { kind: "access", since: "2d" }).argv, ["logs", "access", "--since", "2d"]);
    assert.deepStrictEqual(argv("db-diagnose", {}).argv, ["db", "diagnose", "--older-than", "5m"]);
    assert.deepStrictEqual(argv("db-kill-long-queries", { olderThan: "90s", confirm: "yes" }).argv, ["db", "kill-long-queries", "--older-than", "90s", "--yes"]);
    assert.deepStrictEqual(argv("db-kill-long-queries", { olderThan: "10m", terminate: "yes", confirm: "yes" }).argv, ["db", "kill-long-queries", "--older-than", "10m", "--terminate", "--yes"]);
    assert.deepStrictEqual(argv("maintenance", { state: "on" }).argv, ["maintenance", "on"]);
  });

  it("the stack output lists a ready-to-paste send-command per procedure, by tag", () => {
    const commands = staging.outputs.oncallCommands as Record<string, string>;
    assert.deepStrictEqual(Object.keys(commands).sort(), ONCALL_PROCEDURES.map((p) => p.name).sort());
    for (const p of ONCALL_PROCEDURES) {
      const c = commands[p.name];
      assert.ok(c.startsWith(`aws ssm send-command --region af-south-1 --document-name nourish-link-staging-${p.name} `), c);
      assert.match(c, new RegExp(` --targets Key=tag:project,Values=nourish-link Key=tag:stack,Values=staging Key=tag:role,Values=${(p.exampleRoles ?? p.roles).join(",")}( |$)`));
      const params = c.match(/--parameters '([^']*)'/);
      if (params) {
        const given = Object.fromEntries(Object.entries(JSON.parse(params[1]) as Record<string, string[]>).map(([k, v]) => [k, v[0]]));
        assert.doesNotThrow(() => substituteOncall(p, given), c);
      } else {
        assert.doesNotThrow(() => substituteOncall(p, {}), c);
      }
    }
    // The role tag the targets name is on the instances.
    assert.deepStrictEqual([...new Set(ofType(staging, "aws:ec2/instance:Instance").map((i) => (i.inputs.tags as Record<string, string>).role))].sort(), ["app", "db"]);
  });

  it("the quarantine group has no ingress and reaches only the VPC's SSM and Logs endpoints", () => {
    for (const r of [staging, prod]) {
      const q = one(r, "aws:ec2/securityGroup:SecurityGroup", "network-quarantine");
      assert.match(String((q.inputs.tags as Record<string, string>).Name), /^nourish-link-(staging|prod)-quarantine$/);
      const rules = (type: string) => ofType(r, type).filter((x) => x.inputs.securityGroupId === q.id || x.inputs.referencedSecurityGroupId === q.id);
      assert.deepStrictEqual(rules("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"), []);
      const vpc = ofType(r, "aws:ec2/vpc:Vpc")[0];
      assert.deepStrictEqual(rules("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule").map((e) => [e.inputs.ipProtocol, e.inputs.fromPort, e.inputs.toPort, e.inputs.cidrIpv4]),
        [["tcp", 443, 443, vpc.inputs.cidrBlock]]);
      const endpoints = ofType(r, "aws:ec2/vpcEndpoint:VpcEndpoint").filter((e) => e.inputs.vpcEndpointType === "Interface");
      assert.deepStrictEqual(endpoints.map((e) => String(e.inputs.serviceName).split(".").pop()).sort(), ["ec2messages", "logs", "ssm", "ssmmessages"]);
      for (const e of endpoints) assert.strictEqual(e.inputs.privateDnsEnabled, true);
    }
  });

  it("no host role may write to EC2 or ELB (issue 20): isolation and snapshots are the on-call operator's", () => {
    const roles = ofType(prod, "aws:iam/role:Role").filter((x) => /^(app|database)-role$/.test(x.name));
    assert.strictEqual(roles.length, 2);
    const grants = ofType(prod, "aws:iam/rolePolicy:RolePolicy").filter((g) => roles.some((r) => r.id === g.inputs.role));
    assert.ok(grants.length > 0);
    for (const g of grants) {
      for (const st of JSON.parse(String(g.inputs.policy)).Statement as { Action: string | string[] }[]) {
        for (const a of ([] as string[]).concat(st.Action)) assert.ok(!/^(ec2|elasticloadbalancing):(?!Describe)/.test(a), `${g.name} grants ${a}`);
      }
    }
  });

  it("the on-call operator may isolate, release and snapshot this stack's instances only, and nothing more", async () => {
    const policy = JSON.parse(String(one(prod, "aws:iam/policy:Policy", "oncall-operator").inputs.policy));
    const q = one(prod, "aws:ec2/securityGroup:SecurityGroup", "network-quarantine");
    const quarantineArn = `arn:aws:ec2:af-south-1:${ACCOUNT}:security-group/${q.id}`;
    const ec2 = (t: string) => `arn:aws:ec2:af-south-1:${ACCOUNT}:${t}`;
    const allowed = async (action: string, resource: string, context: Record<string, string | string[]> = {}) => {
      const r = await runSimulation({
        request: { principal: `arn:aws:iam::${ACCOUNT}:role/oncall`, action, resource: { resource, accountId: ACCOUNT }, contextVariables: { "aws:SecureTransport": "true", ...context } },
        identityPolicies: [{ name: "oncall", policy }], serviceControlPolicies: [], resourceControlPolicies: [],
      }, {});
      if (r.resultType === "error") assert.fail(`the evaluator refused ${action} on ${resource}: ${JSON.stringify(r.errors)}`);
      return r.overallResult === "Allowed";
    };
    const ours = { "aws:ResourceTag/project": "nourish-link", "aws:ResourceTag/stack": "prod" };
    const theirs = { "aws:ResourceTag/project": "nourish-link", "aws:ResourceTag/stack": "staging" };
    const instance = ec2("instance/i-0123456789abcdef0");
    assert.strictEqual(await allowed("ec2:ModifyInstanceAttribute", instance, ours), true);
    assert.strictEqual(await allowed("ec2:ModifyInstanceAttribute", instance, theirs), false, "another stack's instance");
    assert.strictEqual(await allowed("ec2:ModifyInstanceAttribute", quarantineArn, ours), true);
    assert.strictEqual(await allowed("ec2:ModifyInstanceAttribute", ec2("security-group/sg-0aaaaaaaaaaaaaaaa"), theirs), false, "another stack's group");
    for (const action of ["ec2:CreateTags", "ec2:DeleteTags"]) {
      assert.strictEqual(await allowed(action, instance, { ...ours, "aws:TagKeys": ["quarantine:previous-groups"] }), true, action);
      assert.strictEqual(await allowed(action, instance, { ...ours, "aws:TagKeys": ["stack"] }), false, `${action} the stack tag`);
      assert.strictEqual(await allowed(action, instance, { ...theirs, "aws:TagKeys": ["quarantine:since"] }), false, `${action} on another stack`);
    }
    const tg = `arn:aws:elasticloadbalancing:af-south-1:${ACCOUNT}:targetgroup/app-targets/0123456789abcdef`;
    for (const action of ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]) {
      assert.strictEqual(await allowed(action, tg, ours), true, action);
      assert.strictEqual(await allowed(action, tg, theirs), false, action);
    }
    const snap = "arn:aws:ec2:af-south-1::snapshot/snap-0123456789abcdef0";
    assert.strictEqual(await allowed("ec2:CreateSnapshot", ec2("volume/vol-0123456789abcdef0")), true);
    assert.strictEqual(await allowed("ec2:CreateSnapshot", snap, { "aws:RequestTag/project": "nourish-link", "aws:RequestTag/stack": "prod" }), true);
    assert.strictEqual(await allowed("ec2:CreateSnapshot", snap, { "aws:RequestTag/project": "nourish-link", "aws:RequestTag/stack": "staging" }), false);
    assert.strictEqual(await allowed("ec2:CreateTags", snap, { "ec2:CreateAction": "CreateSnapshot" }), true);
    assert.strictEqual(await allowed("ec2:CreateTags", snap, {}), false, "retagging an existing snapshot");
    for (const [action, resource] of [["ec2:DeleteSnapshot", snap], ["ec2:StopInstances", instance], ["ec2:TerminateInstances", instance],
      ["ec2:AuthorizeSecurityGroupIngress", quarantineArn], ["ec2:ModifySnapshotAttribute", snap]] as const) {
      assert.strictEqual(await allowed(action, resource, ours), false, action);
    }
  });

  it("the on-call operator policy: these documents, this stack's hosts by tag, the invocations, the incident rights; nothing else", () => {
    const policy = JSON.parse(String(one(prod, "aws:iam/policy:Policy", "oncall-operator").inputs.policy));
    assert.deepStrictEqual(policy.Statement.map((s: { Sid: string }) => s.Sid), ["SendTheOncallDocuments", "SendToThisStacksHosts", "ReadInvocations",
      "SeeTheHosts", "MoveThisStacksInstancesBetweenItsGroups", "RecordTheIsolation", "ThisStacksTargetGroups", "SnapshotVolumes", "SnapshotsTaggedWithThisStack", "TagSnapshotsWhenTaken"]);
    assert.deepStrictEqual(policy.Statement[0].Resource, ONCALL_PROCEDURES.map((p) => `arn:aws:ssm:af-south-1:${ACCOUNT}:document/nourish-link-prod-${p.name}`));
    assert.deepStrictEqual(policy.Statement[1].Condition, { StringEquals: { "ssm:resourceTag/project": "nourish-link", "ssm:resourceTag/stack": "prod" } });
    assert.match(String(prod.outputs.oncallOperatorPolicyArn), /^arn:aws:iam::/);
  });
});
