// The first `pulumi up` works: the committed staging stack's hosts boot from their rendered user
// data on a bare Debian 12 (debootstrap) with systemd as PID 1 (systemd-nspawn), cloud-init reading
// the NoCloud seed, AWS stood in by moto_server and s3rver behind TLS (scripts/estate/estate.ts).
// Cold, the root file system and the apt cache are built first (minutes); warm, a boot is the
// packages' install and nourishctl setup.
import * as assert from "assert";
import { down, EstateState, exec, HostState, reboot, up, waitCloudInit } from "../scripts/estate/estate";
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
function assertTimers(h: HostState): void {
  const files = ok(h, "ls /etc/systemd/system/ | grep '^nourish-link-.*\\.timer$'").trim().split("\n");
  assert.ok(files.length >= 3, `${h.role}: only ${files.length} timers`);
  const listed = ok(h, "systemctl list-timers --all --no-legend --no-pager 'nourish-link-*'");
  for (const t of files) {
    assert.match(listed, new RegExp(`\\s${t.replace(/\./g, "\\.")}\\s`), `${h.role}: ${t} is not listed by systemctl list-timers`);
    const cal = ok(h, `sed -n 's/^OnCalendar=//p' /etc/systemd/system/${t}`).trim();
    const delay = ok(h, `systemd-analyze timespan "$(sed -n 's/^RandomizedDelaySec=//p' /etc/systemd/system/${t})" | sed -n 's/.*μs: //p'`).trim();
    const expected = Number(ok(h, `date -d "$(systemd-analyze calendar '${cal}' | sed -n 's/^ *Next elapse: //p')" +%s`).trim());
    const next = Number(ok(h, `systemctl show -P NextElapseUSecRealtime ${t} | xargs -I{} date -d {} +%s`).trim());
    const spread = Math.ceil(Number(delay) / 1e6);
    assert.ok(next >= expected && next <= expected + spread + 60, `${h.role}: ${t} next elapses at ${next}, its OnCalendar '${cal}' says ${expected} (+ up to ${spread} s)`);
  }
}

describe("hosts boot from their user data on a bare Debian 12 with real systemd and cloud-init (staging)", function () {
  this.timeout(60 * 60_000);
  let estate: EstateState;
  const host = (role: string) => estate.hosts.find((h) => h.role === role)!;

  before(async () => {
    assert.strictEqual(process.getuid?.(), 0, "the boot test makes network namespaces and boots containers: run it as root");
    for (const t of TOOLS) requireTool(t);
    estate = await up({ stack: "staging", slot: "test", roles: ["db"] });
  });
  after(async () => {
    await down("test");
  });

  it("db: cloud-init finishes with status done, no warning or error, on first boot", async () => {
    const h = host("db");
    assert.strictEqual(await waitCloudInit(h), "done", exec(h, "cloud-init status --long; tail -40 /var/log/cloud-init-output.log").stdout);
    assert.deepStrictEqual(cloudInitComplaints(h), []);
  });

  it("db: no failed unit; PostgreSQL's cluster active on the data volume; each timer of the plan listed with its next elapse", () => {
    const h = host("db");
    assert.strictEqual(ok(h, "systemctl --failed --no-legend --no-pager").trim(), "");
    assert.strictEqual(ok(h, "systemctl is-active postgresql@15-main").trim(), "active");
    assert.match(ok(h, "findmnt -n -o SOURCE,FSTYPE /var/lib/postgresql"), /ext4/);
    assert.strictEqual(ok(h, "runuser -u postgres -- psql -Atqc \"SELECT 1 FROM pg_database WHERE datname = 'dusangire'\"").trim(), "1");
    assertTimers(h);
  });

  it("db: after a reboot cloud-init is done again and nothing failed", async () => {
    const h = host("db");
    await reboot(estate, h);
    assert.strictEqual(await waitCloudInit(h), "done");
    assert.deepStrictEqual(cloudInitComplaints(h), []);
    assert.strictEqual(ok(h, "systemctl --failed --no-legend --no-pager").trim(), "");
    assert.strictEqual(ok(h, "systemctl is-active postgresql@15-main").trim(), "active");
  });
});
