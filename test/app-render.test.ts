// App host renderers (nginx, gunicorn units, logrotate, maintenance page), each checked by the
// real tool that reads it, plus one boot of real nginx + gunicorn on loopback.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { appServiceName, GUNICORN_SERVICE_NAME, gunicornWorkers, renderGunicornService } from "../components/app/gunicorn";
import { NGINX_REOPEN_LOGS, renderLogrotate } from "../components/app/logrotate";
import { renderMaintenancePage } from "../components/app/maintenance";
import { NginxSiteSettings, renderNginxSite } from "../components/app/nginx";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { get as httpGet, siteSettings as loopbackSite, startProcess, stopProcess, until, writeNginxConf } from "../scripts/rehearsal/loopback";
import { Cluster, startAppCluster } from "./pg";
import { freePort, requireTool, run, selfSignedCert } from "./tools";

const DOMAIN = "nourish.test";
const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-app-"));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function nginxTest(p: string, conf: string) {
  return run("nginx", ["-t", "-p", p, "-c", conf, "-e", path.join(p, "logs", "startup-error.log")]);
}

describe("app: nginx site renders a config `nginx -t` accepts", () => {
  it("TLS on nginx: 443 ssl http2, HSTS, 80 redirects except the ACME challenge", () => {
    requireTool("nginx");
    const p = tmpDir();
    const { cert, key } = selfSignedCert(p, DOMAIN);
    const site = renderNginxSite(siteSettings(p, { tls: { certFile: cert, keyFile: key } }));
    const r = nginxTest(p, writeNginxConf(p, site));
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /test is successful/);
    assert.match(site, /listen 443 ssl http2;/);
    assert.match(site, /add_header Strict-Transport-Security "max-age=\d+; includeSubDomains" always;/);
    assert.match(site, /location \^~ \/\.well-known\/acme-challenge\//);
    assert.match(site, new RegExp(`return 301 https://${DOMAIN.replace(".", "\\.")}\\$request_uri;`));
  });

  it("ALB mode: port 80 only, https redirect on X-Forwarded-Proto except the health path", () => {
    requireTool("nginx");
    const p = tmpDir();
    const site = renderNginxSite(siteSettings(p, { tls: undefined }));
    const r = nginxTest(p, writeNginxConf(p, site));
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /test is successful/);
    assert.doesNotMatch(site, /ssl|443/);
    for (const needle of ["client_max_body_size 10m;", "proxy_read_timeout", "proxy_connect_timeout", "proxy_send_timeout",
      "X-Request-Id $request_id", "nosniff", '"DENY"', "Referrer-Policy", "gzip_types", "Retry-After", "error_page 502 503 504 =503"]) {
      assert.ok(site.includes(needle), `site lacks ${needle}`);
    }
  });

  it("is rejected by nginx without the http-level snippet (nginx -t really reads it)", () => {
    requireTool("nginx");
    const p = tmpDir();
    const r = nginxTest(p, writeNginxConf(p, renderNginxSite(siteSettings(p, { tls: undefined })), false));
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stderr, /unknown log format "nourish_json"|unknown "nourish_/);
  });

  it("refuses settings that would inject nginx directives", () => {
    assert.throws(() => renderNginxSite({ domain: "a.test; include /etc/passwd", tls: undefined }), /domain/);
    assert.throws(() => renderNginxSite({ domain: DOMAIN, tls: undefined, staticRoot: "/srv/x; deny all" }), /staticRoot/);
  });
});

