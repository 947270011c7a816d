// The suite's global fixture (.mocharc.json requires it; mocha runs it once, in the main process,
// before the workers start, and they inherit its environment): one moto_server for the run
// (NL_MOTO_ENDPOINT; test/moto.ts gives each caller an account of its own on it) and one initdb'd
// template cluster (NL_PG_TEMPLATE; test/pg.ts copies it for every cluster). Both start in the
// background; the helpers wait for them. A file run alone (`npx mocha --no-config …`) has neither,
// and the helpers start what it needs themselves.
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initTemplate } from "./pg";
import { freePort } from "./tools";

let moto: ChildProcess | undefined;
let template: string | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  template = fs.mkdtempSync(path.join(os.tmpdir(), "nlpg-template-"));
  try {
    initTemplate(template);
    process.env.NL_PG_TEMPLATE = template;
  } catch {
    // No PostgreSQL here: each test that needs one fails on its own, naming the package (test/pg.ts).
  }
  // Without moto_server, startMoto fails the tests that need it, saying what to install.
  if (spawnSync("sh", ["-c", "command -v moto_server"]).status === 0) {
    const port = await freePort();
    moto = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    process.env.NL_MOTO_ENDPOINT = `http://127.0.0.1:${port}`;
  }
}

export function mochaGlobalTeardown(): void {
  moto?.kill();
  if (template) fs.rmSync(template, { recursive: true, force: true });
}
