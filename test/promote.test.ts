// Promotion (`npm run promote`): staging exports what promotion reads, and promotion refuses
// every case it should (one line, exit 1, Pulumi.prod.yaml untouched) against recorded stack
// outputs, or writes staging's release into Pulumi.prod.yaml byte for byte as expected.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { releaseArtifactOutput, verifiedFrom } from "../components/release/steps";
import { unifiedDiff } from "../scripts/diff/text";
import { checkPromotion, readStagingOutputs, Refusal } from "../scripts/promotion/check";
import { writeRelease } from "../scripts/promotion/stack-file";
import { promoteRelease } from "../scripts/promote";
import { MOCK_NOW, MOCK_REHEARSAL_AT, MOCK_VERIFIED_AT } from "../scripts/preview/mock-values";
import { ROOT } from "../scripts/preview/stack-file";
import { committedStack } from "./harness";
import { requireTool } from "./tools";

const FIXTURES = path.join(__dirname, "fixtures", "promotion");
const NOW = "2026-12-01T06:00:00Z";
const recordedProd = () => fs.readFileSync(path.join(FIXTURES, "Pulumi.prod.yaml"), "utf8");
const recorded = () => JSON.parse(fs.readFileSync(path.join(FIXTURES, "staging-outputs.json"), "utf8")) as Record<string, any>;

/** A copy of the fixture stack files and the outputs to promote from. */
function workdir(outputs: unknown, opts: { prodEdit?: (s: string) => string; raw?: string }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-promote-"));
  for (const f of ["Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"]) fs.copyFileSync(path.join(FIXTURES, f), path.join(root, f));
  if (opts.prodEdit) fs.writeFileSync(path.join(root, "Pulumi.prod.yaml"), opts.prodEdit(fs.readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8")));
  const file = path.join(root, "staging-outputs.json");
  fs.writeFileSync(file, opts.raw ?? JSON.stringify(outputs, null, 2));
  return { root, file, prodBefore: fs.readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8") };
}

interface Result { status: number | null; stdout: string; stderr: string; prodBefore: string; prodAfter: string }

/** `npm run promote` as a user runs it (node, esbuild-register): exit status and streams. Slow (loads Pulumi): few tests. */
function promoteCli(outputs: unknown): Result {
  const w = workdir(outputs, {});
  const r = spawnSync(process.execPath, ["-r", "esbuild-register", path.join(ROOT, "scripts/promote.ts"), "--root", w.root, "--now", NOW, "--staging-outputs", w.file], { cwd: ROOT, encoding: "utf8" });
  const prodAfter = fs.readFileSync(path.join(w.root, "Pulumi.prod.yaml"), "utf8");
  fs.rmSync(w.root, { recursive: true, force: true });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, prodBefore: w.prodBefore, prodAfter };
}

/** The same promotion in this process (what main() prints on stdout, or its refusal as exit 1 and one line). */
function promote(outputs: unknown, opts: { noFile?: boolean; outputsFile?: string; prodEdit?: (s: string) => string; raw?: string } = {}): Result {
  const w = workdir(outputs, opts);
  let r: Omit<Result, "prodBefore" | "prodAfter">;
  try {
    r = { status: 0, stdout: promoteRelease({ root: w.root, now: new Date(NOW), outputsFile: opts.noFile ? undefined : opts.outputsFile ?? w.file }), stderr: "" };
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    r = { status: 1, stdout: "", stderr: `promote: refused: ${e.message}\n` };
  }
  const prodAfter = fs.readFileSync(path.join(w.root, "Pulumi.prod.yaml"), "utf8");
  fs.rmSync(w.root, { recursive: true, force: true });
  return { ...r, prodBefore: w.prodBefore, prodAfter };
}

/** promote() as of another time. */
function promoteAt(outputs: unknown, now: string): Result {
  const w = workdir(outputs, {});
  let r: Omit<Result, "prodBefore" | "prodAfter">;
  try { r = { status: 0, stdout: promoteRelease({ root: w.root, now: new Date(now), outputsFile: w.file }), stderr: "" }; } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    r = { status: 1, stdout: "", stderr: `promote: refused: ${e.message}\n` };
  }
  const prodAfter = fs.readFileSync(path.join(w.root, "Pulumi.prod.yaml"), "utf8");
  fs.rmSync(w.root, { recursive: true, force: true });
  return { ...r, prodBefore: w.prodBefore, prodAfter };
}

function refused(r: Result, reason: RegExp): void {
  assert.strictEqual(r.status, 1, `expected a refusal, got exit ${r.status}: ${r.stdout}${r.stderr}`);
  const lines = r.stderr.split("\n").filter(Boolean);
  assert.strictEqual(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0], /^promote: refused: /);
  assert.match(lines[0], reason);
  assert.strictEqual(r.prodAfter, r.prodBefore, "a refusal changed Pulumi.prod.yaml");
}

