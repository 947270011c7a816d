// The rehearsal release artifacts (scripts/rehearsal/artifacts.ts) built from the sample Django app
// in test/fixtures/dusangire, unpacked and run for real: a venv over Debian's Django/psycopg2/
// gunicorn, PostgreSQL 15 with TLS (test/pg.ts), gunicorn on a Unix socket. Each release must
// behave as its name says, the good ones well and the bad ones in exactly their one way.
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { Artifact, buildArtifacts, RELEASES } from "../scripts/rehearsal/artifacts";
import { Cluster, startAppCluster } from "./pg";
import { run } from "./tools";

const SYSTEM_PYTHON = "/usr/bin/python3";
const HOST = "nourish.test";
const DB_PASSWORD = "fixture-app-password";
const SECRET_KEY = crypto.randomBytes(48).toString("base64url");

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

function request(socketPath: string, method: string, urlPath: string, headers: Record<string, string> = {}, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      socketPath, method, path: urlPath, agent: false,
      headers: { Host: HOST, ...(payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(payload)) }), ...headers },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

const HTTPS = { "X-Forwarded-Proto": "https" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("fixture app: dusangire release artifacts on PostgreSQL 15 + gunicorn", () => {
  let tmp = "";
  let artifacts: Artifact[] = [];
  let db: Cluster | undefined;
  const children = new Set<ChildProcess>();

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nlfix-"));
    artifacts = buildArtifacts(path.join(tmp, "out"));
    db = await startAppCluster({ appPassword: DB_PASSWORD });
  });

  after(async () => {
    for (const c of [...children]) await stopProcess(c);
    db?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const artifact = (version: string): Artifact => {
    const a = artifacts.find((x) => x.version === version);
    assert.ok(a, `no artifact ${version}`);
    return a;
  };

  /** The release unpacked once into tmp/releases/<version>. */
  const unpacked = new Map<string, string>();
  function release(version: string): string {
    let dir = unpacked.get(version);
    if (!dir) {
      dir = path.join(tmp, "releases", version);
      fs.mkdirSync(dir, { recursive: true });
      const r = run("tar", ["-xzf", artifact(version).file, "-C", dir]);
      assert.equal(r.status, 0, r.stderr);
      unpacked.set(version, dir);
    }
    return dir;
  }

  /** One venv for all releases (they share requirements.txt), made as a host would from 1.0.0's. */
  let venvPython = "";
  function venv(): string {
    if (venvPython) return venvPython;
    const dir = path.join(tmp, "venv");
    const mk = run(SYSTEM_PYTHON, ["-m", "venv", "--system-site-packages", dir]);
    assert.equal(mk.status, 0, `venv: ${mk.stderr}`);
    const pip = run(path.join(dir, "bin", "pip"), ["install", "-r", path.join(release("1.0.0"), "requirements.txt")],
      { env: { ...process.env, PIP_NO_INDEX: "1" } });
    assert.equal(pip.status, 0, `pip install (offline): ${pip.stdout}${pip.stderr}`);
    venvPython = path.join(dir, "bin", "python");
    return venvPython;
  }

  /** The env file the hosts write, pointed at the test cluster and temp dirs. */
  function appEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DJANGO_SETTINGS_MODULE: "dusangire.settings",
      DJANGO_SECRET_KEY: SECRET_KEY,
      DJANGO_ALLOWED_HOSTS: HOST,
      DATABASE_HOST: "127.0.0.1",
      DATABASE_PORT: String(db!.port),
      DATABASE_NAME: "dusangire",
      DATABASE_USER: "dusangire",
      DATABASE_PASSWORD: DB_PASSWORD,
      DATABASE_SSLMODE: "require", PGCHANNELBINDING: "require",
      STATIC_ROOT: path.join(tmp, "static"),
      MEDIA_ROOT: path.join(tmp, "media"),
      ...extra,
    };
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    return env;
  }

  function manage(version: string, args: string[], extraEnv: Record<string, string> = {}) {
    return run(venv(), ["manage.py", ...args], { cwd: release(version), env: appEnv(extraEnv), timeout: 180_000 });
  }

  function resetDatabase(): void {
    db!.psql("DROP DATABASE IF EXISTS dusangire WITH (FORCE)");
    db!.psql("CREATE DATABASE dusangire OWNER dusangire");
  }

  const applied = (): string[] => db!.psql("SELECT name FROM django_migrations WHERE app = 'meals' ORDER BY name", { db: "dusangire" }).split("\n").filter(Boolean);
  const columns = (table: string): string[] =>
    db!.psql(`SELECT column_name FROM information_schema.columns WHERE table_name = '${table}' ORDER BY column_name`, { db: "dusangire" }).split("\n");

  /** /health/ through Django's test client in a one-off process (for states gunicorn is not needed for). */
  function healthOnce(version: string, extraEnv: Record<string, string> = {}): { status: number; body: Record<string, unknown> } {
    const r = manage(version, ["shell", "-c",
      `import json; from django.test import Client; r = Client(HTTP_HOST='${HOST}').get('/health/'); print(json.dumps({'status': r.status_code, 'body': json.loads(r.content)}))`],
    extraEnv);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").pop() as string);
  }

  async function startGunicorn(version: string): Promise<{ socket: string; child: ChildProcess; output: () => string }> {
    const socket = path.join(tmp, `gunicorn-${version}.sock`);
    // Debian's gunicorn satisfies requirements.txt from the system site-packages, so pip installs
    // no venv/bin/gunicorn: run it with the venv's interpreter.
    const child = spawn(venv(), ["-m", "gunicorn", "--bind", `unix:${socket}`, "--workers", "2", "--access-logfile", "-", "dusangire.wsgi:application"],
      { cwd: release(version), env: appEnv(), stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    child.once("exit", () => children.delete(child));
    let out = "";
    child.stdout?.on("data", (c) => (out += c));
    child.stderr?.on("data", (c) => (out += c));
    const end = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) assert.fail(`gunicorn ${version} exited (${child.exitCode}): ${out}`);
      try {
        await request(socket, "GET", "/health/");
        return { socket, child, output: () => out };
      } catch (e) {
        if (Date.now() > end) assert.fail(`gunicorn ${version} did not answer on ${socket}: ${String(e)}\n${out}`);
        await sleep(100);
      }
    }
  }

  it("builds five deterministic tarballs with the app at the archive root", () => {
    assert.deepEqual(artifacts.map((a) => [a.version, a.name]), [
      ["1.0.0", "v1"], ["1.1.0", "v2"], ["1.2.0", "bad-migration"], ["1.2.1", "bad-health"], ["1.3.0", "irreversible"]]);
    const again = buildArtifacts(path.join(tmp, "out-again"));
    for (const [i, a] of artifacts.entries()) {
      assert.ok(path.isAbsolute(a.file) && a.file.endsWith(`/nourish-link-${a.version}.tar.gz`), a.file);
      assert.match(a.sha256, /^[0-9a-f]{64}$/);
      assert.ok(a.description.length > 10);
      assert.equal(again[i].sha256, a.sha256, `${a.version} is not reproducible`);
      assert.equal(crypto.createHash("sha256").update(fs.readFileSync(a.file)).digest("hex"), a.sha256);
      const check = run("sha256sum", ["-c", `${path.basename(a.file)}.sha256`], { cwd: path.dirname(a.file) });
      assert.equal(check.status, 0, check.stdout + check.stderr);
      const list = run("tar", ["-tzf", a.file]);
      assert.equal(list.status, 0, list.stderr);
      const names = list.stdout.trim().split("\n");
      for (const top of ["manage.py", "VERSION", "requirements.txt", "dusangire/settings.py", "dusangire/wsgi.py", "meals/migrations/0002_seed_menu.py", "meals/static/meals/app.css"]) {
        assert.ok(names.includes(top), `${a.version} lacks ${top}`);
      }
      assert.ok(!names.some((n) => /__pycache__|\.pyc$|^overlays|^\.\//.test(n)), names.join("\n"));
      assert.equal(run("tar", ["-xOzf", a.file, "VERSION"]).stdout, `${a.version}\n`);
    }
    assert.equal(RELEASES.length, artifacts.length);
  });

  it("1.0.0 installs offline into a --system-site-packages venv and passes `check --deploy`", () => {
    venv();
    const r = manage("1.0.0", ["check", "--deploy"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /System check identified no issues/);
    assert.doesNotMatch(r.stdout + r.stderr, /WARNING|ERROR/);
    const noKey = manage("1.0.0", ["check"], { DJANGO_SECRET_KEY: "" });
    assert.notEqual(noKey.status, 0);
    assert.match(noKey.stderr, /^dusangire: DJANGO_SECRET_KEY is not set/m);
  });

  it("every release's migrations match its models (makemigrations --check)", () => {
    resetDatabase();
    for (const a of artifacts) {
      const r = manage(a.version, ["makemigrations", "--check", "--dry-run"]);
      assert.equal(r.status, 0, `${a.version}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /No changes detected/);
    }
  });

  it("1.0.0: collectstatic writes the hashed stylesheet", () => {
    const r = manage("1.0.0", ["collectstatic", "--noinput"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const manifest = JSON.parse(fs.readFileSync(path.join(tmp, "static", "staticfiles.json"), "utf8")) as { paths: Record<string, string> };
    assert.match(manifest.paths["meals/app.css"], /^meals\/app\.[0-9a-f]{12}\.css$/);
    assert.ok(fs.existsSync(path.join(tmp, "static", manifest.paths["meals/app.css"])));
  });

  it("1.0.0 under gunicorn: health gates on migrations, then menu, orders and the page work", async () => {
    resetDatabase();
    const g = await startGunicorn("1.0.0");
    const before = await request(g.socket, "GET", "/health/");
    assert.equal(before.status, 503, before.body);
    assert.equal(JSON.parse(before.body).reason, "unapplied migrations");
    assert.ok(JSON.parse(before.body).pending.includes("meals.0002_seed_menu"));

    const mig = manage("1.0.0", ["migrate", "--noinput"]);
    assert.equal(mig.status, 0, mig.stdout + mig.stderr);
    assert.deepEqual(applied(), ["0001_initial", "0002_seed_menu"]);

    // Health works over plain http (no X-Forwarded-Proto): exempt from the https redirect.
    const health = await request(g.socket, "GET", "/health/");
    assert.equal(health.status, 200, health.body);
    assert.deepEqual(JSON.parse(health.body), { status: "ok", version: "1.0.0", database: "ok" });
    assert.equal(health.headers["x-release"], "1.0.0");

    assert.equal((await request(g.socket, "GET", "/menu/")).headers.location, `https://${HOST}/menu/`);
    assert.equal((await request(g.socket, "GET", "/menu/", { ...HTTPS, Host: "evil.test" })).status, 400);
    const menu = await request(g.socket, "GET", "/menu/", HTTPS);
    assert.equal(menu.status, 200, menu.body);
    assert.match(String(menu.headers["strict-transport-security"]), /max-age=63072000; includeSubDomains/);
    const items = JSON.parse(menu.body) as { id: number; name: string; price_rwf: number }[];
    assert.equal(items.length, 3);
    for (const i of items) assert.deepEqual(Object.keys(i).sort(), ["id", "name", "price_rwf"]);

    const ref = crypto.randomUUID();
    const created = await request(g.socket, "POST", "/orders/", HTTPS, { menu_item: items[0].id, quantity: 2, ref });
    assert.equal(created.status, 201, created.body);
    const order = JSON.parse(created.body) as { id: number; ref: string };
    assert.equal(order.ref, ref);
    // Committed before the response: another connection sees it right away.
    assert.equal(db!.psql(`SELECT quantity FROM meals_order WHERE ref = '${ref}'`, { db: "dusangire" }), "2");
    const replay = await request(g.socket, "POST", "/orders/", HTTPS, { menu_item: items[1].id, quantity: 5, ref });
    assert.equal(replay.status, 200, replay.body);
    assert.equal(JSON.parse(replay.body).id, order.id);
    assert.equal(db!.psql("SELECT count(*) FROM meals_order", { db: "dusangire" }), "1");
    const generated = await request(g.socket, "POST", "/orders/", HTTPS, { menu_item: items[2].id, quantity: 1 });
    assert.equal(generated.status, 201, generated.body);
    assert.match(JSON.parse(generated.body).ref, /^[0-9a-f-]{36}$/);
    for (const bad of [{ menu_item: items[0].id, quantity: 0 }, { menu_item: 999999, quantity: 1 }, { menu_item: items[0].id, quantity: true },
      { menu_item: items[0].id, quantity: 1, ref: "nope" }, [1], "{not json"]) {
      const r = await request(g.socket, "POST", "/orders/", HTTPS, bad);
      assert.equal(r.status, 400, `${JSON.stringify(bad)} → ${r.status} ${r.body}`);
    }

    const got = await request(g.socket, "GET", `/orders/${ref}/`, HTTPS);
    assert.equal(got.status, 200, got.body);
    assert.equal(JSON.parse(got.body).quantity, 2);
    assert.equal((await request(g.socket, "GET", `/orders/${crypto.randomUUID()}/`, HTTPS)).status, 404);

    const page = await request(g.socket, "GET", "/", HTTPS);
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /href="\/static\/meals\/app\.[0-9a-f]{12}\.css"/);
    await stopProcess(g.child);
  });

  it("health answers 503 when the database is unreachable", () => {
    const r = healthOnce("1.0.0", { DATABASE_PORT: "1" });
    assert.equal(r.status, 503);
    assert.equal(r.body.database, "unreachable");
  });

  it("1.1.0 migrates 0003 on top of 1.0.0 and `migrate meals 0002` reverses it", () => {
    resetDatabase();
    assert.equal(manage("1.0.0", ["migrate", "--noinput"]).status, 0);
    const up = manage("1.1.0", ["migrate", "--noinput"]);
    assert.equal(up.status, 0, up.stdout + up.stderr);
    assert.match(up.stdout, /Applying meals\.0003_order_notes\.\.\. OK/);
    assert.doesNotMatch(up.stdout, /0001|0002/);
    assert.ok(columns("meals_order").includes("notes"));
    assert.deepEqual(healthOnce("1.1.0"), { status: 200, body: { status: "ok", version: "1.1.0", database: "ok" } });
    const down = manage("1.1.0", ["migrate", "--noinput", "meals", "0002"]);
    assert.equal(down.status, 0, down.stdout + down.stderr);
    assert.match(down.stdout, /Unapplying meals\.0003_order_notes\.\.\. OK/);
    assert.ok(!columns("meals_order").includes("notes"));
    assert.deepEqual(applied(), ["0001_initial", "0002_seed_menu"]);
    // 1.0.0 is healthy on the rolled-back schema; 1.1.0 is not.
    assert.equal(healthOnce("1.0.0").status, 200);
    assert.equal(healthOnce("1.1.0").status, 503);
  });

  it("1.2.0: migrate applies 0004, fails at 0005 and exits non-zero", () => {
    resetDatabase();
    const r = manage("1.2.0", ["migrate", "--noinput"]);
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stdout, /Applying meals\.0004_order_delivery_slot\.\.\. OK/);
    assert.match(r.stderr, /meals_menuitem_price_cap/);
    assert.deepEqual(applied(), ["0001_initial", "0002_seed_menu", "0003_order_notes", "0004_order_delivery_slot"]);
    assert.ok(columns("meals_order").includes("delivery_slot"));
    assert.equal(db!.psql("SELECT count(*) FROM pg_constraint WHERE conname = 'meals_menuitem_price_cap'", { db: "dusangire" }), "0");
    const h = healthOnce("1.2.0");
    assert.equal(h.status, 503);
    assert.deepEqual(h.body.pending, ["meals.0005_menuitem_price_cap"]);
  });

  it("1.2.1: health is 200 direct to gunicorn, 500 with X-Forwarded-For; the rest works through the proxy", async () => {
    resetDatabase();
    const mig = manage("1.2.1", ["migrate", "--noinput"]);
    assert.equal(mig.status, 0, mig.stdout + mig.stderr);
    assert.ok(applied().includes("0004_order_delivery_slot"));
    const g = await startGunicorn("1.2.1");
    const direct = await request(g.socket, "GET", "/health/");
    assert.equal(direct.status, 200, direct.body);
    assert.equal(JSON.parse(direct.body).version, "1.2.1");
    const proxied = { ...HTTPS, "X-Forwarded-For": "203.0.113.7" };
    const viaProxy = await request(g.socket, "GET", "/health/", proxied);
    assert.equal(viaProxy.status, 500, viaProxy.body);
    assert.equal(viaProxy.headers["x-release"], "1.2.1");
    const menu = await request(g.socket, "GET", "/menu/", proxied);
    assert.equal(menu.status, 200, menu.body);
    const item = (JSON.parse(menu.body) as { id: number }[])[0];
    const order = await request(g.socket, "POST", "/orders/", proxied, { menu_item: item.id, quantity: 1, notes: "no chili" });
    assert.equal(order.status, 201, order.body);
    assert.equal(JSON.parse(order.body).notes, "no chili");
    await stopProcess(g.child);
    assert.match(g.output(), /1\.2\.1 regression: health cannot parse X-Forwarded-For/);
  });

  it("1.3.0: migrates forward, but migrating below 0004 raises IrreversibleError", () => {
    resetDatabase();
    const up = manage("1.3.0", ["migrate", "--noinput"]);
    assert.equal(up.status, 0, up.stdout + up.stderr);
    assert.match(up.stdout, /Applying meals\.0004_round_menu_prices\.\.\. OK/);
    assert.equal(db!.psql("SELECT string_agg(price_rwf::text, ',' ORDER BY id) FROM meals_menuitem", { db: "dusangire" }), "3000,2000,3000");
    assert.equal(healthOnce("1.3.0").status, 200);
    const down = manage("1.3.0", ["migrate", "--noinput", "meals", "0003"]);
    assert.notEqual(down.status, 0);
    assert.match(down.stderr, /IrreversibleError/);
    assert.ok(applied().includes("0004_round_menu_prices"));
  });
});

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await exited;
  }
}
