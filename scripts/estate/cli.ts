// npm run estate -- --stack S [--down | --status] [--slot estate|test]: the stack's hosts booted on
// this machine from their rendered user data (scripts/estate/estate.ts), a line per host, --status
// to print those lines again and --down to remove them all. test/boot.test.ts runs --status and
// --down against its own slot (test), so what this prints is what it checks.
import { down, EstateState, exec, readState, SLOTS, up, waitCloudInit } from "./estate";

const USAGE = "usage: npm run estate -- --stack <staging|prod> [--down | --status] [--slot estate|test]   (as root: it makes network namespaces and boots containers; --slot test is the boot test's)";

/** One line per host: its address, cloud-init's status, `nourishctl status`, and how to get a shell in it. */
async function printHosts(state: EstateState): Promise<void> {
  for (const h of state.hosts) {
    const status = await waitCloudInit(h);
    const ctl = exec(h, "nourishctl status 2>&1");
    console.log(`${h.role}  ${h.address}  cloud-init: ${status}  nourishctl status: ${ctl.status === 0 ? "ok" : `exit ${ctl.status}: ${ctl.stdout.trim().split("\n").pop()}`}  shell: nsenter -t $(pgrep -P ${h.nspawnPid} systemd) -a /bin/bash -l`);
  }
  const slot = state.slot === "estate" ? "" : ` --slot ${state.slot}`;
  console.log(`AWS stand-ins: moto ${state.motoEndpoint}, S3 ${state.s3Endpoint} (https://*.amazonaws.com on ${state.hub} for the hosts); remove with: npm run estate -- --down${slot}`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let stack = "staging";
  let slot = "estate";
  let action: "up" | "down" | "status" = "up";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack" || a === "-s") stack = argv[++i] ?? "";
    else if (a === "--slot") slot = argv[++i] ?? "";
    else if (a === "--down") action = "down";
    else if (a === "--status") action = "status";
    else if (a === "--help" || a === "-h") { console.log(USAGE); return; }
    else throw new Error(`unknown argument '${a}' (${USAGE})`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new Error(`--stack: '${stack}' is not a stack name (${USAGE})`);
  if (!(slot in SLOTS)) throw new Error(`--slot: '${slot}' is not one of ${Object.keys(SLOTS).join(", ")} (${USAGE})`);
  if (process.getuid?.() !== 0) throw new Error(`must run as root (${USAGE})`);
  if (action === "down") {
    const s = readState(slot);
    await down(slot);
    console.log(s ? `estate of stack ${s.stack} removed (hosts, namespaces, mounts, stand-ins)` : "no estate is up");
    return;
  }
  if (action === "status") {
    const s = readState(slot);
    if (!s) throw new Error(`no estate is up in slot ${slot} (start one: npm run estate -- --stack ${stack})`);
    await printHosts(s);
    return;
  }
  await printHosts(await up({ stack, slot: slot as keyof typeof SLOTS }));
}

main().catch((e: unknown) => {
  console.error(`estate: ${(e as Error)?.message ?? String(e)}`);
  process.exit(1);
});
