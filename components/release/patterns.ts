// Patterns that the stack config and the SSM document both enforce, in a module that imports
// nothing, so that config.ts stays a leaf (DESIGN.md, "Layers"). JavaScript regex sources,
// anchored by whoever uses them; each is also a valid allowedPattern for SSM.

/** A release version: a semantic version (release.version, the document's `version`). */
export const SEMVER = "(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?";
// A path segment never starts with `.` (no `.` or `..` segments) and never starts with `-`.
const SEGMENT = "[A-Za-z0-9_~+=][A-Za-z0-9._~+=-]*";
const S3_BUCKET = "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]";
const HOST = "[A-Za-z0-9][A-Za-z0-9.-]*";
const TAG_PART = "[A-Za-z0-9_][A-Za-z0-9_+-]*(\\.[A-Za-z0-9_+-]+)*";

/** Where a release may come from (release.artifact): no part of it can be read as an option or `..`. */
export const ARTIFACT_PATTERNS = {
  s3Object: new RegExp(`^s3://${S3_BUCKET}(/${SEGMENT})+$`),
  gitUrl: new RegExp(`^(https://${HOST}(:[0-9]+)?(/${SEGMENT})+|ssh://(git@)?${HOST}(:[0-9]+)?(/${SEGMENT})+|git@${HOST}:${SEGMENT}(/${SEGMENT})*)$`),
  tag: new RegExp(`^${TAG_PART}(/${TAG_PART})*$`),
} as const;

/** The only folder of the releases bucket anyone may read or publish to (components/releases). */
export const RELEASES_PREFIX = "releases/";
