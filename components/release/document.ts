// The stack's one SSM Command document (schema 2.2, aws:runShellScript): how a workstation or CI
// runs `nourishctl <verb>` on a host (DESIGN.md, "Interfaces" 5). Pure: config in, JSON out.
//
// SSM substitutes each `{{ name }}` TEXTUALLY into the script before running it as root. What
// keeps that safe is the parameters' allowedValues/allowedPattern, which SSM checks before it
// sends anything: every pattern excludes whitespace, quotes, `$`, backticks, backslashes, `;`,
// `|`, `&`, `<`, `>`, `(`, `)`, braces and a leading `-`, so a value substituted inside "double
// quotes" is one inert word. The script substitutes each parameter exactly once, into a variable
// assignment at its top, and uses only "$variables" afterwards; the verb picks a fixed nourishctl
// argv. The tooling bucket and region are rendered in, never parameters: whoever may send the
// document can choose a toolingHash, but only among what the stack itself uploaded. Where a
// release comes from is not a parameter either: release-fetch takes a version, and the host
// fetches what the release source the stack installed with the tooling names (source.ts).
import { NOURISHCTL_LIB_PATH, NOURISHCTL_PATH } from "../hosts/user-data";
import { SEMVER } from "./patterns";
import { RELEASE_SOURCE_PATH, RELEASE_SOURCE_TOOLING_FILE } from "./source";

/** What a sender may ask for: each verb is one fixed nourishctl invocation. */
export const VERBS = [
  "tooling-install", "create-app-role", "backup", "release-fetch", "release-migrate", "release-collectstatic", "release-switch", "release-verify",
  "rollback", "rollback-keep-schema", "rollback-database-restored", "restore-replace-live",
  // Staging's restore rehearsal (components/rehearsal): the db host's half, then the app host's.
  "restore-rehearsal", "restore-rehearsal-verify",
] as const;
export type Verb = (typeof VERBS)[number];

/** `^$|^…$`: empty (the verb does not use it) or exactly one value of that shape. */
const optional = (re: string) => new RegExp(`^$|^${re}$`);

/** The allowedPattern of every parameter but the verb, as JavaScript regexes (tests run them). */
export const PARAMETER_PATTERNS = {
  // release.version's own pattern (config.ts).
  version: optional(SEMVER),
  sha256: optional("[0-9a-f]{64}"),
  // BK_KEY_RE in scripts/host/lib/backup.sh.
  backupKey: optional("dumps/(daily|monthly)/db_backup_[0-9]{8}_[0-9]{6}\\.(dump|sqlite3)"),
  toolingHash: optional("[0-9a-f]{64}"),
} as const;
export type ParameterName = keyof typeof PARAMETER_PATTERNS;
export const PARAMETER_NAMES = Object.keys(PARAMETER_PATTERNS) as ParameterName[];

export type DocumentParams = { verb: Verb } & Partial<Record<ParameterName, string>>;

const DESCRIPTIONS: Record<ParameterName, string> = {
  version: "release version (semantic version); release-fetch fetches it from where the stack's release source says",
  sha256: "the backup's SHA-256, 64 hex digits (restore-rehearsal)",
  backupKey: "backup key, dumps/daily|monthly/db_backup_YYYYMMDD_HHMMSS.dump (release-switch, restore-replace-live, restore-rehearsal)",
  toolingHash: "the host tooling's content hash: SHA-256 of its manifest (tooling-install)",
};

/** Why SSM would refuse these parameters (InvalidParameters), or undefined when it accepts them. */
export function parameterProblem(params: DocumentParams): string | undefined {
  if (!(VERBS as readonly string[]).includes(params.verb)) return `verb ${JSON.stringify(params.verb)} is not one of ${VERBS.join(", ")}`;
  for (const [k, v] of Object.entries(params)) {
    if (k === "verb") continue;
    if (!(k in PARAMETER_PATTERNS)) return `${k} is not a parameter of the document`;
    if (typeof v !== "string" || !PARAMETER_PATTERNS[k as ParameterName].test(v)) return `${k} ${JSON.stringify(v)} does not match its allowedPattern`;
  }
  return undefined;
}

export interface DocumentSettings {
  /** The private bucket the stack uploads tooling to (HostTooling). */
  toolingBucket: string;
  region: string;
  /** aws:runShellScript's own timeout; the step client waits at most this long too. */
  timeoutSeconds: number;
}

/** Where a tooling version lives in its bucket: manifest, files (as scripts/host), and the pointer first boot reads. */
export const toolingPrefix = (hash: string) => `tooling/${hash}`;
export const TOOLING_POINTER_KEY = "tooling/current";
export const TOOLING_MANIFEST = "manifest.sha256";

