// What the offline preview writes and prints: out/<stack>/plan.json, the files each host
// receives (from its cloud-init user data), and a resource tree like `pulumi preview`.
import * as fs from "fs";
import * as path from "path";
import { gunzipSync } from "zlib";
import { parse } from "yaml";
import { ProgramRun, RecordedResource } from "./run";

/** The resource options the engine acts on (what a policy pack checks protection with). */
export interface PlanOptions {
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  replaceOnChanges: string[];
  /** The `dependsOn` option alone; the resource's `dependsOn` also counts its inputs' sources. */
  dependsOn: string[];
  /** URN of the provider resource, or null for the default provider (and for components). */
  provider: string | null;
}

export interface PlanResource extends Pick<RecordedResource, "urn" | "id" | "type" | "name" | "parent" | "inputs" | "dependsOn" | "propertyDependencies"> {
  options: PlanOptions;
}

export interface Plan {
  stack: string;
  project: string;
  resources: PlanResource[];
  outputs: Record<string, unknown>;
}

export function toPlan(run: ProgramRun): Plan {
  return {
    stack: run.stack,
    project: run.project,
    resources: run.resources.map((r) => ({
      urn: r.urn, id: r.id, type: r.type, name: r.name, parent: r.parent, inputs: r.inputs, dependsOn: r.dependsOn,
      propertyDependencies: r.propertyDependencies,
      options: {
        protect: r.protect,
        retainOnDelete: r.retainOnDelete,
        deleteBeforeReplace: r.deleteBeforeReplace,
        ignoreChanges: r.ignoreChanges,
        replaceOnChanges: r.replaceOnChanges,
        dependsOn: r.explicitDependsOn,
        // A provider reference is "<urn>::<id>".
        provider: r.provider ? r.provider.slice(0, r.provider.lastIndexOf("::")) : null,
      },
    })),
    outputs: run.outputs,
  };
}

/** A file a host receives, at its path on the host. */
export interface HostFile {
  role: string;
  path: string;
  content: string;
}

interface WriteFile { path: string; content?: string; encoding?: string }

function decode(f: WriteFile): string {
  const content = f.content ?? "";
  switch (f.encoding) {
    case undefined: case "text/plain": return content;
    case "b64": case "base64": return Buffer.from(content, "base64").toString("utf8");
    case "gz+b64": case "gzip+base64": case "gz+base64": case "gzip+b64": return gunzipSync(Buffer.from(content, "base64")).toString("utf8");
    default: throw new Error(`write_files ${f.path}: unknown encoding ${f.encoding}`);
  }
}

