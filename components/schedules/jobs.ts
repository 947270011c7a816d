// Which of the manual's scheduled procedures run on which host, and when (stack config).
import { StackConfig } from "../config";
import { HostFile } from "../hosts/cloud-init";
import { JOB_FAILED_UNIT, jobUnits, renderJobFailedService, ScheduledJob } from "./systemd";
import { JOB_ARGS_DIR, needsSmokeProbe, SMOKE_PROBE_SCHEDULE } from "../app/commands";

/** `nourishctl metrics` runs every minute: the database alarms' period is one minute. */
export const DB_METRICS_SCHEDULE = "*-*-* *:*:00";
/** `nourishctl restore-rehearsal-verify --report-age`, hourly: the stale-rehearsal alarm's heartbeat. */
export const REHEARSAL_AGE_SCHEDULE = "*-*-* *:17:00";

/**
 * The jobs of one host. `first`: the first app host (app-0), the one that also writes the weekly
 * and monthly reports (lib/report.sh); the others run only the weekly checks.
 */
export function scheduledJobs(config: StackConfig, role: "app" | "db", first = true): ScheduledJob[] {
  const tz = config.maintenance.timezone;
  const m = config.maintenance;
  const jobs: ScheduledJob[] = [
    // The morning checklist: fails (and the unit shows failed) when a service is down or disk is short.
    { id: "status", description: "morning check", onCalendar: m.healthCheckSchedule, timezone: tz, verb: ["status"], randomizedDelay: "2min" },
  ];
  // The manual's monthly log archival, to the backup bucket's logs/ prefix (lib/logs.sh).
  const logArchive: ScheduledJob = { id: "log-archive", description: "monthly log archival to the backup bucket", onCalendar: m.logArchiveSchedule, timezone: tz, verb: ["logs", "archive"], randomizedDelay: "30min" };
  if (role === "app" && config.backups.enabled) jobs.push(logArchive);
  // The app's own jobs (app.scheduledCommands), on the first app host.
  if (role === "app") jobs.push(...appCommandJobs(config));
  // Staging has no load balancer or uptime check: the first app host runs the smoke checks every
  // 5 minutes and publishes SmokeCheckFailed, which the app-smoke alarm watches.
  if (role === "app" && needsSmokeProbe(config)) {
    jobs.push({ id: "smoke-probe", description: "smoke checks every 5 minutes (no load balancer or uptime check watches this stack)", onCalendar: SMOKE_PROBE_SCHEDULE, timezone: tz, verb: ["smoke", "--publish"], randomizedDelay: "0", accuracy: "1s", firstHostOnly: true, watchedBy: "app-smoke" });
  }
  // The manual's weekly security check and update review, on the live release (lib/report.sh).
  // On app-0 also the week's and the month's report from CloudWatch (lib/report.sh).
  if (role === "app") {
    jobs.push({ id: "weekly-report", description: "weekly deploy check and outdated packages", onCalendar: m.weeklyReportSchedule, timezone: tz, verb: ["report", "weekly", ...(first ? [] : ["--checks-only"])], randomizedDelay: "30min" });
    jobs.push({ id: "monthly-report", description: "last month's report", onCalendar: m.monthlyReportSchedule, timezone: tz, verb: ["report", "monthly"], randomizedDelay: "30min", firstHostOnly: true });
  }
  // Staging's weekly restore rehearsal (lib/rehearsal-verify.sh): the app hosts finish what the
  // database host restored, and report hourly how long ago a rehearsal last succeeded (the alarm).
  if (role === "app" && config.rehearsal.enabled && !config.database.managed) {
    jobs.push(
      { id: "restore-rehearsal-verify", description: "weekly restore rehearsal: migrate, check and measure prod's restored backup", onCalendar: config.rehearsal.verifySchedule, timezone: tz, verb: ["restore-rehearsal-verify"] },
      { id: "restore-rehearsal-age", description: "age of the last successful restore rehearsal to CloudWatch", onCalendar: REHEARSAL_AGE_SCHEDULE, timezone: tz, verb: ["restore-rehearsal-verify", "--report-age"], randomizedDelay: "0" },
    );
  }
  if (role === "db" && !config.database.managed) {
    const pg = ["postgresql.service"];
    jobs.push(
      { id: "vacuum", description: "weekly VACUUM ANALYZE", onCalendar: m.vacuumSchedule, timezone: tz, verb: ["maintain", "vacuum"], after: pg },
      { id: "reindex", description: "monthly REINDEX and ANALYZE", onCalendar: m.reindexSchedule, timezone: tz, verb: ["maintain", "reindex"], after: pg },
    );
    // The manual's "corruption": pg_amcheck of the app's database, weekly (lib/db.sh); DbCorruption's alarm.
    jobs.push({ id: "db-check", description: "weekly pg_amcheck of the app's database", onCalendar: m.dbCheckSchedule, timezone: tz, verb: ["db", "check"], after: pg, randomizedDelay: "15min" });
    // The database's health numbers for the alarms and the dashboard (scripts/host/lib/metrics.sh).
    jobs.push({ id: "metrics", description: "database metrics to CloudWatch", onCalendar: DB_METRICS_SCHEDULE, timezone: tz, verb: ["metrics"], after: pg, randomizedDelay: "0", accuracy: "1s" });
    if (config.backups.enabled) {
      jobs.push({ id: "backup", description: "nightly database backup", onCalendar: config.backups.schedule, timezone: tz, verb: ["backup"], after: pg, randomizedDelay: "15min" });
      // The manual's weekly backup verification: the newest dump in the bucket downloaded, its
      // SHA-256 checked against its manifest, and read back with pg_restore --list (no server needed).
      jobs.push({ id: "verify-backup", description: "weekly verification of the latest backup", onCalendar: m.verifyBackupSchedule, timezone: tz, verb: ["backups", "verify", "--latest"], randomizedDelay: "15min" });
      // Monthly, every retained backup: one corrupted in the bucket is found before a restore needs it.
      jobs.push({ id: "verify-all-backups", description: "monthly verification of every retained backup", onCalendar: m.verifyAllBackupsSchedule, timezone: tz, verb: ["backups", "verify", "--all"], randomizedDelay: "15min" });
    }
    if (config.backups.enabled) jobs.push(logArchive);
    // The manual's weekly restore test: prod's latest backup into this (staging) database (lib/rehearsal.sh).
    if (config.rehearsal.enabled) {
      jobs.push({ id: "restore-rehearsal", description: "weekly restore rehearsal of prod's latest backup", onCalendar: config.rehearsal.schedule, timezone: tz, verb: ["restore-rehearsal", "--latest"], after: pg });
    }
    if (config.backups.enabled && config.backups.pitr) {
      // pgBackRest picks full (weekly) or differential itself; WAL is archived continuously.
      jobs.push({ id: "pitr-backup", description: "pgBackRest backup for point-in-time recovery", onCalendar: "*-*-* 01:00:00", timezone: tz, verb: ["pitr", "backup"], after: pg, randomizedDelay: "15min" });
    }
  }
  // app-1, … run none of the first host's own (the app's jobs, the smoke probe, the reports).
  return first ? jobs : jobs.filter((j) => !j.firstHostOnly);
}

