// Monthly log archival against the S3 emulator (s3rver) with the real aws CLI: last month's
// rotated logs in one archive under the host's own logs/<role>/<aws:userid>/ (STS: moto_server),
// sent as one write-once PUT (If-None-Match: *, SHA-256 checked by S3, locked with Object Lock);
// a failed upload, or an archive already there, removes nothing.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { appHostFiles } from "../components/app";
import { APP_PATHS } from "../components/app/paths";
import { JOURNALD_DROPIN_PATH } from "../components/hosts/journald";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { monitoringHostFiles } from "../components/monitoring/host";
import { loadStackConfig } from "./harness";
import { writeJournal } from "./journal";
import { Moto, startMoto } from "./moto";
import { AWS_CLI, S3, startS3 } from "./s3";
import { requireTool, run } from "./tools";

describe("nourishctl logs archive (s3rver)", () => {
  let root = "";
  const BUCKET = "nl-archive";
  let s3: S3;
  let moto: Moto;
  let userid = "";
  const rel = (p: string) => path.join(root, p);
  const log = (p: string, when: string) => {
    fs.mkdirSync(path.dirname(rel(p)), { recursive: true });
    fs.writeFileSync(rel(p), `${p}\n`.repeat(50));
    fs.utimesSync(rel(p), new Date(when), new Date(when));
  };
  const ctl = (args: string[], bucket = BUCKET, lock = "BACKUP_LOCK_DAYS='daily=35 monthly=372 logs=365'\n") => {
    fs.writeFileSync(rel("etc/nourish-link/host.env"), `ROLE=db\nSTACK=staging\nREGION=us-east-1\nBACKUP_BUCKET=${bucket}\n${lock}`);
    return run("bash", [NOURISHCTL_SOURCE, "logs", "archive", ...args], {
      env: { ...process.env, ...s3.env, NOURISH_ROOT: root, S3_ENDPOINT: s3.endpoint, STS_ENDPOINT: moto.endpoint, PATH: `${path.dirname(AWS_CLI)}:${process.env.PATH}` },
    });
  };
  const october = ["var/log/nourish-link/nginx-access.log.1", "var/log/nourish-link/nginx-access.log.2.gz", "var/log/postgresql/postgresql-15-main.log.1"];

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-logs-"));
    s3 = await startS3({ buckets: [BUCKET] });
    moto = await startMoto();
    userid = run(AWS_CLI, ["--endpoint-url", moto.endpoint, "--region", "us-east-1", "sts", "get-caller-identity", "--query", "UserId", "--output", "text"], { env: { ...process.env, ...s3.env } }).stdout.trim();
    assert.match(userid, /^[A-Za-z0-9:._@-]+$/);
    fs.mkdirSync(rel("etc/nourish-link"), { recursive: true });
    for (const f of october) log(f, "2026-10-15T12:00:00Z");
    log("var/log/nourish-link/nginx-access.log", "2026-10-20T12:00:00Z"); // live: never archived
    log("var/log/nourish-link/nginx-error.log.1", "2026-11-02T12:00:00Z"); // another month
  });
  after(async () => {
    await s3?.stop();
    await moto?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("a failed upload (no such bucket) removes nothing", () => {
    const r = ctl(["202610"], "no-such-bucket");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr.trim().split("\n").pop()!, /^nourishctl: logs archive: upload to s3:\/\/no-such-bucket\/logs\/db\/[^/]+\/logs_archive_202610\.tar\.gz failed; nothing removed$/);
    for (const f of october) assert.ok(fs.existsSync(rel(f)), `${f} removed`);
  });

  it("archives the month's rotated logs under its own logs/<role>/<aws:userid>/, checked by S3, then removes them here; the live log and other months stay", () => {
    const r = ctl(["202610"]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /logs archive: 3 rotated logs from 202610 in s3:\/\/nl-archive\/\S+ \(\d+ bytes, sha256 [0-9a-f]{64}, checked by S3\); removed here/);
    const key = /s3:\/\/nl-archive\/(\S+)/.exec(r.stdout)![1];
    assert.strictEqual(key, `logs/db/${userid}/logs_archive_202610.tar.gz`);
    const down = path.join(root, "down.tar.gz");
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${BUCKET}/${key}`, down]).status, 0);
    assert.deepStrictEqual(run("tar", ["-tzf", down]).stdout.trim().split("\n").sort(), [...october].sort());
    for (const f of october) assert.ok(!fs.existsSync(rel(f)), `${f} kept after a verified upload`);
    assert.ok(fs.existsSync(rel("var/log/nourish-link/nginx-access.log")), "the live log was removed");
    assert.ok(fs.existsSync(rel("var/log/nourish-link/nginx-error.log.1")), "November's log was removed");
  });

  it("sends the archive as one write-once PUT: If-None-Match *, its SHA-256 for S3 to check, COMPLIANCE lock past logs' 365 days", () => {
    const put = s3.puts().filter((p) => p.bucket === BUCKET && p.key === `logs/db/${userid}/logs_archive_202610.tar.gz`);
    assert.strictEqual(put.length, 1, "one PUT, no multipart");
    const h = put[0].headers;
    assert.strictEqual(h["if-none-match"], "*");
    assert.strictEqual(h["x-amz-sdk-checksum-algorithm"], "SHA256");
    assert.strictEqual(Buffer.from(h["x-amz-checksum-sha256"], "base64").toString("hex"), h["x-amz-meta-sha256"]);
    assert.strictEqual(h["x-amz-object-lock-mode"], "COMPLIANCE");
    const days = (Date.parse(h["x-amz-object-lock-retain-until-date"]) - Date.now()) / 86_400_000;
    assert.ok(days > 365 && days < 367, `locked for ${days} days`);
    // Without Object Lock (no BACKUP_LOCK_DAYS) no retention is asked for: S3 would refuse it.
    log("var/log/nourish-link/nginx-access.log.3", "2026-08-03T12:00:00Z");
    assert.strictEqual(ctl(["202608"], BUCKET, "").status, 0);
    const unlocked = s3.puts().find((p) => p.key.endsWith("logs_archive_202608.tar.gz"))!;
    assert.strictEqual(unlocked.headers["if-none-match"], "*");
    assert.strictEqual(unlocked.headers["x-amz-object-lock-mode"], undefined);
  });

  it("never overwrites an archive already in the bucket (S3 answers 412), and removes nothing then", () => {
    log("var/log/postgresql/postgresql-15-main.log.2", "2026-10-03T12:00:00Z");
    const r = ctl(["202610"]);
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stderr, /nourishctl: logs archive: s3:\/\/nl-archive\/logs\/db\/\S+\/logs_archive_202610\.tar\.gz exists already; nothing removed\n$/);
    assert.ok(fs.existsSync(rel("var/log/postgresql/postgresql-15-main.log.2")));
  });

  it("refuses a month that is not YYYYMM, and does nothing when the month left no rotated logs", () => {
    assert.match(ctl(["2026-10"]).stderr, /logs archive: '2026-10' is not a month \(YYYYMM\)/);
    const r = ctl(["202609"]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /no rotated logs or journal from 202609; nothing to do/);
  });
});

// The whole chain on real tools: Debian's logrotate rotating with the app host's stanza every day
// of a month (forced runs, a state file, each day's log dated that day), then the month's archive;
// and the month's journal, written by a real systemd-journald, exported into the same archive.
describe("logs kept whole: a month of real logrotate, and the journal, in the monthly archive (s3rver)", () => {
  let root = "";
  const BUCKET = "nl-whole";
  let s3: S3;
  let moto: Moto;
  const rel = (p: string) => path.join(root, p);
  const ymd = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  const yyyymm = (d: Date) => ymd(d).slice(0, 7).replace("-", "");
  const ctl = (args: string[], role = "app") => {
    fs.writeFileSync(rel("etc/nourish-link/host.env"), `ROLE=${role}\nSTACK=staging\nREGION=us-east-1\nBACKUP_BUCKET=${BUCKET}\n`);
    return run("bash", [NOURISHCTL_SOURCE, "logs", "archive", ...args], {
      env: { ...process.env, ...s3.env, NOURISH_ROOT: root, S3_ENDPOINT: s3.endpoint, STS_ENDPOINT: moto.endpoint, PATH: `${path.dirname(AWS_CLI)}:${process.env.PATH}` },
    });
  };
  /** The archive of `key` downloaded and unpacked; returns its directory. */
  const unpack = (key: string) => {
    const dir = fs.mkdtempSync(path.join(root, "down-"));
    assert.strictEqual(s3.aws(["s3", "cp", `s3://${BUCKET}/${key}`, path.join(dir, "a.tar.gz")]).status, 0);
    assert.strictEqual(run("tar", ["-xzf", path.join(dir, "a.tar.gz"), "-C", dir]).status, 0);
    return dir;
  };

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-whole-"));
    fs.mkdirSync(rel("etc/nourish-link"), { recursive: true });
    s3 = await startS3({ buckets: [BUCKET] });
    moto = await startMoto();
  });
  after(async () => {
    await s3?.stop();
    await moto?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("keeps every day of last month through daily rotation past the 14-day mark, and archives the month whole", async () => {
    requireTool("logrotate");
    const logs = rel("var/log/nourish-link");
    fs.mkdirSync(logs, { recursive: true });
    const conf = path.join(root, "logrotate.conf");
    // The app host's own stanza (its file on the host, rendered for a stack with backups), on this sandbox's path.
    const stack = appHostFiles(await loadStackConfig("staging"), 2, {}).find((f) => f.path === "/etc/logrotate.d/nourish-link")!.content;
    fs.writeFileSync(conf, stack.replace(`${APP_PATHS.logDir}/*.log`, `${logs}/*.log`)); 
    const now = new Date();
    const first = new Date(now.getFullYear(), now.getMonth() - 1, 1, 12);
    const days: string[] = [];
    // Every day from the 1st of last month to yesterday: that day's lines, dated that day, then the night's rotation.
    for (let d = new Date(first); ymd(d) < ymd(now); d.setDate(d.getDate() + 1)) {
      const live = path.join(logs, "nginx-access.log");
      fs.appendFileSync(live, `{"time":"${ymd(d)}T12:00:00Z","status":200}\n`.repeat(20));
      fs.utimesSync(live, d, d);
      const r = run("logrotate", ["--force", "--state", path.join(root, "logrotate.state"), conf]);
      assert.strictEqual(r.status, 0, r.stderr);
      if (d.getMonth() === first.getMonth()) days.push(ymd(d));
    }
    const rotated = fs.readdirSync(logs).filter((f) => f !== "nginx-access.log");
    assert.ok(rotated.length >= days.length, `logrotate kept ${rotated.length} files of ${days.length}+ days`);
    const r = ctl([yyyymm(first)]);
    assert.strictEqual(r.status, 0, r.stderr);
    const key = /s3:\/\/nl-whole\/(\S+)/.exec(r.stdout)![1];
    const dir = unpack(key);
    const text = run("sh", ["-c", `cd '${dir}/var/log/nourish-link' && for f in *; do case "$f" in *.gz) zcat "$f" ;; *) cat "$f" ;; esac; done`]).stdout;
    const seen = [...new Set([...text.matchAll(/"time":"(\d{4}-\d\d-\d\d)T/g)].map((m) => m[1]))].sort();
    // Whole: every day of the month (the 1st's lines sit in the file rotated that night, dated the 1st).
    assert.deepStrictEqual(seen.filter((d) => d.startsWith(ymd(first).slice(0, 7))), days);
    // Removed here exactly what the archive holds; this month's rotated logs stay for next month's.
    for (const f of fs.readdirSync(path.join(dir, "var/log/nourish-link"))) assert.ok(!fs.existsSync(path.join(logs, f)) || fs.statSync(path.join(logs, f)).mtime.getMonth() !== first.getMonth(), `${f} kept after upload`);
    assert.ok(fs.existsSync(path.join(logs, "nginx-access.log")), "the live log was removed");
  });

  it("exports the month's journal of the app and the jobs (and the cluster on the db host) into the archive, and nothing else", () => {
    writeJournal(rel("var/log/journal"), [
      { unit: "nourish-link-app@8000.service", message: "[ERROR] gunicorn said something", identifier: "gunicorn" },
      { unit: "nourish-link-backup.service", message: "nourishctl: backup: done" },
      { unit: "postgresql@15-main.service", message: "Started PostgreSQL Cluster 15-main." },
      { unit: "cron.service", message: "not ours" },
    ]);
    const month = yyyymm(new Date());
    const r = ctl([month], "db");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /and 3 journal lines from \d{6} in s3:\/\//);
    const dir = unpack(/s3:\/\/nl-whole\/(\S+)/.exec(r.stdout)![1]);
    const journal = run("zcat", [path.join(dir, `journal/db_journal_${month}.log.gz`)]).stdout;
    assert.match(journal, /gunicorn\[\d+\]: \[ERROR\] gunicorn said something/);
    assert.match(journal, /nourishctl: backup: done/);
    assert.match(journal, /Started PostgreSQL Cluster 15-main\./);
    assert.doesNotMatch(journal, /not ours/);
    // The app host's archive has no PostgreSQL in it (a month apart: archives are write-once).
    const prev = new Date(); prev.setMonth(prev.getMonth() - 2);
    assert.match(ctl([yyyymm(prev)]).stdout, /no rotated logs or journal from \d{6}; nothing to do/);
  });
});

describe("journald's cap: the hosts' journald.conf.d drop-in, read by a real systemd-journald", () => {
  let dir = "";
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-journald-")); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("caps the persistent journal at monitoring.journalMaxMb on every host (journald reports the max it took)", async () => {
    const config = await loadStackConfig("prod", { set: { monitoring: { journalMaxMb: 256 } } });
    for (const role of ["app", "db"] as const) {
      const files = monitoringHostFiles(config, role).filter((f) => f.path === JOURNALD_DROPIN_PATH);
      assert.strictEqual(files.length, 1, `${role}: no journald drop-in`);
      const conf = path.join(dir, `${role}.conf.d`);
      fs.mkdirSync(conf);
      fs.writeFileSync(path.join(conf, path.basename(JOURNALD_DROPIN_PATH)), files[0].content);
      const said = writeJournal(path.join(dir, `${role}-journal`), [{ unit: "nourish-link-status.service", message: "ok" }], conf);
      assert.match(said, /System Journal \(\/var\/log\/journal\/[0-9a-f]+\) is [\d.]+[KMG], max 256\.0M,/, said);
    }
    // Without the drop-in journald takes its own default (10% of the file system): the cap is ours.
    assert.doesNotMatch(writeJournal(path.join(dir, "default-journal"), []), /max 256\.0M/);
  });
});
