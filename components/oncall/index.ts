// OnCall: the manual's emergency procedures one document away (issue 14). One SSM Command
// document per procedure (documents.ts), and the policy that lets a person send them to this
// stack's hosts and isolate and snapshot its instances from outside (policy.ts; the hosts get no
// EC2 or ELB write right, issue 20). Also what an operator pastes: one `aws ssm send-command` per
// procedure, targeting the hosts by tag.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT, StackConfig } from "../config";
import { ONCALL_PROCEDURES, renderOncallDocument, sendCommandExample } from "./documents";
import { oncallOperatorPolicy } from "./policy";

export interface OnCallArgs {
  config: StackConfig;
}

export class OnCall extends pulumi.ComponentResource {
  /** Procedure name → document name. */
  readonly documentNames: Record<string, pulumi.Output<string>>;
  /** Procedure name → a ready-to-paste `aws ssm send-command`. */
  readonly commands: pulumi.Output<Record<string, string>>;
  readonly operatorPolicyArn: pulumi.Output<string>;

  constructor(name: string, args: OnCallArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:oncall:OnCall", name, {}, opts);
    const { config } = args;
    const parent = { parent: this };
    const documents = ONCALL_PROCEDURES.map((p) => ({
      p,
      doc: new aws.ssm.Document(`${name}-${p.name}`, {
        name: `${PROJECT}-${config.stack}-${p.name}`,
        documentType: "Command",
        documentFormat: "JSON",
        targetType: "/AWS::EC2::Instance",
        content: JSON.stringify(renderOncallDocument(p), null, 2),
      }, parent),
    }));
    this.documentNames = Object.fromEntries(documents.map(({ p, doc }) => [p.name, doc.name]));
    this.commands = pulumi.all(documents.map(({ doc }) => doc.name)).apply((names) => Object.fromEntries(documents.map(({ p }, i) => [
      p.name, sendCommandExample(p, { documentName: names[i], region: config.region, project: PROJECT, stack: config.stack }),
    ])));

    const account = aws.getCallerIdentityOutput({}, parent).accountId;
    this.operatorPolicyArn = new aws.iam.Policy(`${name}-operator`, {
      description: `nourish-link ${config.stack}: run the on-call procedures through SSM on this stack's hosts; isolate and snapshot them`,
      policy: pulumi.all([account, ...documents.map(({ doc }) => doc.arn)]).apply(([accountId, ...documentArns]) => JSON.stringify(oncallOperatorPolicy({
        documentArns, accountId, region: config.region, project: PROJECT, stack: config.stack,
      }))),
    }, parent).arn;

    this.registerOutputs({ documentNames: this.documentNames, commands: this.commands, operatorPolicyArn: this.operatorPolicyArn });
  }
}
