// Database: PostgreSQL 15 on an EC2 host whose data lives on a separate encrypted EBS volume that
// survives instance replacement (protected, retained on delete), or, with database.managed,
// RDS PostgreSQL (encrypted, deletion protection, Multi-AZ on request) with the same settings.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { HostFile } from "../hosts/cloud-init";
import { Host, HostRole } from "../hosts";
import { AppSecrets } from "../secrets";
import { BackupStore } from "../backups";
import { HostTooling } from "../hosts/tooling";
import { hostEnv, renderHostCloudInit } from "../hosts/user-data";
import { scheduleFiles } from "../schedules/jobs";
import type { RestoreRehearsal } from "../rehearsal";
import { monitoringHostFiles } from "../monitoring/host";
import { ARCHIVE_CONF_PATH, MAX_ARCHIVE_TIMEOUT_SECONDS, PGBACKREST_TEMPLATE_PATH, pitrRetention, renderArchiveSettings, renderPgbackrestConf } from "./pgbackrest";
import { RDS_LOG_EXPORTS, rdsIdentifier } from "./rds";
import { CREATECLUSTER_DROPIN_PATH, PG_HBA_PATH, PG_IDENT_PATH, POSTGRESQL_CONF_PATH, postgresTuning, renderCreateClusterConf, renderPgHba, renderPgIdent, renderPostgresqlConf } from "./postgresql";

export interface DatabaseArgs {
  config: StackConfig;
  secrets: AppSecrets;
  subnetIds: pulumi.Output<string>[];
  availabilityZone: pulumi.Output<string>;
  securityGroupId: pulumi.Output<string>;
  /** Where the app hosts connect from, for pg_hba.conf. */
  appCidrs: string[];
  /** Off-host backup storage (when backups.enabled): the host role gets its grants, host.env its names. */
  backups?: BackupStore;
  /** Where the host fetches nourishctl from at first boot. */
  tooling: HostTooling;
  /** The key of the host's root and data volumes. */
  volumeKmsKeyArn: pulumi.Output<string>;
  /** Staging's restore rehearsal: the host reads prod's dumps (the grant) from this bucket (host.env). */
  rehearsal?: RestoreRehearsal;
  /** With RDS: the log groups its exports write to, which must exist before it does (rds.ts). */
  rdsLogGroups?: pulumi.Resource[];
}

// Debian's snakeoil certificate: TLS inside the VPC without a CA to run; scram does the auth.
const SSL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
const SSL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key";

export class Database extends pulumi.ComponentResource {
  /** Host name the app connects to. */
  readonly endpoint: pulumi.Output<string>;
  readonly port = 5432;
  /** The host's data volume (self-managed only). */
  readonly dataVolumeId?: pulumi.Output<string>;
  readonly hostRole?: HostRole;
  /** The database host (self-managed only): the Release runs the pre-release backup there. */
  readonly instance?: aws.ec2.Instance;
  /** Its data volume's attachment: nothing may run on the host before the data is there. */
  readonly dataAttachment?: aws.ec2.VolumeAttachment;
  /** The Secrets Manager secret RDS keeps the master user's password in (managed only). */
  readonly masterUserSecretArn?: pulumi.Output<string>;
  /** The RDS instance's identifier (managed only), for monitoring. */
  readonly rdsIdentifier?: pulumi.Output<string>;

  constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:database:Database", name, {}, opts);
    const { config } = args;
    const db = config.database;
    const sizing = aws.ec2.getInstanceTypeOutput({ instanceType: db.instanceType }, { parent: this })
      .apply((t) => ({ memoryMib: t.memorySize, vcpus: t.defaultVcpus }));

