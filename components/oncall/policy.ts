// Who may do what in an incident. Pure: names and ARNs in, policy documents out.
//
// isolate and snapshot run ON the host, as root, with the host's own role (an operator sends the
// isolate/snapshot document through SSM): the host needs to move itself into the quarantine group,
// leave its load balancer and snapshot its volumes, and nothing wider:
// - Describe* and DescribeTarget* have no resource-level permissions in IAM (hence "*");
// - ModifyInstanceAttribute only on this stack's instances (by tag) and only towards the
//   quarantine group: moving a host back out is an operator's decision, with their own rights;
// - CreateTags only the quarantine:* record, only on this stack's instances;
// - DeregisterTargets only from this stack's target groups (by tag), never RegisterTargets;
// - CreateSnapshot only of snapshots tagged with this stack (volumes cannot be conditioned on the
//   stack: the root volumes do not carry the provider's default tags), and tags only at creation.
// A host never gets DeleteSnapshot, StopInstances, RegisterTargets or any other group.
import { stackHostsStatements } from "../release/operator";

export interface IncidentPolicyArgs {
  region: string;
  accountId: string;
  project: string;
  stack: string;
  /** arn:aws:ec2:REGION:ACCOUNT:security-group/sg-… of the stack's quarantine group. */
  quarantineGroupArn: string;
}

type Statement = Record<string, unknown>;

export function hostIncidentPolicy(a: IncidentPolicyArgs): { Version: string; Statement: Statement[] } {
  const ec2 = (type: string) => `arn:aws:ec2:${a.region}:${a.accountId}:${type}/*`;
  const thisStack = { "aws:ResourceTag/project": a.project, "aws:ResourceTag/stack": a.stack };
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "SeeThisHost",
        Effect: "Allow",
        Action: ["ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSecurityGroups", "ec2:DescribeTags",
          "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"],
        Resource: "*",
      },
      { Sid: "QuarantineThisStacksInstances", Effect: "Allow", Action: "ec2:ModifyInstanceAttribute", Resource: ec2("instance"), Condition: { StringEquals: thisStack } },
      { Sid: "OnlyIntoTheQuarantineGroup", Effect: "Allow", Action: "ec2:ModifyInstanceAttribute", Resource: a.quarantineGroupArn },
      {
        Sid: "RecordTheIsolation",
        Effect: "Allow",
        Action: "ec2:CreateTags",
        Resource: ec2("instance"),
        Condition: { StringEquals: thisStack, "ForAllValues:StringLike": { "aws:TagKeys": ["quarantine:*"] } },
      },
      {
        Sid: "LeaveThisStacksTargetGroups",
        Effect: "Allow",
        Action: "elasticloadbalancing:DeregisterTargets",
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
    ],
  };
}

export interface OncallOperatorPolicyArgs {
  /** arn:aws:ssm:REGION:ACCOUNT:document/NAME of each on-call document. */
  documentArns: string[];
  region: string;
  accountId: string;
  project: string;
  stack: string;
}

/** Run the on-call documents on this stack's hosts (by tag) and read the results; nothing else. */
export function oncallOperatorPolicy(a: OncallOperatorPolicyArgs): { Version: string; Statement: Statement[] } {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "SendTheOncallDocuments", Effect: "Allow", Action: "ssm:SendCommand", Resource: a.documentArns },
      ...stackHostsStatements(a),
    ],
  };
}
