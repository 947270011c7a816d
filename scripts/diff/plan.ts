// What changed between two offline previews of a stack (out/<stack>/plan.json and hosts/), as
// `pulumi preview --diff` shows it: resources added, removed and changed (each input that differs,
// by property path), and the host files added, removed and changed. Pure over the two previews;
// secrets stay masked (the plan already holds "[secret]" for them, and a changed secret is shown
// as changed, never as its value).
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { Plan, PlanResource } from "../preview/plan";
import { CreateOnlyTable, loadTable } from "./create-only-source";
import { cascade, statefulReason, Verdict, verdictOf } from "./replace";
import { unifiedDiff } from "./text";

export interface InputChange { path: string; before?: unknown; after?: unknown }
export interface ResourceRef { urn: string; type: string; name: string }
export interface ResourceChange extends ResourceRef {
  changes: InputChange[];
  /** Replaced (or maybe replaced) rather than updated in place, and why. */
  replace?: Verdict;
  /** Why a replacement of this resource costs data or access (protected, a store, the database host). */
  stateful?: string;
}
export interface HostFileChange { path: string; status: "added" | "removed" | "changed"; diff?: string }

export interface PlanDiff {
  stack: string;
  base: string;
  head: string;
  resources: { added: ResourceRef[]; removed: ResourceRef[]; changed: ResourceChange[]; unchanged: number };
  outputs: InputChange[];
  hostFiles: HostFileChange[];
}

/** How the plan writes a secret (scripts/preview/run.ts SECRET; not imported: that loads the Pulumi SDK). */
export const SECRET = "[secret]";

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Property paths whose values differ, as `a.b[2].c`; a secret on either side is shown masked. */
export function valueChanges(before: unknown, after: unknown, at = ""): InputChange[] {
  if (before === SECRET || after === SECRET) {
    // Both masked: unchanged as far as anyone can tell here (pulumi shows [secret] the same way).
    return before === after ? [] : [{ path: at, before: before === undefined ? undefined : SECRET, after: after === undefined ? undefined : SECRET }];
  }
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => valueChanges(before[k], after[k], at ? `${at}.${k}` : k));
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    return Array.from({ length: Math.max(before.length, after.length) }, (_, i) => valueChanges(before[i], after[i], `${at}[${i}]`)).flat();
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [{ path: at, ...(before === undefined ? {} : { before }), ...(after === undefined ? {} : { after }) }];
}

const ref = (r: PlanResource): ResourceRef => ({ urn: r.urn, type: r.type, name: r.name });

export function diffPlans(base: Plan, head: Plan, table: CreateOnlyTable = loadTable()): Pick<PlanDiff, "resources" | "outputs"> {
  const before = new Map(base.resources.map((r) => [r.urn, r]));
  const after = new Map(head.resources.map((r) => [r.urn, r]));
  const added = head.resources.filter((r) => !before.has(r.urn)).map(ref);
  const removed = base.resources.filter((r) => !after.has(r.urn)).map(ref);
  const changed: ResourceChange[] = [];
  let unchanged = 0;
  for (const r of head.resources) {
    const b = before.get(r.urn);
    if (!b) continue;
    // What the engine acts on: the inputs, and the options that change how (protect, retain, …).
    const changes = [...valueChanges(b.inputs, r.inputs), ...valueChanges(b.options ?? {}, r.options ?? {}, "[options]").map((c) => ({ ...c, path: c.path.replace("[options].", "[options] ") }))];
    if (changes.length) changed.push({ ...ref(r), changes, ...replacement(r, verdictOf(r, changes.map((c) => c.path), table)) });
    else unchanged++;
  }
  // What a replacement carries with it: a create-only input whose source gets a new id.
  const replaced = new Set(changed.filter((c) => c.replace?.kind === "replace").map((c) => c.urn));
  const byUrn = new Map(head.resources.map((r) => [r.urn, r]));
  for (const [urn, [input, from]] of cascade(head.resources.filter((r) => before.has(r.urn)), replaced, table)) {
    const r = byUrn.get(urn)!;
    const verdict: Verdict = { kind: "replace", why: `${input} comes from ${byUrn.get(from)?.name ?? from}, which is replaced` };
    const existing = changed.find((c) => c.urn === urn);
    if (existing) Object.assign(existing, replacement(r, verdict));
    else { changed.push({ ...ref(r), changes: [], ...replacement(r, verdict) }); unchanged--; }
  }
  return { resources: { added, removed, changed, unchanged }, outputs: valueChanges(base.outputs ?? {}, head.outputs ?? {}) };
}

function replacement(r: PlanResource, v: Verdict | undefined): Pick<ResourceChange, "replace" | "stateful"> {
  if (!v) return {};
  const stateful = statefulReason(r);
  return { replace: v, ...(stateful ? { stateful } : {}) };
}

