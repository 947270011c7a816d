// Which changed resources the engine would replace rather than update, offline: a changed input
// that is in the resource's `replaceOnChanges`, a command's `triggers`, any input of a random
// value, or a create-only property of its type (CloudFormation's createOnlyProperties, mapped in
// create-only.json); and, as `pulumi preview` does, a create-only input that comes from a
// resource being replaced (its new id is unknown until then). A type with no mapping prints
// "may replace". Pure over the plans and the table.
import type { PlanResource } from "../preview/plan";
import { CreateOnlyTable, isComponent, PULUMI_RULES } from "./create-only-source";

export type Verdict = { kind: "replace" | "may-replace"; why: string };

/** The top-level input a change path names: `tags.role` → tags, `triggers[0]` → triggers. */
const topInput = (p: string) => p.split(/[.[]/)[0];

/** Does a `replaceOnChanges` pattern (`triggers[*]`, `tags.*`, `*`) cover a changed path? */
export function matchesPattern(pattern: string, changedPath: string): boolean {
  if (pattern === "*") return true;
  const re = pattern.split(/(\[\*\]|\*)/).map((part) => (part === "[*]" ? "\\[\\d+\\]" : part === "*" ? "[^.[]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("");
  // A pattern names a property and everything beneath it; a changed path may also be its parent.
  return new RegExp(`^${re}(?:[.[].*)?$`).test(changedPath) || new RegExp(`^${changedPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[.[]`).test(pattern);
}

/** Why the input changes at `paths` replace resource `r` (undefined: an update in place). */
export function verdictOf(r: PlanResource, paths: string[], table: CreateOnlyTable): Verdict | undefined {
  const inputs = paths.filter((p) => !p.startsWith("[options]"));
  if (inputs.length === 0) return undefined;
  for (const pattern of r.options?.replaceOnChanges ?? []) {
    const hit = inputs.find((p) => matchesPattern(pattern, p));
    if (hit) return { kind: "replace", why: `${hit} changed, and replaceOnChanges has ${pattern}` };
  }
  if (r.type.startsWith("command:")) {
    const hit = inputs.find((p) => topInput(p) === "triggers");
    return hit ? { kind: "replace", why: `${hit} changed: a command runs again when its triggers change` } : undefined;
  }
  if (r.type.startsWith("random:")) return { kind: "replace", why: `${inputs[0]} changed: ${PULUMI_RULES[r.type] ?? "a random value is generated anew"}` };
  if (isComponent(r.type) || r.type === "pulumi:pulumi:Stack" || r.type === "pulumi:pulumi:StackReference") return undefined;
  const mapped = table.types[r.type];
  if (!mapped) return { kind: "may-replace", why: "no create-only table for this type: scripts/diff/create-only-source.ts UNMAPPED" };
  const hit = inputs.find((p) => mapped.createOnly.includes(topInput(p)));
  return hit ? { kind: "replace", why: `${topInput(hit)} is create-only (${mapped.cfn})` } : undefined;
}

/**
 * Resources replaced only because a create-only input comes from a replaced resource, found
 * until nothing more is: URN → [the input, the replaced resource it comes from].
 */
export function cascade(head: PlanResource[], replaced: Set<string>, table: CreateOnlyTable): Map<string, [string, string]> {
  const out = new Map<string, [string, string]>();
  for (let grew = true; grew;) {
    grew = false;
    for (const r of head) {
      if (replaced.has(r.urn) || out.has(r.urn)) continue;
      const createOnly = new Set([...(table.types[r.type]?.createOnly ?? []), ...(r.type.startsWith("command:") ? ["triggers"] : [])]);
      for (const [input, urns] of Object.entries(r.propertyDependencies ?? {})) {
        const from = urns.find((u) => replaced.has(u) || out.has(u));
        const rop = (r.options?.replaceOnChanges ?? []).some((p) => matchesPattern(p, input));
        if (from && (createOnly.has(input) || rop)) { out.set(r.urn, [input, from]); grew = true; break; }
      }
    }
    for (const u of out.keys()) replaced.add(u);
  }
  return out;
}

const STATEFUL = new Set(["aws:ebs/volume:Volume", "aws:s3/bucket:Bucket", "aws:rds/instance:Instance", "aws:kms/key:Key"]);

/** Why losing this resource loses data or access: protected, retained, a store, or the database host. */
export function statefulReason(r: PlanResource): string | undefined {
  const why = [
    r.options?.protect ? "protected" : "",
    r.options?.retainOnDelete ? "retained on delete" : "",
    STATEFUL.has(r.type) ? "holds data or keys" : "",
    r.type === "aws:ec2/instance:Instance" && (r.inputs.tags as Record<string, unknown> | undefined)?.role === "db" ? "the database host" : "",
  ].filter(Boolean);
  return why.length ? why.join(", ") : undefined;
}
