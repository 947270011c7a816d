// Subnet layout of the VPC: pure arithmetic, so it is tested without Pulumi.

function toInt(ip: string): number {
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

function toIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/**
 * Splits `vpcCidr` into `count` equal subnets of prefix `prefix` from the start of the block,
 * after skipping `offset` of them (public subnets first, private after).
 */
export function subnetCidrs(vpcCidr: string, prefix: number, count: number, offset = 0): string[] {
  const [base, bits] = vpcCidr.split("/");
  const vpcPrefix = Number(bits);
  if (prefix < vpcPrefix) throw new Error(`subnet prefix /${prefix} is larger than the VPC ${vpcCidr}`);
  const size = 2 ** (32 - prefix);
  if ((offset + count) * size > 2 ** (32 - vpcPrefix)) throw new Error(`${offset + count} subnets of /${prefix} do not fit in ${vpcCidr}`);
  const start = toInt(base) - (toInt(base) % 2 ** (32 - vpcPrefix));
  return Array.from({ length: count }, (_, i) => `${toIp(start + (offset + i) * size)}/${prefix}`);
}

/** First and last address of an IPv4 CIDR block, as integers. */
export function cidrRange(cidr: string): [number, number] {
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  const start = toInt(base) - (toInt(base) % size);
  return [start, start + size - 1];
}

/** True when the address is the block's first (no host bits set: 10.40.0.0/16, not 10.40.7.9/16). */
export function isNetworkAddress(cidr: string): boolean {
  return toInt(cidr.split("/")[0]) === cidrRange(cidr)[0];
}

/** Subnets of /20 the network lays out per availability zone (one public, one private). */
export const SUBNET_PREFIX = 20;
