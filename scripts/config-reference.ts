// Prints docs/CONFIGURATION.md's config reference from the zod schema and the per-environment
// defaults, so the two cannot drift: test/readme.test.ts fails when docs/CONFIGURATION.md differs.
// `npm run config-reference` prints it.
import { z } from "zod";
import { DEFAULTS, ENVIRONMENTS, PROJECT, SECRET_KEYS, stackConfigSchema } from "../components/config";

interface JsonSchema {
  type?: string; format?: string; description?: string; const?: unknown; enum?: unknown[];
  minimum?: number; maximum?: number; items?: JsonSchema; properties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[]; oneOf?: JsonSchema[]; required?: string[];
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
  if (s.anyOf?.every((a) => a.const !== undefined)) {
    const values = s.anyOf.map((a) => String(a.const));
    return `one of ${values.length > 8 ? [...values.slice(0, 6), "…", values[values.length - 1]].join(", ") : values.join(", ")}`;
  }
  if (s.oneOf) return `object: ${s.oneOf.map((o) => `\`{ ${Object.keys(o.properties ?? {}).join(", ")} }\``).join(" or ")}`;
  if (s.type === "array") return `list of ${typeOf(s.items ?? {})}`;
  if (s.type === "integer" || s.type === "number") return `${s.type} ${s.minimum ?? ""}–${s.maximum ?? ""}`;
  if (s.type === "string" && s.format) return `string (${s.format})`;
  return s.type ?? "any";
}

function defaultAt(env: (typeof ENVIRONMENTS)[number], path: string[], required: boolean): string {
  if (path.join(".") === "environment") return "the stack name";
  let v: unknown = DEFAULTS[env];
  for (const p of path) v = (v as Record<string, unknown> | undefined)?.[p];
  if (v === undefined) return required ? "required" : "—";
  return `\`${typeof v === "string" ? v : JSON.stringify(v)}\``;
}

export function configReference(): string {
  const root = z.toJSONSchema(stackConfigSchema, { unrepresentable: "any", io: "input" }) as JsonSchema;
  const rows: string[] = [
    "| Key | Type | Staging default | Prod default | What it is |",
    "| --- | --- | --- | --- | --- |",
    "| `aws:region` | string | required | required | AWS region of the stack (the AWS provider's own key) |",
  ];
  // A key of an optional block (rehearsal.source) is required only when the block is set.
  const walk = (parent: JsonSchema, path: string[], optionalBlock?: string) => {
    for (const [k, s] of Object.entries(parent.properties ?? {})) {
      const p = [...path, k];
      if (s.type === "object" && s.properties) {
        walk(s, p, optionalBlock ?? (path.length > 0 && !parent.required?.includes(k) ? p.join(".") : undefined));
        continue;
      }
      const required = (parent.required?.includes(k) ?? false) && !optionalBlock;
      const secret = (SECRET_KEYS as readonly string[]).includes(k) ? " **secret**: `pulumi config set --secret`" : "";
      const desc = (s.description ?? "").replace(/\|/g, "\\|");
      const [staging, prod] = (["staging", "prod"] as const).map((env) => optionalBlock && parent.required?.includes(k) && defaultAt(env, p, false) === "—" ? `required with \`${optionalBlock}\`` : defaultAt(env, p, required));
      rows.push(`| \`${PROJECT}:${p.join(".")}\` | ${typeOf(s)} | ${staging} | ${prod} | ${desc}${secret} |`);
    }
  };
  walk(root, []);
  return rows.join("\n");
}

if (require.main === module) console.log(configReference());
