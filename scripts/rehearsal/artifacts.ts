// Release tarballs of the sample Django app (test/fixtures/dusangire) for deployment rehearsals:
// a good release, an upgrade, and three ways a release goes wrong. Each release is the base app
// with overlays copied over it in order (test/fixtures/dusangire-overlays/<name>/, mirroring the
// project's paths), built into an artifact by `npm run artifact`'s library (scripts/release/artifact.ts).
//
//   node -r esbuild-register scripts/rehearsal/artifacts.ts <outDir>
//
// writes <outDir>/nourish-link-<version>.tar.gz (+ .sha256, sha256sum format) and prints
// `<version> <sha256> <file>` per release. Archives are deterministic: the same sources give the
// same bytes (scripts/release/pack.ts); 1.0.0 is byte for byte what
// `npm run artifact -- --app test/fixtures/dusangire --version 1.0.0` builds.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildArtifact } from "../release/artifact";
import { sha256File } from "../release/pack";

export { sha256File };
export const FIXTURE_DIR = path.resolve(__dirname, "..", "..", "test", "fixtures", "dusangire");
export const OVERLAYS_DIR = path.resolve(FIXTURE_DIR, "..", "dusangire-overlays");

export type ArtifactName = "v1" | "v2" | "bad-migration" | "bad-health" | "irreversible" | "bad-smoke" | "deploy-warning";

export interface Release {
  version: string;
  name: ArtifactName;
  description: string;
  /** Overlay directories under OVERLAYS_DIR, applied in order over the base app. */
  overlays: string[];
}

export interface Artifact {
  version: string;
  name: ArtifactName;
  description: string;
  /** Absolute path of nourish-link-<version>.tar.gz. */
  file: string;
  sha256: string;
}

export const RELEASES: readonly Release[] = [
  {
    version: "1.0.0", name: "v1", overlays: [],
    description: "the base app: menu, orders, health; migrations 0001 (schema) and 0002 (seeds 3 menu items)",
  },
  {
    version: "1.1.0", name: "v2", overlays: ["notes"],
    description: "upgrade: Order.notes (0003, reversible AddField); POST /orders/ accepts notes",
  },
  {
    version: "1.2.0", name: "bad-migration", overlays: ["notes", "delivery-slot", "failing-0005"],
    description: "1.1.0 + 0004 (reversible AddField Order.delivery_slot) + 0005, which PostgreSQL rejects: migrate exits non-zero with 0004 applied",
  },
  {
    version: "1.2.1", name: "bad-health", overlays: ["notes", "delivery-slot", "xff-health-bug"],
    description: "1.1.0 + 0004 (as 1.2.0's); /health/ answers 500 when the request has X-Forwarded-For (through nginx), 200 direct to gunicorn",
  },
  {
    version: "1.3.0", name: "irreversible", overlays: ["notes", "irreversible-0004"],
    description: "1.1.0 + 0004, a RunPython without reverse (rounds prices): migrating below 0004 raises IrreversibleError",
  },
];

/** Releases the smoke-check tests build (test/smoke.test.ts), not drilled by the rehearsal. */
export const SMOKE_RELEASES: readonly Release[] = [
  { version: "1.0.1", name: "bad-smoke", overlays: ["failing-smoke"], description: "1.0.0 whose smoke command fails: orders cannot be placed (health and checks pass)" },
  { version: "1.0.2", name: "deploy-warning", overlays: ["deploy-warning"], description: "1.0.0 whose check --deploy warns meals.W001" },
];

/** Never shipped: bytecode (a local `manage.py` run leaves some). */
const notBytecode = (rel: string): boolean => !rel.split(path.sep).includes("__pycache__") && !rel.endsWith(".pyc");

function copyTree(from: string, to: string, filter: (rel: string) => boolean = () => true): void {
  if (!fs.existsSync(from)) throw new Error(`missing fixture directory ${from}`);
  fs.cpSync(from, to, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(from, src);
      return rel === "" || filter(rel);
    },
  });
}

/** The release's source tree (base + overlays + VERSION) in `dir`, which must not exist. */
export function stageRelease(release: Release, dir: string): void {
  copyTree(FIXTURE_DIR, dir, notBytecode);
  for (const overlay of release.overlays) copyTree(path.join(OVERLAYS_DIR, overlay), dir, notBytecode);
  fs.writeFileSync(path.join(dir, "VERSION"), `${release.version}\n`);
}

/** Builds every release into outDir (created if missing); returns them in RELEASES order. */
export function buildArtifacts(outDir: string, releases: readonly Release[] = RELEASES): Artifact[] {
  const out = path.resolve(outDir);
  fs.mkdirSync(out, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-artifacts-"));
  try {
    return releases.map((release) => {
      const stage = path.join(work, release.version);
      stageRelease(release, stage);
      const { file, sha256 } = buildArtifact({ source: stage, version: release.version, outDir: out });
      return { version: release.version, name: release.name, description: release.description, file, sha256 };
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The releases the committed stack files (and test/fixtures/promotion) name: the base sample app
 * as these versions, what `npm run artifact -- --app test/fixtures/dusangire --version V` builds.
 */
export const STACK_EXAMPLE_VERSIONS = ["1.4.1", "1.4.2"] as const;

/** Every artifact the repository's fixtures have: the rehearsal's releases, then the stack examples. */
export function buildFixtureArtifacts(outDir: string): { version: string; file: string; sha256: string }[] {
  const out = path.resolve(outDir);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "nourish-artifacts-"));
  try {
    const stage = path.join(work, "app");
    copyTree(FIXTURE_DIR, stage, notBytecode);
    const examples = STACK_EXAMPLE_VERSIONS.map((version) => buildArtifact({ source: stage, version, outDir: out }));
    return [...buildArtifacts(out), ...examples];
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const outDir = process.argv[2];
  if (!outDir || process.argv.length > 3) {
    process.stderr.write("usage: node -r esbuild-register scripts/rehearsal/artifacts.ts <outDir>\n");
    process.exit(2);
  }
  for (const a of buildArtifacts(outDir)) process.stdout.write(`${a.version} ${a.sha256} ${a.file}\n`);
}
