// Runs a Pulumi program under Pulumi's mock runtime and records every resource it registers:
// type, name, inputs (secrets as "[secret]"), parent and dependencies, as `pulumi preview`
// would see them. Shared by the offline preview (`npm start`) and the tests.
import * as pulumi from "@pulumi/pulumi";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { autoNames, AwsMocks } from "./mocks";

export const SECRET = "[secret]";
export const UNKNOWN = "[unknown]";

export interface RecordedResource {
  urn: string;
  id: string;
  type: string;
  name: string;
  custom: boolean;
  parent?: string;
  provider?: string;
  inputs: Record<string, unknown>;
  /** Every resource this one waits for: `dependsOn` and the resources its inputs come from. */
  dependsOn: string[];
  /** The `dependsOn` option alone (dependencies no input explains). */
  explicitDependsOn: string[];
  /** Per input, the resources its value comes from (how a policy follows a reference it cannot read yet). */
  propertyDependencies: Record<string, string[]>;
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  replaceOnChanges: string[];
  /** A resource the program reads and does not manage (a StackReference): `pulumi preview` shows it as "read". */
  read?: boolean;
}

export interface ProgramRun {
  stack: string;
  project: string;
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
}

export interface RunOptions {
  stack: string;
  project?: string;
  /** Full keys (`nourish-link:domain`, `aws:region`) to text values, as the CLI passes them. */
  config: Record<string, string>;
  secretKeys?: string[];
  /** The program; default: the repo's index.ts. */
  program?: () => Promise<Record<string, unknown> | void>;
  /** Where registrations are recorded; pass one to see them even when the program fails. */
  resources?: RecordedResource[];
}

/** Replaces the wire encoding of secrets, unknowns and resource references by plain values. */
export function sanitize(v: unknown): unknown {
  if (v === rpc.unknownValue) return UNKNOWN;
  if (Array.isArray(v)) return v.map(sanitize);
  if (typeof v !== "object" || v === null) return v;
  const o = v as Record<string, unknown>;
  switch (o[rpc.specialSigKey]) {
    case rpc.specialSecretSig:
      return SECRET;
    case rpc.specialOutputValueSig:
      if (o.secret) return SECRET;
      return "value" in o ? sanitize(o.value) : UNKNOWN;
    case rpc.specialResourceSig:
      return o.id ?? o.urn;
    case rpc.specialAssetSig:
    case rpc.specialArchiveSig:
      return { path: o.path, text: o.text, uri: o.uri };
  }
  const out: Record<string, unknown> = {};
  for (const [k, inner] of Object.entries(o)) out[k] = sanitize(inner);
  return out;
}

interface RegisterRequest {
  getType(): string; getName(): string; getParent(): string; getCustom(): boolean; getProvider(): string;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  getDependenciesList(): string[]; getProtect(): boolean; getRetainondelete(): boolean;
  getDeletebeforereplace(): boolean; getIgnorechangesList(): string[]; getReplaceonchangesList(): string[];
  getPropertydependenciesMap(): { forEach(cb: (deps: { getUrnsList(): string[] }, key: string) => void): void };
}
interface RegisterResponse { getUrn(): string; getId(): string }
type Callback = (err: unknown, resp?: RegisterResponse) => void;

interface ReadRequest {
  getId(): string; getType(): string; getName(): string; getParent(): string; getProvider(): string;
  getProperties(): { toJavaScript(): Record<string, unknown> } | undefined; getDependenciesList(): string[];
}

interface OutputsRequest { getUrn(): string; getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined }

/**
 * Mocks keep no parent or dependencies; wrap the mock monitor to record them as they pass, and
 * the stack's outputs with their secrecy intact (the SDK hands them back unwrapped).
 */
