// Where a release comes from, as the hosts learn it: /etc/nourish-link/release-source.env, written
// by the stack from release.version and release.artifact and nothing else. It travels with the
// host tooling (a file of the tooling version, so its SHA-256 is in the manifest the hosts check,
// and only `pulumi up` can write it), and `nourishctl release fetch VERSION` fetches only what it
// names (scripts/host/lib/release.sh). The SSM document carries the version alone (DESIGN.md,
// "Interfaces" 5). Pure: config in, file text out.
import { renderEnvFile } from "../hosts/env-file";
import type { Artifact } from "./steps";

/** On the app hosts. */
export const RELEASE_SOURCE_PATH = "/etc/nourish-link/release-source.env";
/** In a tooling version (tooling/<hash>/host/…), beside nourishctl and lib/. */
export const RELEASE_SOURCE_TOOLING_FILE = "etc/release-source.env";

/** The release the stack runs and its one artifact: an S3 object and its SHA-256, or a git commit (and tag). */
export function renderReleaseSource(version: string, artifact: Artifact): string {
  const where: Record<string, string> = artifact.type === "s3"
    ? { RELEASE_S3_BUCKET: artifact.bucket, RELEASE_S3_KEY: artifact.key, RELEASE_SHA256: artifact.sha256 }
    : { RELEASE_GIT_URL: artifact.url, RELEASE_COMMIT: artifact.commit, ...(artifact.tag ? { RELEASE_TAG: artifact.tag } : {}) };
  return renderEnvFile("release-source.env", { RELEASE_VERSION: version, ...where });
}
