// Self-healing for the services Debian's packages ship: systemd drop-ins that restart nginx and the
// PostgreSQL cluster after a crash, with a start limit so a service that cannot start stops
// retrying (and `nourishctl status` and the process-down alarm report it) instead of looping.
// Pure; `systemd-analyze verify` checks the rendered drop-ins against the packages' own units
// (test/self-healing.test.ts). gunicorn's own unit already restarts on failure (app/gunicorn.ts).

/** The cluster's own unit (Debian's `postgresql.service` is a oneshot that stays active when it dies). */
export const PG_CLUSTER_UNIT = "postgresql@15-main.service";

export interface RestartPolicy {
  /** Seconds between a crash and the restart. */
  restartSec: number;
  /** At most `burst` starts within `intervalSec`; then the unit stays failed. */
  burst: number;
  intervalSec: number;
}

export const DEFAULT_RESTART: RestartPolicy = { restartSec: 5, burst: 5, intervalSec: 600 };

export function renderRestartDropIn(unit: string, p: RestartPolicy = DEFAULT_RESTART): string {
  if (!(p.burst >= 1 && p.restartSec >= 1 && p.intervalSec > p.burst * p.restartSec)) {
    throw new Error(`${unit}: start limit interval ${p.intervalSec} s must exceed ${p.burst} restarts x ${p.restartSec} s, or the limit never trips`);
  }
  return [
    "# Managed by nourish-link-infra (components/hosts/restart.ts). Do not edit on the host.",
    "[Unit]",
    `StartLimitIntervalSec=${p.intervalSec}`,
    `StartLimitBurst=${p.burst}`,
    "",
    "[Service]",
    "Restart=on-failure",
    `RestartSec=${p.restartSec}`,
    "",
  ].join("\n");
}

/** The drop-ins of a host role, at their paths on the host. */
export function restartDropIns(role: "app" | "db"): { path: string; content: string }[] {
  const unit = role === "app" ? "nginx.service" : PG_CLUSTER_UNIT;
  return [{ path: `/etc/systemd/system/${unit}.d/nourish-link-restart.conf`, content: renderRestartDropIn(unit) }];
}
