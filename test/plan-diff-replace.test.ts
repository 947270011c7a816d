// `npm run diff` says "replace" where the engine would: a changed create-only input (from
// CloudFormation's schemas, scripts/diff/create-only.json), replaceOnChanges, a command's triggers,
// and what a replaced resource's new id carries with it. Plans of the real program, in process.
import * as assert from "assert";
import { CreateOnlyTable, generateTable, isComponent, loadTable, MAPPED, PULUMI_RULES, UNMAPPED } from "../scripts/diff/create-only-source";
import { diffPlans, PlanDiff, renderPlanDiff } from "../scripts/diff/plan";
import { matchesPattern, verdictOf } from "../scripts/diff/replace";
import { Plan, PlanResource, toPlan } from "../scripts/preview/plan";
import { committedStack, runStack, StackOverrides } from "./harness";
import { planOf } from "./variants";

async function diffOf(stack: string, change: StackOverrides): Promise<PlanDiff> {
  const base = toPlan(await committedStack(stack));
  const head = toPlan(await runStack(stack, change));
  return { stack, base: "base", head: "head", ...diffPlans(base, head), hostFiles: [] };
}

const marked = (d: PlanDiff, kind: string) => d.resources.changed.filter((r) => (r.replace?.kind ?? "update") === kind).map((r) => `${r.type} ${r.name}`).sort();

describe("npm run diff: replacements", () => {
  it("a new VPC CIDR on prod replaces the VPC, its subnets and what lives in them, the database host first", async () => {
    const d = await diffOf("prod", { set: { network: { vpcCidr: "10.41.0.0/16" } } });
    const replaced = marked(d, "replace");
    for (const r of ["aws:ec2/vpc:Vpc network-vpc", "aws:ec2/subnet:Subnet network-private-0", "aws:ec2/subnet:Subnet network-public-1", "aws:ec2/instance:Instance database-host"]) {
      assert.ok(replaced.includes(r), `${r} not replaced: ${replaced.join(", ")}`);
    }
    const text = renderPlanDiff(d);
    assert.match(text, /^ \+- aws:ec2\/vpc:Vpc\s+network-vpc\s+replace \(cidrBlock is create-only \(AWS::EC2::VPC\)\)$/m);
    assert.match(text, /^ \+- aws:ec2\/subnet:Subnet\s+network-private-0\s+replace \(/m);
    assert.match(text, new RegExp(`^ {3}\\+- ${replaced.length} to replace \\(\\d+ stateful\\)$`, "m"));
    // The loud part comes before anything else, and names the database host.
    const lines = text.split("\n");
    assert.match(lines[2], /^!!! \d+ STATEFUL RESOURCE\(S\) WILL BE REPLACED/);
    assert.ok(lines.slice(2, lines.indexOf("", 2)).some((l) => /database-host\s+\(the database host\)/.test(l)), text.slice(0, 2000));
  });

  it("a release replaces the commands that run its steps (replaceOnChanges triggers[*])", async () => {
    const d = await diffOf("prod", { set: { release: { version: "1.4.2", artifact: { key: "releases/nourish-link-1.4.2.tar.gz", sha256: "a".repeat(64) } } } });
    const commands = d.resources.changed.filter((r) => r.type === "command:local:Command");
    assert.ok(commands.length > 0);
    for (const c of commands) assert.strictEqual(c.replace?.kind, "replace", `${c.name}: ${JSON.stringify(c.replace)}`);
    const text = renderPlanDiff(d);
    assert.match(text, /^ \+- command:local:Command\s+\S+\s+replace \(triggers\[\d+\] changed, and replaceOnChanges has triggers\[\*\]\)$/m);
    assert.doesNotMatch(text, /^ ~ +command:local:Command/m);
  });

  it("the create-only table is what the installed cfn-lint says (npm run diff:create-only)", function () {
    let fresh: CreateOnlyTable;
    try { fresh = generateTable(); } catch (e) { assert.fail(`cannot regenerate scripts/diff/create-only.json: ${(e as Error).message}`); }
    assert.deepStrictEqual(loadTable(), fresh, "scripts/diff/create-only.json is stale: run npm run diff:create-only and review the change");
    assert.match(fresh.source, /^cfn-lint \d+\.\d+\.\d+, /);
    assert.deepStrictEqual(fresh.types["aws:ec2/vpc:Vpc"].createOnly.includes("cidrBlock"), true);
    assert.deepStrictEqual(fresh.types["aws:ec2/subnet:Subnet"].createOnly.includes("cidrBlock"), true);
  });

  it("every type of the prod, staging and managed-database plans is mapped, or listed as unmapped and printed as may replace", async () => {
    const table = loadTable();
    const types = new Map<string, PlanResource>();
    for (const v of ["prod", "staging", "prod-managed-db"]) for (const r of (await planOf(v) as Plan).resources) if (!types.has(r.type)) types.set(r.type, r);
    assert.ok(types.has("aws:rds/instance:Instance"), "the managed-database plan has its RDS instance");
    for (const [type, r] of types) {
      const known = type in MAPPED || type in UNMAPPED || type in PULUMI_RULES || isComponent(type);
      assert.ok(known, `${type} is neither mapped to a CloudFormation type nor listed as unmapped in scripts/diff/create-only-source.ts`);
      if (type in MAPPED) assert.ok(table.types[type], `${type} is mapped but not in create-only.json`);
      if (type in UNMAPPED) {
        const v = verdictOf(r, ["anyInput"], table);
        assert.strictEqual(v?.kind, "may-replace", type);
        const text = renderPlanDiff({ stack: "s", base: "b", head: "h", outputs: [], hostFiles: [], resources: { added: [], removed: [], unchanged: 0, changed: [{ urn: r.urn, type, name: r.name, changes: [{ path: "anyInput", before: 1, after: 2 }], replace: v }] } });
        assert.match(text, /update, may replace \(/, type);
      }
    }
  });

  it("reads replaceOnChanges patterns as Pulumi does", () => {
    assert.ok(matchesPattern("triggers[*]", "triggers[3]"));
    assert.ok(matchesPattern("triggers[*]", "triggers[0].release"));
    assert.ok(matchesPattern("tags.role", "tags.role"));
    assert.ok(matchesPattern("*", "anything.at[1]"));
    assert.ok(!matchesPattern("triggers[*]", "environment.RELEASE"));
    assert.ok(!matchesPattern("tags.role", "tags.roles"));
  });
});
