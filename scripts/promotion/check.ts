// What promotion decides, from staging's stack outputs (`pulumi stack output --stack staging
// --json`) and the release this commit's Pulumi.staging.yaml names. Pure: every refusal is a
// Refusal whose message is the one line `npm run promote` prints.
//
// Staging's outputs (index.ts; restoreRehearsal comes from the RestoreRehearsal component):
//   releaseVersion    "1.4.2"
//   releaseArtifact   { kind: "s3", key, sha256 } | { kind: "git", url, commit, tag? }
//   releaseVerified   { ok, version, at }                          at: ISO 8601 UTC
//   restoreRehearsal  { ok, at, backupKey, backupSha256, seconds, backupAgeSeconds }
import { ReleaseArtifactOutput } from "../../components/release/steps";

export class Refusal extends Error {}

export interface ReleaseVerifiedOutput { ok: boolean; version: string; at: string }
export interface RestoreRehearsalOutput { ok: boolean; at: string; backupKey: string; backupSha256: string; seconds: number; backupAgeSeconds: number }

export interface StagingOutputs {
  releaseVersion: string;
  releaseArtifact: ReleaseArtifactOutput;
  releaseVerified: ReleaseVerifiedOutput;
  restoreRehearsal: RestoreRehearsalOutput;
}

/** The release being promoted: the version and artifact Pulumi.staging.yaml names at this commit. */
export interface PromotedRelease {
  version: string;
  artifact: ReleaseArtifactOutput;
}

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** What `pulumi stack output --json` prints for a secret without --show-secrets. */
const SECRET_PLACEHOLDER = "[secret]";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function field(outputs: Obj, name: string, hint: string): unknown {
  const v = outputs[name];
  if (v === undefined || v === null) throw new Refusal(`staging exports no ${name}: ${hint}`);
  if (v === SECRET_PLACEHOLDER) throw new Refusal(`staging's ${name} is a secret: it must be a plain output (promotion reads it without --show-secrets)`);
  return v;
}

function shape(name: string, ok: boolean, expected: string): void {
  if (!ok) throw new Refusal(`staging's ${name} is not ${expected}`);
}

function time(name: string, v: unknown): string {
  shape(name, typeof v === "string" && ISO_UTC.test(v) && !Number.isNaN(Date.parse(v)), "an ISO 8601 UTC time (YYYY-MM-DDTHH:MM:SSZ)");
  return v as string;
}

/** Reads and checks the four outputs promotion needs; refuses naming the first one missing or malformed. */
export function readStagingOutputs(json: unknown): StagingOutputs {
  if (!isObj(json)) throw new Refusal("staging's outputs are not a JSON object (expected `pulumi stack output --stack staging --json`)");
  const upgrade = "deploy staging with this package first (pulumi up --stack staging)";
  const releaseVersion = field(json, "releaseVersion", upgrade);
  shape("releaseVersion", typeof releaseVersion === "string" && releaseVersion !== "", "a version");

  const a = field(json, "releaseArtifact", upgrade);
  shape("releaseArtifact", isObj(a) && (
    (a.kind === "s3" && typeof a.key === "string" && typeof a.sha256 === "string" && SHA256.test(a.sha256)) ||
    (a.kind === "git" && typeof a.url === "string" && typeof a.commit === "string" && /^[0-9a-f]{40}$/.test(a.commit) && (a.tag === undefined || typeof a.tag === "string"))
  ), "{ kind: s3, key, sha256 } or { kind: git, url, commit, tag? }");

  const v = field(json, "releaseVerified", upgrade);
  shape("releaseVerified", isObj(v) && typeof v.ok === "boolean" && typeof v.version === "string", "{ ok, version, at }");
  const verified = v as Obj;
  if (verified.ok) time("releaseVerified.at", verified.at);

  const r = field(json, "restoreRehearsal", "staging has never run a restore rehearsal (rehearsal.enabled on staging, then pulumi up --stack staging)");
  shape("restoreRehearsal", isObj(r) && typeof r.ok === "boolean", "{ ok, at, backupKey, backupSha256, seconds, backupAgeSeconds }");
  const rehearsal = r as Obj;
  time("restoreRehearsal.at", rehearsal.at);

  return {
    releaseVersion: releaseVersion as string,
    releaseArtifact: a as ReleaseArtifactOutput,
    releaseVerified: verified as unknown as ReleaseVerifiedOutput,
    restoreRehearsal: rehearsal as unknown as RestoreRehearsalOutput,
  };
}

