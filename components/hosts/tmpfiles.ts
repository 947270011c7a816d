// systemd-tmpfiles rules on every host (tmpfiles.d(5)). Pure.
//
// Debian 12's /usr/lib/tmpfiles.d/tmp.conf empties /tmp at boot only and leaves /var/tmp alone
// (its 30-day rule is commented out); a host that runs for months fills them. This file replaces
// it (same name in /etc wins) and systemd-tmpfiles-clean.timer (daily) applies the ages. The
// app's temporary files (Django's upload spool, anything gunicorn writes to /tmp) live in the
// unit's PrivateTmp under /tmp/systemd-private-*: systemd-tmp.conf keeps those directories (x)
// and cleans their contents (X) by the same age.

export const TMPFILES_PATH = "/etc/tmpfiles.d/tmp.conf";

/**
 * A file goes when it has been neither read nor written for the age (`am:` = atime and mtime;
 * a chmod or a copy's birth time do not keep it).
 */
export function renderTmpfilesConf(s: { tmpDays: number; varTmpDays: number }): string {
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`tmpfiles: ${k} must be a positive integer, got ${v}`);
  }
  return [
    "# Managed by nourish-link-infra (components/hosts/tmpfiles.ts). Do not edit on the host.",
    `D /tmp 1777 root root am:${s.tmpDays}d`,
    `q /var/tmp 1777 root root am:${s.varTmpDays}d`,
    // nourishctl's scratch directories a killed run left behind: nothing uses them at boot.
    "R /var/backups/nourish-link/.verify.*",
    "R /var/backups/nourish-link/.restore.*",
    "R /var/backups/nourish-link/.rehearsal.*",
    "R /srv/nourish-link/releases/.fetch-*",
    "",
  ].join("\n");
}
