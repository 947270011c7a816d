// nginx in front of gunicorn: the site server block(s) and the http-level snippet they need.
import { APP_PATHS, safeValue } from "./paths";

export const NGINX_LOG_FORMAT = "nourish_json";
/** Where the host installs the two files. */
export const NGINX_SITE_PATH = "/etc/nginx/sites-available/nourish-link.conf";
export const NGINX_HTTP_CONF_PATH = "/etc/nginx/conf.d/nourish-link-log.conf";

export interface NginxTlsFiles {
  certFile: string;
  keyFile: string;
}

export interface NginxSiteSettings {
  domain: string;
  /** TLS terminated on nginx, or `undefined` when an ALB terminates TLS in front of it. */
  tls: NginxTlsFiles | undefined;
  /** Unix socket path (starts with '/') or host:port. Default /run/nourish-link/gunicorn.sock. */
  upstream?: string;
  staticRoot?: string;
  mediaRoot?: string;
  /** nginx size, e.g. '10m'. Default '10m'. */
  clientMaxBodySize?: string;
  /** Path the ALB health check requests; exact match. Default '/health/'. */
  healthPath?: string;
  maintenanceRoot?: string;
  maintenanceFlag?: string;
  accessLog?: string;
  errorLog?: string;
  /** Port, or address:port (tests bind '127.0.0.1:<port>'). Defaults 80 / 443. */
  listenHttp?: number | string;
  listenHttps?: number | string;
  /** certbot webroot for /.well-known/acme-challenge/ (TLS mode). Default /var/www/letsencrypt. */
  acmeRoot?: string;
  /** Days static files may be cached. Default 30. */
  staticCacheDays?: number;
  proxyConnectTimeoutSeconds?: number;
  /** Read/send timeout; keep above gunicorn's --timeout so gunicorn kills a stuck worker first. */
  proxyReadTimeoutSeconds?: number;
  /** Seconds in the maintenance page's Retry-After. Default 120. */
  retryAfterSeconds?: number;
  /** Mark the plain-http server default_server (ALB health checks use the instance IP as Host). Default true. */
  defaultServer?: boolean;
}

const MAINTENANCE_URI = "/__nourish_maintenance.html";
const HSTS = "max-age=63072000; includeSubDomains";

/**
 * http-level snippet: the JSON access log format and the maps the site uses. log_format and
 * map are only allowed in the http context, hence a separate file in conf.d.
 */
export function renderNginxHttpConf(): string {
  const fields: [string, string, boolean][] = [
    ["time", "$time_iso8601", true],
    ["request_id", "$request_id", true],
    ["remote_addr", "$remote_addr", true],
    ["x_forwarded_for", "$http_x_forwarded_for", true],
    ["host", "$host", true],
    ["method", "$request_method", true],
    ["uri", "$request_uri", true],
    ["protocol", "$server_protocol", true],
    ["status", "$status", false],
    ["body_bytes_sent", "$body_bytes_sent", false],
    ["request_time", "$request_time", false],
    // "-" when nothing was proxied, "0.010, 0.002" after a retry: a string, not a number.
    ["upstream_response_time", "$upstream_response_time", true],
    ["upstream_status", "$upstream_status", true],
    ["referer", "$http_referer", true],
    ["user_agent", "$http_user_agent", true],
  ];
  const json = "{" + fields.map(([k, v, quoted]) => (quoted ? `"${k}":"${v}"` : `"${k}":${v}`)).join(",") + "}";
  return [
    "# Managed by nourish-link-infra (components/app/nginx.ts). Do not edit on the host.",
    `log_format ${NGINX_LOG_FORMAT} escape=json '${json}';`,
    "",
    "# Scheme the client used: the ALB's X-Forwarded-Proto when present, else our own.",
    "map $http_x_forwarded_proto $nourish_forwarded_proto {",
    "    default $http_x_forwarded_proto;",
    '    ""      $scheme;',
    "}",
    "",
    "# HSTS only on responses the client received over https (empty value = header not sent).",
    "map $nourish_forwarded_proto $nourish_hsts {",
    `    https   "${HSTS}";`,
    '    default "";',
    "}",
    "",
  ].join("\n");
}

function listen(v: number | string, what: string): string {
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 1 || v > 65535) throw new Error(`${what}: bad port ${v}`);
    return String(v);
  }
  return safeValue(what, v);
}

