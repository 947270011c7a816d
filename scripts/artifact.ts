// `npm run artifact -- --app DIR [--version V] [--wheel-source DIR] [--out DIR] [--publish --stack staging [--bucket B]]`
// Builds the release artifact of the Django app from a git checkout (its tracked files, at a
// clean HEAD; the version from `git describe --tags --exact-match` or --version), checked against
// the app contract, with the wheelhouse built by the hosts' Python (scripts/release/artifact.ts),
// packed reproducibly, and prints its SHA-256 (sha256sum format, last line).
// --publish uploads it write-once to s3://<bucket>/releases/<version>/nourish-link-<version>.tar.gz
// (nourishctl's s3_put_once: If-None-Match: *; the same bytes again are fine, other bytes refused)
// and writes release.version and release.artifact into Pulumi.<stack>.yaml the way `npm run
// promote` writes prod's (scripts/promotion/stack-file.ts: comments kept; nothing changes when it
// already names that artifact; another artifact for a version the file names is refused).
// S3_ENDPOINT (as nourishctl's) aims the upload at a local S3 (tests: s3rver).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { PROJECT } from "../components/config";
import { NOURISHCTL_SOURCE } from "../components/hosts/user-data";
import { writeReleaseFile } from "./promote";
import { Refusal } from "./promotion/check";
import { readStackFile, ROOT } from "./preview/stack-file";
import { ArtifactError, artifactFileName, buildArtifact, BuiltArtifact } from "./release/artifact";
import { sha256File } from "./release/pack";

const USAGE = "usage: npm run artifact -- --app DIR [--version V] [--wheel-source DIR] [--out DIR] [--publish --stack staging [--bucket B]] [--root DIR]";
/** Stacks a build is published to; prod gets exactly what staging ran from `npm run promote`. */
const PUBLISH_STACKS = ["staging"];

export interface Args { app: string; version?: string; wheelSource?: string; out: string; publish: boolean; stack?: string; bucket?: string; root: string }

