// Pure builders for the VPC flow logs' role: who may assume it. No Pulumi imports.
import { checkAccountId } from "../keys/policy";

/**
 * The flow-logs service may assume the role only for flow logs of this account (the confused
 * deputy protection AWS documents for vpc-flow-logs.amazonaws.com).
 */
export function flowLogTrustPolicy(region: string, accountId: string) {
  return {
    Version: "2012-10-17",
    Statement: [{
      Effect: "Allow",
      Principal: { Service: "vpc-flow-logs.amazonaws.com" },
      Action: "sts:AssumeRole",
      Condition: {
        StringEquals: { "aws:SourceAccount": checkAccountId(accountId) },
        ArnLike: { "aws:SourceArn": `arn:aws:ec2:${region}:${accountId}:vpc-flow-log/*` },
      },
    }],
  };
}
