// First contact: `npm test` ensures the Debian packages the tests drive, from one list that CI
// shares (.ci/run is `npm ci && npm test`, on Node 22). The checker runs here against a fake
// dpkg-query, id and apt-get on PATH, so nothing is really installed.
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "../scripts/preview/stack-file";
import { DEBIAN_PACKAGES_FILE, PACKAGE_OF, run } from "./tools";

const CHECKER = path.join(ROOT, "scripts/workstation/ensure-debian-packages.sh");

/** The package names of the list, comments and blank lines dropped. */
export function debianPackages(file = path.join(ROOT, DEBIAN_PACKAGES_FILE)): string[] {
  return fs.readFileSync(file, "utf8").split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
}

/** Every tool a test or script asks requireTool for, by name, as written in the source. */
function requiredTools(): string[] {
  const tools = new Set<string>();
  for (const dir of ["test", "scripts"]) {
    for (const f of fs.readdirSync(path.join(ROOT, dir), { recursive: true }) as string[]) {
      if (!f.endsWith(".ts")) continue;
      const src = fs.readFileSync(path.join(ROOT, dir, f), "utf8");
      for (const m of src.matchAll(/requireTool\("([\w.+-]+)"\)/g)) tools.add(m[1]);
      for (const m of src.matchAll(/for \(const (\w+) of \[([^\]]*)\]\) requireTool\(\1\)/g)) {
        for (const t of m[2].matchAll(/"([^"]+)"/g)) tools.add(t[1]);
      }
    }
  }
  return [...tools].sort();
}

describe("Debian packages the tests need (npm test's pretest)", () => {
  let dir = "";
  let bin = "";
  let list = "";
  let calls = "";

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nldeb-"));
    bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    list = path.join(dir, "packages.txt");
    calls = path.join(dir, "calls");
    // dpkg-query -W -f=… NAMES: a line per name it knows (from dpkg-db), exit 1 if it knows one not at all.
    fs.writeFileSync(path.join(bin, "dpkg-query"), `#!/bin/bash
shift 2; rc=0
for p in "$@"; do
  line=$(grep -P "^$p\\t" "${dir}/dpkg-db") || { echo "dpkg-query: no packages found matching $p" >&2; rc=1; continue; }
  echo "$line"
done
exit $rc
`, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, "id"), `#!/bin/sh\necho "$FAKE_UID"\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, "apt-get"), `#!/bin/sh\necho "DEBIAN_FRONTEND=$DEBIAN_FRONTEND apt-get $*" >> "${calls}"\n[ "$1" != install ] || exit "\${FAKE_APT_RC:-0}"\n`, { mode: 0o755 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function check(installed: Record<string, string>, packages: string, env: Record<string, string>) {
    fs.writeFileSync(path.join(dir, "dpkg-db"), Object.entries(installed).map(([p, s]) => `${p}\t${s}\n`).join(""));
    fs.writeFileSync(list, packages);
    fs.rmSync(calls, { force: true });
    const r = run("bash", [CHECKER], { env: { PATH: `${bin}:/usr/bin:/bin`, DEBIAN_PACKAGES_LIST: list, ...env } });
    return { ...r, apt: fs.existsSync(calls) ? fs.readFileSync(calls, "utf8") : "" };
  }
  const OK = "install ok installed";

  it("does nothing, silently, when every package is installed", () => {
    const r = check({ nginx: OK, wrk: OK }, "# services\nnginx\n\nwrk  # load\n", { FAKE_UID: "1000" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, "");
    assert.equal(r.apt, "");
  });

  it("not root: stops at once with the one line to run, naming only the missing packages", () => {
    // wrk was removed with its configuration kept: missing too. hyperfine dpkg never heard of.
    const r = check({ nginx: OK, wrk: "deinstall ok config-files" }, "nginx\nwrk\nhyperfine\n", { FAKE_UID: "1000" });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr,
      `npm test: missing Debian packages: wrk hyperfine (from ${list}). Install them with:\n` +
      "  sudo apt-get update && sudo apt-get install -y --no-install-recommends wrk hyperfine\n");
    assert.equal(r.apt, "", "installed something without root");
  });

  it("root: apt-get update, then installs exactly the missing packages without recommends", () => {
    const r = check({ nginx: OK }, "nginx\nwrk\nhyperfine\n", { FAKE_UID: "0" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.apt, "DEBIAN_FRONTEND=noninteractive apt-get update\nDEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk hyperfine\n");
    assert.match(r.stdout, /^npm test: installing missing Debian packages: wrk hyperfine$/m);
  });

  it("root: a failed install fails npm test", () => {
    const r = check({}, "wrk\n", { FAKE_UID: "0", FAKE_APT_RC: "100" });
    assert.equal(r.status, 100);
  });

  it("refuses a list line that is not a package name, naming the line", () => {
    const r = check({ nginx: OK }, "nginx\nnginx; rm -rf /\n", { FAKE_UID: "0" });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `npm test: ${list} line 2: 'nginx; rm -rf /' is not one Debian package name\n`);
    assert.equal(r.apt, "");
  });

  it("prints what the README shows, for the real list run as npm does", () => {
    const installed = Object.fromEntries(debianPackages().filter((p) => p !== "wrk" && p !== "hyperfine").map((p) => [p, OK]));
    fs.writeFileSync(path.join(dir, "dpkg-db"), Object.entries(installed).map(([p, s]) => `${p}\t${s}\n`).join(""));
    const r = run("bash", ["scripts/workstation/ensure-debian-packages.sh"], { cwd: ROOT, env: { PATH: `${bin}:/usr/bin:/bin`, FAKE_UID: "1000" } });
    assert.equal(r.status, 1);
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    assert.ok(readme.includes(`\n\`\`\`\n${r.stderr}\`\`\`\n`), `README.md lacks this block:\n${r.stderr}`);
  });

  it("is the one list: requireTool's packages are in it, npm test runs the checker first, CI runs only the README's commands", () => {
    const packages = debianPackages();
    assert.equal(new Set(packages).size, packages.length, "a package is listed twice");
    const tools = requiredTools();
    assert.ok(tools.includes("nginx") && tools.includes("runuser") && tools.length > 15, tools.join(" "));
    for (const tool of tools) {
      if (tool === "moto_server") continue; // not a Debian package (test/tools.ts says where it comes from)
      const pkg = PACKAGE_OF[tool] ?? tool;
      assert.ok(packages.includes(pkg), `requireTool("${tool}") names ${pkg}, which ${DEBIAN_PACKAGES_FILE} lacks`);
    }
    for (const pkg of Object.values(PACKAGE_OF)) assert.ok(packages.includes(pkg), `test/tools.ts names ${pkg}, which ${DEBIAN_PACKAGES_FILE} lacks`);
    const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts;
    assert.equal(scripts.pretest, "bash scripts/workstation/ensure-debian-packages.sh");
    assert.equal(scripts.test, "npm run typecheck && mocha");
    const ci = fs.readFileSync(path.join(ROOT, ".ci/run"), "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
    assert.deepEqual(ci, ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "npx -y -p node@22.23.3 -- bash -c 'npm ci && npm test'"]);
  });
});
