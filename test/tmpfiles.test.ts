// The hosts' tmpfiles.d rules, applied by the real systemd-tmpfiles to a directory tree (--root).
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderTmpfilesConf, TMPFILES_PATH } from "../components/hosts/tmpfiles";
import { monitoringHostFiles } from "../components/monitoring/host";
import { loadStackConfig } from "./harness";
import { requireTool, run } from "./tools";

describe("tmpfiles: /tmp, /var/tmp and nourishctl's leftovers, cleaned by the real systemd-tmpfiles", () => {
  let dir = "";
  let root = "";
  let conf = "";
  const file = (p: string, age?: string, only = "") => {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), "x");
    if (age) assert.strictEqual(run("touch", [...(only ? [only] : []), "-d", age, path.join(root, p)]).status, 0);
  };
  const exists = (p: string) => fs.existsSync(path.join(root, p));
  const tmpfiles = (...args: string[]) => {
    const r = run("systemd-tmpfiles", [...args, `--root=${root}`, conf]);
    assert.strictEqual(r.status, 0, r.stderr);
    return r;
  };

  before(async () => {
    requireTool("systemd-tmpfiles");
    requireTool("touch");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-tmpfiles-"));
    root = path.join(dir, "root");
    conf = path.join(dir, "tmp.conf");
    const config = await loadStackConfig("prod");
    for (const role of ["app", "db"] as const) {
      const files = monitoringHostFiles(config, role).filter((f) => f.path === TMPFILES_PATH);
      assert.strictEqual(files.length, 1, `${role}: no ${TMPFILES_PATH}`);
      fs.writeFileSync(conf, files[0].content);
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("the daily clean removes what nobody read or wrote for 10 days in /tmp and 30 in /var/tmp, and keeps the rest", () => {
    file("tmp/old-upload", "20 days ago");
    file("tmp/fresh-upload");
    file("tmp/read-yesterday", "20 days ago", "-m"); // old mtime, but read since: kept
    file("var/tmp/old-cache", "40 days ago");
    file("var/tmp/month-cache", "20 days ago");
    tmpfiles("--clean");
    assert.ok(!exists("tmp/old-upload"), "a 20-day-old /tmp file stays");
    assert.ok(exists("tmp/fresh-upload"), "a fresh /tmp file went");
    assert.ok(exists("tmp/read-yesterday"), "a file read recently went");
    assert.ok(!exists("var/tmp/old-cache"), "a 40-day-old /var/tmp file stays");
    assert.ok(exists("var/tmp/month-cache"), "a 20-day-old /var/tmp file went");
  });

  it("at boot removes the scratch directories a killed nourishctl left, and nothing beside them", () => {
    file("var/backups/nourish-link/.verify.Ab12/base.tar");
    file("var/backups/nourish-link/.restore.Cd34/dump");
    file("var/backups/nourish-link/nourish-link-2026-12-01.dump");
    file("srv/nourish-link/releases/.fetch-1.2.0.Ef56/a.tar.gz");
    file("srv/nourish-link/releases/1.1.0/manage.py");
    tmpfiles("--create", "--remove");
    assert.deepStrictEqual(fs.readdirSync(path.join(root, "var/backups/nourish-link")), ["nourish-link-2026-12-01.dump"]);
    assert.deepStrictEqual(fs.readdirSync(path.join(root, "srv/nourish-link/releases")), ["1.1.0"]);
  });

  it("refuses a nonsense age", () => {
    assert.throws(() => renderTmpfilesConf({ tmpDays: 0, varTmpDays: 30 }), /^Error: tmpfiles: tmpDays must be a positive integer, got 0$/);
  });
});
