// The plan checked against AWS's own API models (botocore): each resource whose create call is
// mapped (mapping.ts) is turned into that call's input and validated against its input shape
// (required members, string lengths, patterns, enums, integer ranges, list lengths), then against
// the documented limits the models do not carry (limits.ts). Pure: models come from a ModelSource.
import type { Plan, PlanResource } from "../preview/plan";
import { documentedLimits, planLimits } from "./limits";
import { Mapping, MAPPINGS, NOT_COVERED } from "./mapping";
import type { ModelSource, ServiceModel, Shape } from "./models";

export interface Violation {
  /** The Pulumi input (path) at fault, or the API member when no single input is. */
  field: string;
  /** The API member it becomes, `Operation.Member…`. */
  member: string;
  message: string;
}
export interface Verdict {
  name: string;
  type: string;
  operation: string;
  violations: Violation[];
  /** Inputs the provider sends in a later call, not checked. */
  later: string[];
}
export interface Uncovered { type: string; reason: string; count: number }
export interface Report {
  verdicts: Verdict[];
  uncovered: Uncovered[];
  /** Model patterns JavaScript cannot compile even after translation: those values were not pattern-checked. */
  skippedPatterns: string[];
}

/** A value the offline plan does not know (secrets are replaced by this): never validated. */
export const SECRET = "[secret]";

// ---- paths ---------------------------------------------------------------------------------

interface Found { indices: number[]; value: unknown; path: string }