function positive(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
  return v;
}

export function renderNginxSite(s: NginxSiteSettings): string {
  const domain = safeValue("domain", s.domain, /[^A-Za-z0-9.-]/);
  const upstream = safeValue("upstream", s.upstream ?? APP_PATHS.socket);
  const staticRoot = safeValue("staticRoot", s.staticRoot ?? APP_PATHS.staticRoot).replace(/\/+$/, "");
  const mediaRoot = safeValue("mediaRoot", s.mediaRoot ?? APP_PATHS.mediaRoot).replace(/\/+$/, "");
  const bodySize = safeValue("clientMaxBodySize", s.clientMaxBodySize ?? "10m", /[^0-9kKmMgG]/);
  const healthPath = safeValue("healthPath", s.healthPath ?? "/health/");
  if (!healthPath.startsWith("/")) throw new Error(`healthPath must start with '/', got ${healthPath}`);
  const maintenanceRoot = safeValue("maintenanceRoot", s.maintenanceRoot ?? APP_PATHS.maintenanceRoot).replace(/\/+$/, "");
  const flag = safeValue("maintenanceFlag", s.maintenanceFlag ?? APP_PATHS.maintenanceFlag);
  const accessLog = safeValue("accessLog", s.accessLog ?? `${APP_PATHS.logDir}/nginx-access.log`);
  const errorLog = safeValue("errorLog", s.errorLog ?? `${APP_PATHS.logDir}/nginx-error.log`);
  const cacheSeconds = positive("staticCacheDays", s.staticCacheDays ?? 30) * 86400;
  const connectTimeout = positive("proxyConnectTimeoutSeconds", s.proxyConnectTimeoutSeconds ?? 5);
  const readTimeout = positive("proxyReadTimeoutSeconds", s.proxyReadTimeoutSeconds ?? 60);
  const retryAfter = positive("retryAfterSeconds", s.retryAfterSeconds ?? 120);
  const tls = s.tls;
  const alb = tls === undefined;

  // add_header in a location replaces (not extends) the server's list, so every location that
  // adds a header repeats the security headers.
  const security = (indent: string): string[] =>
    [
      alb ? `add_header Strict-Transport-Security $nourish_hsts always;` : `add_header Strict-Transport-Security "${HSTS}" always;`,
      `add_header X-Content-Type-Options "nosniff" always;`,
      `add_header X-Frame-Options "DENY" always;`,
      `add_header Referrer-Policy "strict-origin-when-cross-origin" always;`,
      `add_header X-Request-Id $request_id always;`,
    ].map((l) => indent + l);
  // Behind an ALB, plain-http client requests are redirected; the ALB's health check is not.
  const albRedirect = (indent: string): string[] =>
    alb ? [`${indent}if ($http_x_forwarded_proto = "http") {`, `${indent}    return 301 https://${domain}$request_uri;`, `${indent}}`] : [];
  const proxy = (indent: string, host: string): string[] =>
    [
      `proxy_pass http://nourish_link_app;`,
      `proxy_http_version 1.1;`,
      `proxy_set_header Connection "";`,
      `proxy_set_header Host ${host};`,
      // At the edge (TLS mode) a client-sent X-Forwarded-For is not trusted; behind the ALB it is the ALB's chain.
      alb ? `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;` : `proxy_set_header X-Forwarded-For $remote_addr;`,
      alb ? `proxy_set_header X-Forwarded-Proto $nourish_forwarded_proto;` : `proxy_set_header X-Forwarded-Proto $scheme;`,
      `proxy_set_header X-Request-Id $request_id;`,
      `proxy_redirect off;`,
      `proxy_connect_timeout ${connectTimeout}s;`,
      `proxy_send_timeout ${readTimeout}s;`,
      `proxy_read_timeout ${readTimeout}s;`,
      // Turn an app 502/503/504 into the maintenance page too (only codes with an error_page are intercepted).
      `proxy_intercept_errors on;`,
    ].map((l) => indent + l);

  const upstreamServer = upstream.startsWith("/") ? `unix:${upstream}` : upstream;
  const out: string[] = [
    "# Managed by nourish-link-infra (components/app/nginx.ts). Do not edit on the host.",
    `# Needs ${NGINX_HTTP_CONF_PATH} (log_format ${NGINX_LOG_FORMAT}, maps) in the http context.`,
    "upstream nourish_link_app {",
    // fail_timeout=0: always retry the app; gunicorn restarts quickly.
    `    server ${upstreamServer} fail_timeout=0;`,
    // No upstream keepalive: gunicorn's sync workers close every connection anyway, and a kept
    // connection would outlive the socket switch of a release (see gunicorn.ts).
    "}",
    "",
  ];

  const mainListen = alb
    ? [`    listen ${listen(s.listenHttp ?? 80, "listenHttp")}${s.defaultServer === false ? "" : " default_server"};`]
    : [`    listen ${listen(s.listenHttps ?? 443, "listenHttps")} ssl http2;`];

  if (tls) {
    const acmeRoot = safeValue("acmeRoot", s.acmeRoot ?? "/var/www/letsencrypt");
    out.push(
      "# Port 80: certbot's HTTP-01 challenge, everything else to https.",
      "server {",
      `    listen ${listen(s.listenHttp ?? 80, "listenHttp")}${s.defaultServer === false ? "" : " default_server"};`,
      `    server_name ${domain};`,
      "    server_tokens off;",
      `    access_log ${accessLog} ${NGINX_LOG_FORMAT};`,
      `    error_log ${errorLog} warn;`,
      "    location ^~ /.well-known/acme-challenge/ {",
      `        root ${acmeRoot};`,
      "        default_type text/plain;",
      "    }",
      "    location / {",
      `        return 301 https://${domain}$request_uri;`,
      "    }",
      "}",
      "",
    );
  }

  out.push(
    "server {",
    ...mainListen,
    `    server_name ${domain};`,
    "    server_tokens off;",
    `    access_log ${accessLog} ${NGINX_LOG_FORMAT};`,
    `    error_log ${errorLog} warn;`,
  );
  if (tls) {
    out.push(
      `    ssl_certificate ${safeValue("tls.certFile", tls.certFile)};`,
      `    ssl_certificate_key ${safeValue("tls.keyFile", tls.keyFile)};`,
      "    ssl_protocols TLSv1.2 TLSv1.3;",
      "    ssl_prefer_server_ciphers off;",
      "    ssl_session_cache shared:nourish_ssl:10m;",
      "    ssl_session_timeout 1d;",
      "    ssl_session_tickets off;",
    );
  }
  out.push(
    "",
    `    client_max_body_size ${bodySize};`,
    "",
    "    gzip on;",
    "    gzip_vary on;",
    "    gzip_proxied any;",
    "    gzip_comp_level 5;",
    "    gzip_min_length 256;",
    "    gzip_types text/plain text/css text/xml text/javascript application/javascript application/json application/xml application/rss+xml image/svg+xml;",
    "",
    ...security("    "),
    "",
    "    # Upstream down or erroring, or the maintenance flag set: the maintenance page, 503.",
    `    error_page 502 503 504 =503 ${MAINTENANCE_URI};`,
    `    location = ${MAINTENANCE_URI} {`,
    "        internal;",
    `        alias ${maintenanceRoot}/index.html;`,
    "        default_type text/html;",
    ...security("        "),
    `        add_header Retry-After ${retryAfter} always;`,
    '        add_header Cache-Control "no-store" always;',
    "    }",
    "",
    "    # Collected static files are fingerprinted by Django: cache them long.",
    "    location /static/ {",
    ...albRedirect("        "),
    `        alias ${staticRoot}/;`,
    "        access_log off;",
    ...security("        "),
    `        add_header Cache-Control "public, max-age=${cacheSeconds}, immutable";`,
    "    }",
    "",
    "    location /media/ {",
    ...albRedirect("        "),
    `        alias ${mediaRoot}/;`,
    ...security("        "),
    '        add_header Cache-Control "public, max-age=3600";',
    "    }",
    "",
    "    # Health reports the app's real state: no maintenance flag, no https redirect. The Host is",
    "    # the configured domain because the ALB sends the instance IP, which Django's ALLOWED_HOSTS rejects.",
    `    location = ${healthPath} {`,
    "        access_log off;",
    ...proxy("        ", domain),
    "    }",
    "",
    "    location / {",
    ...albRedirect("        "),
    `        if (-f ${flag}) {`,
    "            return 503;",
    "        }",
    ...proxy("        ", "$host"),
    "    }",
    "}",
    "",
  );
  return out.join("\n");
}
