// The app contract (components/app/contract.ts) is what the hosts do and what the sample app is:
// the README carries its rendering; `nourishctl setup app-env` writes exactly its environment; the
// rehearsal's artifacts hold exactly what it requires; the sample app's code reads exactly its
// variables (recorded inside Python, under gunicorn and manage.py, on a real PostgreSQL 15); and
// every Debian package the rehearsal's hosts rely on is one their user data installs.
import assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { SMOKE_COMMAND } from "../components/app/commands";
import { APP_ENV, ARTIFACT, appHostPackages, contractAppEnv, RELEASE_PYTHON, renderAppContract, SYSTEM_PYTHON_PACKAGES, WSGI_MODULE } from "../components/app/contract";
import { DEFAULTS } from "../components/config";
import { renderEnvFile } from "../components/hosts/env-file";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { hostFiles } from "../scripts/preview/plan";
import { ROOT } from "../scripts/preview/stack-file";
import { Artifact, buildArtifacts } from "../scripts/rehearsal/artifacts";
import { committedStack } from "./harness";
import { Cluster, PG_BINDIR, startAppCluster } from "./pg";
import { AWS_CLI } from "./s3";
import { startFakePostgres } from "./fake-postgres";
import { requireTool, run } from "./tools";

const HOST = "app.nourishlink.test";
const DB_PASSWORD = "contract-test-password";

/** Requirement names of a requirements.txt (comments, options and blank lines dropped). */
const requirementNames = (text: string): string[] =>
  text.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l && !l.startsWith("-"))
    .map((l) => /^[A-Za-z0-9._-]+/.exec(l)?.[0] ?? l);

