// moto_server on loopback for the AWS APIs tests call (CloudWatch here), driven by the real aws CLI.
// moto comes with the machine image's Python; a missing one fails the test that needs it.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as net from "net";
import { AWS_CLI } from "./s3";
import { timed } from "./timing";
import { freePort, run } from "./tools";

export interface Moto {
  endpoint: string;
  /** Credentials and region the CLI (and nourishctl under test) use against it. */
  env: Record<string, string>;
  aws(args: string[]): { status: number | null; stdout: string; stderr: string };
  stop(): void;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

/**
 * A moto_server of its own, or, in a run of the suite, a fresh account on the run's one moto_server
 * (test/fixtures.ts starts it and names it in NL_MOTO_ENDPOINT): every caller sees only what it
 * made, as with a server of its own, without a Python start-up per file.
 */
export function startMoto(opts: {
  /**
   * Moto's default account (123456789012) instead of a new one, for a test whose tools reach moto
   * with other credentials (nourishctl's one set, which s3rver checks): keep what it makes unique.
   */
  defaultAccount?: boolean;
} = {}): Promise<Moto> {
  const shared = process.env.NL_MOTO_ENDPOINT;
  if (!shared) return timed("moto.start", launchMoto);
  return timed("moto.account", () => (opts.defaultAccount ? defaultAccountOn(shared) : accountOn(shared)));
}

const DEFAULT_ENV = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_DEFAULT_REGION: "af-south-1", AWS_EC2_METADATA_DISABLED: "true" };

function motoAt(endpoint: string, env: Record<string, string>, stop: () => void): Moto {
  return {
    endpoint, env, stop,
    aws: (args) => timed("aws-cli", () => run(AWS_CLI, ["--endpoint-url", endpoint, "--region", "af-south-1", "--output", "json", ...args], { env: { ...process.env, ...env } }), args.slice(0, 2).join(" ")),
  };
}

async function defaultAccountOn(endpoint: string): Promise<Moto> {
  if (!(await waitListening(Number(new URL(endpoint).port)))) assert.fail(`the run's moto_server (${endpoint}) did not listen within 30 s`);
  // The server is the run's: test/fixtures.ts stops it.
  return motoAt(endpoint, DEFAULT_ENV, () => undefined);
}

async function waitListening(port: number, proc?: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    if (await listening(port)) return true;
    if (proc && proc.exitCode !== null) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Credentials of a new account (12 random digits) on the shared server: moto's STS lets a role in any account be assumed. */
async function accountOn(endpoint: string): Promise<Moto> {
  const port = Number(new URL(endpoint).port);
  if (!(await waitListening(port))) assert.fail(`the run's moto_server (${endpoint}) did not listen within 30 s`);
  const account = String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999));
  const res = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      // moto_server picks the service from the credential scope.
      authorization: "AWS4-HMAC-SHA256 Credential=testing/20260101/af-south-1/sts/aws4_request, SignedHeaders=host, Signature=0",
    },
    body: new URLSearchParams({ Action: "AssumeRole", Version: "2011-06-15", RoleArn: `arn:aws:iam::${account}:role/test`, RoleSessionName: "test" }).toString(),
  });
  const xml = await res.text();
  const field = (name: string) => new RegExp(`<${name}>([^<]+)</${name}>`).exec(xml)?.[1];
  const [id, secret, token] = [field("AccessKeyId"), field("SecretAccessKey"), field("SessionToken")];
  if (!res.ok || !id || !secret || !token) assert.fail(`moto_server refused AssumeRole (${res.status}): ${xml.slice(0, 500)}`);
  // The server is the run's: test/fixtures.ts stops it.
  return motoAt(endpoint, { ...DEFAULT_ENV, AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret, AWS_SESSION_TOKEN: token }, () => undefined);
}

async function launchMoto(): Promise<Moto> {
  const found = run("sh", ["-c", "command -v moto_server"]);
  assert.strictEqual(found.status, 0, "moto_server is not on PATH: it comes with the machine image's Python (pip install 'moto[server]')");
  const port = await freePort();
  const proc: ChildProcess = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  if (!(await waitListening(port, proc))) { proc.kill(); assert.fail(`moto_server did not listen on ${port} within 30 s`); }
  return motoAt(`http://127.0.0.1:${port}`, DEFAULT_ENV, () => { proc.kill(); });
}

/** Configuration for an AWS SDK v3 client against it: set-up through one client, not an `aws` process per call. */
export function motoClientConfig(m: Moto): { region: string; endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } } {
  return {
    region: m.env.AWS_DEFAULT_REGION, endpoint: m.endpoint,
    credentials: { accessKeyId: m.env.AWS_ACCESS_KEY_ID, secretAccessKey: m.env.AWS_SECRET_ACCESS_KEY, sessionToken: m.env.AWS_SESSION_TOKEN },
  };
}
