// The on-call operator's procedures as SSM Command documents (schema 2.2, aws:runShellScript), one
// per procedure, so someone without a shell on the host runs them from the console or with
// `aws ssm send-command` on the hosts picked by tag. Pure: names in, JSON out.
//
// Each document only calls `nourishctl <verb>` (the one implementation; DESIGN.md "Interfaces" 5)
// with a fixed argv. Safety as in components/release/document.ts: SSM substitutes `{{ name }}`
// textually, so every parameter has an allowedPattern that admits no quote, `$`, backtick,
// backslash, `;`, `|`, `&`, redirection, parenthesis, brace, newline or leading `-`; each is
// substituted exactly once, into a double-quoted assignment at the top of the script, and used
// only as "$variable" afterwards. Disruptive procedures take a `confirm` parameter that must be
// `yes` (the verb's --yes), so a console click with defaults does nothing.
import { NOURISHCTL_PATH } from "../hosts/user-data";

export interface OncallParameter {
  description: string;
  /** JavaScript regex source, anchored: SSM's allowedPattern. */
  pattern: string;
  /** Absent: the sender must give it. */
  default?: string;
}

export interface OncallProcedure {
  /** The document's name is `<prefix>-<name>`; also the key of the send-command output. */
  name: string;
  description: string;
  /** The host roles it is meant for (the send-command example targets them by tag). */
  roles: ("app" | "db")[];
  /** The roles the example targets, when narrower than `roles` (its parameters suit one role). */
  exampleRoles?: ("app" | "db")[];
  parameters: Record<string, OncallParameter>;
  /** The script after the assignments: POSIX sh, "$ctl" is nourishctl, parameters are "$name". */
  run: string[];
  /** Parameter values for the ready-to-paste example. */
  example: Record<string, string>;
}

const CONFIRM: OncallParameter = { description: "type yes: this procedure changes the host", pattern: "^yes$" };
// nourishctl's duration_seconds: a number and s, m, h or d.
const DURATION = "[1-9][0-9]{0,5}[smhd]";
// db_duration (scripts/host/lib/db.sh): seconds, or a number and s, m or h.
const DB_DURATION = "[1-9][0-9]{0,5}[smh]?";

export const ONCALL_PROCEDURES: readonly OncallProcedure[] = [
  {
    name: "status", description: "nourishctl status --json: the role's services, database connections, disk",
    roles: ["app", "db"], parameters: {}, example: {},
    run: ['exec "$ctl" status --json'],
  },
  {
    name: "restart", description: "nourishctl restart SERVICE --yes: restart (app hosts: app, nginx, all; db host: postgresql, all), then prove it answers",
    roles: ["app", "db"],
    parameters: {
      service: { description: "app, nginx, postgresql or all", pattern: "^(app|nginx|postgresql|all)$" },
      confirm: CONFIRM,
    },
    example: { service: "app", confirm: "yes" }, exampleRoles: ["app"],
    run: ['exec "$ctl" restart "$service" --yes'],
  },
  {
    name: "logs", description: "nourishctl logs KIND --since DURATION: errors counted by type, slowest requests (access), PostgreSQL errors and slow statements (db)",
    roles: ["app", "db"],
    parameters: {
      kind: { description: "errors, access (app hosts) or db (db host)", pattern: "^(errors|access|db)$", default: "errors" },
      since: { description: "how far back: a number and s, m, h or d (30m, 2h, 1d)", pattern: `^${DURATION}$`, default: "1h" },
    },
    example: { kind: "errors", since: "1h" },
    run: ['exec "$ctl" logs "$kind" --since "$since"'],
  },
  {
    name: "db-diagnose", description: "nourishctl db diagnose: locks and who blocks whom, long queries, connections by state, largest and most bloated tables, top statements",
    roles: ["db"],
    parameters: { olderThan: { description: "what counts as long-running: seconds or a number and s, m or h", pattern: `^${DB_DURATION}$`, default: "5m" } },
    example: { olderThan: "5m" },
    run: ['exec "$ctl" db diagnose --older-than "$olderThan"'],
  },
  {
    name: "db-kill-long-queries", description: "nourishctl db kill-long-queries --older-than DURATION --yes: cancel (or terminate) the app user's long queries",
    roles: ["db"],
    parameters: {
      olderThan: { description: "seconds or a number and s, m or h", pattern: `^${DB_DURATION}$` },
      terminate: { description: "yes: end the sessions (pg_terminate_backend) instead of cancelling their queries", pattern: "^(yes|no)$", default: "no" },
      confirm: CONFIRM,
    },
    example: { olderThan: "5m", terminate: "no", confirm: "yes" },
    run: [
      'if [ "$terminate" = yes ]; then exec "$ctl" db kill-long-queries --older-than "$olderThan" --terminate --yes; fi',
      'exec "$ctl" db kill-long-queries --older-than "$olderThan" --yes',
    ],
  },
  {
    name: "maintenance", description: "nourishctl maintenance on|off|status: the maintenance page nginx serves",
    roles: ["app"],
    parameters: { state: { description: "on, off or status", pattern: "^(on|off|status)$" } },
    example: { state: "status" },
    run: ['exec "$ctl" maintenance "$state"'],
  },
];