    if (db.managed) {
      const params = new aws.rds.ParameterGroup(`${name}-params`, {
        family: "postgres15",
        description: `nourish-link ${config.stack}: settings of the self-managed host`,
        parameters: sizing.apply((s) => {
          const t = postgresTuning(s);
          return [
            // RDS counts shared_buffers in 8 kB pages and work memory in kB.
            { name: "shared_buffers", value: String(t.sharedBuffersMb * 128), applyMethod: "pending-reboot" },
            { name: "effective_cache_size", value: String(t.effectiveCacheSizeMb * 128) },
            { name: "work_mem", value: String(t.workMemMb * 1024) },
            { name: "maintenance_work_mem", value: String(t.maintenanceWorkMemMb * 1024) },
            { name: "max_connections", value: String(t.maxConnections), applyMethod: "pending-reboot" },
            { name: "log_min_duration_statement", value: String(db.slowQueryMs) },
            { name: "shared_preload_libraries", value: "pg_stat_statements", applyMethod: "pending-reboot" },
            { name: "rds.force_ssl", value: "1" },
            { name: "password_encryption", value: "scram-sha-256" },
          ];
        }),
      }, { parent: this });
      // Enhanced monitoring: RDS publishes OS metrics through this role (its own account only).
      const monitoringRole = new aws.iam.Role(`${name}-rds-monitoring`, {
        description: `nourish-link ${config.stack}: RDS enhanced monitoring`,
        assumeRolePolicy: aws.getCallerIdentityOutput({}, { parent: this }).accountId.apply((a) => JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "monitoring.rds.amazonaws.com" }, Action: "sts:AssumeRole", Condition: { StringEquals: { "aws:SourceAccount": a } } }],
        })),
      }, { parent: this });
      const monitoringPolicy = new aws.iam.RolePolicyAttachment(`${name}-rds-monitoring`, {
        role: monitoringRole.name, policyArn: "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
      }, { parent: this });
      const subnets = new aws.rds.SubnetGroup(`${name}-subnets`, { subnetIds: args.subnetIds }, { parent: this });
      const rds = new aws.rds.Instance(`${name}-rds`, {
        // Fixed, so that its log groups can exist first (rds.ts); a change would replace the instance.
        identifier: rdsIdentifier(config),
        engine: "postgres",
        engineVersion: "15",
        instanceClass: `db.${db.instanceType}`,
        allocatedStorage: db.dataVolumeGb,
        storageType: "gp3",
        storageEncrypted: true,
        dbName: db.name,
        // Its own master user, its password kept by RDS in Secrets Manager: the app connects as
        // database.user, which `nourishctl create-app-role` makes (owner of the app database only).
        username: db.masterUser,
        manageMasterUserPassword: true,
        dbSubnetGroupName: subnets.name,
        vpcSecurityGroupIds: [args.securityGroupId],
        parameterGroupName: params.name,
        // A standby in another AZ by default on prod.
        multiAz: db.multiAz ?? config.environment === "prod",
        iamDatabaseAuthenticationEnabled: true,
        enabledCloudwatchLogsExports: [...RDS_LOG_EXPORTS],
        publiclyAccessible: false,
        deletionProtection: true,
        backupRetentionPeriod: Math.min(config.backups.retentionDays, 35),
        performanceInsightsEnabled: true,
        monitoringInterval: 60,
        monitoringRoleArn: monitoringRole.arn,
        autoMinorVersionUpgrade: true,
        skipFinalSnapshot: false,
        finalSnapshotIdentifier: `nourish-link-${config.stack}-final`,
        copyTagsToSnapshot: true,
      }, { parent: this, protect: true, retainOnDelete: config.environment === "prod", dependsOn: [monitoringPolicy, ...(args.rdsLogGroups ?? [])] });
      this.endpoint = rds.address;
      this.rdsIdentifier = rds.identifier;
      this.masterUserSecretArn = rds.masterUserSecrets.apply((s) => s?.[0]?.secretArn ?? "");
      this.registerOutputs({ endpoint: this.endpoint });
      return;
    }

    this.hostRole = new HostRole(`${name}-role`, { config, role: "db" }, { parent: this });
    const backups = args.backups;
    args.secrets.grantRead(`${name}-secrets`, this.hostRole.role, "db", { pgbackrestCipher: backups !== undefined });
    const pitr = backups !== undefined && config.backups.pitr;
    if (backups) {
      // Put and read its dumps and pgBackRest repository, put (never read) its own archived logs;
      // never delete a dump or a log (nor any object version). The one exception is pgBackRest's `expire`, with PITR on.
      backups.grantWrite(`${name}-backups`, this.hostRole.role, ["dumps/", "pgbackrest/"]);
      backups.grantLogArchive(`${name}-logs`, this.hostRole.role, "db");
      if (pitr) backups.grantPgbackrestDelete(`${name}-pgbackrest-expire`, this.hostRole.role);
    }
    // What `nourishctl restore-rehearsal` reads: prod's bucket, and the columns to scrub.
    const rehearsal = args.rehearsal;
    if (rehearsal) rehearsal.grantRead(`${name}-rehearsal-read`, this.hostRole.role);
    const rehearsalEnv: pulumi.Output<Record<string, string>> = rehearsal
      ? rehearsal.sourceBucket.apply((bucket): Record<string, string> => ({ REHEARSAL_SOURCE_BUCKET: bucket, REHEARSAL_SCRUB_COLUMNS: config.rehearsal.scrubColumns.join(" ") }))
      : pulumi.output<Record<string, string>>({});
    const backupEnv: pulumi.Output<Record<string, string>> = backups
      ? pulumi.all([backups.bucketName, backups.pgbackrestBucketName, backups.kmsKeyArn, args.secrets.pgbackrestCipherParameter])
        .apply(([bucket, pgbackrestBucket, kmsKeyArn, cipherParameter]): Record<string, string> => ({
          BACKUP_BUCKET: bucket,
          PGBACKREST_BUCKET: pgbackrestBucket,
          BACKUP_KMS_KEY_ARN: kmsKeyArn,
          BACKUP_LOCAL_DAYS: String(config.backups.localRetentionDays),
          BACKUP_RETENTION_DAYS: String(config.backups.retentionDays),
          BACKUP_MONTHLY_RETENTION_MONTHS: String(config.backups.monthlyRetentionMonths),
          PITR: String(pitr),
          PGBACKREST_CIPHER_PARAMETER: cipherParameter,
          ...backups.hostEnv,
        }))
      : pulumi.output<Record<string, string>>({ PITR: "false" });

    // Protected and retained: neither `pulumi destroy` nor a replaced instance can take the data.
    const volume = new aws.ebs.Volume(`${name}-data`, {
      availabilityZone: args.availabilityZone,
      size: db.dataVolumeGb,
      type: "gp3",
      encrypted: true,
      kmsKeyId: args.volumeKmsKeyArn,
      tags: { Name: `nourish-link-${config.stack}-pgdata`, role: "db" },
    }, { parent: this, protect: true, retainOnDelete: true });

    const files: pulumi.Output<HostFile[]> = pulumi.all([sizing, volume.id, args.secrets.dbPasswordParameter, backupEnv, rehearsalEnv]).apply(([s, volumeId, passwordParameter, backupVars, rehearsalVars]) => [
      { path: POSTGRESQL_CONF_PATH, content: renderPostgresqlConf({ sizing: s, slowQueryMs: db.slowQueryMs, sslCertFile: SSL_CERT, sslKeyFile: SSL_KEY }), owner: "root:root" },
      { path: PG_HBA_PATH, content: renderPgHba({ database: db.name, user: db.user, appCidrs: args.appCidrs }) },
      // Data checksums on the cluster the postgresql package creates (written before it is installed).
      { path: CREATECLUSTER_DROPIN_PATH, content: renderCreateClusterConf(), owner: "root:root" },
      { path: PG_IDENT_PATH, content: renderPgIdent({ user: db.user }) },
      hostEnv(config, "db", { DB_NAME: db.name, DB_USER: db.user, DB_PASSWORD_PARAMETER: passwordParameter, DATA_VOLUME_ID: volumeId, ...backupVars, ...rehearsalVars }),
      ...scheduleFiles(config, "db"),
      ...monitoringHostFiles(config, "db"),
      // PITR: WAL archived within archive_timeout (the RPO), and pgBackRest's configuration as a
      // template: nourishctl fills in the repository passphrase from SSM on the host.
      ...(pitr ? [
        { path: ARCHIVE_CONF_PATH, content: renderArchiveSettings({ archiveTimeoutSeconds: MAX_ARCHIVE_TIMEOUT_SECONDS }) },
        {
          path: PGBACKREST_TEMPLATE_PATH,
          content: renderPgbackrestConf({ bucket: backupVars.PGBACKREST_BUCKET, region: config.region, ...pitrRetention(config.backups.retentionDays) }),
          permissions: "0640",
        },
      ] : []),
    ]);
    args.tooling.grantRead(`${name}-tooling`, this.hostRole.role);
    const host = new Host(`${name}-host`, {
      config,
      role: "db",
      instanceType: db.instanceType,
      subnetId: args.subnetIds[0],
      availabilityZone: args.availabilityZone,
      securityGroupIds: [args.securityGroupId],
      instanceProfileName: this.hostRole.instanceProfileName,
      rootVolumeGb: 20,
      volumeKmsKeyArn: args.volumeKmsKeyArn,
      userData: pulumi.all([files, args.tooling.installCommands(config.region)]).apply(([f, install]) =>
        renderHostCloudInit(config, "db", { packages: ["postgresql", "postgresql-contrib", "ssl-cert", "pgbackrest"], files: f }, install)),
      dependsOn: args.tooling.objects,
    }, { parent: this });
    this.dataAttachment = new aws.ec2.VolumeAttachment(`${name}-data`, {
      instanceId: host.instance.id,
      volumeId: volume.id,
      deviceName: "/dev/sdf",
      // Stop PostgreSQL cleanly (instance stop) before the volume is detached.
      stopInstanceBeforeDetaching: true,
    }, { parent: this });

    this.endpoint = host.instance.privateDns;
    this.instance = host.instance;
    this.dataVolumeId = volume.id;
    this.registerOutputs({ endpoint: this.endpoint, dataVolumeId: this.dataVolumeId });
  }
}