describe("Promotion", () => {
  describe("what staging exports", () => {
    let outputs: Record<string, unknown>;
    before(async () => { outputs = (await committedStack("staging")).outputs; });

    it("exports the release version, the artifact without its bucket, and the verify step's result with its time", () => {
      assert.strictEqual(outputs.releaseVersion, "1.4.2");
      assert.deepStrictEqual(outputs.releaseArtifact, { kind: "s3", key: "releases/1.4.2/nourish-link-1.4.2.tar.gz", sha256: "1a3bb791d9e2b089c21ce61ed837c9685ca7bb4fe487781dafc1132d2ac8e37d" });
      // The mocks answer the verify verb with its real success line (scripts/preview/mocks.ts).
      assert.deepStrictEqual(outputs.releaseVerified, { ok: true, version: "1.4.2", at: "2000-01-01T02:30:00Z" });
    });

    it("is what promotion reads: the preview's outputs plus a rehearsal pass its checks", () => {
      const o = readStagingOutputs({ ...outputs, restoreRehearsal: recorded().restoreRehearsal });
      assert.match(checkPromotion(o, { version: "1.4.2", artifact: o.releaseArtifact }, new Date("2026-11-30T00:00:00Z"), 8), /staging runs 1\.4\.2/);
    });

    it("a git artifact exports its URL, commit and tag, never a bucket or credentials", () => {
      const commit = "4c9d381ee11d476062383b684cbe0d11fde4912d";
      assert.deepStrictEqual(releaseArtifactOutput({ type: "git", url: "https://github.com/nourishlink/app.git", commit, tag: "v1.4.2" }), { kind: "git", url: "https://github.com/nourishlink/app.git", commit, tag: "v1.4.2" });
      assert.deepStrictEqual(releaseArtifactOutput({ type: "git", url: "git@github.com:nourishlink/app.git", commit }), { kind: "git", url: "git@github.com:nourishlink/app.git", commit });
      assert.deepStrictEqual(releaseArtifactOutput({ type: "s3", bucket: "nourish-link-releases", key: "k.tar.gz", sha256: "a".repeat(64) }), { kind: "s3", key: "k.tar.gz", sha256: "a".repeat(64) });
    });

    it("reads the line nourishctl release verify prints (run from scripts/host/lib/release.sh with bash)", () => {
      const lib = fs.readFileSync(path.join(ROOT, "scripts/host/lib/release.sh"), "utf8");
      const line = lib.split("\n").map((l) => l.trim()).find((l) => l.startsWith('say "release verify: $v answers through nginx'));
      assert.ok(line, "release.sh no longer prints the verify line promotion reads");
      const r = spawnSync("bash", ["-c", `say() { echo "nourishctl: $*"; }; v=1.4.2; ${line.replace(/ ;;$/, "")}`], { encoding: "utf8" });
      assert.strictEqual(r.status, 0, r.stderr);
      const v = verifiedFrom("1.4.2", [`nourishctl: release: some earlier line\n${r.stdout}`]);
      assert.strictEqual(v.ok, true, r.stdout);
      assert.ok(Math.abs(Date.parse(v.at) - Date.now()) < 60_000, `at ${v.at} is not now`);
    });

    it("is not ok when a host verified another version, broke the contract or there is no host", () => {
      const ok = (t: string, version = "1.4.2") => `nourishctl: release verify: ${version} answers through nginx at ${t}`;
      assert.deepStrictEqual(verifiedFrom("1.4.2", [ok("2026-11-30T14:05:09Z"), ok("2026-11-30T14:06:00Z")]), { ok: true, version: "1.4.2", at: "2026-11-30T14:06:00Z" });
      assert.strictEqual(verifiedFrom("1.4.2", [ok("2026-11-30T14:05:09Z"), ok("2026-11-30T14:06:00Z", "1.4.1")]).ok, false);
      assert.strictEqual(verifiedFrom("1.4.2", [ok("2026-11-30T14:05:09Z"), "mock-output"]).ok, false);
      assert.strictEqual(verifiedFrom("1.4.2", [`${ok("2026-11-30T14:05:09Z")}\nnourishctl: something after`]).ok, false);
      assert.strictEqual(verifiedFrom("1.4.2", []).ok, false);
    });
  });

  describe("npm run promote against recorded staging outputs", () => {
    it("writes staging's release into Pulumi.prod.yaml, byte for byte the expected file, and prints the diff diff -u prints", () => {
      requireTool("diff");
      const r = promoteCli(recorded());
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stderr, "");
      const expected = fs.readFileSync(path.join(FIXTURES, "Pulumi.prod.promoted.yaml"), "utf8");
      assert.strictEqual(r.prodAfter, expected);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-promote-diff-"));
      fs.writeFileSync(path.join(dir, "a"), r.prodBefore);
      fs.writeFileSync(path.join(dir, "b"), r.prodAfter);
      const gnu = spawnSync("diff", ["-u", path.join(dir, "a"), path.join(dir, "b")], { encoding: "utf8" }).stdout.split("\n").slice(2).join("\n");
      fs.rmSync(dir, { recursive: true, force: true });
      const printed = r.stdout.slice(r.stdout.indexOf("--- a/Pulumi.prod.yaml"));
      assert.ok(printed.startsWith("--- a/Pulumi.prod.yaml\n+++ b/Pulumi.prod.yaml\n"), r.stdout);
      assert.strictEqual(printed.split("\n").slice(2, -2).join("\n") + "\n", gnu);
      assert.match(r.stdout, /^promote: staging runs 1\.4\.2 \(sha256 1a3bb791.*verified healthy at 2026-11-30T14:05:09Z; restore rehearsal succeeded at 2026-11-29T03:12:44Z \(2\.1 days ago, at most 8\)/);
      assert.match(r.stdout, /promote: wrote release 1\.4\.2 into Pulumi\.prod\.yaml; next: pulumi up --stack prod\n$/);
    });

    it("refuses when staging's release did not verify healthy (the command: exit 1, one line on stderr)", () => {
      const o = recorded();
      o.releaseVerified = { ok: false, version: "1.4.2", at: "" };
      refused(promoteCli(o), /staging's release 1\.4\.2 did not verify healthy \(releaseVerified\.ok is false\)/);
    });

    it("refuses when staging verified another release than it runs", () => {
      const o = recorded();
      o.releaseVerified.version = "1.4.1";
      refused(promote(o), /staging verified release 1\.4\.1 but runs 1\.4\.2/);
    });

    it("refuses when staging runs another version than the one being promoted", () => {
      const o = recorded();
      o.releaseVersion = "1.4.1";
      o.releaseVerified.version = "1.4.1";
      refused(promote(o), /staging runs release 1\.4\.1, not 1\.4\.2 \(the release Pulumi\.staging\.yaml names\): deploy 1\.4\.2 to staging first/);
    });

    it("refuses when staging's artifact checksum is not the one being promoted (same version, other tarball)", () => {
      const o = recorded();
      o.releaseArtifact.sha256 = "0".repeat(64);
      refused(promote(o), new RegExp(`runs artifact sha256 ${"0".repeat(64)} .*not the one being promoted: sha256 1a3bb791d9e2b089c21ce61ed837c9685ca7bb4fe487781dafc1132d2ac8e37d`));
    });

    it("refuses when staging's artifact is of another kind (git where an S3 tarball is promoted)", () => {
      const o = recorded();
      o.releaseArtifact = { kind: "git", url: "https://github.com/nourishlink/app.git", commit: "4c9d381ee11d476062383b684cbe0d11fde4912d" };
      refused(promote(o), /runs artifact git commit 4c9d381e.*not the one being promoted/);
    });

    it("refuses when the last restore rehearsal failed", () => {
      const o = recorded();
      o.restoreRehearsal.ok = false;
      refused(promote(o), /staging's last restore rehearsal failed \(2026-11-29T03:12:44Z\)/);
    });

    it("refuses when the last successful rehearsal is older than promotion.maxRehearsalAgeDays (default 8, and prod's own value)", () => {
      const o = recorded();
      o.restoreRehearsal.at = "2026-11-22T05:00:00Z";
      refused(promote(o), /last successful restore rehearsal \(2026-11-22T05:00:00Z\) is 9\.0 days old, more than nourish-link:promotion\.maxRehearsalAgeDays \(8\)/);
      // 2.1 days passes the default, not a prod that allows 1 day.
      refused(promote(recorded(), { prodEdit: (s) => s.replace("config:\n", "config:\n  nourish-link:promotion:\n    maxRehearsalAgeDays: 1\n") }),
        /is 2\.1 days old, more than nourish-link:promotion\.maxRehearsalAgeDays \(1\)/);
    });

    it("refuses a rehearsal or verification dated in the future", () => {
      const o = recorded();
      o.restoreRehearsal.at = "2026-12-02T00:00:00Z";
      refused(promote(o), /restoreRehearsal\.at 2026-12-02T00:00:00Z is in the future/);
    });

    it("refuses when staging exports no rehearsal, or an output is missing, malformed or secret", () => {
      const o = recorded();
      delete o.restoreRehearsal;
      refused(promote(o), /staging exports no restoreRehearsal: staging has never run a restore rehearsal/);
      const p = recorded();
      delete p.releaseVerified;
      refused(promote(p), /staging exports no releaseVerified: deploy staging with this package first/);
      const q = recorded();
      q.restoreRehearsal.at = "last tuesday";
      refused(promote(q), /staging's restoreRehearsal\.at is not an ISO 8601 UTC time/);
      const s = recorded();
      s.releaseArtifact = "[secret]";
      refused(promote(s), /staging's releaseArtifact is a secret/);
    });

    it("refuses __proto__, constructor and prototype keys in a stack file, naming the key and the file", () => {
      // Dropped, they would let promotion validate another config than the one Pulumi sees.
      for (const [edit, key] of [
        [(t: string) => t.replace("  nourish-link:backups:\n", "  nourish-link:backups:\n    __proto__:\n      enabled: false\n"), "nourish-link:backups.__proto__"],
        [(t: string) => t.replace("  nourish-link:backups:\n", "  nourish-link:__proto__:\n    promotion:\n      maxRehearsalAgeDays: 90\n  nourish-link:backups:\n"), "nourish-link:__proto__"],
        [(t: string) => t.replace("  nourish-link:backups:\n", "  nourish-link:backups:\n    constructor: 1\n"), "nourish-link:backups.constructor"],
      ] as const) {
        assert.notStrictEqual(edit(recordedProd()), recordedProd());
        refused(promote(recorded(), { prodEdit: edit }), new RegExp(`^promote: refused: Pulumi\\.prod\\.yaml: ${key.replace(/\./g, "\\.")} is not allowed: __proto__, constructor and prototype are never settings$`));
      }
    });

    it("refuses outputs that are not JSON or cannot be read, naming the file", () => {
      refused(promote(null, { raw: "Current stack outputs (3):\n" }), /staging-outputs\.json: not JSON/);
      refused(promote(null, { outputsFile: "/nonexistent/outputs.json" }), /cannot read staging outputs \/nonexistent\/outputs\.json: ENOENT/);
    });

    it("refuses a plan.json given as outputs, saying that is what it is", () => {
      const plan = { stack: "staging", project: "nourish-link", resources: [{ urn: "u", type: "pulumi:pulumi:Stack" }], outputs: recorded() };
      refused(promote(plan), /staging-outputs\.json is an offline preview's plan\.json, not staging's stack outputs: pass what `pulumi stack output --stack staging --json` prints, or the preview's outputs\.json beside it/);
    });

    it("labels outputs that carry the offline preview's mock times, and says how to replay them when they are too old", () => {
      const mock = { ...recorded(), restoreRehearsal: { ...recorded().restoreRehearsal, at: MOCK_REHEARSAL_AT }, releaseVerified: { ...recorded().releaseVerified, at: MOCK_VERIFIED_AT } };
      // As of the fixtures' NOW the mocks' rehearsal is 3 days old: promoted, and labelled.
      const ok = promote(mock);
      assert.strictEqual(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /^promote: note: these outputs come from the offline preview's mocks \(rehearsal at 2026-11-28T04:07:31Z, verify at 2000-01-01T02:30:00Z\), not from a real staging\n/);
      assert.doesNotMatch(promote(recorded()).stdout, /mocks/, "recorded outputs are not labelled as mocks");
      // Ten days later: the refusal names the mocks' fixed times and the --now that replays them.
      const old = { ...mock, restoreRehearsal: { ...mock.restoreRehearsal } };
      const w = promoteAt(old, "2026-12-08T06:00:00Z");
      refused(w, new RegExp(`is \\d+\\.\\d days old.*\\(the mocks' fixed times: replay with --now ${MOCK_NOW}\\)$`));
    });

    it("without --staging-outputs runs `pulumi stack output --stack staging --json`, and refuses in one line without the CLI", () => {
      const bin = fs.mkdtempSync(path.join(os.tmpdir(), "nl-fake-pulumi-"));
      const log = path.join(bin, "argv");
      const fixture = path.join(FIXTURES, "staging-outputs.json");
      // Stands in for the Pulumi CLI (not installable here): records its argv, prints the recorded outputs.
      fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\nprintf '%s\\n' "$@" > '${log}'\ncat '${fixture}'\n`, { mode: 0o755 });
      const path0 = process.env.PATH;
      try {
        process.env.PATH = `${bin}:${path0}`;
        const r = promote(null, { noFile: true });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.deepStrictEqual(fs.readFileSync(log, "utf8").trim().split("\n"), ["stack", "output", "--stack", "staging", "--json"]);
        process.env.PATH = "/nonexistent";
        refused(promote(null, { noFile: true }), /cannot run 'pulumi stack output --stack staging --json' \(ENOENT\): install the Pulumi CLI \(\.pulumi-version\) or pass --staging-outputs FILE/);
      } finally {
        process.env.PATH = path0;
        fs.rmSync(bin, { recursive: true, force: true });
      }
    });

    it("with the committed stack files: changes only prod's release lines", () => {
      const prod = fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8");
      const out = writeRelease(prod, { version: "9.9.9", artifact: { type: "s3", bucket: "nourish-link-releases", key: "releases/nourish-link-9.9.9.tar.gz", sha256: "1".repeat(64) } });
      const changed = unifiedDiff(prod, out, "a", "b").split("\n").filter((l) => /^[-+][^-+]/.test(l));
      assert.deepStrictEqual(changed.filter((l) => l.startsWith("+")), ["+    version: 9.9.9", "+      key: releases/nourish-link-9.9.9.tar.gz", `+      sha256: "${"1".repeat(64)}"`]);
      assert.strictEqual(changed.length, 6, changed.join("\n"));
    });
  });

  describe("writing a release into a stack file", () => {
    const prod = () => fs.readFileSync(path.join(FIXTURES, "Pulumi.prod.yaml"), "utf8");
    const git = { type: "git" as const, url: "https://github.com/nourishlink/app.git", commit: "4c9d381ee11d476062383b684cbe0d11fde4912d", tag: "v1.5.0" };

    it("replaces the artifact map in place when its kind changes, everything around it unchanged", () => {
      const before = prod();
      const out = writeRelease(before, { version: "1.5.0", artifact: git });
      assert.ok(out.includes("    artifact:\n      type: git\n      url: https://github.com/nourishlink/app.git\n      commit: 4c9d381ee11d476062383b684cbe0d11fde4912d\n      tag: v1.5.0\n    keepReleases: 5\n"), out);
      const start = before.indexOf("    artifact:"), end = before.indexOf("    keepReleases:");
      assert.strictEqual(out.slice(0, out.indexOf("    artifact:")), before.slice(0, start).replace('"1.4.1"', '"1.5.0"'));
      assert.strictEqual(out.slice(out.indexOf("    keepReleases:")), before.slice(end));
      // and back, dropping the tag
      const back = writeRelease(out, { version: "1.5.1", artifact: { ...git, commit: "1".repeat(40), tag: undefined } as never });
      assert.match(back, /commit: "1{40}"\n    keepReleases: 5\n/);
    });

    it("refuses a stack file without a release block, naming the file", () => {
      assert.throws(() => writeRelease("config:\n  aws:region: af-south-1\n", { version: "1.0.0", artifact: git }), (e: Error) => e instanceof Refusal && /Pulumi\.prod\.yaml: has no nourish-link:release map/.test(e.message));
    });
  });

  it("unifiedDiff prints what diff -u prints", () => {
    requireTool("diff");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-udiff-"));
    const base = Array.from({ length: 40 }, (_, i) => `line ${i}`);
    const cases: [string[], string[]][] = [
      [base, base.map((l, i) => (i === 3 || i === 30 ? `${l} changed` : l))],
      [base, [...base.slice(0, 10), ...base.slice(12), "tail"]],
      [[], ["only"]],
      [base.slice(0, 5), base.slice(0, 5).reverse()],
    ];
    try {
      for (const [a, b] of cases) {
        const ta = a.length ? a.join("\n") + "\n" : "", tb = b.join("\n") + "\n";
        fs.writeFileSync(path.join(dir, "a"), ta);
        fs.writeFileSync(path.join(dir, "b"), tb);
        const gnu = spawnSync("diff", ["-u", path.join(dir, "a"), path.join(dir, "b")], { encoding: "utf8" }).stdout.split("\n").slice(2).join("\n");
        assert.strictEqual(unifiedDiff(ta, tb, "a", "b").split("\n").slice(2).join("\n"), gnu);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
