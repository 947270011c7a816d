// Documents claim only what exists: every npm script, nourishctl verb (with its subcommand and
// options), config key and repository path that README.md, the pages under docs/ and the stack
// files' comments name is one the package has; every link between pages reaches a file and a heading. Verbs, options and keys are read from the
// code (nourishctl's help, the zod schema), so a verb added to scripts/host/lib passes once it is
// there. docs/DEVELOPMENT.md's invalid-config example is the real output of `npm start` on an invalid stack.
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { configReference } from "../scripts/config-reference";
import { ROOT } from "../scripts/preview/stack-file";

const DOCS = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];
// Pages that are tables rather than reading: no table of contents required.
const NO_TOC = ["docs/RUNBOOK.md", "docs/BENCHMARKS.md", "docs/SECURITY.md"];
const FIXTURES = "test/fixtures/promotion";
const STACK_FILES = [
  ...fs.readdirSync(ROOT).filter((f) => /^Pulumi\..+\.yaml$/.test(f)),
  ...fs.readdirSync(path.join(ROOT, FIXTURES)).filter((f) => /^Pulumi\..+\.yaml$/.test(f)).map((f) => `${FIXTURES}/${f}`),
];

/** What a document says in code: fenced blocks' lines and inline code spans, table pipes unescaped. */
function codeOf(text: string): string[] {
  const code: string[] = [];
  const prose = text.replace(/^```[^\n]*\n([\s\S]*?)^```$/gm, (_, block: string) => { code.push(...block.split("\n")); return ""; });
  // A span may wrap onto the next line.
  for (const m of prose.matchAll(/`([^`]+)`/g)) code.push(m[1].replace(/\s*\n\s*/g, " ").replace(/\\\|/g, "|"));
  return code;
}

/** Markdown link targets that are not URLs or anchors, relative to the document. */
function linksOf(doc: string, text: string): string[] {
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((t) => !/^(https?:|mailto:|#)/.test(t))
    .map((t) => path.normalize(path.join(path.dirname(doc), t.replace(/#.*$/, ""))));
}

/** GitHub's anchors for a page's headings (outside code): lower-case, punctuation dropped, spaces to '-', repeats numbered. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "").matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const slug = m[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/ /g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n ? `${slug}-${n}` : slug);
  }
  return out;
}

/** The comments of a YAML file. */
const commentsOf = (text: string): string => text.split("\n").map((l) => /(^|\s)#(.*)$/.exec(l)?.[2] ?? "").filter(Boolean).join("\n");

/** Every file and directory of the repository (without node_modules, .git, out), relative, directories with a trailing /. */
function repoEntries(): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && ["node_modules", ".git", "out"].includes(e.name)) continue;
      if (e.isDirectory()) { out.push(`${p}/`); walk(p); } else out.push(p);
    }
  };
  walk("");
  return out;
}

/** A documented path as a pattern: `<placeholder>` and `*` match within a segment, `{a,b}` either. */
function pathPattern(p: string): RegExp {
  const esc = p.replace(/[.+^$()|[\]\\]/g, "\\$&").replace(/<[^>/]+>|\*/g, "[^/]+").replace(/\{([^}]+)\}/g, (_, alts: string) => `(${alts.split(",").join("|")})`);
  return new RegExp(`^${esc}/?$`);
}

interface Claims { npm: string[]; verbs: string[]; keys: string[]; paths: string[] }

function claimsOf(texts: { doc: string; text: string; code: string[] }[]): Map<string, Claims> {
  const top = new Set(fs.readdirSync(ROOT).filter((e) => !["node_modules", ".git", "out"].includes(e)));
  const out = new Map<string, Claims>();
  for (const { doc, text, code } of texts) {
    const c: Claims = { npm: [], verbs: [], keys: [], paths: [] };
    for (const line of code) {
      for (const m of line.matchAll(/\bnpm (?:(start|test)\b|run (?:-s )?([\w:-]+))/g)) c.npm.push(m[1] ?? m[2]);
      // `nourishctl VERB [SUB] [options]`: the rest of the span (or line) after each mention.
      for (const part of line.split(/\bnourishctl /).slice(1)) if (/^[a-z]/.test(part)) c.verbs.push(part.trim());
      for (const m of line.matchAll(/(?:^|[\s(=])((?:network|app|database|backups|maintenance|monitoring|release|ci)\.[A-Za-z][\w.[\]*]*)/g)) {
        if (!/\.(env|sh|ts|md|json|ya?ml|conf|log|py|sock|service|timer)$/.test(m[1])) c.keys.push(m[1].replace(/\.$/, ""));
      }
      for (const tok of line.split(/[\s,;()`'"]+/)) {
        const t = tok.replace(/[.:]+$/, "").replace(/#.*$/, "");
        if (t.startsWith("../")) c.paths.push(t); // outside the repository: not in a clone
        else if (t.includes("/") && top.has(t.split("/")[0])) c.paths.push(t);
        else if (top.has(t) && t.includes(".")) c.paths.push(t);
      }
    }
    for (const m of text.matchAll(/\bnourish-link:([A-Za-z][\w.[\]]*[\w\]])/g)) c.keys.push(m[1]);
    c.paths.push(...linksOf(doc, text));
    out.set(doc, c);
  }
  return out;
}

