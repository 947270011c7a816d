// nourishctl on an app host (sandbox, real bash, python, pip, gunicorn): secrets in app.env are
// data whatever they hold; pip runs as the app user, offline from the artifact's wheels and
// checked against its hashes; the app user owns nothing in a release but its venv, so it cannot
// plant a link where root writes.
import * as assert from "assert";
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { GUNICORN_SERVICE_NAME, renderGunicornService } from "../components/app/gunicorn";
import { renderEnvFile } from "../components/hosts/env-file";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { nastyValues, PRINTABLE } from "./env-files";
import { freePort, requireTool } from "./tools";
import { tinyWheel } from "./wheels";

const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/** A release tarball: a manage.py that records the environment it sees, a WSGI app, `files`. */
function artifact(out: string, name: string, files: Record<string, string | Buffer>): { file: string; sha256: string } {
  const src = path.join(out, name);
  const all: Record<string, string | Buffer> = {
    "manage.py": "import json, os, sys\nif os.environ.get('ENV_DUMP'):\n    with open(os.environ['ENV_DUMP'], 'w') as f:\n        json.dump(dict(os.environ), f)\n",
    "requirements.txt": "",
    "dusangire/__init__.py": "",
    "dusangire/wsgi.py": "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'ok']\n",
    ...files,
  };
  for (const [f, content] of Object.entries(all)) {
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.writeFileSync(path.join(src, f), content);
  }
  const file = path.join(out, `${name}.tar.gz`);
  const r = spawnSync("tar", ["-czf", file, "-C", src, "."]);
  assert.strictEqual(r.status, 0, String(r.stderr));
  return { file, sha256: sha256(file) };
}

