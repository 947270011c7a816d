// Who may run a procedure on the hosts without being able to change the estate: the operator
// policy. Pure: names and ARNs in, the policy document out (tests compare it statement by
// statement). SendCommand is allowed for this stack's document only, and only on instances that
// carry this stack's tags; reading invocations has no resource-level permission in IAM (hence "*").
// With the releases bucket, operators also publish releases to it (new keys under releases/ only).
import { ReleaseBucketArns, releasePublishStatements } from "../releases/policy";

export interface OperatorPolicyArgs {
  /** arn:aws:ssm:REGION:ACCOUNT:document/NAME of this stack's nourishctl document. */
  documentArn: string;
  region: string;
  accountId: string;
  project: string;
  stack: string;
  /** The tooling bucket's ARN and its KMS key: operators may read what the hosts install. */
  toolingBucketArn: string;
  toolingKeyArn: string;
  /** The releases bucket and its key: operators (and the CI role, which attaches this policy) publish releases. */
  releases?: ReleaseBucketArns;
}

/** Sending a document only to instances with this stack's tags, and reading what it did: the half
 *  of every operator policy (release, on-call) that does not depend on the document. */
export function stackHostsStatements(a: { region: string; accountId: string; project: string; stack: string }): Record<string, unknown>[] {
  return [
    {
      Sid: "SendToThisStacksHosts",
      Effect: "Allow",
      Action: "ssm:SendCommand",
      Resource: `arn:aws:ec2:${a.region}:${a.accountId}:instance/*`,
      Condition: { StringEquals: { "ssm:resourceTag/project": a.project, "ssm:resourceTag/stack": a.stack } },
    },
    { Sid: "ReadInvocations", Effect: "Allow", Action: ["ssm:GetCommandInvocation", "ssm:ListCommandInvocations"], Resource: "*" },
  ];
}

export function operatorPolicy(a: OperatorPolicyArgs): { Version: string; Statement: Record<string, unknown>[] } {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "SendThisStacksDocument", Effect: "Allow", Action: "ssm:SendCommand", Resource: a.documentArn },
      ...stackHostsStatements(a),
      { Sid: "ReadTooling", Effect: "Allow", Action: "s3:GetObject", Resource: `${a.toolingBucketArn}/tooling/*` },
      { Sid: "DecryptTooling", Effect: "Allow", Action: "kms:Decrypt", Resource: a.toolingKeyArn },
      ...(a.releases ? releasePublishStatements(a.releases).map((st) => ({ ...st })) : []),
    ],
  };
}
