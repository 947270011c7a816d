// Pure builder of the alert topic's KMS key policy. No Pulumi imports: account id in, JSON out.
//
// Why a customer-managed key and not SNS's AWS-managed `alias/aws/sns`: CloudWatch alarms
// publishing to a topic encrypted with the AWS-managed key fail ("CloudWatch Alarms does not have
// authorization to access the SNS topic encryption key"), because that key's policy does not let
// cloudwatch.amazonaws.com call kms:GenerateDataKey / kms:Decrypt and cannot be edited.

import { keyPolicy, KeyPolicy } from "../keys/policy";

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Record<string, unknown>[];
}

/** Services that publish to the alert topic and so must be able to use its key (Budgets: monitoring.monthlyBudgetUsd). */
export const ALERT_PUBLISHERS = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"] as const;

export function alertKeyPolicy(accountId: string): KeyPolicy {
  // Encrypting a message for the topic: only what publishing needs, and only on behalf of this
  // account's alarms (aws:SourceAccount: no other account's alarm can use the key through the
  // service, the confused-deputy guard).
  return keyPolicy(accountId, [{
    Sid: "AlarmsAndBudgetsPublishToEncryptedTopic",
    Effect: "Allow",
    Principal: { Service: [...ALERT_PUBLISHERS] },
    Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
    Resource: "*",
    Condition: { StringEquals: { "aws:SourceAccount": accountId } },
  }]);
}

/**
 * The alert topic's policy (it replaces SNS's default one): the account manages and publishes as
 * its IAM policies allow, CloudWatch alarms of this account publish, and nothing is published
 * without TLS.
 */
export function alertTopicPolicy(topicArn: string, accountId: string, region: string): PolicyDocument {
  if (!/^\d{12}$/.test(accountId)) throw new Error(`alert topic policy: not an AWS account id: ${JSON.stringify(accountId)}`);
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "AccountManagesTopic",
        Effect: "Allow",
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:AddPermission", "sns:RemovePermission", "sns:DeleteTopic", "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:Publish"],
        Resource: topicArn,
      },
      {
        Sid: "AlarmsPublish",
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: "sns:Publish",
        Resource: topicArn,
        Condition: { StringEquals: { "aws:SourceAccount": accountId }, ArnLike: { "aws:SourceArn": `arn:aws:cloudwatch:${region}:${accountId}:alarm:*` } },
      },
      {
        Sid: "BudgetsPublish",
        Effect: "Allow",
        Principal: { Service: "budgets.amazonaws.com" },
        Action: "sns:Publish",
        Resource: topicArn,
        Condition: { StringEquals: { "aws:SourceAccount": accountId }, ArnLike: { "aws:SourceArn": `arn:aws:budgets::${accountId}:*` } },
      },
      {
        Sid: "DenyInsecureTransport",
        Effect: "Deny",
        Principal: "*",
        Action: "sns:Publish",
        Resource: topicArn,
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
    ],
  };
}

/**
 * The log groups' key: CloudWatch Logs encrypts and decrypts with it, only for this stack's log
 * groups (the encryption context names the log group ARN): the hosts' groups and, with RDS
 * (`rdsIdentifier`), the groups its log exports write to.
 */
export function logsKeyPolicy(accountId: string, region: string, stack: string, rdsIdentifier?: string): KeyPolicy {
  const group = (name: string) => `arn:aws:logs:${region}:${accountId}:log-group:${name}`;
  const groups = [group(`/nourish-link/${stack}/*`), ...(rdsIdentifier ? [group(`/aws/rds/instance/${rdsIdentifier}/*`)] : [])];
  return keyPolicy(accountId, [{
    Sid: "LogsEncryptThisStacksGroups",
    Effect: "Allow",
    Principal: { Service: `logs.${region}.amazonaws.com` },
    Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
    Resource: "*",
    Condition: { ArnLike: { "kms:EncryptionContext:aws:logs:arn": groups.length === 1 ? groups[0] : groups } },
  }]);
}
