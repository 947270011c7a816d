// The RDS instance's name and the log groups its exports write to. Pure.
//
// RDS creates /aws/rds/instance/<identifier>/<log> itself on the first export, unencrypted and
// kept forever, unless the group already exists. So the stack creates them first (with the logs
// key and monitoring.logRetentionDays), which needs the identifier before the instance exists:
// a fixed one instead of Pulumi's auto-name. The provider replaces an instance whose identifier
// changes (ForceNew), so an instance created with an auto-name keeps it through
// database.rdsIdentifier (RUNBOOK, "RDS log groups"); `protect` makes `pulumi up` refuse rather
// than replace if that is forgotten.
import { StackConfig } from "../config";

/** What the instance exports to CloudWatch Logs (enabledCloudwatchLogsExports). */
export const RDS_LOG_EXPORTS = ["postgresql", "upgrade"] as const;
export type RdsLogExport = (typeof RDS_LOG_EXPORTS)[number];

/** database.rdsIdentifier, or nourish-link-<stack> for an instance created from now on. */
export function rdsIdentifier(config: StackConfig): string {
  return config.database.rdsIdentifier ?? `nourish-link-${config.stack}`;
}

/** The log group RDS writes an export to (the name is AWS's, not ours). */
export function rdsLogGroupName(identifier: string, log: RdsLogExport): string {
  return `/aws/rds/instance/${identifier}/${log}`;
}
