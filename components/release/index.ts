// Release: `pulumi up` converges the hosts to release.version. Each step of the plan (steps.ts)
// becomes a `local.Command` that sends this stack's SSM document (document.ts) to one instance
// with that step's parameters and waits for it (scripts/release/ssm-step.ts): no SSH, no inbound
// port, no key. Steps are chained with dependsOn and re-run only when the version, the artifact,
// the host tooling or the instance changes, so a `pulumi up` after a failure re-runs only what
// did not finish. Rolling back is setting release.version back and running `pulumi up` again.
// Nothing runs on delete. The operator policy lets people run the same document, nothing more.
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT, StackConfig } from "../config";
import { HostTooling } from "../hosts/tooling";
import { DocumentParams, renderDocument } from "./document";
import { operatorPolicy } from "./operator";
import { backupKeyFrom, releasePlan, ReleaseHost, ReleaseVerified, verifiedFrom } from "./steps";

/**
 * What each step runs where `pulumi up` runs (cwd: the project): the step client, TypeScript
 * loaded by esbuild-register (a runtime dependency for that reason). Its inputs come through the
 * environment (STEP_ENV), never through this text, so it is the same on every machine.
 */
export const STEP_COMMAND = "node -r esbuild-register scripts/release/ssm-step.ts";

export interface ReleaseTarget {
  instance: aws.ec2.Instance;
  /** What must exist before the release may touch the host (e.g. its data volume's attachment). */
  dependsOn?: pulumi.Resource[];
}

export interface ReleaseArgs {
  config: StackConfig;
  /** The database host; absent with a managed database (the first app host takes the backup). */
  db?: ReleaseTarget;
  /** In order: the first app host migrates and switches first. */
  app: ReleaseTarget[];
  /** The app hosts' role: it gets read access to an S3 artifact. */
  appRole: aws.iam.Role;
  tooling: HostTooling;
  /** The releases bucket (prod's own, or prod's read by staging): the app hosts decrypt with its key, operators publish to it. */
  releases?: { bucketArn: pulumi.Input<string>; kmsKeyArn: pulumi.Input<string> };
  /** The host tooling whose hash the release installs; default the repository's scripts/host (tests: a copy). */
  toolingDir?: string;
}

export class Release extends pulumi.ComponentResource {
  readonly version: string;
  /** Step names in the order they run. */
  readonly steps: string[];
  /** The key of the backup taken before this release: what to restore if it must be undone. */
  readonly preReleaseBackup: pulumi.Output<string>;
  /** Whether every app host verified this version through nginx, and when (staging exports it; promotion reads it). */
  readonly verified: pulumi.Output<ReleaseVerified>;
  /** The command resources by step name. */
  readonly resources: Record<string, command.local.Command>;
  readonly documentName: pulumi.Output<string>;
  /** The operator policy: run this stack's document on this stack's hosts, read the results. */
  readonly operatorPolicyArn: pulumi.Output<string>;

