// A security incident, from outside the host (issue 20): what `npm run incident` does to one
// instance, as data. Pure: what was observed in EC2 and ELBv2 in, the API calls to make out (tests
// assert them as data; scripts/incident.ts observes and runs them with the operator's own
// credentials). A host has no EC2 or ELB write right, so none of this can run on a host.
//
// isolate: record first (the instance's quarantine:* tags: previous groups, target groups, since),
//   then leave every target group, then move into the stack's quarantine group. Safe to re-run:
//   an isolated instance keeps its record and only leaves a target group it was put back into.
// release: the undo, from the record: the previous groups, the recorded registrations, record
//   removed. Refuses an instance that is not isolated.
// snapshot: one snapshot per attached volume, tagged with the reason, the time and the stack.

export interface Observed {
  project: string;
  stack: string;
  instance: {
    id: string;
    vpcId: string;
    groups: string[];
    tags: Record<string, string>;
    volumes: { volumeId: string; device: string }[];
  };
  /** Groups in the instance's VPC tagged Name=<project>-<stack>-quarantine (exactly one expected). */
  quarantineGroups: string[];
  /** Where the instance is registered now. */
  registrations: { targetGroupArn: string; port: number }[];
}

type Tag = { Key: string; Value: string };
export type Call =
  | { service: "ec2"; action: "CreateTags"; input: { Resources: string[]; Tags: Tag[] } }
  | { service: "ec2"; action: "DeleteTags"; input: { Resources: string[]; Tags: { Key: string }[] } }
  | { service: "ec2"; action: "ModifyInstanceAttribute"; input: { InstanceId: string; Groups: string[] } }
  | { service: "ec2"; action: "CreateSnapshot"; input: { VolumeId: string; Description: string; TagSpecifications: { ResourceType: "snapshot"; Tags: Tag[] }[] } }
  | { service: "elbv2"; action: "DeregisterTargets" | "RegisterTargets"; input: { TargetGroupArn: string; Targets: { Id: string; Port: number }[] } };

/** A refusal: `message` is the one line to print; nothing was changed. */
export class IncidentRefused extends Error { override name = "IncidentRefused"; }

export const INSTANCE_ID_RE = /^i-[0-9a-f]{8,17}$/;
const GROUP_RE = /^sg-[0-9a-f]{8,17}$/;
const REGISTRATION_RE = /^(arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup\/[A-Za-z0-9-]{1,32}\/[0-9a-f]{16}):(\d{1,5})$/;
/** A tag value AWS accepts that is also inert anywhere it is printed: letters, digits, spaces and + - = . _ : / @. */
export const REASON_RE = /^[A-Za-z0-9][A-Za-z0-9 +=._:/@-]{0,199}$/;

export const TAG = { previousGroups: "quarantine:previous-groups", targetGroups: "quarantine:target-groups", since: "quarantine:since" } as const;

/** The instance belongs to this stack (its own tags), or nothing happens. */
function checkStack(o: Observed, verb: string): void {
  const t = o.instance.tags;
  if (t.project !== o.project || t.stack !== o.stack) {
    throw new IncidentRefused(`${verb}: ${o.instance.id} is not a host of ${o.project} ${o.stack} (its tags: project=${t.project ?? "-"} stack=${t.stack ?? "-"}); nothing changed`);
  }
}

function quarantineGroup(o: Observed, verb: string): string {
  if (o.quarantineGroups.length !== 1) {
    throw new IncidentRefused(`${verb}: no single security group tagged Name=${o.project}-${o.stack}-quarantine in ${o.instance.vpcId} (found ${o.quarantineGroups.length}); pulumi up creates it; nothing changed`);
  }
  return o.quarantineGroups[0];
}

const registration = (r: { targetGroupArn: string; port: number }) => `${r.targetGroupArn}:${r.port}`;

export function isolatePlan(o: Observed, since: string): Call[] {
  checkStack(o, "isolate");
  const q = quarantineGroup(o, "isolate");
  const id = o.instance.id;
  const already = o.instance.groups.length === 1 && o.instance.groups[0] === q;
  const calls: Call[] = [];
  if (!already) {
    // Recorded before anything changes: an interrupted isolate can still be released.
    calls.push({ service: "ec2", action: "CreateTags", input: { Resources: [id], Tags: [
      { Key: TAG.previousGroups, Value: o.instance.groups.join(" ") },
      { Key: TAG.targetGroups, Value: o.registrations.map(registration).join(" ") || "none" },
      { Key: TAG.since, Value: since },
    ] } });
  }
  for (const r of o.registrations) {
    calls.push({ service: "elbv2", action: "DeregisterTargets", input: { TargetGroupArn: r.targetGroupArn, Targets: [{ Id: id, Port: r.port }] } });
  }
  if (!already) calls.push({ service: "ec2", action: "ModifyInstanceAttribute", input: { InstanceId: id, Groups: [q] } });
  return calls;
}

