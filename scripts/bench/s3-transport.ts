// What the S3 stand-in alone costs: one 1200 MB incompressible object copied locally, uploaded to
// and downloaded from s3rver (plain, and through the nginx TLS front pgBackRest needs) with the aws
// CLI, side by side in one run. The floor for any restore that reads its repository from s3rver.
// Usage: npm run bench:s3-transport [-- <MB, default 1200>]
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AWS_CLI, startS3 } from "../../test/s3";

async function main(): Promise<void> {
  const mb = Number(process.argv[2] ?? 1200);
  const s3 = await startS3({ buckets: ["transport"], tls: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-s3-transport-"));
  const file = path.join(dir, "blob");
  const env = { ...process.env, ...s3.env };
  const aws = (endpoint: string, args: string[]) =>
    execFileSync(AWS_CLI, ["--endpoint-url", endpoint, "--no-verify-ssl", "s3", "cp", "--only-show-errors", ...args], { env, stdio: ["ignore", "ignore", "ignore"] });
  const time = (f: () => void): number => { const t = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t) / 1e9; };
  try {
    execFileSync("dd", ["if=/dev/urandom", `of=${file}`, "bs=1M", `count=${mb}`, "status=none"]);
    const rows: [string, number][] = [
      ["cp (floor)", time(() => { execFileSync("cp", [file, `${file}.copy`]); execFileSync("sync"); })],
      ["upload, http", time(() => aws(s3.endpoint, [file, "s3://transport/blob"]))],
      ["download, http", time(() => aws(s3.endpoint, ["s3://transport/blob", `${file}.http`]))],
      ["download, https (nginx front)", time(() => aws(`https://127.0.0.1:${s3.tlsPort}`, ["s3://transport/blob", `${file}.https`]))],
    ];
    console.log(`s3-transport: ${mb} MB, s3rver on loopback`);
    for (const [what, s] of rows) console.log(`${what.padEnd(32)} ${s.toFixed(1).padStart(6)} s ${(s / rows[0][1]).toFixed(2).padStart(6)}× floor`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await s3.stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