/**
 * POSIX sh that installs the host tooling version `$hash` (a variable set before it runs) from
 * the bucket: the manifest first, refused unless its SHA-256 is the hash; then every file,
 * `sha256sum --check --strict` against the manifest; then the role's libraries (their
 * `# nourishctl-roles:` line, as roleLibs reads it) and the CLI last, removing libraries this
 * version no longer has. The only tooling installer: first boot and the tooling-install verb run
 * it. NOURISH_ROOT (tests, rehearsal) installs into a sandbox root as the caller; S3_ENDPOINT
 * aims the CLI at a local S3.
 */
export function toolingInstallScript(bucket: string, region: string): string[] {
  const src = `s3://${bucket}/tooling/$hash`;
  return [
    'root="${NOURISH_ROOT:-}"',
    's3() { if [ -n "${S3_ENDPOINT:-}" ]; then aws --endpoint-url "$S3_ENDPOINT" s3 "$@"; else aws s3 "$@"; fi; }',
    'inst() { if [ -n "$root" ]; then install "$@"; else install -o root -g root "$@"; fi; }',
    'role=$(grep -E \'^ROLE=(app|db)$\' "$root/etc/nourish-link/host.env" | cut -d= -f2) || true',
    '[ -n "$role" ] || fail "$root/etc/nourish-link/host.env names no ROLE=app or ROLE=db"',
    "stage=$(mktemp -d)",
    "trap 'rm -rf \"$stage\"' EXIT",
    `s3 cp --only-show-errors --region ${region} "${src}/${TOOLING_MANIFEST}" "$stage/${TOOLING_MANIFEST}" >&2 || fail "cannot download ${src}/${TOOLING_MANIFEST}"`,
    `got=$(sha256sum "$stage/${TOOLING_MANIFEST}" | cut -d' ' -f1)`,
    `[ "$got" = "$hash" ] || fail "tooling manifest ${src}/${TOOLING_MANIFEST} has sha256 $got, expected $hash; nothing installed"`,
    // The manifest names our files only: the CLI and lib/NAME.sh, nothing that could escape the stage.
    `if grep -Evq '^[0-9a-f]{64}  (nourishctl|lib/[a-z0-9_-]+\\.sh|${RELEASE_SOURCE_TOOLING_FILE.replace(/\./g, "\\.")})$' "$stage/${TOOLING_MANIFEST}"; then fail "tooling manifest ${src}/${TOOLING_MANIFEST} names a file that is not nourishctl, lib/NAME.sh or ${RELEASE_SOURCE_TOOLING_FILE}"; fi`,
    'mkdir "$stage/host"',
    `s3 cp --recursive --only-show-errors --region ${region} "${src}/host/" "$stage/host/" >&2 || fail "cannot download ${src}/host/"`,
    `( cd "$stage/host" && sha256sum --check --strict --quiet "$stage/${TOOLING_MANIFEST}" ) >&2 || fail "the tooling files under ${src}/host/ do not match its manifest; nothing installed"`,
    `libdir="$root${NOURISHCTL_LIB_PATH}"`,
    'inst -d -m 0755 "$libdir"',
    'keep=" "',
    `sed -n 's|^[0-9a-f]*  lib/||p' "$stage/${TOOLING_MANIFEST}" > "$stage/libs"`,
    "while read -r f; do",
    '  roles=$(sed -n \'s/^# nourishctl-roles: //p\' "$stage/host/lib/$f" | tr \', \' \'  \')',
    '  case " $roles " in "  "|*" $role "*) ;; *) continue ;; esac',
    '  inst -m 0644 "$stage/host/lib/$f" "$libdir/$f"',
    '  keep="$keep$f "',
    'done < "$stage/libs"',
    // The release source the stack wrote into this version: an app host fetches only what it names.
    `if [ "$role" = app ] && [ -f "$stage/host/${RELEASE_SOURCE_TOOLING_FILE}" ]; then`,
    `  inst -d -m 0755 "$root${RELEASE_SOURCE_PATH.slice(0, RELEASE_SOURCE_PATH.lastIndexOf("/"))}"`,
    `  inst -m 0644 "$stage/host/${RELEASE_SOURCE_TOOLING_FILE}" "$root${RELEASE_SOURCE_PATH}"`,
    "fi",
    // The CLI last: it sources the libraries, so a new CLI never meets old ones.
    `inst -d -m 0755 "$root${NOURISHCTL_PATH.slice(0, NOURISHCTL_PATH.lastIndexOf("/"))}"`,
    `inst -m 0755 "$stage/host/nourishctl" "$root${NOURISHCTL_PATH}"`,
    'for old in "$libdir"/*.sh; do',
    '  [ -e "$old" ] || continue',
    '  case "$keep" in *" ${old##*/} "*) ;; *) rm -f "$old" ;; esac',
    "done",
    'echo "nourish-link: tooling $hash installed for $role:$keep"',
  ];
}

