// The restore-rehearsal drills of `npm run rehearse` (issue 11): a "prod" database beside the
// loopback estate's (which plays staging), backed up by `nourishctl backup` of a prod db host into
// prod's bucket; then staging's rehearsal through the SSM document's script, as `pulumi up` sends
// it: `restore-rehearsal` on the db host, `restore-rehearsal-verify` on the app host.
import * as fs from "fs";
import * as path from "path";
import { renderEnvFile } from "../../components/hosts/env-file";
import { ctl, ctlDirect, LoopbackHosts, PROD_BUCKET, Ran } from "./host";

export const PROD_DB = "dusangire_prod";
/** Orders only prod has: the restored staging database must hold them. */
export const PROD_ONLY_ORDERS = 250;

export interface ProdBackup { key: string; sha256: string; orders: number }

/**
 * "Prod": a copy of the live database as it is now (restore --as from a fresh backup), with
 * orders of its own, then `nourishctl backup` on a db host whose host.env says STACK=prod.
 */
export async function prodBackup(hosts: LoopbackHosts): Promise<ProdBackup> {
  const copy = await hosts.preReleaseBackup();
  const made = await ctlDirect(hosts.dbEnv, ["restore", "--key", copy, "--as", PROD_DB]);
  if (made.code !== 0) throw new Error(`cannot make the prod database: ${made.stderr.trim().split("\n").pop()}`);
  hosts.db.psql(`INSERT INTO meals_order (ref, menu_item_id, quantity, created_at)
      SELECT gen_random_uuid(), (SELECT min(id) FROM meals_menuitem), 1 + i % 3, now() FROM generate_series(1, ${PROD_ONLY_ORDERS}) i;
    INSERT INTO meals_subscription (family_name, menu_item_id, weekly_quantity, active, created_at)
      SELECT 'Prod family ' || i, (SELECT min(id) FROM meals_menuitem), 1, true, now() FROM generate_series(1, ${PROD_ONLY_ORDERS}) i`, { db: PROD_DB });
  const root = path.join(hosts.dir, "prod-db");
  fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
  fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), renderEnvFile("host.env", {
    ROLE: "db", STACK: "prod", REGION: "us-east-1", DB_NAME: PROD_DB, DB_USER: "dusangire", BACKUP_BUCKET: PROD_BUCKET, S3_ENDPOINT: String(hosts.dbEnv.S3_ENDPOINT),
  }), { mode: 0o600 });
  const b = await ctlDirect({ ...hosts.dbEnv, NOURISH_ROOT: root }, ["backup"]);
  const key = b.stdout.trim().split("\n").pop() ?? "";
  if (b.code !== 0) throw new Error(`prod backup failed: ${b.stderr.trim().split("\n").pop()}`);
  const pointer = path.join(hosts.dir, "prod-latest.json");
  const got = awsCli(hosts, ["s3", "cp", `s3://${PROD_BUCKET}/dumps/daily/latest.json`, pointer]);
  if (got !== 0) throw new Error("prod backup wrote no latest pointer");
  const p = JSON.parse(fs.readFileSync(pointer, "utf8")) as { key: string; sha256: string };
  if (p.key !== key) throw new Error(`prod's latest pointer names ${p.key}, not the backup just taken (${key})`);
  return { key, sha256: p.sha256, orders: Number(hosts.db.psql("SELECT count(*) FROM meals_order", { db: PROD_DB })) };
}

function awsCli(hosts: LoopbackHosts, args: string[]): number {
  const { spawnSync } = require("child_process") as typeof import("child_process");
  return spawnSync("aws", ["--endpoint-url", String(hosts.dbEnv.S3_ENDPOINT), ...args], { env: hosts.dbEnv, stdio: "ignore" }).status ?? 1;
}

/** Everything of staging's database a failed rehearsal must leave as it was. */
export function stagingState(hosts: LoopbackHosts): string {
  const db = hosts.db;
  return JSON.stringify({
    orders: db.psql("SELECT count(*) || ':' || md5(coalesce(string_agg(o::text, ',' ORDER BY id), '')) FROM meals_order o", { db: "dusangire" }),
    migrations: db.psql("SELECT string_agg(app || '.' || name, ',' ORDER BY id) FROM django_migrations", { db: "dusangire" }),
    comment: db.psql("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = 'dusangire'"),
    databases: db.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"),
  });
}

const metricsDir = (hosts: LoopbackHosts) => path.join(hosts.appRoot, "var/lib/nourish-link/metrics");
export const publishedMetric = (hosts: LoopbackHosts, name: string): string | undefined => {
  const f = path.join(metricsDir(hosts), name);
  return fs.existsSync(f) ? fs.readFileSync(f, "utf8").trim() : undefined;
};

/** Flips one byte in the middle of the backup object `key` of prod's bucket; returns how to put it back. */
export function corrupt(hosts: LoopbackHosts, key: string): () => void {
  const good = path.join(hosts.dir, "prod-good.dump");
  const bad = path.join(hosts.dir, "prod-flipped.dump");
  if (awsCli(hosts, ["s3", "cp", `s3://${PROD_BUCKET}/${key}`, good]) !== 0) throw new Error(`cannot download ${key}`);
  const bytes = fs.readFileSync(good);
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  fs.writeFileSync(bad, bytes);
  if (awsCli(hosts, ["s3", "cp", bad, `s3://${PROD_BUCKET}/${key}`]) !== 0) throw new Error(`cannot upload the corrupted ${key}`);
  return () => { if (awsCli(hosts, ["s3", "cp", good, `s3://${PROD_BUCKET}/${key}`]) !== 0) throw new Error(`cannot put ${key} back`); };
}

/** Staging's rehearsal as `pulumi up` runs it: the db host's step, then (if it succeeded) the app host's. */
export async function rehearseRestore(hosts: LoopbackHosts, backup: ProdBackup): Promise<{ restore: Ran; verify?: Ran }> {
  const restore = await ctl(hosts.dbEnv, ["restore-rehearsal", "--key", backup.key, "--sha256", backup.sha256]);
  if (restore.code !== 0) return { restore };
  return { restore, verify: await ctl(hosts.appEnv, ["restore-rehearsal-verify"]) };
}