/** Debian packages `names` pull in (Depends and Pre-Depends, every alternative), from this machine's dpkg. */
function dependencyClosure(names: string[]): Set<string> {
  const seen = new Set<string>();
  let todo = [...names];
  while (todo.length) {
    const batch = todo.filter((n) => !seen.has(n));
    todo = [];
    if (!batch.length) break;
    batch.forEach((n) => seen.add(n));
    const r = run("dpkg-query", ["-W", "-f", "${Package}\t${Depends}, ${Pre-Depends}, ${Provides}\n", ...batch]);
    for (const line of r.stdout.split("\n").filter(Boolean)) {
      const deps = line.split("\t")[1];
      for (const d of deps.split(/[,|]/)) {
        const name = d.trim().split(/[\s(:]/)[0];
        if (name && !seen.has(name)) todo.push(name);
      }
    }
  }
  return seen;
}

/** The Debian package owning each file (under /usr, or where dpkg put it before /usr was merged), in one dpkg -S. */
function owners(files: string[]): Map<string, string> {
  const premerge = (f: string) => (/^\/usr\/s?bin\//.test(f) ? f.slice(4) : f);
  const r = run("dpkg", ["-S", ...new Set(files.flatMap((f) => [f, premerge(f)]))]);
  const byPath = new Map(r.stdout.split("\n").filter(Boolean).map((l) => [l.slice(l.indexOf(": ") + 2), l.slice(0, l.indexOf(": ")).split(",")[0].trim()]));
  return new Map(files.map((f) => {
    const pkg = byPath.get(f) ?? byPath.get(premerge(f));
    assert.ok(pkg, `no Debian package owns ${f}: ${r.stderr}`);
    return [f, pkg];
  }));
}

describe("app contract (components/app/contract.ts)", () => {
  let tmp = "";
  let artifacts: Artifact[] = [];
  let appDir = "";
  let venvPython = "";

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nlcontract-"));
    fs.chmodSync(tmp, 0o755);
    artifacts = buildArtifacts(path.join(tmp, "artifacts"));
    // 1.0.0 unpacked, and its virtualenv made as `release fetch` makes one (offline: Debian's packages only).
    appDir = path.join(tmp, "app");
    fs.mkdirSync(appDir);
    assert.equal(run("tar", ["-xzf", artifacts[0].file, "-C", appDir]).status, 0);
    const venv = path.join(tmp, "venv");
    const mk = run(RELEASE_PYTHON, ["-m", "venv", "--system-site-packages", venv]);
    assert.equal(mk.status, 0, mk.stderr);
    const pip = run(path.join(venv, "bin/python"), ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", path.join(appDir, "requirements.txt")],
      { env: { PATH: process.env.PATH, PIP_NO_INDEX: "1" } });
    assert.equal(pip.status, 0, `pip install (offline): ${pip.stdout}${pip.stderr}`);
    venvPython = path.join(venv, "bin/python");
  });
  after(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

  it("docs/RELEASES.md's app contract block is the rendered contract", () => {
    const page = fs.readFileSync(path.join(ROOT, "docs/RELEASES.md"), "utf8");
    const m = /<!-- app-contract:start -->\n([\s\S]*?)\n<!-- app-contract:end -->/.exec(page);
    assert.ok(m, "docs/RELEASES.md lacks the app-contract markers");
    assert.equal(m[1], renderAppContract(), "docs/RELEASES.md's app contract is stale: paste the output of `npm run -s app-contract`");
  });

  it("the smoke command the hosts run is the contract's, and the sample app has it", () => {
    const lib = fs.readFileSync(path.join(ROOT, "scripts/host/lib/smoke.sh"), "utf8");
    assert.match(lib, new RegExp(`^SMOKE_COMMAND=${SMOKE_COMMAND}$`, "m"));
    assert.ok(fs.existsSync(path.join(ROOT, "test/fixtures/dusangire/meals/management/commands", `${SMOKE_COMMAND}.py`)));
  });

  it("every rehearsal artifact holds the required files, none of the refused ones, and names gunicorn", () => {
    assert.equal(WSGI_MODULE, "dusangire.wsgi:application");
    for (const a of artifacts) {
      const names = run("tar", ["-tzf", a.file]).stdout.split("\n").filter(Boolean);
      for (const e of ARTIFACT.required) assert.ok(names.includes(e.path), `${a.version} lacks ${e.path}`);
      for (const e of ARTIFACT.forbidden) {
        assert.ok(!names.some((n) => n === e.path || n.startsWith(`${e.path.replace(/\/$/, "")}/`)), `${a.version} ships ${e.path}`);
      }
      const reqs = requirementNames(run("tar", ["-xOzf", a.file, "requirements.txt"]).stdout).map((n) => n.toLowerCase());
      assert.ok(reqs.includes("gunicorn"), `${a.version}'s requirements.txt does not name gunicorn`);
    }
  });

  it("contractAppEnv (the rehearsal's app.env goes through it) refuses a variable too many or too few", () => {
    const all = Object.fromEntries(APP_ENV.map((v) => [v.name, "x"]));
    assert.deepEqual(contractAppEnv(all), all);
    const { MEDIA_ROOT: _media, ...fewer } = all;
    assert.throws(() => contractAppEnv({ ...fewer, DEBUG: "1" }), /^Error: app\.env must hold exactly the app contract's variables \(components\/app\/contract\.ts\): MEDIA_ROOT missing, DEBUG not in the contract$/);
    assert.match(fs.readFileSync(path.join(ROOT, "scripts/rehearsal/host.ts"), "utf8"), /app\.env"\), contractAppEnv\(\{/);
  });

  it("`nourishctl setup app-env` writes exactly the contract's variables, in its order", () => {
    const root = path.join(tmp, "host");
    const bin = path.join(tmp, "bin");
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), renderEnvFile("host.env", {
      ROLE: "app", REGION: "eu-west-1", DOMAIN: HOST, DB_HOST: "10.0.0.5", DB_NAME: "dusangire", DB_USER: "dusangire",
      DB_PASSWORD_PARAMETER: "/p/db", DJANGO_SECRET_KEY_PARAMETER: "/p/key",
    }));
    // A stand-in `aws ssm get-parameter` printing a value per parameter.
    fs.writeFileSync(path.join(bin, "aws"), "#!/bin/sh\ncase \"$*\" in *\"--name /p/db \"*) echo db-secret ;; *\"--name /p/key \"*) echo key-secret ;; *) exit 3 ;; esac\n", { mode: 0o755 });
    const r = spawnSync("bash", [NOURISHCTL_SOURCE, "setup", "app-env"], { encoding: "utf8", env: { ...process.env, NOURISH_ROOT: root, PATH: `${bin}:${process.env.PATH}` } });
    assert.equal(r.status, 0, r.stderr);
    const written = fs.readFileSync(path.join(root, "etc/nourish-link/app.env"), "utf8");
    assert.deepEqual(written.split("\n").filter(Boolean).map((l) => l.slice(0, l.indexOf("="))), APP_ENV.map((v) => v.name));
    for (const [name, value] of [["DATABASE_PORT", "5432"], ["DATABASE_SSLMODE", "require"], ["STATIC_ROOT", "/srv/nourish-link/shared/static"], ["MEDIA_ROOT", "/srv/nourish-link/shared/media"]]) {
      assert.match(written, new RegExp(`^${name}="?${value}"?$`, "m"));
      assert.ok(APP_ENV.find((v) => v.name === name)!.value.includes(value), `the contract does not say ${name}=${value}`);
    }
  });

  describe("the sample app, run with exactly the contract's environment", () => {
    let db: Cluster | undefined;
    let gunicorn: ChildProcess | undefined;
    const record = () => path.join(tmp, "env-reads");

    before(async () => {
      db = await startAppCluster({ appPassword: DB_PASSWORD });
      // Records each environment read whose nearest caller outside os and _collections_abc (frozen
      // modules, `<frozen os>`, included) is a file of the app.
      fs.mkdirSync(path.join(tmp, "recorder"));
      fs.writeFileSync(path.join(tmp, "recorder/sitecustomize.py"), [
        "import os, sys, _collections_abc",
        "_APP, _OUT = os.environ.get('CONTRACT_APP_DIR'), os.environ.get('CONTRACT_RECORD')",
        "_SKIP = {os.__file__, _collections_abc.__file__}",
        "class _Recording(type(os.environ)):",
        "    def _note(self, key):",
        "        f = sys._getframe(2)",
        "        while f is not None and (f.f_code.co_filename in _SKIP or f.f_code.co_filename.startswith('<')):",
        "            f = f.f_back",
        "        if f is not None and os.path.abspath(f.f_code.co_filename).startswith(_APP + '/'):",
        "            with open(_OUT, 'a') as out:",
        "                out.write(f'{key}\\t{os.path.abspath(f.f_code.co_filename)}\\n')",
        "    def __getitem__(self, key):",
        "        self._note(key)",
        "        return super().__getitem__(key)",
        "    def __contains__(self, key):",
        "        self._note(key)",
        "        return super().__contains__(key)",
        "    def __iter__(self):",
        "        self._note('* (the whole environment)')",
        "        return super().__iter__()",
        "if _APP and _OUT:",
        "    os.environ.__class__ = _Recording",
        "",
      ].join("\n"));
    });
    after(async () => {
      if (gunicorn && gunicorn.exitCode === null) {
        const exited = new Promise((r) => gunicorn!.once("exit", r));
        gunicorn.kill("SIGTERM");
        await exited;
      }
      db?.stop();
    });

    /** The contract's variables with this test's values; nothing else of the app's but PATH and the recorder. */
    function contractEnv(): NodeJS.ProcessEnv {
      const values: Record<string, string> = {
        DJANGO_SETTINGS_MODULE: "dusangire.settings", DJANGO_ALLOWED_HOSTS: HOST,
        DATABASE_HOST: "127.0.0.1", DATABASE_PORT: String(db!.port), DATABASE_NAME: "dusangire", DATABASE_USER: "dusangire",
        DATABASE_SSLMODE: "require", PGCHANNELBINDING: "require", DATABASE_PASSWORD: DB_PASSWORD, DJANGO_SECRET_KEY: "k".repeat(60),
        STATIC_ROOT: path.join(tmp, "static"), MEDIA_ROOT: path.join(tmp, "media"),
      };
      assert.deepEqual(Object.keys(values), APP_ENV.map((v) => v.name));
      return { PATH: process.env.PATH, LANG: "C.UTF-8", PYTHONPATH: path.join(tmp, "recorder"), CONTRACT_APP_DIR: appDir, CONTRACT_RECORD: record(), ...values };
    }
    const manage = (args: string[]) => run(venvPython, ["manage.py", ...args], { cwd: appDir, env: contractEnv(), timeout: 180_000 });

    it("migrates, collects static files into STATIC_ROOT, passes check --deploy, answers the health URL under gunicorn, and reads exactly the contract's variables", async () => {
      for (const args of [["migrate", "--noinput"], ["collectstatic", "--noinput"], ["check", "--deploy"]]) {
        const r = manage(args);
        assert.equal(r.status, 0, `manage.py ${args.join(" ")}: ${r.stdout}${r.stderr}`);
      }
      assert.ok(fs.existsSync(path.join(tmp, "static/staticfiles.json")), "collectstatic wrote nothing into STATIC_ROOT");

      const socket = path.join(tmp, "app.sock");
      gunicorn = spawn(venvPython, ["-m", "gunicorn", "--bind", `unix:${socket}`, "--workers", "1", WSGI_MODULE], { cwd: appDir, env: contractEnv(), stdio: ["ignore", "ignore", "pipe"] });
      let log = "";
      gunicorn.stderr!.on("data", (c) => (log += c));
      const healthPath = DEFAULTS.staging.release?.healthPath ?? assert.fail("no default release.healthPath");
      const get = () => new Promise<{ status: number; release: unknown }>((resolve, reject) => {
        http.get({ socketPath: socket, path: healthPath, headers: { Host: HOST }, agent: false }, (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, release: res.headers["x-release"] }));
        }).on("error", reject);
      });
      let reply: { status: number; release: unknown } | undefined;
      for (const end = Date.now() + 20_000; !reply; await new Promise((r) => setTimeout(r, 100))) {
        if (gunicorn.exitCode !== null) assert.fail(`gunicorn exited: ${log}`);
        reply = await get().catch((e) => { if (Date.now() > end) throw new Error(`${healthPath} did not answer: ${e}\n${log}`); return undefined; });
      }
      assert.deepEqual(reply, { status: 200, release: "1.0.0" }, log);

      const reads = fs.readFileSync(record(), "utf8").split("\n").filter(Boolean).map((l) => l.split("\t"));
      const names = [...new Set(reads.map(([n]) => n))].sort();
      assert.deepEqual(names, APP_ENV.filter((v) => !v.readByLibpq).map((v) => v.name).sort(),
        `the app reads ${names.join(", ")}:\n${reads.map(([n, f]) => `  ${n} in ${path.relative(appDir, f)}`).join("\n")}`);
    });

    it("gives a host posing as the database no password: libpq reads PGCHANNELBINDING under Django (without it, the password goes out in clear)", async () => {
      const fake = await startFakePostgres();
      try {
        const at = (env: NodeJS.ProcessEnv) => run(venvPython, ["manage.py", "migrate", "--noinput"], { cwd: appDir, env: { ...env, DATABASE_PORT: String(fake.port) }, timeout: 60_000 });
        const refused = at(contractEnv());
        assert.notEqual(refused.status, 0);
        assert.match(refused.stderr, /channel binding required/);
        assert.ok(fake.startups >= 1, "the app never reached the host posing as the database");
        assert.deepEqual(fake.captured, []);
        const { PGCHANNELBINDING: _, ...without } = contractEnv();
        at(without);
        assert.deepEqual(fake.captured, [DB_PASSWORD], "without PGCHANNELBINDING the app should have sent its password (the threat it removes)");
      } finally {
        await fake.stop();
      }
    });
  });

  it("every Debian package the rehearsal's hosts rely on is one their user data installs", async () => {
    for (const t of ["nginx", "curl", "flock", "runuser"]) requireTool(t);
    // prod: the staging stack's app hosts differ only by certbot (TLS on nginx).
    const files = hostFiles(await committedStack("prod"));
    const installedOn = (role: string): string[] => {
      const userData = files.find((f) => f.role === role && f.path === "user-data.yaml");
      assert.ok(userData, `no ${role} user data`);
      return parse(userData.content.replace(/^#cloud-config\n/, "")).packages;
    };
    const app = installedOn("app");
    assert.deepEqual(app.filter((p) => appHostPackages("nginx").includes(p)).sort(), appHostPackages("alb").sort(), "the app hosts do not install the contract's packages");
    const inEveryDebian = (p: string) => /^(required|important)$/.test(run("dpkg-query", ["-W", "-f", "${Priority}", p]).stdout);
    const resolve = (cmd: string): string => fs.realpathSync(cmd.startsWith("/") ? cmd : run("sh", ["-c", `command -v ${cmd}`]).stdout.trim());

    // What each of the rehearsal's hosts relies on, as [what, file].
    const relied: Record<"app" | "db", [string, string][]> = { app: [], db: [] };
    // The app host's virtualenv: the Debian distribution that satisfied each requirement.
    for (const name of requirementNames(fs.readFileSync(path.join(appDir, "requirements.txt"), "utf8"))) {
      const where = run(venvPython, ["-c", "import importlib.metadata as m, sys; print(m.distribution(sys.argv[1])._path)", name]);
      assert.equal(where.status, 0, where.stderr);
      const dist = where.stdout.trim();
      assert.ok(!dist.startsWith(tmp), `${name} was installed into the venv, not taken from Debian: the contract must tell the artifact to bring it`);
      assert.ok(SYSTEM_PYTHON_PACKAGES.some((p) => p.requirement.toLowerCase() === name.toLowerCase()), `the contract does not list ${name} among what Debian gives the venv`);
      relied.app.push([`requirement ${name}`, dist]);
    }
    // What the rehearsal runs as the app host: nginx (loopback.ts), the venv's interpreter and its
    // venv module, and what nourishctl's app verbs call.
    relied.app.push(["python3 -m venv", `/usr/lib/${path.basename(fs.realpathSync(RELEASE_PYTHON))}/ensurepip/__init__.py`]);
    for (const cmd of [RELEASE_PYTHON, "nginx", "curl", "flock", "runuser", "tar", "sha256sum", AWS_CLI]) relied.app.push([cmd, resolve(cmd)]);
    // As the database host (test/pg.ts, nourishctl backup and restore).
    for (const cmd of ["postgres", "pg_ctl", "initdb", "psql", "pg_dump", "pg_restore"].map((c) => path.join(PG_BINDIR, c))
      .concat(["flock", "runuser", "sha256sum", AWS_CLI])) relied.db.push([cmd, resolve(cmd)]);
    const owner = owners([...relied.app, ...relied.db].map(([, f]) => f));

    const missing = (["app", "db"] as const).flatMap((role) => {
      const closure = dependencyClosure(installedOn(role));
      return relied[role].map(([what, file]) => [what, owner.get(file)!]).filter(([, pkg]) => !closure.has(pkg) && !inEveryDebian(pkg))
        .map(([what, pkg]) => `${role}: ${what} needs ${pkg}`);
    });
    assert.deepEqual(missing, [], "the rehearsal relies on packages the hosts' user data does not install");
  });
});