describe("app: the gunicorn template unit passes `systemd-analyze verify`", () => {
  // The template is checked through an instance, as systemd loads it: %i becomes the version.
  function writeUnit(dir: string): string {
    fs.writeFileSync(path.join(dir, "app.env"), "DJANGO_SETTINGS_MODULE=dusangire.settings\n");
    const service = renderGunicornService({
      workers: gunicornWorkers(2), releasesDir: path.join(dir, "releases"), runDir: path.join(dir, "run"),
      envFile: path.join(dir, "app.env"), readWritePaths: [path.join(dir, "media"), path.join(dir, "logs")], execStartPost: "/bin/true %i",
    });
    fs.writeFileSync(path.join(dir, GUNICORN_SERVICE_NAME), service);
    return service;
  }
  const installRelease = (dir: string, version: string) => {
    const bin = path.join(dir, "releases", version, "venv", "bin", "gunicorn");
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.writeFileSync(bin, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  };

  it("verifies cleanly for an installed release (exit 0 and no diagnostics)", () => {
    requireTool("systemd-analyze");
    const dir = tmpDir();
    installRelease(dir, "1.4.2");
    const service = writeUnit(dir);
    const r = run("systemd-analyze", ["verify", path.join(dir, appServiceName("1.4.2"))]);
    assert.strictEqual(r.status, 0, r.stderr);
    // verify reports parse problems on stderr with exit 0, so silence is the real pass.
    assert.strictEqual(r.stderr.trim(), "");
    for (const needle of ["User=nourish", "Restart=on-failure", "KillMode=mixed", "NoNewPrivileges=true",
      "ProtectSystem=strict", "PrivateTmp=true", "ProtectHome=true", "--workers 5", "--access-logfile -", "dusangire.wsgi:application"]) {
      assert.ok(service.includes(needle), `service lacks ${needle}`);
    }
  });

  it("fails verify for a release that is not installed (verify really checks the unit)", () => {
    requireTool("systemd-analyze");
    const dir = tmpDir();
    installRelease(dir, "1.4.2");
    writeUnit(dir);
    const r = run("systemd-analyze", ["verify", path.join(dir, appServiceName("9.9.9"))]);
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stderr, /9\.9\.9\/venv\/bin\/gunicorn is not executable/);
  });

  it("defaults to the host layout: one socket per release, the live one published after start", () => {
    const service = renderGunicornService({ workers: 3 });
    assert.match(service, /^WorkingDirectory=\/srv\/nourish-link\/releases\/%i$/m);
    assert.match(service, /^EnvironmentFile=\/etc\/nourish-link\/app\.env$/m);
    assert.match(service, /^ExecStart=\/srv\/nourish-link\/releases\/%i\/venv\/bin\/gunicorn --bind unix:\/run\/nourish-link\/app-%i\.sock /m);
    assert.match(service, /^ExecStartPre=\+\/usr\/bin\/install -d -o nourish -g www-data -m 0750 \/run\/nourish-link$/m);
    assert.match(service, /^ExecStartPost=\+\/usr\/local\/sbin\/nourishctl release publish %i$/m);
    assert.match(service, /^ReadWritePaths=\/srv\/nourish-link\/shared\/media \/var\/log\/nourish-link \/run\/nourish-link$/m);
  });
});

describe("app: gunicornWorkers", () => {
  it("is 2 × vCPU + 1, capped, and rejects nonsense", () => {
    assert.deepStrictEqual([1, 2, 4, 5, 8, 64].map((v) => gunicornWorkers(v)), [3, 5, 9, 11, 12, 12]);
    assert.strictEqual(gunicornWorkers(8, 17), 17);
    for (const bad of [0, -1, 1.5, NaN]) assert.throws(() => gunicornWorkers(bad), /vcpus/);
  });
});

describe("app: logrotate", () => {
  // logrotate exits 0 on an unknown directive (it only prints "error: … ignoring line"), so a
  // clean check is exit 0 AND no error line.
  function logrotateDebug(dir: string, conf: string) {
    const r = run("logrotate", ["--debug", "--force", "--state", path.join(dir, "status"), conf]);
    return { ...r, out: r.stdout + r.stderr, clean: r.status === 0 && !/^error:/im.test(r.stdout + r.stderr) };
  }
  function writeStanza(dir: string, edit: (text: string) => string = (t) => t): string {
    fs.mkdirSync(path.join(dir, "logs"), { recursive: true });
    fs.writeFileSync(path.join(dir, "logs", "nginx-access.log"), "{}\n");
    const conf = path.join(dir, "nourish-link");
    const text = renderLogrotate({ paths: [path.join(dir, "logs", "*.log")], days: 14, postrotate: NGINX_REOPEN_LOGS });
    fs.writeFileSync(conf, edit(text), { mode: 0o644 });
    return conf;
  }

  it("`logrotate --debug` accepts the stanza and would run the nginx reopen", () => {
    requireTool("logrotate");
    const dir = tmpDir();
    // --force so debug walks the whole rotation (a first sight of a log is otherwise not rotated).
    const r = logrotateDebug(dir, writeStanza(dir));
    assert.ok(r.clean, r.out);
    assert.match(r.out, /rotating pattern: .*\*\.log\s+forced from command line \(14 rotations\)/);
    assert.match(r.out, /running postrotate script/);
  });

  it("flags a broken stanza (the check has teeth)", () => {
    requireTool("logrotate");
    const dir = tmpDir();
    const typo = logrotateDebug(dir, writeStanza(dir, (t) => t.replace("daily", "dayly")));
    assert.ok(!typo.clean, typo.out);
    const badUser = logrotateDebug(dir, writeStanza(dir, (t) => t.replace("su root adm", "su nosuchuser adm")));
    assert.ok(!badUser.clean, badUser.out);
  });
});

