// gunicorn under systemd: a socket-activated service serving the Django WSGI app.
import { APP_PATHS, safeValue } from "./paths";

export const GUNICORN_SERVICE_NAME = "nourish-link-gunicorn.service";
export const GUNICORN_SOCKET_NAME = "nourish-link-gunicorn.socket";

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
  /** Time workers get to finish requests on restart/stop. Default 30. */
  gracefulTimeoutSeconds?: number;
  /** Recycle a worker after this many requests (with 10% jitter) to contain leaks; 0 = never. Default 1000. */
  maxRequests?: number;
  user?: string;
  group?: string;
  workingDirectory?: string;
  gunicornBin?: string;
  envFile?: string;
  wsgiModule?: string;
  /** Writable despite ProtectSystem=strict. Default: media root and the log directory. */
  readWritePaths?: string[];
}

export interface GunicornSocketSettings {
  socketPath?: string;
  /** Group allowed to connect (nginx's). Default www-data. */
  socketGroup?: string;
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
  const rw = (s.readWritePaths ?? [APP_PATHS.mediaRoot, APP_PATHS.logDir]).map((p) => unitValue("readWritePaths", p));
  const args = [
    `--workers ${workers}`,
    `--timeout ${timeout}`,
    `--graceful-timeout ${graceful}`,
    ...(maxRequests > 0 ? [`--max-requests ${maxRequests}`, `--max-requests-jitter ${Math.ceil(maxRequests / 10)}`] : []),
    "--access-logfile -",
    "--error-logfile -",
    unitValue("wsgiModule", s.wsgiModule ?? APP_PATHS.wsgiModule),
  ];
  return [
    "# Managed by nourish-link-infra (components/app/gunicorn.ts). Do not edit on the host.",
    "[Unit]",
    "Description=NOURISH LINK gunicorn (Django dusangire)",
    `Requires=${GUNICORN_SOCKET_NAME}`,
    `After=network-online.target ${GUNICORN_SOCKET_NAME}`,
    "Wants=network-online.target",
    "",
    "[Service]",
    // gunicorn tells systemd when the arbiter is up (sd_notify), and takes the socket from LISTEN_FDS.
    "Type=notify",
    "NotifyAccess=main",
    `User=${user}`,
    `Group=${group}`,
    `WorkingDirectory=${unitValue("workingDirectory", s.workingDirectory ?? APP_PATHS.current)}`,
    `EnvironmentFile=${unitValue("envFile", s.envFile ?? APP_PATHS.envFile)}`,
    `ExecStart=${unitValue("gunicornBin", s.gunicornBin ?? APP_PATHS.gunicornBin)} ${args.join(" ")}`,
    // HUP: gunicorn starts new workers with the new code, then stops the old ones gracefully.
    "ExecReload=/bin/kill -s HUP $MAINPID",
    // Only the arbiter gets SIGTERM; it shuts its workers down gracefully.
    "KillMode=mixed",
    `TimeoutStopSec=${graceful + 5}`,
    "Restart=on-failure",
    "RestartSec=5",
    "",
    "# Hardening: the app only writes media and logs.",
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

export function renderGunicornSocket(s: GunicornSocketSettings = {}): string {
  return [
    "# Managed by nourish-link-infra (components/app/gunicorn.ts). Do not edit on the host.",
    "[Unit]",
    "Description=NOURISH LINK gunicorn socket",
    "",
    "[Socket]",
    `ListenStream=${unitValue("socketPath", s.socketPath ?? APP_PATHS.socket)}`,
    // Only nginx's group may connect to the app.
    "SocketUser=root",
    `SocketGroup=${unitValue("socketGroup", s.socketGroup ?? "www-data")}`,
    "SocketMode=0660",
    "DirectoryMode=0755",
    "",
    "[Install]",
    "WantedBy=sockets.target",
    "",
  ].join("\n");
}
