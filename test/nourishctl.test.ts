// nourishctl in a sandbox root: the morning check against real processes and a real df.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { Cluster, PG_BINDIR, startAppCluster } from "./pg";
import { requireTool, run } from "./tools";

describe("nourishctl", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-host-"));
  // Stands in for a running service; started in `before` so a filtered run never leaks it.
  let sleeper: ChildProcess;
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], { env: { ...process.env, NOURISH_ROOT: root } });
  const env = (vars: string) => fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), vars);

  before(() => {
    sleeper = spawn("sleep", ["300"], { stdio: "ignore" });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.mkdirSync(path.join(root, "run"), { recursive: true });
  });
  after(() => {
    sleeper.kill();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("has --help for every verb and refuses an unknown one by name", () => {
    assert.match(ctl("help").stdout, /status/);
    assert.strictEqual(ctl("status", "--help").status, 0);
    assert.strictEqual(ctl("setup", "--help").status, 0);
    const bad = ctl("frobnicate");
    assert.strictEqual(bad.status, 1);
    assert.match(bad.stderr, /nourishctl: unknown verb 'frobnicate'/);
  });

  // The live release's gunicorn is a service of the app host once there is a release.
  const live = (version: string) => {
    fs.mkdirSync(path.join(root, "srv/nourish-link"), { recursive: true });
    fs.rmSync(path.join(root, "srv/nourish-link/current"), { force: true });
    fs.symlinkSync(`releases/${version}`, path.join(root, "srv/nourish-link/current"));
  };

  it("status passes when the role's services run and the disk has room", () => {
    env("ROLE=app\nDISK_FREE_MIN_PERCENT=1\n");
    live("1.4.2");
    for (const s of ["nginx", "nourish-link-app@1.4.2"]) fs.writeFileSync(path.join(root, "run", `${s}.pid`), String(sleeper.pid));
    const r = ctl("status");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok: nginx is running/);
    assert.match(r.stdout, /ok: nourish-link-app@1.4.2 is running/);
    assert.match(r.stdout, /ok: \/ has \d+% free/);
  });

  it("status fails naming the service that is down", () => {
    env("ROLE=app\nDISK_FREE_MIN_PERCENT=1\n");
    live("1.4.2");
    fs.writeFileSync(path.join(root, "run", "nourish-link-app@1.4.2.pid"), "999999");
    const r = ctl("status");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /FAIL: nourish-link-app@1.4.2 is not running/);
  });

  it("status fails when free disk is below the threshold (the manual's 20%)", () => {
    env("ROLE=app\nDISK_FREE_MIN_PERCENT=100\n");
    fs.writeFileSync(path.join(root, "run", "nourish-link-app@1.4.2.pid"), String(sleeper.pid));
    const r = ctl("status");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /FAIL: \/ has \d+% free, below 100%/);
  });

  it("refuses to act without a role", () => {
    env("");
    const r = ctl("status");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /ROLE is not set/);
  });
});

