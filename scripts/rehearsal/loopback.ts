// Real nginx on loopback with the rendered site, and small process helpers: shared by the
// loopback boot test and the release rehearsal, so both run exactly what the hosts get.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { renderMaintenancePage } from "../../components/app/maintenance";
import { NginxSiteSettings, renderNginxHttpConf } from "../../components/app/nginx";

/** Everything a site rendered into `p` needs, so nginx touches nothing outside the prefix. */
export function siteSettings(p: string, domain: string, extra: Partial<NginxSiteSettings> & Pick<NginxSiteSettings, "tls">): NginxSiteSettings {
  for (const d of ["static", "media", "maintenance", "logs", "acme"]) fs.mkdirSync(path.join(p, d), { recursive: true });
  fs.writeFileSync(path.join(p, "maintenance", "index.html"), renderMaintenancePage());
  return {
    domain,
    upstream: path.join(p, "app.sock"),
    staticRoot: path.join(p, "static"),
    mediaRoot: path.join(p, "media"),
    clientMaxBodySize: "10m",
    healthPath: "/health/",
    maintenanceRoot: path.join(p, "maintenance"),
    maintenanceFlag: path.join(p, "maintenance", "on"),
    accessLog: path.join(p, "logs", "access.log"),
    errorLog: path.join(p, "logs", "error.log"),
    acmeRoot: path.join(p, "acme"),
    ...extra,
  };
}

/** A minimal main nginx.conf around the rendered http snippet and site (as the host's would be). */
export function writeNginxConf(p: string, site: string, withHttpSnippet = true): string {
  fs.mkdirSync(path.join(p, "temp"), { recursive: true });
  fs.mkdirSync(path.join(p, "logs"), { recursive: true });
  fs.writeFileSync(path.join(p, "nourish-link-log.conf"), renderNginxHttpConf());
  fs.writeFileSync(path.join(p, "nourish-link.conf"), site);
  const temp = (k: string) => `    ${k}_temp_path ${path.join(p, "temp", k)};`;
  const conf = [
    // Workers as root: the temp dir is 0700 root, and this is a loopback rehearsal.
    "user root;",
    "worker_processes 1;",
    `pid ${path.join(p, "nginx.pid")};`,
    `error_log ${path.join(p, "logs", "main-error.log")} warn;`,
    "events { worker_connections 256; }",
    "http {",
    "    include /etc/nginx/mime.types;",
    "    default_type application/octet-stream;",
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(temp),
    ...(withHttpSnippet ? [`    include ${path.join(p, "nourish-link-log.conf")};`] : []),
    `    include ${path.join(p, "nourish-link.conf")};`,
    "}",
    "",
  ].join("\n");
  const file = path.join(p, "nginx.conf");
  fs.writeFileSync(file, conf);
  return file;
}

export interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

export function get(port: number, urlPath: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: urlPath, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls f until it returns a value; a timeout names the last error. */
export async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

export interface Proc { child: ChildProcess; output: () => string }

export function startProcess(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let output = "";
  child.stdout?.on("data", (c) => (output += c));
  child.stderr?.on("data", (c) => (output += c));
  return { child, output: () => output };
}

export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(3000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

/** nginx in the foreground on the config `conf`, answering on `port` once this resolves. */
export async function startNginx(p: string, conf: string, port: number, host: string): Promise<Proc> {
  const nginx = startProcess("nginx", ["-p", p, "-c", conf, "-e", path.join(p, "logs", "startup-error.log"), "-g", "daemon off;"]);
  await until("nginx to listen", async () => {
    if (nginx.child.exitCode !== null) throw new Error(`nginx exited: ${nginx.output()}`);
    return (await get(port, "/static/missing", { Host: host })).status;
  });
  return nginx;
}
