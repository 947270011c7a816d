// `npm run incident -- isolate|release|snapshot --stack S --instance i-… [--yes] [--reason TEXT]`:
// a security incident, done from a workstation with the operator's own credentials (the AWS SDK's
// default chain; the stack output oncallOperatorPolicyArn grants exactly this), never from the
// host: hosts have no EC2 or ELB write right (issue 20), and a quarantined host could not reach
// the EC2 API anyway. What it does is planned as data (scripts/incident/plan.ts) from what it
// observes; isolate and release print the plan and change nothing without --yes.
// AWS_ENDPOINT_URL (the SDK's own) aims it at a local endpoint (tests: moto_server).
import {
  CreateSnapshotCommand, CreateTagsCommand, DeleteTagsCommand, DescribeInstancesCommand, DescribeSecurityGroupsCommand, EC2Client, ModifyInstanceAttributeCommand,
} from "@aws-sdk/client-ec2";
import {
  DeregisterTargetsCommand, DescribeTargetGroupsCommand, DescribeTargetHealthCommand, ElasticLoadBalancingV2Client, RegisterTargetsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { PROJECT } from "../components/config";
import { readStackFile } from "./preview/stack-file";
import { Call, describeCall, INSTANCE_ID_RE, IncidentRefused, isolatePlan, Observed, releasePlan, snapshotPlan } from "./incident/plan";

// See scripts/release/ssm-step.ts: the pinned SDK runs on node 20; one line on failure.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export interface Clients { ec2: EC2Client; elb: ElasticLoadBalancingV2Client }

export function clients(region: string): Clients {
  return { ec2: new EC2Client({ region }), elb: new ElasticLoadBalancingV2Client({ region }) };
}

/** The instance, its stack's quarantine group and its load balancer registrations, as they are now. */
export async function observe(c: Clients, stack: string, instanceId: string): Promise<Observed> {
  const found = await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  const i = found.Reservations?.[0]?.Instances?.[0];
  if (!i?.VpcId) throw new IncidentRefused(`no instance ${instanceId} in a VPC; nothing changed`);
  const quarantine = await c.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [
    { Name: "vpc-id", Values: [i.VpcId] }, { Name: "tag:Name", Values: [`${PROJECT}-${stack}-quarantine`] },
  ] }));
  const registrations: Observed["registrations"] = [];
  let marker: string | undefined;
  do {
    const page = await c.elb.send(new DescribeTargetGroupsCommand({ Marker: marker }));
    for (const tg of (page.TargetGroups ?? []).filter((t) => t.VpcId === i.VpcId)) {
      const health = await c.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg.TargetGroupArn }));
      for (const h of health.TargetHealthDescriptions ?? []) {
        if (h.Target?.Id === instanceId) registrations.push({ targetGroupArn: tg.TargetGroupArn!, port: h.Target.Port ?? tg.Port! });
      }
    }
    marker = page.NextMarker;
  } while (marker);
  return {
    project: PROJECT, stack,
    instance: {
      id: instanceId, vpcId: i.VpcId,
      groups: (i.SecurityGroups ?? []).map((g) => g.GroupId!),
      tags: Object.fromEntries((i.Tags ?? []).map((t) => [t.Key!, t.Value ?? ""])),
      volumes: (i.BlockDeviceMappings ?? []).filter((b) => b.Ebs?.VolumeId).map((b) => ({ volumeId: b.Ebs!.VolumeId!, device: b.DeviceName ?? "?" })),
    },
    quarantineGroups: (quarantine.SecurityGroups ?? []).map((g) => g.GroupId!),
    registrations,
  };
}