/** Every value at a mapping's Pulumi path, with the list indices walked to reach it. */
function valuesAt(obj: unknown, path: string): Found[] {
  let found: Found[] = [{ indices: [], value: obj, path: "" }];
  for (const seg of path.split(".")) {
    const [, name, walk] = /^([^[{]+)(\[\]|\[\d+\]|\{\})?$/.exec(seg)!;
    const next: Found[] = [];
    for (const f of found) {
      if (!f.value || typeof f.value !== "object") continue;
      const v = (f.value as Record<string, unknown>)[name];
      if (v === undefined || v === null) continue;
      const at = f.path ? `${f.path}.${name}` : name;
      if (walk === "[]" && Array.isArray(v)) v.forEach((x, i) => next.push({ indices: [...f.indices, i], value: x, path: `${at}[${i}]` }));
      else if (walk === "{}" && typeof v === "object") Object.entries(v).forEach(([key, value], i) => next.push({ indices: [...f.indices, i], value: { key, value }, path: `${at}.${key}` }));
      else if (walk && walk !== "[]" && walk !== "{}" && Array.isArray(v)) next.push({ indices: f.indices, value: v[Number(walk.slice(1, -1))], path: `${at}${walk}` });
      else if (!walk) next.push({ indices: f.indices, value: v, path: at });
    }
    found = next.filter((f) => f.value !== undefined && f.value !== null);
  }
  return found;
}

/** Sets `value` at an API path, filling its `[]`s with `indices` in order; returns the concrete path. */
function setAt(obj: Record<string, unknown>, path: string, indices: number[], value: unknown): string {
  const queue = [...indices];
  let cur: Record<string, unknown> | unknown[] = obj;
  const parts: string[] = [];
  const segs = path.split(".");
  segs.forEach((seg, n) => {
    const [, name, idx] = /^([^[]+)(?:\[(\d*)\])?$/.exec(seg)!;
    parts.push(name);
    const last = n === segs.length - 1;
    const holder = cur as Record<string, unknown>;
    if (idx === undefined) {
      if (last) holder[name] = value;
      else cur = (holder[name] ??= {}) as Record<string, unknown>;
      return;
    }
    const i = idx === "" ? queue.shift() ?? 0 : Number(idx);
    parts[parts.length - 1] += `[${i}]`;
    const list = (holder[name] ??= []) as unknown[];
    if (last) list[i] = value;
    else cur = (list[i] ??= {}) as Record<string, unknown>;
  });
  return parts.join(".");
}

/** The API call's input a resource becomes, and which Pulumi input each API path came from. */
export function apiInput(r: Pick<PlanResource, "inputs">, mapping: Mapping): { input: Record<string, unknown>; from: Map<string, string> } {
  const input: Record<string, unknown> = {};
  const from = new Map<string, string>();
  for (const [api, value] of Object.entries(mapping.fixed ?? {})) from.set(setAt(input, api, [], value), "(set by the provider)");
  for (const [pulumiPath, api] of Object.entries(mapping.members)) {
    for (const f of valuesAt(r.inputs, pulumiPath)) {
      const wantsKey = /\.key$/.test(pulumiPath) && /\{\}/.test(pulumiPath);
      const wantsValue = /\.value$/.test(pulumiPath) && /\{\}/.test(pulumiPath);
      from.set(setAt(input, api, f.indices, f.value), wantsKey ? `${f.path.replace(/\.key$/, "")} (name)` : wantsValue ? f.path.replace(/\.value$/, "") : f.path);
    }
  }
  return { input, from };
}

// ---- patterns ------------------------------------------------------------------------------

const POSIX: Record<string, string> = {
  Alnum: "A-Za-z0-9", Alpha: "A-Za-z", Digit: "0-9", Upper: "A-Z", Lower: "a-z", XDigit: "0-9A-Fa-f",
  Punct: "!-\\/:-@\\[-`{-~", Print: " -~", Graph: "!-~", Space: " \\t\\n\\x0B\\f\\r", ASCII: "\\x00-\\x7F",
};
const compiled = new Map<string, RegExp | null>();

/**
 * A botocore pattern (a Java regex) as a JavaScript one matching the whole value, as the services
 * apply it. Translated: Java's POSIX classes (\p{Alnum}, \p{Punct}, …), \A and \Z anchors, a leading
 * (?i). Unicode classes (\p{L}) need the `u` flag, under which needless escapes (\:) are errors:
 * those are unescaped first. Returns null for a pattern JavaScript still cannot compile.
 */
export function toJsRegExp(pattern: string): RegExp | null {
  if (compiled.has(pattern)) return compiled.get(pattern)!;
  let p = pattern;
  let flags = "";
  if (p.startsWith("(?i)")) { p = p.slice(4); flags += "i"; }
  else if (p.includes("(?i)")) {
    const scoped = caseInsensitiveScope(p);
    if (scoped === null) { compiled.set(pattern, null); return null; }
    p = scoped;
  }
  p = p.replace(/\\p\{(?:Is)?(Alnum|Alpha|Digit|Upper|Lower|XDigit|Punct|Print|Graph|Space|ASCII)\}/g, (_, c: string) => `[${POSIX[c]}]`)
    .replace(/\[\[([^\]]*)\]\]/g, "[$1]")
    .replace(/\\A/g, "^").replace(/\\[Zz]/g, "$");
  if (/\\[pP]\{/.test(p)) { flags += "u"; p = p.replace(/\\([^\w\\\]\[^$.|?*+(){}\/-])/g, "$1"); }
  let re: RegExp | null;
  try { re = new RegExp(`^(?:${p})$`, flags); } catch { re = null; }
  compiled.set(pattern, re);
  return re;
}

/**
 * Java's inline (?i) after the start of a pattern (Budgets' BudgetName: `(?!…/action/|(?i).*<script>.*)`)
 * makes the rest of its group case-insensitive; JavaScript has no such flag for part of a pattern
 * (Node 22 has no (?i:…) either), so each letter in that scope becomes [xX]. Null when the scope
 * holds what this cannot widen exactly: a character class or an escape (\p{Lu}, \x41).
 */
function caseInsensitiveScope(p: string): string | null {
  const at = p.indexOf("(?i)");
  let depth = 0;
  let out = p.slice(0, at);
  for (let i = at + 4; i < p.length; i++) {
    const c = p[i];
    if (c === "\\" || c === "[") return null;
    if (c === "(") depth++;
    if (c === ")" && depth-- === 0) return out + p.slice(i);
    out += /[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
  }
  return out;
}

// ---- shapes --------------------------------------------------------------------------------

function describe(v: unknown): string {
  const s = typeof v === "string" ? JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v) : JSON.stringify(v);
  return s ?? String(v);
}

/** Violations of a value against a shape, by API path. */
export function validateShape(model: ServiceModel, shapeName: string, value: unknown, at: string, out: { path: string; message: string }[], skipped: Set<string>): void {
  const shape: Shape = model.shapes[shapeName];
  const bad = (message: string): void => { out.push({ path: at, message }); };
  if (value === SECRET) return;
  switch (shape.type) {
    case "structure": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return bad(`expected a structure (${shapeName}), got ${describe(value)}`);
      const members = shape.members ?? {};
      for (const req of shape.required ?? []) {
        if ((value as Record<string, unknown>)[req] === undefined) out.push({ path: `${at}.${req}`, message: "required, missing" });
      }
      for (const [k, v] of Object.entries(value)) {
        if (!members[k]) { out.push({ path: `${at}.${k}`, message: `not a member of ${shapeName}` }); continue; }
        validateShape(model, members[k].shape, v, `${at}.${k}`, out, skipped);
      }
      return;
    }
    case "list": {
      if (!Array.isArray(value)) return bad(`expected a list, got ${describe(value)}`);
      if (shape.min !== undefined && value.length < shape.min) bad(`${value.length} item(s), at least ${shape.min} allowed`);
      if (shape.max !== undefined && value.length > shape.max) bad(`${value.length} item(s), at most ${shape.max} allowed`);
      value.forEach((x, i) => validateShape(model, shape.member!.shape, x, `${at}[${i}]`, out, skipped));
      return;
    }
    case "map": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return bad(`expected a map, got ${describe(value)}`);
      const n = Object.keys(value).length;
      if (shape.min !== undefined && n < shape.min) bad(`${n} entries, at least ${shape.min} allowed`);
      if (shape.max !== undefined && n > shape.max) bad(`${n} entries, at most ${shape.max} allowed`);
      for (const [k, v] of Object.entries(value)) validateShape(model, shape.value!.shape, v, `${at}.${k}`, out, skipped);
      return;
    }
    case "string": {
      if (typeof value !== "string") return bad(`expected a string, got ${describe(value)}`);
      if (shape.min !== undefined && value.length < shape.min) bad(`${value.length} character(s), at least ${shape.min} allowed`);
      if (shape.max !== undefined && value.length > shape.max) bad(`${value.length} characters, at most ${shape.max} allowed`);
      if (shape.enum && !shape.enum.includes(value)) bad(`${describe(value)} is not one of ${shape.enum.join(", ")}`);
      if (shape.pattern !== undefined) {
        const re = toJsRegExp(shape.pattern);
        if (!re) skipped.add(shape.pattern);
        else if (!re.test(value)) bad(`${describe(value)} does not match the pattern ${shape.pattern}`);
      }
      return;
    }
    case "integer": case "long": case "double": case "float": {
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n !== "number" || Number.isNaN(n)) return bad(`expected a number, got ${describe(value)}`);
      if ((shape.type === "integer" || shape.type === "long") && !Number.isInteger(n)) return bad(`expected an integer, got ${describe(value)}`);
      if (shape.min !== undefined && n < shape.min) bad(`${n} is below the minimum ${shape.min}`);
      if (shape.max !== undefined && n > shape.max) bad(`${n} is above the maximum ${shape.max}`);
      return;
    }
    case "boolean":
      if (typeof value !== "boolean") bad(`expected a boolean, got ${describe(value)}`);
      return;
    case "blob":
      if (typeof value !== "string") bad(`expected text, got ${describe(value)}`);
      return;
    default:
      return; // timestamps: none in what we map
  }
}

