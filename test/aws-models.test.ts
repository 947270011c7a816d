// The plans of both committed stacks and the managed-database variant checked against AWS's own
// API models (botocore) and the documented limits they do not carry (scripts/aws-models/).
import * as assert from "assert";
import { checkPlan, formatReport, Report, toJsRegExp, violationsOf } from "../scripts/aws-models/check";
import { MAPPINGS, NOT_COVERED } from "../scripts/aws-models/mapping";
import { loadModel } from "../scripts/aws-models/models";
import type { Plan, PlanResource } from "../scripts/preview/plan";
import { planOf } from "./variants";

const STACKS = ["prod", "staging", "prod-managed-db"];
const models = (s: string) => loadModel(s);

function find(plan: Plan, type: string, name?: string): PlanResource {
  const r = plan.resources.find((x) => x.type === type && (name === undefined || x.name === name));
  assert.ok(r, `no ${type} ${name ?? ""} in the plan`);
  return r!;
}

/** The violations of a broken copy, as "name field: message" lines. */
function broken(plan: Plan, edit: (p: Plan) => PlanResource): { resource: PlanResource; lines: string[] } {
  const copy = JSON.parse(JSON.stringify(plan)) as Plan;
  const resource = edit(copy);
  return { resource, lines: violationsOf(checkPlan(copy, models)).map((v) => `${v.name} ${v.field} → ${v.member}: ${v.message}`) };
}

