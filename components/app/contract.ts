// The app contract: what a release of the Django app must be for the app hosts to run it, what
// the hosts give it (its environment, the Debian packages under its virtualenv), and what its
// virtualenv must bring itself. One source of truth: docs/RELEASES.md's "App contract" block is rendered
// from it (`npm run -s app-contract`), the app hosts' user data installs APP_HOST_PACKAGES, and
// test/app-contract.test.ts holds the sample app (test/fixtures/dusangire) and the hosts to it.
// Pure: no Pulumi imports.
import { APP_PATHS } from "./paths";
import { SMOKE_COMMAND } from "./commands";

/** A variable of /etc/nourish-link/app.env (written by `nourishctl setup`, write_app_env in scripts/host/lib/setup.sh). */
export interface AppEnvVar {
  name: string;
  /** What the host puts there. */
  value: string;
  meaning: string;
  /** Read by libpq under the app's database driver, not by the app's own code. */
  readByLibpq?: true;
}

/** Exactly the variables the app receives, in the order app.env lists them. */
export const APP_ENV: readonly AppEnvVar[] = [
  { name: "DJANGO_SETTINGS_MODULE", value: "`dusangire.settings`", meaning: "the settings module (manage.py and the WSGI module default to it too)" },
  { name: "DJANGO_ALLOWED_HOSTS", value: "`nourish-link:domain`", meaning: "host names the site answers to, comma-separated" },
  { name: "DATABASE_HOST", value: "the database host's private address, or the RDS endpoint", meaning: "PostgreSQL server" },
  { name: "DATABASE_PORT", value: "`5432`", meaning: "its port" },
  { name: "DATABASE_NAME", value: "`nourish-link:database.name`", meaning: "the database" },
  { name: "DATABASE_USER", value: "`nourish-link:database.user`", meaning: "the role the app connects as (not a superuser)" },
  { name: "DATABASE_SSLMODE", value: "`require`", meaning: "libpq sslmode: the database accepts the app over TLS only" },
  { name: "PGCHANNELBINDING", value: "`require`", meaning: "read by libpq itself (no setting needed): only a SCRAM login bound to the server's TLS certificate is accepted, so a host posing as the database can neither ask for the password in clear nor relay the login", readByLibpq: true },
  { name: "DATABASE_PASSWORD", value: "SSM `/nourish-link/<stack>/db-password` (`nourish-link:dbPassword`)", meaning: "that role's password (secret)" },
  { name: "DJANGO_SECRET_KEY", value: "SSM `/nourish-link/<stack>/django-secret-key` (`nourish-link:djangoSecretKey`)", meaning: "Django's SECRET_KEY (secret)" },
  { name: "STATIC_ROOT", value: `\`${APP_PATHS.staticRoot}\``, meaning: "where `collectstatic` writes; nginx serves it at `/static/` (shared by releases: use hashed names)" },
  { name: "MEDIA_ROOT", value: `\`${APP_PATHS.mediaRoot}\``, meaning: "uploads; nginx serves it at `/media/`; besides the log and socket directories, the only place gunicorn may write" },
];

/** `vars` unchanged when it holds exactly the contract's variables; otherwise an error naming the difference. */
export function contractAppEnv(vars: Record<string, string>): Record<string, string> {
  const names = APP_ENV.map((v) => v.name);
  const extra = Object.keys(vars).filter((k) => !names.includes(k));
  const missing = names.filter((k) => !(k in vars));
  if (extra.length || missing.length) throw new Error(`app.env must hold exactly the app contract's variables (components/app/contract.ts): ${[...missing.map((k) => `${k} missing`), ...extra.map((k) => `${k} not in the contract`)].join(", ")}`);
  return vars;
}

/** Files at the artifact's root (the tarball's, or the git checkout's). */
export interface ArtifactEntry { path: string; rule: string }

export const ARTIFACT: { required: readonly ArtifactEntry[]; optional: readonly ArtifactEntry[]; forbidden: readonly ArtifactEntry[] } = {
  required: [
    { path: "manage.py", rule: "the Django project's; the release steps run its `migrate`, `showmigrations --list`, `collectstatic --noinput` and `check --deploy` as the app user with app.env's environment (`release fetch` refuses an artifact without it)" },
    { path: "requirements.txt", rule: "what the virtualenv installs, gunicorn included (`release fetch` refuses an artifact without it; it does not check that gunicorn is named, Debian's would then serve)" },
    { path: "dusangire/wsgi.py", rule: `the WSGI module: gunicorn's unit runs \`${APP_PATHS.wsgiModule}\`` },
  ],
  optional: [
    { path: "wheels/", rule: "when present, pip installs with `--no-index --find-links wheels/`: from those wheels and Debian's packages only (without it, from the host's configured index)" },
  ],
  forbidden: [
    { path: "venv/", rule: "the host builds the virtualenv" },
    { path: ".nourish", rule: "where nourishctl keeps its records of the release" },
  ],
};

