// Env files the hosts receive (host.env): data in systemd's EnvironmentFile= syntax, which
// nourishctl reads with one parser (ENV_FILE_PARSER in scripts/host/nourishctl) and never sources.
// Pure; the same quoting as env_line in scripts/host/lib/setup.sh.

/** Values that need no quotes; anything else is written "double-quoted", \ " ` $ escaped. */
const PLAIN = /^[A-Za-z0-9_./:@,+%=-]*$/;

/** `KEY=VALUE` lines, quoted so that systemd and nourishctl read back exactly `vars`. */
export function renderEnvFile(what: string, vars: Record<string, string>): string {
  return Object.entries(vars).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`${what}: ${JSON.stringify(k)} is not a variable name`);
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(v)) throw new Error(`${what}: the value of ${k} has a control character (a newline?)`);
    return PLAIN.test(v) ? `${k}=${v}\n` : `${k}="${v.replace(/[\\"`$]/g, (c) => `\\${c}`)}"\n`;
  }).join("");
}
