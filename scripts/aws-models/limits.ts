// Limits AWS documents but its API models do not carry, checked on the API input a resource
// becomes (documentedLimits) or across resources (planLimits). Each names its source.
import type { PlanResource } from "../preview/plan";

export interface Broken { path: string; message: string }

/** EC2 security group names and descriptions, and rule descriptions (CreateSecurityGroup, AuthorizeSecurityGroup*): "a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*", up to 255 characters. */
export const EC2_DESCRIPTION = /^[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]*$/;
/** CloudWatch PutMetricAlarm Period: "Valid values are 10, 20, 30, and any multiple of 60." */
export const ALARM_PERIODS = "10, 20, 30 or a multiple of 60";
/** CloudWatch PutMetricAlarm: Period × EvaluationPeriods ≤ 7 days, and ≤ 1 day when Period < 1 hour. */
export const ALARM_SPAN_SECONDS = 604800;
export const ALARM_SPAN_SHORT_SECONDS = 86400;
/** IAM quotas (characters, whitespace not counted): role trust policy, managed policy, a role's inline policies together. */
export const IAM_TRUST_CHARS = 2048;
export const IAM_MANAGED_CHARS = 6144;
export const IAM_INLINE_PER_ROLE_CHARS = 10240;
/** SSM document content: 64 KB. EC2 user data: 16 KB before base64. CloudWatch dashboard body: 1 MB. */
export const SSM_DOCUMENT_BYTES = 64 * 1024;
export const USER_DATA_BYTES = 16 * 1024;
export const DASHBOARD_BYTES = 1024 * 1024;

const bytes = (s: string) => Buffer.byteLength(s, "utf8");
/** How IAM measures a policy against its size quotas: characters, whitespace excluded. */
export const iamChars = (policy: string) => policy.replace(/\s/g, "").length;

function ec2Text(out: Broken[], path: string, value: unknown) {
  if (typeof value !== "string") return;
  const odd = [...new Set([...value].filter((c) => !EC2_DESCRIPTION.test(c)))];
  if (odd.length) out.push({ path, message: `character(s) ${odd.map((c) => JSON.stringify(c)).join(" ")} outside what EC2 accepts (a-zA-Z0-9, space, ._-:/()#,@[]+=&;{}!$*)` });
  if (value.length > 255) out.push({ path, message: `${value.length} characters, at most 255 allowed` });
}

function alarmPeriod(out: Broken[], path: string, period: unknown, evaluationPeriods: unknown) {
  if (typeof period !== "number") return;
  if (![10, 20, 30].includes(period) && period % 60 !== 0) out.push({ path, message: `period ${period} s is not ${ALARM_PERIODS}` });
  if (typeof evaluationPeriods !== "number") return;
  const span = period * evaluationPeriods;
  const max = period < 3600 ? ALARM_SPAN_SHORT_SECONDS : ALARM_SPAN_SECONDS;
  if (span > max) out.push({ path, message: `period ${period} s × ${evaluationPeriods} evaluation periods = ${span} s, more than ${max} s` });
}

type Obj = Record<string, unknown>;
const list = (v: unknown) => (Array.isArray(v) ? (v as Obj[]) : []);