/** The WSGI callable gunicorn's unit runs (components/app/gunicorn.ts). */
export const WSGI_MODULE = APP_PATHS.wsgiModule;

/** The interpreter every release's virtualenv is made from (RELEASE_PYTHON in scripts/host/lib/release.sh). */
export const RELEASE_PYTHON = "/usr/bin/python3";

/**
 * What the app gets from Debian through the virtualenv's `--system-site-packages`: a requirement
 * of requirements.txt that these satisfy installs nothing. Anything else the virtualenv must bring
 * (wheels/ or the index).
 */
export const SYSTEM_PYTHON_PACKAGES: readonly { requirement: string; debian: string; version: string }[] = [
  { requirement: "Django", debian: "python3-django", version: "3.2" },
  { requirement: "psycopg2", debian: "python3-psycopg2", version: "2.9" },
  { requirement: "gunicorn", debian: "gunicorn", version: "20.1" },
];

/**
 * The Debian packages an app host's user data installs for its role (awscli and
 * curl and unattended-upgrades come on every host, components/hosts/user-data.ts). certbot only when nginx
 * terminates TLS.
 */
export function appHostPackages(tls: "alb" | "nginx"): string[] {
  return ["nginx", "python3-venv", ...SYSTEM_PYTHON_PACKAGES.map((p) => p.debian), "curl", "logrotate", "ssl-cert", ...(tls === "nginx" ? ["certbot"] : [])];
}

const table = (head: string[], rows: string[][]): string =>
  [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");

/** docs/RELEASES.md's "App contract" block (between `<!-- app-contract:start -->` and `<!-- app-contract:end -->`). */
export function renderAppContract(): string {
  return [
    "What the artifact holds at its root (the tarball's, or the git checkout's):",
    "",
    table(["Path", "Rule"], [
      ...ARTIFACT.required.map((e) => [`\`${e.path}\``, `required: ${e.rule}`]),
      ...ARTIFACT.optional.map((e) => [`\`${e.path}\``, `optional: ${e.rule}`]),
      ...ARTIFACT.forbidden.map((e) => [`\`${e.path}\``, `refused by \`release fetch\`: ${e.rule}`]),
    ]),
    "",
    "What the app must do:",
    "",
    `- serve WSGI as \`${WSGI_MODULE}\`, which gunicorn (\`nourish-link-app@<version>\`) runs on the release's own unix socket;`,
    "- answer `release.healthPath` (default `/health/`) with 200 over plain HTTP, on that socket and through nginx (`X-Forwarded-Proto: https`, `Host: <domain>`), only when it can serve: the release steps, `release verify` and the ALB's health check ask it; an `X-Release: <version>` header, when sent, must name the release;",
    "- read its settings from exactly the environment below (no other variable), and put static files in `STATIC_ROOT` and uploads in `MEDIA_ROOT`;",
    `- optionally, a management command \`${SMOKE_COMMAND}\` that exercises the order path in a transaction it rolls back and exits non-zero when an order cannot be placed: when \`manage.py help --commands\` lists it, the smoke checks (\`nourishctl smoke\`: after a switch, where its failure rolls the release back, after a restore of the live database, in a restore rehearsal and the morning check) run it, after \`manage.py check --deploy\`, which must then report no warning but those of \`release.silencedChecks\`;`,
    "- keep working for a few seconds beside the previous release's schema (new columns nullable or with a database default): the old release serves until the switch, and again after a rollback.",
    "",
    `The environment (\`${APP_PATHS.envFile}\`, written by \`nourishctl setup\` and \`setup app-env\`, 0640 root:nourish; values are data, any printable characters, never evaluated):`,
    "",
    table(["Variable", "The host sets", "Meaning"], APP_ENV.map((v) => [`\`${v.name}\``, v.value, v.meaning])),
    "",
    `What the hosts install (Debian 12): ${appHostPackages("nginx").map((p) => `\`${p}\``).join(", ")} (\`certbot\` only with \`app.tls: nginx\`), and on every host \`awscli\`, \`curl\`, \`unattended-upgrades\` (the SSM and CloudWatch agents come from AWS: [AGENTS.md](AGENTS.md)). Each release's virtualenv is made by the app user from \`${RELEASE_PYTHON}\` (Python 3.11) with \`--system-site-packages\`, so these satisfy a requirement without installing anything:`,
    "",
    table(["Requirement", "Debian package", "Version"], SYSTEM_PYTHON_PACKAGES.map((p) => [`\`${p.requirement}\``, `\`${p.debian}\``, p.version])),
    "",
    "What the virtualenv must bring: everything else, and any other version of those. With `wheels/` pip installs only from it; when any line of `requirements.txt` carries `--hash=sha256:`, pip runs with `--require-hashes` (every requirement then needs its hash) and a mismatch fails the fetch, installing nothing.",
  ].join("\n");
}