function filesUnder(dir: string, rel = ""): string[] {
  if (!fs.existsSync(path.join(dir, rel))) return [];
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const p = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? filesUnder(dir, p) : [p];
  }).sort();
}

/** Host files of two previews (`<out>/<stack>/hosts`), each changed text file with its unified diff. */
export function diffHostFiles(baseHosts: string, headHosts: string): HostFileChange[] {
  const a = new Set(filesUnder(baseHosts)), b = new Set(filesUnder(headHosts));
  const out: HostFileChange[] = [];
  for (const f of [...new Set([...a, ...b])].sort()) {
    if (!a.has(f)) { out.push({ path: f, status: "added" }); continue; }
    if (!b.has(f)) { out.push({ path: f, status: "removed" }); continue; }
    const x = fs.readFileSync(path.join(baseHosts, f)), y = fs.readFileSync(path.join(headHosts, f));
    if (x.equals(y)) continue;
    const binary = x.includes(0) || y.includes(0);
    out.push({ path: f, status: "changed", ...(binary ? {} : { diff: unifiedDiff(x.toString("utf8"), y.toString("utf8"), `a/${f}`, `b/${f}`) }) });
  }
  return out;
}

/** A value on one line: long or multi-line text by its size and digest (host files show the text). */
function show(v: unknown): string {
  if (v === undefined) return "(none)";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  if (typeof v === "string" && (s.length > 120 || s.includes("\n"))) return `(text, ${s.length} chars, sha256 ${createHash("sha256").update(s).digest("hex").slice(0, 12)})`;
  return s.length > 160 ? `${s.slice(0, 157)}...` : typeof v === "string" ? JSON.stringify(v) : s;
}

const changeLine = (c: InputChange) =>
  c.before === undefined ? `+ ${c.path}: ${show(c.after)}` : c.after === undefined ? `- ${c.path}: ${show(c.before)}` : `~ ${c.path}: ${show(c.before)} => ${show(c.after)}`;

/**
 * The diff as `pulumi preview --diff` lays it out: `+-` for a replacement, with why; a
 * replacement of a protected or stateful resource first, under a warning no one can miss.
 */
export function renderPlanDiff(d: PlanDiff): string {
  const out = [`Plan diff of stack '${d.stack}': ${d.base} => ${d.head} (offline previews; secrets masked)`, ""];
  const changed = d.resources.changed;
  const replaces = changed.filter((r) => r.replace?.kind === "replace");
  const risky = replaces.filter((r) => r.stateful);
  if (risky.length) {
    out.push(`!!! ${risky.length} STATEFUL RESOURCE(S) WILL BE REPLACED: the old one is deleted, with what it holds !!!`);
    for (const r of risky) out.push(`!!!  +- ${r.type}  ${r.name}  (${r.stateful}): ${r.replace!.why}`);
    out.push("");
  }
  const rows = [
    ...d.resources.added.map((r) => ["+ ", r, "create"] as const),
    ...d.resources.removed.map((r) => ["- ", r, "delete"] as const),
    ...replaces.map((r) => ["+-", r, `replace (${r.replace!.why})`] as const),
    ...changed.filter((r) => r.replace?.kind !== "replace").map((r) => ["~ ", r, r.replace ? `update, may replace (${r.replace.why})` : "update"] as const),
  ];
  const tw = Math.max(4, ...rows.map(([, r]) => r.type.length)), nw = Math.max(4, ...rows.map(([, r]) => r.name.length));
  for (const [mark, r, what] of rows) {
    out.push(` ${mark} ${r.type.padEnd(tw)}  ${r.name.padEnd(nw)}  ${what}`);
    if ("changes" in r) for (const c of r.changes) out.push(`        ${changeLine(c)}`);
  }
  if (rows.length === 0) out.push(" (no resource changes)");
  if (d.outputs.length) {
    out.push("", "Outputs:");
    for (const c of d.outputs) out.push(`   ${changeLine(c)}`);
  }
  out.push("", "Host files:");
  if (d.hostFiles.length === 0) out.push(" (no changes)");
  for (const f of d.hostFiles) out.push(` ${f.status === "added" ? "+" : f.status === "removed" ? "-" : "~"} ${f.path}`);
  for (const f of d.hostFiles.filter((x) => x.diff)) out.push("", f.diff!.trimEnd());
  const r = d.resources;
  const maybe = changed.filter((c) => c.replace?.kind === "may-replace").length;
  out.push("", "Resources:", `    + ${r.added.length} to create`, `    - ${r.removed.length} to delete`, `   +- ${replaces.length} to replace${risky.length ? ` (${risky.length} stateful)` : ""}`,
    `    ~ ${changed.length - replaces.length} to update${maybe ? ` (${maybe} may replace)` : ""}`, `      ${r.unchanged} unchanged`);
  return out.join("\n") + "\n";
}
