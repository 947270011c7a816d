// npm run estate -- --stack S [--down]: the stack's hosts booted on this machine from their
// rendered user data (scripts/estate/estate.ts), a line per host, and --down to remove them all.
import { down, exec, readState, up, waitCloudInit } from "./estate";

const USAGE = "usage: npm run estate -- --stack <staging|prod> [--down]   (as root: it makes network namespaces and boots containers)";

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let stack = "staging";
  let remove = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack" || a === "-s") stack = argv[++i] ?? "";
    else if (a === "--down") remove = true;
    else if (a === "--help" || a === "-h") { console.log(USAGE); return; }
    else throw new Error(`unknown argument '${a}' (${USAGE})`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new Error(`--stack: '${stack}' is not a stack name (${USAGE})`);
  if (process.getuid?.() !== 0) throw new Error(`must run as root (${USAGE})`);
  if (remove) {
    const s = readState("estate");
    await down("estate");
    console.log(s ? `estate of stack ${s.stack} removed (hosts, namespaces, mounts, stand-ins)` : "no estate is up");
    return;
  }
  const state = await up({ stack, slot: "estate" });
  for (const h of state.hosts) {
    const status = await waitCloudInit(h);
    const ctl = exec(h, "nourishctl status 2>&1");
    const pid = `$(pgrep -P ${h.nspawnPid} systemd)`;
    console.log(`${h.role}  ${h.address}  cloud-init: ${status}  nourishctl status: ${ctl.status === 0 ? "ok" : `exit ${ctl.status}: ${ctl.stdout.trim().split("\n").pop()}`}  shell: nsenter -t ${pid} -a /bin/bash -l`);
  }
  console.log(`AWS stand-ins: moto ${state.motoEndpoint}, S3 ${state.s3Endpoint} (https://*.amazonaws.com on ${state.hub} for the hosts); remove with: npm run estate -- --down`);
}

main().catch((e: unknown) => {
  console.error(`estate: ${(e as Error)?.message ?? String(e)}`);
  process.exit(1);
});