export function parseArgs(argv: string[]): Args {
  const args: Partial<Args> & { publish: boolean; root: string } = { publish: false, root: ROOT };
  const value = (i: number) => {
    const v = argv[i];
    if (v === undefined || v === "" || v.startsWith("--")) throw new Error(`${argv[i - 1]} needs a value (${USAGE})`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--app") args.app = path.resolve(value(++i));
    else if (a === "--version") args.version = value(++i);
    else if (a === "--wheel-source") args.wheelSource = path.resolve(value(++i));
    else if (a === "--out") args.out = path.resolve(value(++i));
    else if (a === "--publish") args.publish = true;
    else if (a === "--stack") args.stack = value(++i);
    else if (a === "--bucket") args.bucket = value(++i);
    else if (a === "--root") args.root = path.resolve(value(++i));
    else if (a === "--help" || a === "-h") { console.log(USAGE); process.exit(0); }
    else throw new Error(`unknown argument '${a}' (${USAGE})`);
  }
  if (!args.app) throw new Error(`--app DIR is required (${USAGE})`);
  if (args.publish && !args.stack) throw new Error("--publish needs --stack staging");
  if (!args.publish && (args.stack || args.bucket)) throw new Error("--stack and --bucket go with --publish");
  if (args.stack && !PUBLISH_STACKS.includes(args.stack)) throw new Error(`--stack ${args.stack}: an artifact is published to ${PUBLISH_STACKS.join(", ")}; prod runs what staging proved (npm run promote)`);
  return { out: path.join(args.root, "out", "artifacts"), ...args } as Args;
}

function git(app: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("git", ["-C", app, ...args], { encoding: "utf8" });
  if (r.error) throw new Refusal(`cannot run git (${(r.error as NodeJS.ErrnoException).code})`);
  return r;
}

/** The checkout's tracked files (relative to DIR) and its version; refuses a tree that is not a commit's. */
export function readCheckout(app: string, given?: string): { files: string[]; version: string } {
  if (!fs.existsSync(app)) throw new Refusal(`--app ${app}: no such directory`);
  if (git(app, ["rev-parse", "--is-inside-work-tree"]).stdout.trim() !== "true") throw new Refusal(`--app ${app} is not a git work tree: the artifact is built from a checkout of the app`);
  const dirty = git(app, ["status", "--porcelain", "--untracked-files=no", "--", "."]).stdout.split("\n").filter(Boolean);
  if (dirty.length) throw new Refusal(`--app ${app} has uncommitted changes (${dirty[0].slice(3)}): an artifact is built from a commit; commit or stash them`);
  const files = git(app, ["ls-files", "-z", "--", "."]).stdout.split("\0").filter(Boolean).sort();
  const described = git(app, ["describe", "--tags", "--exact-match"]);
  const tag = described.status === 0 ? described.stdout.trim() : undefined;
  const tagged = tag?.replace(/^v(?=\d)/, "");
  if (given && tagged && given !== tagged) throw new Refusal(`--version ${given}, but HEAD of ${app} is tagged ${tag}: one version per commit`);
  const version = given ?? tagged;
  if (!version) throw new Refusal(`HEAD of ${app} has no tag (git describe --tags --exact-match): tag the commit (git tag 1.4.3) or pass --version`);
  return { files, version };
}

/** nourishctl's own helpers (s3_put_once, aws_cli), sourced, in the stack's region. */
function nourishctl(fn: string, args: string[], region: string): { status: number | null; stderr: string } {
  const r = spawnSync("bash", ["-c", '. "$1" || exit 1; shift; "$@"', "artifact", NOURISHCTL_SOURCE, fn, ...args], {
    encoding: "utf8", env: { ...process.env, REGION: region },
  });
  if (r.error) throw new Refusal(`cannot run bash (${(r.error as NodeJS.ErrnoException).code})`);
  return { status: r.status, stderr: r.stderr.trim() };
}

/** Uploads the artifact write-once; the same bytes there already are fine, other bytes refused. */
export function uploadOnce(a: BuiltArtifact, bucket: string, key: string, region: string): string {
  const url = `s3://${bucket}/${key}`;
  const put = nourishctl("s3_put_once", [bucket, key, a.file, a.sha256, "0", "application/gzip"], region);
  if (put.status === 0) return `uploaded ${url}`;
  if (put.status !== 2) throw new Refusal(`upload to ${url} failed: ${put.stderr.split("\n").pop()}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-artifact-there-"));
  try {
    const got = nourishctl("aws_cli", ["s3", "cp", "--only-show-errors", url, path.join(tmp, "there")], region);
    if (got.status !== 0) throw new Refusal(`${url} exists but cannot be read back to compare: ${got.stderr.split("\n").pop()}`);
    const there = sha256File(path.join(tmp, "there"));
    if (there !== a.sha256) throw new Refusal(`${url} exists with sha256 ${there}, not this build's ${a.sha256}: a version is immutable; build another version`);
    return `${url} holds these bytes already`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Publishes to the stack: upload, then release.version and release.artifact in Pulumi.<stack>.yaml. Lines to print. */
export function publish(a: BuiltArtifact, args: Args): string {
  const stack = args.stack as string;
  const file = path.join(args.root, `Pulumi.${stack}.yaml`);
  const before = fs.readFileSync(file, "utf8");
  const current = (parse(before) as { config?: Record<string, { version?: string; artifact?: { type?: string; bucket?: string; sha256?: string } }> })?.config?.[`${PROJECT}:release`];
  const bucket = args.bucket ?? (current?.artifact?.type === "s3" ? current.artifact.bucket : undefined);
  if (!bucket) throw new Refusal(`Pulumi.${stack}.yaml names no S3 release bucket (release.artifact.bucket): pass --bucket`);
  if (current?.version === a.version && current.artifact?.sha256 !== a.sha256) {
    throw new Refusal(`Pulumi.${stack}.yaml names release ${a.version} with another artifact (sha256 ${current.artifact?.sha256 ?? "none"}), not this build's ${a.sha256}: a version is immutable; build another version`);
  }
  const region = readStackFile(stack, args.root).config["aws:region"] ?? "";
  const key = `releases/${a.version}/${artifactFileName(a.version)}`;
  const uploaded = uploadOnce(a, bucket, key, region);
  const diff = writeReleaseFile(stack, args.root, { version: a.version, artifact: { type: "s3", bucket, key, sha256: a.sha256 } });
  if (!diff) return `artifact: ${uploaded}\nartifact: Pulumi.${stack}.yaml already names release ${a.version} with this artifact; nothing to change\n`;
  return `artifact: ${uploaded}\n${diff}artifact: wrote release ${a.version} into Pulumi.${stack}.yaml; next: commit it (merge to main deploys staging) or pulumi up --stack ${stack}\n`;
}

export function run(args: Args): string {
  const { files, version } = readCheckout(args.app, args.version);
  const a = buildArtifact({ source: args.app, files, version, outDir: args.out, wheelSource: args.wheelSource });
  let out = `artifact: built ${a.file} (version ${a.version}, ${a.wheels.length ? `wheels: ${a.wheels.join(" ")}` : "no wheels: Debian's packages satisfy requirements.txt"})\n`;
  if (args.publish) out += publish(a, args);
  return `${out}${a.sha256}  ${a.file}\n`;
}

function main(): void {
  let args: Args;
  try { args = parseArgs(process.argv.slice(2)); } catch (e) {
    console.error(`artifact: ${(e as Error).message}`);
    process.exit(2);
  }
  try {
    process.stdout.write(run(args));
  } catch (e) {
    console.error(e instanceof Refusal || e instanceof ArtifactError ? `artifact: refused: ${e.message}` : `artifact: ${(e as Error).message ?? String(e)}`);
    process.exit(1);
  }
}

if (require.main === module) main();