  constructor(name: string, args: ReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:release:Release", name, {}, opts);
    const { config } = args;
    const release = config.release;
    const hosts: (ReleaseHost & ReleaseTarget)[] = [
      ...(args.db ? [{ name: "db", role: "db" as const, ...args.db }] : []),
      ...args.app.map((t, i) => ({ name: `app-${i}`, role: "app" as const, ...t })),
    ];
    const plan = releasePlan({ prefix: name, version: release.version, artifact: release.artifact, hosts, toolingDir: args.toolingDir });

    const document = new aws.ssm.Document(`${name}-nourishctl`, {
      name: `${PROJECT}-${config.stack}-nourishctl`,
      documentType: "Command",
      documentFormat: "JSON",
      targetType: "/AWS::EC2::Instance",
      content: args.tooling.bucketName.apply((bucket) => JSON.stringify(renderDocument({
        toolingBucket: bucket, region: config.region, timeoutSeconds: release.stepTimeoutSeconds,
      }), null, 2)),
    }, { parent: this });

    const caller = aws.getCallerIdentityOutput({}, { parent: this });
    const operator = new aws.iam.Policy(`${name}-operator`, {
      description: `nourish-link ${config.stack}: run nourishctl procedures through SSM on this stack's hosts`,
      policy: pulumi.all([document.arn, caller.accountId, args.tooling.bucketArn, args.tooling.kmsKeyArn, args.releases?.bucketArn, args.releases?.kmsKeyArn]).apply(([documentArn, accountId, toolingBucketArn, toolingKeyArn, releasesBucketArn, releasesKeyArn]) => JSON.stringify(operatorPolicy({
        documentArn, accountId, toolingBucketArn, toolingKeyArn, region: config.region, project: PROJECT, stack: config.stack,
        releases: releasesBucketArn && releasesKeyArn ? { bucketArn: releasesBucketArn, kmsKeyArn: releasesKeyArn } : undefined,
      }))),
    }, { parent: this });

    // Fetching from S3 needs read access to the release tarballs (their folder, so a new release
    // does not wait for IAM to catch up with a changed policy).
    const artifact = release.artifact;
    const grant = artifact.type === "s3"
      ? new aws.iam.RolePolicy(`${name}-artifact-read`, {
        role: args.appRole.id,
        policy: pulumi.jsonStringify(pulumi.output(args.releases?.kmsKeyArn).apply((kmsKeyArn) => ({
          Version: "2012-10-17",
          Statement: [{
            Sid: "ReadReleaseArtifacts",
            Effect: "Allow",
            Action: "s3:GetObject",
            Resource: `arn:aws:s3:::${artifact.bucket}/${artifact.key.includes("/") ? `${artifact.key.slice(0, artifact.key.lastIndexOf("/"))}/*` : artifact.key}`,
          }, ...(kmsKeyArn ? [{ Sid: "DecryptReleaseArtifacts", Effect: "Allow", Action: "kms:Decrypt", Resource: kmsKeyArn }] : [])],
        }))),
      }, { parent: this })
      : undefined;

    const byName: Record<string, command.local.Command> = {};
    let backupKey: pulumi.Output<string> | undefined;
    for (const step of plan) {
      const host = hosts.find((h) => h.name === step.host.name)!;
      // A replaced host is a new machine: every step of it runs again.
      const triggers = [...step.triggers, host.instance.id];
      const dependsOn = [
        ...step.dependsOn.map((d) => byName[d]),
        ...(host.dependsOn ?? []),
        ...(step.kind === "tooling-install" ? args.tooling.objects : []),
        ...(step.kind === "fetch" && grant ? [grant] : []),
      ];
      const params: pulumi.Output<DocumentParams> = step.kind === "switch"
        ? backupKey!.apply((key) => step.params(key))
        : pulumi.output(step.params(""));
      const cmd = new command.local.Command(step.name, {
        create: STEP_COMMAND,
        environment: {
          NL_STEP: step.name,
          NL_INSTANCE_ID: host.instance.id,
          NL_DOCUMENT: document.name,
          NL_PARAMETERS: params.apply((p) => JSON.stringify(p)),
          NL_REGION: config.region,
          NL_TIMEOUT_SECONDS: String(release.stepTimeoutSeconds),
        },
        triggers,
        // pip, git and Django print what they like: show errors while it runs, keep the rest out of the state.
        logging: step.chatty ? "stderr" : "stdoutAndStderr",
        // The previous run's output would go to the step client as environment variables: not wanted.
        addPreviousOutputInEnv: false,
      }, { parent: this, dependsOn, additionalSecretOutputs: step.chatty ? ["stdout", "stderr"] : [] });
      byName[step.name] = cmd;
      if (step.kind === "backup") backupKey = cmd.stdout.apply(backupKeyFrom);
    }

    this.version = release.version;
    this.steps = plan.map((s) => s.name);
    this.preReleaseBackup = backupKey!;
    const verifies = plan.filter((s) => s.kind === "verify").map((s) => byName[s.name].stdout);
    this.verified = pulumi.all(verifies).apply((outs) => verifiedFrom(release.version, outs));
    this.resources = byName;
    this.documentName = document.name;
    this.operatorPolicyArn = operator.arn;
    this.registerOutputs({ version: this.version, steps: this.steps, preReleaseBackup: this.preReleaseBackup, verified: this.verified, documentName: this.documentName, operatorPolicyArn: this.operatorPolicyArn });
  }
}
