// Release: `pulumi up` converges the hosts to release.version. Each step of the plan (steps.ts)
// becomes a command resource that runs one nourishctl verb over SSH, chained with dependsOn and
// re-run only when the version, the artifact, the host tooling or the host changes. Rolling back
// is setting release.version back and running `pulumi up` again. Nothing runs on delete.
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { backupKeyFrom, releasePlan, ReleaseHost, sshRoute, Step } from "./steps";

export interface ReleaseTarget {
  instance: aws.ec2.Instance;
  /** What must exist before the release may touch the host (e.g. its data volume's attachment). */
  dependsOn?: pulumi.Resource[];
}

export interface ReleaseArgs {
  config: StackConfig;
  /** The deploy key (a secret Output): its public half is authorized on every host. */
  privateKey: pulumi.Output<string>;
  db: ReleaseTarget;
  /** In order: the first app host migrates and switches first. */
  app: ReleaseTarget[];
  /** The app hosts' role: it gets read access to an S3 artifact. */
  appRole: aws.iam.Role;
  /** The host tooling copied to the hosts; default the repository's scripts/host (tests: a copy). */
  toolingDir?: string;
}

export class Release extends pulumi.ComponentResource {
  readonly version: string;
  /** Step names in the order they run. */
  readonly steps: string[];
  /** The key of the backup taken before this release: what to restore if it must be undone. */
  readonly preReleaseBackup: pulumi.Output<string>;
  /** The command resources by step name (the tooling copies are CopyToRemote). */
  readonly resources: Record<string, command.remote.Command | command.remote.CopyToRemote>;

  constructor(name: string, args: ReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:release:Release", name, {}, opts);
    const { config } = args;
    const release = config.release;
    const hosts: (ReleaseHost & ReleaseTarget)[] = [
      { name: "db", role: "db", ...args.db },
      ...args.app.map((t, i) => ({ name: `app-${i}`, role: "app" as const, ...t })),
    ];
    const route = sshRoute(release.ssh);
    const plan = releasePlan({ prefix: name, version: release.version, artifact: release.artifact, hosts, sshUser: route.user, toolingDir: args.toolingDir });

    const connectionOf = (h: ReleaseTarget): command.types.input.remote.ConnectionArgs => ({
      host: h.instance.privateIp,
      user: route.user,
      port: route.port,
      privateKey: args.privateKey,
      ...(route.proxy ? { proxy: { ...route.proxy, privateKey: args.privateKey } } : {}),
    });

    // Fetching from S3 needs read access to the release tarballs (their folder, so a new release
    // does not wait for IAM to catch up with a changed policy).
    const artifact = release.artifact;
    const grant = artifact.type === "s3" && artifact.bucket
      ? new aws.iam.RolePolicy(`${name}-artifact-read`, {
        role: args.appRole.id,
        policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{
            Sid: "ReadReleaseArtifacts",
            Effect: "Allow",
            Action: "s3:GetObject",
            Resource: `arn:aws:s3:::${artifact.bucket}/${artifact.key.includes("/") ? `${artifact.key.slice(0, artifact.key.lastIndexOf("/"))}/*` : artifact.key}`,
          }],
        }),
      }, { parent: this })
      : undefined;

    const byName: Record<string, command.remote.Command | command.remote.CopyToRemote> = {};
    let backupKey: pulumi.Output<string> | undefined;
    for (const step of plan) {
      const host = hosts.find((h) => h.name === step.host.name)!;
      // A replaced host is a new machine: every step of it runs again.
      const triggers = [...step.triggers, host.instance.id];
      const dependsOn = [
        ...step.dependsOn.map((d) => byName[d]),
        ...(host.dependsOn ?? []),
        ...(step.kind === "fetch" && grant ? [grant] : []),
      ];
      const o = { parent: this, dependsOn };
      if (step.copy) {
        byName[step.name] = new command.remote.CopyToRemote(step.name, {
          connection: connectionOf(host),
          source: new pulumi.asset.FileArchive(step.copy.source),
          remotePath: step.copy.remotePath,
          triggers,
        }, o);
        continue;
      }
      const create = step.kind === "switch"
        ? backupKey!.apply((key) => commandOf(step, key))
        : commandOf(step, "");
      const cmd = new command.remote.Command(step.name, {
        connection: connectionOf(host),
        create,
        triggers,
        logging: step.logging,
        // The previous run's output would go to the host as environment variables: not wanted.
        addPreviousOutputInEnv: false,
      }, { ...o, additionalSecretOutputs: step.secretOutputs });
      byName[step.name] = cmd;
      if (step.kind === "backup") backupKey = cmd.stdout.apply(backupKeyFrom);
    }

    this.version = release.version;
    this.steps = plan.map((s) => s.name);
    this.preReleaseBackup = backupKey!;
    this.resources = byName;
    this.registerOutputs({ version: this.version, steps: this.steps, preReleaseBackup: this.preReleaseBackup });
  }
}

function commandOf(step: Step, backupKey: string): string {
  if (!step.command) throw new Error(`release: step ${step.name} has no command`);
  return step.command(backupKey);
}