describe("the plan against AWS's API models (npm run check:aws)", () => {
  const reports = new Map<string, Report>();
  before(async () => {
    for (const s of STACKS) reports.set(s, checkPlan(await planOf(s), models));
  });

  for (const stack of STACKS) {
    it(`${stack}: no resource violates its create call's input shape or a documented limit`, () => {
      const report = reports.get(stack)!;
      assert.deepStrictEqual(violationsOf(report).map((v) => `${v.name} ${v.field} → ${v.member}: ${v.message}`), []);
      assert.ok(report.verdicts.length > 150, `only ${report.verdicts.length} resources checked`);
      assert.deepStrictEqual(report.skippedPatterns, [], "patterns JavaScript cannot compile (docs/AWS-MODELS.md says none)");
    });

    it(`${stack}: every type is either mapped to its AWS call or listed as not covered`, async () => {
      const report = reports.get(stack)!;
      const types = new Set((await planOf(stack)).resources.map((r) => r.type));
      const seen = new Set([...report.verdicts.map((v) => v.type), ...report.uncovered.map((u) => u.type)]);
      assert.deepStrictEqual([...seen].sort(), [...types].sort());
      // An AWS type nobody decided about is a gap, not a silence: map it or say why it is not covered.
      const undecided = report.uncovered.filter((u) => u.type.startsWith("aws:") && !NOT_COVERED[u.type]).map((u) => u.type);
      assert.deepStrictEqual(undecided, []);
      const text = formatReport(report);
      for (const u of report.uncovered) assert.ok(text.includes(u.type), `${u.type} not printed`);
    });
  }

  it("every mapping names an operation of its service and API members that exist", () => {
    for (const [type, m] of Object.entries(MAPPINGS)) {
      const model = loadModel(m.service);
      const input = model.operations[m.operation]?.input;
      assert.ok(input, `${type}: ${m.service} has no ${m.operation}`);
      for (const api of [...Object.values(m.members), ...Object.keys(m.fixed ?? {})]) {
        let shape = model.shapes[input!.shape];
        for (const seg of api.split(".")) {
          const [, name, list] = /^([^[]+)(\[\d*\])?$/.exec(seg)!;
          const member = shape.type === "map" ? shape.value : shape.members?.[name];
          assert.ok(member, `${type}: ${m.operation} has no member ${api}`);
          shape = model.shapes[member!.shape];
          if (list) shape = model.shapes[shape.member!.shape];
        }
      }
    }
  });

  describe("a broken copy of the prod plan: each violation names the resource and the field", () => {
    let prod: Plan;
    before(async () => { prod = await planOf("prod"); });

    it("an apostrophe in a security group's description (EC2's character set)", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:ec2/securityGroup:SecurityGroup", "network-app");
        (r.inputs as { description: string }).description = "the app's hosts";
        return r;
      });
      assert.deepStrictEqual(lines.length, 1, lines.join("\n"));
      assert.match(lines[0], /^network-app description → CreateSecurityGroup\.Description: character\(s\) "'" outside/);
    });

    it("an apostrophe in a rule's description", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "network-alb-https");
        (r.inputs as { description: string }).description = "HTTPS from the world's browsers";
        return r;
      });
      assert.deepStrictEqual(lines, [`network-alb-https description → AuthorizeSecurityGroupIngress.IpPermissions[0].IpRanges[0].Description: character(s) "'" outside what EC2 accepts (a-zA-Z0-9, space, ._-:/()#,@[]+=&;{}!$*)`]);
    });

    it("a role name longer than IAM's 64 characters", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:iam/role:Role", "app-role");
        (r.inputs as { name: string }).name = "r".repeat(65);
        return r;
      });
      assert.deepStrictEqual(lines, ["app-role name → CreateRole.RoleName: 65 characters, at most 64 allowed"]);
    });

    it("a value outside an enum", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-app-errors");
        (r.inputs as { comparisonOperator: string }).comparisonOperator = "GreaterThan";
        return r;
      });
      assert.deepStrictEqual(lines.length, 1, lines.join("\n"));
      assert.match(lines[0], /^monitoring-app-errors comparisonOperator → PutMetricAlarm\.ComparisonOperator: "GreaterThan" is not one of GreaterThanOrEqualToThreshold, /);
    });

    it("an alarm period of 45 s", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-app-errors");
        (r.inputs as { period: number }).period = 45;
        return r;
      });
      assert.deepStrictEqual(lines, ["monitoring-app-errors period → PutMetricAlarm.Period: period 45 s is not 10, 20, 30 or a multiple of 60"]);
    });

    it("an alarm looking back more than a day at a period under an hour", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-app-errors");
        Object.assign(r.inputs as object, { period: 300, evaluationPeriods: 289, datapointsToAlarm: 1 });
        return r;
      });
      assert.deepStrictEqual(lines, ["monitoring-app-errors period → PutMetricAlarm.Period: period 300 s × 289 evaluation periods = 86700 s, more than 86400 s"]);
    });

    it("more than 30 dimensions on an alarm", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-app-errors");
        (r.inputs as { dimensions: Record<string, string> }).dimensions = Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`D${i}`, "x"]));
        return r;
      });
      assert.deepStrictEqual(lines, ["monitoring-app-errors dimensions → PutMetricAlarm.Dimensions: 31 item(s), at most 30 allowed"]);
    });

    it("user data over 16 KB before base64", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:ec2/instance:Instance", "app-0");
        (r.inputs as { userDataBase64: string }).userDataBase64 = Buffer.from("#cloud-config\n" + "#".repeat(16 * 1024)).toString("base64");
        return r;
      });
      assert.deepStrictEqual(lines, ["app-0 userDataBase64 → RunInstances.UserData: 16398 bytes of user data, at most 16384 (16 KB) before base64"]);
    });

    it("a required member missing, and an SSM document name outside its pattern", () => {
      const { lines } = broken(prod, (p) => {
        const r = find(p, "aws:ssm/document:Document", "oncall-status");
        delete (r.inputs as { content?: string }).content;
        (r.inputs as { name: string }).name = "nourish link status";
        return r;
      });
      assert.deepStrictEqual(lines.sort(), [
        "oncall-status content → CreateDocument.Content: required, missing",
        'oncall-status name → CreateDocument.Name: "nourish link status" does not match the pattern ^[a-zA-Z0-9_\\-.]{3,128}$',
      ]);
    });

    it("a trust policy, a managed policy and a role's inline policies over IAM's size quotas", () => {
      const big = (n: number) => JSON.stringify({ Version: "2012-10-17", Statement: [{ Sid: "S".repeat(n), Effect: "Allow", Action: "s3:GetObject", Resource: "*" }] });
      const { lines } = broken(prod, (p) => {
        (find(p, "aws:iam/role:Role", "app-role").inputs as { assumeRolePolicy: string }).assumeRolePolicy = big(2000);
        (find(p, "aws:iam/policy:Policy", "release-operator").inputs as { policy: string }).policy = big(6100);
        const inline = p.resources.filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && (r.inputs as { role: string }).role === (find(p, "aws:iam/role:Role", "app-role").inputs as { name: string }).name);
        (inline[0].inputs as { policy: string }).policy = big(10200);
        return inline[0];
      });
      assert.strictEqual(lines.length, 3, lines.join("\n"));
      assert.match(lines[0], /^app-role assumeRolePolicy → CreateRole\.AssumeRolePolicyDocument: \d+ characters without whitespace, the trust policy quota is 2048$/);
      assert.ok(lines.some((l) => /^release-operator policy → CreatePolicy\.PolicyDocument: \d+ characters without whitespace, a managed policy may have 6144$/.test(l)), lines.join("\n"));
      assert.ok(lines.some((l) => /^\S+ policy → PutRolePolicy\.PolicyDocument: role \S+: its inline policies \(.*\) have \d+ characters without whitespace together, at most 10240$/.test(l)), lines.join("\n"));
    });

    it("an SSM document over 64 KB and a dashboard body over 1 MB", () => {
      const { lines } = broken(prod, (p) => {
        (find(p, "aws:ssm/document:Document", "oncall-status").inputs as { content: string }).content = JSON.stringify({ x: "y".repeat(70000) });
        const d = find(p, "aws:cloudwatch/dashboard:Dashboard");
        (d.inputs as { dashboardBody: string }).dashboardBody = JSON.stringify({ widgets: [], x: "y".repeat(1100000) });
        return d;
      });
      assert.deepStrictEqual(lines, [
        "oncall-status content → CreateDocument.Content: 70008 bytes, an SSM document may have 65536",
        "monitoring-dashboard dashboardBody → PutDashboard.DashboardBody: 1100021 bytes, a dashboard body may have 1048576",
      ]);
    });
  });

  describe("Java patterns from the models, in JavaScript", () => {
    it("match the whole value, with Java's POSIX and Unicode classes translated", () => {
      assert.ok(toJsRegExp("[\\w+=,.@-]+")!.test("app-role"));
      assert.ok(!toJsRegExp("[\\w+=,.@-]+")!.test("app role"), "IAM's name pattern is applied to the whole name");
      assert.ok(toJsRegExp("^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$")!.test("Name: nourish-link"));
      assert.ok(toJsRegExp("\\p{Alnum}+")!.test("abc123") && !toJsRegExp("\\p{Alnum}+")!.test("a-b"));
      assert.ok(toJsRegExp("(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)")!.test("/service-role/"));
    });

    it("translate Java's (?i): leading, the i flag; inside a group (Budgets' BudgetName), that group's letters either case", () => {
      assert.ok(toJsRegExp("(?i)abc")!.test("ABC"));
      // botocore's BudgetName: no "/action/" path, no <script> in any case, no ':' or '\\'.
      const budgetName = toJsRegExp("^(?![^:\\\\]*/action/|(?i).*<script>.*</script>.*)[^:\\\\]+$");
      assert.ok(budgetName, "BudgetName's pattern does not compile");
      assert.ok(budgetName.test("nourish-link-prod-monthly"));
      assert.ok(!budgetName.test("a<SCRIPT>x</Script>"), "(?i) scopes the rest of its group");
      assert.ok(budgetName.test("a/ACTION/b") && !budgetName.test("a/action/b"), "(?i) reaches back before it");
      assert.ok(!budgetName.test("a:b"));
      assert.strictEqual(toJsRegExp("(a(?i)[b-c])"), null, "a class in the scope is not widened by guesswork");
    });
  });
});
