import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { configReference } from "../scripts/config-reference";
import { ROOT } from "../scripts/preview/stack-file";

describe("README", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");

  it("keeps the config reference (docs/CONFIGURATION.md) in step with the zod schema", () => {
    const page = fs.readFileSync(path.join(ROOT, "docs/CONFIGURATION.md"), "utf8");
    const m = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(page);
    assert.ok(m, "docs/CONFIGURATION.md lacks the config-reference markers");
    assert.strictEqual(m[1], configReference(), "docs/CONFIGURATION.md's config reference is stale: paste the output of `npm run config-reference`");
  });

  it("config reference: a fractional key is a number, and a key of an optional block is required only with the block", () => {
    const row = (key: string) => configReference().split("\n").find((l) => l.startsWith(`| \`nourish-link:${key}\` |`)) ?? "";
    assert.match(row("monitoring.p95Seconds"), /\| number 0\.05–60 \|/); // takes 0.5
    assert.match(row("monitoring.longQuerySeconds"), /\| integer 10–86400 \|/);
    assert.match(row("rehearsal.source.bucket"), /\| string \| required with `rehearsal\.source` \| required with `rehearsal\.source` \|/);
    assert.match(row("release.version"), /\| string \| required \| required \|/);
  });

  it("pins the Pulumi CLI it tells you to install to the @pulumi/pulumi the program is built with", () => {
    const cli = fs.readFileSync(path.join(ROOT, ".pulumi-version"), "utf8").trim();
    const sdk = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).dependencies["@pulumi/pulumi"];
    assert.strictEqual(cli, sdk, ".pulumi-version and package.json's @pulumi/pulumi differ");
    assert.ok(readme.includes("[.pulumi-version](.pulumi-version)") && readme.includes("PULUMI_CONFIG_PASSPHRASE"));
  });

  it("gives the two quickstart commands", () => {
    assert.ok(readme.includes("npm ci && npm start"));
    assert.ok(readme.includes("npm test"));
  });
});