export function describeArtifact(a: ReleaseArtifactOutput): string {
  return a.kind === "s3" ? `sha256 ${a.sha256} (${a.key})` : `git commit ${a.commit} of ${a.url}${a.tag ? ` (tag ${a.tag})` : ""}`;
}

function sameArtifact(a: ReleaseArtifactOutput, b: ReleaseArtifactOutput): boolean {
  if (a.kind === "s3" && b.kind === "s3") return a.sha256 === b.sha256 && a.key === b.key;
  if (a.kind === "git" && b.kind === "git") return a.url === b.url && a.commit === b.commit && (a.tag ?? "") === (b.tag ?? "");
  return false;
}

/** A clock a little ahead of ours is tolerated; a time further ahead is not evidence of anything. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 86400 * 1000;

/**
 * Refuses unless staging runs `promoted` (same version, same artifact checksum), that release
 * verified healthy, and the last restore rehearsal succeeded within `maxRehearsalAgeDays` of `now`.
 * Returns what the decision rests on, for the log.
 */
export function checkPromotion(o: StagingOutputs, promoted: PromotedRelease, now: Date, maxRehearsalAgeDays: number): string {
  const v = o.releaseVerified;
  if (!v.ok) throw new Refusal(`staging's release ${v.version || o.releaseVersion} did not verify healthy (releaseVerified.ok is false): fix staging before promoting`);
  if (v.version !== o.releaseVersion) throw new Refusal(`staging verified release ${v.version} but runs ${o.releaseVersion}: run pulumi up --stack staging until its release verifies`);
  if (Date.parse(v.at) > now.getTime() + CLOCK_SKEW_MS) throw new Refusal(`staging's releaseVerified.at ${v.at} is in the future: check the clocks`);
  if (o.releaseVersion !== promoted.version) {
    throw new Refusal(`staging runs release ${o.releaseVersion}, not ${promoted.version} (the release Pulumi.staging.yaml names): deploy ${promoted.version} to staging first (pulumi up --stack staging)`);
  }
  if (!sameArtifact(o.releaseArtifact, promoted.artifact)) {
    throw new Refusal(`staging's release ${o.releaseVersion} runs artifact ${describeArtifact(o.releaseArtifact)}, not the one being promoted: ${describeArtifact(promoted.artifact)} (Pulumi.staging.yaml); deploy it to staging first`);
  }
  const r = o.restoreRehearsal;
  if (!r.ok) throw new Refusal(`staging's last restore rehearsal failed (${r.at}): a release is promoted only while restores are proven (see docs/RUNBOOK.md)`);
  const at = Date.parse(r.at);
  if (at > now.getTime() + CLOCK_SKEW_MS) throw new Refusal(`staging's restoreRehearsal.at ${r.at} is in the future: check the clocks`);
  const ageDays = (now.getTime() - at) / DAY_MS;
  if (ageDays > maxRehearsalAgeDays) {
    throw new Refusal(`staging's last successful restore rehearsal (${r.at}) is ${ageDays.toFixed(1)} days old, more than nourish-link:promotion.maxRehearsalAgeDays (${maxRehearsalAgeDays}): rehearse again on staging`);
  }
  return `staging runs ${o.releaseVersion} (${describeArtifact(o.releaseArtifact)}), verified healthy at ${v.at}; restore rehearsal succeeded at ${r.at} (${ageDays.toFixed(1)} days ago, at most ${maxRehearsalAgeDays})`;
}