/**
 * The app's own jobs (app.scheduledCommands), on the first app host: `nourishctl job run NAME` runs
 * the live release's manage.py with the arguments of /etc/nourish-link/jobs/NAME.args.
 */
export function appCommandJobs(config: StackConfig): ScheduledJob[] {
  return config.app.scheduledCommands.map((c) => ({
    id: `manage-${c.name}`, description: `the app's ${c.name} (manage.py ${c.command.join(" ")})`, onCalendar: c.schedule,
    timezone: config.maintenance.timezone, verb: ["job", "run", c.name], randomizedDelay: "5min", firstHostOnly: true,
  }));
}

/** A scheduled command's arguments as the host reads them: one per line, never through a shell. */
export function jobArgsFiles(config: StackConfig): HostFile[] {
  return config.app.scheduledCommands.map((c) => ({ path: `${JOB_ARGS_DIR}/${c.name}.args`, content: `${c.command.join("\n")}\n` }));
}

/** The unit files of a role's jobs; `hostIndex` > 0 (app-1, …) leaves out the first host's own. */
export function scheduleFiles(config: StackConfig, role: "app" | "db", hostIndex = 0): HostFile[] {
  const first = hostIndex === 0;
  return [
    ...scheduledJobs(config, role, first).flatMap(jobUnits),
    ...(role === "app" && first ? jobArgsFiles(config) : []),
    { path: `/etc/systemd/system/${JOB_FAILED_UNIT}@.service`, content: renderJobFailedService() },
  ];
}
