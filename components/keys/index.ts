// VolumeKey: the customer-managed key every EBS volume of the stack (hosts' root volumes, the
// database's data volume) is encrypted with, instead of the account's aws/ebs key: its policy is
// written down (keys/policy.ts), it rotates, and on prod it is protected and retained, since the
// data volume cannot be read without it.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { keyPolicy } from "./policy";

export class VolumeKey extends pulumi.ComponentResource {
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: { config: StackConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:keys:VolumeKey", name, {}, opts);
    const prod = args.config.environment === "prod";
    const account = aws.getCallerIdentityOutput({}, { parent: this }).accountId;
    const key = new aws.kms.Key(name, {
      description: `nourish-link ${args.config.stack}: EBS volumes`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.jsonStringify(account.apply((a) => keyPolicy(a))),
    }, { parent: this, protect: prod, retainOnDelete: prod });
    new aws.kms.Alias(`${name}-alias`, { name: `alias/nourish-link-${args.config.stack}-volumes`, targetKeyId: key.keyId }, { parent: this });
    this.arn = key.arn;
    this.registerOutputs({ arn: this.arn });
  }
}
