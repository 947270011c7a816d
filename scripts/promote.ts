// `npm run promote [-- --staging-outputs FILE]`: promotes to prod exactly the release staging
// proved. Reads staging's outputs (FILE, or `pulumi stack output --stack staging --json`), and
// refuses with one line and exit 1 unless staging runs the release this commit's
// Pulumi.staging.yaml names (same version, same artifact checksum), that release verified
// healthy, and the last restore rehearsal succeeded within prod's
// promotion.maxRehearsalAgeDays. Otherwise it writes that release into Pulumi.prod.yaml (every
// comment and the key order kept) and prints the diff.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, parseSettings, PROJECT, StackSettings } from "../components/config";
import { releaseArtifactOutput } from "../components/release/steps";
import { unifiedDiff } from "./diff/text";
import { checkPromotion, readStagingOutputs, Refusal } from "./promotion/check";
import { StackRelease, writeRelease } from "./promotion/stack-file";
import { MOCK_NOW, MOCK_REHEARSAL_AT, MOCK_VERIFIED_AT } from "./preview/mock-values";
import { readStackFile, ROOT } from "./preview/stack-file";

const USAGE = "usage: npm run promote [-- --staging-outputs FILE] [--root DIR] [--now ISO-TIME]";
const FROM = "staging";
const TO = "prod";

export interface Args { outputsFile?: string; root: string; now: Date }

