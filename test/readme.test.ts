import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { configReference } from "../scripts/config-reference";
import { ROOT } from "../scripts/preview/stack-file";

describe("README", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");

  it("keeps the config reference in step with the zod schema", () => {
    const m = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(readme);
    assert.ok(m, "README.md lacks the config-reference markers");
    assert.strictEqual(m[1], configReference(), "README config reference is stale: paste the output of `npm run config-reference`");
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