// ---- the plan ------------------------------------------------------------------------------

/** The Pulumi input an API path (from validation) comes from: itself, its parent list, or the mapping's template. */
function fieldOf(apiPath: string, from: Map<string, string>, mapping: Mapping): string {
  for (let p = apiPath; p; p = p.replace(/(\.[^.[]+|\[\d+\])$/, "")) {
    if (from.has(p)) return from.get(p)!;
    const under = [...from.entries()].filter(([k]) => k.startsWith(`${p}.`) || k.startsWith(`${p}[`)).map(([, v]) => v.split(/[.[]/)[0]);
    if (under.length && under.every((u) => u === under[0])) return under[0];
    const template = p.replace(/\[\d+\]/g, "[]");
    const hit = Object.entries(mapping.members).find(([, api]) => api.replace(/\[\d+\]/g, "[]") === template);
    if (hit) return hit[0];
    if (!p.includes(".") && !p.includes("[")) break;
  }
  return "(API input)";
}

export function checkResource(r: PlanResource, mapping: Mapping, models: ModelSource, skipped = new Set<string>()): Verdict {
  const model = models(mapping.service);
  const op = model.operations[mapping.operation];
  if (!op?.input) throw new Error(`${mapping.service} has no operation ${mapping.operation} with an input`);
  const { input, from } = apiInput(r, mapping);
  const raw: { path: string; message: string }[] = [];
  validateShape(model, op.input.shape, input, "", raw, skipped);
  raw.push(...documentedLimits(r.type, mapping.operation, input, r.inputs as Record<string, unknown>));
  const violations = raw.map(({ path, message }) => {
    const p = path.replace(/^\./, "");
    return { field: fieldOf(p, from, mapping), member: `${mapping.operation}.${p}`, message };
  });
  return { name: r.name, type: r.type, operation: `${mapping.service} ${mapping.operation}`, violations, later: mapping.later ?? [] };
}

export function checkPlan(plan: Pick<Plan, "resources">, models: ModelSource, mappings: Record<string, Mapping> = MAPPINGS): Report {
  const verdicts: Verdict[] = [];
  const uncovered = new Map<string, Uncovered>();
  const skipped = new Set<string>();
  for (const r of plan.resources) {
    const mapping = mappings[r.type];
    if (mapping) { verdicts.push(checkResource(r, mapping, models, skipped)); continue; }
    const reason = NOT_COVERED[r.type] ?? (r.type.startsWith("aws:") ? "no mapping in scripts/aws-models/mapping.ts" : "not an AWS resource");
    const u = uncovered.get(r.type) ?? { type: r.type, reason, count: 0 };
    u.count++;
    uncovered.set(r.type, u);
  }
  // Limits over several resources (a role's inline policies together) land on the first resource named.
  for (const v of planLimits(plan.resources)) {
    const verdict = verdicts.find((x) => x.name === v.resource && x.type === v.type);
    if (verdict) verdict.violations.push({ field: v.field, member: v.member, message: v.message });
  }
  return { verdicts, uncovered: [...uncovered.values()].sort((a, b) => a.type.localeCompare(b.type)), skippedPatterns: [...skipped].sort() };
}

export function violationsOf(report: Report): (Violation & { name: string; type: string })[] {
  return report.verdicts.flatMap((v) => v.violations.map((x) => ({ name: v.name, type: v.type, ...x })));
}

/** One line per resource, then the types not covered: what `npm run check:aws` prints. */
export function formatReport(report: Report): string {
  const lines: string[] = [];
  for (const v of report.verdicts) {
    const later = v.later.length ? `  (not checked, sent later: ${v.later.join(", ")})` : "";
    if (!v.violations.length) lines.push(`ok    ${v.name} (${v.type} → ${v.operation})${later}`);
    else {
      lines.push(`FAIL  ${v.name} (${v.type} → ${v.operation})`);
      for (const x of v.violations) lines.push(`        ${x.field} → ${x.member}: ${x.message}`);
    }
  }
  lines.push("", "Not covered (no AWS create call checked):");
  for (const u of report.uncovered) lines.push(`  ${u.type} ×${u.count}: ${u.reason}`);
  if (report.skippedPatterns.length) lines.push("", "Patterns JavaScript cannot compile (values not pattern-checked):", ...report.skippedPatterns.map((p) => `  ${p}`));
  const bad = violationsOf(report).length;
  lines.push("", `${report.verdicts.length} resource(s) checked, ${bad} violation(s), ${report.uncovered.length} type(s) not covered`);
  return lines.join("\n");
}
