// Real tools the tests drive. A missing tool fails the test that needs it, naming the Debian
// package to install; nothing is skipped. Every package named here is in DEBIAN_PACKAGES_FILE,
// which `npm test`'s pretest installs (test/debian-packages.test.ts checks both).
import * as assert from "assert";
import { spawnSync, SpawnSyncOptions } from "child_process";
import * as net from "net";
import * as path from "path";

/** The one list of Debian packages the tests need (also CI's: .ci/run is `npm ci && npm test`, on Node 22). */
export const DEBIAN_PACKAGES_FILE = "scripts/workstation/debian-packages.txt";

export const PACKAGE_OF: Record<string, string> = {
  "systemd-analyze": "systemd",
  "systemd-tmpfiles": "systemd",
  touch: "coreutils",
  nginx: "nginx",
  gunicorn: "gunicorn",
  shellcheck: "shellcheck",
  "cloud-init": "cloud-init",
  pgbackrest: "pgbackrest",
  wrk: "wrk",
  openssl: "openssl",
  blkid: "util-linux",
  mkswap: "util-linux",
  sfdisk: "fdisk",
  "mkfs.ext4": "e2fsprogs",
  debugfs: "e2fsprogs",
  logrotate: "logrotate",
  ss: "iproute2",
  curl: "curl",
  flock: "util-linux",
  diff: "diffutils",
  git: "git",
  "dpkg-deb": "dpkg",
  "dpkg-query": "dpkg",
  dpkg: "dpkg",
  runuser: "util-linux",
  sha256sum: "coreutils",
  python3: "python3",
  sqlite3: "sqlite3",
  debootstrap: "debootstrap",
  "systemd-nspawn": "systemd-container",
  "apt-cacher-ng": "apt-cacher-ng",
  nft: "nftables",
  nsenter: "util-linux",
  losetup: "mount",
  unshare: "util-linux",
  logger: "bsdutils",
  journalctl: "systemd",
  pg_createcluster: "postgresql",
};

/** Tools that are not Debian packages: how to get them instead. */
const NOT_DEBIAN: Record<string, string> = {
  moto_server: "moto_server is not installed: it comes with the machine image's Python 3.11 (pip's moto[server]); it is not a Debian package",
};

export function requireTool(name: string): void {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  assert.strictEqual(found.status, 0, NOT_DEBIAN[name] ?? `${name} is not installed: apt-get install -y ${PACKAGE_OF[name] ?? name} (${DEBIAN_PACKAGES_FILE}; npm test installs them when run as root)`);
}

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A free TCP port on loopback (the kernel picks one for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

/** A throwaway self-signed certificate and key (valid one day) in `dir`. */
export function selfSignedCert(dir: string, commonName: string): { cert: string; key: string } {
  requireTool("openssl");
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  const r = run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "1", "-subj", `/CN=${commonName}`]);
  assert.strictEqual(r.status, 0, `openssl failed: ${r.stderr}`);
  return { cert, key };
}

/** Resolves once another process holds `lockFile` (flock): a test's lock holder is in place, however slow its start. */
export async function untilLocked(lockFile: string, ms = 30_000): Promise<void> {
  requireTool("flock");
  for (const end = Date.now() + ms; run("flock", ["-n", "-E", "99", lockFile, "true"]).status !== 99; await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) assert.fail(`nothing took the lock ${lockFile} within ${ms / 1000} s`);
  }
}
