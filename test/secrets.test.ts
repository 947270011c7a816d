import * as assert from "assert";
import { committedStack, ofType, one, runStack } from "./harness";

describe("AppSecrets", () => {
  it("generates the database password and Django key and stores them as KMS-encrypted SecureStrings", async () => {
    const run = await committedStack("prod");
    const params = ofType(run, "aws:ssm/parameter:Parameter");
    assert.deepStrictEqual(params.map((p) => p.inputs.name).sort(), ["/nourish-link/prod/db-password", "/nourish-link/prod/django-secret-key", "/nourish-link/prod/pgbackrest-cipher-pass"]);
    // One key per audience: app and db, app only, db only (the matrix in docs/SECURITY.md).
    const keyOf = { "db-password": "secrets-key", "django-secret-key": "secrets-app-key", "pgbackrest-cipher-pass": "secrets-backup-key" } as Record<string, string>;
    for (const p of params) {
      const key = one(run, "aws:kms/key:Key", keyOf[String(p.inputs.name).split("/").pop()!]);
      assert.strictEqual(key.inputs.enableKeyRotation, true);
      assert.strictEqual(p.inputs.type, "SecureString");
      assert.strictEqual(p.inputs.keyId, `arn:aws:kms:af-south-1:123456789012:key/${key.id}`, String(p.inputs.name));
      assert.strictEqual(p.inputs.value, "[secret]");
    }
    assert.strictEqual(ofType(run, "random:index/randomPassword:RandomPassword").length, 3);
  });

  it("uses a secret from stack config instead of generating one, and keeps it secret", async () => {
    const password = "correct-horse-battery-staple-42";
    const run = await runStack("staging", { secrets: { dbPassword: password } });
    assert.deepStrictEqual(ofType(run, "random:index/randomPassword:RandomPassword").map((r) => r.name).sort(), ["secrets-django-secret-key", "secrets-pgbackrest-cipher-pass"]);
    assert.strictEqual(one(run, "aws:ssm/parameter:Parameter", "secrets-db-password").inputs.value, "[secret]");
    assert.ok(!JSON.stringify(run).includes(password), "the configured password appears in the recorded plan");
  });

  it("tags every resource through the provider's default tags", async () => {
    const run = await committedStack("staging");
    const provider = run.resources.find((r) => r.type === "pulumi:providers:aws");
    assert.deepStrictEqual(JSON.parse(String(provider?.inputs.defaultTags)), { tags: { project: "nourish-link", stack: "staging", environment: "staging" } });
    for (const r of run.resources.filter((x) => x.type.startsWith("aws:"))) assert.ok(r.provider?.startsWith(provider!.urn), `${r.urn} does not use the tagged provider`);
  });
});