describe("nourishctl release: secrets as data, pip as the app user (sandbox)", function () {
  this.timeout(180_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-relsafe-"));
  const root = path.join(dir, "root");
  const srv = path.join(root, "srv/nourish-link");
  const bin = path.join(dir, "bin");
  const marker = path.join(dir, "ran");
  const secrets = { db: PRINTABLE, key: `${nastyValues(marker).RUNS} it's "quoted" \\ ends\\ ` };
  const children: ChildProcess[] = [];
  const ctl = (args: string[], env: Record<string, string> = {}) => spawnSync("bash", [NOURISHCTL_SOURCE, ...args], {
    encoding: "utf8", env: { ...process.env, NOURISH_ROOT: root, PIP_NO_INDEX: "1", PATH: `${bin}:${process.env.PATH}`, ...env },
  });
  const environOf = (pid: number): Record<string, string> => Object.fromEntries(fs.readFileSync(`/proc/${pid}/environ`).toString("utf8")
    .split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));

  before(() => {
    for (const t of ["runuser", "curl", "flock"]) requireTool(t);
    // The app user (nobody here) must reach the sandbox, as nourish reaches /srv on a host.
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.mkdirSync(path.join(root, "etc/systemd/system"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), renderEnvFile("host.env", {
      ROLE: "app", REGION: "eu-west-1", DOMAIN: "app.nourishlink.test", DB_HOST: "10.0.0.5", DB_NAME: "dusangire", DB_USER: "dusangire",
      DB_PASSWORD_PARAMETER: "/nourish-link/test/db-password", DJANGO_SECRET_KEY_PARAMETER: "/nourish-link/test/django-secret-key",
      VERIFY_CHECKS: "0", HEALTH_TIMEOUT: "30",
    }));
    // The unit exactly as rendered for the hosts, its paths moved into the sandbox.
    fs.writeFileSync(path.join(root, "etc/systemd/system", GUNICORN_SERVICE_NAME), renderGunicornService({
      workers: 1, releasesDir: path.join(srv, "releases"), runDir: path.join(root, "run/nourish-link"), envFile: path.join(root, "etc/nourish-link/app.env"),
    }));
    // A stand-in `aws ssm get-parameter`: the secret reaches nourishctl on stdout, from a file.
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(dir, "db-secret"), secrets.db);
    fs.writeFileSync(path.join(dir, "key-secret"), secrets.key);
    fs.writeFileSync(path.join(bin, "aws"), `#!/bin/sh\ncase "$*" in\n  *"ssm get-parameter"*"--name /nourish-link/test/db-password "*) cat ${dir}/db-secret ;;\n` +
      `  *"ssm get-parameter"*"--name /nourish-link/test/django-secret-key "*) cat ${dir}/key-secret ;;\n  *) exit 3 ;;\nesac\n`, { mode: 0o755 });
  });
  after(() => {
    for (const c of children) c.kill("SIGKILL");
    const pidfile = path.join(root, "run/nourish-link-app@1.0.0.pid");
    if (fs.existsSync(pidfile)) try { process.kill(Number(fs.readFileSync(pidfile, "utf8")), "SIGKILL"); } catch { /* gone */ }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("secrets with every printable character reach manage.py and gunicorn byte for byte, and run nothing", () => {
    const w = ctl(["setup", "app-env"]);
    assert.strictEqual(w.status, 0, w.stderr);
    const appEnv = fs.readFileSync(path.join(root, "etc/nourish-link/app.env"), "utf8");
    assert.strictEqual((fs.statSync(path.join(root, "etc/nourish-link/app.env")).mode & 0o777).toString(8), "640");
    assert.ok(appEnv.includes("DJANGO_ALLOWED_HOSTS=\"app.nourishlink.test\"\n"), appEnv);

    const a = artifact(dir, "env-1.0.0", {});
    const fetched = ctl(["release", "fetch", "1.0.0", "--file", a.file, "--sha256", a.sha256]);
    assert.strictEqual(fetched.status, 0, fetched.stderr);
    // manage.py through a release step (rel_manage).
    const dump = path.join(dir, "manage-env.json");
    const m = ctl(["release", "migrate", "1.0.0"], { ENV_DUMP: dump });
    assert.strictEqual(m.status, 0, m.stderr);
    const seen = JSON.parse(fs.readFileSync(dump, "utf8"));
    assert.strictEqual(seen.DATABASE_PASSWORD, secrets.db);
    assert.strictEqual(seen.DJANGO_SECRET_KEY, secrets.key);
    assert.strictEqual(seen.DATABASE_HOST, "10.0.0.5");
    // gunicorn started through the rendered unit's EnvironmentFile= (sandbox_unit).
    const s = ctl(["release", "switch", "1.0.0"]);
    assert.strictEqual(s.status, 0, s.stderr);
    const pid = Number(fs.readFileSync(path.join(root, "run/nourish-link-app@1.0.0.pid"), "utf8"));
    const env = environOf(pid);
    assert.match(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"), /gunicorn/);
    assert.strictEqual(env.DATABASE_PASSWORD, secrets.db);
    assert.strictEqual(env.DJANGO_SECRET_KEY, secrets.key);
    assert.strictEqual(env.DJANGO_SETTINGS_MODULE, "dusangire.settings");
    assert.ok(!fs.existsSync(marker), "a $(...) or `...` in a secret ran");
  });

  it("an app.env that is not data stops the release step, naming file and line, without running it", () => {
    const file = path.join(root, "etc/nourish-link/app.env");
    const good = fs.readFileSync(file);
    try {
      fs.writeFileSync(file, `A=1\n$(touch ${marker})=x\n`);
      const r = ctl(["release", "migrate", "1.0.0"]);
      assert.strictEqual(r.status, 1);
      assert.strictEqual(r.stderr.split("\n")[0], `nourishctl: ${file} line 2: the name before '=' is not a variable name`);
      assert.ok(!fs.existsSync(marker));
    } finally {
      fs.writeFileSync(file, good);
    }
  });

  it("an artifact that brings its own .nourish/ (a link where root records the release) is refused, the link's target untouched", () => {
    const victim = path.join(dir, "victim-artifact");
    fs.writeFileSync(victim, "precious\n");
    const src = path.join(dir, "planted-1.0.1");
    fs.mkdirSync(path.join(src, ".nourish"), { recursive: true });
    fs.writeFileSync(path.join(src, "manage.py"), "");
    fs.writeFileSync(path.join(src, "requirements.txt"), "");
    fs.symlinkSync(victim, path.join(src, ".nourish/sha256"));
    const file = path.join(dir, "planted-1.0.1.tar.gz");
    assert.strictEqual(spawnSync("tar", ["-czf", file, "-C", src, "."]).status, 0);
    const r = ctl(["release", "fetch", "1.0.1", "--file", file, "--sha256", sha256(file)]);
    assert.strictEqual(r.status, 1, r.stdout);
    assert.match(r.stderr, /release fetch: the artifact of 1\.0\.1 ships a \.nourish entry; the host keeps its records there, not installed/);
    assert.strictEqual(fs.readFileSync(victim, "utf8"), "precious\n");
    assert.ok(!fs.existsSync(path.join(srv, "releases/1.0.1")));
  });

  describe("pip", () => {
    let wheel = "";
    let indexLog = "";
    let indexUrl = "";
    before(async () => {
      wheel = tinyWheel(dir);
      // A package index that only logs: a fetch that asks it anything did not install offline.
      const port = await freePort();
      fs.mkdirSync(path.join(dir, "index"));
      indexLog = path.join(dir, "index.log");
      const log = fs.openSync(indexLog, "w");
      const index = spawn("/usr/bin/python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", path.join(dir, "index")], { stdio: ["ignore", log, log] });
      children.push(index);
      indexUrl = `http://127.0.0.1:${port}/simple/`;
      for (let i = 0; i < 50 && spawnSync("curl", ["-s", "-o", "/dev/null", `http://127.0.0.1:${port}/`]).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
      fs.truncateSync(indexLog);
    });
    const asApp = { NOURISH_APP_USER: "nobody", PIP_NO_INDEX: "", PIP_INDEX_URL: "" };

    it("builds the venv as the app user, from the artifact's wheels only (--no-index) and checked against its hashes", () => {
      const a = artifact(dir, "pip-2.0.0", {
        "requirements.txt": `tinypkg==1.0 --hash=sha256:${sha256(wheel)}\n`,
        [`wheels/${path.basename(wheel)}`]: fs.readFileSync(wheel),
      });
      const r = ctl(["release", "fetch", "2.0.0", "--file", a.file, "--sha256", a.sha256], { ...asApp, PIP_INDEX_URL: indexUrl });
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(fs.readFileSync(indexLog, "utf8"), "", "pip asked the package index");
      const rel = path.join(srv, "releases/2.0.0");
      const nobody = Number(spawnSync("id", ["-u", "nobody"], { encoding: "utf8" }).stdout.trim());
      const installed = spawnSync("find", [path.join(rel, "venv/lib"), "-path", "*/site-packages/tinypkg/__init__.py"], { encoding: "utf8" }).stdout.trim();
      assert.ok(installed, "tinypkg is not in the venv");
      assert.strictEqual(fs.statSync(installed).uid, nobody, "pip did not run as the app user");
      assert.strictEqual(fs.statSync(path.join(rel, "venv/bin/gunicorn")).uid, nobody);
      for (const f of ["", "manage.py", "requirements.txt", ".nourish", ".nourish/installed", ".nourish/sha256"]) {
        assert.strictEqual(fs.statSync(path.join(rel, f)).uid, 0, `${f || "the release"} is not root's`);
      }
      assert.strictEqual(fs.statSync(path.join(srv, "releases")).uid, 0);
    });

    it("the app user cannot plant a link where root writes, nor swap the release", () => {
      const victim = path.join(dir, "victim");
      fs.writeFileSync(victim, "precious\n");
      const rel = path.join(srv, "releases/2.0.0");
      const plant = spawnSync("runuser", ["-u", "nobody", "--", "ln", "-s", victim, path.join(rel, ".nourish/deployed")], { encoding: "utf8" });
      assert.notStrictEqual(plant.status, 0, "the app user planted a link in .nourish");
      const swap = spawnSync("runuser", ["-u", "nobody", "--", "mv", rel, path.join(srv, "releases/2.0.0-moved")], { encoding: "utf8" });
      assert.notStrictEqual(swap.status, 0, "the app user moved a release");
      // A link left in a release installed when the app user owned it: refused, not followed.
      fs.symlinkSync(victim, path.join(rel, ".nourish/migrations-before.tmp"));
      const r = ctl(["release", "migrate", "2.0.0"], asApp);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /release: .*\/releases\/2\.0\.0\/\.nourish\/migrations-before\.tmp is reached through a symbolic link; not writing to it/);
      assert.strictEqual(fs.readFileSync(victim, "utf8"), "precious\n");
      fs.unlinkSync(path.join(rel, ".nourish/migrations-before.tmp"));
    });

    it("a release installed when the app user owned it is taken back by root at the next step, links left in it still refused", () => {
      const old = path.join(srv, "releases/0.9.0");
      fs.mkdirSync(path.join(old, ".nourish"), { recursive: true });
      fs.writeFileSync(path.join(old, ".nourish/installed"), "2026-11-01T00:00:00Z\n");
      assert.strictEqual(spawnSync("chown", ["-R", "nobody", old]).status, 0);
      const r = ctl(["release", "verify", "0.9.0"], asApp);
      assert.match(r.stdout, /release: .*\/releases\/0\.9\.0 now belongs to root/);
      assert.match(r.stdout, /release: .*\/releases\/0\.9\.0\/\.nourish now belongs to root/);
      for (const f of ["", ".nourish", ".nourish/installed"]) assert.strictEqual(fs.statSync(path.join(old, f)).uid, 0, `${f || "the release"} is still the app user's`);
      const plant = spawnSync("runuser", ["-u", "nobody", "--", "ln", "-s", "/etc/passwd", path.join(old, ".nourish/deployed")]);
      assert.notStrictEqual(plant.status, 0, "the app user can still plant a link in an old release");
      const again = ctl(["release", "verify", "0.9.0"], asApp);
      assert.doesNotMatch(again.stdout, /now belongs to root/);
    });

    it("a requirement whose hash does not match fails the fetch and installs nothing", () => {
      const a = artifact(dir, "pip-2.0.1", {
        "requirements.txt": `tinypkg==1.0 --hash=sha256:${"0".repeat(64)}\n`,
        [`wheels/${path.basename(wheel)}`]: fs.readFileSync(wheel),
      });
      const r = ctl(["release", "fetch", "2.0.1", "--file", a.file, "--sha256", a.sha256], asApp);
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /THESE PACKAGES DO NOT MATCH THE HASHES/);
      assert.match(r.stderr, /release fetch: pip install -r requirements\.txt failed for 2\.0\.1; not installed/);
      assert.deepStrictEqual(fs.readdirSync(path.join(srv, "releases")).filter((d) => d.includes("2.0.1")), []);
    });
  });
});