/** The script of the document's one step, with `{{ name }}` where SSM substitutes each parameter. */
export function documentScript(s: Pick<DocumentSettings, "toolingBucket" | "region">): string[] {
  return [
    "set -eu",
    // The only places parameters are substituted: one double-quoted assignment each.
    'verb="{{ verb }}"',
    ...PARAMETER_NAMES.map((p) => `${p}="{{ ${p} }}"`),
    'fail() { echo "nourish-link: $verb: $*" >&2; exit 1; }',
    'need() { [ -n "$2" ] || fail "needs the parameter $1"; }',
    `ctl="\${NOURISH_ROOT:-}${NOURISHCTL_PATH}"`,
    'case "$verb" in',
    "  tooling-install)",
    '    need toolingHash "$toolingHash"',
    // A new host's first boot installs the tooling too: let it finish first (2: recoverable errors).
    "    rc=0; cloud-init status --wait >/dev/null 2>&1 || rc=$?",
    '    if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then fail "this host\'s first boot did not finish cleanly (cloud-init status $rc); see /var/log/cloud-init-output.log"; fi',
    '    hash="$toolingHash"',
    ...toolingInstallScript(s.toolingBucket, s.region).map((l) => `    ${l}`),
    "    ;;",
    '  create-app-role) exec "$ctl" create-app-role ;;',
    '  backup) exec "$ctl" backup ;;',
    '  release-fetch) need version "$version"; exec "$ctl" release fetch "$version" ;;',
    '  release-migrate) need version "$version"; exec "$ctl" release migrate "$version" ;;',
    '  release-collectstatic) need version "$version"; exec "$ctl" release collectstatic "$version" ;;',
    '  release-switch) need version "$version"; need backupKey "$backupKey"; exec "$ctl" release switch "$version" --pre-release-backup "$backupKey" ;;',
    '  release-verify) need version "$version"; exec "$ctl" release verify "$version" ;;',
    '  rollback) if [ -n "$version" ]; then exec "$ctl" rollback "$version"; fi; exec "$ctl" rollback ;;',
    '  rollback-keep-schema) need version "$version"; exec "$ctl" rollback "$version" --keep-schema ;;',
    '  rollback-database-restored) need version "$version"; exec "$ctl" rollback "$version" --database-restored ;;',
    '  restore-replace-live) need backupKey "$backupKey"; exec "$ctl" restore --key "$backupKey" --replace-live --yes ;;',
    '  restore-rehearsal) need backupKey "$backupKey"; need sha256 "$sha256"; exec "$ctl" restore-rehearsal --key "$backupKey" --sha256 "$sha256" ;;',
    '  restore-rehearsal-verify) exec "$ctl" restore-rehearsal-verify ;;',
    '  *) fail "is not a verb of this document" ;;',
    "esac",
  ];
}

/** The document's content (aws.ssm.Document `content`, documentFormat JSON). */
export function renderDocument(s: DocumentSettings): Record<string, unknown> {
  const parameters: Record<string, unknown> = {
    verb: { type: "String", description: "the nourishctl procedure to run", allowedValues: [...VERBS] },
  };
  for (const p of PARAMETER_NAMES) {
    parameters[p] = { type: "String", description: DESCRIPTIONS[p], default: "", allowedPattern: PARAMETER_PATTERNS[p].source };
  }
  return {
    schemaVersion: "2.2",
    description: "NOURISH LINK: run one nourishctl procedure on this host (releases, rollbacks, tooling)",
    parameters,
    mainSteps: [{
      action: "aws:runShellScript",
      name: "nourishctl",
      inputs: { timeoutSeconds: String(s.timeoutSeconds), runCommand: documentScript(s) },
    }],
  };
}

/**
 * The script SSM runs for these parameters: the parameters checked as SSM checks them (throws
 * the reason it would refuse them), then every `{{ name }}` replaced by its value, unset ones by
 * their default "". What the rehearsal and the tests execute.
 */
export function substitute(doc: Record<string, unknown>, params: DocumentParams): string {
  const problem = parameterProblem(params);
  if (problem) throw new Error(`InvalidParameters: ${problem}`);
  const step = (doc.mainSteps as { inputs: { runCommand: string[] } }[])[0];
  const values: Record<string, string> = { ...Object.fromEntries(PARAMETER_NAMES.map((p) => [p, ""])), ...params };
  return step.inputs.runCommand.join("\n").replace(/\{\{ *([A-Za-z0-9]+) *\}\}/g, (m, name: string) => (name in values ? values[name] : m)) + "\n";
}
