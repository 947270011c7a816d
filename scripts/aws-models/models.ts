// AWS's own service models, as botocore ships them (data/<service>/<version>/service-2.json[.gz]):
// where they are on this machine and how to read one. The only place that touches the disk.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { gunzipSync } from "zlib";

/** The slice of a botocore service model the checker reads. */
export interface Shape {
  type: string;
  members?: Record<string, { shape: string }>;
  required?: string[];
  member?: { shape: string };
  value?: { shape: string };
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
}
export interface ServiceModel {
  metadata: { apiVersion: string; serviceId?: string };
  operations: Record<string, { input?: { shape: string } }>;
  shapes: Record<string, Shape>;
}
export type ModelSource = (service: string) => ServiceModel;

let dataDir: string | undefined;

/** botocore's data directory: $AWS_MODELS_DIR, else asked once of the machine's python3. */
export function botocoreDataDir(): string {
  if (dataDir) return dataDir;
  const fromEnv = process.env.AWS_MODELS_DIR;
  if (fromEnv) return (dataDir = fromEnv);
  let pkg: string;
  try {
    pkg = execFileSync("python3", ["-c", "import botocore,os;print(os.path.dirname(botocore.__file__))"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch {
    throw new Error("botocore not found: install it for python3 (pip install botocore) or set AWS_MODELS_DIR to its data directory");
  }
  return (dataDir = path.join(pkg, "data"));
}

const cache = new Map<string, ServiceModel>();

/** The newest API version of a service's model (botocore keeps old versions beside it). */
export function loadModel(service: string, dir = botocoreDataDir()): ServiceModel {
  const key = `${dir}\0${service}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const serviceDir = path.join(dir, service);
  if (!fs.existsSync(serviceDir)) throw new Error(`no botocore model for service ${service} under ${dir}`);
  const version = fs.readdirSync(serviceDir).filter((v) => /^\d{4}-\d{2}-\d{2}$/.test(v)).sort().pop();
  if (!version) throw new Error(`no API version of ${service} under ${serviceDir}`);
  const file = path.join(serviceDir, version, "service-2.json");
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : gunzipSync(fs.readFileSync(`${file}.gz`)).toString("utf8");
  const model = JSON.parse(text) as ServiceModel;
  cache.set(key, model);
  return model;
}
