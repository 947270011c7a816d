// AppSecrets: the database password and the Django secret key, generated with @pulumi/random
// unless the stack sets them (--secret), and the passphrase of pgBackRest's encrypted repository
// (always generated), stored as SSM SecureString. Hosts read them through their instance role
// (grantRead); they never appear in user data or plan output.
//
// One customer-managed KMS key per audience, because reading a SecureString is ssm:GetParameter
// plus kms:Decrypt on its key, and every host's AmazonSSMManagedInstanceCore already allows
// ssm:GetParameter on every parameter: the key is what keeps a secret to its readers.
//   - secrets-key          the database password: app and database hosts
//   - secrets-app-key      the Django secret key: app hosts only
//   - secrets-backup-key   pgBackRest's passphrase: the database host only
// docs/SECURITY.md shows the resulting access matrix, computed by test/access-matrix.test.ts.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { StackConfig } from "../config";
import { keyPolicy } from "../keys/policy";

export interface AppSecretsArgs {
  config: StackConfig;
}

/** Who reads secrets: the app hosts or the database host. */
export type SecretAudience = "app" | "db";

interface Secret {
  arn: pulumi.Output<string>;
  keyArn: pulumi.Output<string>;
  readers: SecretAudience[];
}

export class AppSecrets extends pulumi.ComponentResource {
  /** The key of the database password (the one both host roles decrypt with). */
  readonly kmsKeyArn: pulumi.Output<string>;
  /** The app role's password, a secret Output (for RDS, which takes it directly). */
  readonly dbPassword: pulumi.Output<string>;
  /** SSM parameter names, as hosts look them up. */
  readonly dbPasswordParameter: pulumi.Output<string>;
  readonly djangoSecretKeyParameter: pulumi.Output<string>;
  /** pgBackRest's repo1-cipher-pass; only the database host may read it. */
  readonly pgbackrestCipherParameter: pulumi.Output<string>;
  private readonly secrets: Secret[] = [];

  constructor(name: string, args: AppSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nourish-link:secrets:AppSecrets", name, {}, opts);
    const { config } = args;
    const prefix = `/nourish-link/${config.stack}`;
    // Protected and retained on prod: without its key a secret is lost; the backup key's secret is
    // the passphrase without which the backup repository cannot be read (disaster recovery).
    const prod = config.environment === "prod";
    const account = aws.getCallerIdentityOutput({}, { parent: this }).accountId;
    const kmsKey = (id: string, alias: string, what: string) => {
      const key = new aws.kms.Key(id, {
        description: `nourish-link ${config.stack}: ${what}`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: pulumi.jsonStringify(account.apply((a) => keyPolicy(a))),
      }, { parent: this, protect: prod, retainOnDelete: prod });
      new aws.kms.Alias(`${id}-alias`, { name: `alias/nourish-link-${config.stack}-${alias}`, targetKeyId: key.keyId }, { parent: this });
      return key;
    };
    const sharedKey = kmsKey(`${name}-key`, "secrets", "secrets of the app and database hosts");
    const appKey = kmsKey(`${name}-app-key`, "app-secrets", "secrets of the app hosts only");
    const backupKey = kmsKey(`${name}-backup-key`, "backup-secrets", "secrets of the database host only (pgBackRest)");

    // The provider marks `result` secret in a real deployment; wrapping it keeps that true
    // everywhere, the offline preview included.
    const dbPassword = config.secrets.dbPassword
      ?? pulumi.secret(new random.RandomPassword(`${name}-db-password`, { length: 40, special: false }, { parent: this }).result);
    const djangoSecretKey = config.secrets.djangoSecretKey
      ?? pulumi.secret(new random.RandomPassword(`${name}-django-secret-key`, { length: 64, special: true, overrideSpecial: "!#%+-=_" }, { parent: this }).result);

    // Generated whatever backups.pitr says, so turning PITR off and on keeps the passphrase of an
    // existing repository; protected on prod, since a new one would make that repository unreadable.
    const keepOnProd = { parent: this, protect: prod };
    const pgbackrestCipherPass = pulumi.secret(new random.RandomPassword(`${name}-pgbackrest-cipher-pass`, { length: 64, special: false }, keepOnProd).result);

    const parameter = (id: string, value: pulumi.Output<string>, description: string, key: aws.kms.Key, readers: SecretAudience[], opts: pulumi.CustomResourceOptions = { parent: this }) => {
      const p = new aws.ssm.Parameter(`${name}-${id}`, {
        name: `${prefix}/${id}`,
        type: "SecureString",
        keyId: key.arn,
        value,
        description,
      }, opts);
      this.secrets.push({ arn: p.arn, keyArn: key.arn, readers });
      return p;
    };
    const dbParam = parameter("db-password", dbPassword, "password of the app's PostgreSQL role", sharedKey, ["app", "db"]);
    const djangoParam = parameter("django-secret-key", djangoSecretKey, "Django SECRET_KEY", appKey, ["app"]);
    const cipherParam = parameter("pgbackrest-cipher-pass", pgbackrestCipherPass, "passphrase of pgBackRest's encrypted repository (repo1-cipher-pass)", backupKey, ["db"], keepOnProd);

    this.kmsKeyArn = sharedKey.arn;
    this.dbPassword = dbPassword;
    this.dbPasswordParameter = dbParam.name;
    this.djangoSecretKeyParameter = djangoParam.name;
    this.pgbackrestCipherParameter = cipherParam.name;
    this.registerOutputs({
      kmsKeyArn: this.kmsKeyArn, dbPasswordParameter: this.dbPasswordParameter,
      djangoSecretKeyParameter: this.djangoSecretKeyParameter, pgbackrestCipherParameter: this.pgbackrestCipherParameter,
    });
  }

  /**
   * Lets `role` read and decrypt exactly the secrets of its audience, nothing else: the app hosts
   * the database password and the Django key, the database host the database password and, with
   * `{ pgbackrestCipher: true }` (backups on), pgBackRest's passphrase.
   */
  grantRead(name: string, role: aws.iam.Role, audience: SecretAudience, opts: { pgbackrestCipher?: boolean } = {}): aws.iam.RolePolicy {
    const mine = this.secrets.filter((s) => s.readers.includes(audience) && (opts.pgbackrestCipher || !(s.readers.length === 1 && s.readers[0] === "db")));
    return new aws.iam.RolePolicy(name, {
      role: role.id,
      policy: pulumi.all([pulumi.all(mine.map((s) => s.arn)), pulumi.all(mine.map((s) => s.keyArn))]).apply(([params, keys]) => JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Sid: "ReadSecrets", Effect: "Allow", Action: ["ssm:GetParameter", "ssm:GetParameters"], Resource: params },
          { Sid: "DecryptSecrets", Effect: "Allow", Action: "kms:Decrypt", Resource: [...new Set(keys)].sort() },
        ],
      })),
    }, { parent: this });
  }
}
