// Continuous traffic for the rehearsal's drills: autocannon alternating GET /menu/ and order-creating
// POST /orders/, as a browser behind the load balancer would send them. Every response is
// counted by status, every acknowledged order's ref is kept (to check the database holds it),
// and the X-Release header tells which release answered when.
import autocannon = require("autocannon");
import { randomUUID } from "crypto";

export interface LoadOptions {
  /** nginx on loopback, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Host header (the site's domain). */
  host: string;
  menuItemId: number;
  connections?: number;
  /** Requests per second over all connections; leaves CPU for the release itself. */
  rate?: number;
}

export interface LoadResult {
  sent: number;
  /** Non-2xx answers plus socket errors and timeouts. */
  failed: number;
  byStatus: Record<string, number>;
  errors: number;
  timeouts: number;
  acknowledgedOrders: string[];
  /** Which release answered, in order of first appearance: [release, first ms, last ms]. */
  releases: { release: string; first: number; last: number }[];
}

export interface RunningLoad {
  /** Answers so far (any status). */
  answered(): number;
  stop(): Promise<LoadResult>;
}

export function startLoad(o: LoadOptions): RunningLoad {
  const byStatus: Record<string, number> = {};
  const acknowledged: string[] = [];
  const releases: LoadResult["releases"] = [];
  const seen = (headers: Record<string, string | string[]>) => {
    const h = headers["x-release"] ?? headers["X-Release"];
    const release = Array.isArray(h) ? h[0] : h ?? "(none)";
    const now = Date.now();
    const last = releases[releases.length - 1];
    if (last?.release === release) last.last = now;
    else releases.push({ release, first: now, last: now });
  };
  const count = (status: number) => (byStatus[status] = (byStatus[status] ?? 0) + 1);
  const headers = { host: o.host, "x-forwarded-proto": "https", "content-type": "application/json" };

  let finish: (r: autocannon.Result) => void = () => undefined;
  let fail: (e: unknown) => void = () => undefined;
  const done = new Promise<autocannon.Result>((resolve, reject) => { finish = resolve; fail = reject; });
  const instance = autocannon({
    url: o.url,
    connections: o.connections ?? 4,
    overallRate: o.rate ?? 120,
    duration: 3600,
    timeout: 10,
    headers,
    requests: [
      {
        method: "GET",
        path: "/menu/",
        onResponse: (status: number, _body: string, _ctx: Record<string, unknown>, h: Record<string, string>) => { count(status); seen(h); },
      },
      {
        method: "POST",
        path: "/orders/",
        setupRequest: (req: Record<string, unknown>, ctx: Record<string, unknown>) => {
          ctx.ref = randomUUID();
          return { ...req, body: JSON.stringify({ menu_item: o.menuItemId, quantity: 1, ref: ctx.ref }) };
        },
        onResponse: (status: number, _body: string, ctx: Record<string, unknown>, h: Record<string, string>) => {
          count(status);
          seen(h);
          if (status === 201 || status === 200) acknowledged.push(String(ctx.ref));
        },
      },
    ],
  } as autocannon.Options, (err, result) => (err ? fail(err) : finish(result)));

  return {
    answered: () => Object.values(byStatus).reduce((a, b) => a + b, 0),
    async stop() {
      instance.stop();
      const result = await done;
      // autocannon counts a timeout as an error too.
      const errors = result.errors;
      const timeouts = result.timeouts;
      const answered = Object.values(byStatus).reduce((a, b) => a + b, 0);
      const non2xx = Object.entries(byStatus).filter(([s]) => !s.startsWith("2")).reduce((a, [, n]) => a + n, 0);
      return {
        sent: answered + errors,
        failed: non2xx + errors,
        byStatus,
        errors: errors - timeouts,
        timeouts,
        acknowledgedOrders: acknowledged,
        releases,
      };
    },
  };
}
