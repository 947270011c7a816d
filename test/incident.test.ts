// nourishctl isolate and snapshot (issue 14, "Security Incident") with the real AWS CLI against
// moto_server on loopback as EC2 and ELBv2: an app host in its security group and target group,
// the stack's quarantine group, a second volume. The host finds its own id through IMDSv2 (a
// loopback stand-in that insists on the token) or host.env.
import * as assert from "assert";
import * as fs from "fs";
import { ChildProcess, spawn } from "child_process";
import * as os from "os";
import * as path from "path";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { Moto, startMoto } from "./moto";
import { AWS_CLI } from "./s3";
import { freePort, run } from "./tools";

const IMDS_STAND_IN = `
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, instance = int(sys.argv[1]), sys.argv[2]
class H(BaseHTTPRequestHandler):
    def reply(self, code, body=b""):
        self.send_response(code); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_PUT(self):
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self.reply(200, b"tok3n") if ok else self.reply(401)
    def do_GET(self):
        ok = self.path == "/latest/meta-data/instance-id" and self.headers.get("X-aws-ec2-metadata-token") == "tok3n"
        self.reply(200, instance.encode()) if ok else self.reply(401)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
`;

describe("nourishctl isolate and snapshot against moto_server (EC2, ELBv2)", function () {
  this.timeout(300_000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nl-incident-"));
  let moto: Moto;
  let imds: ChildProcess | undefined;
  let imdsUrl = "";
  const ids = { vpc: "", app: "", quarantine: "", instance: "", tg: "", otherTg: "", data: "" };
  const aws = (...args: string[]) => {
    const r = moto.aws(args);
    assert.strictEqual(r.status, 0, `aws ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim() ? JSON.parse(r.stdout) : {};
  };
  const hostEnv = (extra = "") => fs.writeFileSync(path.join(root, "etc/nourish-link/host.env"), `ROLE=app\nSTACK=staging\nREGION=af-south-1\n${extra}`);
  const ctl = (...args: string[]) => run("bash", [NOURISHCTL_SOURCE, ...args], {
    env: { ...process.env, ...moto.env, NOURISH_ROOT: root, EC2_ENDPOINT: moto.endpoint, ELB_ENDPOINT: moto.endpoint, IMDS_ENDPOINT: imdsUrl, PATH: `${path.dirname(AWS_CLI)}:${process.env.PATH}` },
    timeout: 180_000,
  });
  const groupsOf = (id: string) => aws("ec2", "describe-instances", "--instance-ids", id).Reservations[0].Instances[0].SecurityGroups.map((g: { GroupId: string }) => g.GroupId);
  const targetsOf = (tg: string) => aws("elbv2", "describe-target-health", "--target-group-arn", tg).TargetHealthDescriptions.map((t: { Target: { Id: string } }) => t.Target.Id);

  before(async () => {
    moto = await startMoto();
    fs.mkdirSync(path.join(root, "etc/nourish-link"), { recursive: true });
    hostEnv();

    ids.vpc = aws("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16").Vpc.VpcId;
    const subnet = aws("ec2", "create-subnet", "--vpc-id", ids.vpc, "--cidr-block", "10.0.1.0/24", "--availability-zone", "af-south-1a").Subnet.SubnetId;
    const sg = (name: string) => aws("ec2", "create-security-group", "--group-name", name, "--description", name, "--vpc-id", ids.vpc,
      "--tag-specifications", `ResourceType=security-group,Tags=[{Key=Name,Value=${name}}]`).GroupId;
    ids.app = sg("nourish-link-staging-app");
    ids.quarantine = sg("nourish-link-staging-quarantine");
    sg("nourish-link-prod-quarantine");
    ids.instance = aws("ec2", "run-instances", "--image-id", "ami-12c6146b", "--instance-type", "t3.micro", "--subnet-id", subnet, "--security-group-ids", ids.app,
      "--tag-specifications", "ResourceType=instance,Tags=[{Key=project,Value=nourish-link},{Key=stack,Value=staging},{Key=role,Value=app}]").Instances[0].InstanceId;
    ids.data = aws("ec2", "create-volume", "--availability-zone", "af-south-1a", "--size", "1").VolumeId;
    aws("ec2", "attach-volume", "--volume-id", ids.data, "--instance-id", ids.instance, "--device", "/dev/sdf");
    const tg = (name: string) => aws("elbv2", "create-target-group", "--name", name, "--protocol", "HTTP", "--port", "80", "--vpc-id", ids.vpc).TargetGroups[0].TargetGroupArn;
    ids.tg = tg("app-targets");
    ids.otherTg = tg("other-targets");
    aws("elbv2", "register-targets", "--target-group-arn", ids.tg, "--targets", `Id=${ids.instance},Port=80`);
    // IMDSv2 as EC2 serves it: a token from PUT, then the instance id only with that token. Its
    // own process: the tests run nourishctl synchronously.
    const port = await freePort();
    imds = spawn("python3", ["-c", IMDS_STAND_IN, String(port), ids.instance], { stdio: "ignore" });
    imdsUrl = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100 && run("curl", ["-s", "-o", "/dev/null", imdsUrl]).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
  });
  after(() => {
    moto?.stop();
    imds?.kill();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("has --help, and without --yes isolate only says what it would change", () => {
    for (const verb of ["isolate", "snapshot"]) assert.match(ctl(verb, "--help").stdout, new RegExp(`usage: nourishctl ${verb}`));
    const r = ctl("isolate");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`isolate: would move ${ids.instance} from security groups ${ids.app} to ${ids.quarantine} and deregister it from 1 target group\\(s\\).*nothing changed`));
    assert.deepStrictEqual(groupsOf(ids.instance), [ids.app]);
    assert.deepStrictEqual(targetsOf(ids.tg), [ids.instance]);
  });

  let undo: string[] = [];
  it("isolate --yes: quarantine group only, out of the target group, still running, the change recorded and its undo printed", () => {
    const r = ctl("isolate", "--yes", "--json");
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.strictEqual(out.instance_id, ids.instance, "the instance id from IMDSv2");
    const instance = aws("ec2", "describe-instances", "--instance-ids", ids.instance).Reservations[0].Instances[0];
    assert.deepStrictEqual(instance.SecurityGroups.map((g: { GroupId: string }) => g.GroupId), [ids.quarantine]);
    assert.strictEqual(instance.State.Name, "running");
    assert.deepStrictEqual(targetsOf(ids.tg), []);
    const tags = Object.fromEntries(instance.Tags.map((t: { Key: string; Value: string }) => [t.Key, t.Value]));
    assert.strictEqual(tags["quarantine:previous-groups"], ids.app);
    assert.strictEqual(tags["quarantine:target-groups"], `${ids.tg}:80`);
    assert.match(tags["quarantine:since"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.strictEqual(JSON.parse(fs.readFileSync(path.join(root, "var/lib/nourish-link/isolation.json"), "utf8")).previous_groups, ids.app);
    assert.deepStrictEqual(out.undo, [
      `aws ec2 modify-instance-attribute --region af-south-1 --instance-id ${ids.instance} --groups ${ids.app}`,
      `aws elbv2 register-targets --region af-south-1 --target-group-arn ${ids.tg} --targets Id=${ids.instance},Port=80`,
    ]);
    undo = out.undo;
  });

  it("isolate is safe to re-run: still isolated, the groups to restore still the recorded ones", () => {
    assert.ok(undo.length > 0, "runs after the isolation above");
    const again = ctl("isolate", "--yes");
    assert.strictEqual(again.status, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`isolate: ${ids.instance} was already in ${ids.quarantine}`));
    assert.match(again.stdout, new RegExp(`--instance-id ${ids.instance} --groups ${ids.app}\\n`));
    assert.deepStrictEqual(groupsOf(ids.instance), [ids.quarantine]);
  });

  it("the printed undo works (an operator runs it with their own rights)", () => {
    assert.ok(undo.length > 0, "runs after the isolation above");
    for (const cmd of undo) {
      const argv = cmd.split(" ").slice(1).filter((a, i, all) => !(a === "--region" || all[i - 1] === "--region"));
      aws(...argv);
    }
    assert.deepStrictEqual(groupsOf(ids.instance), [ids.app]);
    assert.deepStrictEqual(targetsOf(ids.tg), [ids.instance]);
  });

  it("isolate refuses in one line, changing nothing, without a quarantine group or with a bad instance id", () => {
    hostEnv("STACK=other\n");
    let r = ctl("isolate", "--yes");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr.trim(), /^nourishctl: isolate: no single security group tagged Name=nourish-link-other-quarantine in vpc-\w+ \(found ''\); pulumi up creates it; nothing changed$/);
    hostEnv("INSTANCE_ID=i-$(reboot)\n");
    r = ctl("isolate", "--yes");
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr.trim(), /^nourishctl: isolate: 'i-\$\(reboot\)' is not an EC2 instance id$/);
    assert.match(ctl("isolate", "--now").stderr, /isolate: unknown option '--now'/);
    hostEnv();
  });

  it("snapshot: one snapshot per attached volume, tagged with the reason, the time, the instance and the stack", () => {
    const r = ctl("snapshot", "--reason", "incident 2026-12-01: web shell", "--json");
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const volumes = aws("ec2", "describe-volumes", "--filters", `Name=attachment.instance-id,Values=${ids.instance}`).Volumes.map((v: { VolumeId: string }) => v.VolumeId).sort();
    assert.strictEqual(volumes.length, 2);
    assert.deepStrictEqual(out.snapshots.map((s: { volume_id: string }) => s.volume_id).sort(), volumes);
    for (const s of out.snapshots as { snapshot_id: string; volume_id: string; device: string }[]) {
      const snap = aws("ec2", "describe-snapshots", "--snapshot-ids", s.snapshot_id).Snapshots[0];
      assert.strictEqual(snap.VolumeId, s.volume_id);
      const tags = Object.fromEntries(snap.Tags.map((t: { Key: string; Value: string }) => [t.Key, t.Value]));
      assert.strictEqual(tags.reason, "incident 2026-12-01: web shell");
      assert.strictEqual(tags["taken-at"], out.taken_at);
      assert.match(tags["taken-at"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.strictEqual(tags.instance, ids.instance);
      assert.strictEqual(tags.device, s.device);
      assert.strictEqual(tags.stack, "staging");
      assert.strictEqual(tags.project, "nourish-link");
    }
    assert.ok(out.snapshots.some((s: { device: string }) => s.device === "/dev/sdf"));
  });

  it("snapshot refuses a reason that is not a plain tag value, taking nothing", () => {
    const before = aws("ec2", "describe-snapshots", "--owner-ids", "self").Snapshots.length;
    for (const bad of ["x; reboot", 'say "hi"', "$(id)", "a\nb", "", "x".repeat(201)]) {
      const r = ctl("snapshot", "--reason", bad);
      assert.strictEqual(r.status, 1, bad);
      assert.match(r.stderr.trim(), /^nourishctl: snapshot: --reason must be 1-200 letters, digits, spaces or \+ - = \. _ : \/ @; nothing taken$/);
    }
    assert.strictEqual(aws("ec2", "describe-snapshots", "--owner-ids", "self").Snapshots.length, before);
  });
});