describe("nourishctl setup: what the data volume holds decides, before anything is formatted", () => {
  // There is no spare block device here: the real blkid and mkfs.ext4 run on image files, through
  // data_volume_prepare (the part of setup_data_volume before the mount, which needs a real disk).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-volume-"));
  const bin = path.join(dir, "bin");
  const prepare = (image: string, env: Record<string, string> = {}) => run("bash", ["-c", '. "$1"; data_volume_prepare "$2" vol-0abc', "prepare", NOURISHCTL_SOURCE, image], {
    env: { ...process.env, NOURISH_ROOT: dir, NOURISH_LIB: path.join(path.dirname(NOURISHCTL_SOURCE), "lib"), ...env },
  });
  const image = (name: string, make?: (file: string) => void) => {
    const file = path.join(dir, name);
    assert.strictEqual(run("truncate", ["-s", "8M", file]).status, 0);
    make?.(file);
    return file;
  };
  const ok = (r: { status: number | null; stderr: string }) => assert.strictEqual(r.status, 0, r.stderr);
  const probe = (file: string) => run("blkid", ["-p", "-o", "export", file]).stdout;
  const sha = (file: string) => run("sha256sum", [file]).stdout.split(" ")[0];
  /** Refused: one line naming the volume and the reason, and the image byte-identical. */
  const refuses = (file: string, expected: RegExp, env: Record<string, string> = {}) => {
    const before = sha(file);
    const r = prepare(file, env);
    assert.strictEqual(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, expected);
    assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.doesNotMatch(r.stdout, /formatting/);
    assert.strictEqual(sha(file), before, "the volume was written to");
  };
  before(() => {
    for (const tool of ["blkid", "mkfs.ext4", "mkswap", "sfdisk", "debugfs"]) requireTool(tool);
    fs.mkdirSync(bin);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("formats a blank volume (blkid: no signature at all) as ext4 labelled pgdata, saying so", () => {
    const blank = image("blank.img");
    assert.strictEqual(run("blkid", ["-p", blank]).status, 2, "blkid's 'nothing found'");
    const r = prepare(blank);
    ok(r);
    assert.match(r.stdout, /setup: formatting data volume vol-0abc \(.*blank\.img\): blkid finds no filesystem/);
    assert.match(probe(blank), /^LABEL=pgdata$/m);
    assert.match(probe(blank), /^TYPE=ext4$/m);
  });

  it("keeps our pgdata filesystem and the data on it: nothing formatted", () => {
    const kept = image("kept.img", (f) => ok(run("mkfs.ext4", ["-q", "-L", "pgdata", f])));
    const pgVersion = path.join(dir, "PG_VERSION");
    fs.writeFileSync(pgVersion, "15\n");
    ok(run("debugfs", ["-w", "-R", `write ${pgVersion} PG_VERSION`, kept]));
    const before = sha(kept);
    const r = prepare(kept);
    ok(r);
    assert.doesNotMatch(r.stdout, /formatting/);
    assert.strictEqual(sha(kept), before, "the volume was written to");
    assert.strictEqual(run("debugfs", ["-R", "cat PG_VERSION", kept]).stdout, "15\n");
  });

  it("refuses, formatting and mounting nothing, a volume holding anything else: another filesystem, ext4 not ours, swap, a partition table", () => {
    refuses(image("other-ext4.img", (f) => ok(run("mkfs.ext4", ["-q", "-L", "other", f]))), /^nourishctl: setup: data volume vol-0abc \(.*\) holds LABEL=other TYPE=ext4, not our ext4 filesystem labelled pgdata; formatting and mounting nothing/);
    refuses(image("swap.img", (f) => ok(run("mkswap", ["-q", f]))), /holds TYPE=swap, not our ext4 filesystem labelled pgdata; formatting and mounting nothing/);
    refuses(image("table.img", (f) => ok(run("sfdisk", ["-q", f], { input: "label: dos\n,4M,83\n" }))), /holds PTTYPE=dos, not our ext4 filesystem labelled pgdata/);
  });

  it("refuses when it cannot tell: blkid failing otherwise (an I/O error, exit 4), or a device it cannot read", () => {
    // blkid's exit 4 stands in for the kernel's I/O or permission error, which a test cannot cause.
    fs.writeFileSync(path.join(bin, "blkid"), "#!/bin/sh\necho 'blkid: error: Input/output error' >&2\nexit 4\n", { mode: 0o755 });
    const blank = image("io-error.img");
    refuses(blank, /^nourishctl: setup: cannot tell what data volume vol-0abc \(.*\) holds \(blkid exit 4: blkid: error: Input\/output error\); formatting nothing$/m, { PATH: `${bin}:${process.env.PATH}` });
    // blkid answers 2, "nothing found", for a path it cannot open too: that is no blank volume.
    const missing = path.join(dir, "no-such-device");
    const r = prepare(missing);
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /^nourishctl: setup: cannot read data volume vol-0abc \(.*no-such-device\); formatting nothing$/m);
    assert.ok(!fs.existsSync(missing));
  });
});

describe("nourishctl maintain, on a real PostgreSQL", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-db-"));
  let cluster: Cluster | undefined;
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], {
    env: { ...process.env, NOURISH_ROOT: root, PGHOST: cluster!.socketDir, PGPORT: String(cluster!.port), PATH: `${PG_BINDIR}:${process.env.PATH}` },
  });

  before(async () => {
    cluster = await startAppCluster({ appPassword: "maintain-test-password" });
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=db\nDB_NAME=dusangire\nSTACK=staging\n");
    cluster.psql("CREATE TABLE orders (id serial PRIMARY KEY, item text); INSERT INTO orders (item) SELECT 'meal ' || g FROM generate_series(1, 500) g; CREATE INDEX ON orders (item)", { db: "dusangire" });
  });
  after(() => {
    cluster?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("vacuum runs VACUUM ANALYZE on dusangire and records success", () => {
    const r = ctl("maintain", "vacuum");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(cluster!.psql("SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'orders'", { db: "dusangire" }), "t");
    assert.strictEqual(fs.readFileSync(path.join(root, "var/lib/nourish-link/metrics/MaintenanceVacuumSuccess"), "utf8").trim(), "1");
  });

  it("reindex rebuilds the indexes concurrently (new files) and analyzes", () => {
    const before = cluster!.psql("SELECT relfilenode FROM pg_class WHERE relname = 'orders_item_idx'", { db: "dusangire" });
    const r = ctl("maintain", "reindex");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.notStrictEqual(cluster!.psql("SELECT relfilenode FROM pg_class WHERE relname = 'orders_item_idx'", { db: "dusangire" }), before);
  });

  it("runs the postgres user's commands from a directory it can enter, whatever the caller stands in", () => {
    // An operator in /root, or a checkout in a 0700 directory: postgres cannot enter the caller's
    // cwd, and psql, pg_dump and pg_restore then say so on stderr, which breaks reading their output.
    const closed = fs.mkdtempSync(path.join(os.tmpdir(), "nl-closed-"));
    try {
      fs.chmodSync(closed, 0o700);
      const r = run("bash", [NOURISHCTL_SOURCE, "maintain", "vacuum"], {
        cwd: closed,
        env: { ...process.env, NOURISH_ROOT: root, PGHOST: cluster!.socketDir, PGPORT: String(cluster!.port), PATH: `${PG_BINDIR}:${process.env.PATH}` },
      });
      assert.strictEqual(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /could not change directory/);
    } finally {
      fs.rmSync(closed, { recursive: true, force: true });
    }
  });

  it("fails naming the database when it does not exist, and records no success", () => {
    fs.rmSync(path.join(root, "var/lib/nourish-link/metrics"), { recursive: true, force: true });
    fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), "ROLE=db\nDB_NAME=nosuchdb\nSTACK=staging\n");
    const r = ctl("maintain", "vacuum");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr, /maintain vacuum: vacuumdb failed on nosuchdb/);
    assert.ok(!fs.existsSync(path.join(root, "var/lib/nourish-link/metrics/MaintenanceVacuumSuccess")));
  });
});
