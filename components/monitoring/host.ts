// What monitoring puts on every host, by role: the self-healing drop-ins (hosts/restart.ts), the
// journal's cap (hosts/journald.ts), the age limits on /tmp and /var/tmp (hosts/tmpfiles.ts) and
// the CloudWatch agent's configuration (agent.ts). Pure: typed config in, host files out; the host
// components add them to their user data.
import { StackConfig } from "../config";
import { HostFile } from "../hosts/cloud-init";
import { JOURNALD_DROPIN_PATH, renderJournaldConf } from "../hosts/journald";
import { restartDropIns } from "../hosts/restart";
import { renderTmpfilesConf, TMPFILES_PATH } from "../hosts/tmpfiles";
import { AGENT_CONFIG_PATH, renderAgentConfig } from "./agent";

export function monitoringHostFiles(config: StackConfig, role: "app" | "db"): HostFile[] {
  return [
    ...restartDropIns(role),
    { path: JOURNALD_DROPIN_PATH, content: renderJournaldConf({ maxMb: config.monitoring.journalMaxMb }) },
    { path: TMPFILES_PATH, content: renderTmpfilesConf({ tmpDays: 10, varTmpDays: 30 }) },
    { path: AGENT_CONFIG_PATH, content: JSON.stringify(renderAgentConfig(config, role), null, 1) + "\n" },
  ];
}
