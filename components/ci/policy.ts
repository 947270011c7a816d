// The CI role's policies (GitHub Actions through OIDC). Pure: names and ARNs in, documents out.
//
// Trust: only GitHub's token for this repository AND this GitHub environment, for AWS STS. A job
// that names `environment: prod` gets the subject `repo:OWNER/NAME:environment:prod`; a pull
// request, another branch's job without that environment, or a fork gets another subject and is
// refused. Which branches may use an environment, and who approves prod, are the GitHub
// environment's own settings (deployment branches, required reviewers): IAM cannot see the ref of
// a job that runs in an environment, because GitHub puts the environment in the subject instead.
//
// Permissions (what CI itself needs besides what changes the estate): the release transport (the
// stack's operator policy: its document on its hosts, the invocations, the tooling) and the
// Pulumi state of this project in a self-managed S3 backend. Changing the estate (`pulumi up`
// creates IAM roles, KMS keys, instances) is whatever ci.github.deployPolicyArns attach: that is
// administrator in effect, and said so in docs/STAGING-AND-PROMOTION.md.

export const GITHUB_OIDC_HOST = "token.actions.githubusercontent.com";
export const GITHUB_OIDC_URL = `https://${GITHUB_OIDC_HOST}`;
/** The audience configure-aws-credentials asks GitHub for. */
export const STS_AUDIENCE = "sts.amazonaws.com";

export type PolicyDocument = { Version: string; Statement: Record<string, unknown>[] };

/** The subject GitHub gives a job of `repository` running in `environment`. */
export function githubSubject(repository: string, environment: string): string {
  return `repo:${repository}:environment:${environment}`;
}

export function ciTrustPolicy(a: { providerArn: string; repository: string; environment: string }): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{
      Sid: "GitHubActionsOfThisRepositoryAndEnvironment",
      Effect: "Allow",
      Principal: { Federated: a.providerArn },
      Action: "sts:AssumeRoleWithWebIdentity",
      // StringEquals, never StringLike: no wildcard can widen who is trusted.
      Condition: { StringEquals: { [`${GITHUB_OIDC_HOST}:aud`]: STS_AUDIENCE, [`${GITHUB_OIDC_HOST}:sub`]: githubSubject(a.repository, a.environment) } },
    }],
  };
}

/**
 * The project's stack state in a self-managed S3 backend (`pulumi login s3://BUCKET`, the
 * project-scoped layout under .pulumi/): read and write this stack's checkpoint, history, backups
 * and lock; read the other stacks' checkpoints listed in `readStacks` (prod reads staging's
 * outputs to promote); list the backend.
 */
export function ciStatePolicy(a: { bucket: string; project: string; stack: string; readStacks: string[] }): PolicyDocument {
  const b = `arn:aws:s3:::${a.bucket}`;
  const own = [
    `${b}/.pulumi/stacks/${a.project}/${a.stack}.json*`,
    `${b}/.pulumi/history/${a.project}/${a.stack}/*`,
    `${b}/.pulumi/backups/${a.project}/${a.stack}/*`,
    `${b}/.pulumi/locks/${a.project}/${a.stack}/*`,
  ];
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "ListTheBackend", Effect: "Allow", Action: "s3:ListBucket", Resource: b, Condition: { StringLike: { "s3:prefix": [".pulumi/*"] } } },
      { Sid: "ReadTheBackendMeta", Effect: "Allow", Action: "s3:GetObject", Resource: `${b}/.pulumi/meta.yaml` },
      { Sid: "ThisStacksState", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource: own },
      ...(a.readStacks.length ? [{ Sid: "ReadOtherStacksOutputs", Effect: "Allow", Action: "s3:GetObject", Resource: a.readStacks.map((s) => `${b}/.pulumi/stacks/${a.project}/${s}.json*`) }] : []),
    ],
  };
}

/**
 * The preview role's trust: GitHub's token for a pull_request job of this repository (subject
 * `repo:OWNER/NAME:pull_request`). A fork's pull request gets no OIDC token from GitHub, and the
 * workflow runs the engine's preview only for pull requests from this repository.
 */