describe("app: maintenance page", () => {
  it("is self-contained and escapes its text", () => {
    const page = renderMaintenancePage();
    assert.match(page, /NOURISH LINK is down for maintenance/);
    assert.doesNotMatch(page, /\b(src|href)=/);
    assert.match(renderMaintenancePage({ message: "<script>x</script>" }), /&lt;script&gt;x&lt;\/script&gt;/);
  });
});

// ---------------------------------------------------------------------------------------------
// Real nginx in front of real gunicorn on loopback.

const get = (port: number, urlPath: string, headers: Record<string, string> = {}) => httpGet(port, urlPath, { Host: DOMAIN, ...headers });
const siteSettings = (p: string, extra: Partial<NginxSiteSettings> & Pick<NginxSiteSettings, "tls">) => loopbackSite(p, DOMAIN, extra);
const stop = stopProcess;

describe("app: loopback boot of nginx (ALB mode) + gunicorn + PostgreSQL, all with rendered config", () => {
  let p = "";
  let port = 0;
  let s: NginxSiteSettings;
  let nginx: ReturnType<typeof startProcess> | undefined;
  let gunicorn: ReturnType<typeof startProcess> | undefined;
  let db: Cluster | undefined;
  const dbPassword = "app-password-for-the-boot-test";

  before(async () => {
    requireTool("nginx");
    requireTool("gunicorn");
    db = await startAppCluster({ appPassword: dbPassword });
    p = tmpDir();
    port = await freePort();
    s = siteSettings(p, { tls: undefined, listenHttp: `127.0.0.1:${port}` });
    const conf = writeNginxConf(p, renderNginxSite(s));
    nginx = startProcess("nginx", ["-p", p, "-c", conf, "-e", path.join(p, "logs", "startup-error.log"), "-g", "daemon off;"]);
    await until("nginx to listen", async () => {
      if (nginx?.child.exitCode !== null) throw new Error(`nginx exited: ${nginx?.output()}`);
      return (await get(port, "/static/missing")).status;
    });
  });

  after(async () => {
    await stop(gunicorn?.child);
    await stop(nginx?.child);
    db?.stop();
  });

  it("serves the maintenance page with 503 while gunicorn is not running", async () => {
    const r = await get(port, "/");
    assert.strictEqual(r.status, 503);
    assert.match(r.body, /NOURISH LINK is down for maintenance/);
    assert.strictEqual(r.headers["retry-after"], "120");
    assert.strictEqual(r.headers["x-content-type-options"], "nosniff");
  });

  it("proxies to gunicorn once it runs, and logs the request as JSON", async () => {
    // The app's one query goes to PostgreSQL over TLS as the app role, as Django's would.
    fs.writeFileSync(path.join(p, "tinyapp.py"), [
      "import os, psycopg2",
      "def application(environ, start_response):",
      "    with psycopg2.connect(host='127.0.0.1', port=os.environ['DATABASE_PORT'], dbname='dusangire', user='dusangire',",
      "                          password=os.environ['DATABASE_PASSWORD'], sslmode='require') as conn, conn.cursor() as cur:",
      "        cur.execute('SELECT current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')",
      "        name, ssl = cur.fetchone()",
      "    body = f'nourish ok db={name} ssl={ssl}'.encode()",
      "    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])",
      "    return [body]",
      "",
    ].join("\n"));
    gunicorn = startProcess("/usr/bin/gunicorn", ["--bind", `unix:${s.upstream}`, "--workers", "1", "--chdir", p, "tinyapp:application"],
      { DATABASE_PORT: String(db!.port), DATABASE_PASSWORD: dbPassword });
    const r = await until("gunicorn behind nginx", async () => {
      if (gunicorn?.child.exitCode !== null) throw new Error(`gunicorn exited: ${gunicorn?.output()}`);
      const reply = await get(port, "/");
      // Not yet: say why, so a timeout names the last answer and what gunicorn printed.
      if (reply.status !== 200) throw new Error(`GET / answered ${reply.status}; gunicorn: ${gunicorn?.output().slice(-500)}`);
      return reply;
    }, 20000);
    assert.strictEqual(r.body, "nourish ok db=dusangire ssl=True");
    assert.match(String(r.headers["x-request-id"]), /^[0-9a-f]{32}$/);
    // nginx logs a request after answering it: wait for the line rather than read too early.
    const entry = await until("the 200 in the access log", async () => {
      const lines = fs.readFileSync(s.accessLog as string, "utf8").trim().split("\n");
      const last = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
      return last.status === 200 ? last : undefined;
    }, 3000);
    assert.strictEqual(entry.status, 200);
    assert.strictEqual(entry.uri, "/");
    assert.strictEqual(typeof entry.request_time, "number");
    assert.match(String(entry.upstream_response_time), /^\d+\.\d+$/);
    assert.strictEqual((await get(port, "/health/")).body, "nourish ok db=dusangire ssl=True");
  });

  it("serves the maintenance page as soon as the flag file exists, without a reload", async () => {
    fs.writeFileSync(s.maintenanceFlag as string, "");
    const r = await get(port, "/orders/");
    assert.strictEqual(r.status, 503);
    assert.match(r.body, /NOURISH LINK is down for maintenance/);
    // The health path keeps reporting the app's real state.
    assert.strictEqual((await get(port, "/health/")).status, 200);
    fs.rmSync(s.maintenanceFlag as string);
    assert.strictEqual((await get(port, "/")).status, 200);
  });

  it("serves the notice nourishctl maintenance on --message --until writes, as text", async () => {
    // nourishctl's sandbox root, whose maintenance directory is the one this nginx serves.
    const root = path.join(p, "root");
    fs.mkdirSync(path.join(root, "srv/nourish-link"), { recursive: true });
    fs.symlinkSync(s.maintenanceRoot as string, path.join(root, "srv/nourish-link/maintenance"));
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), `ROLE=app\nDOMAIN=${DOMAIN}\n`);
    const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, "maintenance", ...args], { env: { ...process.env, NOURISH_ROOT: root, TZ: "UTC" } });
    const on = ctl("on", "--message", "Upgrading <b>PostgreSQL</b> & friends", "--until", "23:05");
    assert.strictEqual(on.status, 0, on.stderr);
    const r = await get(port, "/orders/");
    assert.strictEqual(r.status, 503);
    assert.match(r.body, /Upgrading &lt;b&gt;PostgreSQL&lt;\/b&gt; &amp; friends/);
    assert.doesNotMatch(r.body, /<b>/);
    assert.match(r.body, /Expected back by 23:05 UTC\./);
    assert.strictEqual(ctl("off").status, 0);
    assert.strictEqual((await get(port, "/")).status, 200);
  });

  it("serves static files with a long cache header", async () => {
    fs.writeFileSync(path.join(s.staticRoot as string, "app.css"), "body{color:green}\n");
    const r = await get(port, "/static/app.css");
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.body, "body{color:green}\n");
    assert.match(String(r.headers["cache-control"]), /public, max-age=2592000, immutable/);
    assert.match(String(r.headers["content-type"]), /text\/css/);
  });

  it("redirects plain-http clients of the ALB to https, but not the health check", async () => {
    const r = await get(port, "/menu/?day=1", { "X-Forwarded-Proto": "http" });
    assert.strictEqual(r.status, 301);
    assert.strictEqual(r.headers.location, `https://${DOMAIN}/menu/?day=1`);
    assert.strictEqual((await get(port, "/health/", { "X-Forwarded-Proto": "http" })).status, 200);
    const https = await get(port, "/", { "X-Forwarded-Proto": "https" });
    assert.strictEqual(https.status, 200);
    assert.match(String(https.headers["strict-transport-security"]), /max-age=/);
    assert.strictEqual((await get(port, "/")).headers["strict-transport-security"], undefined);
  });
});
