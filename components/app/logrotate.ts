// logrotate stanza for the app host's logs.
import { safeValue } from "./paths";

/**
 * Days a rotated log stays on an app host. With the monthly archive (backups.enabled) rotation
 * must not delete a log before `nourishctl logs archive` has it in the bucket: the archive runs on
 * the 1st, when the month's oldest log is 31 days old, and deletes what S3 has checked; 62 days
 * leave a failed run a month to be rerun (`logs archive YYYYMM`) before anything is lost. Without
 * an archive, two weeks (the manual's).
 */
export function rotatedLogDays(archived: boolean): number {
  return archived ? 62 : 14;
}

/** postrotate for nginx logs: USR1 makes the master reopen its log files. */
export const NGINX_REOPEN_LOGS = "[ -s /run/nginx.pid ] && kill -USR1 $(cat /run/nginx.pid) || true";

export interface LogrotateSettings {
  paths: string[];
  /** Days kept (daily rotation, so also the number of rotated files). */
  days: number;
  /** Shell run once after rotating (sharedscripts), e.g. NGINX_REOPEN_LOGS. */
  postrotate?: string;
  /** `create` mode owner group for the fresh log. Default "0640 www-data adm" (nginx's). */
  create?: string;
  /** `su` user group that owns the log directory. Default "root adm". */
  su?: string;
}

export function renderLogrotate(s: LogrotateSettings): string {
  if (s.paths.length === 0) throw new Error("logrotate: at least one path is required");
  if (!Number.isInteger(s.days) || s.days < 1) throw new Error(`logrotate: days must be a positive integer, got ${s.days}`);
  // Globs are allowed in paths; whitespace and braces would change the stanza.
  const paths = s.paths.map((p) => {
    const v = safeValue("logrotate path", p, /["'`;{}\\\s$#]/);
    if (!v.startsWith("/")) throw new Error(`logrotate path must be absolute, got ${p}`);
    return v;
  });
  const create = safeValue("logrotate create", s.create ?? "0640 www-data adm", /[^A-Za-z0-9 _.-]/);
  const su = safeValue("logrotate su", s.su ?? "root adm", /[^A-Za-z0-9 _.-]/);
  const post = s.postrotate?.trim();
  if (post !== undefined && /\bendscript\b/.test(post)) throw new Error("logrotate postrotate may not contain 'endscript'");
  return [
    "# Managed by nourish-link-infra (components/app/logrotate.ts). Do not edit on the host.",
    `${paths.join(" ")} {`,
    "    daily",
    `    rotate ${s.days}`,
    `    maxage ${s.days}`,
    "    compress",
    // The writer may still hold yesterday's file until it reopens: compress it next round.
    "    delaycompress",
    "    missingok",
    "    notifempty",
    `    create ${create}`,
    `    su ${su}`,
    ...(post ? ["    sharedscripts", "    postrotate", ...post.split("\n").map((l) => `        ${l}`), "    endscript"] : []),
    "}",
    "",
  ].join("\n");
}
