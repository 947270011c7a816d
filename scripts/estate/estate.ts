// A stack's hosts booted on this machine from their rendered user data: the harness behind
// `npm run estate` and test/boot.test.ts.
//
// Each host is a bare Debian 12 (rootfs.ts) booted by systemd-nspawn with systemd as PID 1, in a
// network namespace of its own, given its user-data.yaml through cloud-init's NoCloud seed. AWS is
// stood in on the "hub", an address of this machine (on loopback) that each host reaches over its
// veth: nginx with a certificate of a throwaway CA answers https://<AWS service>.<region>.amazonaws.com
// and sends S3 names to s3rver, the rest to moto_server; moto also answers the instance metadata
// (169.254.169.254 is DNAT'ed to it, through nginx, inside the host's namespace; nginx adds the one
// path moto lacks, iam/security-credentials without the slash, which pgBackRest asks for). Nothing
// outside this machine is reachable from a host except Debian's archive, through the apt cache.
//
// Seams the real user data does not carry, written into each host's overlay before it boots:
// /etc/hosts (AWS names to the hub, the database's private DNS name to its host), the CA in the
// trust store, apt's proxy, cloud-init's datasource (NoCloud) with its network config disabled (the
// namespace is configured from outside, as EC2's DHCP would), the data volume as a device node
// under /dev/disk/by-id (what EC2's udev rules name it), and a unit that mounts /etc/fstab's ext4
// lines with mount(8) early in each boot: in a container systemd-fstab-generator ignores device
// lines ("Running in a container, ignoring fstab device entry", /sys is read-only), so without it
// the `LABEL=pgdata` line `nourishctl setup` wrote would not mount the data volume after a reboot.
// The line itself is still what mounts it: the unit first makes the /dev/disk/by-label links udev
// would (no udev in a container), so libblkid resolves LABEL=pgdata as on EC2.
//
// No seam for the AWS agents: their stand-in packages (test/agent-debs.ts) are served at AWS's
// real bucket names and keys (components/hosts/agents.ts) by the same S3 stand-in, so a host
// fetches the URLs it would fetch on EC2.
import { spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { agentPackage, AgentName } from "../../components/hosts/agents";
import { buildAgentStandIns } from "../../test/agent-debs";
import { AWS_CLI } from "../../test/s3";
import { freePort } from "../../test/tools";
import { ensureRootfs, CACHE_DIR } from "./rootfs";
import { pidAlive, sh, sleep, until } from "./system";

export const STATE_ROOT = "/run/nourish-link-estate";
const ACNG_PORT = 3142;
/** Hub addresses: one per estate slot (the test and `npm run estate` may run side by side). */
export const SLOTS: Record<string, number> = { test: 1, estate: 2 };

interface PlanResource { type: string; name: string; id: string; inputs: Record<string, unknown> }
interface Plan { stack: string; resources: PlanResource[] }

export interface HostState {
  role: "app" | "db";
  name: string;
  netns: string;
  veth: string;
  address: string;
  root: string;
  lower: string;
  nspawnPid?: number;
  /** When nspawn was last started (ms since the epoch): waitCloudInit reports the boot's seconds from it. */
  bootedAt?: number;
  loop?: string;
  log: string;
}

export interface EstateState {
  slot: string;
  stack: string;
  dir: string;
  hub: string;
  region: string;
  pids: Record<string, number>;
  motoEndpoint: string;
  /** The instance metadata the hosts' 169.254.169.254 reaches: moto's, through nginx. */
  imdsEndpoint: string;
  s3Endpoint: string;
  hosts: HostState[];
}

const log = (s: string) => process.stderr.write(`estate: ${s}\n`);

/**
 * The hub addresses (one per slot) on loopback: a host reaches them through its veth (this machine
 * answers for any of its addresses). Added once and left: the apt cache listens on them.
 */
function ensureHub(): void {
  const have = sh("ip", ["-o", "addr", "show", "dev", "lo"]).stdout;
  for (const n of Object.values(SLOTS)) {
    const a = `10.213.${n}.1/32`;
    if (!have.includes(` ${a} `)) sh("ip", ["addr", "add", a, "dev", "lo"]);
  }
}

/** Debian's apt-cacher-ng on loopback and the hubs, its cache under CACHE_DIR (kept between runs). */
async function ensureAptCache(): Promise<string> {
  const dir = path.join(CACHE_DIR, "apt-cacher-ng");
  const up = () => sh("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${ACNG_PORT}/acng-report.html`], { allowFail: true }).stdout;
  if (up() === "200") return `http://127.0.0.1:${ACNG_PORT}`;
  for (const d of ["cache", "log", "run"]) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const binds = ["127.0.0.1", ...Object.values(SLOTS).map((n) => `10.213.${n}.1`)].join(" ");
  // No Remap lines: a plain caching proxy for the archive each host's sources name (deb.debian.org).
  fs.writeFileSync(path.join(dir, "acng.conf"), [
    `CacheDir: ${dir}/cache`, `LogDir: ${dir}/log`, "SupportDir: /usr/lib/apt-cacher-ng", `Port: ${ACNG_PORT}`,
    `BindAddress: ${binds}`, `PidFile: ${dir}/run/pid`, `SocketPath: ${dir}/run/socket`, "ExThreshold: 4",
    // Only Debian's archive: nothing else goes through this proxy.
    "PermitCacheControl: 0", "AllowUserPorts: 80", "ReportPage: acng-report.html", "",
  ].join("\n"));
  sh("chown", ["-R", "apt-cacher-ng:apt-cacher-ng", dir]);
  sh("runuser", ["-u", "apt-cacher-ng", "--", "/usr/sbin/apt-cacher-ng", "-c", dir, "ForeGround=0"]);
  await until("apt-cacher-ng answering", 15000, () => up() === "200", 200);
  return `http://127.0.0.1:${ACNG_PORT}`;
}

function byType(plan: Plan, type: string): PlanResource[] {
  return plan.resources.filter((r) => r.type === type);
}

/** The rendered plan and host files of `stack` (the offline preview, as `npm start` writes them). */
export function preview(stack: string, out: string): Plan {
  sh(process.execPath, ["-r", "v8-compile-cache", "-r", path.resolve(__dirname, "..", "ts-cache.js"), path.resolve(__dirname, "..", "synth.ts"), "--stack", stack, "--out", out]);
  return JSON.parse(fs.readFileSync(path.join(out, stack, "plan.json"), "utf8")) as Plan;
}

function startDetached(cmd: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): number {
  const fd = fs.openSync(logFile, "a");
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", fd, fd], env });
  child.unref();
  fs.closeSync(fd);
  return child.pid!;
}

/** A CA and a server certificate for the AWS names the hosts call (SANs), in `dir`. */
function awsCertificate(dir: string, names: string[]): void {
  const o = (args: string[]) => sh("openssl", args);
  o(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${dir}/ca.key`, "-out", `${dir}/ca.crt`, "-days", "2", "-subj", "/CN=nourish-link estate stand-in CA"]);
  o(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${dir}/aws.key`, "-out", `${dir}/aws.csr`, "-subj", "/CN=amazonaws.com"]);
  fs.writeFileSync(`${dir}/aws.ext`, `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\n`);
  o(["x509", "-req", "-in", `${dir}/aws.csr`, "-CA", `${dir}/ca.crt`, "-CAkey", `${dir}/ca.key`, "-CAcreateserial", "-out", `${dir}/aws.crt`, "-days", "2", "-extfile", `${dir}/aws.ext`]);
}

/**
 * The role credentials document EC2's metadata service serves, with the keys moto's IMDS hands out
 * (and s3rver learns), valid for a day as moto's are.
 */
function imdsCredentials(): string {
  const iso = (d: Date) => d.toISOString().replace(/\.\d+Z$/, "Z");
  return JSON.stringify({ Code: "Success", LastUpdated: iso(new Date()), Type: "AWS-HMAC", AccessKeyId: "test-key",
    SecretAccessKey: "test-secret-key", Token: "test-session-token", Expiration: iso(new Date(Date.now() + 86400_000)) });
}

export interface UpOptions {
  stack: string;
  slot: keyof typeof SLOTS;
  roles?: ("db" | "app")[];
}

/** Boots the estate's stand-ins and hosts; returns its state (also written under STATE_ROOT). */
export async function up(opts: UpOptions): Promise<EstateState> {
  const dir = path.join(STATE_ROOT, opts.slot);
  if (fs.existsSync(path.join(dir, "state.json"))) await down(opts.slot);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const hub = `10.213.${SLOTS[opts.slot]}.1`;
  const state: EstateState = { slot: opts.slot, stack: opts.stack, dir, hub, region: "", pids: {}, motoEndpoint: "", imdsEndpoint: "", s3Endpoint: "", hosts: [] };
  const save = () => fs.writeFileSync(path.join(dir, "state.json"), JSON.stringify(state, null, 2));
  save();
  try {
    ensureHub();
    const proxy = await ensureAptCache();
    const plan = preview(opts.stack, path.join(dir, "out"));
    const region = String((byType(plan, "aws:ec2/subnet:Subnet")[0]?.inputs.availabilityZone as string | undefined)?.slice(0, -1) ?? "af-south-1");
    state.region = region;
    const buckets = standInBuckets(state, plan);

    // AWS stand-ins: moto_server (every API but S3, and IMDS) and s3rver, behind one TLS nginx.
    const motoPort = await freePort();
    state.pids.moto = startDetached("moto_server", ["-H", hub, "-p", String(motoPort)], path.join(dir, "moto.log"));
    state.motoEndpoint = `http://${hub}:${motoPort}`;
    save();
    // s3rver detached (test/s3.ts ties it to the calling process; the estate outlives npm run estate).
    const s3Port = await freePort();
    // The hosts sign with the credentials moto's IMDS hands out (test-key): s3rver learns them.
    const s3Script = `const S3rver = require(${JSON.stringify(require.resolve("s3rver"))});
      require(${JSON.stringify(require.resolve("s3rver/lib/models/account"))}).DUMMY_ACCOUNT.createKeyPair("test-key", "test-secret-key");
      new S3rver({ port: ${s3Port}, address: "127.0.0.1", silent: true, directory: ${JSON.stringify(path.join(dir, "s3"))},
        configureBuckets: ${JSON.stringify(buckets.map((name) => ({ name })))} }).run().then(() => console.log("listening"));`;
    state.pids.s3rver = startDetached(process.execPath, ["-e", s3Script], path.join(dir, "s3rver.log"));
    state.s3Endpoint = `http://127.0.0.1:${s3Port}`;
    save();
    const s3Names = [`s3.${region}.amazonaws.com`, ...buckets.map((b) => `${b}.s3.${region}.amazonaws.com`)];
    const otherNames = ["ssm", "monitoring", "logs", "ec2", "sts", "kms", "ec2messages", "ssmmessages", "sns", "elasticloadbalancing"].map((s) => `${s}.${region}.amazonaws.com`);
    awsCertificate(dir, [...s3Names, ...otherNames]);
    const imdsPort = await freePort();
    state.imdsEndpoint = `http://${hub}:${imdsPort}`;
    for (const d of ["nginx-tmp", "nginx-logs"]) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, "nginx.conf"), `
pid ${dir}/nginx.pid; error_log ${dir}/nginx-logs/error.log; daemon off;
events {}
http {
  access_log ${dir}/nginx-logs/access.log; client_body_temp_path ${dir}/nginx-tmp; proxy_temp_path ${dir}/nginx-tmp;
  client_max_body_size 0; proxy_request_buffering off; proxy_buffering off; server_names_hash_bucket_size 128;
  ssl_certificate ${dir}/aws.crt; ssl_certificate_key ${dir}/aws.key;
  # Instance metadata: moto's, but the role's credentials as EC2 gives them (moto's lack the Code
  # field pgBackRest requires) and the role's name also without the slash (pgBackRest asks so).
  server { listen ${hub}:${imdsPort};
    location = /latest/meta-data/iam/security-credentials { proxy_pass ${state.motoEndpoint}/latest/meta-data/iam/security-credentials/; }
    location = /latest/meta-data/iam/security-credentials/default-role { default_type text/plain; return 200 '${imdsCredentials()}'; }
    location / { proxy_pass ${state.motoEndpoint}; } }
  server { listen ${hub}:443 ssl default_server; location / { proxy_pass ${state.motoEndpoint}; proxy_set_header Host $http_host; } }
  server { listen ${hub}:443 ssl; server_name ${s3Names.join(" ")};
    location / { proxy_pass ${state.s3Endpoint}; proxy_set_header Host $http_host; } }
}`);
    state.pids.nginx = startDetached("nginx", ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "nginx-logs", "error.log")], path.join(dir, "nginx.out"));
    save();
    await until("moto_server listening", 30000, () => sh("curl", ["-s", "-o", "/dev/null", `${state.motoEndpoint}/latest/meta-data/instance-id`], { allowFail: true }).status === 0, 200);
    await until("s3 stand-in behind nginx", 30000, () => sh("curl", ["-s", "-o", "/dev/null", "--cacert", `${dir}/ca.crt`, "--resolve", `s3.${region}.amazonaws.com:443:${hub}`, `https://s3.${region}.amazonaws.com/`], { allowFail: true }).status === 0, 200);

    seedAws(state, plan);
    await seedAgents(state);

    const rootfs = ensureRootfs(proxy, log);
    const roles = opts.roles ?? ["db", "app"];
    const instances = byType(plan, "aws:ec2/instance:Instance");
    const subnets = new Map(byType(plan, "aws:ec2/subnet:Subnet").map((s) => [s.id, String(s.inputs.cidrBlock)]));
    roles.forEach((role, i) => {
      const inst = instances.find((x) => (x.inputs.tags as Record<string, string>).role === role);
      if (!inst) throw new Error(`stack ${opts.stack} has no ${role} host`);
      const base = subnets.get(String(inst.inputs.subnetId))!.split("/")[0].split(".").map(Number);
      const name = `nl${SLOTS[opts.slot]}-${role}`;
      state.hosts.push({
        role, name, netns: name, veth: `${name}-v`, address: [base[0], base[1], base[2], base[3] + 10 + i].join("."),
        root: path.join(dir, role, "root"), lower: rootfs, log: path.join(dir, `${role}.console.log`),
      });
    });
    save();
    const hosts = Object.fromEntries(plan.resources.filter((r) => r.type === "aws:ec2/instance:Instance").map((r) => [String((r.inputs.tags as Record<string, string>).role), r]));
    for (const h of state.hosts) {
      network(state, h);
      prepareRoot(state, h, plan, hosts);
      save();
      boot(state, h);
      save();
    }
    return state;
  } catch (e) {
    save();
    throw e;
  }
}

