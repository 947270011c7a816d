// The release rehearsal (DESIGN.md, "Interfaces" 3): the real nourishctl against real PostgreSQL,
// nginx (rendered site) and gunicorn (rendered unit) on loopback with the sample Django app.
// Each drill runs a release or a rollback, most of them under continuous load, and records what
// an operator would ask afterwards: did any request fail, how long did the switch and the
// rollback take, which release is serving, and is every acknowledged order in the database.
import * as fs from "fs";
import * as path from "path";
import { Artifact } from "./artifacts";
import { ctl, DOMAIN, lastLine, Ran, startLoopbackHosts } from "./host";
import { LoadResult, startLoad } from "./load";
import { corrupt, PROD_DB, ProdBackup, prodBackup, publishedMetric, rehearseRestore, stagingState } from "./restore";
import { get, sleep } from "./loopback";

export interface Drill {
  name: string;
  description: string;
  passed: boolean;
  /** Why it did not pass; empty when it did. */
  problems: string[];
  expected: { exit: "ok" | "fails"; serving: string };
  exitCode: number;
  /** nourishctl's last line (its one-line reason on failure). */
  said: string;
  serving: string;
  /** The newest applied migration of the app `meals` afterwards. */
  mealsMigration: string;
  requestsSent: number;
  requestsFailed: number;
  byStatus: Record<string, number>;
  ordersAcknowledged: number;
  ordersMissing: number;
  /** `release switch` from start to finish: new gunicorn up, health gate, switch, verify, old one drained. */
  switchSeconds?: number;
  /** From the start of the rollback until the previous release serves again. */
  rollbackSeconds?: number;
  /** The whole rollback, including stopping the failed release and reversing its migrations. */
  rollbackTotalSeconds?: number;
  stepSeconds: Record<string, number>;
  /** The releases whose gunicorn runs after the drill (the live one and the warm standby), by pid. */
  gunicorns: Record<string, number>;
  /** A restore's database kept aside, and the orders in it the restored one lacks (taken after the backup). */
  keptDatabase?: string;
  ordersOnlyInKeptDatabase?: number;
  /** A restore rehearsal's summary (restore-rehearsal-verify's last line): the stack output restoreRehearsal. */
  rehearsal?: { ok: boolean; at: string; backupKey: string; backupSha256: string; seconds: number; backupAgeSeconds: number };
  /** What the rehearsal drills found in the staging database and the metrics afterwards. */
  rehearsalChecks?: Record<string, string | number | boolean | undefined>;
}

export interface Report {
  startedAt: string;
  /** Requests per second offered during the drills under load. */
  loadRate: number;
  seconds: number;
  passed: boolean;
  drills: Drill[];
}

const round = (s: number) => Math.round(s * 100) / 100;

/** Requests a drill under load must have seen answered (test/rehearsal.test.ts asserts more than 100). */
export const MIN_REQUESTS = 200;
/** Requests per second during a drill: steady traffic through every switch (one request every
 *  40 ms over 4 connections), while leaving a 2-core CI machine the CPU the release steps need. At
 *  60 req/s the load took most of CI's CPU and made every step 5x slower than unloaded; a switch is
 *  a rename, so proving it drops nothing needs requests crossing it, not more of them.
 *  REHEARSAL_LOAD_RATE sets another rate (bench:switch offers 120). */
export function loadRate(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.REHEARSAL_LOAD_RATE;
  if (v === undefined || v === "") return 25;
  if (!/^[1-9][0-9]{0,3}$/.test(v)) throw new Error(`REHEARSAL_LOAD_RATE must be a whole number of requests per second from 1 to 9999, got '${v}'`);
  return Number(v);
}

/** Release → pid of every nourish-link-app@<release> the sandbox runs (its pid files, as svc_active reads them). */
function runningGunicorns(appRoot: string): Record<string, number> {
  const run = path.join(appRoot, "run");
  const out: Record<string, number> = {};
  for (const f of fs.readdirSync(run).filter((n) => /^nourish-link-app@.+\.pid$/.test(n)).sort()) {
    const pid = Number(fs.readFileSync(path.join(run, f), "utf8"));
    try {
      process.kill(pid, 0);
      out[f.slice("nourish-link-app@".length, -".pid".length)] = pid;
    } catch { /* stopped */ }
  }
  return out;
}

export interface RehearsalOptions {
  log?: (line: string) => void;
  /** Keep the sandbox (for debugging); it is removed otherwise. */
  keep?: boolean;
}

