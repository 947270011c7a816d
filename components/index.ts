// NourishLink: the whole estate of one stack. It owns the AWS provider (region and the tags every
// resource carries) and composes one component per concern.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AppHosts } from "./app";
import { CiRole } from "./ci";
import { BackupStore } from "./backups";
import { StackConfig } from "./config";
import { Database } from "./database";
import { HostTooling } from "./hosts/tooling";
import { VolumeKey } from "./keys";
import { Monitoring, watchedEstate } from "./monitoring";
import { Network } from "./network";
import { OnCall } from "./oncall";
import { Release } from "./release";
import { RestoreRehearsal } from "./rehearsal";
import { prodReleaseBucket, ReleaseBucket, ReleaseBucketRef } from "./releases";
import { AppSecrets } from "./secrets";

export interface NourishLinkArgs {
  config: StackConfig;
}

export class NourishLink extends pulumi.ComponentResource {
  readonly secrets: AppSecrets;
  readonly network: Network;
  readonly database: Database;
  readonly app: AppHosts;
  /** Off-host backup storage; absent when backups.enabled is false (never on prod). */
  readonly backups?: BackupStore;
  /** The alert topic, the hosts' logs, every alarm and the dashboard. */
  readonly monitoring: Monitoring;
  /** Converges the hosts to release.version through SSM Run Command; owns the SSM document and the operator policy. */
  readonly release: Release;
  /** The role GitHub Actions assumes (with ci.github.repository). */
  readonly ci?: CiRole;
  /** The emergency procedures as SSM documents, and the on-call operator's policy. */
  readonly oncall: OnCall;
  /** Staging's restore rehearsal of prod's latest backup (rehearsal.enabled). */
  readonly rehearsal?: RestoreRehearsal;
  /** The releases bucket (an s3 release.artifact): prod's own; on staging, prod's read through its outputs. */
  readonly releases?: ReleaseBucketRef;
  /** Prod's releases bucket, the resource (prod only). */
  readonly releaseBucket?: ReleaseBucket;

  constructor(name: string, args: NourishLinkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:index:NourishLink", name, {}, opts);
    const { config } = args;
    const provider = new aws.Provider(`${name}-aws`, {
      region: config.region as aws.Region,
      defaultTags: { tags: { project: "nourish-link", stack: config.stack, environment: config.environment } },
    }, { parent: this });
    const child = { parent: this, providers: { aws: provider } };
    const behindAlb = config.app.tls === "alb";

    this.secrets = new AppSecrets("secrets", { config }, child);
    this.network = new Network("network", { config, behindAlb }, child);
    const tooling = new HostTooling("tooling", { config }, child);
    const volumeKey = new VolumeKey("volumes-key", { config }, child);
    // With database.managed RDS keeps its own backups; the store still holds archived logs.
    if (config.release.artifact.type === "s3") {
      if (config.environment === "prod") this.releases = this.releaseBucket = new ReleaseBucket("releases", { config }, child);
      else this.releases = prodReleaseBucket("releases", config, this);
    }
    if (config.backups.enabled) {
      this.backups = new BackupStore("backups", { config, alsoLog: this.releaseBucket ? [{ id: "releases", bucket: this.releaseBucket.bucket }] : [] }, child);
    }
    // Prod's backups, found before the database host that reads them.
    if (config.rehearsal.enabled) this.rehearsal = new RestoreRehearsal("rehearsal", { config }, child);
    // App hosts sit in the private subnets behind an ALB, in the first public subnet otherwise.
    const appCidrs = behindAlb ? this.network.privateSubnetCidrs : this.network.publicSubnetCidrs.slice(0, 1);
    // Before the database: RDS's log groups must exist before the instance exports into them.
    this.monitoring = new Monitoring("monitoring", { config }, child);
    this.database = new Database("database", {
      config,
      secrets: this.secrets,
      subnetIds: this.network.privateSubnetIds,
      availabilityZone: this.network.availabilityZones[0],
      securityGroupId: this.network.dbSecurityGroupId,
      appCidrs,
      backups: this.backups,
      tooling,
      volumeKmsKeyArn: volumeKey.arn,
      rehearsal: this.rehearsal,
      rdsLogGroups: this.monitoring.rdsLogGroups,
    }, child);
    this.app = new AppHosts("app", { config, secrets: this.secrets, network: this.network, databaseEndpoint: this.database.endpoint, tooling, volumeKmsKeyArn: volumeKey.arn, backups: this.backups, masterUserSecretArn: this.database.masterUserSecretArn }, child);
    const estate = watchedEstate(config, this.app, this.database, this.backups);
    this.monitoring.watch("monitoring", estate);
    this.monitoring.report("monitoring", estate, {
      putObject: (n, key, content) => tooling.putObject(n, key, content),
      appRole: this.app.hostRole.role,
    });
    // The reports go to the backup bucket's reports/: the backup store's grant, like the log archive's.
    this.backups?.grantReportStore("app-report-store", this.app.hostRole.role);
    this.release = new Release("release", {
      config,
      db: this.database.instance ? { instance: this.database.instance, dependsOn: this.database.dataAttachment ? [this.database.dataAttachment] : [] } : undefined,
      app: this.app.instances.map((instance) => ({ instance })),
      appRole: this.app.hostRole.role,
      tooling,
      releases: this.releases,
    }, child);
    if (config.ci.github.repository) this.ci = new CiRole("ci", { config, operatorPolicyArn: this.release.operatorPolicyArn, releases: this.releases }, child);
    this.oncall = new OnCall("oncall", { config }, child);
    // The S3 gateway endpoint reaches AWS's agent buckets and these buckets only: the hosts'
    // tooling, the backups, pgBackRest's repository, the release artifacts, prod's backups for
    // the restore rehearsal.
    const artifact = config.release.artifact;
    this.network.restrictS3Endpoint("network-s3-policy", [
      tooling.bucketName,
      ...(this.backups ? [this.backups.bucketName, this.backups.pgbackrestBucketName] : []),
      ...(artifact.type === "s3" ? [artifact.bucket] : []),
      ...(this.rehearsal ? [this.rehearsal.sourceBucket] : []),
    ]);
    // After every step of the staging release: prod's backup on staging's database, migrated by its release.
    if (this.rehearsal && this.database.instance) {
      this.rehearsal.run({
        db: this.database.instance, app: this.app.instances[0], documentName: this.release.documentName, after: Object.values(this.release.resources),
      });
    }
    this.registerOutputs({});
  }
}
