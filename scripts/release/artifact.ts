// The release artifact of the Django app, as the app hosts install it (docs/RELEASES.md, "The app
// contract"): the app's files, VERSION, and a wheelhouse (wheels/) of every requirement the
// hosts' Debian packages do not provide, built with the hosts' Python and checked to install
// there; packed reproducibly (scripts/release/pack.ts). `npm run artifact` (scripts/artifact.ts)
// builds from a git checkout and publishes; the rehearsal's sample-app releases
// (scripts/rehearsal/artifacts.ts) are built here too.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ARTIFACT, RELEASE_PYTHON, SYSTEM_PYTHON_PACKAGES } from "../../components/app/contract";
import { SEMVER } from "../../components/release/patterns";
import { packTree } from "./pack";

/** What the app hosts run (components/hosts/index.ts picks Debian 12 x86_64 images; RELEASE_PYTHON is its python3). */
export const HOSTS = { os: "debian 12", machine: "x86_64", python: "3.11" } as const;

const HOST_PYTHON_SCRIPT = path.join(__dirname, "host_python.py");

export class ArtifactError extends Error {}

export interface BuildOptions {
  /** The app's files: a directory (and, from a checkout, the tracked files to take from it, relative). */
  source: string;
  files?: string[];
  version: string;
  outDir: string;
  /** A directory of wheels pip takes the requirements from (offline); without it, pip's index. */
  wheelSource?: string;
}

export interface BuiltArtifact {
  version: string;
  /** Absolute path of nourish-link-<version>.tar.gz (beside it, its .sha256 in sha256sum format). */
  file: string;
  sha256: string;
  /** The wheels it carries (file names under wheels/). */
  wheels: string[];
}

export const artifactFileName = (version: string): string => `nourish-link-${version}.tar.gz`;

/** Asks the hosts' Python (host_python.py); JSON back, or the one-line error it printed. */
function askPython<T>(args: string[]): T {
  const r = spawnSync(RELEASE_PYTHON, ["-I", HOST_PYTHON_SCRIPT, ...args], { encoding: "utf8" });
  if (r.error) throw new ArtifactError(`cannot run ${RELEASE_PYTHON} (${(r.error as NodeJS.ErrnoException).code}): the builder needs the hosts' Python (Debian 12's python3)`);
  if (r.status !== 0) throw new ArtifactError(r.stderr.trim().split("\n").pop() ?? `${RELEASE_PYTHON} failed`);
  return JSON.parse(r.stdout) as T;
}

/** Refuses unless this machine's RELEASE_PYTHON is the hosts' (same OS release, architecture, Python). */
let hostChecked = false;
export function checkHostPython(): void {
  if (hostChecked) return;
  const h = askPython<{ python: string; machine: string; os: string }>(["host"]);
  const want = `${HOSTS.os} ${HOSTS.machine} Python ${HOSTS.python}`;
  const got = `${h.os} ${h.machine} Python ${h.python}`;
  if (h.os !== HOSTS.os || h.machine !== HOSTS.machine || !`${h.python}.`.startsWith(`${HOSTS.python}.`)) {
    throw new ArtifactError(`${RELEASE_PYTHON} is ${got}, not the app hosts' ${want}: build the artifact on the hosts' platform (wheels must install there)`);
  }
  hostChecked = true;
}

interface Requirement { line: string; name: string; specifier: string; pinned: string | null; sha256: string[]; system: boolean | null; source: string }
/** A wheel file's name (canonical, as pip compares it), tags, and whether the hosts' pip installs it. */
interface WheelTags { file: string; name: string | null; tags: string[]; installs: boolean }

export function wheelTags(files: string[]): WheelTags[] {
  return files.length ? askPython<WheelTags[]>(["wheels", ...files.map((f) => path.basename(f))]) : [];
}

const lineOf = (r: Requirement): string => `requirements.txt line ${/\(line (\d+)\)/.exec(r.source)?.[1] ?? "?"}`;

/**
 * The requirements the artifact's wheelhouse must bring: those the hosts' Debian packages
 * (SYSTEM_PYTHON_PACKAGES) do not satisfy, each pinned with `==` and its sha256 hashes.
 */
export function requirementsToBring(requirementsFile: string): Requirement[] {
  const system = SYSTEM_PYTHON_PACKAGES.map((p) => p.requirement);
  const reqs = askPython<Requirement[]>(["requirements", requirementsFile, ...system]);
  const bring: Requirement[] = [];
  for (const r of reqs) {
    if (r.system === true) continue;
    const debian = SYSTEM_PYTHON_PACKAGES.find((p) => p.requirement.toLowerCase() === r.name);
    if (debian && r.system === null) {
      throw new ArtifactError(`${lineOf(r)}: ${r.line}: the hosts give it from Debian's ${debian.debian}, which is not installed here to check the version: apt-get install ${SYSTEM_PYTHON_PACKAGES.map((p) => p.debian).join(" ")}`);
    }
    if (!r.pinned || r.sha256.length === 0) {
      throw new ArtifactError(`${lineOf(r)}: '${r.line}' is not provided by the hosts' Debian packages, so the artifact brings it: pin it with == and give its --hash=sha256: (pip hash FILE, or pip-compile --generate-hashes)`);
    }
    bring.push(r);
  }
  return bring;
}

