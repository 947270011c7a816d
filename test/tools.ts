// Real tools the tests drive. A missing tool fails the test that needs it, naming the Debian
// package to install (.ci/run installs them all); nothing is skipped.
import * as assert from "assert";
import { spawnSync, SpawnSyncOptions } from "child_process";

export const PACKAGE_OF: Record<string, string> = {
  "systemd-analyze": "systemd",
  nginx: "nginx",
  gunicorn: "gunicorn",
  shellcheck: "shellcheck",
  "cloud-init": "cloud-init",
  pgbackrest: "pgbackrest",
  wrk: "wrk",
};

export function requireTool(name: string): void {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  assert.strictEqual(found.status, 0, `${name} is not installed: apt-get install -y ${PACKAGE_OF[name] ?? name} (see .ci/run)`);
}

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}
