// The first `pulumi up` works: the committed staging stack's hosts boot from their rendered user
// data on a bare Debian 12 (debootstrap) with systemd as PID 1 (systemd-nspawn), cloud-init reading
// the NoCloud seed, AWS stood in by moto_server and s3rver behind TLS (scripts/estate/estate.ts).
// Cold, the root file system and the apt cache are built first (minutes); warm, a boot is the
// packages' install and nourishctl setup.
// On the same booted hosts, after the release: backup, restore, PITR, the restore rehearsal and
// restart on real units, every timer's job through its unit, then `npm run estate`'s --status
// and --down against this test's own estate (scripts/estate/cli.ts --slot test): no second boot.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as os from "os";
import { DocumentParams, substitute } from "../components/release/document";
import { renderReleaseSource, RELEASE_SOURCE_PATH } from "../components/release/source";
import { Artifact, buildArtifacts } from "../scripts/rehearsal/artifacts";
import { down, EstateState, exec, HostState, readState, reboot, up, waitCloudInit } from "../scripts/estate/estate";
import { sh, until } from "../scripts/estate/system";
import { AWS_CLI } from "./s3";
import { requireTool } from "./tools";

const TOOLS = ["debootstrap", "systemd-nspawn", "apt-cacher-ng", "nft", "nsenter", "losetup", "moto_server", "nginx", "openssl", "curl"];

/** cloud-init's log lines at WARNING or above, and the user data's own warnings in its output log. */
function cloudInitComplaints(h: HostState): string[] {
  const r = exec(h, "grep -hE ' (WARNING|ERROR|CRITICAL)' /var/log/cloud-init.log; grep -hiE 'nourishctl: (warning|error)|nourish-link: first boot stopped|^E: ' /var/log/cloud-init-output.log");
  return r.stdout.split("\n").filter(Boolean);
}

function ok(h: HostState, script: string): string {
  const r = exec(h, script);
  assert.strictEqual(r.status, 0, `${h.role}: ${script}: exit ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Each nourish-link timer of the host's plan listed by systemd, next elapse where its OnCalendar says. */
async function assertTimers(h: HostState): Promise<void> {
  const files = ok(h, "ls /etc/systemd/system/ | grep '^nourish-link-.*\\.timer$'").trim().split("\n");
  assert.ok(files.length >= 3, `${h.role}: only ${files.length} timers`);
  const listed = ok(h, "systemctl list-timers --all --no-legend --no-pager 'nourish-link-*'");
  for (const t of files) {
    assert.match(listed, new RegExp(`\\s${t.replace(/\./g, "\\.")}\\s`), `${h.role}: ${t} is not listed by systemctl list-timers`);
    const cal = ok(h, `sed -n 's/^OnCalendar=//p' /etc/systemd/system/${t}`).trim();
    const delay = ok(h, `systemd-analyze timespan "$(sed -n 's/^RandomizedDelaySec=//p' /etc/systemd/system/${t})" | sed -n 's/.*μs: //p'`).trim();
    // While its service runs (the metrics timer fires every minute) a timer has no next elapse yet:
    // poll until systemd has set it, then compare with the calendar from that moment.
    const calendar = () => Number(ok(h, `date -d "$(systemd-analyze calendar '${cal}' | sed -n 's/^ *Next elapse: //p')" +%s`).trim());
    const before = calendar();
    const next = await until(`${h.role}: ${t}'s next elapse`, 120_000, () => {
      const v = ok(h, `systemctl show -P NextElapseUSecRealtime ${t} | xargs -r -I{} date -d {} +%s`).trim();
      return v ? Number(v) : undefined;
    });
    // The calendar asked before and after: a minute may turn between the questions.
    const after = calendar();
    const spread = Math.ceil(Number(delay) / 1e6);
    assert.ok(next >= before && next <= after + spread + 60, `${h.role}: ${t} next elapses at ${next}, its OnCalendar '${cal}' says ${before}..${after} (+ up to ${spread} s)`);
  }
}

/** The agents `nourishctl setup` installed (stand-ins served at AWS's bucket names), each unit active. */
function assertAgents(h: HostState): void {
  ok(h, "nourishctl agent status");
  for (const u of ["amazon-ssm-agent", "amazon-cloudwatch-agent"]) {
    assert.strictEqual(ok(h, `systemctl is-active ${u}`).trim(), "active", `${h.role}: ${u}`);
  }
}

