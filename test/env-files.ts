// Test helpers for env files: nourishctl's own parser, and values no shell would survive.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";

/** The parser exactly as nourishctl embeds it. */
export function envFileParser(): string {
  const m = /<<'PY' \|\| true\n([\s\S]*?)\nPY\n/.exec(fs.readFileSync(NOURISHCTL_SOURCE, "utf8"));
  assert.ok(m, "ENV_FILE_PARSER not found in nourishctl");
  return m[1];
}

/** What nourishctl reads from `file`: its KEY=VALUE pairs, or its one-line refusal. */
export function parseEnvFile(file: string): { status: number | null; vars: Record<string, string>; stderr: string } {
  const r = spawnSync("/usr/bin/python3", ["-I", "-S", "-c", envFileParser(), file], { encoding: "buffer" });
  const vars: Record<string, string> = {};
  for (const rec of r.stdout.toString("utf8").split("\0").slice(0, -1)) vars[rec.slice(0, rec.indexOf("="))] = rec.slice(rec.indexOf("=") + 1);
  return { status: r.status, vars, stderr: r.stderr.toString() };
}

/** Every printable ASCII character, and the values a shell would run, split or cut short. */
export const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("");
export function nastyValues(marker: string): Record<string, string> {
  return {
    PRINTABLE,
    RUNS: ` $(touch ${marker}) \`touch ${marker}\`; touch ${marker} # `,
    QUOTES: `'single' "double" \\" \\' it's`,
    BACKSLASHES: "\\ \\\\ ends with a backslash \\",
    SPACES: "  leading and trailing  ",
    COMMENT: "# not a comment ; nor this",
    PLAIN: "dusangire.settings",
  };
}

