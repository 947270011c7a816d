// Switching releases under load, three ways side by side in one run, on the rehearsal's loopback
// hosts (real nginx, PostgreSQL and gunicorn, the sample app):
// - restart: the manual's update, gunicorn stopped and started again on the new release;
// - HUP: gunicorn running from the `current` symlink, the symlink moved, the arbiter HUPed
//   (what gunicorn issues 1002, 2296 and 3394 are about);
// - ours: `nourishctl rollback <other> --keep-schema`, the same socket-rename switch a release
//   does (start beside, health gate, one rename(2), drain, stop).
// Each switches between 1.1.0 and 1.3.0 (both run on the same schema) SWITCHES times under
// autocannon load, and reports failed requests and whether the new release really answered.
// Usage: npm run bench:switch [-- <switches per method, default 4>]
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ctlDirect as ctl, DOMAIN, lastLine, LoopbackHosts, startLoopbackHosts } from "../rehearsal/host";
import { LoadResult, startLoad } from "../rehearsal/load";
import { get, sleep, stopProcess, until } from "../rehearsal/loopback";
import { parseEnvFile } from "../../test/env-files";

const A = "1.1.0";
const B = "1.3.0";

interface Outcome { method: string; switches: number; sent: number; failed: number; byStatus: Record<string, number>; tookEffect: number; seconds: number }

/** The app's environment as the unit's EnvironmentFile gives it: read by nourishctl's own parser. */
function appEnvironment(h: LoopbackHosts): Record<string, string> {
  const file = path.join(h.appRoot, "etc/nourish-link/app.env");
  const r = parseEnvFile(file);
  if (r.status !== 0 || Object.keys(r.vars).length === 0) throw new Error(`${file}: not read (${r.stderr.trim() || "no variables"})`);
  return r.vars;
}

async function releaseAnswering(h: LoopbackHosts): Promise<string> {
  const r = await get(h.port, "/health/", { Host: DOMAIN, "X-Forwarded-Proto": "https" }).catch(() => undefined);
  return r?.status === 200 ? String(r.headers["x-release"]) : `none (${r?.status ?? "no answer"})`;
}

/** Runs `switchTo` SWITCHES times under load, alternating targets, 2 s apart. */
async function measure(h: LoopbackHosts, method: string, switches: number, menuItemId: number, switchTo: (v: string) => Promise<void>): Promise<Outcome> {
  const load = startLoad({ url: `http://127.0.0.1:${h.port}`, host: DOMAIN, menuItemId });
  await sleep(1000);
  let tookEffect = 0;
  const t0 = Date.now();
  for (let i = 0; i < switches; i++) {
    const target = i % 2 === 0 ? B : A;
    await switchTo(target);
    await sleep(1000);
    if ((await releaseAnswering(h)) === target) tookEffect++;
    await sleep(1000);
  }
  const seconds = (Date.now() - t0) / 1000;
  const r: LoadResult = await load.stop();
  return { method, switches, sent: r.sent, failed: r.failed, byStatus: r.byStatus, tookEffect, seconds };
}

async function main(): Promise<void> {
  const switches = Number(process.argv[2] ?? 4);
  const h = await startLoopbackHosts();
  let plain: ChildProcess | undefined;
  try {
    // 1.1.0 live, 1.3.0 installed and migrated (a data migration: 1.1.0 runs on its schema too).
    for (const [v, name] of [[A, "v2"], [B, "irreversible"]] as const) {
      const a = h.art(name);
      for (const step of [["fetch", "--file", a.file, "--sha256", a.sha256], ["migrate"], ["collectstatic"]]) {
        const r = await ctl(h.appEnv, ["release", step[0], v, ...step.slice(1)]);
        if (r.code !== 0) throw new Error(`release ${step[0]} ${v}: ${lastLine(r)}`);
      }
    }
    const first = await ctl(h.appEnv, ["release", "switch", A]);
    if (first.code !== 0) throw new Error(`release switch ${A}: ${lastLine(first)}`);
    const menuItemId = Number(JSON.parse((await get(h.port, "/menu/", { Host: DOMAIN, "X-Forwarded-Proto": "https" })).body)[0].id);
    const outcomes: Outcome[] = [];

    outcomes.push(await measure(h, "ours (socket rename)", switches, menuItemId, async (v) => {
      const r = await ctl(h.appEnv, ["rollback", v, "--keep-schema"]);
      if (r.code !== 0) throw new Error(`rollback ${v}: ${lastLine(r)}`);
    }));
    // Hand the socket over to a plain gunicorn for the other two methods.
    const run = path.join(h.appRoot, "run");
    for (const f of fs.readdirSync(run).filter((f) => f.startsWith("nourish-link-app@"))) {
      try { process.kill(Number(fs.readFileSync(path.join(run, f), "utf8")), "SIGTERM"); } catch { /* gone */ }
    }
    const socket = path.join(run, "nourish-link/app.sock");
    const env = appEnvironment(h);
    const gunicorn = (cwd: string): ChildProcess => spawn(path.join(cwd, "venv/bin/gunicorn"),
      ["--bind", `unix:${socket}`, "--workers", "3", "--graceful-timeout", "10", "dusangire.wsgi:application"],
      { cwd, env: { ...process.env, ...env }, stdio: "ignore" });
    const up = () => until("gunicorn to answer", async () => ((await releaseAnswering(h)).startsWith("none") ? undefined : true), 20000);
    await sleep(1500);
    fs.rmSync(socket, { force: true });

    plain = gunicorn(path.join(h.srv, "releases", A));
    await up();
    outcomes.push(await measure(h, "restart (the manual)", switches, menuItemId, async (v) => {
      await stopProcess(plain);
      plain = gunicorn(path.join(h.srv, "releases", v));
      await up();
    }));
    await stopProcess(plain);

    // HUP: started from the symlink, as a unit with WorkingDirectory=…/current would be.
    const current = path.join(h.srv, "current");
    const point = (v: string) => { fs.symlinkSync(`releases/${v}`, `${current}.new`); fs.renameSync(`${current}.new`, current); };
    point(A);
    plain = gunicorn(current);
    await up();
    outcomes.push(await measure(h, "HUP after moving current", switches, menuItemId, async (v) => {
      point(v);
      plain!.kill("SIGHUP");
    }));

    console.log(`\nswitch: ${switches} switches per method between ${A} and ${B}, autocannon 120 req/s (GET /menu/, POST /orders/)`);
    console.log("| method | requests | failed | failed % | switches that took effect |");
    console.log("|---|---|---|---|---|");
    for (const o of outcomes) {
      console.log(`| ${o.method} | ${o.sent} | ${o.failed} | ${((100 * o.failed) / Math.max(1, o.sent)).toFixed(2)} | ${o.tookEffect}/${o.switches} |`);
    }
    for (const o of outcomes) if (o.failed) console.log(`${o.method}: ${JSON.stringify(o.byStatus)}`);
  } finally {
    await stopProcess(plain);
    await h.stop();
  }
}

main().catch((e) => { console.error(`bench:switch: ${e instanceof Error ? e.message : String(e)}`); process.exit(1); });
