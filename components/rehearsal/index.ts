// RestoreRehearsal (staging, rehearsal.enabled): the manual's weekly restore test, made part of
// every `pulumi up`. It finds prod's backups through a StackReference to the prod stack
// (rehearsal.prodStack: its backupBucket and backupKmsKeyArn outputs) or, across accounts, from
// rehearsal.source; reads the latest pointer `nourishctl backup` writes last with a data source,
// so the preview names the backup (key and checksum) it will restore and shows a change only when
// prod has a newer one; and, after the staging release, sends the stack's SSM document twice: the
// database host restores that backup into staging's live database (`restore-rehearsal`), then the
// first app host migrates it to staging's release, checks it and publishes the rehearsal's metrics
// (`restore-rehearsal-verify`), whose summary is the stack output `restoreRehearsal`.
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { STEP_COMMAND } from "../release";
import { LATEST_POINTER_KEY, LatestBackup, parseLatestPointer, rehearsalReadPolicy, RehearsalSummary, rehearsalSteps, rehearsalSummaryFrom } from "./plan";

export interface RestoreRehearsalArgs {
  config: StackConfig;
}

export interface RehearsalTargets {
  db: aws.ec2.Instance;
  app: aws.ec2.Instance;
  /** The stack's SSM document (Release). */
  documentName: pulumi.Input<string>;
  /** Everything the rehearsal runs after: the staging release's steps. */
  after: pulumi.Resource[];
}

export class RestoreRehearsal extends pulumi.ComponentResource {
  /** Prod's archive bucket and backup key. */
  readonly sourceBucket: pulumi.Output<string>;
  readonly sourceKmsKeyArn: pulumi.Output<string>;
  /** What the latest pointer in prod's bucket names: the backup this `pulumi up` rehearses. */
  readonly latest: pulumi.Output<LatestBackup>;
  /** The app host's summary (after `run`). */
  summary?: pulumi.Output<RehearsalSummary>;
  private readonly config: StackConfig;
  /** The database host's read grant: the restore step waits for it. */
  private grant?: aws.iam.RolePolicy;

  constructor(name: string, args: RestoreRehearsalArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:rehearsal:RestoreRehearsal", name, {}, opts);
    const { config } = args;
    this.config = config;
    const source = config.rehearsal.source;
    if (source) {
      this.sourceBucket = pulumi.output(source.bucket);
      this.sourceKmsKeyArn = pulumi.output(source.kmsKeyArn);
    } else {
      const prod = new pulumi.StackReference(`${name}-prod`, { name: config.rehearsal.prodStack }, { parent: this });
      const required = (output: string) => prod.requireOutput(output).apply((v: unknown) => {
        if (typeof v !== "string" || v === "") throw new Error(`nourish-link:rehearsal.prodStack: stack ${config.rehearsal.prodStack} has no ${output} output (is backups.enabled on there?)`);
        return v;
      });
      this.sourceBucket = required("backupBucket");
      this.sourceKmsKeyArn = required("backupKmsKeyArn");
    }
    const pointer = aws.s3.getObjectOutput({ bucket: this.sourceBucket, key: LATEST_POINTER_KEY }, { parent: this });
    this.latest = pulumi.all([pointer.body, this.sourceBucket]).apply(([body, bucket]) => parseLatestPointer(body, `s3://${bucket}/${LATEST_POINTER_KEY}`));
    this.registerOutputs({ sourceBucket: this.sourceBucket, latest: this.latest });
  }

  /** Lets the database host read prod's dumps/ and decrypt them through S3: nothing else. */
  grantRead(name: string, role: aws.iam.Role): aws.iam.RolePolicy {
    this.grant = new aws.iam.RolePolicy(name, {
      role: role.id,
      policy: pulumi.jsonStringify(pulumi.all([this.sourceBucket, this.sourceKmsKeyArn])
        .apply(([bucket, key]) => rehearsalReadPolicy(`arn:aws:s3:::${bucket}`, key, this.config.region))),
    }, { parent: this });
    return this.grant;
  }

  /** The two steps, after the release: restore on the database host, verify on the first app host. */
  run(targets: RehearsalTargets): pulumi.Output<RehearsalSummary> {
    const config = this.config;
    const steps = this.latest.apply(rehearsalSteps);
    let previous: command.local.Command | undefined;
    for (const [i, host] of (["db", "app-0"] as const).entries()) {
      const step = steps.apply((s) => s[i]);
      const instance = host === "db" ? targets.db : targets.app;
      const stepName = `rehearsal-${i === 0 ? "restore" : "verify"}-${host}`;
      const cmd: command.local.Command = new command.local.Command(stepName, {
        create: STEP_COMMAND,
        environment: {
          NL_STEP: stepName,
          NL_INSTANCE_ID: instance.id,
          NL_DOCUMENT: targets.documentName,
          NL_PARAMETERS: step.apply((s) => JSON.stringify(s.params)),
          NL_REGION: config.region,
          NL_TIMEOUT_SECONDS: String(config.release.stepTimeoutSeconds),
        },
        triggers: step.apply((s) => s.triggers),
        // Row counts and the summary are what the state keeps; Django's output stays out of it.
        logging: "stderr",
        addPreviousOutputInEnv: false,
      }, { parent: this, dependsOn: [...targets.after, ...(this.grant ? [this.grant] : []), ...(previous ? [previous] : [])] });
      previous = cmd;
    }
    this.summary = previous!.stdout.apply(rehearsalSummaryFrom);
    return this.summary;
  }
}
