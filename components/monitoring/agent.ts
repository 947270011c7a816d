// The CloudWatch agent's configuration, rendered from stack config. Pure: test/agent.test.ts
// validates it against the agent's own JSON schema (vendor/amazon-cloudwatch-agent/schema.json).
//
// Dimensions are chosen so alarms can name them exactly: omit_hostname drops `host`, every metric
// gets InstanceId, disks drop `device` (an NVMe name can change across reboots) and keep `path`
// and `fstype`.
import * as path from "path";
import { StackConfig } from "../config";
import { LOG_SOURCES, logGroupName } from "./logs";

export const AGENT_NAMESPACE = "CWAgent";
export const AGENT_CONFIG_PATH = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json";
/** Every filesystem we alarm on is ext4 (Debian's root; the data volume nourishctl setup formats). */
export const DISK_FSTYPE = "ext4";
/** Where the database host mounts its data volume (nourishctl's DATA_MOUNT). */
export const DB_DATA_MOUNT = "/var/lib/postgresql";

export interface WatchedProcess {
  /** Short name for alarm ids. */
  name: string;
  /** procstat selector: `exe` matches the process name, `pattern` the command line. */
  by: "exe" | "pattern";
  value: string;
}

/** The processes each role must run (procstat_lookup_pid_count < 1 is "down"). */
export function watchedProcesses(role: "app" | "db"): WatchedProcess[] {
  return role === "app"
    ? [{ name: "nginx", by: "exe", value: "nginx" }, { name: "gunicorn", by: "pattern", value: "gunicorn" }]
    : [{ name: "postgres", by: "exe", value: "postgres" }];
}

export function watchedMounts(role: "app" | "db"): string[] {
  return role === "app" ? ["/"] : ["/", DB_DATA_MOUNT];
}

/** The agent's JSON config for one host role. */
export function renderAgentConfig(config: StackConfig, role: "app" | "db"): Record<string, unknown> {
  const sources = LOG_SOURCES.filter((s) => s.roles.includes(role));
  const files = sources.filter((s) => s.file).map((s) => ({
    file_path: s.file!, log_group_name: logGroupName(config.stack, s.source), log_stream_name: "{instance_id}", timezone: "UTC",
  }));
  const journald = sources.filter((s) => s.units).map((s) => ({
    log_group_name: logGroupName(config.stack, s.source), log_stream_name: "{instance_id}", units: s.units!,
  }));
  const procstat = watchedProcesses(role).map((p) => ({ [p.by]: p.value, measurement: ["pid_count"], metrics_collection_interval: 60 }));
  return {
    agent: { metrics_collection_interval: 60, omit_hostname: true, region: config.region, run_as_user: "root" },
    metrics: {
      namespace: AGENT_NAMESPACE,
      append_dimensions: { InstanceId: "${aws:InstanceId}" },
      metrics_collected: {
        mem: { measurement: ["mem_used_percent"] },
        swap: { measurement: ["swap_used_percent"] },
        disk: { resources: watchedMounts(role), measurement: ["used_percent"], drop_device: true },
        procstat,
      },
    },
    logs: {
      logs_collected: {
        files: { collect_list: files },
        journald: { collect_list: journald },
      },
    },
  };
}

/** The agent's vendored configuration schema (test/agent.test.ts validates the rendered config with it). */
export const AGENT_VENDOR_DIR = path.resolve(__dirname, "..", "..", "vendor", "amazon-cloudwatch-agent");