/** The cloud-init document of an instance or launch template, as text. */
function userDataOf(r: RecordedResource): string | undefined {
  const { userData, userDataBase64 } = r.inputs as { userData?: unknown; userDataBase64?: unknown };
  if (typeof userData === "string") return userData;
  if (typeof userDataBase64 === "string") {
    const raw = Buffer.from(userDataBase64, "base64");
    return (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString("utf8");
  }
  return undefined;
}

/** The files one instance's user data writes, by path on the host (app-0's differ: it runs the singleton jobs). */
export function instanceFiles(r: RecordedResource): Map<string, string> {
  const doc = userDataOf(r) ?? "";
  const parsed = doc.startsWith("#cloud-config") ? (parse(doc) as { write_files?: WriteFile[] } | null) : null;
  return new Map((parsed?.write_files ?? []).map((f) => [f.path, decode(f)]));
}

const HOST_TYPES = new Set(["aws:ec2/instance:Instance", "aws:ec2/launchTemplate:LaunchTemplate"]);

/**
 * Every file the hosts receive: each host role's user data and the files it writes, and the
 * S3 objects tagged with a role and host path (the nourishctl tooling cloud-init fetches).
 */
export function hostFiles(run: ProgramRun): HostFile[] {
  const byRole = new Map<string, HostFile[]>();
  const fetched: HostFile[] = [];
  for (const r of run.resources) {
    if (r.type !== "aws:s3/bucketObjectv2:BucketObjectv2") continue;
    const tags = r.inputs.tags as Record<string, string> | undefined;
    // `role` lists every host role that installs the object ("app db").
    if (tags?.role && tags.hostPath && typeof r.inputs.content === "string") {
      for (const role of tags.role.split(" ")) fetched.push({ role, path: tags.hostPath, content: r.inputs.content });
    }
  }
  for (const r of run.resources) {
    if (!HOST_TYPES.has(r.type)) continue;
    const doc = userDataOf(r);
    const role = (r.inputs.tags as Record<string, string> | undefined)?.role;
    if (doc === undefined || !role || byRole.has(role)) continue;
    const files: HostFile[] = [{ role, path: "user-data.yaml", content: doc }];
    const parsed = doc.startsWith("#cloud-config") ? (parse(doc) as { write_files?: WriteFile[] } | null) : null;
    for (const f of parsed?.write_files ?? []) files.push({ role, path: f.path, content: decode(f) });
    byRole.set(role, files);
  }
  return [...[...byRole.values()].flat(), ...fetched];
}

/**
 * Removes what an earlier preview of `stack` wrote in outDir (its plan.json and hosts/), and
 * nothing else: a directory that holds anything more, or a plan of another stack, is refused
 * untouched (`--out ~` must not cost anyone their ~/prod). Run before the program, so that a
 * preview that fails leaves no stale plan behind.
 */
export function clearPreviousOut(outDir: string, stack: string): void {
  if (!fs.existsSync(outDir)) return;
  const entries = fs.readdirSync(outDir);
  if (entries.length === 0) return;
  let planStack: unknown;
  try {
    planStack = (JSON.parse(fs.readFileSync(path.join(outDir, "plan.json"), "utf8")) as { stack?: unknown }).stack;
  } catch { /* no plan of ours */ }
  const foreign = entries.filter((e) => e !== "plan.json" && e !== "outputs.json" && e !== "hosts");
  if (foreign.length > 0 || planStack !== stack) {
    const what = foreign.length > 0 ? `it holds ${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}` : "it holds no plan.json of this stack";
    throw new Error(`--out: ${outDir} is not an earlier preview of '${stack}' (${what}); nothing was touched: choose another --out`);
  }
  fs.rmSync(path.join(outDir, "hosts"), { recursive: true, force: true });
  fs.rmSync(path.join(outDir, "plan.json"), { force: true });
  fs.rmSync(path.join(outDir, "outputs.json"), { force: true });
}

export function writeOut(outDir: string, run: ProgramRun): { planFile: string; files: string[] } {
  clearPreviousOut(outDir, run.stack);
  fs.mkdirSync(path.join(outDir, "hosts"), { recursive: true });
  const planFile = path.join(outDir, "plan.json");
  fs.writeFileSync(planFile, JSON.stringify(toPlan(run), null, 2) + "\n");
  // The stack outputs as `pulumi stack output --json` prints them (the mocks' values): what
  // `npm run promote -- --staging-outputs` reads.
  fs.writeFileSync(path.join(outDir, "outputs.json"), JSON.stringify(run.outputs, null, 2) + "\n");
  const files: string[] = [];
  for (const f of hostFiles(run)) {
    const target = path.join(outDir, "hosts", f.role, f.path.replace(/^\/+/, ""));
    if (!target.startsWith(path.join(outDir, "hosts", f.role) + path.sep)) throw new Error(`host file escapes its folder: ${f.path}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, f.content);
    files.push(target);
  }
  return { planFile, files };
}

/** The type as `pulumi preview` shows it: `aws:ec2/vpc:Vpc` → `aws:ec2:Vpc`. */
export function displayType(type: string): string {
  const m = /^([^:]+):([^:/]+)\/([^:]+):([^:]+)$/.exec(type);
  return m && m[3].toLowerCase() === m[4].toLowerCase() ? `${m[1]}:${m[2]}:${m[4]}` : type;
}

/** What the preview prints fits this many columns. */
export const WIDTH = 100;

/** `s` cut in the middle to `n` characters ("…" where it was cut). */
const fit = (s: string, n: number) => ([...s].length <= n ? s : `${s.slice(0, Math.ceil((n - 1) / 2))}…${s.slice(s.length - Math.floor((n - 1) / 2))}`);

/** A value of the Outputs section on one line. */
function outputValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(outputValue).join(", ")}]`;
  if (v && typeof v === "object") return `{ ${Object.entries(v).map(([k, x]) => `${k}: ${outputValue(x)}`).join(", ")} }`;
  return String(v);
}

/**
 * The Outputs section, as `pulumi preview` ends: first what a release manager looks for (the
 * release each stack deploys; on staging, the prod backup its rehearsal restores), then every
 * other output, each on one line.
 */
export function renderOutputs(outputs: Record<string, unknown>): string[] {
  const out = ["Outputs:"];
  const release = outputs.releaseArtifact as Record<string, unknown> | undefined;
  if (outputs.releaseVersion !== undefined) {
    const what = release?.kind === "s3" ? `s3 ${release.key}, sha256 ${String(release.sha256).slice(0, 12)}…` : release?.kind === "git" ? `git ${release.url} ${release.tag ?? ""} ${String(release.commit).slice(0, 12)}`.replace(/\s+/g, " ") : "";
    out.push(fit(`    release deployed : ${outputs.releaseVersion}${what ? ` (${what})` : ""}`, WIDTH));
  }
  const backup = outputs.rehearsalBackup as { key?: string; sha256?: string; time?: string } | undefined;
  if (backup?.key) {
    out.push(fit(`    rehearsal restores: prod's ${backup.key}`, WIDTH));
    out.push(fit(`                        taken ${backup.time}, sha256 ${String(backup.sha256).slice(0, 12)}…, after the release`, WIDTH));
    out.push("                        (offline: the mocks' backup; pulumi preview shows prod's latest)");
  }
  const keys = Object.keys(outputs).sort();
  const kw = Math.min(28, Math.max(0, ...keys.map((k) => k.length)));
  // A value that does not fit on its line is laid out over several, as `pulumi preview` does.
  const put = (indent: string, label: string, v: unknown) => {
    const one = `${indent}${label}${outputValue(v)}`;
    if ([...one].length <= WIDTH || v === null || typeof v !== "object") { out.push(fit(one, WIDTH)); return; }
    const entries: [string, unknown][] = Array.isArray(v) ? v.map((x) => ["- ", x]) : Object.entries(v).map(([k, x]) => [`${k}: `, x]);
    out.push(`${indent}${label}${Array.isArray(v) ? "[" : "{"}`);
    for (const [l, x] of entries) put(`${indent}    `, l, x);
    out.push(`${indent}${Array.isArray(v) ? "]" : "}"}`);
  };
  for (const k of keys) put("    ", `${k.padEnd(kw)}: `, outputs[k]);
  return out;
}

/** The alarms: metric, threshold and action (`npm start -- --details`). */
export function renderAlarms(run: ProgramRun): string[] {
  const alarms = run.resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm");
  const topics = new Map(run.resources.filter((r) => r.type === "aws:sns/topic:Topic").map((t) => [t.id, t.name]));
  const OPS: Record<string, string> = { GreaterThanThreshold: ">", GreaterThanOrEqualToThreshold: ">=", LessThanThreshold: "<", LessThanOrEqualToThreshold: "<=" };
  const out = [`Alarms (${alarms.length}):`];
  for (const a of alarms) {
    const i = a.inputs as Record<string, unknown>;
    const queries = i.metricQueries as { metric?: { metricName?: string } }[] | undefined;
    const metric = i.metricName ? `${i.namespace}/${i.metricName}` : `expression of ${(queries ?? []).map((q) => q.metric?.metricName).filter(Boolean).join(", ") || "metrics"}`;
    const actions = (i.alarmActions as string[] | undefined ?? []).map((arn) => topics.get(arn) ?? topics.get(String(arn).split(":").pop() ?? "") ?? arn);
    out.push(fit(`    ${a.name}`, WIDTH));
    out.push(fit(`        ${metric} ${OPS[String(i.comparisonOperator)] ?? i.comparisonOperator} ${i.threshold ?? ""} for ${i.evaluationPeriods ?? 1}×${i.period ?? "?"}s → ${actions.join(", ") || "no action"}`, WIDTH));
  }
  return out;
}

/** The resource tree and a count by type, laid out like `pulumi preview`, in WIDTH columns. */
export function renderTree(run: ProgramRun, opts: { details?: boolean } = {}): string {
  const children = new Map<string | undefined, RecordedResource[]>();
  for (const r of run.resources) {
    const key = r.parent && run.resources.some((p) => p.urn === r.parent) ? r.parent : undefined;
    children.set(key, [...(children.get(key) ?? []), r]);
  }
  const rows: [string, string, string][] = [];
  const walk = (parent: string | undefined, prefix: string) => {
    const kids = children.get(parent) ?? [];
    kids.forEach((r, i) => {
      const last = i === kids.length - 1;
      const branch = parent === undefined ? "" : last ? "└─ " : "├─ ";
      rows.push([`${prefix}${branch}${displayType(r.type)}`, r.name, r.read ? "read" : "create"]);
      walk(r.urn, parent === undefined ? "" : prefix + (last ? "   " : "│  "));
    });
  };
  walk(undefined, "");
  const typeWidth = Math.max(4, ...rows.map(([t]) => [...t].length));
  // The name gets what is left of WIDTH; a longer one is cut in the middle.
  const nameWidth = Math.min(Math.max(4, ...rows.map(([, n]) => n.length)), WIDTH - 4 - typeWidth - 2 - 2 - 6);
  const line = (mark: string, t: string, n: string, p: string) => ` ${mark}  ${t.padEnd(typeWidth + (t.length - [...t].length))}  ${fit(n, nameWidth).padEnd(nameWidth)}  ${p}`.trimEnd();
  const out = [line(" ", "Type", "Name", "Plan"), ...rows.map(([t, n, p]) => line(p === "read" ? ">" : "+", t, n, p))];

  const counts = new Map<string, number>();
  for (const r of run.resources) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
  out.push("", ...renderOutputs(run.outputs));
  if (opts.details) out.push("", ...renderAlarms(run));
  const reads = run.resources.filter((r) => r.read).length;
  out.push("", "Resources:", `    + ${run.resources.length - reads} to create`, ...(reads ? [`    > ${reads} to read`] : []), "", "By type:");
  for (const [t, n] of [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) out.push(`    ${String(n).padStart(4)}  ${t}`);
  return out.join("\n");
}