/** Makes the calls in order; stops at the first failure, naming it and what was done before. */
export async function runCalls(c: Clients, calls: Call[], say: (line: string) => void): Promise<string[]> {
  const results: string[] = [];
  for (const [n, call] of calls.entries()) {
    try {
      switch (call.action) {
        case "CreateTags": await c.ec2.send(new CreateTagsCommand(call.input)); break;
        case "DeleteTags": await c.ec2.send(new DeleteTagsCommand(call.input)); break;
        case "ModifyInstanceAttribute": await c.ec2.send(new ModifyInstanceAttributeCommand(call.input)); break;
        case "CreateSnapshot": results.push((await c.ec2.send(new CreateSnapshotCommand(call.input))).SnapshotId ?? ""); break;
        case "DeregisterTargets": await c.elb.send(new DeregisterTargetsCommand(call.input)); break;
        case "RegisterTargets": await c.elb.send(new RegisterTargetsCommand(call.input)); break;
      }
    } catch (e) {
      const err = e as { name?: string; message?: string };
      throw new Error(`${describeCall(call)} failed (${err.name ?? "error"}: ${(err.message ?? String(e)).split("\n")[0]}) after ${n} of ${calls.length} call(s)`);
    }
    say(`done: ${describeCall(call)}${call.action === "CreateSnapshot" ? ` -> ${results[results.length - 1]}` : ""}`);
  }
  return results;
}

const USAGE = "usage: npm run incident -- isolate|release|snapshot --stack STACK --instance i-… [--yes] [--reason TEXT]";

export async function main(argv: string[], say: (line: string) => void = console.log, c?: Clients): Promise<void> {
  const [verb, ...rest] = argv;
  if (!verb || verb === "--help" || verb === "-h") {
    say(USAGE);
    say("  isolate   move the instance into its stack's quarantine group (no ingress; HTTPS to the VPC's endpoints only), out of");
    say("            every target group, kept running; recorded first in its quarantine:* tags. Needs --yes.");
    say("  release   undo an isolation from those tags: previous groups, target groups back, tags removed. Needs --yes.");
    say("  snapshot  one EBS snapshot of every attached volume, tagged reason, taken-at, instance, device, project, stack.");
    say("  With the operator's own AWS credentials (the stack output oncallOperatorPolicyArn); nothing runs on the host.");
    return;
  }
  if (!["isolate", "release", "snapshot"].includes(verb)) throw new IncidentRefused(`'${verb}' is not a verb (isolate, release, snapshot); ${USAGE}`);
  const opts: Record<string, string | true> = {};
  for (let k = 0; k < rest.length; k++) {
    const a = rest[k];
    if (a === "--yes") opts.yes = true;
    else if (["--stack", "--instance", "--reason"].includes(a) && rest[k + 1] !== undefined) opts[a.slice(2)] = rest[++k];
    else throw new IncidentRefused(`${verb}: unknown or incomplete option '${a}' (--stack S, --instance i-…, --reason TEXT, --yes)`);
  }
  if (typeof opts.stack !== "string") throw new IncidentRefused(`${verb}: --stack is required; ${USAGE}`);
  if (typeof opts.instance !== "string" || !INSTANCE_ID_RE.test(opts.instance)) throw new IncidentRefused(`${verb}: --instance must be an EC2 instance id (i-…), not ${JSON.stringify(opts.instance ?? "")}`);
  const region = readStackFile(opts.stack).config["aws:region"];
  const cl = c ?? clients(region);
  const o = await observe(cl, opts.stack, opts.instance);
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const calls = verb === "isolate" ? isolatePlan(o, now) : verb === "release" ? releasePlan(o) : snapshotPlan(o, typeof opts.reason === "string" ? opts.reason : "on-call snapshot", now);
  if (verb !== "snapshot" && !opts.yes) {
    say(`${verb}: would make ${calls.length} call(s) on ${o.instance.id}; add --yes to do it; nothing changed`);
    for (const call of calls) say(`  ${describeCall(call)}`);
    return;
  }
  if (!calls.length) { say(`${verb}: ${o.instance.id} is already isolated; nothing to do`); return; }
  await runCalls(cl, calls, say);
  if (verb === "isolate") say(`isolate: ${o.instance.id} is in the quarantine group and out of its target groups, still running; to undo: npm run incident -- release --stack ${opts.stack} --instance ${o.instance.id} --yes`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`incident: ${(e as Error).message}`);
    process.exit(1);
  });
}
