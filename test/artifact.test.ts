// `npm run artifact`: the release artifact of a checkout of the sample app (test/fixtures/dusangire
// with one dependency the hosts' Debian packages lack, from a local wheel source), built twice to
// the same bytes, refused when the checkout or a wheel is wrong, installed by the real nourishctl
// on the loopback app host through the SSM document (pip --no-index --require-hashes) and served
// through nginx, a tampered wheel refused there; then published write-once to the emulated
// releases bucket and written into Pulumi.staging.yaml as `npm run promote` writes prod's.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "../scripts/preview/stack-file";
import { buildArtifacts, FIXTURE_DIR } from "../scripts/rehearsal/artifacts";
import { ctl, LoopbackHosts, startLoopbackHosts } from "../scripts/rehearsal/host";
import { packTree, sha256File } from "../scripts/release/pack";
import { S3, startS3 } from "./s3";
import { requireTool, run } from "./tools";
import { tinyWheel } from "./wheels";

const CLI = path.join(ROOT, "scripts/artifact.ts");
const BUCKET = "nourish-link-releases";

function artifactCmd(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["-r", "esbuild-register", CLI, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
}
const shaOf = (stdout: string): string => /^([0-9a-f]{64}) {2}\S+\n$/m.exec(stdout.split("\n").slice(-2).join("\n"))?.[1] ?? `no sha256 line in: ${stdout}`;

function git(repo: string, ...args: string[]): string {
  const r = run("git", ["-C", repo, "-c", "user.name=ci", "-c", "user.email=ci@example.test", ...args]);
  assert.strictEqual(r.status, 0, `git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The sample app as its own repository, with `extra` lines in requirements.txt, committed (and tagged). */
function appRepo(dir: string, requirements: string, tag?: string, drop: string[] = []): string {
  fs.cpSync(FIXTURE_DIR, dir, { recursive: true, filter: (src) => !src.includes("__pycache__") });
  fs.appendFileSync(path.join(dir, "requirements.txt"), requirements);
  for (const f of drop) fs.rmSync(path.join(dir, f));
  git(dir, "init", "-q");
  git(dir, "add", "-A");
  git(dir, "commit", "-qm", "release");
  if (tag) git(dir, "tag", tag);
  return dir;
}

describe("npm run artifact: the release artifact from a checkout of the app", function () {
  this.timeout(600_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nl-artifact-"));
  const wheels = path.join(tmp, "wheels");
  let wheel = "";
  let app = "";
  let built = { file: "", sha256: "" };

  before(() => {
    requireTool("git");
    fs.chmodSync(tmp, 0o755);
    fs.mkdirSync(wheels);
    wheel = tinyWheel(wheels);
    app = appRepo(path.join(tmp, "app"), `tinypkg==1.0 --hash=sha256:${sha256File(wheel)}\n`, "v1.5.0");
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("builds a tagged checkout to the same bytes twice, from another clone too, with its wheel and VERSION, owners 0 and mtime 0", () => {
    const a = artifactCmd(["--app", app, "--wheel-source", wheels, "--out", path.join(tmp, "out1")]);
    assert.strictEqual(a.status, 0, a.stderr);
    assert.match(a.stdout, /artifact: built .*nourish-link-1\.5\.0\.tar\.gz \(version 1\.5\.0, wheels: tinypkg-1\.0-py3-none-any\.whl\)/);
    const clone = path.join(tmp, "clone");
    assert.strictEqual(run("git", ["clone", "-q", app, clone]).status, 0);
    const b = artifactCmd(["--app", clone, "--wheel-source", wheels, "--out", path.join(tmp, "out2")]);
    assert.strictEqual(b.status, 0, b.stderr);
    built = { file: path.join(tmp, "out1/nourish-link-1.5.0.tar.gz"), sha256: shaOf(a.stdout) };
    assert.strictEqual(shaOf(b.stdout), built.sha256);
    assert.strictEqual(sha256File(built.file), built.sha256);
    assert.ok(fs.readFileSync(built.file).equals(fs.readFileSync(path.join(tmp, "out2/nourish-link-1.5.0.tar.gz"))), "two builds differ");
    const listing = run("tar", ["-tvzf", built.file]).stdout.trim().split("\n");
    for (const l of listing) assert.match(l, /^[-d]rw[-x]r-[-x]r-[-x] 0\/0 +\d+ 1970-01-01 00:00 /, l);
    const names = listing.map((l) => l.split(/\s+/).pop());
    for (const f of ["manage.py", "requirements.txt", "dusangire/wsgi.py", "VERSION", "wheels/tinypkg-1.0-py3-none-any.whl"]) assert.ok(names.includes(f), `${f} missing`);
    assert.ok(!names.some((n) => n?.startsWith(".git")), "the checkout's .git was packed");
    assert.strictEqual(run("tar", ["-xOzf", built.file, "VERSION"]).stdout, "1.5.0\n");
    assert.ok(run("tar", ["-xOzf", built.file, "wheels/tinypkg-1.0-py3-none-any.whl"]).stdout.length > 0);
  });

  it("builds the sample app itself to the rehearsal's artifact, byte for byte (the drills' artifacts are this command's)", () => {
    const r = artifactCmd(["--app", FIXTURE_DIR, "--version", "1.0.0", "--out", path.join(tmp, "fixture")]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /no wheels: Debian's packages satisfy requirements\.txt/);
    const rehearsal = buildArtifacts(path.join(tmp, "rehearsal")).find((x) => x.version === "1.0.0")!;
    assert.strictEqual(shaOf(r.stdout), rehearsal.sha256);
  });

  it("refuses a checkout without a version, a tag and another --version, uncommitted changes, a missing manage.py, a requirement without its hash, a wheel for another platform", () => {
    const refused = (args: string[], expected: RegExp) => {
      const r = artifactCmd([...args, "--out", path.join(tmp, "refused")]);
      assert.strictEqual(r.status, 1, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, expected);
      assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
    };
    const hashed = `tinypkg==1.0 --hash=sha256:${sha256File(wheel)}\n`;
    refused(["--app", appRepo(path.join(tmp, "untagged"), hashed)], /^artifact: refused: HEAD of .*untagged has no tag \(git describe --tags --exact-match\): tag the commit .* or pass --version\n$/);
    refused(["--app", app, "--version", "1.6.0", "--wheel-source", wheels], /--version 1\.6\.0, but HEAD of .* is tagged v1\.5\.0/);
    const dirty = appRepo(path.join(tmp, "dirty"), hashed, "1.5.0");
    fs.appendFileSync(path.join(dirty, "manage.py"), "# edited\n");
    refused(["--app", dirty, "--wheel-source", wheels], /has uncommitted changes \(manage\.py\): an artifact is built from a commit/);
    refused(["--app", appRepo(path.join(tmp, "no-manage"), hashed, "1.5.0", ["manage.py"]), "--wheel-source", wheels], /the app has no manage\.py: the app contract requires it/);
    refused(["--app", appRepo(path.join(tmp, "unhashed"), "tinypkg==1.0\n", "1.5.0"), "--wheel-source", wheels],
      /requirements\.txt line 6: 'tinypkg==1\.0' is not provided by the hosts' Debian packages, so the artifact brings it: pin it with == and give its --hash=sha256:/);
    const mac = path.join(tmp, "mac-wheels");
    fs.mkdirSync(mac);
    const macWheel = tinyWheel(mac, { tag: "cp311-cp311-macosx_11_0_arm64" });
    refused(["--app", appRepo(path.join(tmp, "mac"), `tinypkg==1.0 --hash=sha256:${sha256File(macWheel)}\n`, "1.5.0"), "--wheel-source", mac],
      /requirements\.txt line 6: tinypkg==1\.0: tinypkg-1\.0-cp311-cp311-macosx_11_0_arm64\.whl is for cp311-cp311-macosx_11_0_arm64, not the hosts' debian 12 x86_64 Python 3\.11; no wheel of it installs there/);
  });

  describe("on the loopback app host (the real nourishctl through the SSM document)", () => {
    let hosts: LoopbackHosts | undefined;
    let tampered = "";
    before(async () => {
      assert.ok(built.file, "the build test did not run");
      // The same release with one byte added to its wheel, packed as 1.5.1: the tarball's own
      // checksum is right, the wheel's is not the one requirements.txt pins.
      const t = path.join(tmp, "tampered");
      fs.mkdirSync(t);
      assert.strictEqual(run("tar", ["-xzf", built.file, "-C", t]).status, 0);
      fs.appendFileSync(path.join(t, "wheels/tinypkg-1.0-py3-none-any.whl"), "\0");
      fs.writeFileSync(path.join(t, "VERSION"), "1.5.1\n");
      tampered = path.join(tmp, "nourish-link-1.5.1.tar.gz");
      packTree(t, tampered);
      hosts = await startLoopbackHosts({ artifacts: [built.file, tampered] });
    });
    after(async () => { await hosts?.stop(); });

    it("installs the artifact offline against its hashes and serves it through nginx after migrate, collectstatic, switch and verify", async () => {
      const h = hosts!;
      const backup = await h.preReleaseBackup();
      const extra: Record<string, string[]> = { fetch: ["--file", built.file, "--sha256", built.sha256], switch: ["--pre-release-backup", backup] };
      for (const step of ["fetch", "migrate", "collectstatic", "switch", "verify"]) {
        const r = await ctl(h.appEnv, ["release", step, "1.5.0", ...(extra[step] ?? [])]);
        assert.strictEqual(r.code, 0, `release ${step}: ${r.stdout}${r.stderr}`);
      }
      assert.ok(fs.existsSync(path.join(h.srv, "releases/1.5.0/venv/lib/python3.11/site-packages/tinypkg/__init__.py")), "the wheel is not in the release's venv");
      assert.strictEqual(await h.serving(), "1.5.0");
    });

    it("refuses a release whose wheel was tampered with, installing nothing", async () => {
      const h = hosts!;
      const r = await ctl(h.appEnv, ["release", "fetch", "1.5.1", "--file", tampered, "--sha256", sha256File(tampered)]);
      assert.strictEqual(r.code, 1, r.stdout);
      assert.match(r.stderr, /THESE PACKAGES DO NOT MATCH THE HASHES/);
      assert.match(r.stderr, /release fetch: pip install -r requirements\.txt failed for 1\.5\.1; not installed/);
      assert.ok(!fs.existsSync(path.join(h.srv, "releases/1.5.1")));
      assert.strictEqual(await h.serving(), "1.5.0");
    });
  });

  describe("--publish --stack staging (the emulated releases bucket)", () => {
    let s3: S3 | undefined;
    const root = path.join(tmp, "root");
    const stackFile = path.join(root, "Pulumi.staging.yaml");
    const original = fs.readFileSync(path.join(ROOT, "Pulumi.staging.yaml"), "utf8");
    const key = "releases/1.5.0/nourish-link-1.5.0.tar.gz";
    const publish = (args: string[]) => artifactCmd([...args, "--publish", "--stack", "staging", "--root", root, "--out", path.join(tmp, "published")], { ...s3!.env, S3_ENDPOINT: s3!.endpoint });
    const inBucket = (): string => {
      const local = path.join(tmp, `there-${Date.now()}`);
      const r = s3!.aws(["s3", "cp", "--only-show-errors", `s3://${BUCKET}/${key}`, local]);
      assert.strictEqual(r.status, 0, r.stderr);
      return sha256File(local);
    };
    before(async () => {
      s3 = await startS3({ buckets: [BUCKET] });
      fs.mkdirSync(root);
      fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
      fs.writeFileSync(stackFile, original);
    });
    after(async () => { await s3?.stop(); });

    it("uploads write-once under releases/<version>/ and writes exactly release.version and release.artifact, comments kept", () => {
      const r = publish(["--app", app, "--wheel-source", wheels]);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(shaOf(r.stdout), built.sha256);
      assert.match(r.stdout, new RegExp(`artifact: uploaded s3://${BUCKET}/${key}\n`));
      assert.strictEqual(inBucket(), built.sha256);
      const put = s3!.puts().filter((p) => p.key === key);
      assert.strictEqual(put.length, 1);
      assert.strictEqual(put[0].headers["if-none-match"], "*");
      const expected = original
        .replace(/\n    version: 1\.4\.2\n/, "\n    version: 1.5.0\n")
        .replace(/\n      key: releases\/1\.4\.2\/nourish-link-1\.4\.2\.tar\.gz\n/, `\n      key: ${key}\n`)
        .replace(/\n      sha256: [0-9a-f]{64}\n/, `\n      sha256: ${built.sha256}\n`);
      assert.notStrictEqual(expected, original);
      assert.strictEqual(fs.readFileSync(stackFile, "utf8"), expected);
      assert.match(r.stdout, /^-    version: 1\.4\.2\n\+    version: 1\.5\.0$/m);
    });

    it("a re-run with the same artifact changes nothing", () => {
      const before = fs.readFileSync(stackFile, "utf8");
      const r = publish(["--app", app, "--wheel-source", wheels]);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`artifact: s3://${BUCKET}/${key} holds these bytes already\nartifact: Pulumi.staging.yaml already names release 1\\.5\\.0 with this artifact; nothing to change\n`));
      assert.strictEqual(fs.readFileSync(stackFile, "utf8"), before);
      assert.strictEqual(inBucket(), built.sha256);
    });

    it("refuses other bytes for the same version: named in the stack file, or already in the bucket", () => {
      // The next commit, released again as 1.5.0.
      fs.writeFileSync(path.join(app, "CHANGES"), "one more thing\n");
      git(app, "add", "-A");
      git(app, "commit", "-qm", "after 1.5.0");
      const before = fs.readFileSync(stackFile, "utf8");
      const r = publish(["--app", app, "--version", "1.5.0", "--wheel-source", wheels]);
      assert.strictEqual(r.status, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`^artifact: refused: Pulumi\\.staging\\.yaml names release 1\\.5\\.0 with another artifact \\(sha256 ${built.sha256}\\), not this build's [0-9a-f]{64}: a version is immutable`));
      assert.strictEqual(fs.readFileSync(stackFile, "utf8"), before);
      // A stack file that does not name 1.5.0 yet: the bucket refuses the other bytes.
      fs.writeFileSync(stackFile, original);
      const again = publish(["--app", app, "--version", "1.5.0", "--wheel-source", wheels]);
      assert.strictEqual(again.status, 1, again.stdout);
      assert.match(again.stderr, new RegExp(`^artifact: refused: s3://${BUCKET}/${key} exists with sha256 ${built.sha256}, not this build's [0-9a-f]{64}: a version is immutable`));
      assert.strictEqual(fs.readFileSync(stackFile, "utf8"), original);
      assert.strictEqual(inBucket(), built.sha256);
    });
  });
});
