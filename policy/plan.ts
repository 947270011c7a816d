// Runs the policies against an offline plan (out/<stack>/plan.json): each resource is handed to
// validateResource, and all of them to validateStack, shaped as @pulumi/policy hands them over
// during `pulumi preview --policy-pack policy` (props = inputs, opts, provider, the resources
// each input comes from). Used by the tests and `npm run policy`.
import type { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import type { Plan } from "../scripts/preview/plan";
import { policies as allPolicies } from "./policies";

export interface Violation {
  policy: string;
  urn?: string;
  message: string;
}

function notApplicable(reason?: string): never {
  throw Object.assign(new Error(reason ?? "not applicable"), { notApplicable: true });
}

/** The plan's resources as @pulumi/policy's PolicyResource (plus retainOnDelete, which only the plan knows). */
export function policyResources(plan: Plan): PolicyResource[] {
  const byUrn = new Map<string, PolicyResource>();
  const out: PolicyResource[] = plan.resources.map((r) => {
    const res = {
      type: r.type, props: r.inputs, urn: r.urn, name: r.name,
      opts: {
        protect: r.options.protect, ignoreChanges: r.options.ignoreChanges, deleteBeforeReplace: r.options.deleteBeforeReplace,
        aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [], parent: r.parent,
        retainOnDelete: r.options.retainOnDelete,
      },
      dependencies: [] as PolicyResource[],
      propertyDependencies: {} as Record<string, PolicyResource[]>,
      parent: undefined as PolicyResource | undefined,
      provider: undefined as { type: string; props: Record<string, unknown>; urn: string; name: string } | undefined,
      isType: () => { throw new Error("isType is not available offline: compare args.type"); },
      asType: () => { throw new Error("asType is not available offline: read args.props"); },
    };
    byUrn.set(r.urn, res as unknown as PolicyResource);
    return res as unknown as PolicyResource;
  });
  plan.resources.forEach((r, i) => {
    const res = out[i] as unknown as { dependencies: PolicyResource[]; propertyDependencies: Record<string, PolicyResource[]>; parent?: PolicyResource; provider?: unknown };
    const find = (u: string) => byUrn.get(u);
    res.dependencies = r.dependsOn.map(find).filter((x): x is PolicyResource => x !== undefined);
    for (const [k, us] of Object.entries(r.propertyDependencies ?? {})) res.propertyDependencies[k] = us.map(find).filter((x): x is PolicyResource => x !== undefined);
    res.parent = r.parent ? find(r.parent) : undefined;
    const p = r.options.provider ? find(r.options.provider) : undefined;
    res.provider = p ? { type: p.type, props: p.props, urn: p.urn, name: p.name } : undefined;
  });
  return out;
}

/** Every violation of `policies` (default: the pack's) in `plan`. */
export async function checkPlan(plan: Plan, policies: (ResourceValidationPolicy | StackValidationPolicy)[] = allPolicies): Promise<Violation[]> {
  const resources = policyResources(plan);
  const violations: Violation[] = [];
  for (const policy of policies) {
    const report = (urn?: string) => (message: string, u?: string) => violations.push({ policy: policy.name, urn: u ?? urn, message });
    const base = { getConfig: <T>() => ({}) as T, notApplicable, stackTags: new Map<string, string>() };
    try {
      if ("validateResource" in policy && policy.validateResource) {
        const validators = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
        for (const r of resources) {
          const args = { ...base, type: r.type, props: r.props, urn: r.urn, name: r.name, opts: r.opts, provider: r.provider } as unknown as ResourceValidationArgs;
          for (const v of validators) await v(args, report(r.urn));
        }
      }
      if ("validateStack" in policy && policy.validateStack) await policy.validateStack({ ...base, resources }, report());
    } catch (e) {
      if (!(e as { notApplicable?: boolean }).notApplicable) throw e;
    }
  }
  return violations;
}

export function formatViolations(vs: Violation[]): string {
  return vs.map((v) => `[${v.policy}] ${v.message}${v.urn ? ` (${v.urn.split("::").pop()})` : ""}`).join("\n");
}