/** The data volume (ext4 on the loop device bound at its EBS path) is what is mounted at /var/lib/postgresql. */
function assertDataVolume(h: HostState): void {
  assert.match(ok(h, "findmnt -n -o FSTYPE,SOURCE /var/lib/postgresql"), /^ext4\s/);
  assert.strictEqual(ok(h, "blkid -s LABEL -o value \"$(findmnt -n -o SOURCE /var/lib/postgresql)\"").trim(), "pgdata");
  assert.match(ok(h, "runuser -u postgres -- psql -Atqc 'SHOW data_directory'"), /^\/var\/lib\/postgresql\/15\/main/);
}


/** The staging plan's release SSM document, as `pulumi up` creates it, and the tooling bucket it names. */
function planned(estate: EstateState): { doc: Record<string, unknown>; toolingBucket: string } {
  const plan = JSON.parse(fs.readFileSync(path.join(estate.dir, "out", estate.stack, "plan.json"), "utf8")) as { resources: { type: string; inputs: Record<string, unknown> }[] };
  // The release document is the one with a verb parameter (the on-call documents have their own).
  const doc = plan.resources.filter((r) => r.type === "aws:ssm/document:Document").map((r) => JSON.parse(String(r.inputs.content)) as { parameters: Record<string, unknown> })
    .find((d) => "verb" in d.parameters)!;
  const current = plan.resources.find((r) => r.type === "aws:s3/bucketObjectv2:BucketObjectv2" && r.inputs.key === "tooling/current")!;
  return { doc, toolingBucket: String(current.inputs.bucket) };
}