function recordRegistrations(resources: RecordedResource[], outputs: Map<string, Record<string, unknown>>): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: Callback): Promise<void>;
    registerResourceOutputs(req: OutputsRequest, cb: (err: unknown, resp?: unknown) => void): void;
  };
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, cb) => {
    outputs.set(req.getUrn(), sanitize(req.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>);
    registerOutputs(req, cb);
  };
  // Read resources (a StackReference to the prod stack): in the plan too, marked read.
  const readMonitor = monitor as unknown as { readResource(req: ReadRequest, cb: Callback): Promise<void> };
  const read = readMonitor.readResource.bind(monitor);
  readMonitor.readResource = (req, cb) =>
    read(req, (err, resp) => {
      if (!err && resp) {
        resources.push({
          urn: resp.getUrn(), id: req.getId(), type: req.getType(), name: req.getName(), custom: true,
          parent: req.getParent() || undefined, provider: req.getProvider() || undefined,
          inputs: sanitize(req.getProperties()?.toJavaScript() ?? {}) as Record<string, unknown>,
          dependsOn: req.getDependenciesList(), explicitDependsOn: req.getDependenciesList(), propertyDependencies: {},
          protect: false, retainOnDelete: false, deleteBeforeReplace: false, ignoreChanges: [], replaceOnChanges: [], read: true,
        });
      }
      cb(err, resp);
    });
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) =>
    register(req, (err, resp) => {
      if (!err && resp) {
        const fromInputs = new Set<string>();
        const propertyDependencies: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((deps, key) => {
          propertyDependencies[key] = deps.getUrnsList();
          deps.getUrnsList().forEach((u) => fromInputs.add(u));
        });
        const inputs = sanitize(req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
        resources.push({
          urn: resp.getUrn(),
          id: resp.getId(),
          type: req.getType(),
          name: req.getName(),
          custom: req.getCustom(),
          parent: req.getParent() || undefined,
          provider: req.getProvider() || undefined,
          // What the engine's Check adds: names the program left to Pulumi.
          inputs: req.getCustom() ? { ...inputs, ...autoNames(req.getType(), req.getName(), inputs) } : inputs,
          dependsOn: req.getDependenciesList(),
          explicitDependsOn: req.getDependenciesList().filter((u) => !fromInputs.has(u)),
          propertyDependencies,
          protect: req.getProtect(),
          retainOnDelete: req.getRetainondelete(),
          deleteBeforeReplace: req.getDeletebeforereplace(),
          ignoreChanges: req.getIgnorechangesList(),
          replaceOnChanges: req.getReplaceonchangesList(),
        });
      }
      cb(err, resp);
    });
}

function defaultProgram(): () => Promise<Record<string, unknown>> {
  return require("../../index") as () => Promise<Record<string, unknown>>;
}

/**
 * Runs the program for one stack. Rejects (with the program's own error, e.g. a ConfigError)
 * when the program fails.
 */
export async function runProgram(opts: RunOptions): Promise<ProgramRun> {
  const project = opts.project ?? "nourish-link";
  const region = opts.config["aws:region"] ?? "af-south-1";
  await pulumi.runtime.setMocks(new AwsMocks(region), project, opts.stack, false);
  pulumi.runtime.setAllConfig(opts.config, opts.secretKeys ?? []);
  const resources = opts.resources ?? [];
  const outputs = new Map<string, Record<string, unknown>>();
  recordRegistrations(resources, outputs);
  const program = opts.program ?? defaultProgram();
  // Pulumi captures a stack trace for every promise it wraps and every resource it registers,
  // for a leak report and source positions the mocks never use; formatting them (source-mapped
  // under esbuild-register) was a quarter of a preview (docs/BENCHMARKS.md). None while the
  // program runs: its errors are reported by their message.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    await pulumi.runtime.runInPulumiStack(async () => program());
  } finally {
    // Let registrations in flight land, so what a failed program registered is recorded too.
    await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs().catch(() => undefined);
    Error.stackTraceLimit = stackTraceLimit;
  }
  const stackUrn = resources.find((r) => r.type === "pulumi:pulumi:Stack")?.urn ?? "";
  return { stack: opts.stack, project, resources, outputs: outputs.get(stackUrn) ?? {} };
}