export function documentedLimits(type: string, operation: string, input: Obj, inputs: Obj): Broken[] {
  const out: Broken[] = [];
  switch (operation) {
    case "CreateSecurityGroup":
      ec2Text(out, "Description", input.Description);
      ec2Text(out, "GroupName", input.GroupName);
      if (typeof input.GroupName === "string" && input.GroupName.startsWith("sg-")) out.push({ path: "GroupName", message: "may not start with sg-" });
      break;
    case "AuthorizeSecurityGroupIngress": case "AuthorizeSecurityGroupEgress":
      list(input.IpPermissions).forEach((p, i) => {
        for (const kind of ["IpRanges", "Ipv6Ranges", "UserIdGroupPairs", "PrefixListIds"]) {
          list(p[kind]).forEach((x, j) => ec2Text(out, `IpPermissions[${i}].${kind}[${j}].Description`, x.Description));
        }
      });
      break;
    case "PutMetricAlarm":
      alarmPeriod(out, "Period", input.Period, input.EvaluationPeriods);
      list(input.Metrics).forEach((q, i) => {
        alarmPeriod(out, `Metrics[${i}].Period`, q.Period, input.EvaluationPeriods);
        alarmPeriod(out, `Metrics[${i}].MetricStat.Period`, (q.MetricStat as Obj | undefined)?.Period, input.EvaluationPeriods);
      });
      break;
    case "CreateRole":
      if (typeof input.AssumeRolePolicyDocument === "string" && iamChars(input.AssumeRolePolicyDocument) > IAM_TRUST_CHARS) {
        out.push({ path: "AssumeRolePolicyDocument", message: `${iamChars(input.AssumeRolePolicyDocument)} characters without whitespace, the trust policy quota is ${IAM_TRUST_CHARS}` });
      }
      break;
    case "CreatePolicy":
      if (typeof input.PolicyDocument === "string" && iamChars(input.PolicyDocument) > IAM_MANAGED_CHARS) {
        out.push({ path: "PolicyDocument", message: `${iamChars(input.PolicyDocument)} characters without whitespace, a managed policy may have ${IAM_MANAGED_CHARS}` });
      }
      break;
    case "CreateDocument":
      if (typeof input.Content === "string" && bytes(input.Content) > SSM_DOCUMENT_BYTES) out.push({ path: "Content", message: `${bytes(input.Content)} bytes, an SSM document may have ${SSM_DOCUMENT_BYTES}` });
      break;
    case "RunInstances": {
      // The quota counts the user data before base64: decode what the plan carries as base64.
      const raw = typeof inputs.userDataBase64 === "string" ? Buffer.from(inputs.userDataBase64, "base64").length
        : typeof inputs.userData === "string" ? bytes(inputs.userData) : 0;
      if (raw > USER_DATA_BYTES) out.push({ path: "UserData", message: `${raw} bytes of user data, at most ${USER_DATA_BYTES} (16 KB) before base64` });
      break;
    }
    case "PutDashboard":
      if (typeof input.DashboardBody === "string" && bytes(input.DashboardBody) > DASHBOARD_BYTES) out.push({ path: "DashboardBody", message: `${bytes(input.DashboardBody)} bytes, a dashboard body may have ${DASHBOARD_BYTES}` });
      break;
  }
  void type;
  return out;
}

export interface PlanBroken { resource: string; type: string; field: string; member: string; message: string }

/** A role's inline policies together (PutRolePolicy, and a Role's inlinePolicies): ≤ 10 240 characters without whitespace. */
export function planLimits(resources: Pick<PlanResource, "name" | "type" | "inputs">[]): PlanBroken[] {
  const perRole = new Map<string, { chars: number; names: string[]; first: Pick<PlanResource, "name" | "type"> }>();
  const add = (role: string, policy: unknown, r: Pick<PlanResource, "name" | "type">, name: string) => {
    if (typeof policy !== "string") return;
    const e = perRole.get(role) ?? { chars: 0, names: [], first: r };
    e.chars += iamChars(policy);
    e.names.push(name);
    perRole.set(role, e);
  };
  for (const r of resources) {
    const i = r.inputs as Obj;
    if (r.type === "aws:iam/rolePolicy:RolePolicy" && typeof i.role === "string") add(i.role, i.policy, r, r.name);
    if (r.type === "aws:iam/role:Role" && typeof i.name === "string") list(i.inlinePolicies).forEach((p) => add(i.name as string, p.policy, r, r.name));
  }
  const out: PlanBroken[] = [];
  for (const [role, e] of perRole) {
    if (e.chars > IAM_INLINE_PER_ROLE_CHARS) {
      out.push({ resource: e.first.name, type: e.first.type, field: "policy", member: "PutRolePolicy.PolicyDocument",
        message: `role ${role}: its inline policies (${e.names.join(", ")}) have ${e.chars} characters without whitespace together, at most ${IAM_INLINE_PER_ROLE_CHARS}` });
    }
  }
  return out;
}
