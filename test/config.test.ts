import * as assert from "assert";
import { ConfigError, DEFAULTS, parseSettings } from "../components/config";
import { programError, RecordedResource, runProgram, runStack, stackConfig } from "./harness";
import { readStackFile } from "../scripts/preview/stack-file";

/** The raw `nourish-link:` settings of a stack file, parsed as loadConfig would. */
function settingsOf(stack: string, set: Record<string, unknown> = {}) {
  const { config } = stackConfig(stack, { set });
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (!k.startsWith("nourish-link:")) continue;
    try { raw[k.slice(13)] = JSON.parse(v); } catch { raw[k.slice(13)] = v; }
  }
  return raw;
}

function problems(stack: string, set: Record<string, unknown>): string[] {
  try {
    parseSettings(settingsOf(stack, set), stack);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail("expected the config to be rejected");
}

function rejects(stack: string, set: Record<string, unknown>, expected: RegExp): void {
  const found = problems(stack, set);
  assert.ok(found.some((p) => expected.test(p)), `expected a problem matching ${expected}, got:\n${found.join("\n")}`);
}

describe("stack config", () => {
  describe("good configs", () => {
    it("accepts both stack files and fills in each environment's defaults", () => {
      const staging = parseSettings(settingsOf("staging"), "staging");
      const prod = parseSettings(settingsOf("prod"), "prod");
      assert.strictEqual(staging.environment, "staging");
      assert.strictEqual(prod.environment, "prod");
      assert.strictEqual(prod.database.name, "dusangire");
      assert.strictEqual(prod.backups.schedule, "*-*-* 02:00:00", "the manual's 02:00 backup");
      assert.strictEqual(prod.monitoring.diskFreeMinPercent, 20, "the manual's 20% free disk");
      assert.strictEqual(staging.backups.objectLock, DEFAULTS.staging.backups?.objectLock);
      assert.strictEqual(prod.backups.objectLock, true);
    });

    it("takes the environment's defaults for keys the stack does not set", () => {
      const bare = { domain: "x.nourishlink.rw", release: settingsOf("prod").release, monitoring: { alertEmails: ["ops@nourishlink.rw"] } };
      const prod = parseSettings(bare, "prod");
      const staging = parseSettings(bare, "staging");
      assert.strictEqual(prod.app.count, 2);
      assert.strictEqual(prod.app.tls, "alb");
      assert.strictEqual(staging.app.count, 1);
      assert.strictEqual(prod.backups.retentionDays, 35);
      assert.strictEqual(staging.backups.retentionDays, 14);
    });

    it("lets another stack name choose its environment explicitly", () => {
      const s = parseSettings({ ...settingsOf("staging"), environment: "staging" }, "dev-alice");
      assert.strictEqual(s.environment, "staging");
      assert.throws(() => parseSettings(settingsOf("staging"), "dev-alice"), /nourish-link:environment is required for stack 'dev-alice'/);
    });

    it("refuses a release artifact in one of the stack's backup buckets, naming the key: the app hosts would read its dumps", () => {
      const artifact = (bucket: string) => ({ release: { version: "1.4.2", artifact: { type: "s3", bucket, key: "releases/1.4.2/nourish-link-1.4.2.tar.gz", sha256: "a".repeat(64) } } });
      for (const bucket of ["backups-archive-2d95ce0", "backups-pgbackrest-0a1b2c3"]) {
        rejects("prod", artifact(bucket), /^nourish-link:release\.artifact\.bucket must not be a backup bucket of this package/);
      }
      assert.strictEqual(parseSettings(settingsOf("prod", artifact("nourish-link-releases")), "prod").release.artifact.type, "s3");
    });

    it("accepts a git artifact and staging without backups", () => {
      const raw = settingsOf("staging", { backups: { enabled: false, pitr: false } });
      const artifact = { type: "git", url: "https://github.com/nourish-link/dusangire.git", commit: "4c9d381ee11d476062383b684cbe0d11fde4912d", tag: "v1.4.2" };
      raw.release = { version: "1.4.2", artifact };
      const s = parseSettings(raw, "staging");
      assert.deepStrictEqual(s.release.artifact, artifact);
      // ssh with its `git@` user name (not a credential), and no tag: the commit alone pins it.
      for (const url of ["git@github.com:nourish-link/dusangire.git", "ssh://git@github.com/nourish-link/dusangire.git"]) {
        raw.release = { version: "1.4.2", artifact: { type: "git", url, commit: artifact.commit } };
        assert.strictEqual(parseSettings(raw, "staging").release.artifact.type, "git", url);
      }
    });
  });

  describe("bad configs name the key and what is expected", () => {
    it("wrong type", () => rejects("prod", { backups: { retentionDays: "35" } }, /^nourish-link:backups\.retentionDays must be a number, got "35"$/));
    it("unknown nested key", () => rejects("prod", { backups: { retention: 35 } }, /^nourish-link:backups\.retention is not a known setting$/));
    it("unknown top-level key", () => rejects("prod", { colour: "blue" }, /^nourish-link:colour is not a known setting$/));
    it("number out of range", () => rejects("prod", { app: { count: 0 } }, /^nourish-link:app\.count must be at least 1, got 0$/));
    it("number above range", () => rejects("prod", { backups: { retentionDays: 99999 } }, /^nourish-link:backups\.retentionDays must be at most 3650/));
    it("malformed CIDR", () => rejects("prod", { network: { vpcCidr: "10.0.0.0/33" } }, /^nourish-link:network\.vpcCidr must be an IPv4 CIDR block/));
    it("malformed admin CIDR in a list", () => rejects("prod", { network: { adminCidrs: ["197.243.16.0/28", "nope"] } }, /^nourish-link:network\.adminCidrs\[1\] must be an IPv4 CIDR block/));
    it("SSH from the whole internet", () => rejects("prod", { network: { adminCidrs: ["0.0.0.0/0"] } }, /^nourish-link:network\.adminCidrs\[0\] must not be open to the whole internet/));
    it("malformed email", () => rejects("prod", { monitoring: { alertEmails: ["ops at nourishlink"] } }, /^nourish-link:monitoring\.alertEmails\[0\] must be an email address$/));
    it("malformed schedule", () => rejects("prod", { backups: { schedule: "every night at 2" } }, /^nourish-link:backups\.schedule must be a systemd OnCalendar expression/));
    it("out-of-range schedule", () => rejects("prod", { maintenance: { vacuumSchedule: "Sun *-*-* 25:00:00" } }, /^nourish-link:maintenance\.vacuumSchedule must be a systemd OnCalendar/));
    it("malformed version", () => rejects("prod", { release: { version: "v1.4" } }, /^nourish-link:release\.version must be a semantic version/));
    it("malformed artifact checksum", () => rejects("prod", { release: { artifact: { sha256: "abc" } } }, /^nourish-link:release\.artifact\.sha256 must be the tarball's SHA-256/));
    it("unknown enum value", () => rejects("prod", { app: { tls: "none" } }, /^nourish-link:app\.tls must be one of "alb", "nginx", got "none"$/));
    it("unknown time zone", () => rejects("prod", { maintenance: { timezone: "Mars/Olympus" } }, /^nourish-link:maintenance\.timezone must be an IANA time zone/));
    it("prod without backups", () => rejects("prod", { backups: { enabled: false, pitr: false } }, /^nourish-link:backups\.enabled must be true on prod/));
    it("prod without an alert destination", () => rejects("prod", { monitoring: { alertEmails: [] } }, /^nourish-link:monitoring\.alertEmails must list at least one address on prod/));
    it("nginx TLS on several hosts", () => rejects("prod", { app: { tls: "nginx" } }, /^nourish-link:app\.tls must be alb when app\.count is more than 1/));
    it("Multi-AZ without RDS", () => rejects("prod", { database: { multiAz: true } }, /^nourish-link:database\.multiAz requires database\.managed: true/));
    it("an RDS master user that is the app's user or a reserved name", () => {
      rejects("prod", { database: { managed: true, masterUser: "dusangire" } }, /^nourish-link:database\.masterUser must differ from database\.user: the app connects with least privilege/);
      rejects("prod", { database: { managed: true, user: "app", masterUser: "app" } }, /^nourish-link:database\.masterUser must differ from database\.user/);
      for (const u of ["postgres", "rdsadmin", "rds_superuser", "pg_monitor"]) rejects("prod", { database: { managed: true, masterUser: u } }, /^nourish-link:database\.masterUser must not be a name RDS or PostgreSQL reserves/);
      assert.strictEqual(parseSettings(settingsOf("prod", { database: { managed: true } }), "prod").database.masterUser, "nourish_admin");
    });
    it("an RDS identifier RDS would refuse, or without RDS, or a stack name that makes no default one", () => {
      for (const id of ["Nourish-prod", "1prod", "nourish--prod", "nourish-prod-", "nourish_prod", "x".repeat(64)]) {
        rejects("prod", { database: { managed: true, rdsIdentifier: id } }, /^nourish-link:database\.rdsIdentifier must be an RDS instance identifier/);
      }
      rejects("prod", { database: { managed: false, rdsIdentifier: "nourish-link-prod" } }, /^nourish-link:database\.rdsIdentifier requires database\.managed: true/);
      const raw = settingsOf("prod", { database: { managed: true } });
      assert.throws(() => parseSettings({ ...raw, environment: "prod" }, "prod_eu"), /nourish-link:database\.rdsIdentifier must be set: the default nourish-link-prod_eu is not an RDS instance identifier/);
      assert.strictEqual(parseSettings({ ...raw, environment: "prod", database: { ...(raw.database as object), rdsIdentifier: "nourish-link-prod-eu" } }, "prod_eu").database.rdsIdentifier, "nourish-link-prod-eu");
      assert.strictEqual(parseSettings(settingsOf("prod", { database: { managed: true, rdsIdentifier: "x" } }), "prod").database.rdsIdentifier, "x");
    });
    it("SSH on without admin addresses", () => rejects("prod", { network: { sshAccess: true, adminCidrs: [] } }, /^nourish-link:network\.adminCidrs must list at least one address when network\.sshAccess is true$/));
    it("a database name whose derived restore names would not fit in 63 bytes", () => {
      // 32 is the most that keeps <name>_before_restore_YYYYmmdd_HHMMSS (name + 31) whole.
      const name = (n: number) => "d".repeat(n);
      assert.strictEqual(parseSettings(settingsOf("prod", { database: { name: name(32) } }), "prod").database.name, name(32));
      assert.strictEqual(`${name(32)}_before_restore_20250301_140500`.length, 63);
      for (const n of [33, 40, 63]) {
        rejects("prod", { database: { name: name(n) } }, /^nourish-link:database\.name must be a PostgreSQL identifier of at most 32 characters/);
      }
    });
    it("an app scheduled command with a bad name, schedule, command or argument, or a name twice", () => {
      const job = (over: Record<string, unknown>) => ({ app: { scheduledCommands: [{ name: "daily-orders", schedule: "*-*-* 05:00:00", command: ["daily_orders"], ...over }] } });
      rejects("staging", job({ name: "Daily Orders" }), /^nourish-link:app\.scheduledCommands\[0\]\.name must be lower-case letters, digits and dashes/);
      rejects("staging", job({ schedule: "every day" }), /^nourish-link:app\.scheduledCommands\[0\]\.schedule must be a systemd OnCalendar expression/);
      rejects("staging", job({ schedule: "*-02-31 05:00:00" }), /^nourish-link:app\.scheduledCommands\[0\]\.schedule never elapses/);
      rejects("staging", job({ command: [] }), /^nourish-link:app\.scheduledCommands\[0\]\.command must name a manage\.py command/);
      rejects("staging", job({ command: ["daily_orders; rm -rf /"] }), /^nourish-link:app\.scheduledCommands\[0\]\.command\[0\] must be a manage\.py command name/);
      for (const arg of ["--days 3", "$(id)", "`id`", "a;b", "a|b", "%n", "x\ny", "'q'"]) {
        rejects("staging", job({ command: ["daily_orders", arg] }), /^nourish-link:app\.scheduledCommands\[0\]\.command\[1\] must be one argument of letters, digits/);
      }
      const twice = { app: { scheduledCommands: [job({}).app.scheduledCommands[0], job({}).app.scheduledCommands[0]] } };
      rejects("staging", twice, /^nourish-link:app\.scheduledCommands\[1\]\.name 'daily-orders' is named twice/);
      // Accepted: arguments with options and values; the committed prod names the sample app's job.
      const ok = parseSettings(settingsOf("staging", job({ command: ["daily_orders", "--fail", "--since=2026-01-01", "a,b"] })), "staging");
      assert.deepStrictEqual(ok.app.scheduledCommands[0].command, ["daily_orders", "--fail", "--since=2026-01-01", "a,b"]);
      assert.deepStrictEqual(parseSettings(settingsOf("prod"), "prod").app.scheduledCommands.map((c) => c.command), [["daily_orders"]]);
    });
    it("a silenced check that is not a Django warning id", () => {
      for (const id of ["W004", "security.E100", "security.W004; rm", "security.w004"]) {
        rejects("prod", { release: { silencedChecks: [id] } }, /^nourish-link:release\.silencedChecks\[0\] must be a Django system check warning id such as security\.W004/);
      }
      assert.deepStrictEqual(parseSettings(settingsOf("prod", { release: { silencedChecks: ["security.W004", "meals.W001"] } }), "prod").release.silencedChecks, ["security.W004", "meals.W001"]);
    });
    it("missing required key", () => rejects("prod", { domain: undefined }, /^nourish-link:domain is required$/));

    describe("the unsafe, refused with the key named", () => {
      it("admin CIDRs broader than /16, one by one or split", () => {
        rejects("prod", { network: { adminCidrs: ["10.0.0.0/8"] } }, /^nourish-link:network\.adminCidrs\[0\] is broader than \/16/);
        const split = problems("prod", { network: { adminCidrs: ["0.0.0.0/1", "128.0.0.0/1"] } });
        assert.ok(split.includes("nourish-link:network.adminCidrs[0] is broader than /16: list your admin addresses, not a whole provider's range"), split.join("\n"));
        assert.ok(split.some((p) => /^nourish-link:network\.adminCidrs\[1\] is broader than \/16/.test(p)), split.join("\n"));
        assert.ok(split.some((p) => /^nourish-link:network\.adminCidrs together cover 4294967296 addresses, more than a \/16/.test(p)), split.join("\n"));
        // Two /16s are each allowed, together more than one.
        rejects("prod", { network: { adminCidrs: Array.from({ length: 2 }, (_, i) => `10.${i}.0.0/16`) } }, /^nourish-link:network\.adminCidrs together cover 131072 addresses/);
        assert.strictEqual(parseSettings(settingsOf("prod", { network: { adminCidrs: ["197.243.0.0/16"] } }), "prod").network.adminCidrs.length, 1);
      });
      it("duplicate, overlapping and host-bit admin CIDRs", () => {
        rejects("prod", { network: { adminCidrs: ["197.243.16.0/28", "197.243.16.0/28"] } }, /^nourish-link:network\.adminCidrs\[1\] duplicates network\.adminCidrs\[0\]$/);
        rejects("prod", { network: { adminCidrs: ["197.243.16.0/24", "197.243.16.8/29"] } }, /^nourish-link:network\.adminCidrs\[1\] overlaps network\.adminCidrs\[0\] \(197\.243\.16\.0\/24\)$/);
        rejects("prod", { network: { adminCidrs: ["197.243.16.5/28"] } }, /^nourish-link:network\.adminCidrs\[0\] must be a network address \(197\.243\.16\.0\/28\)/);
      });
      it("schedules with a line break or that never elapse", () => {
        rejects("prod", { backups: { schedule: "*-*-* 02:00:00\nExecStartPre=/bin/sh -c 'curl evil'" } }, /^nourish-link:backups\.schedule must be one line/);
        rejects("prod", { maintenance: { vacuumSchedule: "daily\n" } }, /^nourish-link:maintenance\.vacuumSchedule must be one line/);
        rejects("prod", { backups: { schedule: "*-02-31 02:00:00" } }, /^nourish-link:backups\.schedule never elapses/);
        rejects("prod", { maintenance: { reindexSchedule: "*-04-31 03:30:00" } }, /^nourish-link:maintenance\.reindexSchedule never elapses/);
      });
      it("an unlimited upload size", () => rejects("prod", { app: { clientMaxBodySize: "0" } }, /^nourish-link:app\.clientMaxBodySize must be an nginx size above 0/));
      it("a superuser or reserved database user", () => {
        for (const user of ["rdsadmin", "rds_superuser", "pg_monitor"]) rejects("prod", { database: { user } }, /^nourish-link:database\.user must not be a superuser or reserved role/);
        rejects("prod", { database: { user: "postgres" } }, /^nourish-link:database\.user must not be "postgres": it is PostgreSQL's superuser/);
      });
      it("a pg_hba.conf keyword or PostgreSQL's reserved name as database user or name (written into pg_hba.conf)", () => {
        for (const word of ["all", "replication", "sameuser", "samerole", "public", "none", "template0", "template1", "postgres"]) {
          for (const key of ["user", "name"]) {
            const found = problems("prod", { database: { [key]: word } });
            assert.deepStrictEqual(found.filter((p) => p.startsWith(`nourish-link:database.${key} `)).map((p) => p.split(":").slice(0, 2).join(":")),
              [`nourish-link:database.${key} must not be "${word}"`], found.join("\n"));
          }
        }
        // Words that merely contain a keyword are names like any other.
        assert.strictEqual(parseSettings(settingsOf("prod", { database: { user: "all_meals", name: "publicity" } }), "prod").database.user, "all_meals");
      });
      it("artifact keys and buckets with wildcards", () => {
        rejects("prod", { release: { artifact: { key: "releases/*" } } }, /^nourish-link:release\.artifact\.key must be a plain object key/);
        rejects("prod", { release: { artifact: { key: "releases/nourish-link-1.4.?.tar.gz" } } }, /^nourish-link:release\.artifact\.key must be a plain object key/);
        rejects("prod", { release: { artifact: { key: "releases/../secrets/x.tar.gz" } } }, /^nourish-link:release\.artifact\.key must not have empty, '\.' or '\.\.' path segments/);
        rejects("prod", { release: { artifact: { bucket: "nourish-*" } } }, /^nourish-link:release\.artifact\.bucket must be an S3 bucket name/);
      });
      it("values refused late before, now by the schema", () => {
        rejects("prod", { maintenance: { timezone: "africa/kigali" } }, /^nourish-link:maintenance\.timezone must be an IANA time zone as spelled in \/usr\/share\/zoneinfo/);
        rejects("prod", { maintenance: { timezone: "EST5EDT" } }, /^nourish-link:maintenance\.timezone must be an IANA time zone/);
        rejects("prod", { release: { healthPath: "/health/;return" } }, /^nourish-link:release\.healthPath must be a URL path starting with \//);
        rejects("prod", { monitoring: { alertEmails: ["o'brien@nourishlink.rw"] } }, /^nourish-link:monitoring\.alertEmails\[0\] must be an email address$/);
        rejects("prod", { network: { vpcCidr: "10.40.7.9/16" } }, /^nourish-link:network\.vpcCidr must be a network address such as 10\.40\.0\.0\/16/);
        rejects("prod", { network: { vpcCidr: "10.40.0.0/24" } }, /^nourish-link:network\.vpcCidr must be a \/16 to \/18 block/);
        rejects("prod", { network: { vpcCidr: "10.0.0.0/8" } }, /^nourish-link:network\.vpcCidr must be a \/16 to \/18 block/);
        assert.strictEqual(parseSettings(settingsOf("prod", { maintenance: { timezone: "UTC" } }), "prod").maintenance.timezone, "UTC");
      });
      it("__proto__ and similar keys, at any depth", () => {
        const raw = { ...settingsOf("prod"), backups: JSON.parse('{"__proto__": {"enabled": false}}') };
        assert.throws(() => parseSettings(raw, "prod"), /nourish-link:backups\.__proto__ is not allowed/);
        assert.throws(() => parseSettings({ ...settingsOf("prod"), constructor: { prototype: 1 } }, "prod"), /nourish-link:constructor is not allowed/);
        assert.strictEqual(({} as Record<string, unknown>).enabled, undefined, "the prototype was polluted");
      });
    });

    it("lists every problem at once, cross-key rules included", () => {
      const found = problems("prod", {
        app: { count: 0 }, network: { vpcCidr: "x" }, monitoring: { alertEmails: [] }, release: { version: "1" }, backups: { enabled: false, pitr: false },
      });
      for (const key of ["app.count", "network.vpcCidr", "monitoring.alertEmails", "release.version", "backups.enabled"]) {
        assert.ok(found.some((p) => p.startsWith(`nourish-link:${key} `)), `no problem names ${key}:\n${found.join("\n")}`);
      }
      assert.strictEqual(found.length, 5, found.join("\n"));
    });
  });

  describe("loadConfig in the program", () => {
    it("fails before any resource is registered, naming each key", async () => {
      const resources: RecordedResource[] = [];
      const config = stackConfig("prod", { set: { app: { count: 99 }, backups: { enabled: false, pitr: false } } });
      const message = await programError(runProgram({ stack: "prod", ...config, resources }));
      assert.match(message, /nourish-link:app\.count must be at most 20/);
      assert.match(message, /nourish-link:backups\.enabled must be true on prod/);
      // Only the stack itself, which the engine registers before the program runs.
      assert.deepStrictEqual(resources.map((r) => r.type), ["pulumi:pulumi:Stack"]);
    });

    it("requires aws:region", async () => {
      const { config } = readStackFile("staging");
      delete config["aws:region"];
      assert.match(await programError(runProgram({ stack: "staging", config })), /aws:region is required/);
    });

    it("refuses a secret setting stored in plain text, without echoing it", async () => {
      const secret = "a-plain-text-secret-key-that-should-have-been-encrypted-0123456789";
      const message = await programError(runStack("staging", { set: { djangoSecretKey: secret } }));
      assert.match(message, /nourish-link:djangoSecretKey must be set with --secret/);
      assert.ok(!message.includes(secret), "the error repeats the secret");
    });

    it("refuses keys under a misspelled or unknown namespace, and __proto__", async () => {
      const { config } = readStackFile("prod");
      config["nourish_link:database"] = JSON.stringify({ managed: true });
      config["nourishlink:domain"] = "x.nourishlink.rw";
      config["acme:colour"] = "blue";
      config["nourish-link:__proto__"] = JSON.stringify({ environment: "staging" });
      const resources: RecordedResource[] = [];
      const message = await programError(runProgram({ stack: "prod", config, resources }));
      assert.match(message, /nourish_link:database is under the misspelled namespace 'nourish_link': it would be ignored; did you mean nourish-link:database\?/);
      assert.match(message, /nourishlink:domain is under the misspelled namespace 'nourishlink'/);
      assert.match(message, /acme:colour is under an unknown namespace 'acme': stack config keys belong to nourish-link:, aws:, pulumi:/);
      assert.match(message, /nourish-link:__proto__ is not allowed/);
      assert.deepStrictEqual(resources.map((r) => r.type), ["pulumi:pulumi:Stack"]);
    });

    it("refuses --secret on a key that is not a secret", async () => {
      const message = await programError(runStack("staging", { secrets: { domain: "staging.nourishlink.rw" } }));
      assert.match(message, /nourish-link:domain is not a secret setting/);
    });

    it("does not echo a secret that fails validation", async () => {
      const message = await programError(runStack("staging", { secrets: { dbPassword: "short-secret" } }));
      assert.match(message, /nourish-link:dbPassword must be at least 16 characters/);
      assert.ok(!message.includes("short-secret"));
    });
  });
});
