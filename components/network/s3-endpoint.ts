// What the VPC's S3 gateway endpoint lets through: every request from the VPC's subnets to S3 in
// the stack's region goes through it, so its policy is the list of buckets a host here can reach
// at all. AWS's buckets for the two agents (hosts/agents.ts) and this stack's own buckets, nothing
// else: a host cannot copy data out to a bucket of someone else's in the region. Pure; test/agent.test.ts
// evaluates it with the IAM evaluator.
import { awsAgentBuckets } from "../hosts/agents";

export function s3EndpointPolicy(region: string, ownBuckets: string[]): Record<string, unknown> {
  const own = [...new Set(ownBuckets)].sort();
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "AwsAgentPackages", Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: awsAgentBuckets(region).map((b) => `arn:aws:s3:::${b}/*`) },
      { Sid: "ThisStacksBuckets", Effect: "Allow", Principal: "*", Action: "s3:*", Resource: own.flatMap((b) => [`arn:aws:s3:::${b}`, `arn:aws:s3:::${b}/*`]) },
    ],
  };
}
