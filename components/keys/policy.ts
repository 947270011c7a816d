// Pure builders of KMS key policies. No Pulumi imports: account id and ARNs in, JSON out.
// Every key of the estate carries an explicit policy built here (or in monitoring/policy.ts), so
// what may use a key is written down, not left to a default nobody reviews.

export interface KeyPolicyStatement {
  Sid: string;
  Effect: "Allow" | "Deny";
  Principal: { AWS: string | string[] } | { Service: string | string[] };
  Action: string | string[];
  Resource: "*";
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface KeyPolicy {
  Version: "2012-10-17";
  Statement: KeyPolicyStatement[];
}

export function checkAccountId(accountId: string): string {
  if (!/^\d{12}$/.test(accountId)) throw new Error(`key policy: not an AWS account id: ${JSON.stringify(accountId)}`);
  return accountId;
}

/**
 * The account's IAM policies govern the key (the statement KMS requires so that nobody is locked
 * out of it); any other statement only adds a service principal that needs the key.
 */
export function keyPolicy(accountId: string, services: KeyPolicyStatement[] = []): KeyPolicy {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "AccountAdministers", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${checkAccountId(accountId)}:root` }, Action: "kms:*", Resource: "*" },
      ...services,
    ],
  };
}

/**
 * CloudWatch Logs encrypting one log group: the service principal of the region, only for that
 * log group (the encryption context CloudWatch Logs sends names it), only for this account.
 */
export function logsServiceStatement(region: string, accountId: string, logGroupName: string): KeyPolicyStatement {
  return {
    Sid: "LogsEncryptThisLogGroup",
    Effect: "Allow",
    Principal: { Service: `logs.${region}.amazonaws.com` },
    Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
    Resource: "*",
    Condition: {
      ArnEquals: { "kms:EncryptionContext:aws:logs:arn": logGroupArn(region, accountId, logGroupName) },
      StringEquals: { "aws:SourceAccount": checkAccountId(accountId) },
    },
  };
}

export function logGroupArn(region: string, accountId: string, logGroupName: string): string {
  return `arn:aws:logs:${region}:${accountId}:log-group:${logGroupName}`;
}
