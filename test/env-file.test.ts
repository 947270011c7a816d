// Env files are data: one parser in nourishctl (systemd's EnvironmentFile= rules), two writers
// (renderEnvFile in TypeScript for host.env, env_line in bash for app.env). They must agree with
// each other and with systemd itself, byte for byte, on values no shell would survive.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderEnvFile } from "../components/hosts/env-file";
import { hostEnv, NOURISHCTL_LIB_SOURCE } from "../components/hosts/user-data";
import { parseSettings } from "../components/config";
import { stackConfig } from "./harness";
import { nastyValues, parseEnvFile } from "./env-files";
import { requireTool } from "./tools";

describe("env files: one parser, writers that agree with it and with systemd", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-envfile-"));
  const marker = path.join(dir, "ran");
  const values = nastyValues(marker);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("renderEnvFile (TypeScript) and env_line (bash) write what nourishctl's parser reads back byte for byte", () => {
    const ts = path.join(dir, "ts.env");
    fs.writeFileSync(ts, renderEnvFile("test", values));
    assert.deepStrictEqual(parseEnvFile(ts), { status: 0, vars: values, stderr: "" });
    // env_line exactly as lib/setup.sh defines it; values reach it through the environment.
    const sh = path.join(dir, "sh.env");
    const script = `die() { echo "$*" >&2; exit 1; }\n. <(sed -n '/^env_line()/,/^}/p' ${JSON.stringify(path.join(NOURISHCTL_LIB_SOURCE, "setup.sh"))})\n` +
      Object.keys(values).map((k) => `env_line ${k} "$V_${k}"\n`).join("");
    const env = { ...process.env, ...Object.fromEntries(Object.entries(values).map(([k, v]) => [`V_${k}`, v])) };
    const w = spawnSync("bash", ["-c", script], { encoding: "utf8", env });
    assert.strictEqual(w.status, 0, w.stderr);
    fs.writeFileSync(sh, w.stdout);
    assert.deepStrictEqual(parseEnvFile(sh), { status: 0, vars: values, stderr: "" });
    assert.ok(!fs.existsSync(marker), "writing or reading an env file ran a command");
  });

  it("systemd 252 reads the same values from what the writers write (its own env-file parser)", () => {
    // No systemd as PID 1 here; the environment.d generator runs systemd's env-file parser
    // (load_env_file_pairs) without one and prints what it read, shell-escaped. It also expands
    // $NAME and ${NAME}, which none of these values contain.
    const generator = "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator";
    requireTool(generator);
    const conf = path.join(dir, "xdg/environment.d");
    fs.mkdirSync(conf, { recursive: true });
    fs.writeFileSync(path.join(conf, "nourish.conf"), renderEnvFile("test", values));
    const r = spawnSync(generator, [], { encoding: "utf8", env: { PATH: process.env.PATH, XDG_CONFIG_HOME: path.join(dir, "xdg") } });
    assert.strictEqual(r.status, 0, r.stderr);
    const seen: Record<string, string> = {};
    for (const line of r.stdout.split("\n")) {
      const m = /^([A-Z]+)=(?:"((?:[^"\\]|\\.)*)"|([^"]*))$/.exec(line);
      if (m && m[1] in values) seen[m[1]] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
    }
    assert.deepStrictEqual(seen, values);
    assert.ok(!fs.existsSync(marker));
  });

  it("the parser follows systemd on comments, quotes, escapes, continuations and whitespace", () => {
    const file = path.join(dir, "rules.env");
    fs.writeFileSync(file, [
      "# comment", "; comment too", "  A = spaced value  \t", "B='single \\n $x' \"and double \\q \\$\"", "C=esc\\ aped\\",
      "continued", "D=\"multi", "line\"", "E=", "F=x'y'  'z'", "# a comment \\", "G=continues the comment (systemd 252)", "",
    ].join("\n"));
    assert.deepStrictEqual(parseEnvFile(file), { status: 0, stderr: "", vars: {
      A: "spaced value", B: "single \\n $xand double \\q $", C: "esc apedcontinued", D: "multi\nline", E: "", F: "x'y'  'z'",
    } });
  });

  it("refuses a name that is not an identifier or a line without '=', naming file and line, never the content", () => {
    for (const [text, line, why] of [["A=1\nB C=secret\n", 2, "is not a variable name"], ["A=1\n\nhunter2 secret\n", 3, "no '='"], ["X[$(id)]=1\n", 1, "is not a variable name"]] as const) {
      const file = path.join(dir, "bad.env");
      fs.writeFileSync(file, text);
      const r = parseEnvFile(file);
      assert.strictEqual(r.status, 1);
      assert.ok(r.stderr.startsWith(`nourishctl: ${file} line ${line}: `) && r.stderr.includes(why), r.stderr);
      assert.doesNotMatch(r.stderr, /secret|hunter2|id\)/);
    }
  });

  it("renderEnvFile quotes only what needs it and refuses what no env file can hold", () => {
    assert.strictEqual(renderEnvFile("t", { A: "1.2.3", B: "a b", C: "$x" }), 'A=1.2.3\nB="a b"\nC="\\$x"\n');
    assert.throws(() => renderEnvFile("host.env", { "A-B": "1" }), /host\.env: "A-B" is not a variable name/);
    assert.throws(() => renderEnvFile("host.env", { A: "x\ny" }), /host\.env: the value of A has a control character/);
  });

  it("host.env carries a value with spaces or quotes as data instead of refusing it", () => {
    const raw: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(stackConfig("staging").config)) {
      if (k.startsWith("nourish-link:")) try { raw[k.slice(13)] = JSON.parse(v); } catch { raw[k.slice(13)] = v; }
    }
    const config = { ...parseSettings(raw, "staging"), stack: "staging", region: "eu-west-1", secrets: {} };
    const f = hostEnv(config, "db", { ODD: "it's \"$(odd)\" " });
    const file = path.join(dir, "host.env");
    fs.writeFileSync(file, f.content);
    assert.strictEqual(parseEnvFile(file).vars.ODD, "it's \"$(odd)\" ");
  });
});
