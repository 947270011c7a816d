// Reads Pulumi.<stack>.yaml the way the Pulumi CLI hands it to a program: every value as text
// (objects as JSON), plus the list of keys that hold secrets. Offline there is no passphrase or
// KMS to decrypt `secure:` values, so they become a placeholder that stays marked secret.
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { UNSAFE_KEYS, unsafeKeys } from "../../components/config";

export const ROOT = path.resolve(__dirname, "..", "..");
/** What a `secure:` value reads as in the offline preview. */
export const OFFLINE_SECRET = "offline-preview-placeholder-for-an-encrypted-secret-value";

export interface StackFileConfig {
  config: Record<string, string>;
  secretKeys: string[];
}

export function listStacks(root = ROOT): string[] {
  return fs.readdirSync(root)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

export function projectName(root = ROOT): string {
  const doc = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { name?: string };
  if (!doc?.name) throw new Error("Pulumi.yaml: missing project name");
  return doc.name;
}

function isSecure(v: unknown): v is { secure: string } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v;
}

/** Replaces nested `secure:` values; reports whether any was found (the whole key is then secret). */
function unwrapSecure(v: unknown): { value: unknown; secret: boolean } {
  if (isSecure(v)) return { value: OFFLINE_SECRET, secret: true };
  if (Array.isArray(v)) {
    const items = v.map(unwrapSecure);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (typeof v === "object" && v !== null) {
    let secret = false;
    const out: Record<string, unknown> = {};
    for (const [k, inner] of Object.entries(v)) {
      const r = unwrapSecure(inner);
      out[k] = r.value;
      secret ||= r.secret;
    }
    return { value: out, secret };
  }
  return { value: v, secret: false };
}

export function readStackFile(stack: string, root = ROOT): StackFileConfig {
  const file = path.join(root, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) {
    throw new Error(`unknown stack '${stack}': there is no Pulumi.${stack}.yaml (known stacks: ${listStacks(root).join(", ")})`);
  }
  let doc: { config?: Record<string, unknown> } | null;
  try {
    doc = parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`Pulumi.${stack}.yaml: not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  // Copied into plain objects below, `__proto__` would vanish (it sets the copy's prototype), and
  // the preview and promotion would validate another config than the one Pulumi hands the program.
  const unsafe = Object.entries(doc?.config ?? {}).flatMap(([key, raw]) => UNSAFE_KEYS.has(key.slice(key.indexOf(":") + 1))
    ? [key]
    : unsafeKeys(raw, []).map((p) => key + p.map((k) => (typeof k === "number" ? `[${k}]` : `.${String(k)}`)).join("")));
  if (unsafe.length) {
    throw new Error(`Pulumi.${stack}.yaml: ${unsafe.join(", ")} ${unsafe.length > 1 ? "are" : "is"} not allowed: __proto__, constructor and prototype are never settings`);
  }
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, raw] of Object.entries(doc?.config ?? {})) {
    const { value, secret } = unwrapSecure(raw);
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
    if (secret) secretKeys.push(key);
  }
  return { config, secretKeys };
}