/** pip as the hosts' Python, ignoring this machine's pip configuration (config files, PIP_* variables). */
function pip(args: string[]): { status: number | null; out: string } {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PIP_")));
  const r = spawnSync(RELEASE_PYTHON, ["-m", "pip", ...args], {
    encoding: "utf8", env: { ...env, PIP_CONFIG_FILE: os.devNull, PIP_DISABLE_PIP_VERSION_CHECK: "1", PIP_NO_INPUT: "1", LC_ALL: "C" },
  });
  if (r.error) throw new ArtifactError(`cannot run ${RELEASE_PYTHON} -m pip (${(r.error as NodeJS.ErrnoException).code}): apt-get install python3-pip`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Builds stage/wheels from the requirements to bring; refuses a wheel that does not install on the hosts. */
function buildWheelhouse(stage: string, bring: Requirement[], wheelSource?: string): string[] {
  if (!bring.length) return [];
  const dir = path.join(stage, "wheels");
  const reqFile = path.join(stage, "..", "wheelhouse-requirements.txt");
  fs.writeFileSync(reqFile, bring.map((r) => [r.line, ...r.sha256.map((h) => `--hash=sha256:${h}`)].join(" ")).join("\n") + "\n");
  const source = wheelSource ? ["--no-index", "--find-links", path.resolve(wheelSource)] : [];
  // Prebuilt wheels only: a wheel pip built from an sdist would not have the hash requirements.txt pins.
  const r = pip(["wheel", "--no-deps", "--require-hashes", "--only-binary", ":all:", "--no-cache-dir", "--quiet", ...source, "--wheel-dir", dir, "-r", reqFile]);
  if (r.status !== 0) {
    // pip skips a wheel for another platform as if it were absent: name it.
    const offered = wheelSource && fs.existsSync(wheelSource) ? wheelTags(fs.readdirSync(wheelSource).filter((f) => f.endsWith(".whl"))) : [];
    for (const req of bring) {
      const ofReq = offered.filter((w) => w.name === req.name);
      const foreign = ofReq.filter((w) => !w.installs);
      if (foreign.length && foreign.length === ofReq.length) {
        throw new ArtifactError(`${lineOf(req)}: ${req.line}: ${foreign.map((w) => w.file).join(", ")} is for ${foreign.flatMap((w) => w.tags).join(" ")}, not the hosts' ${HOSTS.os} ${HOSTS.machine} Python ${HOSTS.python}; no wheel of it installs there`);
      }
    }
    const last = r.out.trim().split("\n").filter((l) => /ERROR|error/.test(l)).slice(-2).join(" ") || r.out.trim().split("\n").pop();
    throw new ArtifactError(`pip wheel failed for requirements.txt${wheelSource ? ` from ${wheelSource}` : ""}: ${last}`);
  }
  const built = fs.readdirSync(dir).sort();
  for (const w of wheelTags(built)) {
    if (!w.installs) throw new ArtifactError(`wheels/${w.file} is for ${w.tags.join(" ") || "no platform pip knows"}, not the hosts' ${HOSTS.os} ${HOSTS.machine} Python ${HOSTS.python}`);
  }
  return built;
}

/** Checks the staged app against the app contract (components/app/contract.ts). */
function checkContract(stage: string): void {
  for (const e of ARTIFACT.required) {
    if (!fs.statSync(path.join(stage, e.path), { throwIfNoEntry: false })?.isFile()) throw new ArtifactError(`the app has no ${e.path}: the app contract requires it (docs/RELEASES.md, "The app contract")`);
  }
  for (const e of [...ARTIFACT.forbidden, { path: "wheels/", rule: "the builder makes the wheelhouse" }]) {
    const p = path.join(stage, e.path.replace(/\/$/, ""));
    if (fs.existsSync(p) || fs.lstatSync(p, { throwIfNoEntry: false })) throw new ArtifactError(`the app ships ${e.path}: ${e.rule}`);
  }
}

/** Builds the release artifact into outDir; the same inputs give the same bytes. */
export function buildArtifact(o: BuildOptions): BuiltArtifact {
  if (!new RegExp(`^${SEMVER}$`).test(o.version)) throw new ArtifactError(`version '${o.version}' is not a semantic version such as 1.4.2 (release.version)`);
  checkHostPython();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-artifact-"));
  try {
    const stage = path.join(work, "app");
    if (o.files) {
      for (const f of o.files) {
        fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
        fs.cpSync(path.join(o.source, f), path.join(stage, f), { verbatimSymlinks: true });
      }
    } else {
      fs.cpSync(o.source, stage, { recursive: true, verbatimSymlinks: true });
    }
    checkContract(stage);
    const wheels = buildWheelhouse(stage, requirementsToBring(path.join(stage, "requirements.txt")), o.wheelSource);
    fs.writeFileSync(path.join(stage, "VERSION"), `${o.version}\n`);
    fs.mkdirSync(o.outDir, { recursive: true });
    const file = path.join(path.resolve(o.outDir), artifactFileName(o.version));
    const sha256 = packTree(stage, file);
    fs.writeFileSync(`${file}.sha256`, `${sha256}  ${path.basename(file)}\n`);
    return { version: o.version, file, sha256, wheels };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
