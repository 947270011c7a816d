// `npm run rehearse` end to end: every drill of the release rehearsal on loopback (real
// PostgreSQL, nginx, gunicorn, the sample app), read back from out/…/report.json.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Drill, loadRate, Report } from "../scripts/rehearsal/run";
import { requireTool } from "./tools";

describe("npm run rehearse: releases and rollbacks under load on loopback", function () {
  this.timeout(1_800_000);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-rehearse-out-"));
  let report: Report;
  let output = "";
  let code: number | null = null;
  const drill = (name: string): Drill => {
    const d = report.drills.find((x) => x.name === name);
    assert.ok(d, `the report has no drill ${name}; it has ${report.drills.map((x) => x.name).join(", ")}`);
    return d;
  };

  before(async () => {
    for (const t of ["nginx", "curl", "ss", "flock"]) requireTool(t);
    // Exactly the package.json script, with the report written to a temp dir.
    const script = JSON.parse(fs.readFileSync("package.json", "utf8")).scripts.rehearse as string;
    const [cmd, ...args] = script.split(" ");
    code = await new Promise<number | null>((resolve) => {
      const child = spawn(cmd, [...args, "--out", out], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.on("data", (c) => (output += c));
      child.stderr.on("data", (c) => (output += c));
      child.on("close", resolve);
    });
    report = JSON.parse(fs.readFileSync(path.join(out, "report.json"), "utf8")) as Report;
  });
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it("passes every drill and exits 0, with a readable summary beside the report", () => {
    const failed = report.drills.filter((d) => !d.passed).map((d) => `${d.name}: ${d.problems.join("; ")}`);
    assert.deepStrictEqual(failed, [], output.slice(-3000));
    assert.strictEqual(code, 0, output.slice(-3000));
    assert.strictEqual(report.passed, true);
    assert.match(fs.readFileSync(path.join(out, "summary.md"), "utf8"), /release rehearsal: PASSED/);
  });

  it("offers 25 req/s unless REHEARSAL_LOAD_RATE says otherwise, records the rate, and refuses a rate that is not a number", () => {
    assert.strictEqual(report.loadRate, 25);
    assert.match(fs.readFileSync(path.join(out, "summary.md"), "utf8"), /load 25 req\/s/);
    assert.strictEqual(loadRate({ REHEARSAL_LOAD_RATE: "120" }), 120);
    for (const bad of ["0", "fast", "-5", "1e3", "12.5"]) {
      assert.throws(() => loadRate({ REHEARSAL_LOAD_RATE: bad }), new RegExp(`^Error: REHEARSAL_LOAD_RATE must be a whole number of requests per second from 1 to 9999, got '${bad.replace(".", "\\.")}'$`));
    }
  });

  it("drops no request and loses no acknowledged order in any drill under load", () => {
    const loaded = report.drills.filter((d) => !["first-release", "irreversible-rollback-restore", "restore-rehearsal-corrupted", "restore-rehearsal"].includes(d.name));
    assert.ok(loaded.length >= 7);
    for (const d of loaded) {
      assert.ok(d.requestsSent > 100, `${d.name}: only ${d.requestsSent} requests were sent`);
      assert.strictEqual(d.requestsFailed, 0, `${d.name}: ${JSON.stringify(d.byStatus)}`);
      assert.ok(d.ordersAcknowledged > 50, `${d.name}: only ${d.ordersAcknowledged} orders acknowledged`);
      assert.strictEqual(d.ordersMissing, 0, d.name);
    }
  });

  it("upgrades v1 → v2 with its migration applied", () => {
    assert.strictEqual(drill("first-release").serving, "1.0.0");
    const up = drill("upgrade-under-load");
    assert.strictEqual(up.serving, "1.1.0");
    assert.strictEqual(up.mealsMigration, "0003_order_notes");
    assert.ok(up.switchSeconds! > 0);
  });

  it("a migration failing midway leaves v2 serving and its first migration reversed", () => {
    const d = drill("bad-migration");
    assert.notStrictEqual(d.exitCode, 0);
    assert.match(d.said, /1\.2\.0 failed to migrate .*database moved back to where it was/);
    assert.strictEqual(d.serving, "1.1.0");
    assert.strictEqual(d.mealsMigration, "0003_order_notes");
  });

  it("a release failing verification after the switch rolls itself back in under 5 s and says why", () => {
    const d = drill("bad-health");
    assert.notStrictEqual(d.exitCode, 0);
    assert.match(d.said, /1\.2\.1 failed verification after the switch \(.*answered 500 through nginx\); rolled back in [0-9.]+s to 1\.1\.0 \(migrations: reversed/);
    assert.strictEqual(d.serving, "1.1.0");
    assert.strictEqual(d.mealsMigration, "0003_order_notes");
    assert.ok(d.rollbackSeconds !== undefined && d.rollbackSeconds < 5, `rollback took ${d.rollbackSeconds}s`);
  });

  it("setting release.version back to v1 (the Release's steps) returns to v1 in under 5 s and reverses v2's migration", () => {
    const d = drill("rollback");
    assert.strictEqual(d.exitCode, 0, d.said);
    assert.match(d.said, /rollback: 1\.0\.0 is serving \(was 1\.1\.0; .*migrations: reversed: meals 0002_seed_menu/);
    assert.strictEqual(d.serving, "1.0.0");
    assert.strictEqual(d.mealsMigration, "0002_seed_menu");
    assert.ok(d.rollbackSeconds !== undefined && d.rollbackSeconds < 5, `rollback took ${d.rollbackSeconds}s`);
  });

  it("keeps the replaced release's gunicorn as an idle warm standby, and rolls back to that very process", () => {
    const up = drill("upgrade-under-load");
    assert.deepStrictEqual(Object.keys(up.gunicorns), ["1.0.0", "1.1.0"], "after 1.0.0 → 1.1.0: the live release and the standby");
    // A failed release changes nothing about the standby; the rollback reuses it, not a new start.
    assert.strictEqual(drill("bad-health").gunicorns["1.0.0"], up.gunicorns["1.0.0"]);
    const back = drill("rollback");
    assert.deepStrictEqual(Object.keys(back.gunicorns), ["1.0.0"], "the release rolled back from is stopped");
    assert.strictEqual(back.gunicorns["1.0.0"], up.gunicorns["1.0.0"], "1.0.0 served by the standby started at the upgrade");
    // Only one standby: the release before it is stopped.
    assert.deepStrictEqual(Object.keys(drill("irreversible-release").gunicorns), ["1.1.0", "1.3.0"]);
  });

  it("an irreversible migration: nourishctl rollback refuses before touching anything and names the pre-release backup", () => {
    assert.strictEqual(drill("irreversible-release").serving, "1.3.0");
    const d = drill("irreversible-rollback-refused");
    assert.strictEqual(d.exitCode, 3, d.said);
    assert.match(d.said, /refused, nothing changed \(1\.3\.0 still serving\): irreversible: meals\.0004_round_menu_prices.*pre-release backup dumps\/daily\/db_backup_\d{8}_\d{6}\.dump/);
    assert.strictEqual(d.serving, "1.3.0");
    assert.strictEqual(d.mealsMigration, "0004_round_menu_prices");
    const kept = drill("irreversible-rollback-keep-schema");
    assert.strictEqual(kept.serving, "1.1.0");
    assert.strictEqual(kept.mealsMigration, "0004_round_menu_prices");
    assert.ok(kept.rollbackSeconds! < 5);
  });

  it("staging's restore rehearsal refuses prod's corrupted backup loudly, publishes nothing and changes nothing", () => {
    const d = drill("restore-rehearsal-corrupted");
    assert.notStrictEqual(d.exitCode, 0);
    assert.match(d.said, /restore: backup dumps\/daily\/db_backup_\d{8}_\d{6}\.dump is corrupted or truncated: sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}; refusing it/);
    // The report is JSON, read back: a metric never published has no key at all.
    const { successMetric, ...checks } = d.rehearsalChecks ?? {};
    assert.deepStrictEqual(checks, { restoreExit: 1, verifyRan: false, verifyAloneExit: 1, stagingUnchanged: true });
    assert.strictEqual(successMetric, undefined, `RestoreRehearsalSuccess was published: ${successMetric}`);
    assert.strictEqual(d.serving, "1.1.0");
  });

  it("staging's restore rehearsal restores prod's backup through the document, scrubbed and migrated, and publishes its RTO and RPO", () => {
    const d = drill("restore-rehearsal");
    assert.strictEqual(d.exitCode, 0, d.said);
    assert.strictEqual(d.serving, "1.1.0");
    assert.strictEqual(d.mealsMigration, "0003_order_notes", "prod's 1.0.0 schema migrated to the serving release");
    const r = d.rehearsal!;
    assert.deepStrictEqual(Object.keys(r), ["ok", "at", "backupKey", "backupSha256", "seconds", "backupAgeSeconds"]);
    assert.strictEqual(r.ok, true);
    assert.match(r.backupKey, /^dumps\/daily\/db_backup_\d{8}_\d{6}\.dump$/);
    assert.ok(r.seconds > 0 && r.seconds < 600, `RTO ${r.seconds} s`);
    assert.ok(r.backupAgeSeconds > 0, `RPO ${r.backupAgeSeconds} s`);
    const c = d.rehearsalChecks!;
    assert.strictEqual(c.ordersInStaging, c.ordersInProd);
    assert.strictEqual(c.unscrubbedFamilyNames, 0);
    assert.match(String(c.keptDatabase), /^dusangire_before_restore_\d{8}_\d{6}$/);
    assert.strictEqual(c.successMetric, "1");
    assert.strictEqual(Number(c.secondsMetric), r.seconds);
    assert.strictEqual(Number(c.backupAgeMetric), r.backupAgeSeconds);
    assert.match(fs.readFileSync(path.join(out, "summary.md"), "utf8"), /restore rehearsal: dumps\/daily\/db_backup_\d{8}_\d{6}\.dump restored, migrated and serving in [0-9.]+ s \(RTO\)/);
  });

  it("the way back from an irreversible migration: its pre-release backup restored, then the previous release on it", () => {
    assert.strictEqual(drill("irreversible-re-release").serving, "1.3.0");
    const d = drill("irreversible-rollback-restore");
    assert.strictEqual(d.exitCode, 0, d.said);
    assert.match(d.said, /rollback: 1\.1\.0 is serving \(was 1\.3\.0; .*migrations: none \(database restored from the pre-release backup\)/);
    assert.strictEqual(d.serving, "1.1.0");
    assert.strictEqual(d.mealsMigration, "0003_order_notes");
    // Nothing destroyed: what the backup predates is in the database the restore kept aside.
    assert.match(d.keptDatabase!, /^dusangire_before_restore_/);
    assert.ok(d.ordersOnlyInKeptDatabase! > 0, `kept database holds ${d.ordersOnlyInKeptDatabase} newer orders`);
  });
});
