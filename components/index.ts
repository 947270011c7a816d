// NourishLink: the whole estate of one stack. It owns the AWS provider (region and the tags every
// resource carries) and composes one component per concern.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "./config";
import { AppSecrets } from "./secrets";

export interface NourishLinkArgs {
  config: StackConfig;
}

export class NourishLink extends pulumi.ComponentResource {
  readonly secrets: AppSecrets;

  constructor(name: string, args: NourishLinkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:index:NourishLink", name, {}, opts);
    const { config } = args;
    const provider = new aws.Provider(`${name}-aws`, {
      region: config.region as aws.Region,
      defaultTags: { tags: { project: "nourish-link", stack: config.stack, environment: config.environment } },
    }, { parent: this });
    const child = { parent: this, providers: { aws: provider } };

    this.secrets = new AppSecrets("secrets", { config }, child);
    this.registerOutputs({});
  }
}
