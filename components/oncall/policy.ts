// Who may do what in an incident. Pure: names and ARNs in, policy documents out.
//
// The hosts get no EC2 or ELB write right at all (issue 20): a compromised host must not be able
// to quarantine another, empty the load balancer, change another instance's attributes or forge
// the quarantine:* tags an undo is built from. Isolation and snapshots are done from outside the
// host with the on-call operator's credentials (`npm run incident`, scripts/incident.ts), which
// also works when the host is quarantined and cannot reach the EC2 API. Its rights, nothing wider:
// - Describe* and DescribeTarget* have no resource-level permissions in IAM (hence "*");
// - ModifyInstanceAttribute only on this stack's instances and this stack's security groups (by
//   tag). IAM cannot narrow it to the security-group attribute: the operator may change other
//   attributes of this stack's instances too (the access matrix shows it);
// - CreateTags and DeleteTags only the quarantine:* record, only on this stack's instances;
// - DeregisterTargets and RegisterTargets only on this stack's target groups (by tag);
// - CreateSnapshot of any volume (the root volumes do not carry the provider's default tags), only
//   into snapshots tagged with this stack, and tags on a snapshot only when it is taken.
// Never DeleteSnapshot, StopInstances, TerminateInstances or a rule change on a group.
import { stackHostsStatements } from "../release/operator";

type Statement = Record<string, unknown>;

export interface IncidentStatementsArgs {
  region: string;
  accountId: string;
  project: string;
  stack: string;
}

/** What `npm run incident` (isolate, snapshot, release) needs, scoped to this stack. */
export function incidentStatements(a: IncidentStatementsArgs): Statement[] {
  const ec2 = (type: string) => `arn:aws:ec2:${a.region}:${a.accountId}:${type}/*`;
  const thisStack = { "aws:ResourceTag/project": a.project, "aws:ResourceTag/stack": a.stack };
  return [
    {
      Sid: "SeeTheHosts",
      Effect: "Allow",
      Action: ["ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"],
      Resource: "*",
    },
    {
      Sid: "MoveThisStacksInstancesBetweenItsGroups",
      Effect: "Allow",
      Action: "ec2:ModifyInstanceAttribute",
      Resource: [ec2("instance"), ec2("security-group")],
      Condition: { StringEquals: thisStack },
    },
    {
      Sid: "RecordTheIsolation",
      Effect: "Allow",
      Action: ["ec2:CreateTags", "ec2:DeleteTags"],
      Resource: ec2("instance"),
      Condition: { StringEquals: thisStack, "ForAllValues:StringLike": { "aws:TagKeys": ["quarantine:*"] } },
    },
    {
      Sid: "ThisStacksTargetGroups",
      Effect: "Allow",
      Action: ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"],
      Resource: `arn:aws:elasticloadbalancing:${a.region}:${a.accountId}:targetgroup/*/*`,
      Condition: { StringEquals: thisStack },
    },
    { Sid: "SnapshotVolumes", Effect: "Allow", Action: "ec2:CreateSnapshot", Resource: ec2("volume") },
    {
      Sid: "SnapshotsTaggedWithThisStack",
      Effect: "Allow",
      Action: "ec2:CreateSnapshot",
      Resource: `arn:aws:ec2:${a.region}::snapshot/*`,
      Condition: { StringEquals: { "aws:RequestTag/project": a.project, "aws:RequestTag/stack": a.stack } },
    },
    {
      Sid: "TagSnapshotsWhenTaken",
      Effect: "Allow",
      Action: "ec2:CreateTags",
      Resource: `arn:aws:ec2:${a.region}::snapshot/*`,
      Condition: { StringEquals: { "ec2:CreateAction": "CreateSnapshot" } },
    },
  ];
}

export interface OncallOperatorPolicyArgs {
  /** arn:aws:ssm:REGION:ACCOUNT:document/NAME of each on-call document. */
  documentArns: string[];
  region: string;
  accountId: string;
  project: string;
  stack: string;
}

/** Run the on-call documents on this stack's hosts (by tag), read the results, and isolate and
 *  snapshot this stack's instances from outside (incidentStatements); nothing else. */
export function oncallOperatorPolicy(a: OncallOperatorPolicyArgs): { Version: string; Statement: Statement[] } {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "SendTheOncallDocuments", Effect: "Allow", Action: "ssm:SendCommand", Resource: a.documentArns },
      ...stackHostsStatements(a),
      ...incidentStatements(a),
    ],
  };
}
