// AppHosts: N gunicorn/nginx hosts. With more than one (or app.tls = alb) they sit in the private
// subnets behind an Application Load Balancer with an ACM certificate and health checks; a single
// host may instead sit in a public subnet with an Elastic IP and terminate TLS on nginx (certbot).
// Every host serves the maintenance page until its first release is deployed.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { Host, HostRole } from "../hosts";
import { HostFile } from "../hosts/cloud-init";
import { HostTooling } from "../hosts/tooling";
import { hostEnv, renderHostCloudInit } from "../hosts/user-data";
import { Network } from "../network";
import { AppSecrets } from "../secrets";
import { BackupStore } from "../backups";
import { GUNICORN_SERVICE_NAME, gunicornWorkers, renderGunicornService } from "./gunicorn";
import { NGINX_REOPEN_LOGS, renderLogrotate, rotatedLogDays } from "./logrotate";
import { renderMaintenancePage } from "./maintenance";
import { NGINX_HTTP_CONF_PATH, NGINX_SITE_PATH, renderNginxHttpConf, renderNginxSite } from "./nginx";
import { appHostPackages } from "./contract";
import { APP_PATHS } from "./paths";
import { scheduleFiles } from "../schedules/jobs";
import { accessLogLifecycleRules, albLogBucketPolicy } from "../backups/policy";
import { hardenBucket } from "../storage";
import { monitoringHostFiles } from "../monitoring/host";

/** Where nginx finds its certificate when it terminates TLS; nourishctl setup keeps it current. */
export const TLS_DIR = "/etc/nourish-link/tls";

export interface AppHostsArgs {
  config: StackConfig;
  secrets: AppSecrets;
  network: Network;
  databaseEndpoint: pulumi.Output<string>;
  /** Where the hosts fetch nourishctl from at first boot. */
  tooling: HostTooling;
  /** The key of the hosts' root volumes. */
  volumeKmsKeyArn: pulumi.Output<string>;
  /** The backup store (backups.enabled): the monthly log archive goes under its logs/ prefix. */
  backups?: BackupStore;
  /** Managed database: the secret with RDS's master password (create-app-role reads it). */
  masterUserSecretArn?: pulumi.Output<string>;
}

/** The files of one app host (pure apart from the Outputs it is given); host 0 runs the singleton jobs. */
export function appHostFiles(config: StackConfig, workers: number, env: Record<string, string>, hostIndex = 0): HostFile[] {
  const tls = config.app.tls === "nginx" ? { certFile: `${TLS_DIR}/fullchain.pem`, keyFile: `${TLS_DIR}/privkey.pem` } : undefined;
  return [
    { path: NGINX_HTTP_CONF_PATH, content: renderNginxHttpConf() },
    {
      path: NGINX_SITE_PATH,
      content: renderNginxSite({ domain: config.domain, tls, clientMaxBodySize: config.app.clientMaxBodySize, healthPath: config.release.healthPath }),
    },
    { path: `/etc/systemd/system/${GUNICORN_SERVICE_NAME}`, content: renderGunicornService({ workers }) },
    { path: "/etc/logrotate.d/nourish-link", content: renderLogrotate({ paths: [`${APP_PATHS.logDir}/*.log`], days: rotatedLogDays(config.backups.enabled), postrotate: NGINX_REOPEN_LOGS }) },
    { path: `${APP_PATHS.maintenanceRoot}/index.html`, content: renderMaintenancePage() },
    hostEnv(config, "app", env),
    ...scheduleFiles(config, "app", hostIndex),
    ...monitoringHostFiles(config, "app"),
  ];
}

export class AppHosts extends pulumi.ComponentResource {
  readonly instanceIds: pulumi.Output<string>[];
  /** The app hosts in order (the Release connects to their private IPs; app-0 migrates first). */
  readonly instances: aws.ec2.Instance[];
  /** Where the site answers: the ALB's DNS name or the single host's Elastic IP. */
  readonly entryPoint: pulumi.Output<string>;
  /** DNS records that prove the domain to ACM (ALB only): add them at the domain's DNS provider. */
  readonly certificateValidationRecords?: pulumi.Output<{ name: string; type: string; value: string }[]>;
  readonly hostRole: HostRole;
  /** The ALB's and target group's CloudWatch dimensions (ALB only), for monitoring. */
  readonly albDimensions?: { loadBalancer: pulumi.Output<string>; targetGroup: pulumi.Output<string> };

