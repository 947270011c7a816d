// No made-up checksum in the repository: every SHA-256 written in a committed file is one an
// artifact of the repository's fixtures has (scripts/rehearsal/artifacts.ts: the rehearsal's
// releases of the sample app and the stack files' example releases, built by `npm run artifact`'s
// library), and each committed stack names the artifact of exactly its release.version.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { buildFixtureArtifacts } from "../scripts/rehearsal/artifacts";
import { ROOT } from "../scripts/preview/stack-file";
import { run } from "./tools";

const HEX64 = /(?<![0-9A-Za-z])[0-9a-f]{64}(?![0-9A-Za-z])/g;

describe("checksums in committed files", function () {
  this.timeout(120_000);
  let tmp = "";
  let built: { version: string; sha256: string }[] = [];
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nl-shas-"));
    built = buildFixtureArtifacts(tmp);
  });
  after(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

  it("every 64-hex-digit SHA-256 in a committed file is one a fixture artifact has", () => {
    const known = new Set(built.map((a) => a.sha256));
    const files = run("git", ["-C", ROOT, "ls-files", "-z"]).stdout.split("\0").filter(Boolean)
      // npm's lock holds registry integrity hashes (base64 sha512), not release checksums.
      .filter((f) => f !== "package-lock.json" && fs.statSync(path.join(ROOT, f), { throwIfNoEntry: false })?.isFile());
    const unknown: string[] = [];
    for (const f of files) {
      const text = fs.readFileSync(path.join(ROOT, f), "latin1");
      for (const m of text.matchAll(HEX64)) if (!known.has(m[0])) unknown.push(`${f}: ${m[0]}`);
    }
    assert.deepStrictEqual(unknown, [], "SHA-256s that no artifact of the fixtures has (build them: node -r esbuild-register scripts/rehearsal/artifacts.ts DIR, or npm run artifact -- --app test/fixtures/dusangire --version V)");
  });

  it("each committed stack names the fixture artifact of its release.version", () => {
    for (const stack of ["staging", "prod"]) {
      const rel = (parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")).config["nourish-link:release"]) as { version: string; artifact: { key: string; sha256: string } };
      const a = built.find((b) => b.version === rel.version);
      assert.ok(a, `Pulumi.${stack}.yaml names release ${rel.version}, which no fixture artifact is`);
      assert.strictEqual(rel.artifact.sha256, a.sha256, `Pulumi.${stack}.yaml: release ${rel.version}'s sha256`);
      assert.strictEqual(rel.artifact.key, `releases/${rel.version}/nourish-link-${rel.version}.tar.gz`, `Pulumi.${stack}.yaml: the key npm run artifact --publish writes`);
    }
  });
});