/** SSM parameters the stack creates (SecureString, random values), as `pulumi up` would. */
function seedAws(state: EstateState, plan: Plan): void {
  const env = { ...process.env, AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_EC2_METADATA_DISABLED: "true" };
  for (const p of byType(plan, "aws:ssm/parameter:Parameter")) {
    // 64 characters like the stack's RandomPassword (Django's check --deploy wants 50 or more: security.W009).
    const value = randomBytes(48).toString("base64url");
    sh(AWS_CLI, ["--endpoint-url", state.motoEndpoint, "--region", state.region, "ssm", "put-parameter", "--name", String(p.inputs.name),
      "--type", String(p.inputs.type ?? "SecureString"), "--value", value, "--overwrite"], { env });
  }
  // The alert topics (app-0's reports publish to them), under the plan's ARNs: the mocks name a topic's
  // ARN by its id, in moto's default account.
  for (const t of byType(plan, "aws:sns/topic:Topic")) {
    sh(AWS_CLI, ["--endpoint-url", state.motoEndpoint, "--region", state.region, "sns", "create-topic", "--name", String(t.id)], { env });
  }
  // The tooling objects exactly as the stack uploads them (keys and contents from the plan).
  const upload = path.join(state.dir, "tooling-upload");
  const objects = byType(plan, "aws:s3/bucketObjectv2:BucketObjectv2");
  for (const o of objects) {
    const f = path.join(upload, String(o.inputs.key));
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, String(o.inputs.content));
  }
  const bucket = objects.find((o) => String(o.inputs.key) === "tooling/current")!.inputs.bucket;
  sh(AWS_CLI, ["--endpoint-url", state.s3Endpoint, "--region", state.region, "s3", "cp", "--only-show-errors", "--recursive", upload, `s3://${bucket}/`],
    { env: { ...env, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" } });
}

/**
 * The buckets the S3 stand-in serves: the stack's own, AWS's agent buckets, and the bucket a
 * staging restore rehearsal reads prod's backups from (REHEARSAL_SOURCE_BUCKET; empty until
 * someone puts a backup there, as the boot test does).
 */
function standInBuckets(state: EstateState, plan: Plan): string[] {
  const rehearsalSource = hostEnvValue(state, "db", "REHEARSAL_SOURCE_BUCKET");
  return [...byType(plan, "aws:s3/bucket:Bucket").map((b) => b.id), ...agentBuckets(state.region), ...(rehearsalSource ? [rehearsalSource] : [])];
}

/** The buckets AWS serves its agents' packages from (components/hosts/agents.ts). */
function agentBuckets(region: string): string[] {
  return (["ssm", "cloudwatch"] as AgentName[]).map((a) => agentPackage(a, region, "x").bucket);
}

/**
 * Stand-ins for AWS's agent packages (test/agent-debs.ts) at the versions the stack pins, put at
 * AWS's own bucket and key, so each host downloads exactly the URL it would on EC2.
 */
async function seedAgents(state: EstateState): Promise<void> {
  const version = (k: string) => {
    const vs = ["db", "app"].map((r) => hostEnvValue(state, r, k)).filter((v): v is string => Boolean(v));
    if (!vs.length || new Set(vs).size !== 1) throw new Error(`estate: ${k} is not one value in the hosts' host.env (${vs.join(", ") || "absent"})`);
    return vs[0];
  };
  const versions = { ssm: version("SSM_AGENT_VERSION"), cloudwatch: version("CLOUDWATCH_AGENT_VERSION") };
  const debs = await buildAgentStandIns(path.join(state.dir, "agent-debs"), versions);
  const env = { ...process.env, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_EC2_METADATA_DISABLED: "true" };
  for (const a of ["ssm", "cloudwatch"] as AgentName[]) {
    const p = agentPackage(a, state.region, versions[a]);
    sh(AWS_CLI, ["--endpoint-url", state.s3Endpoint, "--region", state.region, "s3", "cp", "--only-show-errors", debs[a], `s3://${p.bucket}/${p.key}`], { env });
  }
}

/** The host's namespace: a veth to this machine, its address, a default route to the hub, IMDS. */
function network(state: EstateState, h: HostState): void {
  const ns = (args: string[]) => sh("ip", ["netns", "exec", h.netns, ...args]);
  sh("ip", ["netns", "add", h.netns]);
  sh("ip", ["link", "add", h.veth, "type", "veth", "peer", "name", `${h.name}-c`]);
  sh("ip", ["link", "set", `${h.name}-c`, "netns", h.netns]);
  ns(["ip", "link", "set", `${h.name}-c`, "name", "eth0"]);
  ns(["ip", "addr", "add", `${h.address}/32`, "dev", "eth0"]);
  ns(["ip", "link", "set", "lo", "up"]);
  ns(["ip", "link", "set", "eth0", "up"]);
  ns(["ip", "route", "add", state.hub, "dev", "eth0"]);
  ns(["ip", "route", "add", "default", "via", state.hub, "dev", "eth0", "onlink"]);
  sh("ip", ["link", "set", h.veth, "up"]);
  sh("ip", ["route", "add", `${h.address}/32`, "dev", h.veth]);
  // Hosts reach each other through this machine (app → db), on these links only.
  sh("sysctl", ["-q", "-w", `net.ipv4.conf.${h.veth}.forwarding=1`]);
  const imds = new URL(state.imdsEndpoint);
  ns(["nft", `add table ip nourish; add chain ip nourish out { type nat hook output priority -100; }; add rule ip nourish out ip daddr 169.254.169.254 tcp dport 80 dnat to ${imds.hostname}:${imds.port}`]);
}

/** The overlay the host boots from, its NoCloud seed and the seams (see the header). */
function prepareRoot(state: EstateState, h: HostState, plan: Plan, instances: Record<string, PlanResource>): void {
  const base = path.dirname(h.root);
  for (const d of ["upper", "work", "root"]) fs.mkdirSync(path.join(base, d), { recursive: true });
  sh("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${h.lower},upperdir=${base}/upper,workdir=${base}/work`, h.root]);
  const w = (p: string, content: string, mode = 0o644) => {
    const f = path.join(h.root, p);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content, { mode });
  };
  const inst = instances[h.role];
  const seed = "/var/lib/cloud/seed/nocloud";
  w(`${seed}/user-data`, fs.readFileSync(path.join(state.dir, "out", state.stack, "hosts", h.role, "user-data.yaml"), "utf8"));
  w(`${seed}/meta-data`, `instance-id: ${inst.id}\nlocal-hostname: ip-${h.address.replace(/\./g, "-")}\n`);
  w("etc/cloud/cloud.cfg.d/90-nourish-estate.cfg", "# nourish-link estate seam: NoCloud seed; the namespace's network is set from outside.\ndatasource_list: [ NoCloud, None ]\nnetwork: {config: disabled}\n");
  w("etc/apt/apt.conf.d/90nourish-estate-proxy", `// nourish-link estate seam: Debian's archive through the apt cache on this machine.\nAcquire::http::Proxy "http://${state.hub}:${ACNG_PORT}";\n`);
  const region = state.region;
  const buckets = standInBuckets(state, plan);
  const awsNames = [`s3.${region}.amazonaws.com`, ...buckets.map((b) => `${b}.s3.${region}.amazonaws.com`),
    ...["ssm", "monitoring", "logs", "ec2", "sts", "kms", "ec2messages", "ssmmessages", "sns", "elasticloadbalancing"].map((s) => `${s}.${region}.amazonaws.com`)];
  // The database's private DNS name (DB_HOST in the app's host.env) resolves to the db host here.
  const db = state.hosts.find((o) => o.role === "db");
  const dbHost = hostEnvValue(state, "app", "DB_HOST");
  const peers = db && dbHost && h.role === "app" ? [`${db.address} ${dbHost}`] : [];
  w("etc/hosts", ["127.0.0.1 localhost", `${h.address} ip-${h.address.replace(/\./g, "-")}`, ...peers, `${state.hub} ${awsNames.join(" ")}`, "::1 localhost ip6-localhost ip6-loopback", ""].join("\n"));
  w("usr/local/share/ca-certificates/nourish-estate.crt", fs.readFileSync(path.join(state.dir, "ca.crt"), "utf8"));
  sh("chroot", [h.root, "update-ca-certificates"]);
  // /etc/fstab's ext4 lines mounted each boot (see the header: the container's fstab generator
  // skips them, and no udev makes /dev/disk/by-label links for libblkid to find LABEL= lines by).
  w("usr/local/sbin/nourish-estate-fstab", [
    "#!/bin/sh", "# nourish-link estate seam: udev's /dev/disk/by-label links for the attached volumes, then fstab's ext4 lines.",
    "set -eu", "mkdir -p /dev/disk/by-label",
    "for d in /dev/disk/by-id/*; do", "  [ -b \"$d\" ] || continue", "  l=$(blkid -o value -s LABEL \"$d\" || true)",
    "  [ -z \"$l\" ] || ln -sf \"$d\" \"/dev/disk/by-label/$l\"", "done", "exec mount --all --types ext4", ""].join("\n"), 0o755);
  w("etc/systemd/system/nourish-estate-fstab.service", [
    "# nourish-link estate seam: systemd-fstab-generator ignores device lines in a container; mount(8) reads them instead.",
    "[Unit]", "Description=Mount /etc/fstab's ext4 lines (estate seam)", "DefaultDependencies=no",
    "After=systemd-remount-fs.service", "Before=local-fs.target", "",
    "[Service]", "Type=oneshot", "RemainAfterExit=yes", "ExecStart=/usr/local/sbin/nourish-estate-fstab", "",
    "[Install]", "WantedBy=local-fs.target", ""].join("\n"));
  fs.mkdirSync(path.join(h.root, "etc/systemd/system/local-fs.target.wants"), { recursive: true });
  fs.symlinkSync("../nourish-estate-fstab.service", path.join(h.root, "etc/systemd/system/local-fs.target.wants/nourish-estate-fstab.service"));
  // The data volume (db): a sparse file on a loop device, at the path EC2's udev rules give it.
  const volume = byType(plan, "aws:ebs/volume:Volume")[0];
  if (h.role === "db" && volume) {
    const img = path.join(base, "data-volume.img");
    sh("truncate", ["-s", "2G", img]);
    h.loop = sh("losetup", ["-f", "--show", img]).stdout.trim();
  }
}

/** A value of a role's rendered host.env (undefined when the role or key is absent). */
function hostEnvValue(state: EstateState, role: string, key: string): string | undefined {
  const f = path.join(state.dir, "out", state.stack, "hosts", role, "etc", "nourish-link", "host.env");
  if (!fs.existsSync(f)) return undefined;
  return fs.readFileSync(f, "utf8").match(new RegExp(`^${key}="?([^"\n]+)`, "m"))?.[1];
}

/** nspawn arguments for a host (its data volume bound at its EC2 path). */
function nspawnArgs(state: EstateState, h: HostState, plan?: Plan): string[] {
  void plan;
  const args = ["--register=no", "--keep-unit", "-q", "-D", h.root, "-b", `--network-namespace-path=/run/netns/${h.netns}`,
    `--machine=${h.name}`, "--console=pipe", "--resolv-conf=off", "--timezone=off", "--link-journal=no"];
  if (h.loop) {
    const vol = hostEnvValue(state, h.role, "DATA_VOLUME_ID");
    if (vol) args.push(`--bind=${h.loop}:/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${vol.replace(/-/g, "")}`);
  }
  return args;
}

export function boot(state: EstateState, h: HostState): void {
  h.bootedAt = Date.now();
  h.nspawnPid = startDetached("systemd-nspawn", nspawnArgs(state, h), h.log, { PATH: process.env.PATH, SYSTEMD_NSPAWN_LOCK: "0" });
}

/** PID of the host's systemd (PID 1 inside), for nsenter. */
export function initPid(h: HostState): number | undefined {
  if (!h.nspawnPid) return undefined;
  const kids = sh("pgrep", ["-P", String(h.nspawnPid)], { allowFail: true }).stdout.trim().split("\n").filter(Boolean).map(Number);
  return kids.find((k) => { try { return fs.readFileSync(`/proc/${k}/comm`, "utf8").trim() === "systemd"; } catch { return false; } });
}

/** Runs `script` with bash inside the host, as root, in all its namespaces. */
export function exec(h: HostState, script: string, allowFail = true): { status: number; stdout: string; stderr: string } {
  const pid = initPid(h);
  if (!pid) throw new Error(`${h.name} is not running`);
  return sh("nsenter", ["-t", String(pid), "-a", "--", "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "/bin/bash", "-c", script], { allowFail });
}

/** Waits for cloud-init to finish on the host: its `status` line (done, error, …). */
export async function waitCloudInit(h: HostState, timeoutMs = 30 * 60_000): Promise<string> {
  const status = await until(`${h.name}: cloud-init finished`, timeoutMs, () => {
    if (h.nspawnPid && !pidAlive(h.nspawnPid)) throw new Error(`${h.name}: the container exited (see ${h.log})`);
    if (!initPid(h)) return undefined;
    // cloud-init 22.4 says "error" as soon as one stage failed, while later stages still run:
    // finished is when the final stage wrote result.json.
    const r = exec(h, "test -e /run/cloud-init/result.json && cloud-init status 2>/dev/null");
    const s = r.stdout.match(/status: (\w+)/)?.[1];
    return s && !["running", "not"].includes(s) ? s : undefined;
  }, 2000);
  // When cloud-init wrote its result (not when we looked: a host may be asked long after it finished).
  const finished = Number(exec(h, "stat -c %Y /run/cloud-init/result.json").stdout.trim()) * 1000;
  if (h.bootedAt && finished) log(`${h.name}: cloud-init ${status} ${((finished - h.bootedAt) / 1000).toFixed(0)} s after nspawn started`);
  return status;
}

/** Stops a host's systemd cleanly (poweroff), then nspawn by signal if it will not go. */
export async function stopHost(h: HostState): Promise<void> {
  const pid = h.nspawnPid;
  if (!pid || !pidAlive(pid)) return;
  if (initPid(h)) exec(h, "systemctl --no-block poweroff");
  try {
    await until(`${h.name} powered off`, 60000, () => !pidAlive(pid) || isZombie(pid), 500);
  } catch {
    try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
  }
  h.nspawnPid = undefined;
}

function isZombie(pid: number): boolean {
  try { return / Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { return true; }
}

/** Reboots a host: poweroff, then the same overlay booted again. */
export async function reboot(state: EstateState, h: HostState): Promise<void> {
  await stopHost(h);
  boot(state, h);
  fs.writeFileSync(path.join(state.dir, "state.json"), JSON.stringify(state, null, 2));
}

export function readState(slot: string): EstateState | undefined {
  const f = path.join(STATE_ROOT, slot, "state.json");
  return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, "utf8")) as EstateState : undefined;
}

/** Removes everything `up` made for `slot`, whatever state it reached: hosts, mounts, links, stand-ins. */
export async function down(slot: string): Promise<void> {
  const state = readState(slot);
  if (!state) return;
  const errors: string[] = [];
  const step = async (what: string, f: () => unknown) => { try { await f(); } catch (e) { errors.push(`${what}: ${(e as Error).message}`); } };
  for (const h of state.hosts) {
    await step(`stop ${h.name}`, () => stopHost(h));
    await step(`unmount ${h.root}`, () => { if (sh("mountpoint", ["-q", h.root], { allowFail: true }).status === 0) sh("umount", ["-l", h.root]); });
    await step(`loop ${h.loop}`, () => { if (h.loop) sh("losetup", ["-d", h.loop], { allowFail: true }); });
    await step(`veth ${h.veth}`, () => { if (sh("ip", ["link", "show", h.veth], { allowFail: true }).status === 0) sh("ip", ["link", "del", h.veth]); });
    await step(`netns ${h.netns}`, () => { if (fs.existsSync(`/run/netns/${h.netns}`)) sh("ip", ["netns", "del", h.netns]); });
  }
  for (const [what, pid] of Object.entries(state.pids)) {
    await step(`stop ${what}`, async () => {
      if (!pidAlive(pid)) return;
      process.kill(pid, "SIGTERM");
      await until(`${what} stopped`, 10000, () => !pidAlive(pid) || isZombie(pid), 100).catch(() => process.kill(pid, "SIGKILL"));
    });
  }
  await sleep(10);
  await step(`remove ${state.dir}`, () => fs.rmSync(state.dir, { recursive: true, force: true }));
  if (errors.length) throw new Error(`estate down (${slot}): ${errors.join("; ")}`);
}
