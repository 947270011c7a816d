// A host posing as the database: it speaks just enough of PostgreSQL's protocol to accept TLS with
// its own certificate (what sslmode=require checks: nothing) and ask for the password in clear.
// Whatever password a client sends is recorded; a client that refuses sends none. It runs in a
// process of its own, so tests may call clients synchronously.
import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { freePort, selfSignedCert } from "./tools";

export interface FakePostgres {
  port: number;
  /** Passwords clients sent, in order. */
  readonly captured: string[];
  /** Connections that reached the startup message (the client did talk to us). */
  readonly startups: number;
  stop(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/** Reads exactly n bytes from a socket (paused-mode reads). */
function reader(sock: net.Socket): (n: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0);
  let want = 0;
  let wake: (() => void) | undefined;
  let ended = false;
  sock.on("data", (c: Buffer) => { buf = Buffer.concat([buf, c]); if (buf.length >= want) wake?.(); });
  sock.on("end", () => { ended = true; wake?.(); });
  sock.on("close", () => { ended = true; wake?.(); });
  return async (n) => {
    want = n;
    while (buf.length < n) {
      if (ended) throw new Error("client went away");
      await new Promise<void>((r) => (wake = r));
    }
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
}

/** The server, in this process: each startup and each password a line in dir/events. */
async function serveFake(dir: string, port: number): Promise<void> {
  const { cert, key } = selfSignedCert(dir, "posing-as-the-database");
  const ctx = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
  const events = path.join(dir, "events");
  const note = (e: object) => fs.appendFileSync(events, JSON.stringify(e) + "\n");

  const serve = async (plain: net.Socket): Promise<void> => {
    let read = reader(plain);
    let sock: net.Socket = plain;
    // SSLRequest (and a GSSENCRequest first, if the client tries one): yes to TLS, with our certificate.
    for (;;) {
      const head = await read(8);
      const code = head.readInt32BE(4);
      if (code === GSSENC_REQUEST) { plain.write("N"); continue; }
      if (code !== SSL_REQUEST) return void plain.destroy();
      plain.removeAllListeners("data");
      plain.write("S");
      const secure = new tls.TLSSocket(plain, { isServer: true, ...ctx });
      secure.on("error", () => undefined);
      sock = secure;
      read = reader(secure);
      break;
    }
    // StartupMessage: length, protocol, parameters. Then: "send me your password in clear".
    const len = (await read(4)).readInt32BE(0);
    await read(len - 4);
    note({ startup: true });
    const auth = Buffer.alloc(9);
    auth.write("R", 0); auth.writeInt32BE(8, 1); auth.writeInt32BE(3, 5);
    sock.write(auth);
    const type = (await read(1)).toString();
    const plen = (await read(4)).readInt32BE(0);
    const body = await read(plen - 4);
    if (type === "p") note({ password: body.subarray(0, body.indexOf(0)).toString("utf8") });
    // Then fail the login, as the real server would for a wrong password.
    const msg = Buffer.from("SFATAL\0C28P01\0Mpassword authentication failed\0\0");
    const err = Buffer.alloc(5); err.write("E", 0); err.writeInt32BE(4 + msg.length, 1);
    sock.end(Buffer.concat([err, msg]));
  };

  const server = net.createServer((s) => {
    s.on("error", () => undefined);
    serve(s).catch(() => s.destroy());
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  process.stdout.write("listening\n");
}

export async function startFakePostgres(): Promise<FakePostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nl-fakepg-"));
  const port = await freePort();
  const child = spawn(process.execPath, ["-r", "esbuild-register", __filename, dir, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (c: Buffer) => { if (c.toString().includes("listening")) resolve(); });
    child.once("exit", (code) => reject(new Error(`the fake PostgreSQL server exited (${code}) before listening`)));
  });
  const events = (): { startup?: true; password?: string }[] => {
    const f = path.join(dir, "events");
    return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
  };
  return {
    port,
    get captured() { return events().flatMap((e) => (e.password === undefined ? [] : [e.password])); },
    get startups() { return events().filter((e) => e.startup).length; },
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill();
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

if (require.main === module) {
  serveFake(process.argv[2], Number(process.argv[3])).catch((e) => { console.error(e); process.exit(1); });
}
