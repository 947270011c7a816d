// The deploy key pair of the Release: checks that the public key is one OpenSSH line and that the
// private key (a secret: never echoed, not even in an error) is unencrypted and is the other half
// of it. Pure, no Pulumi: the config schema uses it before any resource is registered.
import { createPrivateKey, createPublicKey } from "crypto";
import { isIPv4 } from "net";

/** The key types the hosts authorize (OpenSSH's own names). */
export const SSH_KEY_TYPES = ["ssh-ed25519", "ssh-rsa"] as const;
export type SshKeyType = (typeof SSH_KEY_TYPES)[number];

/** Debian's cloud images log in as `admin`, with passwordless sudo. */
export const DEFAULT_SSH_USER = "admin";

const PUBLIC_LINE = /^(ssh-ed25519|ssh-rsa) ([A-Za-z0-9+/]+={0,2})(?: ([\x21-\x7e][\x20-\x7e]*))?$/;

/** SSH wire format: a uint32 length, then that many bytes. */
function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** SSH mpint from an unsigned big-endian integer: no leading zeros, a 0x00 when the top bit is set. */
function mpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return sshString(v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

/** Reads SSH strings one after another; undefined when the data is shorter than it claims. */
class Reader {
  constructor(private readonly b: Buffer, private at = 0) {}
  bytes(n: number): Buffer | undefined {
    if (this.at + n > this.b.length) return undefined;
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  uint32(): number | undefined {
    const b = this.bytes(4);
    return b?.readUInt32BE(0);
  }
  string(): Buffer | undefined {
    const n = this.uint32();
    return n === undefined ? undefined : this.bytes(n);
  }
  done(): boolean {
    return this.at === this.b.length;
  }
}

export interface SshPublicKey {
  type: SshKeyType;
  /** The key blob (what the base64 field decodes to). */
  blob: Buffer;
  comment?: string;
}

/** One authorized_keys line (`ssh-ed25519 AAAA… comment`), or undefined when it is not one. */
export function parseSshPublicKey(line: string): SshPublicKey | undefined {
  const m = PUBLIC_LINE.exec(line.trim());
  if (!m) return undefined;
  const blob = Buffer.from(m[2], "base64");
  return wellFormed(blob, m[1]) ? { type: m[1] as SshKeyType, blob, comment: m[3] } : undefined;
}

/**
 * Whether a key blob is a complete key of `type`: it names its own type (a key pasted under the
 * wrong name fails), ed25519 holds 32 bytes, RSA an exponent and a modulus of 2048 bits or more.
 */
function wellFormed(blob: Buffer, type: string): boolean {
  const r = new Reader(blob);
  if (r.string()?.toString("latin1") !== type) return false;
  if (type === "ssh-ed25519") {
    if (r.string()?.length !== 32) return false;
  } else {
    const e = r.string();
    const n = r.string();
    if (!e?.length || !n?.length) return false;
    const bits = (n.length - (n[0] === 0 ? 1 : 0)) * 8;
    if (bits < 2048) return false;
  }
  return r.done();
}

export function isSshPublicKey(line: string): boolean {
  return parseSshPublicKey(line) !== undefined;
}

const OPENSSH_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OPENSSH_END = "-----END OPENSSH PRIVATE KEY-----";
const OPENSSH_MAGIC = Buffer.from("openssh-key-v1\0", "latin1");

export type PrivateKeyInfo = { publicBlob: Buffer } | { problem: string };

/**
 * What a private key's public half is, or why it cannot be used. Accepts OpenSSH's own format
 * (`ssh-keygen -t ed25519`) and unencrypted PEM (PKCS#8, PKCS#1 RSA). The problems never quote
 * the key.
 */
export function privateKeyInfo(text: string): PrivateKeyInfo {
  const pem = text.trim();
  const unsupported = { problem: "must be an ed25519 or RSA (2048 bits or more) private key, in OpenSSH or PEM format as ssh-keygen writes it" };
  const encrypted = { problem: "must be an unencrypted private key: the command provider is given no passphrase (keep the key itself secret: --secret)" };
  if (pem.startsWith(OPENSSH_BEGIN)) {
    if (!pem.endsWith(OPENSSH_END)) return unsupported;
    const body = Buffer.from(pem.slice(OPENSSH_BEGIN.length, -OPENSSH_END.length).replace(/\s+/g, ""), "base64");
    if (!body.subarray(0, OPENSSH_MAGIC.length).equals(OPENSSH_MAGIC)) return unsupported;
    const r = new Reader(body, OPENSSH_MAGIC.length);
    const cipher = r.string()?.toString("latin1");
    r.string(); // kdf name
    r.string(); // kdf options
    const keys = r.uint32();
    const publicBlob = r.string();
    if (cipher === undefined || keys !== 1 || publicBlob === undefined) return unsupported;
    if (cipher !== "none") return encrypted;
    return SSH_KEY_TYPES.some((t) => wellFormed(publicBlob, t)) ? { publicBlob } : unsupported;
  }
  if (!/^-----BEGIN (RSA |ENCRYPTED )?PRIVATE KEY-----/.test(pem)) return unsupported;
  if (pem.includes("ENCRYPTED")) return encrypted;
  let jwk: { kty?: string; crv?: string; x?: string; n?: string; e?: string };
  try {
    jwk = createPublicKey(createPrivateKey({ key: pem, format: "pem" })).export({ format: "jwk" });
  } catch {
    return unsupported;
  }
  const b64url = (s: string) => Buffer.from(s, "base64url");
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519" && jwk.x) {
    return { publicBlob: Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(b64url(jwk.x))]) };
  }
  if (jwk.kty === "RSA" && jwk.n && jwk.e && b64url(jwk.n).length * 8 >= 2048) {
    return { publicBlob: Buffer.concat([sshString(Buffer.from("ssh-rsa")), mpint(b64url(jwk.e)), mpint(b64url(jwk.n))]) };
  }
  return unsupported;
}

/** Why `privateKey` cannot log in where `publicKeyLine` is authorized, or undefined when it can. */
export function keyPairProblem(privateKey: string, publicKeyLine: string): string | undefined {
  const info = privateKeyInfo(privateKey);
  const pub = parseSshPublicKey(publicKeyLine);
  if ("problem" in info || pub === undefined) return undefined; // reported on the key itself
  return info.publicBlob.equals(pub.blob) ? undefined
    : "is not the public half of deploySshKey: the hosts would refuse the release's logins (ssh-keygen -y -f <private key> prints the right line)";
}

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A bastion's address: a DNS name or an IPv4 address. */
export function isHostAddress(v: string): boolean {
  return isIPv4(v) || DNS_NAME.test(v);
}
