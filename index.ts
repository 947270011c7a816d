// The Pulumi program: validate the stack config (nothing is registered if it is invalid),
// build the estate, export what operators and CI need.
import { loadConfig } from "./components/config";
import { NourishLink } from "./components";
import { releaseArtifactOutput } from "./components/release/steps";

export = async () => {
  const config = loadConfig();
  const site = new NourishLink("nourish-link", { config });
  return {
    environment: config.environment,
    domain: config.domain,
    releaseVersion: config.release.version,
    // What promotion reads (scripts/promote.ts): the artifact (no bucket, no credentials) and the
    // verify step's result with its time. Unknown in a preview that will run the release.
    releaseArtifact: releaseArtifactOutput(config.release.artifact),
    releaseVerified: site.release.verified,
    // The steps pulumi up runs, in order, and the backup taken before the release (what to
    // restore when a rollback cannot reverse its migrations).
    releaseSteps: site.release.steps,
    releasePreReleaseBackup: site.release.preReleaseBackup,
    // How people run a procedure on a host: this document, with this policy attached to them.
    releaseDocument: site.release.documentName,
    operatorPolicyArn: site.release.operatorPolicyArn,
    // What the workflows' configure-aws-credentials assumes (with ci.github.repository).
    ...(site.ci ? { ciRoleArn: site.ci.roleArn, previewRoleArn: site.ci.previewRoleArn } : {}),
    // What the app repository's release-artifact workflow assumes (with ci.github.appRepository).
    ...(site.ci?.publisherRoleArn ? { releasePublisherRoleArn: site.ci.publisherRoleArn } : {}),
    // Prod's releases bucket and key: staging reads them through its StackReference (docs/RELEASES.md).
    ...(site.releaseBucket ? { releaseBucket: site.releaseBucket.bucketName, releaseKmsKeyArn: site.releaseBucket.kmsKeyArn } : {}),
    // The emergency procedures: one SSM document each, a ready-to-paste send-command per
    // procedure (hosts by tag; isolate and snapshot one instance), the policy that allows them.
    oncallCommands: site.oncall.commands,
    oncallOperatorPolicyArn: site.oncall.operatorPolicyArn,
    entryPoint: site.app.entryPoint,
    // Only with an ALB (ACM) and a self-managed database: Pulumi warns about undefined outputs.
    ...(site.app.certificateValidationRecords ? { certificateValidationRecords: site.app.certificateValidationRecords } : {}),
    appInstanceIds: site.app.instanceIds,
    // Every host by role, for `aws ssm start-session --target` and the on-call documents.
    instanceIds: { app: site.app.instanceIds, ...(site.database.instance ? { db: [site.database.instance.id] } : {}) },
    databaseEndpoint: site.database.endpoint,
    ...(site.database.dataVolumeId ? { databaseDataVolumeId: site.database.dataVolumeId } : {}),
    vpcId: site.network.vpcId,
    secretsKmsKeyArn: site.secrets.kmsKeyArn,
    dbPasswordParameter: site.secrets.dbPasswordParameter,
    djangoSecretKeyParameter: site.secrets.djangoSecretKeyParameter,
    pgbackrestCipherParameter: site.secrets.pgbackrestCipherParameter,
    backupBucket: site.backups?.bucketName,
    pgbackrestBucket: site.backups?.pgbackrestBucketName,
    backupAccessLogBucket: site.backups?.accessLogBucketName,
    backupKmsKeyArn: site.backups?.kmsKeyArn,
    // Staging's last restore rehearsal of prod's backup, as the app host summarised it (the promotion reads it).
    ...(site.rehearsal?.summary ? { restoreRehearsal: site.rehearsal.summary, rehearsalBackup: site.rehearsal.latest } : {}),
    // Where every alarm notifies.
    alertTopicArn: site.monitoring.topicArn,
    // Where the uptime alarm (us-east-1, monitoring.uptimeCheck) notifies.
    ...(site.monitoring.uptimeTopicArn ? { uptimeAlertTopicArn: site.monitoring.uptimeTopicArn } : {}),
  };
};