/** The document's script for `params`, run by sh inside the host from a file, as SSM's agent runs aws:runShellScript. */
function send(h: HostState, doc: Record<string, unknown>, params: DocumentParams): string {
  const script = Buffer.from(substitute(doc, params)).toString("base64");
  const r = exec(h, `f=$(mktemp /tmp/ssm-script.XXXXXX) && echo ${script} | base64 -d > "$f" && sh "$f" 2>&1; rc=$?; rm -f "$f"; exit $rc`);
  assert.strictEqual(r.status, 0, `${h.role}: ${params.verb} ${params.version ?? ""}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** GET `urlPath` through this host's nginx as the ALB (or a browser) reaches it: status, X-Release, body. */
function throughNginx(h: HostState, urlPath: string): { code: string; release: string; body: string } {
  const r = exec(h, `. /etc/nourish-link/host.env; u=\${APP_LOCAL_URL:-}; [ -n "$u" ] || { [ "\${TLS:-alb}" = nginx ] && u=https://127.0.0.1 || u=http://127.0.0.1; }
    curl -sk --max-time 10 -D /tmp/nl-headers -o /tmp/nl-body -H "Host: $DOMAIN" -H "X-Forwarded-Proto: https" "$u${urlPath}" >/dev/null
    awk 'NR==1 { print $2 }' /tmp/nl-headers; sed -n 's/^[Xx]-[Rr]elease: *//p' /tmp/nl-headers | tr -d '\r'; cat /tmp/nl-body`);
  const [code = "", release = "", ...body] = r.stdout.split("\n");
  return { code, release, body: body.join("\n") };
}

/** The AWS CLI against the estate's stand-ins, from this machine (S3: s3rver's keys; the rest: moto's). */
function awsOut(estate: EstateState, service: "s3" | "moto", args: string[]): string {
  const [endpoint, key] = service === "s3" ? [estate.s3Endpoint, "S3RVER"] : [estate.motoEndpoint, "testing"];
  const env = { ...process.env, AWS_ACCESS_KEY_ID: key, AWS_SECRET_ACCESS_KEY: key, AWS_EC2_METADATA_DISABLED: "true" };
  return sh(AWS_CLI, ["--endpoint-url", endpoint, "--region", estate.region, ...args], { env }).stdout;
}

/** The metric NAME with dimensions Stack/Role (and JOB), as the hosts published it to the CloudWatch stand-in. */
function metricDims(estate: EstateState, name: string): Record<string, string>[] {
  const r = JSON.parse(awsOut(estate, "moto", ["cloudwatch", "list-metrics", "--namespace", "NourishLink", "--metric-name", name, "--output", "json"])) as { Metrics: { Dimensions: { Name: string; Value: string }[] }[] };
  return r.Metrics.map((m) => Object.fromEntries(m.Dimensions.map((d) => [d.Name, d.Value])));
}

/** The health URL and the home page through nginx answer 200 as `version`. */
function assertServes(h: HostState, version: string): void {
  const health = throughNginx(h, ok(h, ". /etc/nourish-link/host.env && echo \"${HEALTH_PATH:-/health/}\"").trim());
  assert.strictEqual(health.code, "200", health.body);
  assert.strictEqual((JSON.parse(health.body) as { version: string }).version, version);
  const page = throughNginx(h, "/");
  assert.strictEqual(page.code, "200", page.body);
  assert.strictEqual(page.release, version);
}

/** A process that has exited (a zombie of ours not yet reaped counts as exited). */
function gone(pid: number): boolean {
  try { return / Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { return true; }
}

/** `npm run estate -- ARGS` (the CLI, as a person runs it), against the boot test's slot. */
function estateCli(args: string[]): { status: number; stdout: string; stderr: string } {
  return sh(process.execPath, ["-r", "esbuild-register", path.join(__dirname, "..", "scripts", "estate", "cli.ts"), "--slot", "test", ...args], { allowFail: true });
}

describe("hosts boot from their user data on a bare Debian 12 with real systemd and cloud-init (staging)", function () {
  this.timeout(60 * 60_000);
  let estate: EstateState;
  const host = (role: string) => estate.hosts.find((h) => h.role === role)!;

  before(async () => {
    assert.strictEqual(process.getuid?.(), 0, "the boot test makes network namespaces and boots containers: run it as root");
    for (const t of TOOLS) requireTool(t);
    estate = await up({ stack: "staging", slot: "test", roles: ["db", "app"] });
  });
  after(async () => {
    await down("test");
  });

  it("db: cloud-init finishes with status done, no warning or error, on first boot", async () => {
    const h = host("db");
    assert.strictEqual(await waitCloudInit(h), "done", exec(h, "cloud-init status --long; tail -40 /var/log/cloud-init-output.log").stdout);
    assert.deepStrictEqual(cloudInitComplaints(h), []);
  });

  it("db: no failed unit; PostgreSQL's cluster active on the data volume; each timer of the plan listed with its next elapse", async () => {
    const h = host("db");
    assert.strictEqual(ok(h, "systemctl --failed --no-legend --no-pager").trim(), "");
    assert.strictEqual(ok(h, "systemctl is-active postgresql@15-main").trim(), "active");
    assertDataVolume(h);
    assert.strictEqual(ok(h, "runuser -u postgres -- psql -Atqc \"SELECT 1 FROM pg_database WHERE datname = 'dusangire'\"").trim(), "1");
    await assertTimers(h);
  });

  it("db: both AWS agents installed at the pinned versions from AWS's bucket names, their units active", () => {
    assertAgents(host("db"));
  });

  it("db: after a reboot cloud-init is done again and nothing failed", async () => {
    const h = host("db");
    await reboot(estate, h);
    assert.strictEqual(await waitCloudInit(h), "done");
    assert.deepStrictEqual(cloudInitComplaints(h), []);
    assert.strictEqual(ok(h, "systemctl --failed --no-legend --no-pager").trim(), "");
    assert.strictEqual(ok(h, "systemctl is-active postgresql@15-main").trim(), "active");
    // The fstab line setup wrote mounts the data volume again (not the root volume's old copy).
    assertDataVolume(h);
    assert.strictEqual(ok(h, "runuser -u postgres -- psql -Atqc \"SELECT 1 FROM pg_database WHERE datname = 'dusangire'\"").trim(), "1");
    await assertTimers(h);
    assertAgents(h);
  });

  it("app: cloud-init done; its one complaint our Let's Encrypt warning (no route out here); nginx active; no failed unit", async () => {
    const h = host("app");
    assert.strictEqual(await waitCloudInit(h), "done", exec(h, "cloud-init status --long; tail -40 /var/log/cloud-init-output.log").stdout);
    const domain = ok(h, ". /etc/nourish-link/host.env && echo \"$DOMAIN\"").trim();
    assert.deepStrictEqual(cloudInitComplaints(h), [`nourishctl: warning: Let's Encrypt refused ${domain} (does its DNS point here yet?); serving a self-signed certificate, re-run 'nourishctl setup'`]);
    assert.strictEqual(ok(h, "systemctl --failed --no-legend --no-pager").trim(), "");
    assert.strictEqual(ok(h, "systemctl is-active nginx").trim(), "active");
    assertAgents(h);
    await assertTimers(h);
    ok(h, "nourishctl status");
  });

  it("app: Restart= brings nginx back after SIGKILL", async () => {
    const h = host("app");
    const before = ok(h, "systemctl show -P MainPID nginx").trim();
    assert.notStrictEqual(before, "0");
    ok(h, `kill -KILL ${before}`);
    await until("nginx restarted by systemd", 120_000, () => {
      const pid = exec(h, "systemctl show -P MainPID nginx").stdout.trim();
      return pid !== "0" && pid !== before && exec(h, "systemctl is-active nginx").stdout.trim() === "active";
    }, 1000);
    assert.match(ok(h, "systemctl show -P NRestarts nginx"), /^[1-9]/);
    assert.match(ok(h, "curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1/"), /^[1-5]\d\d$/);
  });

  it("db: Restart= brings PostgreSQL's cluster back after SIGKILL", async () => {
    const h = host("db");
    const before = ok(h, "systemctl show -P MainPID postgresql@15-main").trim();
    assert.notStrictEqual(before, "0");
    ok(h, `kill -KILL ${before}`);
    await until("postgresql@15-main restarted by systemd", 120_000, () => {
      const pid = exec(h, "systemctl show -P MainPID postgresql@15-main").stdout.trim();
      return pid !== "0" && pid !== before && exec(h, "runuser -u postgres -- psql -Atqc 'SELECT 1'").stdout.trim() === "1";
    }, 1000);
    assert.strictEqual(ok(h, "systemctl is-active postgresql@15-main").trim(), "active");
    assert.match(ok(h, "systemctl show -P NRestarts postgresql@15-main"), /^[1-9]/);
  });

  it("db: a job that fails publishes its JobFailed metric through OnFailure=, read back from the CloudWatch stand-in", async () => {
    const h = host("db");
    // vacuum fails while the cluster is stopped (as it would on EC2), then the cluster comes back.
    ok(h, "systemctl stop postgresql@15-main");
    try {
      assert.notStrictEqual(exec(h, "systemctl start nourish-link-vacuum.service").status, 0, "vacuum did not fail with the cluster stopped");
      const env = { ...process.env, AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_EC2_METADATA_DISABLED: "true" };
      const found = await until("JobFailed for vacuum in CloudWatch", 120_000, () => {
        const r = sh(AWS_CLI, ["--endpoint-url", estate.motoEndpoint, "--region", estate.region, "cloudwatch", "list-metrics", "--namespace", "NourishLink",
          "--metric-name", "JobFailed", "--dimensions", "Name=Job,Value=vacuum", "--output", "json"], { env, allowFail: true });
        const metrics = r.status === 0 ? (JSON.parse(r.stdout) as { Metrics: { Dimensions: { Name: string; Value: string }[] }[] }).Metrics : [];
        return metrics.length ? metrics : undefined;
      }, 2000);
      const dims = Object.fromEntries(found[0].Dimensions.map((d) => [d.Name, d.Value]));
      assert.deepStrictEqual(dims, { Stack: estate.stack, Role: "db", Job: "vacuum" });
      assert.strictEqual(ok(h, "systemctl show -P Result nourish-link-job-failed@vacuum").trim(), "success");
    } finally {
      ok(h, "systemctl start postgresql@15-main");
    }
  });

  describe("app: a release and a rollback through the SSM document's own script, served through nginx", () => {
    let doc: Record<string, unknown>;
    let toolingBucket: string;
    let v1: Artifact;
    let v2: Artifact;
    // A backup key `nourishctl backup` could write: the switch records it for a rollback (no backup is taken here).
    const backupKey = "dumps/daily/db_backup_20261201_020000.dump";

    before(() => {
      ({ doc, toolingBucket } = planned(estate));
      const built = buildArtifacts(path.join(estate.dir, "artifacts"));
      [v1, v2] = (["v1", "v2"] as const).map((n) => built.find((a) => a.name === n)!);
      // In the tooling bucket: release.artifact's bucket is not the stack's, so the estate does not stand it in.
      const env = { ...process.env, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };
      for (const a of [v1, v2]) {
        sh(AWS_CLI, ["--endpoint-url", estate.s3Endpoint, "--region", estate.region, "s3", "cp", "--only-show-errors", a.file, `s3://${toolingBucket}/releases/nourish-link-${a.version}.tar.gz`], { env });
      }
    });

    /** Seam: release.version and release.artifact set, the release source file the stack's tooling-install writes. */
    const nameRelease = (h: HostState, a: Artifact) => ok(h, `echo ${Buffer.from(renderReleaseSource(a.version, { type: "s3", bucket: toolingBucket, key: `releases/nourish-link-${a.version}.tar.gz`, sha256: a.sha256 })).toString("base64")} | base64 -d > ${RELEASE_SOURCE_PATH}`);

    /** The release steps in the order `pulumi up` runs them on one app host (components/release/steps.ts). */
    function release(h: HostState, a: Artifact): string {
      nameRelease(h, a);
      for (const verb of ["release-fetch", "release-migrate", "release-collectstatic"] as const) send(h, doc, { verb, version: a.version });
      send(h, doc, { verb: "release-switch", version: a.version, backupKey });
      return send(h, doc, { verb: "release-verify", version: a.version });
    }


    it("release 1.0.0 then 1.1.0 (fetch, migrate, collectstatic, switch, verify): each served through nginx", () => {
      const h = host("app");
      assert.match(release(h, v1), /release verify: 1\.0\.0 answers through nginx/);
      assertServes(h, "1.0.0");
      assert.match(release(h, v2), /release verify: 1\.1\.0 answers through nginx/);
      assertServes(h, "1.1.0");
    });

    it("rollback: back to 1.0.0, served through nginx, 1.1.0's migration reversed", () => {
      const h = host("app");
      assert.match(send(h, doc, { verb: "rollback" }), /rollback: 1\.0\.0 is serving \(was 1\.1\.0;.*migrations: reversed/);
      assertServes(h, "1.0.0");
      assert.strictEqual(ok(h, "readlink /srv/nourish-link/current | xargs basename").trim(), "1.0.0");
    });

    it("Restart= brings the live gunicorn back after SIGKILL; the app socket answers through nginx again", async () => {
      const h = host("app");
      const unit = "nourish-link-app@1.0.0";
      const before = ok(h, `systemctl show -P MainPID ${unit}`).trim();
      assert.notStrictEqual(before, "0");
      ok(h, `kill -KILL ${before}`);
      await until(`${unit} restarted by systemd, answering through nginx`, 120_000, () => {
        const pid = exec(h, `systemctl show -P MainPID ${unit}`).stdout.trim();
        return pid !== "0" && pid !== before && throughNginx(h, "/health/").code === "200";
      }, 1000);
      assert.match(ok(h, `systemctl show -P NRestarts ${unit}`), /^[1-9]/);
      assertServes(h, "1.0.0");
    });
  });

  // After the release: the database holds the app's tables and migrations, as on a host in use.
  describe("db: a backup, a restore and a point-in-time restore on real units, through the S3 stand-in", () => {
    const sql = (h: HostState, q: string, db = "dusangire") => ok(h, `runuser -u postgres -- psql -X -U dusangire -d ${db} -v ON_ERROR_STOP=1 -Atc ${JSON.stringify(q).replace(/\$/g, "\\$")}`).trim();
    let key: string;

    before(() => {
      // A row of the app's role (peer auth through pg_ident.conf), in the live database.
      sql(host("db"), "CREATE TABLE IF NOT EXISTS boot_probe (note text); INSERT INTO boot_probe VALUES ('before-backup')");
    });

    it("backup: its own unit (nourish-link-backup.service) uploads the dump, its manifest and latest.json; BackupSuccess published", () => {
      const h = host("db");
      ok(h, "systemctl start nourish-link-backup.service");
      assert.strictEqual(ok(h, "systemctl show -P Result nourish-link-backup.service").trim(), "success");
      const bucket = ok(h, ". /etc/nourish-link/host.env && echo \"$BACKUP_BUCKET\"").trim();
      const latest = JSON.parse(awsOut(estate, "s3", ["s3", "cp", `s3://${bucket}/dumps/daily/latest.json`, "-"])) as { key: string; sha256: string; size: number };
      key = latest.key;
      assert.match(key, /^dumps\/daily\/db_backup_\d{8}_\d{6}\.dump$/);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-boot-backup-"));
      try {
        awsOut(estate, "s3", ["s3", "cp", "--only-show-errors", `s3://${bucket}/${key}`, path.join(dir, "dump")]);
        const manifest = JSON.parse(awsOut(estate, "s3", ["s3", "cp", `s3://${bucket}/${key.replace(/\.dump$/, ".json")}`, "-"])) as { sha256: string; database: string; stack: string; row_counts: Record<string, number>; migrations: Record<string, string> };
        const sha = sh("sha256sum", [path.join(dir, "dump")]).stdout.split(" ")[0];
        assert.strictEqual(manifest.sha256, sha, "the manifest's SHA-256 is not the uploaded dump's");
        assert.strictEqual(latest.sha256, sha);
        assert.deepStrictEqual([manifest.database, manifest.stack], ["dusangire", estate.stack]);
        assert.strictEqual(manifest.row_counts["public.boot_probe"], 1);
        assert.ok(Object.keys(manifest.migrations).length > 0, "the manifest records no migration (the release migrated this database)");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      assert.ok(metricDims(estate, "BackupSuccess").some((d) => d.Stack === estate.stack && d.Role === "db"), "no BackupSuccess from the db host in CloudWatch");
    });

    it("restore: nourishctl restore --latest --as NAME (RUNBOOK B6) restores that backup as the app's role; the row reads back", () => {
      const h = host("db");
      const out = ok(h, "nourishctl restore --latest --as dusangire_bootcheck 2>&1");
      assert.match(out, new RegExp(`${key.replace(/\./g, "\\.")} restored and checked as database dusangire_bootcheck`));
      assert.match(out, /row counts match the manifest/);
      assert.strictEqual(sql(h, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'dusangire_bootcheck'"), "dusangire");
      assert.strictEqual(sql(h, "SELECT string_agg(note, ',') FROM boot_probe", "dusangire_bootcheck"), "before-backup");
    });

    it("PITR: its own unit takes a pgBackRest backup into the S3 stand-in; pitr restore --at T has the row written before T, not the one after", async () => {
      const h = host("db");
      ok(h, "systemctl start nourish-link-pitr-backup.service");
      assert.strictEqual(ok(h, "systemctl show -P Result nourish-link-pitr-backup.service").trim(), "success");
      // The repository is the bucket of host.env, in S3 (the stand-in: the only S3 this host reaches).
      const repo = ok(h, ". /etc/nourish-link/host.env && echo \"$PGBACKREST_BUCKET\"").trim();
      assert.match(ok(h, "cat /etc/pgbackrest/pgbackrest.conf"), new RegExp(`^repo1-type=s3\n(.*\n)*repo1-s3-bucket=${repo}$`, "m"));
      const info = ok(h, "nourishctl pitr info");
      assert.match(info, /status: ok/);
      assert.match(info, /full backup: /);
      assert.match(info, /diff backup: /);
      sql(h, "INSERT INTO boot_probe VALUES ('before-target')");
      const at = sql(h, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
      sql(h, "INSERT INTO boot_probe VALUES ('after-target')");
      const wal = ok(h, "runuser -u postgres -- psql -X -Atc 'SELECT pg_walfile_name(pg_switch_wal())'").trim();
      // archive-async pushes the segment in the background: poll the archiver until it reports it.
      await until(`WAL ${wal} archived`, 120_000, () => {
        const last = exec(h, "runuser -u postgres -- psql -X -Atc 'SELECT last_archived_wal FROM pg_stat_archiver'").stdout.trim();
        return last.slice(0, 24) >= wal;
      }, 1000);
      const out = ok(h, `nourishctl pitr restore --at '${at}' --as dusangire_pitr 2>&1`);
      assert.match(out, /dusangire_pitr holds dusangire as of/);
      assert.strictEqual(sql(h, "SELECT string_agg(note, ',' ORDER BY note) FROM boot_probe", "dusangire_pitr"), "before-backup,before-target");
      assert.strictEqual(sql(h, "SELECT string_agg(note, ',' ORDER BY note) FROM boot_probe"), "after-target,before-backup,before-target");
      ok(h, "for d in dusangire_bootcheck dusangire_pitr; do runuser -u postgres -- dropdb --if-exists \"$d\"; done");
    });

    it("restore rehearsal: its own unit restores prod's latest backup (this one, put in prod's bucket) into the live database; the app host's verify serves it", () => {
      const [db, app] = [host("db"), host("app")];
      const env = (k: string) => ok(db, `. /etc/nourish-link/host.env && echo "$${k}"`).trim();
      const [staging, prod] = [env("BACKUP_BUCKET"), env("REHEARSAL_SOURCE_BUCKET")];
      for (const k of [key, key.replace(/\.dump$/, ".json"), "dumps/daily/latest.json"]) awsOut(estate, "s3", ["s3", "cp", "--only-show-errors", `s3://${staging}/${k}`, `s3://${prod}/${k}`]);
      ok(db, "systemctl start nourish-link-restore-rehearsal.service");
      assert.strictEqual(ok(db, "systemctl show -P Result nourish-link-restore-rehearsal.service").trim(), "success");
      assert.match(ok(db, "journalctl -u nourish-link-restore-rehearsal -o cat --no-pager"), new RegExp(`${key.replace(/\./g, "\\.")} is the live dusangire after`));
      assert.match(sql(db, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'dusangire'"), new RegExp(`^nourishctl restore-rehearsal key=${key.replace(/\./g, "\\.")} `));
      // The swap kept the database it replaced.
      assert.match(sql(db, "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'dusangire_before_restore_%'"), /^dusangire_before_restore_\d/);
      ok(app, "systemctl start nourish-link-restore-rehearsal-verify.service");
      assert.match(ok(app, "journalctl -u nourish-link-restore-rehearsal-verify -o cat --no-pager"), new RegExp(`restore-rehearsal-verify: ok: ${key.replace(/\./g, "\\.")} serves as 1\\.0\\.0`));
      assert.ok(metricDims(estate, "RestoreRehearsalSuccess").some((d) => d.Stack === estate.stack && d.Role === "app"), "no RestoreRehearsalSuccess from the app host");
      assertServes(app, "1.0.0");
    });
  });

  describe("every timer's job has run through its own unit and succeeded (started here unless it already had)", () => {
    for (const role of ["db", "app"] as const) {
      it(`${role}: each timer's service exits 0`, async () => {
        const h = host(role);
        const timers = ok(h, "ls /etc/systemd/system/ | sed -n 's/\\.timer$//p'").trim().split("\n");
        assert.ok(timers.length >= 3, `${role}: only ${timers.length} timers`);
        for (const t of timers) {
          const unit = ok(h, `systemctl show -P Unit ${t}.timer`).trim();
          assert.strictEqual(unit, `${t}.service`);
          // A timer that fires often (metrics, status) may be running it now: wait for that run.
          await until(`${unit} not running`, 300_000, () => !/^(activating|deactivating)$/.test(exec(h, `systemctl is-active ${unit}`).stdout.trim()), 1000);
          // Started here unless it already succeeded in this boot (vacuum failed above on purpose).
          const prop = (p: string) => ok(h, `systemctl show -P ${p} ${unit}`).trim();
          const [ran, before] = [prop("ExecMainStartTimestampMonotonic"), prop("Result")];
          if (ran === "0" || before !== "success") exec(h, `systemctl start ${unit}`);
          const result = [prop("Result"), prop("ExecMainStatus")];
          const journal = () => ok(h, `journalctl -u ${unit} -o cat --no-pager _SYSTEMD_INVOCATION_ID=$(systemctl show -P InvocationID ${unit}) | tail -5`);
          assert.deepStrictEqual(result, ["success", "0"], `${unit}: ${journal()}`);
        }
      });
    }
  });

  describe("on call: nourishctl restart through systemctl restart, each service proved answering", () => {
    it("app host: restart app (the live gunicorn) and restart nginx, each a new main PID, verified through nginx", () => {
      const h = host("app");
      for (const [target, unit, said] of [["app", "nourish-link-app@1.0.0", /nourish-link-app@1\.0\.0 restarted; \/health\/ answers 200 through nginx/], ["nginx", "nginx", /nginx restarted; \/health\/ answers 200 through it/]] as const) {
        const before = ok(h, `systemctl show -P MainPID ${unit}`).trim();
        assert.match(ok(h, `nourishctl restart ${target} --yes`), said);
        const after = ok(h, `systemctl show -P MainPID ${unit}`).trim();
        assert.ok(after !== "0" && after !== before, `${unit}: main PID ${before} then ${after}`);
      }
      assertServes(h, "1.0.0");
    });

    it("db host: restart postgresql brings the cluster back with a new main PID; pg_isready answers", () => {
      const h = host("db");
      const before = ok(h, "systemctl show -P MainPID postgresql@15-main").trim();
      assert.match(ok(h, "nourishctl restart postgresql --yes"), /postgresql@15-main restarted; pg_isready: accepting connections/);
      const after = ok(h, "systemctl show -P MainPID postgresql@15-main").trim();
      assert.ok(after !== "0" && after !== before, `main PID ${before} then ${after}`);
    });
  });

  // Last: the estate CLI against this test's own slot, then its --down (the after hook's down is then a no-op).
  describe("npm run estate: a line per host; --down removes the estate, and is safe to re-run", () => {
    it("--status: each host's address, cloud-init done, nourishctl status ok, a shell command that opens a shell in it", () => {
      const r = estateCli(["--status"]);
      assert.strictEqual(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      for (const h of estate.hosts) {
        const line = lines.find((l) => l.startsWith(`${h.role}  `));
        assert.ok(line, `no line for ${h.role}: ${r.stdout}`);
        const m = /^(\w+)  (\S+)  cloud-init: (\w+)  nourishctl status: (.+?)  shell: (.+)$/.exec(line)!;
        assert.ok(m, line);
        assert.deepStrictEqual([m[2], m[3], m[4]], [h.address, "done", "ok"], line);
        const inside = sh("bash", ["-c", `${m[5]} -c 'hostname; ip -o -4 addr show scope global'`]).stdout;
        assert.strictEqual(inside.split("\n")[0], ok(h, "hostname").trim(), `${h.role}: the shell line opens another machine`);
        assert.ok(inside.includes(` ${h.address}/`), `${h.role}: the shell is not on ${h.address}: ${inside}`);
      }
      assert.match(lines[lines.length - 1], /^AWS stand-ins: .*remove with: npm run estate -- --down --slot test$/);
    });

    it("--down: hosts, namespaces, veths, loop device, stand-ins and state gone; a second --down says so", () => {
      const state = readState("test")!;
      const r = estateCli(["--down"]);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stdout.trim(), `estate of stack ${estate.stack} removed (hosts, namespaces, mounts, stand-ins)`);
      for (const h of state.hosts) {
        assert.ok(!fs.existsSync(`/run/netns/${h.netns}`), `${h.netns} left`);
        assert.notStrictEqual(sh("ip", ["link", "show", h.veth], { allowFail: true }).status, 0, `${h.veth} left`);
        assert.ok(!h.nspawnPid || gone(h.nspawnPid), `${h.name} still running`);
        if (h.loop) assert.ok(!sh("losetup", ["-a"]).stdout.includes(`${state.dir}/`), `${h.loop} still attached`);
      }
      for (const [what, pid] of Object.entries(state.pids)) assert.ok(gone(pid), `${what} still running`);
      assert.ok(!fs.existsSync(state.dir), `${state.dir} left`);
      const again = estateCli(["--down"]);
      assert.deepStrictEqual([again.status, again.stdout.trim()], [0, "no estate is up"], again.stderr);
    });
  });
});
