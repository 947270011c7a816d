// Fixed host layout of the app host. Renderers take these as defaults; every one can be
// overridden through the renderer's settings so tests can render into a temp prefix.
export const APP_PATHS = {
  root: "/srv/nourish-link",
  current: "/srv/nourish-link/current",
  staticRoot: "/srv/nourish-link/shared/static",
  mediaRoot: "/srv/nourish-link/shared/media",
  maintenanceRoot: "/srv/nourish-link/maintenance",
  maintenanceFlag: "/srv/nourish-link/maintenance/on",
  envFile: "/etc/nourish-link/app.env",
  logDir: "/var/log/nourish-link",
  socket: "/run/nourish-link/gunicorn.sock",
  gunicornBin: "/srv/nourish-link/current/venv/bin/gunicorn",
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