function parseArgs(argv: string[]): Args {
  const args: Args = { root: ROOT, now: new Date() };
  const value = (i: number) => {
    const v = argv[i];
    if (v === undefined || v === "" || v.startsWith("--")) throw new Error(`${argv[i - 1]} needs a value (${USAGE})`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--staging-outputs") args.outputsFile = path.resolve(value(++i));
    else if (a === "--root") args.root = path.resolve(value(++i));
    // The decision as of another time: to replay a recorded decision (tests, an audit).
    else if (a === "--now") {
      const t = value(++i);
      if (Number.isNaN(Date.parse(t))) throw new Error(`--now: '${t}' is not a time (ISO 8601, such as 2026-12-01T06:00:00Z)`);
      args.now = new Date(t);
    } else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (${USAGE})`);
  }
  return args;
}

/** A stack file's settings, validated as the program would (secure values as placeholders). */
export function stackSettings(stack: string, root: string): StackSettings {
  let config: Record<string, string>;
  try { ({ config } = readStackFile(stack, root)); } catch (e) { throw new Refusal((e as Error).message); }
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (!key.startsWith(`${PROJECT}:`)) continue;
    try { raw[key.slice(PROJECT.length + 1)] = JSON.parse(value); } catch { raw[key.slice(PROJECT.length + 1)] = value; }
  }
  try {
    return parseSettings(raw, stack);
  } catch (e) {
    if (e instanceof ConfigError) throw new Refusal(`Pulumi.${stack}.yaml is invalid: ${e.problems[0]}${e.problems.length > 1 ? ` (and ${e.problems.length - 1} more: npm start -- --stack ${stack})` : ""}`);
    throw e;
  }
}

function readOutputs(file: string | undefined, root: string): unknown {
  let text: string;
  if (file) {
    try { text = fs.readFileSync(file, "utf8"); } catch (e) { throw new Refusal(`cannot read staging outputs ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  } else {
    // Plain outputs only: nothing promotion reads is secret, so no --show-secrets.
    const r = spawnSync("pulumi", ["stack", "output", "--stack", FROM, "--json"], { cwd: root, encoding: "utf8" });
    if (r.error) throw new Refusal(`cannot run 'pulumi stack output --stack ${FROM} --json' (${(r.error as NodeJS.ErrnoException).code}): install the Pulumi CLI (.pulumi-version) or pass --staging-outputs FILE`);
    if (r.status !== 0) throw new Refusal(`'pulumi stack output --stack ${FROM} --json' failed: ${(r.stderr || r.stdout).trim().split("\n").pop()}`);
    text = r.stdout;
    file = `pulumi stack output --stack ${FROM} --json`;
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch { throw new Refusal(`staging outputs ${file}: not JSON (expected \`pulumi stack output --stack ${FROM} --json\`)`); }
  const o = json as { resources?: unknown; outputs?: unknown; stack?: unknown };
  if (o && Array.isArray(o.resources) && typeof o.outputs === "object") {
    throw new Refusal(`${file} is an offline preview's plan.json, not staging's stack outputs: pass what \`pulumi stack output --stack ${FROM} --json\` prints, or the preview's outputs.json beside it (${path.join(path.dirname(file), "outputs.json")})`);
  }
  return json;
}

/** Outputs whose times are the offline preview's mocks' (out/staging/outputs.json), not a real staging's. */
function mocked(json: unknown): boolean {
  const o = json as { releaseVerified?: { at?: unknown }; restoreRehearsal?: { at?: unknown } } | null;
  return o?.restoreRehearsal?.at === MOCK_REHEARSAL_AT || o?.releaseVerified?.at === MOCK_VERIFIED_AT;
}

/** The promotion itself: the lines to print, or a Refusal. Exported for the tests. */
export function promoteRelease(args: Args): string {
  const raw = readOutputs(args.outputsFile, args.root);
  const outputs = readStagingOutputs(raw);
  const staging = stackSettings(FROM, args.root);
  const prod = stackSettings(TO, args.root);
  // The offline preview's outputs carry the mocks' fixed times: say so, on success and refusal.
  const fromMocks = mocked(raw)
    ? `promote: note: these outputs come from the offline preview's mocks (rehearsal at ${MOCK_REHEARSAL_AT}, verify at ${MOCK_VERIFIED_AT}), not from a real staging\n`
    : "";
  let basis: string;
  try {
    basis = checkPromotion(outputs, { version: staging.release.version, artifact: releaseArtifactOutput(staging.release.artifact) }, args.now, prod.promotion.maxRehearsalAgeDays);
  } catch (e) {
    if (e instanceof Refusal && fromMocks) throw new Refusal(`${e.message} (the mocks' fixed times: replay with --now ${MOCK_NOW})`);
    throw e;
  }
  const diff = writeReleaseFile(TO, args.root, { version: staging.release.version, artifact: staging.release.artifact });
  if (!diff) return `${fromMocks}promote: ${basis}\npromote: Pulumi.${TO}.yaml already names release ${staging.release.version}; nothing to change\n`;
  return `${fromMocks}promote: ${basis}\n${diff}promote: wrote release ${staging.release.version} into Pulumi.${TO}.yaml; next: pulumi up --stack ${TO}\n`;
}

/**
 * Sets release.version and release.artifact in Pulumi.<stack>.yaml (comments kept). The edited file
 * must still be a valid stack; otherwise it is put back. Returns the unified diff, "" when the file
 * named that release already (npm run promote and npm run artifact --publish).
 */
export function writeReleaseFile(stack: string, root: string, release: StackRelease): string {
  const file = path.join(root, `Pulumi.${stack}.yaml`);
  const before = fs.readFileSync(file, "utf8");
  const after = writeRelease(before, release, path.basename(file));
  if (after === before) return "";
  fs.writeFileSync(file, after);
  try { stackSettings(stack, root); } catch (e) { fs.writeFileSync(file, before); throw e; }
  return unifiedDiff(before, after, `a/Pulumi.${stack}.yaml`, `b/Pulumi.${stack}.yaml`);
}

function main(): void {
  let args: Args;
  try { args = parseArgs(process.argv.slice(2)); } catch (e) {
    console.error(`promote: ${(e as Error).message}`);
    process.exit(2);
  }
  try {
    process.stdout.write(promoteRelease(args));
  } catch (e) {
    console.error(e instanceof Refusal ? `promote: refused: ${e.message}` : `promote: ${(e as Error).message ?? String(e)}`);
    process.exit(1);
  }
}

if (require.main === module) main();
