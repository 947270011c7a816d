// Writes a release into a stack file (Pulumi.prod.yaml) and changes nothing else: every comment,
// blank line, key order and spacing stays byte for byte. The yaml Document API finds the nodes;
// their source ranges are replaced in the original text (re-printing the whole document would
// realign comments and drop spacing). Pure: text in, text out.
import { isMap, isScalar, parseDocument, Scalar, stringify, YAMLMap } from "yaml";
import { Refusal } from "./check";

/** The release written: version and artifact as the stack config spells them (bucket from the source stack's file). */
export interface StackRelease {
  version: string;
  artifact: { type: "s3"; bucket: string; key: string; sha256: string } | { type: "git"; url: string; commit: string; tag?: string };
}

const RELEASE_KEY = "nourish-link:release";

/** A scalar as YAML text, in the node's own quoting where it had one. */
function scalarText(value: string, node?: Scalar): string {
  if (node?.type === Scalar.QUOTE_DOUBLE) return JSON.stringify(value);
  if (node?.type === Scalar.QUOTE_SINGLE) return `'${value.replace(/'/g, "''")}'`;
  // stringify quotes what would read back as another type (a hex checksum of digits only).
  return stringify(value).trimEnd();
}

/** The artifact as a block map at `indent` spaces (used only when its shape changes). */
function artifactBlock(a: StackRelease["artifact"], indent: number): string {
  const pad = " ".repeat(indent);
  const entries = a.type === "s3"
    ? [["type", "s3"], ["bucket", a.bucket], ["key", a.key], ["sha256", a.sha256]]
    : [["type", "git"], ["url", a.url], ["commit", a.commit], ...(a.tag ? [["tag", a.tag]] : [])];
  return entries.map(([k, v], i) => `${i ? pad : ""}${k}: ${scalarText(v)}`).join("\n");
}

/** Sets release.version and release.artifact in a stack file's text; refuses a file it cannot edit in place. */
export function writeRelease(text: string, given: StackRelease, file = "Pulumi.prod.yaml"): string {
  // An absent optional field (a git tag) is no key at all.
  const release = { ...given, artifact: Object.fromEntries(Object.entries(given.artifact).filter(([, v]) => v !== undefined)) as StackRelease["artifact"] };
  const doc = parseDocument(text, { keepSourceTokens: true });
  if (doc.errors.length) throw new Refusal(`${file}: not valid YAML: ${doc.errors[0].message.split("\n")[0]}`);
  const rel = doc.getIn(["config", RELEASE_KEY], true);
  if (!isMap(rel)) throw new Refusal(`${file}: has no ${RELEASE_KEY} map to write the release into`);
  const edits: { from: number; to: number; text: string }[] = [];
  const setScalar = (map: YAMLMap, key: string, value: string) => {
    const node = map.get(key, true);
    if (!isScalar(node) || !node.range) throw new Refusal(`${file}: ${RELEASE_KEY} has no plain ${key} value to replace`);
    if (node.value !== value) edits.push({ from: node.range[0], to: node.range[1], text: scalarText(value, node) });
  };
  setScalar(rel, "version", release.version);
  const art = rel.get("artifact", true);
  if (!isMap(art) || !art.range) throw new Refusal(`${file}: ${RELEASE_KEY} has no artifact map`);
  const keys = art.items.map((p) => String(isScalar(p.key) ? p.key.value : p.key));
  const wanted = Object.keys(release.artifact);
  const sameShape = art.get("type") === release.artifact.type && keys.length === wanted.length && wanted.every((k) => keys.includes(k)) && art.srcToken?.type === "block-map";
  if (sameShape) {
    for (const [k, v] of Object.entries(release.artifact)) if (k !== "type") setScalar(art, k, v as string);
  } else {
    // Another kind of artifact (or a tag added or dropped): the map is rewritten, in the same place.
    const lineStart = text.lastIndexOf("\n", art.range[0] - 1) + 1;
    const indent = art.range[0] - lineStart;
    // The block ends with its last value; a comment or blank line after it stays.
    const last = art.items[art.items.length - 1];
    const end = (isScalar(last.value) || isMap(last.value)) && last.value.range ? last.value.range[1] : art.range[1];
    edits.push({ from: art.range[0], to: end, text: artifactBlock(release.artifact, indent) });
  }
  let out = text;
  for (const e of edits.sort((a, b) => b.from - a.from)) out = out.slice(0, e.from) + e.text + out.slice(e.to);
  // What was written must read back as exactly that release.
  const check = (parseDocument(out).toJS() as { config?: Record<string, { version?: unknown; artifact?: unknown }> } | null)?.config?.[RELEASE_KEY];
  if (check?.version !== release.version || JSON.stringify(check?.artifact) !== JSON.stringify(release.artifact)) {
    throw new Refusal(`${file}: the rewritten file does not read back as release ${release.version}; nothing was written`);
  }
  return out;
}