export async function rehearse(o: RehearsalOptions = {}): Promise<Report> {
  const log = o.log ?? (() => undefined);
  const rate = loadRate();
  const started = Date.now();
  const hosts = await startLoopbackHosts();
  const { srv, port, appEnv, dbEnv, db, art, serving, missingOrders, preReleaseBackup } = hosts;
  const headers = { Host: DOMAIN, "X-Forwarded-Proto": "https" };
  try {
    const source = (a: Artifact) => ["--file", a.file, "--sha256", a.sha256];
    let menuItemId = 0;

    const drills: Drill[] = [];
    /** Runs `body` (the nourishctl steps) under load unless noLoad, then checks the outcome. */
    const drill = async (name: string, description: string, expected: Drill["expected"], noLoad: boolean,
      body: (d: Drill) => Promise<Ran>): Promise<Drill> => {
      log(`drill ${name}: ${description}`);
      const d: Drill = {
        name, description, passed: false, problems: [], expected, exitCode: 0, said: "", serving: "", mealsMigration: "", requestsSent: 0, requestsFailed: 0,
        byStatus: {}, ordersAcknowledged: 0, ordersMissing: 0, stepSeconds: {}, gunicorns: {},
      };
      const load = noLoad ? undefined : startLoad({ url: `http://127.0.0.1:${port}`, host: DOMAIN, menuItemId, rate });
      if (load) await sleep(1000);
      const ran = await body(d);
      // A drill proves nothing about dropped requests unless enough of them crossed it: a quick
      // one (a refused rollback) keeps the load on a little longer after nourishctl returned.
      if (load) {
        await sleep(1000);
        for (let waited = 0; load.answered() < MIN_REQUESTS && waited < 30_000; waited += 200) await sleep(200);
      }
      const result: LoadResult | undefined = await load?.stop();
      d.exitCode = ran.code;
      d.said = lastLine(ran);
      d.serving = await serving();
      d.gunicorns = runningGunicorns(hosts.appRoot);
      d.mealsMigration = db.psql("SELECT max(name) FROM django_migrations WHERE app = 'meals'", { db: "dusangire" }).trim();
      if (result) {
        d.requestsSent = result.sent;
        d.requestsFailed = result.failed;
        d.byStatus = result.byStatus;
        d.ordersAcknowledged = result.acknowledgedOrders.length;
        d.ordersMissing = missingOrders(result.acknowledgedOrders);
      }
      if ((ran.code === 0) !== (expected.exit === "ok")) d.problems.push(`nourishctl exited ${ran.code}, expected it to ${expected.exit === "ok" ? "succeed" : "fail"}: ${d.said}`);
      if (d.serving !== expected.serving) d.problems.push(`serving ${d.serving}, expected ${expected.serving}`);
      if (d.requestsFailed > 0) d.problems.push(`${d.requestsFailed} of ${d.requestsSent} requests failed: ${JSON.stringify(d.byStatus)}`);
      if (d.ordersMissing > 0) d.problems.push(`${d.ordersMissing} acknowledged orders are not in the database`);
      if (!noLoad && d.requestsSent === 0) d.problems.push("no load was sent");
      if (d.rollbackSeconds !== undefined && d.rollbackSeconds >= 5) d.problems.push(`rollback took ${d.rollbackSeconds}s (limit 5s)`);
      d.passed = d.problems.length === 0;
      log(`  ${d.passed ? "passed" : "FAILED"}: ${d.said}${d.problems.length ? `\n  ${d.problems.join("\n  ")}` : ""}`);
      drills.push(d);
      return d;
    };
    /** A whole release as the Release component runs it: one nourishctl step at a time, each timed. */
    const release = async (d: Drill, a: Artifact): Promise<Ran> => {
      const backup = await preReleaseBackup();
      let last: Ran | undefined;
      for (const step of ["fetch", "migrate", "collectstatic", "switch"]) {
        const extra = step === "fetch" ? source(a) : step === "switch" ? ["--pre-release-backup", backup] : [];
        last = await ctl(appEnv, ["release", step, a.version, ...extra]);
        d.stepSeconds[step] = round(last.seconds);
        if (last.code !== 0) break;
      }
      if (d.stepSeconds.switch !== undefined) d.switchSeconds = d.stepSeconds.switch;
      const m = /rolled back in ([0-9.]+)s|serving again ([0-9.]+)s after/.exec(last!.stderr + last!.stdout);
      if (m) {
        d.rollbackSeconds = round(Number(m[1] ?? m[2]));
        d.rollbackTotalSeconds = d.stepSeconds.switch;
      }
      return last!;
    };

    const rollback = async (d: Drill, args: string[]): Promise<Ran> => {
      const r = await ctl(appEnv, ["rollback", ...args]);
      d.rollbackTotalSeconds = round(r.seconds);
      const m = /serving again ([0-9.]+)s after/.exec(r.stdout);
      if (m) d.rollbackSeconds = round(Number(m[1]));
      return r;
    };
    const v1 = art("v1");
    const v2 = art("v2");
    await drill("first-release", `${v1.version} on a new host (maintenance page until then)`, { exit: "ok", serving: v1.version }, true,
      (d) => release(d, v1));
    menuItemId = Number(JSON.parse((await get(port, "/menu/", headers)).body)[0].id);
    // "Prod" at 1.0.0's schema, backed up now: the restore rehearsal drills at the end restore it
    // into this (staging) estate, which will have moved on to a newer release by then.
    log(`prod: a copy of the database with ${PROD_DB}'s own orders, backed up into prod's bucket`);
    const prod: ProdBackup = await prodBackup(hosts);

    await drill("upgrade-under-load", `${v1.version} → ${v2.version} (adds a field and its migration) under load`,
      { exit: "ok", serving: v2.version }, false, (d) => release(d, v2));
    await drill("bad-migration", `${art("bad-migration").version}: its second migration fails midway`,
      { exit: "fails", serving: v2.version }, false, (d) => release(d, art("bad-migration")));
    await drill("bad-health", `${art("bad-health").version}: healthy on its socket, failing behind nginx after the switch`,
      { exit: "fails", serving: v2.version }, false, (d) => release(d, art("bad-health")));
    // What `pulumi config set nourish-link:release.version 1.0.0; pulumi up` runs on the host.
    await drill("rollback", `release.version set back to ${v1.version}: the Release's steps roll ${v2.version} back, its migration reversed`,
      { exit: "ok", serving: v1.version }, false, (d) => release(d, v1));
    await drill("re-upgrade", `${v2.version} again (already installed: no fetch)`, { exit: "ok", serving: v2.version }, false, (d) => release(d, v2));
    const irr = art("irreversible");
    await drill("irreversible-release", `${irr.version}: a migration with no way back`, { exit: "ok", serving: irr.version }, false, (d) => release(d, irr));
    await drill("irreversible-rollback-refused", `nourishctl rollback from ${irr.version}: refused before touching anything`,
      { exit: "fails", serving: irr.version }, false, async (d) => {
        return rollback(d, []);
      });
    await drill("irreversible-rollback-keep-schema", `nourishctl rollback --keep-schema: ${v2.version}'s code on ${irr.version}'s schema`,
      { exit: "ok", serving: v2.version }, false, async (d) => {
        return rollback(d, [v2.version, "--keep-schema"]);
      });
    // The way back from an irreversible migration: the pre-release backup, restored on the db
    // host, then the previous release on it. Without load: a restore returns the database to the
    // backup's moment, so orders taken since then stay only in the database the restore keeps aside.
    await drill("irreversible-re-release", `${irr.version} again`, { exit: "ok", serving: irr.version }, false, (d) => release(d, irr));
    await drill("irreversible-rollback-restore", `the pre-release backup of ${irr.version} restored on the db host, then nourishctl rollback ${v2.version} --database-restored`,
      { exit: "ok", serving: v2.version }, true, async (d) => {
        const key = fs.readFileSync(path.join(srv, "releases", irr.version, ".nourish/pre-release-backup"), "utf8").trim();
        const restored = await ctl(dbEnv, ["restore", "--key", key, "--replace-live", "--yes"]);
        d.stepSeconds.restore = round(restored.seconds);
        if (restored.code !== 0) return restored;
        const kept = db.psql("SELECT datname FROM pg_database WHERE datname LIKE 'dusangire_before_restore_%' ORDER BY 1 DESC LIMIT 1").trim();
        const orders = (name: string) => Number(db.psql("SELECT count(*) FROM meals_order", { db: name }).trim());
        d.ordersOnlyInKeptDatabase = orders(kept) - orders("dusangire");
        d.keptDatabase = kept;
        return rollback(d, [v2.version, "--database-restored"]);
      });
    // Staging's weekly restore test, as `pulumi up` sends it through the SSM document. First with
    // prod's latest backup corrupted: it must fail loudly, publish nothing, change nothing.
    const serving2 = await serving();
    await drill("restore-rehearsal-corrupted", `prod's latest backup with one byte flipped: the rehearsal refuses it`,
      { exit: "fails", serving: serving2 }, true, async (d) => {
        const before = stagingState(hosts);
        const putBack = corrupt(hosts, prod.key);
        try {
          const { restore, verify } = await rehearseRestore(hosts, prod);
          // The app host's half has nothing to finish: it must refuse on its own too.
          const alone = await ctl(appEnv, ["restore-rehearsal-verify"]);
          const same = stagingState(hosts) === before;
          d.rehearsalChecks = { restoreExit: restore.code, verifyRan: verify !== undefined, verifyAloneExit: alone.code, stagingUnchanged: same, successMetric: publishedMetric(hosts, "RestoreRehearsalSuccess") };
          if (!/corrupted or truncated/.test(lastLine(restore))) d.problems.push(`the refusal does not say the backup is corrupted: ${lastLine(restore)}`);
          if (verify !== undefined) d.problems.push("the app host's step ran after a failed restore");
          if (alone.code === 0) d.problems.push("restore-rehearsal-verify succeeded without a rehearsal to verify");
          if (!same) d.problems.push("the staging database changed");
          if (publishedMetric(hosts, "RestoreRehearsalSuccess") !== undefined) d.problems.push("RestoreRehearsalSuccess was published");
          return restore;
        } finally {
          putBack();
        }
      });
    await drill("restore-rehearsal", `prod's backup ${prod.key} restored into staging, scrubbed, migrated to ${serving2}, checked, measured`,
      { exit: "ok", serving: serving2 }, true, async (d) => {
        const { restore, verify } = await rehearseRestore(hosts, prod);
        d.stepSeconds.restore = round(restore.seconds);
        if (!verify) return restore;
        d.stepSeconds.verify = round(verify.seconds);
        if (verify.code !== 0) return verify;
        const summary = JSON.parse(verify.stdout.trim().split("\n").pop() ?? "{}");
        d.rehearsal = summary;
        const orders = Number(db.psql("SELECT count(*) FROM meals_order", { db: "dusangire" }));
        const unscrubbed = Number(db.psql("SELECT count(*) FROM meals_subscription WHERE family_name NOT LIKE 'scrubbed-%'", { db: "dusangire" }));
        const kept = db.psql("SELECT datname FROM pg_database WHERE datname LIKE 'dusangire_before_restore_%' ORDER BY 1 DESC LIMIT 1");
        d.rehearsalChecks = {
          ordersInStaging: orders, ordersInProd: prod.orders, unscrubbedFamilyNames: unscrubbed, keptDatabase: kept,
          successMetric: publishedMetric(hosts, "RestoreRehearsalSuccess"), secondsMetric: publishedMetric(hosts, "RestoreRehearsalSeconds"),
          backupAgeMetric: publishedMetric(hosts, "RestoreRehearsalBackupAgeSeconds"),
        };
        if (summary.backupKey !== prod.key || summary.backupSha256 !== prod.sha256 || summary.ok !== true) d.problems.push(`summary names another backup: ${JSON.stringify(summary)}`);
        if (orders !== prod.orders) d.problems.push(`staging holds ${orders} orders, prod's backup ${prod.orders}`);
        if (unscrubbed !== 0) d.problems.push(`${unscrubbed} family names were not scrubbed`);
        if (!kept) d.problems.push("staging's previous database was not kept");
        if (publishedMetric(hosts, "RestoreRehearsalSuccess") !== "1") d.problems.push("RestoreRehearsalSuccess was not published");
        if (Number(publishedMetric(hosts, "RestoreRehearsalSeconds")) !== summary.seconds) d.problems.push("RestoreRehearsalSeconds is not the summary's seconds");
        return verify;
      });
    return { startedAt: new Date(started).toISOString(), loadRate: rate, seconds: round((Date.now() - started) / 1000), passed: drills.every((d) => d.passed), drills };
  } finally {
    await hosts.stop(o.keep);
  }
}