/** The nourishctl verbs the documents call (tests check each against nourishctl's own list). */
export function oncallVerbs(p: OncallProcedure): string[] {
  return p.run.flatMap((l) => [...l.matchAll(/"\$ctl" ([a-z-]+)/g)].map((m) => m[1]));
}

/** The document's script with `{{ name }}` where SSM substitutes each parameter. */
export function oncallScript(p: OncallProcedure): string[] {
  return [
    "set -eu",
    ...Object.keys(p.parameters).map((k) => `${k}="{{ ${k} }}"`),
    `ctl="\${NOURISH_ROOT:-}${NOURISHCTL_PATH}"`,
    ...("confirm" in p.parameters ? ['[ "$confirm" = yes ] || { echo "nourish-link: ' + p.name + ': set confirm=yes to run it" >&2; exit 1; }'] : []),
    ...p.run,
  ];
}

/** aws.ssm.Document `content` (documentFormat JSON). */
export function renderOncallDocument(p: OncallProcedure, timeoutSeconds = 900): Record<string, unknown> {
  const parameters: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p.parameters)) {
    parameters[k] = { type: "String", description: v.description, allowedPattern: v.pattern, ...(v.default !== undefined ? { default: v.default } : {}) };
  }
  return {
    schemaVersion: "2.2",
    description: `NOURISH LINK on-call: ${p.description}`,
    parameters,
    mainSteps: [{ action: "aws:runShellScript", name: p.name, inputs: { timeoutSeconds: String(timeoutSeconds), runCommand: oncallScript(p) } }],
  };
}

/**
 * The script SSM runs for these parameters: checked as SSM checks them (a missing required one,
 * an unknown one, a value outside its allowedPattern throw InvalidParameters), then substituted.
 */
export function substituteOncall(p: OncallProcedure, params: Record<string, string>): string {
  const values: Record<string, string> = {};
  for (const k of Object.keys(params)) if (!(k in p.parameters)) throw new Error(`InvalidParameters: ${k} is not a parameter of ${p.name}`);
  for (const [k, def] of Object.entries(p.parameters)) {
    const v = params[k] ?? def.default;
    if (v === undefined) throw new Error(`InvalidParameters: ${p.name} needs ${k}`);
    if (!new RegExp(def.pattern).test(v)) throw new Error(`InvalidParameters: ${k} ${JSON.stringify(v)} does not match its allowedPattern`);
    values[k] = v;
  }
  return oncallScript(p).join("\n").replace(/\{\{ *([A-Za-z0-9]+) *\}\}/g, (m, name: string) => (name in values ? values[name] : m)) + "\n";
}

/** A ready-to-paste `aws ssm send-command` for a procedure, targeting the stack's hosts by tag. */
export function sendCommandExample(p: OncallProcedure, a: { documentName: string; region: string; project: string; stack: string }): string {
  const target = `--targets Key=tag:project,Values=${a.project} Key=tag:stack,Values=${a.stack} Key=tag:role,Values=${(p.exampleRoles ?? p.roles).join(",")}`;
  const params = Object.keys(p.example).length ? ` --parameters '${JSON.stringify(Object.fromEntries(Object.entries(p.example).map(([k, v]) => [k, [v]])))}'` : "";
  return `aws ssm send-command --region ${a.region} --document-name ${a.documentName} ${target}${params} --comment 'nourish-link on-call: ${p.name}'`;
}
