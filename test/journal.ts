// A real journal for tests: Debian's own systemd-journald, started in a private mount namespace
// (its sockets under a private /run/systemd, its persistent store bound to a temp dir, /etc/systemd
// a private tmpfs holding only the drop-ins under test), fed through the native protocol by
// `logger --journald`, flushed to disk and stopped. This machine's PID 1 is not systemd and has no
// journald of its own; nothing outside the namespace is touched. Runs as root (unshare, mount).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { requireTool, run } from "./tools";

export interface JournalEntry {
  /** The unit the entry is about (OBJECT_SYSTEMD_UNIT, which `journalctl -u` matches for root's entries). */
  unit: string;
  message: string;
  identifier?: string;
}

const SCRIPT = `
set -eu
store="$1" entries="$2" conf="$3"
mount -t tmpfs tmpfs /run/systemd 2>/dev/null || { mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }
mkdir -p /run/log && mount -t tmpfs tmpfs /run/log
mount -t tmpfs tmpfs /etc/systemd
if [ -d "$conf" ]; then mkdir -p /etc/systemd/journald.conf.d && cp "$conf"/*.conf /etc/systemd/journald.conf.d/; fi
mount -t tmpfs tmpfs /var/log
mkdir -p /var/log/journal && mount --bind "$store" /var/log/journal
mkdir -p /run/systemd/journal
/usr/lib/systemd/systemd-journald &
pid=$!
i=0
until [ -S /run/systemd/journal/socket ]; do
  i=$((i + 1)); [ "$i" -lt 300 ] || { echo "journald did not open its socket" >&2; kill "$pid"; exit 1; }
  sleep 0.1
done
for f in "$entries"/*.entry; do [ -e "$f" ] && logger --journald="$f"; done
journalctl --flush
journalctl --sync
kill "$pid"
wait "$pid" || true
`;

/**
 * Writes `entries` into a persistent journal under `dir` (dir/<machine-id>/*.journal), with the
 * journald.conf.d drop-ins in `confDir` if given. Returns what journald itself reported (its
 * messages about the journal's size and cap, read back with journalctl).
 */
export function writeJournal(dir: string, entries: JournalEntry[], confDir?: string): string {
  for (const t of ["unshare", "logger", "journalctl"]) requireTool(t);
  assert.ok(fs.existsSync("/usr/lib/systemd/systemd-journald"), "systemd-journald is missing: apt-get install -y systemd");
  fs.mkdirSync(dir, { recursive: true });
  const work = fs.mkdtempSync(path.join(dir, ".entries-"));
  entries.forEach((e, i) => {
    for (const v of [e.unit, e.message, e.identifier ?? ""]) assert.ok(!/\n/.test(v), "one line per field");
    fs.writeFileSync(path.join(work, `${String(i).padStart(4, "0")}.entry`),
      `MESSAGE=${e.message}\nOBJECT_SYSTEMD_UNIT=${e.unit}\nSYSLOG_IDENTIFIER=${e.identifier ?? e.unit.replace(/[@.].*$/, "")}\n`);
  });
  const r = run("unshare", ["-m", "--propagation", "private", "sh", "-c", SCRIPT, "sh", dir, work, confDir ?? ""], { timeout: 60_000 });
  fs.rmSync(work, { recursive: true, force: true });
  assert.strictEqual(r.status, 0, `journald in a private namespace failed: ${r.stderr}`);
  return run("journalctl", ["-D", dir, "--no-pager", "-q", "-o", "cat", "-t", "systemd-journald"]).stdout;
}
