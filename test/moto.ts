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

export function startMoto(): Promise<Moto> {
  return timed("moto.start", launchMoto);
}

async function launchMoto(): Promise<Moto> {
  const found = run("sh", ["-c", "command -v moto_server"]);
  assert.strictEqual(found.status, 0, "moto_server is not on PATH: it comes with the machine image's Python (pip install 'moto[server]')");
  const port = await freePort();
  const proc: ChildProcess = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  let up = false;
  for (let i = 0; i < 200 && !up; i++) {
    up = await listening(port);
    if (!up) await new Promise((r) => setTimeout(r, 100));
  }
  if (!up) { proc.kill(); assert.fail(`moto_server did not listen on ${port} within 20 s`); }
  const endpoint = `http://127.0.0.1:${port}`;
  const env = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_DEFAULT_REGION: "af-south-1", AWS_EC2_METADATA_DISABLED: "true" };
  return {
    endpoint, env,
    aws: (args) => timed("aws-cli", () => run(AWS_CLI, ["--endpoint-url", endpoint, "--region", "af-south-1", "--output", "json", ...args], { env: { ...process.env, ...env } }), args.slice(0, 2).join(" ")),
    stop: () => { proc.kill(); },
  };
}
