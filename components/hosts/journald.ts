// journald's own settings on every host: a journald.conf.d drop-in (journald.conf(5)). Pure.

export const JOURNALD_DROPIN_PATH = "/etc/systemd/journald.conf.d/nourish-link.conf";

/**
 * A persistent journal (it survives a reboot, for the monthly archive to export) capped at
 * `maxMb` (monitoring.journalMaxMb): journald deletes its oldest archived files beyond it.
 */
export function renderJournaldConf(s: { maxMb: number }): string {
  if (!Number.isInteger(s.maxMb) || s.maxMb < 1) throw new Error(`journald: maxMb must be a positive integer, got ${s.maxMb}`);
  return [
    "# Managed by nourish-link-infra (components/hosts/journald.ts). Do not edit on the host.",
    "[Journal]",
    "Storage=persistent",
    `SystemMaxUse=${s.maxMb}M`,
    "",
  ].join("\n");
}
