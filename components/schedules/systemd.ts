// systemd timers for the manual's scheduled procedures (rather than cron): each timer starts a
// oneshot service that runs one nourishctl verb. Persistent=true catches up a run missed while
// the host was off; RandomizedDelaySec keeps a fleet from hitting S3 or the database at once.
// Pure: validated by `systemd-analyze verify` in test/schedules.test.ts.
import { NOURISHCTL_PATH } from "../hosts/user-data";
import { isOnCalendar } from "./calendar";

export interface ScheduledJob {
  /** Unit name stem: nourish-link-<id>.timer / .service. */
  id: string;
  description: string;
  /** systemd OnCalendar expression, in `timezone`. */
  onCalendar: string;
  timezone: string;
  /** nourishctl arguments, e.g. ["backup"]. */
  verb: string[];
  randomizedDelay?: string;
  /** AccuracySec= (default 1min); a minutely job needs finer. */
  accuracy?: string;
  /** Units that must be up first, e.g. postgresql.service. */
  after?: string[];
  /** Runs on the first app host only (app-0): the app's own jobs and the smoke probe. */
  firstHostOnly?: true;
  /** An alarm of its own watches it (its id), instead of job-failed-<role>-<id>. */
  watchedBy?: string;
}

function unitName(job: ScheduledJob): string {
  if (!/^[a-z0-9-]+$/.test(job.id)) throw new Error(`scheduled job id must be lower-case words and dashes: ${job.id}`);
  return `nourish-link-${job.id}`;
}

export function renderTimer(job: ScheduledJob): string {
  const calendar = `${job.onCalendar} ${job.timezone}`;
  if (!isOnCalendar(calendar)) throw new Error(`${job.id}: not a systemd OnCalendar expression: ${calendar}`);
  return [
    "# Managed by nourish-link-infra (components/schedules). Do not edit on the host.",
    "[Unit]",
    `Description=NOURISH LINK: ${job.description} (timer)`,
    "",
    "[Timer]",
    `OnCalendar=${calendar}`,
    "Persistent=true",
    `RandomizedDelaySec=${job.randomizedDelay ?? "10min"}`,
    `AccuracySec=${job.accuracy ?? "1min"}`,
    `Unit=${unitName(job)}.service`,
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
  ].join("\n");
}

export function renderJobService(job: ScheduledJob, nourishctl = NOURISHCTL_PATH): string {
  const after = ["network-online.target", ...(job.after ?? [])];
  for (const a of job.verb) if (!/^[A-Za-z0-9._=:/-]+$/.test(a)) throw new Error(`${job.id}: unsafe argument ${JSON.stringify(a)}`);
  return [
    "# Managed by nourish-link-infra (components/schedules). Do not edit on the host.",
    "[Unit]",
    `Description=NOURISH LINK: ${job.description}`,
    `After=${after.join(" ")}`,
    "Wants=network-online.target",
    // A failed run publishes JobFailed with the job's name (lib/jobs.sh), which an alarm watches;
    // a job watched by an alarm of its own publishes its result itself.
    ...(job.watchedBy ? [] : [`OnFailure=${JOB_FAILED_UNIT}@${job.id}.service`]),
    "",
    "[Service]",
    // A oneshot unit is never started twice at once; nourishctl's own lock covers manual runs.
    "Type=oneshot",
    `ExecStart=${nourishctl} ${job.verb.join(" ")}`,
    "Nice=10",
    "IOSchedulingClass=best-effort",
    "IOSchedulingPriority=7",
    "",
  ].join("\n");
}

/** The template unit every job's OnFailure= starts, with the job's id as its instance. */
export const JOB_FAILED_UNIT = "nourish-link-job-failed";

export function renderJobFailedService(nourishctl = NOURISHCTL_PATH): string {
  return [
    "# Managed by nourish-link-infra (components/schedules). Do not edit on the host.",
    "[Unit]",
    "Description=NOURISH LINK: report the failure of job %i",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    `ExecStart=${nourishctl} job-failed %i`,
    "",
  ].join("\n");
}

/** The unit files of a job, at their paths on the host. */
export function jobUnits(job: ScheduledJob): { path: string; content: string }[] {
  const name = unitName(job);
  return [
    { path: `/etc/systemd/system/${name}.service`, content: renderJobService(job) },
    { path: `/etc/systemd/system/${name}.timer`, content: renderTimer(job) },
  ];
}
