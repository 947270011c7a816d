// gunicorn under systemd: one template unit, one instance per release (nourish-link-app@<version>).
// Each instance listens on its own socket; nginx always connects to app.sock, a hard link that
// `nourishctl release switch` moves atomically (rename(2)) from the old release's socket to the
// new one once the new one is healthy. No nginx reload, no gunicorn HUP: a connection reaches
// either the old or the new listener, never neither.
import { APP_PATHS, safeValue } from "./paths";

/** The template; an instance is `nourish-link-app@<version>.service`. */
export const GUNICORN_SERVICE_NAME = "nourish-link-app@.service";
export const appServiceName = (version: string): string => `nourish-link-app@${version}.service`;

/** gunicorn's rule of thumb, 2 × vCPU + 1, bounded to [3, max] (memory, not CPU, is the limit on big hosts). */
export function gunicornWorkers(vcpus: number, max = 12): number {
  if (!Number.isInteger(vcpus) || vcpus < 1) throw new Error(`vcpus must be a positive integer, got ${vcpus}`);
  if (!Number.isInteger(max) || max < 3) throw new Error(`max workers must be an integer >= 3, got ${max}`);
  return Math.min(max, 2 * vcpus + 1);
}

export interface GunicornServiceSettings {
  workers: number;
  /** Worker timeout; keep below nginx's proxy_read_timeout. Default 30. */
  timeoutSeconds?: number;
  /** Time workers get to finish requests on stop. Default 30. */
  gracefulTimeoutSeconds?: number;
  /** Recycle a worker after this many requests (with 10% jitter) to contain leaks; 0 = never. Default 1000. */
  maxRequests?: number;
  user?: string;
  group?: string;
  /** Holds one directory per release (the instance name). */
  releasesDir?: string;
  /** Where the sockets live (recreated at start: /run is a tmpfs). */
  runDir?: string;
  /** Group that may connect to the sockets (nginx's). Default www-data. */
  socketGroup?: string;
  envFile?: string;
  wsgiModule?: string;
  /** Run after the instance is up (re-publishes the live socket after a reboot). */
  execStartPost?: string;
  /** Writable despite ProtectSystem=strict. Default: media root and the log directory. */
  readWritePaths?: string[];
}

function int(what: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new Error(`${what} must be an integer >= ${min}, got ${v}`);
  return v;
}

// systemd unit values: no whitespace, quotes or specifiers that would change their meaning.
const unitValue = (what: string, v: string): string => safeValue(what, v, /["'`;\\\s%$]/);

export function renderGunicornService(s: GunicornServiceSettings): string {
  const workers = int("workers", s.workers, 1);
  const timeout = int("timeoutSeconds", s.timeoutSeconds ?? 30, 1);
  const graceful = int("gracefulTimeoutSeconds", s.gracefulTimeoutSeconds ?? 30, 1);
  const maxRequests = int("maxRequests", s.maxRequests ?? 1000, 0);
  const user = unitValue("user", s.user ?? APP_PATHS.user);
  const group = unitValue("group", s.group ?? s.user ?? APP_PATHS.user);
  const releases = unitValue("releasesDir", s.releasesDir ?? APP_PATHS.releases).replace(/\/+$/, "");
  const runDir = unitValue("runDir", s.runDir ?? APP_PATHS.runDir).replace(/\/+$/, "");
  const socketGroup = unitValue("socketGroup", s.socketGroup ?? "www-data");
  const rw = [...(s.readWritePaths ?? [APP_PATHS.mediaRoot, APP_PATHS.logDir]), runDir].map((p) => unitValue("readWritePaths", p));
  const args = [
    `--bind unix:${runDir}/app-%i.sock`,
    `--workers ${workers}`,
    `--timeout ${timeout}`,
    `--graceful-timeout ${graceful}`,
    ...(maxRequests > 0 ? [`--max-requests ${maxRequests}`, `--max-requests-jitter ${Math.ceil(maxRequests / 10)}`] : []),
    "--access-logfile -",
    "--error-logfile -",
    unitValue("wsgiModule", s.wsgiModule ?? APP_PATHS.wsgiModule),
  ];
  const post = s.execStartPost === undefined ? "/usr/local/sbin/nourishctl release publish %i" : s.execStartPost;
  return [
    "# Managed by nourish-link-infra (components/app/gunicorn.ts). Do not edit on the host.",
    "[Unit]",
    "Description=NOURISH LINK gunicorn, release %i (Django dusangire)",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    // gunicorn tells systemd when the arbiter is up (sd_notify).
    "Type=notify",
    "NotifyAccess=main",
    `User=${user}`,
    `Group=${group}`,
    `WorkingDirectory=${releases}/%i`,
    `EnvironmentFile=${unitValue("envFile", s.envFile ?? APP_PATHS.envFile)}`,
    // '+': as root. Only the app user and nginx's group may enter the socket directory.
    `ExecStartPre=+/usr/bin/install -d -o ${user} -g ${socketGroup} -m 0750 ${runDir}`,
    `ExecStart=${releases}/%i/venv/bin/gunicorn ${args.join(" ")}`,
    ...(post ? [`ExecStartPost=+${post}`] : []),
    // Only the arbiter gets SIGTERM; it closes the socket and lets workers finish their requests.
    "KillMode=mixed",
    `TimeoutStopSec=${graceful + 5}`,
    "Restart=on-failure",
    "RestartSec=5",
    "",
    "# Hardening: the app only writes media, logs and its socket.",
    "NoNewPrivileges=true",
    "ProtectSystem=strict",
    `ReadWritePaths=${rw.join(" ")}`,
    "PrivateTmp=true",
    "ProtectHome=true",
    "PrivateDevices=true",
    "ProtectKernelTunables=true",
    "ProtectKernelModules=true",
    "ProtectControlGroups=true",
    "RestrictSUIDSGID=true",
    "LockPersonality=true",
    "UMask=0027",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}
