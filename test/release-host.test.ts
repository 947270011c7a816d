// nourishctl release/rollback/maintenance: the refusals and bookkeeping that need no running
// app (the full drills with PostgreSQL, nginx and gunicorn are in rehearsal.test.ts).
import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderMaintenancePage } from "../components/app/maintenance";
import { renderEnvFile } from "../components/hosts/env-file";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { RELEASE_SOURCE_PATH, renderReleaseSource } from "../components/release/source";
import { Artifact as StackArtifact } from "../components/release/steps";
import { Artifact, buildArtifacts } from "../scripts/rehearsal/artifacts";
import { requireTool, untilLocked } from "./tools";

describe("nourishctl release on an app host (sandbox)", function () {
  this.timeout(300_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-release-"));
  const root = path.join(dir, "root");
  const srv = path.join(root, "srv/nourish-link");
  let v1: Artifact;
  const ctl = (...args: string[]) => spawnSync("bash", [NOURISHCTL_SOURCE, ...args], {
    encoding: "utf8", env: { ...process.env, NOURISH_ROOT: root, PIP_NO_INDEX: "1", SUDO_USER: "alice" },
  });
  /** What `pulumi up` installs with the tooling: the release the stack names, and where it comes from. */
  const sourceFile = () => path.join(root, RELEASE_SOURCE_PATH);
  const stackNames = (version: string, artifact: StackArtifact) => fs.writeFileSync(sourceFile(), renderReleaseSource(version, artifact), { mode: 0o644 });

  before(() => {
    requireTool("flock");
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=app\nDOMAIN=app.nourishlink.test\nKEEP_RELEASES=3\n");
    v1 = buildArtifacts(path.join(dir, "artifacts")).find((a) => a.name === "v1")!;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("has --help for release, rollback and maintenance", () => {
    for (const verb of ["release", "rollback", "maintenance"]) {
      const r = ctl(verb, "--help");
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(r.stdout, /usage: nourishctl/);
    }
    assert.strictEqual(ctl("release").status, 2);
  });

  it("refuses a version that is not a semantic version (no path tricks)", () => {
    const r = ctl("release", "fetch", "../../etc", "--file", v1.file, "--sha256", v1.sha256);
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /release fetch: '\.\.\/\.\.\/etc' is not a release version/);
  });

  it("refuses an artifact whose SHA-256 differs, naming it, and installs nothing", () => {
    const wrong = "0".repeat(64);
    const r = ctl("release", "fetch", "1.0.0", "--file", v1.file, "--sha256", wrong);
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, new RegExp(`artifact ${v1.file.replace(/[.]/g, "\\.")} has sha256 ${v1.sha256}, expected ${wrong}; not installed`));
    assert.deepStrictEqual(fs.readdirSync(path.join(srv, "releases")), []);
  });

  it("installs a release (venv with a gunicorn that uses it), once; a version is immutable", () => {
    const r = ctl("release", "fetch", "1.0.0", "--file", v1.file, "--sha256", v1.sha256);
    assert.strictEqual(r.status, 0, r.stderr);
    const rel = path.join(srv, "releases/1.0.0");
    for (const f of ["manage.py", "VERSION", "venv/bin/python", "venv/bin/gunicorn", ".nourish/installed"]) assert.ok(fs.existsSync(path.join(rel, f)), f);
    assert.strictEqual(fs.readFileSync(path.join(rel, ".nourish/sha256"), "utf8").trim(), v1.sha256);
    const g = spawnSync(path.join(rel, "venv/bin/gunicorn"), ["--version"], { encoding: "utf8" });
    assert.match(g.stdout + g.stderr, /\(version \d+\.\d+/);
    assert.match(ctl("release", "fetch", "1.0.0", "--file", v1.file, "--sha256", v1.sha256).stdout, /1\.0\.0 already installed/);
    const other = ctl("release", "fetch", "1.0.0", "--file", v1.file, "--sha256", "f".repeat(64));
    assert.strictEqual(other.status, 1);
    assert.match(other.stderr, /already installed from a different artifact .*a version is immutable/);
    assert.match(ctl("release", "list").stdout, /1\.0\.0 +installed/);
    assert.match(fs.readFileSync(path.join(srv, "releases.log"), "utf8"), /\tfetch\t1\.0\.0\t.*\talice\n/);
  });

  it("installs a git release pinned to its commit: exactly that commit, its tag checked, nothing read as an option", () => {
    requireTool("git");
    const repo = path.join(dir, "repo");
    fs.mkdirSync(repo);
    spawnSync("tar", ["-xzf", v1.file, "-C", repo]);
    const git = (...a: string[]) => spawnSync("git", ["-C", repo, "-c", "user.name=ci", "-c", "user.email=ci@example.test", ...a], { encoding: "utf8" });
    git("init", "-q");
    git("add", "-A");
    git("commit", "-qm", "v1");
    git("tag", "v1.0.1");
    const commit = git("rev-parse", "HEAD").stdout.trim();
    // The branch moves on after the tag, and another tag points at the tip.
    fs.writeFileSync(path.join(repo, "TIP"), "not released\n");
    git("add", "-A");
    git("commit", "-qm", "after v1");
    git("tag", "moved");
    const tip = git("rev-parse", "HEAD").stdout.trim();
    const url = `file://${repo}`;
    const log = () => (fs.existsSync(path.join(srv, "releases.log")) ? fs.readFileSync(path.join(srv, "releases.log"), "utf8") : "");
    // The host checks what its release source names as it checks anything else it is given.
    const refused = (version: string, artifact: { url: string; commit: string; tag?: string }, expected: RegExp) => {
      stackNames(version, { type: "git", ...artifact });
      const r = ctl("release", "fetch", version);
      assert.strictEqual(r.status, 1, `${JSON.stringify(artifact)}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, expected);
      assert.ok(!fs.existsSync(path.join(srv, "releases", version)), `${version} installed anyway`);
      return r;
    };
    const marker = path.join(dir, "option-ran");
    refused("1.0.2", { url, commit: "master" }, /release fetch: --commit must be the full commit SHA \(40 lower-case hex digits\); a branch, tag or short SHA can move/);
    refused("1.0.2", { url, commit: commit.slice(0, 12) }, /--commit must be the full commit SHA/);
    refused("1.0.2", { url, commit, tag: "moved" }, new RegExp(`release fetch: tag moved of file://.* is commit ${tip}, not ${commit}; not installed`));
    refused("1.0.2", { url, commit: "0".repeat(40) }, /release fetch: file:\/\/.* has no commit 0{40}/);
    refused("1.0.2", { url, commit: `--upload-pack=touch ${marker}` }, /--commit must be the full commit SHA/);
    refused("1.0.2", { url, commit, tag: `--upload-pack=touch ${marker}` }, /release fetch: --tag '--upload-pack=touch .*' is not a tag name/);
    refused("1.0.2", { url: `--upload-pack=touch ${marker}`, commit }, /release fetch: --git must be https:\/\/HOST\/PATH, ssh:\/\/git@HOST\/PATH or git@HOST:PATH, with no credentials/);
    assert.ok(!fs.existsSync(marker), "an argument ran as a git option");
    const token = refused("1.0.2", { url: "https://x-access-token:ghs_secret@github.com/nourish-link/dusangire.git", commit }, /--git must be .* with no credentials or query string/);
    assert.ok(!(token.stdout + token.stderr + log()).includes("ghs_secret"), "the token was echoed or logged");

    stackNames("1.0.1", { type: "git", url, commit, tag: "v1.0.1" });
    const r = ctl("release", "fetch", "1.0.1");
    assert.strictEqual(r.status, 0, r.stderr);
    const rel = path.join(srv, "releases/1.0.1");
    assert.strictEqual(fs.readFileSync(path.join(rel, ".nourish/commit"), "utf8").trim(), commit);
    assert.ok(!fs.existsSync(path.join(rel, "TIP")), "the branch tip was checked out, not the commit");
    assert.ok(fs.existsSync(path.join(rel, "manage.py")));
    assert.ok(!fs.existsSync(path.join(rel, ".git")), "the checkout keeps no .git");
    assert.match(log(), new RegExp(`\tfetch\t1\\.0\\.1\tfile://${repo.replace(/[.]/g, "\\.")} commit ${commit} tag v1\\.0\\.1\talice\n`));
    // Immutable: the same version from another commit is refused.
    stackNames("1.0.1", { type: "git", url, commit: tip });
    const other = ctl("release", "fetch", "1.0.1");
    assert.strictEqual(other.status, 1);
    assert.match(other.stderr, new RegExp(`1\\.0\\.1 is already installed from a different artifact \\(commit ${commit}\\)`));
    fs.rmSync(sourceFile());
  });

  it("fetches only what its stack names: a source from the caller, another version, no release source are refused before anything is downloaded", () => {
    // aws and git stand-ins that record any call: none may happen before the source is the stack's.
    const shims = path.join(dir, "shims");
    const calls = path.join(dir, "calls");
    fs.mkdirSync(shims);
    for (const tool of ["aws", "git"]) fs.writeFileSync(path.join(shims, tool), `#!/bin/sh\necho "${tool} $*" >> '${calls}'\nexit 1\n`, { mode: 0o755 });
    const fetch = (...args: string[]) => spawnSync("bash", [NOURISHCTL_SOURCE, "release", ...args], {
      encoding: "utf8", env: { ...process.env, NOURISH_ROOT: root, PIP_NO_INDEX: "1", SUDO_USER: "alice", PATH: `${shims}:${process.env.PATH}` },
    });
    const refused = (args: string[], expected: RegExp) => {
      const r = fetch(...args);
      assert.strictEqual(r.status, 1, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, expected, args.join(" "));
      assert.ok(!fs.existsSync(calls), `${args.join(" ")} reached ${fs.existsSync(calls) ? fs.readFileSync(calls, "utf8") : ""}`);
    };
    const sha = "a".repeat(64);
    refused(["fetch", "3.0.0"], new RegExp(`release fetch: ${sourceFile()} is missing: this host's stack names no release to fetch`));
    stackNames("3.0.0", { type: "s3", bucket: "nourish-link-releases", key: "releases/nourish-link-3.0.0.tar.gz", sha256: sha });
    const gone = (opt: string) => new RegExp(`release fetch: ${opt} is gone: a host fetches only the release its stack names in ${sourceFile()}`);
    for (const [opt, ...rest] of [
      ["--s3", "s3://attacker-bucket/releases/nourish-link-3.0.0.tar.gz", "--sha256", sha],
      ["--git", "https://attacker.example/evil.git", "--commit", "4c9d381ee11d476062383b684cbe0d11fde4912d"],
      ["--commit", "4c9d381ee11d476062383b684cbe0d11fde4912d"], ["--tag", "v3.0.0"],
    ]) {
      refused(["fetch", "3.0.0", opt, ...rest], gone(opt));
      refused(["3.0.0", opt, ...rest], gone(opt));
    }
    refused(["fetch", "3.0.0", "--sha256", sha], /release fetch: --sha256 goes with --file/);
    refused(["fetch", "3.0.1"], new RegExp(`release fetch: this host's stack names release 3\\.0\\.0 \\(${sourceFile()}\\), not 3\\.0\\.1; nothing fetched`));
    // release.version set back without release.artifact: the live release's artifact under another name.
    stackNames("3.0.0", { type: "s3", bucket: "nourish-link-releases", key: "releases/nourish-link-1.0.0.tar.gz", sha256: v1.sha256 });
    refused(["fetch", "3.0.0"], /release fetch: the stack names for 3\.0\.0 the artifact of release 1\.0\.0 here; set release\.artifact with release\.version, nothing fetched/);
    stackNames("3.0.0", { type: "s3", bucket: "nourish-link-releases", key: "releases/nourish-link-3.0.0.tar.gz", sha256: sha });
    assert.ok(!fs.readdirSync(path.join(srv, "releases")).some((d) => d.startsWith("3.")), "a refused release was installed");
    // The version it names comes from where it names, and nowhere else.
    const r = fetch("fetch", "3.0.0");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /release fetch: cannot download s3:\/\/nourish-link-releases\/releases\/nourish-link-3\.0\.0\.tar\.gz/);
    assert.deepStrictEqual(fs.readFileSync(calls, "utf8").trim().split("\n").map((l) => l.split(" ").filter((w) => w.startsWith("s3://"))), [["s3://nourish-link-releases/releases/nourish-link-3.0.0.tar.gz"]]);
    // An installed release needs no source: rolling back to it fetches nothing.
    assert.match(fetch("fetch", "1.0.0").stdout, /1\.0\.0 already installed/);
    fs.rmSync(sourceFile());
  });

  it("one deploy at a time: a second one is refused, naming who holds the lock", async () => {
    fs.writeFileSync(path.join(srv, ".deploy.lock.info"), "release 1.4.2 by bob since 2026-11-28T10:00:00Z (pid 1)\n");
    // Its own process group, so the sleep that inherits the lock dies with it.
    const holder = spawn("flock", [path.join(srv, ".deploy.lock"), "sleep", "30"], { stdio: "ignore", detached: true });
    try {
      await untilLocked(path.join(srv, ".deploy.lock"));
      const r = ctl("release", "switch", "1.0.0");
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /release switch 1\.0\.0: another deploy is running \(release 1\.4\.2 by bob since 2026-11-28T10:00:00Z \(pid 1\)\)/);
    } finally {
      process.kill(-holder.pid!, "SIGKILL");
    }
  });

  it("records only a pre-release backup key that nourishctl backup could have written, refusing any other before touching anything", () => {
    for (const key of ["../../etc/shadow", "dumps/daily/db_backup_20261101_020000.dump; reboot", "x/dumps/daily/db_backup_20261101_020000.dump"]) {
      const sw = ctl("release", "switch", "1.0.0", "--pre-release-backup", key);
      assert.strictEqual(sw.status, 1, key);
      assert.ok(sw.stderr.includes(`nourishctl: release switch: --pre-release-backup '${key}' is not a backup key`), sw.stderr);
      const whole = ctl("release", "9.9.9", "--file", v1.file, "--sha256", v1.sha256, "--pre-release-backup", key);
      assert.strictEqual(whole.status, 1, key);
      assert.match(whole.stderr, /nourishctl: release: --pre-release-backup '.*' is not a backup key .*nothing changed/);
    }
    assert.ok(!fs.existsSync(path.join(srv, "releases/1.0.0/.nourish/pre-release-backup")), "a refused key was recorded");
    assert.ok(!fs.existsSync(path.join(srv, "releases/9.9.9")), "the refused release was fetched");
  });

  it("switch and rollback refuse what is not there", () => {
    const r = ctl("release", "switch", "2.0.0");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /release switch: release 2\.0\.0 is not installed here/);
    const rb = ctl("rollback");
    assert.strictEqual(rb.status, 1);
    assert.match(rb.stderr, /rollback: no release is live yet/);
  });

  it("maintenance on|status|off drives the flag nginx reads, saying who set it", () => {
    const flag = path.join(srv, "maintenance/on");
    assert.strictEqual(ctl("maintenance", "on").status, 0);
    assert.match(fs.readFileSync(flag, "utf8"), /^on by alice at \d{4}-/);
    assert.match(ctl("maintenance", "status").stdout, /maintenance: on by alice/);
    assert.strictEqual(ctl("maintenance", "off").status, 0);
    assert.ok(!fs.existsSync(flag));
    assert.match(ctl("maintenance", "status").stdout, /maintenance: off/);
    const bad = ctl("maintenance", "sideways");
    assert.strictEqual(bad.status, 1);
    assert.match(bad.stderr, /maintenance: say on, off or status/);
  });

  it("maintenance on --message --until puts the text (escaped) and the estimated end on the page; off empties it", () => {
    const page = path.join(srv, "maintenance/index.html");
    fs.mkdirSync(path.dirname(page), { recursive: true });
    fs.writeFileSync(page, renderMaintenancePage());
    const message = `Moving the database <script>alert("x")</script> & co`;
    const r = spawnSync("bash", [NOURISHCTL_SOURCE, "maintenance", "on", "--message", message, "--until", "14:30"], {
      encoding: "utf8", env: { ...process.env, NOURISH_ROOT: root, SUDO_USER: "alice", TZ: "UTC" },
    });
    assert.strictEqual(r.status, 0, r.stderr);
    const html = fs.readFileSync(page, "utf8");
    // Browser-free render: the text a browser would show, with no raw tag from the message.
    assert.match(html, /<p class="notice">Moving the database &lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; co<\/p>/);
    assert.doesNotMatch(html, /<script/);
    assert.match(html, /<p class="notice">Expected back by 14:30 UTC\.<\/p>/);
    assert.match(ctl("maintenance", "status").stdout, /maintenance: on by alice at .*; message: Moving the database <script>.*; until 14:30 UTC/);
    for (const bad of ["25:00", "9:30", "14:30; rm -rf /"]) {
      const b = ctl("maintenance", "on", "--until", bad);
      assert.strictEqual(b.status, 1, bad);
      assert.match(b.stderr, /^nourishctl: maintenance on: --until '.*' is not HH:MM \(24-hour, e\.g\. 14:30\)\n$/);
    }
    const twoLines = ctl("maintenance", "on", "--message", "one\ntwo");
    assert.match(twoLines.stderr, /^nourishctl: maintenance on: --message must be one line of printable text\n$/);
    assert.strictEqual(fs.readFileSync(page, "utf8"), html, "a refused option changes nothing");
    assert.strictEqual(ctl("maintenance", "off").status, 0);
    assert.strictEqual(fs.readFileSync(page, "utf8"), renderMaintenancePage());
  });

  describe("report weekly", () => {
    const wheels = path.join(dir, "wheels");
    const current = path.join(srv, "current");
    const metricsDir = path.join(root, "var/lib/nourish-link/metrics");
    const metricValue = (name: string) => fs.readFileSync(path.join(metricsDir, name), "utf8").trim();
    const appEnv = (secretKey: string) => fs.writeFileSync(path.join(root, "etc/nourish-link/app.env"),
      renderEnvFile("app.env", { DJANGO_SECRET_KEY: secretKey, DJANGO_ALLOWED_HOSTS: "app.nourishlink.test" }));
    // pip as the host's would run: none of this machine's pip configuration, the index we say.
    const pipEnv = (pip: Record<string, string>) => ({
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PIP_"))), PIP_CONFIG_FILE: os.devNull, NOURISH_ROOT: root, ...pip,
    });
    // The checks only (what every app host's timer runs but app-0's, which also writes the period's
    // report: test/report.test.ts).
    const report = (...args: string[]) => spawnSync("bash", [NOURISHCTL_SOURCE, "report", "weekly", "--checks-only", ...args], {
      encoding: "utf8", env: pipEnv({ PIP_NO_INDEX: "1", PIP_FIND_LINKS: wheels }),
    });

    before(function () {
      fs.mkdirSync(wheels, { recursive: true });
      // A package the release's virtualenv installed itself (nl-demo 1.0), and a newer one on the index.
      const make = spawnSync("python3", ["-c", `
import base64, hashlib, sys, zipfile
def wheel(out, version):
    files = {"nl_demo/__init__.py": f"VERSION = '{version}'\\n",
             f"nl_demo-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\\nName: nl-demo\\nVersion: {version}\\n",
             f"nl_demo-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = "".join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b'=').decode()},{len(c.encode())}\\n" for n, c in files.items())
    files[f"nl_demo-{version}.dist-info/RECORD"] = record + f"nl_demo-{version}.dist-info/RECORD,,\\n"
    with zipfile.ZipFile(f"{out}/nl_demo-{version}-py3-none-any.whl", "w") as z:
        for n, c in files.items(): z.writestr(n, c)
wheel(sys.argv[1], "1.0"); wheel(sys.argv[1], "1.1")`, wheels], { encoding: "utf8" });
      assert.strictEqual(make.status, 0, make.stderr);
      // The release "installs a release" fetched, made live as a switch leaves it.
      assert.ok(fs.existsSync(path.join(srv, "releases/1.0.0/.nourish/installed")), "release 1.0.0 is not installed");
      const pip = spawnSync(path.join(srv, "releases/1.0.0/venv/bin/python"), ["-m", "pip", "install", "-q", "--no-index", "--find-links", wheels, "nl-demo==1.0"], { encoding: "utf8" });
      assert.strictEqual(pip.status, 0, pip.stderr);
    });
    after(() => fs.rmSync(current, { force: true }));

    it("refuses on a host with no live release, publishing nothing", () => {
      const r = report();
      assert.strictEqual(r.status, 1);
      assert.strictEqual(r.stderr.trim(), "nourishctl: report weekly: no live release on this host yet (nothing to check)");
      assert.ok(!fs.existsSync(path.join(metricsDir, "DeployCheckIssues")));
      assert.strictEqual(report("--verbose").stderr.trim(), "nourishctl: report weekly: unknown option '--verbose' (--json, --end, --checks-only)");
    });

    it("counts the live release's deploy-check issues and the packages its virtualenv could update, as metrics", () => {
      fs.symlinkSync(path.join(srv, "releases/1.0.0"), current);
      appEnv("too-short-a-key");
      const j = report("--json");
      assert.strictEqual(j.status, 0, j.stderr);
      assert.deepStrictEqual(JSON.parse(j.stdout), {
        release: "1.0.0", deployCheckIssues: 1, deployCheckIds: ["security.W009"],
        outdatedPackages: 1, outdated: [{ name: "nl-demo", version: "1.0", latest: "1.1" }],
      });
      assert.strictEqual(metricValue("DeployCheckIssues"), "1");
      assert.strictEqual(metricValue("OutdatedPackages"), "1");
      // A key as the stack generates it: check --deploy finds nothing; Debian's Django is not counted (--local).
      appEnv("k".repeat(30) + "-Zq8#x!Lm2$Rt7&Vn4@Pw9%Bs6^Hd3*Fj");
      const r = report();
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stdout, [
        "nourishctl: report weekly: release 1.0.0",
        "nourishctl:   manage.py check --deploy: 0 issue(s)",
        "nourishctl:   outdated packages in its virtualenv: 1",
        "nourishctl:     nl-demo 1.0 -> 1.1",
        "",
      ].join("\n"));
      assert.strictEqual(metricValue("DeployCheckIssues"), "0");
    });

    it("fails, publishing no package count, when pip cannot reach the package index (an empty answer is not 'up to date')", () => {
      fs.rmSync(path.join(metricsDir, "OutdatedPackages"), { force: true });
      const r = spawnSync("bash", [NOURISHCTL_SOURCE, "report", "weekly"], {
        encoding: "utf8",
        env: pipEnv({ PIP_INDEX_URL: "http://127.0.0.1:9/simple/", PIP_RETRIES: "0", PIP_TIMEOUT: "2" }),
      });
      assert.strictEqual(r.status, 1, r.stdout);
      assert.strictEqual(r.stderr.trim(), "nourishctl: report weekly: pip could not look up nl-demo on the package index (unreachable?); OutdatedPackages not published");
      assert.ok(!fs.existsSync(path.join(metricsDir, "OutdatedPackages")));
    });
  });
});