describe("documents claim only what exists", () => {
  let sandbox = "";
  const help = new Map<string, string>();
  let verbs: string[] = [];
  const texts = [
    ...DOCS.map((doc) => { const text = fs.readFileSync(path.join(ROOT, doc), "utf8"); return { doc, text, code: codeOf(text) }; }),
    // Stack files: their comments are prose and code at once.
    ...STACK_FILES.map((doc) => { const text = commentsOf(fs.readFileSync(path.join(ROOT, doc), "utf8")); return { doc, text, code: [...codeOf(text), ...text.split("\n").flatMap((l) => l.split(/`[^`]*`/))] }; }),
  ];
  const claims = claimsOf(texts);

  before(() => {
    sandbox = fs.mkdtempSync(path.join(os.tmpdir(), "nldocs-"));
    const ctl = (args: string[]) => spawnSync("bash", [NOURISHCTL_SOURCE, ...args], { encoding: "utf8", env: { ...process.env, NOURISH_ROOT: sandbox } });
    const h = ctl(["help", "-a"]);
    assert.equal(h.status, 0, h.stderr);
    verbs = [...h.stdout.matchAll(/^ {2}([a-z][a-z-]*) /gm)].map((m) => m[1]);
    assert.ok(verbs.includes("status") && verbs.includes("release"), h.stdout);
    for (const v of verbs) {
      const r = ctl([v, "--help"]);
      assert.equal(r.status, 0, `nourishctl ${v} --help: ${r.stderr}`);
      help.set(v, r.stdout);
    }
  });
  after(() => fs.rmSync(sandbox, { recursive: true, force: true }));

  it("finds claims of every kind in each document", () => {
    for (const doc of ["docs/ONCALL.md", "docs/RUNBOOK.md"]) {
      const c = claims.get(doc)!;
      assert.ok(c.verbs.length > 10 && c.keys.length > 10 && c.paths.length > 5, `${doc}: ${JSON.stringify(c).slice(0, 300)}`);
    }
    assert.ok(claims.get("README.md")!.npm.length > 5);
  });

  it("every npm script named is in package.json", () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
    const wrong = [...claims].flatMap(([doc, c]) => c.npm.filter((s) => !(s in scripts)).map((s) => `${doc}: npm ${s}`));
    assert.deepEqual(wrong, []);
  });

  it("every nourishctl verb named exists, with its subcommand and options in the verb's --help", () => {
    const wrong: string[] = [];
    for (const [doc, c] of claims) {
      for (const claim of c.verbs) {
        const [verb, sub] = claim.split(/\s+/);
        const text = help.get(verb);
        if (!text) { wrong.push(`${doc}: nourishctl ${claim} (no verb '${verb}'; nourishctl has ${verbs.join(", ")})`); continue; }
        if (sub && /^[a-z][a-z-]*$/.test(sub) && !new RegExp(`(^|[\\s|(\\[])${sub}($|[\\s|)\\]])`, "m").test(text)) {
          wrong.push(`${doc}: nourishctl ${claim} ('${sub}' is not in nourishctl ${verb} --help)`);
        }
        for (const opt of claim.match(/--[a-z][a-z-]*/g) ?? []) {
          if (opt !== "--help" && !text.includes(opt)) wrong.push(`${doc}: nourishctl ${claim} (${opt} is not in nourishctl ${verb} --help)`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("every config key named is in the schema (components/config.ts)", () => {
    const keys = [...configReference().matchAll(/^\| `nourish-link:([^`]+)` \| (.*)$/gm)].map((m) => ({ key: m[1], object: m[2].startsWith("object") }));
    const known = (k: string) => {
      const key = k.replace(/\[\d+\]/g, "");
      // An object that holds keys (`nourish-link:ci:` in a commented stack-file example) is known too.
      return keys.some((s) => s.key === key || (s.object && key.startsWith(`${s.key}.`)) || key === `${s.key}.*` || s.key.startsWith(`${key}.`))
        || (key.endsWith(".*") && keys.some((s) => s.key.startsWith(key.slice(0, -1))));
    };
    const wrong = [...claims].flatMap(([doc, c]) => c.keys.filter((k) => !known(k)).map((k) => `${doc}: ${k}`));
    assert.deepEqual([...new Set(wrong)], []);
  });

  it("every repository path named exists", () => {
    const entries = repoEntries();
    const wrong: string[] = [];
    for (const [doc, c] of claims) {
      for (const p of new Set(c.paths)) {
        if (p.startsWith("..") || path.isAbsolute(p)) { wrong.push(`${doc}: ${p} (outside the repository)`); continue; }
        const re = pathPattern(p.replace(/\/$/, ""));
        if (!entries.some((e) => re.test(e))) wrong.push(`${doc}: ${p}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("every relative link between pages reaches a file, and its #anchor a heading of that page", () => {
    const wrong: string[] = [];
    for (const { doc, text } of texts.filter((t) => t.doc.endsWith(".md"))) {
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^(https?:|mailto:)/.test(target)) continue;
        const [file, anchor] = target.split("#");
        const rel = file ? path.normalize(path.join(path.dirname(doc), file)) : doc;
        const abs = path.join(ROOT, rel);
        if (rel.startsWith("..") || !fs.existsSync(abs)) { wrong.push(`${doc}: ${target} (no file ${rel})`); continue; }
        if (anchor === undefined) continue;
        if (!rel.endsWith(".md")) { wrong.push(`${doc}: ${target} (an anchor into ${rel}, not a page)`); continue; }
        if (!anchorsOf(fs.readFileSync(abs, "utf8")).has(anchor)) wrong.push(`${doc}: ${target} (no heading '#${anchor}' in ${rel})`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("the README is the front door: at most 250 lines", () => {
    const lines = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").length - 1;
    assert.ok(lines <= 250, `README.md has ${lines} lines; details belong in docs/`);
  });

  it("every docs page but the RUNBOOK, BENCHMARKS and SECURITY tables opens with a table of contents linking each of its sections", () => {
    const wrong: string[] = [];
    for (const { doc, text } of texts.filter((t) => t.doc.startsWith("docs/") && !NO_TOC.includes(t.doc))) {
      const toc = /^Contents:\n\n((?:- \[.*\]\(#.*\)\n)+)/m.exec(text);
      if (!toc) { wrong.push(`${doc}: no "Contents:" list`); continue; }
      const sections = [...anchorsOf(text.replace(/^#{3,6} .*$/gm, "").replace(/^# .*$/m, ""))];
      const linked = new Set([...toc[1].matchAll(/\]\(#([^)]+)\)/g)].map((x) => x[1]));
      for (const s of sections) if (!linked.has(s)) wrong.push(`${doc}: the contents lack #${s}`);
      if (text.indexOf(toc[0]) > text.search(/^## /m)) wrong.push(`${doc}: the contents come after a section`);
    }
    assert.deepEqual(wrong, []);
  });

  it("no stack file's comment calls something planned and not built (promotion and the rehearsal are built)", () => {
    const wrong = texts.filter((t) => STACK_FILES.includes(t.doc) && /\bplanned\b[^.]*\bnot built\b/.test(t.text)).map((t) => t.doc);
    assert.deepEqual(wrong, []);
  });

  it("every RUNBOOK row names what does it, or 'a person' and what the package offers them", () => {
    const runbook = fs.readFileSync(path.join(ROOT, "docs/RUNBOOK.md"), "utf8");
    const rows = runbook.split("\n").filter((l) => /^\| [A-Z]\d+ \|/.test(l));
    assert.ok(rows.length > 40, `${rows.length} procedure rows`);
    const wrong: string[] = [];
    for (const row of rows) {
      const cells = row.replace(/\\\|/g, "¦").split("|").map((s) => s.trim());
      const [id, doneBy] = [cells[1], cells[4]];
      if (/\bnot yet\b|not infrastructure/i.test(doneBy)) wrong.push(`${id}: "${doneBy}"`);
      // What does it is named in code or linked; "a person" comes with what the package offers them (or says it offers nothing).
      else if (!/`[^`]+`|\]\(/.test(doneBy) && !/^a person\b.*\boffers nothing\b/.test(doneBy)) wrong.push(`${id}: names no command, resource or document: "${doneBy}"`);
    }
    assert.deepEqual(wrong, []);
  });

  it("docs/DEVELOPMENT.md's invalid-config example is what `npm start` prints for it", function () {
    const readme = fs.readFileSync(path.join(ROOT, "docs/DEVELOPMENT.md"), "utf8");
    const m = /<!-- invalid-config:start -->\n([\s\S]*?)\n<!-- invalid-config:end -->/.exec(readme);
    assert.ok(m, "docs/DEVELOPMENT.md lacks the invalid-config markers");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nlinvalid-"));
    try {
      // The example's stack: prod with the two edits the README names.
      fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
      const prod = fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8");
      const edited = prod.replace(/^( {4}enabled:) true$/m, "$1 false").replace(/^( {4}retentionDays:) \d+$/m, "$1 -1");
      assert.notEqual(edited, prod);
      assert.match(readme, /prod with `backups\.enabled: false` and `backups\.retentionDays: -1`/);
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), edited);
      const r = spawnSync("npm", ["start", "-s", "--", "--stack", "prod", "--root", dir, "--out", path.join(dir, "out")], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.equal(r.stdout, "");
      assert.ok(!fs.existsSync(path.join(dir, "out/prod")), "an invalid config wrote a plan");
      assert.equal(m[1], `\`\`\`\n${r.stderr.trimEnd()}\n\`\`\``, "docs/DEVELOPMENT.md's invalid-config example differs from npm start's output");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("docs/STAGING-AND-PROMOTION.md's offline promotion example works as written, and labels the mocks' values", function () {
    const readme = fs.readFileSync(path.join(ROOT, "docs/STAGING-AND-PROMOTION.md"), "utf8");
    const m = /<!-- promote-offline:start -->\n```\n([\s\S]*?)\n```\n<!-- promote-offline:end -->/.exec(readme);
    assert.ok(m, "docs/STAGING-AND-PROMOTION.md lacks the promote-offline markers");
    // A copy of the package (tracked and new files) with this checkout's node_modules.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-promote-example-"));
    try {
      const files = spawnSync("git", ["ls-files", "-co", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" }).stdout.split("\n").filter((f) => f && fs.existsSync(path.join(ROOT, f)));
      for (const f of files) { fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true }); fs.copyFileSync(path.join(ROOT, f), path.join(dir, f)); }
      fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
      let last = { status: 0 as number | null, stdout: "", stderr: "" };
      for (const line of m[1].split("\n")) {
        const r = spawnSync("bash", ["-c", line], { cwd: dir, encoding: "utf8", timeout: 180_000 });
        last = { status: r.status, stdout: r.stdout, stderr: r.stderr };
        assert.strictEqual(r.status, 0, `${line}: ${r.stderr}`);
      }
      assert.match(last.stdout, /^promote: note: these outputs come from the offline preview's mocks/m);
      assert.match(last.stdout, /promote: wrote release \S+ into Pulumi\.prod\.yaml/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
