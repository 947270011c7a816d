// nourishctl in a sandbox root: the morning check against real processes and a real df.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { libRoles, NOURISHCTL_SOURCE, roleLibs } from "../components/hosts/user-data";
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

  it("pastes no value into SQL: values reach psql as variables (:'name'), never inside the text (issue 20)", () => {
    // A shell expansion inside an SQL literal or argument ('$X', => $x) on a line that builds SQL.
    // DB_SECTIONS are db.sh's own constant section names, not values.
    const sqlish = /\b(SELECT|WHERE|hashtext|make_interval|COMMENT ON|usename|datname|ALTER|CREATE|UPDATE)\b/;
    const pasted = /'\$\{?(?!DB_SECTIONS\[)[A-Za-z_]|=> \$[A-Za-z_]/;
    const dir = path.dirname(NOURISHCTL_SOURCE);
    const files = ["nourishctl", ...fs.readdirSync(path.join(dir, "lib")).map((f) => `lib/${f}`)];
    const found = files.flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n")
      .map((line, n) => ({ where: `scripts/host/${f}:${n + 1}`, line }))
      .filter(({ line }) => !/^\s*#/.test(line) && sqlish.test(line) && pasted.test(line)));
    assert.deepStrictEqual(found, []);
  });

  it("has --help for every verb and refuses an unknown one by name", () => {
    assert.match(ctl("help").stdout, /status/);
    assert.strictEqual(ctl("status", "--help").status, 0);
    assert.strictEqual(ctl("setup", "--help").status, 0);
    const bad = ctl("frobnicate");
    assert.strictEqual(bad.status, 1);
    assert.strictEqual(bad.stderr, "nourishctl: 'frobnicate' is not a verb. See 'nourishctl help'\n");
  });

  // Every verb, hidden ones included: `help -a` lists them all.
  const allVerbs = () => [...ctl("help", "-a").stdout.matchAll(/^ {2}([a-z][a-z-]*) /gm)].map((m) => m[1]).filter((v) => v !== "help");

  it("help VERB, VERB --help and VERB SUB --help print that verb's help: summary, usage, options with defaults", () => {
    const verbs = allVerbs();
    assert.ok(verbs.length >= 20, verbs.join(" "));
    for (const v of verbs) {
      const a = ctl("help", v), b = ctl(v, "--help");
      assert.strictEqual(a.status, 0, `help ${v}: ${a.stderr}`);
      assert.strictEqual(b.status, 0, `${v} --help: ${b.stderr}`);
      assert.strictEqual(a.stdout, b.stdout, v);
      assert.match(a.stdout, new RegExp(`^nourishctl ${v} - \\S`), `${v}: a summary first`);
      assert.match(a.stdout, new RegExp(`^usage: nourishctl ${v}\\b`, "m"), `${v}: a usage line`);
      assert.strictEqual(a.stderr, "");
    }
    for (const [verb, sub] of [["db", "diagnose"], ["db", "kill-long-queries"], ["pitr", "restore"], ["pitr", "recover"], ["backups", "verify"], ["logs", "errors"], ["release", "migrate"]]) {
      const r = ctl(verb, sub, "--help");
      assert.strictEqual(r.status, 0, `${verb} ${sub} --help: ${r.stderr}`);
      assert.strictEqual(r.stdout, ctl("help", verb).stdout, `${verb} ${sub} --help`);
    }
    // The time format --at takes, and the defaults of the options that have one.
    const pitr = ctl("pitr", "--help").stdout;
    assert.match(pitr, /--at TIME .*'YYYY-MM-DD HH:MM\[:SS/);
    assert.match(pitr, /Example: --at '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00'/);
    assert.match(ctl("help", "db").stdout, /--older-than DURATION .*diagnose default: 5m/);
    assert.match(ctl("help", "logs").stdout, /--since DURATION .*default: 1h/);
    assert.match(ctl("help", "restart").stdout, /--yes .*default: nothing is restarted/);
    assert.notStrictEqual(ctl("help", "restore").stdout, ctl("help").stdout);
  });

  it("answers an unknown verb in one line with the most similar verb, as git does", () => {
    for (const [typo, verb] of [["statsu", "status"], ["rollbak", "rollback"], ["restor", "restore"], ["diagnose", "db"]]) {
      const r = ctl(typo);
      assert.strictEqual(r.status, 1);
      assert.strictEqual(r.stdout, "");
      if (typo === "diagnose") continue;
      assert.strictEqual(r.stderr, `nourishctl: '${typo}' is not a verb. The most similar verb is ${verb}\n`);
    }
    assert.match(ctl("help", "statsu").stderr, /^nourishctl: 'statsu' is not a verb. The most similar verb is status\n$/);
  });

  it("groups the general help by when it is needed, emergencies first, and lists timer-only verbs with -a only", () => {
    const help = ctl("help").stdout;
    const sections = help.split(/\n\n/).filter((s) => /^[A-Z].*:\n {2}/.test(s));
    assert.match(sections[0], /^When something is wrong/);
    const first = [...sections[0].matchAll(/^ {2}([a-z-]+) /gm)].map((m) => m[1]);
    assert.deepStrictEqual(first.slice(0, 7), ["status", "logs", "restart", "rollback", "restore", "pitr", "db"]);
    assert.ok(sections.some((s) => /^Scheduled jobs/.test(s) && /^ {2}backup /m.test(s)), help);
    for (const hidden of ["job-failed", "metrics", "setup", "restore-rehearsal-verify"]) {
      assert.doesNotMatch(help, new RegExp(`^ {2}${hidden} `, "m"));
      assert.match(ctl("help", "-a").stdout, new RegExp(`^ {2}${hidden} `, "m"));
    }
    assert.match(help, /'nourishctl help -a' lists also the \d+ verbs/);
  });

  // A verb where it does not belong: one line saying so, never bash's "unbound variable".
  const refused = (r: { status: number | null; stdout: string; stderr: string }, expected: RegExp) => {
    assert.strictEqual(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, expected);
    assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /unbound variable|line \d+/);
  };
  const uses: string[][] = [["status"], ["logs", "errors"], ["db", "diagnose"], ["db", "kill-long-queries", "--older-than", "5m"], ["restore", "--latest"],
    ["pitr", "recover", "--yes"], ["backup"], ["maintain", "vacuum"], ["metrics"], ["release", "1.4.2"], ["rollback"], ["maintenance", "on"], ["restore-cleanup"], ["restart", "app", "--yes"]];

  it("off a host (no host.env) every verb says so in one line", () => {
    fs.rmSync(path.join(root, "etc/nourish-link/host.env"), { force: true });
    for (const u of uses) refused(ctl(...u), new RegExp(`^nourishctl: ${u[0]} runs on (the stack's hosts|the database host|an app host), and this machine has no .*host\\.env \\(open a session on one: aws ssm start-session`));
    // Help needs no host.
    assert.strictEqual(ctl("db", "diagnose", "--help").status, 0);
  });

  it("a verb of the other role says where it runs, in one line", () => {
    env("ROLE=app\nSTACK=staging\nREGION=us-east-1\n");
    for (const u of [["db", "diagnose"], ["pitr", "recover", "--yes"], ["maintain", "vacuum"], ["metrics"], ["restore-rehearsal", "--latest"]]) {
      refused(ctl(...u), new RegExp(`^nourishctl: ${u[0]} runs on the database host, and this is an app host \\(ROLE=app in `));
    }
    refused(ctl("backup"), /^nourishctl: backup: runs on the database host; on an app host only with a managed database/);
    env("ROLE=app\nDB_MANAGED=true\nSTACK=staging\nREGION=us-east-1\n");
    refused(ctl("db", "diagnose"), /^nourishctl: db runs on the database host, and this stack's database is managed \(RDS\): there is none/);
    env("ROLE=db\nSTACK=staging\nREGION=us-east-1\n");
    for (const u of [["release", "1.4.2"], ["rollback"], ["maintenance", "on"], ["report", "weekly"], ["create-app-role"]]) {
      refused(ctl(...u), new RegExp(`^nourishctl: ${u[0]} runs on an app host, and this is the database host \\(ROLE=db in `));
    }
    // The right role, a host.env without the keys a verb reads: one line naming the key.
    for (const u of [["db", "diagnose"], ["maintain", "vacuum"], ["metrics"], ["backup"], ["restore", "--latest"], ["restore-cleanup", "x"]]) {
      refused(ctl(...u), /DB_NAME is not set in \S*host\.env$/m);
    }
  });

  it("a host installs its role's libraries only, and still names the other role's verbs (ROLE_ONLY_VERBS equals the libraries)", () => {
    const lib = path.join(path.dirname(NOURISHCTL_SOURCE), "lib");
    const byRole: Record<string, string[]> = { app: [], db: [] };
    for (const f of fs.readdirSync(lib).filter((f) => f.endsWith(".sh"))) {
      const text = fs.readFileSync(path.join(lib, f), "utf8");
      const roles = libRoles(text);
      if (roles.length !== 1) continue;
      byRole[roles[0]].push(...[...text.matchAll(/^VERBS\+=\("([a-z-]+)\|/gm)].map((m) => m[1]));
    }
    const script = fs.readFileSync(NOURISHCTL_SOURCE, "utf8");
    for (const role of ["app", "db"]) {
      const m = new RegExp(`^ {2}\\[${role}\\]="([^"]*)"$`, "m").exec(script);
      assert.ok(m, role);
      assert.deepStrictEqual(m[1].split(" ").sort(), byRole[role].sort(), role);
    }
    // An app host's install: no db.sh; `db` is still refused by role, not as an unknown word.
    const appLib = fs.mkdtempSync(path.join(os.tmpdir(), "nl-applib-"));
    for (const f of roleLibs("app")) fs.copyFileSync(path.join(lib, f), path.join(appLib, f));
    env("ROLE=app\nSTACK=staging\nREGION=us-east-1\n");
    const r = run("bash", [NOURISHCTL_SOURCE, "db", "diagnose"], { env: { ...process.env, NOURISH_ROOT: root, NOURISH_LIB: appLib } });
    fs.rmSync(appLib, { recursive: true, force: true });
    refused(r, /^nourishctl: db runs on the database host, and this is an app host/);
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
