// The bare Debian 12 root file system a host boots from: what Debian's AMI has (systemd,
// cloud-init, openssh-server, ca-certificates), built once by debootstrap through the apt cache and
// kept under CACHE_DIR/rootfs/<key>, keyed by suite, mirror and package list. Each boot gets an
// overlay on top of it (estate.ts), so the cached tree stays bare.
//
// Like Debian's cloud images, en_US.UTF-8 is generated (their build preseeds locales with it):
// cloud-init's locale module sets LANG=en_US.UTF-8 with update-locale, which fails on a locale
// that is not generated (Debian's locale-gen only builds what /etc/locale.gen lists). This is part
// of the image, not a seam.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { sh } from "./system";

export const CACHE_DIR = process.env.NOURISH_ESTATE_CACHE ?? "/var/cache/nourish-link";
export const SUITE = "bookworm";
export const MIRROR = "http://deb.debian.org/debian";
export const ROOTFS_PACKAGES = ["systemd", "systemd-sysv", "dbus", "cloud-init", "openssh-server", "ca-certificates",
  // debootstrap does not resolve virtual packages: python3-cryptography (cloud-init's) needs the cffi backend named.
  "python3-cffi-backend",
  // cloud-init's locale module runs update-locale (Debian's cloud images carry it).
  "locales"];
/** The locales generated in the image (/etc/locale.gen), as Debian's cloud images have them. */
export const ROOTFS_LOCALES = ["en_US.UTF-8 UTF-8"];

export function rootfsKey(): string {
  return createHash("sha256").update(JSON.stringify({ SUITE, MIRROR, ROOTFS_PACKAGES, ROOTFS_LOCALES })).digest("hex").slice(0, 16);
}

/** The cached root file system (built by debootstrap when missing); `proxy` is the apt cache. */
export function ensureRootfs(proxy: string, log: (s: string) => void = () => undefined): string {
  const dir = path.join(CACHE_DIR, "rootfs", rootfsKey());
  if (fs.existsSync(path.join(dir, ".complete"))) return dir;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  log(`debootstrap ${SUITE} (${ROOTFS_PACKAGES.join(", ")}) into ${dir} (once; a few minutes)`);
  sh("debootstrap", [`--include=${ROOTFS_PACKAGES.join(",")}`, SUITE, tmp, MIRROR], { env: { ...process.env, http_proxy: proxy } });
  fs.writeFileSync(path.join(tmp, "etc/locale.gen"), `${ROOTFS_LOCALES.join("\n")}\n`);
  sh("chroot", [tmp, "locale-gen"]);
  sh("chroot", [tmp, "apt-get", "clean"]);
  fs.writeFileSync(path.join(tmp, ".complete"), `${new Date().toISOString()}\n`);
  // Another process may have finished first: its tree is as good as ours.
  try { fs.renameSync(tmp, dir); } catch { fs.rmSync(tmp, { recursive: true, force: true }); }
  return dir;
}
