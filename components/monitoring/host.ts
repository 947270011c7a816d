// What monitoring puts on every host, by role: the self-healing drop-ins (hosts/restart.ts).
// Pure: typed config in, host files out; the host components add them to their user data.
import { StackConfig } from "../config";
import { HostFile } from "../hosts/cloud-init";
import { restartDropIns } from "../hosts/restart";

export function monitoringHostFiles(_config: StackConfig, role: "app" | "db"): HostFile[] {
  return [...restartDropIns(role)];
}
