// What the app hosts accept as the app's own scheduled commands (app.scheduledCommands) and as
// Django check ids to silence (release.silencedChecks): patterns both config.ts and the renderers
// read. The host reads a command back as data, one argument per line, and runs it without a shell
// (`nourishctl job run`, scripts/host/lib/app-jobs.sh), so these patterns admit no whitespace and
// no character a shell or systemd would interpret. No imports: config.ts is a leaf.

/** A scheduled command's name: its unit is nourish-link-manage-<name>. */
export const COMMAND_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
/** The manage.py command itself: Django's command names are Python module names. */
export const MANAGE_COMMAND = /^[a-z][a-z0-9_]*$/;
/** One argument after it: letters, digits and . , _ : = @ + / - (no space, quote, $, %, ;, &, |, <, >, *, ?). */
export const MANAGE_ARGUMENT = /^[A-Za-z0-9._,:=@+/-]+$/;
/** A Django system check warning id, such as security.W004 (errors are never silenced). */
export const CHECK_WARNING_ID = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.W\d{3}$/;

/** The manage.py command of the app contract that exercises the order path and rolls it back. */
export const SMOKE_COMMAND = "smoke";

/** Where the app hosts find a scheduled command's arguments (one per line; `nourishctl job run NAME`). */
export const JOB_ARGS_DIR = "/etc/nourish-link/jobs";

/**
 * Whether nothing outside the stack watches the site (no load balancer health check, no Route 53
 * uptime check, as on staging): then the first app host probes it itself (`nourishctl smoke
 * --publish` every 5 minutes) and an alarm watches the probe.
 */
export function needsSmokeProbe(c: { app: { tls: string }; monitoring: { uptimeCheck: boolean } }): boolean {
  return c.app.tls !== "alb" && !c.monitoring.uptimeCheck;
}
/** When the probe runs: every 5 minutes. */
export const SMOKE_PROBE_SCHEDULE = "*-*-* *:00/5:00";
/** What the probe publishes each run: 1 when a smoke check failed, 0 when all passed. */
export const SMOKE_METRIC = "SmokeCheckFailed";
