// A security incident from outside the host (issue 20): `npm run incident` isolates, releases and
// snapshots an instance with the operator's credentials; the hosts have no EC2 or ELB write right.
// The plan is asserted as data (scripts/incident/plan.ts), then the real CLI (AWS SDK v3) runs
// against moto_server on loopback as EC2 and ELBv2: an app host in its security group and target
// group, the stack's quarantine group, a second volume.
import * as assert from "assert";
import { AttachVolumeCommand, CreateSecurityGroupCommand, CreateSubnetCommand, CreateVolumeCommand, CreateVpcCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { CreateTargetGroupCommand, ElasticLoadBalancingV2Client, RegisterTargetsCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { spawnSync } from "child_process";
import { ROOT } from "../scripts/preview/stack-file";
import { IncidentRefused, isolatePlan, Observed, releasePlan, snapshotPlan } from "../scripts/incident/plan";
import { Moto, motoClientConfig, startMoto } from "./moto";

const TG = "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/app-targets/0123456789abcdef";
const observed = (over: Partial<Observed["instance"]> = {}, rest: Partial<Observed> = {}): Observed => ({
  project: "nourish-link", stack: "staging",
  instance: {
    id: "i-0123456789abcdef0", vpcId: "vpc-0aaaaaaaaaaaaaaaa", groups: ["sg-0aaaaaaaaaaaaaaaa"],
    tags: { project: "nourish-link", stack: "staging", role: "app" },
    volumes: [{ volumeId: "vol-0aaaaaaaaaaaaaaaa", device: "/dev/xvda" }, { volumeId: "vol-0bbbbbbbbbbbbbbbb", device: "/dev/sdf" }],
    ...over,
  },
  quarantineGroups: ["sg-0ffffffffffffffff"],
  registrations: [{ targetGroupArn: TG, port: 80 }],
  ...rest,
});
const Q = "sg-0ffffffffffffffff";
const SINCE = "2026-12-01T10:00:00Z";

describe("npm run incident: the plan as data", () => {
  it("isolate records first, then leaves the target groups, then moves into the quarantine group", () => {
    assert.deepStrictEqual(isolatePlan(observed(), SINCE), [
      { service: "ec2", action: "CreateTags", input: { Resources: ["i-0123456789abcdef0"], Tags: [
        { Key: "quarantine:previous-groups", Value: "sg-0aaaaaaaaaaaaaaaa" }, { Key: "quarantine:target-groups", Value: `${TG}:80` }, { Key: "quarantine:since", Value: SINCE },
      ] } },
      { service: "elbv2", action: "DeregisterTargets", input: { TargetGroupArn: TG, Targets: [{ Id: "i-0123456789abcdef0", Port: 80 }] } },
      { service: "ec2", action: "ModifyInstanceAttribute", input: { InstanceId: "i-0123456789abcdef0", Groups: [Q] } },
    ]);
  });

  it("isolate again keeps the record: only a registration made since is undone", () => {
    const isolated = observed({ groups: [Q], tags: { project: "nourish-link", stack: "staging", "quarantine:previous-groups": "sg-0aaaaaaaaaaaaaaaa" } });
    assert.deepStrictEqual(isolatePlan({ ...isolated, registrations: [] }, SINCE), []);
    assert.deepStrictEqual(isolatePlan(isolated, SINCE).map((c) => c.action), ["DeregisterTargets"]);
  });

  it("release undoes it from the record, and refuses a record that is not ids and ARNs", () => {
    const tags = { project: "nourish-link", stack: "staging", "quarantine:previous-groups": "sg-0aaaaaaaaaaaaaaaa sg-0bbbbbbbbbbbbbbbb", "quarantine:target-groups": `${TG}:80`, "quarantine:since": SINCE };
    assert.deepStrictEqual(releasePlan(observed({ groups: [Q], tags }, { registrations: [] })), [
      { service: "ec2", action: "ModifyInstanceAttribute", input: { InstanceId: "i-0123456789abcdef0", Groups: ["sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"] } },
      { service: "elbv2", action: "RegisterTargets", input: { TargetGroupArn: TG, Targets: [{ Id: "i-0123456789abcdef0", Port: 80 }] } },
      { service: "ec2", action: "DeleteTags", input: { Resources: ["i-0123456789abcdef0"], Tags: [{ Key: "quarantine:previous-groups" }, { Key: "quarantine:target-groups" }, { Key: "quarantine:since" }] } },
    ]);
    assert.throws(() => releasePlan(observed()), /^IncidentRefused: release: i-0123456789abcdef0 has no quarantine:previous-groups tag: it was not isolated by npm run incident; nothing changed$/);
    assert.throws(() => releasePlan(observed({ tags: { ...tags, "quarantine:previous-groups": "sg-1; reboot" } })), /is not a list of security group ids/);
    assert.throws(() => releasePlan(observed({ tags: { ...tags, "quarantine:target-groups": "arn:aws:iam::123456789012:role/x:80" } })), /not a target group ARN and port; nothing changed/);
  });

  it("refuses, changing nothing, an instance of another stack or a VPC without a single quarantine group", () => {
    const other = observed({ tags: { project: "nourish-link", stack: "prod" } });
    for (const plan of [() => isolatePlan(other, SINCE), () => releasePlan(other), () => snapshotPlan(other, "x", SINCE)]) {
      assert.throws(plan, (e: Error) => e instanceof IncidentRefused && /is not a host of nourish-link staging \(its tags: project=nourish-link stack=prod\); nothing changed$/.test(e.message));
    }
    assert.throws(() => isolatePlan(observed({}, { quarantineGroups: [] }), SINCE), /no single security group tagged Name=nourish-link-staging-quarantine in vpc-0aaaaaaaaaaaaaaaa \(found 0\); pulumi up creates it; nothing changed$/);
  });

  it("snapshot: one per volume, tagged with the reason, the time, the instance and the stack; a reason that is not a plain tag value is refused", () => {
    const calls = snapshotPlan(observed(), "incident 2026-12-01: web shell", SINCE);
    assert.deepStrictEqual(calls.map((c) => c.action === "CreateSnapshot" && c.input.VolumeId), ["vol-0aaaaaaaaaaaaaaaa", "vol-0bbbbbbbbbbbbbbbb"]);
    const c = calls[1];
    assert.ok(c.action === "CreateSnapshot");
    assert.deepStrictEqual(Object.fromEntries(c.input.TagSpecifications[0].Tags.map((t) => [t.Key, t.Value])), {
      Name: "nourish-link-staging-app /dev/sdf", reason: "incident 2026-12-01: web shell", "taken-at": SINCE, instance: "i-0123456789abcdef0",
      device: "/dev/sdf", project: "nourish-link", stack: "staging", "taken-by": "npm run incident snapshot",
    });
    for (const bad of ["x; reboot", 'say "hi"', "$(id)", "a\nb", "", "-x", "x".repeat(201)]) {
      assert.throws(() => snapshotPlan(observed(), bad, SINCE), /^IncidentRefused: snapshot: --reason must be 1-200 letters/, JSON.stringify(bad));
    }
  });
});

describe("npm run incident against moto_server (EC2, ELBv2)", function () {
  this.timeout(300_000);
  let moto: Moto;
  const ids = { vpc: "", app: "", quarantine: "", instance: "", tg: "", otherTg: "", data: "", prodInstance: "" };
  const aws = (...args: string[]) => {
    const r = moto.aws(args);
    assert.strictEqual(r.status, 0, `aws ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim() ? JSON.parse(r.stdout) : {};
  };
  /** The CLI as an operator runs it (npm run incident -- …), its AWS calls aimed at moto. */
  const incident = (...args: string[]) => {
    const r = spawnSync(process.execPath, ["-r", "esbuild-register", "scripts/incident.ts", ...args], {
      cwd: ROOT, encoding: "utf8", timeout: 120_000, env: { PATH: process.env.PATH, ...moto.env, AWS_ENDPOINT_URL: moto.endpoint },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const instance = (id: string) => aws("ec2", "describe-instances", "--instance-ids", id).Reservations[0].Instances[0];
  const groupsOf = (id: string) => instance(id).SecurityGroups.map((g: { GroupId: string }) => g.GroupId);
  const tagsOf = (id: string): Record<string, string> => Object.fromEntries((instance(id).Tags ?? []).map((t: { Key: string; Value: string }) => [t.Key, t.Value]));
  const targetsOf = (tg: string) => aws("elbv2", "describe-target-health", "--target-group-arn", tg).TargetHealthDescriptions.map((t: { Target: { Id: string } }) => t.Target.Id);

  before(async () => {
    moto = await startMoto();
    // Set-up through the SDK (one client each, no `aws` process per call); the checks keep the CLI.
    const ec2 = new EC2Client(motoClientConfig(moto));
    const elb = new ElasticLoadBalancingV2Client(motoClientConfig(moto));
    ids.vpc = (await ec2.send(new CreateVpcCommand({ CidrBlock: "10.0.0.0/16" }))).Vpc!.VpcId!;
    const subnet = (await ec2.send(new CreateSubnetCommand({ VpcId: ids.vpc, CidrBlock: "10.0.1.0/24", AvailabilityZone: "af-south-1a" }))).Subnet!.SubnetId!;
    const sg = async (name: string) => (await ec2.send(new CreateSecurityGroupCommand({ GroupName: `${name}-x`, Description: name, VpcId: ids.vpc,
      TagSpecifications: [{ ResourceType: "security-group", Tags: [{ Key: "Name", Value: name }] }] }))).GroupId!;
    ids.app = await sg("nourish-link-staging-app");
    ids.quarantine = await sg("nourish-link-staging-quarantine");
    await sg("nourish-link-prod-quarantine");
    const run = async (stack: string) => (await ec2.send(new RunInstancesCommand({ ImageId: "ami-12c6146b", InstanceType: "t3.micro", SubnetId: subnet, SecurityGroupIds: [ids.app], MinCount: 1, MaxCount: 1,
      TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "project", Value: "nourish-link" }, { Key: "stack", Value: stack }, { Key: "role", Value: "app" }] }] }))).Instances![0].InstanceId!;
    ids.instance = await run("staging");
    ids.prodInstance = await run("prod");
    ids.data = (await ec2.send(new CreateVolumeCommand({ AvailabilityZone: "af-south-1a", Size: 1 }))).VolumeId!;
    await ec2.send(new AttachVolumeCommand({ VolumeId: ids.data, InstanceId: ids.instance, Device: "/dev/sdf" }));
    const tg = async (name: string) => (await elb.send(new CreateTargetGroupCommand({ Name: name, Protocol: "HTTP", Port: 80, VpcId: ids.vpc }))).TargetGroups![0].TargetGroupArn!;
    ids.tg = await tg("app-targets");
    ids.otherTg = await tg("other-targets");
    await elb.send(new RegisterTargetsCommand({ TargetGroupArn: ids.tg, Targets: [{ Id: ids.instance, Port: 80 }] }));
    ec2.destroy();
    elb.destroy();
  });
  after(() => moto?.stop());

  it("has --help, and without --yes isolate only prints its plan", () => {
    assert.match(incident("--help").stdout, /usage: npm run incident -- isolate\|release\|snapshot/);
    const r = incident("isolate", "--stack", "staging", "--instance", ids.instance);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`isolate: would make 3 call\\(s\\) on ${ids.instance}; add --yes to do it; nothing changed`));
    assert.match(r.stdout, new RegExp(`ec2 modify-instance-attribute ${ids.instance} --groups ${ids.quarantine}`));
    assert.deepStrictEqual(groupsOf(ids.instance), [ids.app]);
    assert.deepStrictEqual(targetsOf(ids.tg), [ids.instance]);
  });

  it("isolate --yes: quarantine group only, out of the target group, still running, the change recorded in its tags", () => {
    const r = incident("isolate", "--stack", "staging", "--instance", ids.instance, "--yes");
    assert.strictEqual(r.status, 0, r.stderr);
    const i = instance(ids.instance);
    assert.deepStrictEqual(groupsOf(ids.instance), [ids.quarantine]);
    assert.strictEqual(i.State.Name, "running");
    assert.deepStrictEqual(targetsOf(ids.tg), []);
    const tags = tagsOf(ids.instance);
    assert.strictEqual(tags["quarantine:previous-groups"], ids.app);
    assert.strictEqual(tags["quarantine:target-groups"], `${ids.tg}:80`);
    assert.match(tags["quarantine:since"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(r.stdout, new RegExp(`to undo: npm run incident -- release --stack staging --instance ${ids.instance} --yes`));
    const again = incident("isolate", "--stack", "staging", "--instance", ids.instance, "--yes");
    assert.strictEqual(again.status, 0, again.stderr);
    assert.match(again.stdout, /is already isolated; nothing to do/);
    assert.strictEqual(tagsOf(ids.instance)["quarantine:previous-groups"], ids.app, "the record survives a re-run");
  });

  it("snapshot: one snapshot per attached volume, tagged with the reason and the stack, taken from outside the (quarantined) host", () => {
    const r = incident("snapshot", "--stack", "staging", "--instance", ids.instance, "--reason", "incident 2026-12-01: web shell");
    assert.strictEqual(r.status, 0, r.stderr);
    const snaps = [...r.stdout.matchAll(/ -> (snap-[0-9a-f]+)/g)].map((m) => m[1]);
    const volumes = aws("ec2", "describe-volumes", "--filters", `Name=attachment.instance-id,Values=${ids.instance}`).Volumes.map((v: { VolumeId: string }) => v.VolumeId).sort();
    assert.strictEqual(volumes.length, 2);
    const taken = aws("ec2", "describe-snapshots", "--snapshot-ids", ...snaps).Snapshots as { VolumeId: string; Tags: { Key: string; Value: string }[] }[];
    assert.deepStrictEqual(taken.map((s) => s.VolumeId).sort(), volumes);
    for (const s of taken) {
      const tags = Object.fromEntries(s.Tags.map((t) => [t.Key, t.Value]));
      assert.strictEqual(tags.reason, "incident 2026-12-01: web shell");
      assert.strictEqual(tags.instance, ids.instance);
      assert.strictEqual(tags.stack, "staging");
    }
    const bad = incident("snapshot", "--stack", "staging", "--instance", ids.instance, "--reason", "$(reboot)");
    assert.strictEqual(bad.status, 1);
    assert.strictEqual(bad.stderr.trim(), "incident: snapshot: --reason must be 1-200 letters, digits, spaces or + - = . _ : / @ (not starting with a space or -); nothing taken");
  });

  it("release --yes puts it back from the record: previous groups, target group, record removed", () => {
    const r = incident("release", "--stack", "staging", "--instance", ids.instance, "--yes");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(groupsOf(ids.instance), [ids.app]);
    assert.deepStrictEqual(targetsOf(ids.tg), [ids.instance]);
    assert.deepStrictEqual(Object.keys(tagsOf(ids.instance)).filter((k) => k.startsWith("quarantine:")), []);
  });

  it("refuses in one line, changing nothing: another stack's instance, a bad instance id, an unknown verb", () => {
    let r = incident("isolate", "--stack", "staging", "--instance", ids.prodInstance, "--yes");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(r.stderr.trim(), `incident: isolate: ${ids.prodInstance} is not a host of nourish-link staging (its tags: project=nourish-link stack=prod); nothing changed`);
    assert.deepStrictEqual(groupsOf(ids.prodInstance), [ids.app]);
    r = incident("isolate", "--stack", "staging", "--instance", "i-$(reboot)", "--yes");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(r.stderr.trim(), 'incident: isolate: --instance must be an EC2 instance id (i-…), not "i-$(reboot)"');
    r = incident("quarantine", "--stack", "staging");
    assert.match(r.stderr.trim(), /^incident: 'quarantine' is not a verb \(isolate, release, snapshot\)/);
  });
});
