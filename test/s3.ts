// S3 for tests: s3rver (path-style, loopback) in a child process, so tests that block on a
// synchronous `aws` or `nourishctl` call do not block the server. `tlsPort` puts nginx with a
// throwaway self-signed certificate in front of it, for pgBackRest, which speaks only HTTPS.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { timed } from "./timing";
import { freePort, requireTool, run, selfSignedCert } from "./tools";

export interface S3 {
  /** http://127.0.0.1:<port>, for `aws --endpoint-url`. */
  endpoint: string;
  port: number;
  /** HTTPS port of the nginx front, when started with `tls: true`. */
  tlsPort?: number;
  /** Environment for the real aws CLI against it (credentials s3rver accepts). */
  env: Record<string, string>;
  /** Runs `aws s3api|s3 …` against it. */
  aws(args: string[]): { status: number | null; stdout: string; stderr: string };
  /** Every PUT of an object it received so far (bucket, key, request headers in lower case), oldest first. */
  puts(): { bucket: string; key: string; headers: Record<string, string> }[];
  stop(): Promise<void>;
}

export const AWS_CLI = "/usr/bin/aws";

async function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpMatchArray> {
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), 15000);
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = pattern.exec(out);
      if (m) { clearTimeout(timer); resolve(m); }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`${what} exited (${code}): ${out}`)); });
  });
}

export function startS3(opts: { buckets: string[]; tls?: boolean }): Promise<S3> {
  return timed("s3.start", () => launchS3(opts), opts.tls ? "tls" : undefined);
}

async function launchS3(opts: { buckets: string[]; tls?: boolean }): Promise<S3> {
  assert.ok(fs.existsSync(AWS_CLI), `${AWS_CLI} is missing: apt-get install -y awscli (scripts/workstation/debian-packages.txt)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-s3-"));
  const putLog = path.join(dir, "puts.jsonl");
  // What s3rver lacks and S3 does: a PUT with If-None-Match: * of a key that exists fails with 412
  // PreconditionFailed (conditional writes). Every object PUT (not its parts) is recorded to putLog.
  // Bucket policies and Object Lock are not enforced here: those are the IAM evaluator's to prove.
  const script = `
    const fs = require("fs");
    const S3rver = require(${JSON.stringify(require.resolve("s3rver"))});
    const s3 = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: ${JSON.stringify(path.join(dir, "data"))},
      configureBuckets: ${JSON.stringify(opts.buckets.map((name) => ({ name })))} });
    s3.middleware.unshift(async (ctx, next) => {
      const m = /^\\/([^/]+)\\/(.+)$/.exec(ctx.path);
      if (ctx.method === "PUT" && m && !ctx.query.partNumber && !ctx.headers["x-amz-copy-source"]) {
        const [bucket, key] = [m[1], decodeURIComponent(m[2])];
        fs.appendFileSync(${JSON.stringify(putLog)}, JSON.stringify({ bucket, key, headers: ctx.headers }) + "\\n");
        if (ctx.headers["if-none-match"] === "*" && await s3.store.existsObject(bucket, key)) {
          ctx.status = 412; ctx.type = "application/xml";
          ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>';
          return;
        }
      }
      await next();
    });
    s3.run().then(({ port }) => console.log("listening " + port));`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  const port = Number((await waitForLine(child, /listening (\d+)/, "s3rver"))[1]);
  const endpoint = `http://127.0.0.1:${port}`;
  const env = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_DEFAULT_REGION: "us-east-1", AWS_EC2_METADATA_DISABLED: "true" };

  let nginx: ChildProcess | undefined;
  let tlsPort: number | undefined;
  if (opts.tls) {
    requireTool("nginx");
    tlsPort = await freePort();
    const { cert, key } = selfSignedCert(dir, "127.0.0.1");
    for (const d of ["logs", "tmp"]) fs.mkdirSync(path.join(dir, d));
    const conf = path.join(dir, "nginx.conf");
    fs.writeFileSync(conf, `
      pid ${dir}/nginx.pid; error_log ${dir}/logs/error.log; daemon off;
      events {}
      http {
        access_log off; client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp;
        # Stream both ways: nginx's workers cannot write temp files in this root-owned directory.
        client_max_body_size 0; proxy_request_buffering off; proxy_buffering off;
        server {
          listen 127.0.0.1:${tlsPort} ssl; ssl_certificate ${cert}; ssl_certificate_key ${key};
          location / { proxy_pass ${endpoint}; proxy_set_header Host $http_host; }
        }
      }`);
    nginx = spawn("nginx", ["-p", dir, "-c", conf, "-e", path.join(dir, "logs", "error.log")], { stdio: "ignore" });
    const deadline = Date.now() + 10000;
    while (run("curl", ["-ks", "-o", "/dev/null", `https://127.0.0.1:${tlsPort}/`]).status !== 0) {
      if (Date.now() > deadline) throw new Error("nginx TLS front for s3rver did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const stopChild = (c: ChildProcess | undefined) => new Promise<void>((resolve) => {
    if (!c || c.exitCode !== null) return resolve();
    c.once("exit", () => resolve());
    c.kill("SIGTERM");
  });
  return {
    endpoint, port, tlsPort, env,
    aws: (args) => timed("aws-cli", () => run(AWS_CLI, ["--endpoint-url", endpoint, ...args], { env: { ...process.env, ...env } }), args.slice(0, 2).join(" ")),
    puts: () => (fs.existsSync(putLog) ? fs.readFileSync(putLog, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []),
    async stop() {
      await stopChild(nginx);
      await stopChild(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
