// Wheels for tests, written by hand (no build backend, no network): a pure-Python package whose
// bytes depend only on its name, version and tag (fixed zip times, stored entries).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as path from "path";

/** Writes <name>-<version>-<tag>.whl into dir; returns its path. */
export function tinyWheel(dir: string, o: { name?: string; version?: string; tag?: string } = {}): string {
  const { name = "tinypkg", version = "1.0", tag = "py3-none-any" } = o;
  const file = path.join(dir, `${name}-${version}-${tag}.whl`);
  const py = `import base64, hashlib, sys, zipfile
name, version, tag, out = sys.argv[1:5]
info = f"{name}-{version}.dist-info"
files = {f"{name}/__init__.py": b"VALUE = 1\\n",
         f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n".encode(),
         f"{info}/WHEEL": f"Wheel-Version: 1.0\\nGenerator: hand\\nRoot-Is-Purelib: {'true' if tag.endswith('-none-any') else 'false'}\\nTag: {tag}\\n".encode()}
rec = "".join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},{len(b)}\\n" for n, b in files.items())
with zipfile.ZipFile(out, "w") as z:
    for n, b in files.items():
        z.writestr(zipfile.ZipInfo(n, (2020, 1, 1, 0, 0, 0)), b)
    z.writestr(zipfile.ZipInfo(f"{info}/RECORD", (2020, 1, 1, 0, 0, 0)), rec + f"{info}/RECORD,,\\n")
`;
  const r = spawnSync("/usr/bin/python3", ["-c", py, name, version, tag, file], { encoding: "utf8" });
  assert.strictEqual(r.status, 0, r.stderr);
  return file;
}