  constructor(name: string, args: AppHostsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:app:AppHosts", name, {}, opts);
    const { config, network } = args;
    const app = config.app;
    const behindAlb = app.tls === "alb";

    this.hostRole = new HostRole(`${name}-role`, { config, role: "app" }, { parent: this });
    args.secrets.grantRead(`${name}-secrets`, this.hostRole.role, "app");
    args.tooling.grantRead(`${name}-tooling`, this.hostRole.role);
    // `nourishctl logs archive`: put (never read, never delete) under its own logs/app/<aws:userid>/ only.
    args.backups?.grantLogArchive(`${name}-logs`, this.hostRole.role, "app");
    // A managed database has no host of ours: the first app host takes the pre-release backup and
    // is where it is restored (`nourishctl backup` / `restore --key` against RDS), so only then do
    // the app hosts put and read dumps/ (never delete: the grant has no delete).
    const managed = config.database.managed;
    if (managed) args.backups?.grantWrite(`${name}-dumps`, this.hostRole.role, ["dumps/"]);
    // `nourishctl create-app-role` (first app host, each release) reads RDS's master password.
    // The cost, written in docs/SECURITY.md: root on an app host can become the master user.
    if (managed && args.masterUserSecretArn) {
      new aws.iam.RolePolicy(`${name}-rds-master-secret`, {
        role: this.hostRole.role.id,
        policy: args.masterUserSecretArn.apply((arn) => JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Sid: "ReadRdsMasterSecret", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: arn }],
        })),
      }, { parent: this });
    }
    const masterEnv = args.masterUserSecretArn?.apply((arn): Record<string, string> => ({ DB_MASTER_SECRET_ARN: arn })) ?? pulumi.output<Record<string, string>>({});
    const archiveEnv = args.backups
      ? pulumi.all([args.backups.bucketName, args.backups.kmsKeyArn]).apply(([bucket, key]): Record<string, string> => ({
        BACKUP_BUCKET: bucket, BACKUP_KMS_KEY_ARN: key, ...args.backups!.hostEnv,
        ...(managed ? { BACKUP_LOCAL_DAYS: String(config.backups.localRetentionDays) } : {}),
      }))
      : pulumi.output<Record<string, string>>({});

    const sizing = aws.ec2.getInstanceTypeOutput({ instanceType: app.instanceType }, { parent: this });
    // Per host: the first app host (app-0) also runs the app's own jobs, the smoke probe and the reports.
    const userData = (hostIndex: number) => pulumi.all([sizing.defaultVcpus, args.databaseEndpoint, args.secrets.dbPasswordParameter, args.secrets.djangoSecretKeyParameter, args.tooling.installCommands(config.region), archiveEnv, masterEnv, args.tooling.bucketName])
      .apply(([vcpus, dbHost, dbParam, keyParam, install, archive, master, toolingBucket]) => renderHostCloudInit(config, "app", {
        // pg_dump/pg_restore of RDS's major (15) for the backup and restore a managed database needs.
        packages: [...appHostPackages(app.tls), ...(managed ? ["postgresql-client-15"] : [])],
        files: appHostFiles(config, app.gunicornWorkers ?? gunicornWorkers(vcpus), {
          DOMAIN: config.domain,
          TLS: app.tls,
          TLS_DIR,
          ACME_EMAIL: config.monitoring.alertEmails[0] ?? "",
          DB_HOST: dbHost,
          DB_NAME: config.database.name,
          DB_USER: config.database.user,
          DB_PASSWORD_PARAMETER: dbParam,
          DJANGO_SECRET_KEY_PARAMETER: keyParam,
          // nourishctl's pg_admin: RDS over TLS as the app's database user (app.env), not a local superuser.
          ...(managed ? { DB_MANAGED: "true", ...master } : {}),
          ...archive,
          // `nourishctl report` reads the report's spec there (monitoring/report.ts).
          TOOLING_BUCKET: toolingBucket,
        }, hostIndex),
      }, install));

    const hosts = Array.from({ length: app.count }, (_, i) => new Host(`${name}-${i}`, {
      config,
      role: "app",
      instanceType: app.instanceType,
      subnetId: behindAlb ? network.privateSubnetIds[i % network.privateSubnetIds.length] : network.publicSubnetIds[0],
      securityGroupIds: [network.appSecurityGroupId],
      instanceProfileName: this.hostRole.instanceProfileName,
      rootVolumeGb: app.rootVolumeGb,
      userData: userData(i),
      volumeKmsKeyArn: args.volumeKmsKeyArn,
      dependsOn: args.tooling.objects,
    }, { parent: this }));
    this.instanceIds = hosts.map((h) => h.instance.id);
    this.instances = hosts.map((h) => h.instance);

    if (!behindAlb) {
      const ip = new aws.ec2.Eip(`${name}-ip`, { domain: "vpc", instance: hosts[0].instance.id }, { parent: this });
      this.entryPoint = ip.publicIp;
      this.registerOutputs({ entryPoint: this.entryPoint });
      return;
    }

    // Access logs of the load balancer: SSE-S3, the only encryption ELB log delivery can write.
    const prod = config.environment === "prod";
    const logs = new aws.s3.Bucket(`${name}-alb-logs`, { forceDestroy: !prod }, { parent: this, protect: prod, retainOnDelete: prod });
    const l = hardenBucket(`${name}-alb-logs`, logs, { encryption: { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }, lifecycle: accessLogLifecycleRules() }, this);
    const account = aws.getCallerIdentityOutput({}, { parent: this }).accountId;
    const elb = aws.elb.getServiceAccountOutput({}, { parent: this }).arn;
    const logPolicy = new aws.s3.BucketPolicy(`${name}-alb-logs-policy`, {
      bucket: logs.id,
      policy: pulumi.jsonStringify(pulumi.all([logs.arn, elb, account]).apply(([b, e, a]) => albLogBucketPolicy(b, "alb/", e, a))),
    }, { parent: this, dependsOn: [l.publicAccess] });
    const alb = new aws.lb.LoadBalancer(`${name}-alb`, {
      loadBalancerType: "application",
      subnets: network.publicSubnetIds,
      securityGroups: [network.albSecurityGroupId!],
      dropInvalidHeaderFields: true,
      enableDeletionProtection: prod,
      accessLogs: { enabled: true, bucket: logs.bucket, prefix: "alb" },
    }, { parent: this, dependsOn: [logPolicy] });
    const targets = new aws.lb.TargetGroup(`${name}-targets`, {
      port: 80,
      protocol: "HTTP",
      targetType: "instance",
      vpcId: network.vpcId,
      deregistrationDelay: 30,
      healthCheck: { path: config.release.healthPath, matcher: "200", interval: 15, healthyThreshold: 2, unhealthyThreshold: 3, timeout: 5 },
    }, { parent: this });
    hosts.forEach((h, i) => new aws.lb.TargetGroupAttachment(`${name}-${i}`, { targetGroupArn: targets.arn, targetId: h.instance.id, port: 80 }, { parent: this }));

    const cert = new aws.acm.Certificate(`${name}-cert`, { domainName: config.domain, validationMethod: "DNS" }, { parent: this });
    this.certificateValidationRecords = cert.domainValidationOptions.apply((opts) =>
      opts.map((o) => ({ name: o.resourceRecordName, type: o.resourceRecordType, value: o.resourceRecordValue })));
    // Waits until the validation records exist at the DNS provider and ACM has issued the certificate.
    const issued = new aws.acm.CertificateValidation(`${name}-cert`, { certificateArn: cert.arn }, { parent: this });
    new aws.lb.Listener(`${name}-https`, {
      loadBalancerArn: alb.arn,
      port: 443,
      protocol: "HTTPS",
      sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
      certificateArn: issued.certificateArn,
      defaultActions: [{ type: "forward", targetGroupArn: targets.arn }],
    }, { parent: this });
    new aws.lb.Listener(`${name}-http`, {
      loadBalancerArn: alb.arn,
      port: 80,
      protocol: "HTTP",
      defaultActions: [{ type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } }],
    }, { parent: this });
    this.entryPoint = alb.dnsName;
    this.albDimensions = { loadBalancer: alb.arnSuffix, targetGroup: targets.arnSuffix };
    this.registerOutputs({ entryPoint: this.entryPoint, certificateValidationRecords: this.certificateValidationRecords });
  }
}
