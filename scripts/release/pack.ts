// The deterministic packer of release artifacts: the same tree gives the same bytes (sorted
// names, mtime 0, uid/gid 0, normalised modes, gzip without name or time), so an artifact's
// SHA-256 names its content. Used by `npm run artifact` (scripts/release/artifact.ts) and through
// it by the rehearsal's sample-app releases (scripts/rehearsal/artifacts.ts).
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";

export function sha256File(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** Packs the contents of `dir` (its entries at the archive's root) into the tar.gz `file`; returns its SHA-256. */
export function packTree(dir: string, file: string): string {
  const top = fs.readdirSync(dir).sort();
  const r = spawnSync("tar", [
    "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner",
    // Modes from a checkout depend on the umask: ship 0644 files and 0755 dirs/executables.
    "--mode=u=rwX,go=rX", "--format=gnu", "-I", "gzip -n -9", "-cf", file, "--", ...top,
  ], { cwd: dir, encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`tar of ${dir} into ${file} failed (${r.status}): ${r.stderr}`);
  return sha256File(file);
}
