// What the suite shares instead of starting per file (test/fixtures.ts, issue 22) still gives each
// test its own: clusters copied from one template are separate real servers, callers of one
// moto_server see only their own account, and a shared mocks run cannot be changed by a reader.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { committedStack } from "./harness";
import { Moto, startMoto } from "./moto";
import { Cluster, createCluster, startCluster } from "./pg";
import { untilLocked } from "./tools";

describe("shared test fixtures: each caller still has its own", function () {
  this.timeout(300_000);

  it("committedStack: one run per process, frozen all the way down, so no reader changes it for the others", async () => {
    const [a, b] = await Promise.all([committedStack("staging"), committedStack("staging")]);
    assert.strictEqual(a, b);
    assert.ok(a.resources.length > 100);
    assert.throws(() => { (a.resources as unknown[]).push({}); }, TypeError);
    const inputs = a.resources.find((r) => r.type === "aws:ec2/instance:Instance")!.inputs as Record<string, unknown>;
    const before = JSON.stringify(inputs);
    // A TypeError in strict code; ignored in sloppy code (esbuild emits no "use strict"): unchanged either way.
    try { inputs.instanceType = "x1e.32xlarge"; } catch { /* strict mode */ }
    try { (inputs.tags as Record<string, unknown>).stack = "prod"; } catch { /* strict mode */ }
    assert.strictEqual(JSON.stringify(inputs), before);
    assert.ok(Object.isFrozen(inputs.tags));
  });

  describe("clusters copied from one template", () => {
    const clusters: Cluster[] = [];
    after(() => clusters.forEach((c) => c.stop()));

    it("are separate servers, each as initdb made it: own data, own port, UTF8 and C, peer and scram-sha-256", async () => {
      for (let i = 0; i < 2; i++) clusters.push(await startCluster());
      const [a, b] = clusters;
      assert.notStrictEqual(a.port, b.port);
      assert.notStrictEqual(a.dataDir, b.dataDir);
      a.psql("CREATE DATABASE only_in_a");
      assert.strictEqual(b.psql("SELECT count(*) FROM pg_database WHERE datname = 'only_in_a'"), "0");
      assert.strictEqual(a.psql("SELECT count(*) FROM pg_database WHERE datname = 'only_in_a'"), "1");
      assert.strictEqual(b.psql("SHOW server_encoding"), "UTF8");
      assert.strictEqual(b.psql("SELECT datcollate FROM pg_database WHERE datname = 'postgres'"), "C");
      const hba = fs.readFileSync(path.join(b.dataDir, "pg_hba.conf"), "utf8");
      assert.match(hba, /^local\s+all\s+all\s+peer$/m);
      assert.match(hba, /^host\s+all\s+all\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
      assert.strictEqual(fs.statSync(b.dataDir).mode & 0o777, 0o700);
      assert.strictEqual(fs.statSync(b.dataDir).uid, b.os.uid);
    });

    it("a cluster not started yet is a data directory of its own", async () => {
      const c = await createCluster();
      clusters.push(c);
      assert.ok(fs.existsSync(path.join(c.dataDir, "PG_VERSION")));
      assert.strictEqual(c.showConfig("port"), String(c.port));
    });
  });

  describe("one moto_server, an account per startMoto()", () => {
    let own: Moto;
    const saved = process.env.NL_MOTO_ENDPOINT;
    before(async () => {
      // A server of this file's own, shared the way test/fixtures.ts shares the run's.
      delete process.env.NL_MOTO_ENDPOINT;
      own = await startMoto();
      process.env.NL_MOTO_ENDPOINT = own.endpoint;
    });
    after(() => {
      if (saved === undefined) delete process.env.NL_MOTO_ENDPOINT;
      else process.env.NL_MOTO_ENDPOINT = saved;
      own?.stop();
    });

    it("each caller sees only what it made, under an account id of its own", async () => {
      const [a, b] = [await startMoto(), await startMoto()];
      assert.strictEqual(a.endpoint, own.endpoint);
      const id = (m: Moto) => JSON.parse(m.aws(["sts", "get-caller-identity"]).stdout).Account as string;
      assert.notStrictEqual(id(a), id(b));
      assert.match(id(a), /^\d{12}$/);
      const made = a.aws(["secretsmanager", "create-secret", "--name", "rds!db-shared-test", "--secret-string", "x"]);
      assert.strictEqual(made.status, 0, made.stderr);
      const names = (m: Moto) => (JSON.parse(m.aws(["secretsmanager", "list-secrets"]).stdout).SecretList as { Name: string }[]).map((s) => s.Name);
      assert.deepStrictEqual(names(a), ["rds!db-shared-test"]);
      assert.deepStrictEqual(names(b), []);
      // The same name in the other account does not collide.
      assert.strictEqual(b.aws(["secretsmanager", "create-secret", "--name", "rds!db-shared-test", "--secret-string", "y"]).status, 0);
    });
  });

  it("untilLocked returns once a slow holder has the lock, and not before", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-lock-"));
    const lock = path.join(dir, "x.lock");
    // The holder takes the lock only after a delay a fixed sleep might not cover.
    const holder = spawn("bash", ["-c", `sleep 0.5; exec flock ${lock} sleep 30`], { stdio: "ignore", detached: true });
    try {
      const started = Date.now();
      await untilLocked(lock);
      assert.ok(Date.now() - started >= 400, "returned before the holder took the lock");
    } finally {
      process.kill(-holder.pid!, "SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