export function summary(r: Report): string {
  const lines = [`release rehearsal: ${r.passed ? "PASSED" : "FAILED"} (${r.drills.length} drills, ${r.seconds}s, load ${r.loadRate} req/s)`, ""];
  lines.push("| drill | passed | serving | requests (failed) | orders acked (missing) | switch s | rollback s (total) |");
  lines.push("|---|---|---|---|---|---|---|");
  for (const d of r.drills) {
    lines.push(`| ${d.name} | ${d.passed ? "yes" : "NO"} | ${d.serving} | ${d.requestsSent} (${d.requestsFailed}) | ${d.ordersAcknowledged} (${d.ordersMissing}) | ${d.switchSeconds ?? "—"} | ${d.rollbackSeconds ?? "—"}${d.rollbackTotalSeconds !== undefined ? ` (${d.rollbackTotalSeconds})` : ""} |`);
  }
  const rr = r.drills.find((d) => d.rehearsal)?.rehearsal;
  if (rr) lines.push("", `restore rehearsal: ${rr.backupKey} restored, migrated and serving in ${rr.seconds} s (RTO); backup ${rr.backupAgeSeconds} s old (RPO)`);
  lines.push("");
  for (const d of r.drills) {
    const kept = d.keptDatabase ? ` (${d.ordersOnlyInKeptDatabase} orders taken after the backup are in ${d.keptDatabase}, kept aside)` : "";
    lines.push(`- ${d.name}: ${d.description}${kept}. nourishctl: ${d.said}${d.problems.length ? ` PROBLEMS: ${d.problems.join("; ")}` : ""}`);
  }
  return lines.join("\n") + "\n";
}
