// CiRole: the role GitHub Actions assumes through OIDC to deploy this stack (ci.github.*; no
// long-lived keys). One per stack, trusting only its GitHub environment (policy.ts says why and
// what it may do). The account's GitHub OIDC provider is created here unless
// ci.github.oidcProviderArn names an existing one (an account has at most one per URL, so the
// second stack in an account names the first's).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT, StackConfig } from "../config";
import { releasePublishStatements } from "../releases/policy";
import { ciStatePolicy, ciTrustPolicy, GITHUB_OIDC_URL, previewPolicy, previewTrustPolicy, publisherTrustPolicy, STS_AUDIENCE } from "./policy";

export interface CiRoleArgs {
  config: StackConfig;
  /** The stack's release operator policy: the release transport CI drives. */
  operatorPolicyArn: pulumi.Input<string>;
  /** The releases bucket: with ci.github.appRepository, the publisher role may put new releases there. */
  releases?: { bucketArn: pulumi.Input<string>; kmsKeyArn: pulumi.Input<string> };
}

export class CiRole extends pulumi.ComponentResource {
  readonly roleArn: pulumi.Output<string>;
  readonly providerArn: pulumi.Output<string>;
  /** The read-only role pull requests of the repository preview this stack with (`pulumi preview --diff`). */
  readonly previewRoleArn: pulumi.Output<string>;
  /** With ci.github.appRepository: the role the app repository's main branch publishes releases with. */
  readonly publisherRoleArn?: pulumi.Output<string>;

  constructor(name: string, args: CiRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:ci:CiRole", name, {}, opts);
    const { config } = args;
    const gh = config.ci.github;
    if (!gh.repository) throw new Error("CiRole: ci.github.repository is not set");
    const environment = gh.environment ?? config.environment;
    const providerArn = gh.oidcProviderArn
      ? pulumi.output(gh.oidcProviderArn)
      : new aws.iam.OpenIdConnectProvider(`${name}-github`, { url: GITHUB_OIDC_URL, clientIdLists: [STS_AUDIENCE] }, { parent: this }).arn;
    const role = new aws.iam.Role(`${name}-role`, {
      name: `${PROJECT}-${config.stack}-ci`,
      description: `GitHub Actions of ${gh.repository}, environment ${environment}: deploys nourish-link ${config.stack}`,
      assumeRolePolicy: providerArn.apply((arn) => JSON.stringify(ciTrustPolicy({ providerArn: arn, repository: gh.repository!, environment }))),
      maxSessionDuration: 3600,
    }, { parent: this });
    new aws.iam.RolePolicyAttachment(`${name}-release-transport`, { role: role.name, policyArn: args.operatorPolicyArn }, { parent: this });
    if (gh.stateBucket) {
      new aws.iam.RolePolicy(`${name}-state`, {
        role: role.id,
        policy: JSON.stringify(ciStatePolicy({
          bucket: gh.stateBucket, project: PROJECT, stack: config.stack,
          // Promotion reads staging's outputs from the prod job; staging's program reads prod's
          // (the releases bucket and the rehearsal's backups, through its StackReference).
          readStacks: config.environment === "prod" ? ["staging"] : ["prod"],
        })),
      }, { parent: this });
    }
    gh.deployPolicyArns.forEach((arn, i) => new aws.iam.RolePolicyAttachment(`${name}-deploy-${i}`, { role: role.name, policyArn: arn }, { parent: this }));
    const preview = new aws.iam.Role(`${name}-preview`, {
      name: `${PROJECT}-${config.stack}-preview`,
      description: `pull requests of ${gh.repository}: pulumi preview of nourish-link ${config.stack}, read-only`,
      assumeRolePolicy: providerArn.apply((arn) => JSON.stringify(previewTrustPolicy({ providerArn: arn, repository: gh.repository! }))),
      maxSessionDuration: 3600,
    }, { parent: this });
    new aws.iam.RolePolicy(`${name}-preview`, {
      role: preview.id,
      policy: JSON.stringify(previewPolicy({
        bucket: gh.stateBucket, project: PROJECT, stack: config.stack, stateKeyArn: gh.stateKeyArn,
        // Staging's program reads prod's outputs (the rehearsal's StackReference).
        readStacks: config.environment === "staging" ? ["prod"] : [],
      })),
    }, { parent: this });
    if (gh.appRepository && args.releases) {
      const publisher = new aws.iam.Role(`${name}-publisher`, {
        name: `${PROJECT}-${config.stack}-publisher`,
        description: `GitHub Actions of ${gh.appRepository}, branch main: publish nourish-link releases (new keys under releases/ only)`,
        assumeRolePolicy: providerArn.apply((arn) => JSON.stringify(publisherTrustPolicy({ providerArn: arn, repository: gh.appRepository! }))),
        maxSessionDuration: 3600,
      }, { parent: this });
      new aws.iam.RolePolicy(`${name}-publisher`, {
        role: publisher.id,
        policy: pulumi.jsonStringify(pulumi.all([args.releases.bucketArn, args.releases.kmsKeyArn])
          .apply(([bucketArn, kmsKeyArn]) => ({ Version: "2012-10-17", Statement: releasePublishStatements({ bucketArn, kmsKeyArn }) }))),
      }, { parent: this });
      this.publisherRoleArn = publisher.arn;
    }
    this.roleArn = role.arn;
    this.providerArn = providerArn;
    this.previewRoleArn = preview.arn;
    this.registerOutputs({ roleArn: this.roleArn, providerArn: this.providerArn, previewRoleArn: this.previewRoleArn });
  }
}
