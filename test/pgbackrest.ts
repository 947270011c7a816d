// pgBackRest against a throwaway cluster (test/pg.ts) and s3rver behind TLS (test/s3.ts), as the
// database host runs it: the rendered config, 0640 root:postgres, read by archive_command.
import * as fs from "fs";
import * as path from "path";
import { PgbackrestConfSettings, renderArchiveSettings, renderPgbackrestConf } from "../components/database/pgbackrest";
import { AppClusterOptions, Cluster, startAppCluster } from "./pg";
import { S3 } from "./s3";

/** The test clusters' archive_timeout: the hosts' 60 s would make the RPO test wait a minute, and 10 s made it wait 10; 3 s proves the same timed switch. */
export const TEST_ARCHIVE_TIMEOUT_SECONDS = 3;

export interface PitrCluster {
  cluster: Cluster;
  /** The finished pgbackrest.conf (passphrase included), for PGBACKREST_CONFIG. */
  confPath: string;
  settings: PgbackrestConfSettings;
}

/** A cluster archiving WAL through pgBackRest into `bucket` on `s3` (started with tls: true). */
export async function startPitrCluster(s3: S3, bucket: string, cipherPass: string, o: Omit<AppClusterOptions, "extraConf">): Promise<PitrCluster> {
  let confPath = "";
  let settings: PgbackrestConfSettings | undefined;
  const cluster = await startAppCluster({
    ...o,
    extraConf: (c) => {
      settings = {
        bucket, region: "us-east-1", endpoint: "127.0.0.1", retentionFull: 2, retentionDiff: 7,
        credentials: { type: "shared", key: s3.env.AWS_ACCESS_KEY_ID, secret: s3.env.AWS_SECRET_ACCESS_KEY },
        testStorage: { port: s3.tlsPort, pathStyle: true, insecureSkipTlsVerify: true },
        pgPath: c.dataDir, pgPort: c.port, pgSocketPath: c.socketDir,
        spoolPath: path.join(c.root, "spool"), logPath: path.join(c.root, "log"), lockPath: path.join(c.root, "lock"),
      };
      confPath = path.join(c.root, "pgbackrest.conf");
      fs.writeFileSync(confPath, renderPgbackrestConf({ ...settings, cipherPass }), { mode: 0o640 });
      fs.chownSync(confPath, 0, c.os.gid);
      for (const d of ["log", "spool", "lock"]) {
        fs.mkdirSync(path.join(c.root, d), { mode: 0o750 });
        c.own(path.join(c.root, d));
      }
      return renderArchiveSettings({ archiveTimeoutSeconds: TEST_ARCHIVE_TIMEOUT_SECONDS, configPath: confPath });
    },
  });
  return { cluster, confPath, settings: settings! };
}
