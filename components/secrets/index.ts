// AppSecrets: the database password and the Django secret key, generated with @pulumi/random
// unless the stack sets them (--secret), and the passphrase of pgBackRest's encrypted repository
// (always generated), stored as SSM SecureString under a customer-managed KMS key. Hosts read
// them through their instance role (grantRead); they never appear in user data or plan output.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { StackConfig } from "../config";
import { keyPolicy } from "../keys/policy";

export interface AppSecretsArgs {
  config: StackConfig;
}

export class AppSecrets extends pulumi.ComponentResource {
  readonly kmsKeyArn: pulumi.Output<string>;
  /** The app role's password, a secret Output (for RDS, which takes it directly). */
  readonly dbPassword: pulumi.Output<string>;
  /** SSM parameter names, as hosts look them up. */
  readonly dbPasswordParameter: pulumi.Output<string>;
  readonly djangoSecretKeyParameter: pulumi.Output<string>;
  /** pgBackRest's repo1-cipher-pass; only roles that ask for it (the database host) may read it. */
  readonly pgbackrestCipherParameter: pulumi.Output<string>;
  private readonly parameterArns: pulumi.Output<string>[];
  private readonly pgbackrestCipherArn: pulumi.Output<string>;

  constructor(name: string, args: AppSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:secrets:AppSecrets", name, {}, opts);
    const { config } = args;
    const prefix = `/nourish-link/${config.stack}`;

    // Protected and retained on prod: it encrypts the pgBackRest passphrase, without which the
    // backup repository cannot be read (disaster recovery). `pulumi destroy` must not schedule it
    // for deletion.
    const prod = config.environment === "prod";
    const account = aws.getCallerIdentityOutput({}, { parent: this }).accountId;
    const key = new aws.kms.Key(`${name}-key`, {
      description: `nourish-link ${config.stack}: application secrets`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.jsonStringify(account.apply((a) => keyPolicy(a))),
    }, { parent: this, protect: prod, retainOnDelete: prod });
    new aws.kms.Alias(`${name}-key-alias`, { name: `alias/nourish-link-${config.stack}-secrets`, targetKeyId: key.keyId }, { parent: this });

    // The provider marks `result` secret in a real deployment; wrapping it keeps that true
    // everywhere, the offline preview included.
    const dbPassword = config.secrets.dbPassword
      ?? pulumi.secret(new random.RandomPassword(`${name}-db-password`, { length: 40, special: false }, { parent: this }).result);
    const djangoSecretKey = config.secrets.djangoSecretKey
      ?? pulumi.secret(new random.RandomPassword(`${name}-django-secret-key`, { length: 64, special: true, overrideSpecial: "!#%+-=_" }, { parent: this }).result);

    // Generated whatever backups.pitr says, so turning PITR off and on keeps the passphrase of an
    // existing repository; protected on prod, since a new one would make that repository unreadable.
    const keepOnProd = { parent: this, protect: config.environment === "prod" };
    const pgbackrestCipherPass = pulumi.secret(new random.RandomPassword(`${name}-pgbackrest-cipher-pass`, { length: 64, special: false }, keepOnProd).result);

    const parameter = (id: string, value: pulumi.Output<string>, description: string, opts: pulumi.CustomResourceOptions = { parent: this }) =>
      new aws.ssm.Parameter(`${name}-${id}`, {
        name: `${prefix}/${id}`,
        type: "SecureString",
        keyId: key.arn,
        value,
        description,
      }, opts);
    const dbParam = parameter("db-password", dbPassword, "password of the app's PostgreSQL role");
    const djangoParam = parameter("django-secret-key", djangoSecretKey, "Django SECRET_KEY");
    const cipherParam = parameter("pgbackrest-cipher-pass", pgbackrestCipherPass, "passphrase of pgBackRest's encrypted repository (repo1-cipher-pass)", keepOnProd);

    this.kmsKeyArn = key.arn;
    this.dbPassword = dbPassword;
    this.dbPasswordParameter = dbParam.name;
    this.djangoSecretKeyParameter = djangoParam.name;
    this.pgbackrestCipherParameter = cipherParam.name;
    this.parameterArns = [dbParam.arn, djangoParam.arn];
    this.pgbackrestCipherArn = cipherParam.arn;
    this.registerOutputs({
      kmsKeyArn: this.kmsKeyArn, dbPasswordParameter: this.dbPasswordParameter,
      djangoSecretKeyParameter: this.djangoSecretKeyParameter, pgbackrestCipherParameter: this.pgbackrestCipherParameter,
    });
  }

  /**
   * Lets `role` read and decrypt exactly these parameters, nothing else: the app's secrets, and
   * the pgBackRest passphrase only with `{ pgbackrestCipher: true }` (the database host).
   */
  grantRead(name: string, role: aws.iam.Role, opts: { pgbackrestCipher?: boolean } = {}): aws.iam.RolePolicy {
    return new aws.iam.RolePolicy(name, {
      role: role.id,
      policy: pulumi.jsonStringify({
        Version: "2012-10-17",
        Statement: [
          { Sid: "ReadAppSecrets", Effect: "Allow", Action: ["ssm:GetParameter", "ssm:GetParameters"], Resource: opts.pgbackrestCipher ? [...this.parameterArns, this.pgbackrestCipherArn] : this.parameterArns },
          { Sid: "DecryptAppSecrets", Effect: "Allow", Action: "kms:Decrypt", Resource: this.kmsKeyArn },
        ],
      }),
    }, { parent: this });
  }
}
