// The step client (scripts/release/ssm-step.ts) against a local SSM endpoint: moto_server for the
// calls themselves (it records SendCommand and answers every invocation with Success, running
// nothing). moto cannot make an invocation stay in progress, fail, or refuse an instance or a
// parameter, so those cases, and only those, run against a tiny shim below that answers with
// recorded SSM responses (the JSON shapes of the SSM API reference).
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as http from "http";
import { CreateDocumentCommand, ListCommandsCommand, SSMClient } from "@aws-sdk/client-ssm";
import { renderDocument } from "../components/release/document";
import { STEP_COMMAND } from "../components/release";
import { ROOT } from "../scripts/preview/stack-file";
import { lastLines, runStep, StepFailed, StepInput } from "../scripts/release/ssm-step";
import { freePort, requireTool } from "./tools";

const CREDENTIALS = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing" };
const INSTANCE = "i-0123456789abcdef0";
const DOCUMENT = "nourish-link-staging-nourishctl";

function client(endpoint: string): SSMClient {
  return new SSMClient({ region: "af-south-1", endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
}

const input = (over: Partial<StepInput> = {}): StepInput => ({
  step: "release-fetch-app-0", instanceId: INSTANCE, document: DOCUMENT, region: "af-south-1", timeoutSeconds: 20, pollSeconds: 1,
  parameters: { verb: "release-fetch", version: "1.4.2" },
  ...over,
});

/** The step client as the Release's local.Command runs it: STEP_COMMAND, inputs in the environment. */
function stepProcess(endpoint: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const [cmd, ...args] = STEP_COMMAND.split(" ");
    const child = spawn(cmd === "node" ? process.execPath : cmd, args, {
      cwd: ROOT, env: { PATH: process.env.PATH, ...CREDENTIALS, AWS_ENDPOINT_URL_SSM: endpoint, NL_POLL_SECONDS: "1", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe("the release step client", function () {
  this.timeout(180_000);

  describe("against moto_server", () => {
    let moto: ChildProcess;
    let endpoint: string;
    before(async () => {
      requireTool("moto_server");
      const port = await freePort();
      endpoint = `http://127.0.0.1:${port}`;
      moto = spawn("moto_server", ["-p", String(port)], { stdio: "ignore" });
      for (let i = 0; i < 100; i++) {
        const up = await new Promise<boolean>((resolve) => http.get(`${endpoint}/moto-api/`, (r) => { r.resume(); resolve(true); }).on("error", () => resolve(false)));
        if (up) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await client(endpoint).send(new CreateDocumentCommand({
        Name: DOCUMENT, DocumentType: "Command", DocumentFormat: "JSON",
        Content: JSON.stringify(renderDocument({ toolingBucket: "tooling-bucket", region: "af-south-1", timeoutSeconds: 1800 })),
      }));
    });
    after(() => { moto?.kill(); });

    it("sends the document to the one instance with the step's parameters (empty ones left out), waits, and returns the remote stdout", async () => {
      const ssm = client(endpoint);
      const out = await runStep(input({ parameters: { ...input().parameters, backupKey: "" } }), ssm);
      assert.strictEqual(out, "", "moto runs nothing: its stdout is empty");
      const sent = (await ssm.send(new ListCommandsCommand({}))).Commands!;
      assert.strictEqual(sent.length, 1);
      assert.strictEqual(sent[0].DocumentName, DOCUMENT);
      assert.deepStrictEqual(sent[0].InstanceIds, [INSTANCE]);
      assert.deepStrictEqual(sent[0].Parameters, {
        verb: ["release-fetch"], version: ["1.4.2"],
      });
      assert.strictEqual(sent[0].Comment, "release-fetch-app-0");
    });

    it("runs as the Release runs it: STEP_COMMAND with its inputs in the environment, exit 0", async () => {
      const r = await stepProcess(endpoint, {
        NL_STEP: "release-backup-db", NL_INSTANCE_ID: INSTANCE, NL_DOCUMENT: DOCUMENT, NL_PARAMETERS: JSON.stringify({ verb: "backup" }), NL_REGION: "af-south-1", NL_TIMEOUT_SECONDS: "60",
      });
      assert.strictEqual(r.code, 0, r.stderr);
      assert.strictEqual(r.stderr, "");
      const last = (await client(endpoint).send(new ListCommandsCommand({}))).Commands!.at(-1)!;
      assert.deepStrictEqual(last.Parameters, { verb: ["backup"] });
    });
  });

  describe("against a shim with recorded SSM responses (what moto cannot produce)", () => {
    let server: http.Server;
    let endpoint: string;
    let calls: { target: string; body: Record<string, unknown> }[];
    /** What GetCommandInvocation answers, in turn (the last one repeats); or an error for SendCommand. */
    let invocations: Record<string, unknown>[];
    let sendError: { type: string; message: string } | undefined;
    before(async () => {
      server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
          const target = String(req.headers["x-amz-target"]).replace("AmazonSSM.", "");
          calls.push({ target, body: JSON.parse(body || "{}") });
          const reply = (status: number, json: unknown) => { res.writeHead(status, { "content-type": "application/x-amz-json-1.1" }); res.end(JSON.stringify(json)); };
          if (target === "SendCommand") {
            if (sendError) return reply(400, { __type: sendError.type, message: sendError.message });
            return reply(200, { Command: { CommandId: "11111111-2222-3333-4444-555555555555", Status: "Pending" } });
          }
          if (target === "GetCommandInvocation") {
            const n = calls.filter((c) => c.target === "GetCommandInvocation").length;
            return reply(200, { CommandId: "11111111-2222-3333-4444-555555555555", InstanceId: INSTANCE, ...invocations[Math.min(n - 1, invocations.length - 1)] });
          }
          reply(400, { __type: "InvalidAction", message: target });
        });
      });
      const port = await freePort();
      await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
      endpoint = `http://127.0.0.1:${port}`;
    });
    beforeEach(() => { calls = []; invocations = []; sendError = undefined; });
    after(() => server?.close());

    const failure = async (p: Promise<unknown>): Promise<string> => {
      try { await p; } catch (e) { assert.ok(e instanceof StepFailed, String(e)); return e.message; }
      assert.fail("the step succeeded");
    };

    it("waits while the invocation is pending or in progress, then returns its stdout", async () => {
      invocations = [{ Status: "Pending" }, { Status: "InProgress" }, { Status: "Success", ResponseCode: 0, StandardOutputContent: "nourishctl: backup: done\ndumps/daily/db_backup_20261101_020000.dump\n" }];
      const out = await runStep(input(), client(endpoint));
      assert.strictEqual(out, "nourishctl: backup: done\ndumps/daily/db_backup_20261101_020000.dump\n");
      assert.deepStrictEqual(calls.map((c) => c.target), ["SendCommand", "GetCommandInvocation", "GetCommandInvocation", "GetCommandInvocation", "GetCommandInvocation"]);
      assert.deepStrictEqual(calls[1].body, { CommandId: "11111111-2222-3333-4444-555555555555", InstanceId: INSTANCE });
    });

    it("a failed invocation: one line naming the step, the instance, the exit code and stderr's last lines; exit 1 from the process", async () => {
      invocations = [{ Status: "Failed", StatusDetails: "Failed", ResponseCode: 1, StandardOutputContent: "fetching\n",
        StandardErrorContent: "pip: noise\nline two\nnourishctl: release fetch: artifact s3://b/k has sha256 x, expected y; not installed\n" }];
      const message = await failure(runStep(input(), client(endpoint)));
      assert.strictEqual(message, `nourish-link: release step release-fetch-app-0 on ${INSTANCE}: exit 1: pip: noise | line two | nourishctl: release fetch: artifact s3://b/k has sha256 x, expected y; not installed`);
      const r = await stepProcess(endpoint, {
        NL_STEP: "release-fetch-app-0", NL_INSTANCE_ID: INSTANCE, NL_DOCUMENT: DOCUMENT, NL_PARAMETERS: JSON.stringify(input().parameters), NL_REGION: "af-south-1", NL_TIMEOUT_SECONDS: "20",
      });
      assert.strictEqual(r.code, 1);
      assert.strictEqual(r.stdout, "");
      assert.strictEqual(r.stderr, `${message}\n`, "one line");
    });

    it("times out after the configured seconds, naming the command to look at", async () => {
      invocations = [{ Status: "InProgress" }];
      const t0 = Date.now();
      const message = await failure(runStep(input({ timeoutSeconds: 3 }), client(endpoint)));
      const took = (Date.now() - t0) / 1000;
      assert.ok(took >= 2 && took < 10, `took ${took}s`);
      assert.match(message, new RegExp(`^nourish-link: release step release-fetch-app-0 on ${INSTANCE}: timed out after 3s \\(release\\.stepTimeoutSeconds; command 11111111-2222-3333-4444-555555555555 may still be running`));
      assert.strictEqual(calls.filter((c) => c.target === "SendCommand").length, 1, "sent once");
    });

    it("an instance not registered with SSM, a parameter refused, a replaced instance: each named", async () => {
      sendError = { type: "InvalidInstanceId", message: "Instances [[i-0123456789abcdef0]] not in a valid state for account 123456789012" };
      assert.match(await failure(runStep(input(), client(endpoint))),
        new RegExp(`^nourish-link: release step release-fetch-app-0 on ${INSTANCE}: the instance is not registered with SSM \\(InvalidInstanceId\\)`));
      sendError = { type: "InvalidParameters", message: "Parameter \"version\" \"1.4.2;id\" failed to satisfy constraint: pattern" };
      assert.strictEqual(await failure(runStep(input(), client(endpoint))),
        `nourish-link: release step release-fetch-app-0 on ${INSTANCE}: the document refused a parameter (InvalidParameters): Parameter "version" "1.4.2;id" failed to satisfy constraint: pattern`);
      sendError = undefined;
      invocations = [{ Status: "Failed", StatusDetails: "Undeliverable", ResponseCode: -1 }];
      assert.match(await failure(runStep(input(), client(endpoint))), /: undeliverable \(the instance is stopped, replaced or not registered with SSM\)/);
    });

    it("keeps the reason to one line", () => {
      assert.strictEqual(lastLines("a\n\nb\nc\nd\n"), "b | c | d");
      assert.strictEqual(lastLines(undefined), "");
    });
  });
});
