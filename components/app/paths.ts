// Fixed host layout of the app host. Renderers take these as defaults; every one can be
// overridden through the renderer's settings so tests can render into a temp prefix.
export const APP_PATHS = {
  root: "/srv/nourish-link",
  current: "/srv/nourish-link/current",
  releases: "/srv/nourish-link/releases",
  staticRoot: "/srv/nourish-link/shared/static",
  mediaRoot: "/srv/nourish-link/shared/media",
  maintenanceRoot: "/srv/nourish-link/maintenance",
  maintenanceFlag: "/srv/nourish-link/maintenance/on",
  envFile: "/etc/nourish-link/app.env",
  logDir: "/var/log/nourish-link",
  /** Each release's gunicorn listens on app-<version>.sock here; app.sock is a hard link to the live one. */
  runDir: "/run/nourish-link",
  socket: "/run/nourish-link/app.sock",
  user: "nourish",
  wsgiModule: "dusangire.wsgi:application",
} as const;

/**
 * Rejects a value that would break out of the config line it is written into (quotes,
 * separators, newlines), so a bad setting fails at render time instead of on the host.
 */
export function safeValue(what: string, value: string, forbidden: RegExp = /["'`;{}\\\s$#]/): string {
  if (value === "" || forbidden.test(value)) throw new Error(`${what}: unsafe or empty value ${JSON.stringify(value)}`);
  return value;
}
