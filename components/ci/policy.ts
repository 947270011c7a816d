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
// administrator in effect, and said so in the README.

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