export function releasePlan(o: Observed): Call[] {
  checkStack(o, "release");
  const id = o.instance.id;
  const previous = o.instance.tags[TAG.previousGroups];
  if (previous === undefined) throw new IncidentRefused(`release: ${id} has no ${TAG.previousGroups} tag: it was not isolated by npm run incident; nothing changed`);
  const groups = previous.split(" ").filter(Boolean);
  if (!groups.length || !groups.every((g) => GROUP_RE.test(g))) throw new IncidentRefused(`release: ${id}'s ${TAG.previousGroups} tag is not a list of security group ids (${JSON.stringify(previous)}); nothing changed`);
  const recorded = o.instance.tags[TAG.targetGroups] ?? "none";
  const targets = recorded === "none" ? [] : recorded.split(" ").map((r) => {
    const m = REGISTRATION_RE.exec(r);
    if (!m) throw new IncidentRefused(`release: ${id}'s ${TAG.targetGroups} tag names ${JSON.stringify(r)}, not a target group ARN and port; nothing changed`);
    return { targetGroupArn: m[1], port: Number(m[2]) };
  });
  return [
    { service: "ec2", action: "ModifyInstanceAttribute", input: { InstanceId: id, Groups: groups } },
    ...targets.map((t): Call => ({ service: "elbv2", action: "RegisterTargets", input: { TargetGroupArn: t.targetGroupArn, Targets: [{ Id: id, Port: t.port }] } })),
    { service: "ec2", action: "DeleteTags", input: { Resources: [id], Tags: Object.values(TAG).map((Key) => ({ Key })) } },
  ];
}

export function snapshotPlan(o: Observed, reason: string, takenAt: string): Call[] {
  checkStack(o, "snapshot");
  if (!REASON_RE.test(reason)) throw new IncidentRefused("snapshot: --reason must be 1-200 letters, digits, spaces or + - = . _ : / @ (not starting with a space or -); nothing taken");
  if (!o.instance.volumes.length) throw new IncidentRefused(`snapshot: ${o.instance.id} has no volumes attached; nothing taken`);
  const role = o.instance.tags.role ?? "host";
  return o.instance.volumes.map((v): Call => ({
    service: "ec2", action: "CreateSnapshot", input: {
      VolumeId: v.volumeId,
      Description: `${o.project} ${o.stack} ${role} ${o.instance.id} ${v.device}: ${reason}`,
      TagSpecifications: [{ ResourceType: "snapshot", Tags: [
        { Key: "Name", Value: `${o.project}-${o.stack}-${role} ${v.device}` },
        { Key: "reason", Value: reason }, { Key: "taken-at", Value: takenAt },
        { Key: "instance", Value: o.instance.id }, { Key: "device", Value: v.device },
        { Key: "project", Value: o.project }, { Key: "stack", Value: o.stack },
        { Key: "taken-by", Value: "npm run incident snapshot" },
      ] }],
    },
  }));
}

/** One line per call, as the CLI prints the plan. */
export function describeCall(c: Call): string {
  switch (c.action) {
    case "CreateTags": return `ec2 create-tags ${c.input.Resources.join(" ")}: ${c.input.Tags.map((t) => `${t.Key}=${t.Value}`).join(", ")}`;
    case "DeleteTags": return `ec2 delete-tags ${c.input.Resources.join(" ")}: ${c.input.Tags.map((t) => t.Key).join(", ")}`;
    case "ModifyInstanceAttribute": return `ec2 modify-instance-attribute ${c.input.InstanceId} --groups ${c.input.Groups.join(" ")}`;
    case "CreateSnapshot": return `ec2 create-snapshot ${c.input.VolumeId} (${c.input.Description})`;
    default: return `elbv2 ${c.action === "DeregisterTargets" ? "deregister-targets" : "register-targets"} ${c.input.TargetGroupArn} ${c.input.Targets.map((t) => `${t.Id}:${t.Port}`).join(" ")}`;
  }
}
