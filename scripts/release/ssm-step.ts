// The step client: what each release step (a `local.Command`, components/release/index.ts) runs
// where `pulumi up` runs. It sends this stack's SSM document to ONE instance with the step's
// parameters, waits for the invocation to finish, prints the remote stdout as its own, and on any
// failure exits 1 with one line naming the step, the instance and the reason. AWS SDK v3 with the
// caller's own credentials (the default chain: environment, profile, SSO, CI's OIDC role).
//
// Inputs (environment, never a shell string): NL_STEP, NL_INSTANCE_ID, NL_DOCUMENT,
// NL_PARAMETERS (JSON object of document parameters), NL_REGION, NL_TIMEOUT_SECONDS; optional
// NL_POLL_SECONDS (default 5). AWS_ENDPOINT_URL_SSM (the SDK's own) aims it at a local endpoint.
import {
  GetCommandInvocationCommand, GetCommandInvocationCommandOutput, SendCommandCommand, SSMClient, waitUntilCommandExecuted,
} from "@aws-sdk/client-ssm";

// The SDK warns on stderr (once, at the first client) that versions after January 2027 will need
// node 22; the pinned version runs on node 20, and a failed step must print exactly one line.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export interface StepInput {
  step: string;
  instanceId: string;
  document: string;
  parameters: Record<string, string>;
  region: string;
  timeoutSeconds: number;
  pollSeconds?: number;
}

/** A failed step: `message` is the one line the step prints. */
export class StepFailed extends Error {}

const ONE_LINE = (s: string) => s.replace(/\s*\n\s*/g, " | ").trim();

/** The last few non-empty lines of a remote stream, as one line. */
export function lastLines(text: string | undefined, n = 3): string {
  return ONE_LINE((text ?? "").split("\n").map((l) => l.trimEnd()).filter(Boolean).slice(-n).join("\n"));
}

export function inputFromEnv(env: NodeJS.ProcessEnv): StepInput {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new StepFailed(`nourish-link: release step ${env.NL_STEP ?? "?"}: ${k} is not set (the step client runs from the Release component)`);
    return v;
  };
  let parameters: unknown;
  try {
    parameters = JSON.parse(need("NL_PARAMETERS"));
  } catch (e) {
    if (e instanceof StepFailed) throw e;
    throw new StepFailed(`nourish-link: release step ${env.NL_STEP}: NL_PARAMETERS is not JSON`);
  }
  return {
    step: need("NL_STEP"), instanceId: need("NL_INSTANCE_ID"), document: need("NL_DOCUMENT"), region: need("NL_REGION"),
    parameters: parameters as Record<string, string>,
    timeoutSeconds: Number(need("NL_TIMEOUT_SECONDS")),
    pollSeconds: env.NL_POLL_SECONDS ? Number(env.NL_POLL_SECONDS) : undefined,
  };
}

/** Runs one step; resolves to the remote stdout, or throws StepFailed with the one line to print. */
export async function runStep(input: StepInput, client = new SSMClient({ region: input.region })): Promise<string> {
  const where = `nourish-link: release step ${input.step} on ${input.instanceId}`;
  const parameters = Object.fromEntries(Object.entries(input.parameters).filter(([, v]) => v !== "").map(([k, v]) => [k, [v]]));
  let commandId: string | undefined;
  try {
    const sent = await client.send(new SendCommandCommand({
      DocumentName: input.document,
      InstanceIds: [input.instanceId],
      Parameters: parameters,
      Comment: input.step.slice(0, 100),
      TimeoutSeconds: Math.max(30, Math.min(input.timeoutSeconds, 2592000)),
    }));
    commandId = sent.Command?.CommandId;
  } catch (e) {
    const err = e as { name?: string; message?: string };
    if (err.name === "InvalidInstanceId") throw new StepFailed(`${where}: the instance is not registered with SSM (InvalidInstanceId): is its SSM agent running, with AmazonSSMManagedInstanceCore? ${ONE_LINE(err.message ?? "")}`);
    if (err.name === "InvalidParameters") throw new StepFailed(`${where}: the document refused a parameter (InvalidParameters): ${ONE_LINE(err.message ?? "")}`);
    throw new StepFailed(`${where}: SendCommand failed (${err.name ?? "error"}): ${ONE_LINE(err.message ?? String(e))}`);
  }
  if (!commandId) throw new StepFailed(`${where}: SendCommand returned no command id`);

  const poll = input.pollSeconds ?? 5;
  let timedOut = false;
  try {
    await waitUntilCommandExecuted(
      { client, maxWaitTime: input.timeoutSeconds, minDelay: poll, maxDelay: Math.max(poll, Math.min(30, poll * 4)) },
      { CommandId: commandId, InstanceId: input.instanceId },
    );
  } catch (e) {
    // A failed invocation ends the waiter too: its details come from GetCommandInvocation below.
    if ((e as { state?: string }).state === "TIMEOUT" || (e as { name?: string }).name === "TimeoutError") timedOut = true;
  }
  if (timedOut) throw new StepFailed(`${where}: timed out after ${input.timeoutSeconds}s (release.stepTimeoutSeconds; command ${commandId} may still be running: aws ssm get-command-invocation --command-id ${commandId} --instance-id ${input.instanceId})`);
  let inv: GetCommandInvocationCommandOutput;
  try {
    inv = await client.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: input.instanceId }));
  } catch (e) {
    throw new StepFailed(`${where}: cannot read command ${commandId} (${(e as Error).name}): ${ONE_LINE((e as Error).message)}`);
  }
  if (inv.Status === "Success") return inv.StandardOutputContent ?? "";
  const code = inv.ResponseCode !== undefined && inv.ResponseCode >= 0 ? `exit ${inv.ResponseCode}` : `status ${inv.Status}`;
  const stderr = lastLines(inv.StandardErrorContent) || lastLines(inv.StandardOutputContent) || ONE_LINE(inv.StatusDetails ?? "");
  const why = inv.Status === "TimedOut" ? "timed out on the host" : inv.StatusDetails === "Undeliverable" || inv.StatusDetails === "Terminated"
    ? "undeliverable (the instance is stopped, replaced or not registered with SSM)" : code;
  throw new StepFailed(`${where}: ${why}: ${stderr}`);
}

async function main(): Promise<void> {
  try {
    const input = inputFromEnv(process.env);
    process.stdout.write(await runStep(input));
  } catch (e) {
    process.stderr.write(`${e instanceof StepFailed ? e.message : `nourish-link: release step ${process.env.NL_STEP ?? "?"}: ${ONE_LINE(String(e))}`}\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) void main();
