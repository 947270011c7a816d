// The harness every other test relies on: it must record what Pulumi would see.
import * as assert from "assert";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { gzipSync } from "zlib";
import { hostFiles } from "../scripts/preview/plan";
import { one, programError, runProgram, runStack } from "./harness";

const config = { "aws:region": "af-south-1" };

describe("test harness (Pulumi mocks)", () => {
  it("runs the program without stack traces (Pulumi takes one per promise and resource) and gives them back after", async () => {
    const before = Error.stackTraceLimit;
    let frames = -1;
    await runProgram({ stack: "unit", config, program: async () => { frames = (new Error().stack ?? "").split("\n").length - 1; } });
    assert.strictEqual(frames, 0, "the program ran with stack traces: every Pulumi promise formats one (a quarter of a preview)");
    assert.strictEqual(Error.stackTraceLimit, before);
    assert.ok((new Error().stack ?? "").split("\n").length > 1, "stack traces are off after the run");
  });

  it("shares a stack's run within a process, and each caller gets a copy of its own", async () => {
    const first = await runStack("staging");
    first.resources.length = 0;
    first.outputs.changed = true;
    const second = await runStack("staging");
    assert.ok(second.resources.length > 100, "a caller's change to its run reached the next caller");
    assert.strictEqual(second.outputs.changed, undefined);
    assert.notDeepStrictEqual((await runStack("staging", { set: { monitoring: { uptimeCheck: true } } })).resources.length, second.resources.length,
      "a run with overrides is not the stack's own run");
  });

  it("records parents, explicit and implicit dependencies, ids and secret inputs", async () => {
    const run = await runProgram({
      stack: "unit", config, program: async () => {
        const parent = new pulumi.ComponentResource("test:index:Box", "box");
        const key = new aws.kms.Key("key", { description: "k" }, { parent });
        const bucket = new aws.s3.Bucket("bucket", {}, { parent });
        new aws.ssm.Parameter("param", { type: "SecureString", keyId: key.arn, value: pulumi.secret("hunter2-hunter2") }, { parent, dependsOn: [bucket] });
        return { keyArn: key.arn, hidden: pulumi.secret("shh") };
      },
    });
    const box = one(run, "test:index:Box", "box");
    const key = one(run, "aws:kms/key:Key", "key");
    const bucket = one(run, "aws:s3/bucket:Bucket", "bucket");
    const param = one(run, "aws:ssm/parameter:Parameter", "param");
    assert.strictEqual(param.parent, box.urn);
    assert.deepStrictEqual([...param.dependsOn].sort(), [bucket.urn, key.urn].sort());
    assert.strictEqual(param.inputs.value, "[secret]");
    assert.strictEqual(param.inputs.keyId, `arn:aws:kms:af-south-1:123456789012:key/${key.id}`);
    assert.match(key.id, /^[0-9a-f]{8}-[0-9a-f]{4}-/);
    assert.strictEqual(run.outputs.hidden, "[secret]");
    assert.strictEqual(run.outputs.keyArn, `arn:aws:kms:af-south-1:123456789012:key/${key.id}`);
  });

  it("answers the data sources the program uses with realistic values", async () => {
    const run = await runProgram({
      stack: "unit", config, program: async () => {
        const azs = await aws.getAvailabilityZones({ state: "available" });
        const me = await aws.getCallerIdentity({});
        const ami = await aws.ec2.getAmi({ mostRecent: true, owners: ["136693071363"], filters: [{ name: "name", values: ["debian-12-amd64-*"] }] });
        const size = await aws.ec2.getInstanceType({ instanceType: "m6i.large" });
        return { azs: azs.names, account: me.accountId, ami: ami.id, vcpus: size.defaultVcpus, mem: size.memorySize };
      },
    });
    assert.deepStrictEqual(run.outputs.azs, ["af-south-1a", "af-south-1b", "af-south-1c"]);
    assert.strictEqual(run.outputs.account, "123456789012");
    assert.match(String(run.outputs.ami), /^ami-[0-9a-f]{17}$/);
    assert.deepStrictEqual([run.outputs.vcpus, run.outputs.mem], [2, 8192]);
  });

  it("fails loudly on a data source nobody mocked", async () => {
    const message = await programError(runProgram({
      stack: "unit", config, program: async () => { await aws.route53.getZone({ name: "nourishlink.rw" }); },
    }));
    assert.match(message, /no answer for data source aws:route53\/getZone:getZone/);
  });

  it("starts every run from a clean slate", async () => {
    const first = await runProgram({ stack: "a", config, program: async () => { new aws.s3.Bucket("only-in-a"); } });
    const second = await runProgram({ stack: "b", config, program: async () => { new aws.s3.Bucket("only-in-b"); } });
    assert.deepStrictEqual(first.resources.filter((r) => r.custom).map((r) => r.name), ["only-in-a"]);
    assert.deepStrictEqual(second.resources.filter((r) => r.custom).map((r) => r.name), ["only-in-b"]);
  });

  it("extracts the files a host receives from its cloud-init user data", async () => {
    const doc = [
      "#cloud-config",
      "write_files:",
      "  - path: /etc/nourish-link/plain.conf",
      "    content: |",
      "      plain = yes",
      "  - path: /usr/local/bin/tool",
      "    encoding: b64",
      `    content: ${Buffer.from("#!/bin/sh\necho hi\n").toString("base64")}`,
      "",
    ].join("\n");
    const run = await runProgram({
      stack: "unit", config, program: async () => {
        new aws.ec2.Instance("app-0", { ami: "ami-1", instanceType: "t3.small", userDataBase64: gzipSync(doc).toString("base64"), tags: { role: "app" } });
        new aws.ec2.Instance("app-1", { ami: "ami-1", instanceType: "t3.small", userDataBase64: gzipSync(doc).toString("base64"), tags: { role: "app" } });
        new aws.ec2.Instance("db-0", { ami: "ami-1", instanceType: "t3.small", userData: "#cloud-config\npackages: [postgresql]\n", tags: { role: "db" } });
      },
    });
    const files = hostFiles(run).map((f) => `${f.role}:${f.path}=${JSON.stringify(f.content)}`);
    assert.deepStrictEqual(files, [
      `app:user-data.yaml=${JSON.stringify(doc)}`,
      'app:/etc/nourish-link/plain.conf="plain = yes\\n"',
      'app:/usr/local/bin/tool="#!/bin/sh\\necho hi\\n"',
      'db:user-data.yaml="#cloud-config\\npackages: [postgresql]\\n"',
    ]);
  });
});