export function previewTrustPolicy(a: { providerArn: string; repository: string }): PolicyDocument {
  const doc = ciTrustPolicy({ providerArn: a.providerArn, repository: a.repository, environment: "-" });
  const st = doc.Statement[0] as { Sid: string; Condition: { StringEquals: Record<string, string> } };
  st.Sid = "PullRequestsOfThisRepository";
  st.Condition.StringEquals[`${GITHUB_OIDC_HOST}:sub`] = `repo:${a.repository}:pull_request`;
  return doc;
}

/**
 * The publisher role's trust: GitHub's token for a job of the app repository on its main branch
 * (subject `repo:OWNER/NAME:ref:refs/heads/main`, a job without a GitHub environment: the reusable
 * workflow release-artifact.yml declares none). Another branch, a tag, a pull request or a fork
 * gets another subject.
 */
export function publisherTrustPolicy(a: { providerArn: string; repository: string }): PolicyDocument {
  const doc = ciTrustPolicy({ providerArn: a.providerArn, repository: a.repository, environment: "-" });
  const st = doc.Statement[0] as { Sid: string; Condition: { StringEquals: Record<string, string> } };
  st.Sid = "MainBranchOfTheAppRepository";
  st.Condition.StringEquals[`${GITHUB_OIDC_HOST}:sub`] = `repo:${a.repository}:ref:refs/heads/main`;
  return doc;
}

/**
 * What `pulumi preview --diff` needs and nothing that changes anything or reads data: describe,
 * get and list the configuration of the services the stack uses (never S3 objects, SSM parameter
 * values or secrets, never a write), and, with a state bucket, read this stack's checkpoint (and
 * those of the stacks it references) and decrypt with the state's KMS key. A preview takes no lock.
 */
export function previewPolicy(a: { bucket?: string; project: string; stack: string; readStacks: string[]; stateKeyArn?: string }): PolicyDocument {
  const describe = [
    "acm:DescribeCertificate", "acm:ListTagsForCertificate",
    "cloudwatch:DescribeAlarms", "cloudwatch:GetDashboard", "cloudwatch:ListTagsForResource",
    "ec2:Describe*", "ec2:GetEbsEncryptionByDefault",
    "elasticloadbalancing:Describe*",
    "iam:GetInstanceProfile", "iam:GetOpenIDConnectProvider", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetRole", "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:ListPolicyVersions", "iam:ListRolePolicies", "iam:ListRoleTags",
    "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListResourceTags",
    "logs:DescribeLogGroups", "logs:DescribeMetricFilters", "logs:ListTagsForResource",
    "rds:DescribeDBInstances", "rds:DescribeDBParameterGroups", "rds:DescribeDBParameters", "rds:DescribeDBSubnetGroups", "rds:ListTagsForResource",
    "route53:GetHealthCheck", "route53:ListTagsForResource",
    "s3:GetBucketLogging", "s3:GetBucketObjectLockConfiguration", "s3:GetBucketOwnershipControls", "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging", "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:ListAllMyBuckets",
    "sns:GetSubscriptionAttributes", "sns:GetTopicAttributes", "sns:ListTagsForResource",
    "ssm:DescribeDocument", "ssm:DescribeDocumentPermission", "ssm:DescribeParameters", "ssm:GetDocument", "ssm:ListTagsForResource",
  ];
  const b = a.bucket ? `arn:aws:s3:::${a.bucket}` : undefined;
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "DescribeTheEstate", Effect: "Allow", Action: describe, Resource: "*" },
      ...(b ? [
        { Sid: "ListTheBackend", Effect: "Allow", Action: "s3:ListBucket", Resource: b, Condition: { StringLike: { "s3:prefix": [".pulumi/*"] } } },
        { Sid: "ReadTheState", Effect: "Allow", Action: "s3:GetObject", Resource: [`${b}/.pulumi/meta.yaml`, ...[a.stack, ...a.readStacks].map((s) => `${b}/.pulumi/stacks/${a.project}/${s}.json*`)] },
      ] : []),
      ...(a.stateKeyArn ? [{ Sid: "DecryptTheState", Effect: "Allow", Action: "kms:Decrypt", Resource: a.stateKeyArn }] : []),
    ],
  };
}
