// The hosts' logs in CloudWatch Logs: one log group per source (created by the stack, with
// retention and a KMS key, so the agent never creates an unencrypted, never-expiring one), and
// the metric filters that turn lines into the numbers alarms and the dashboard read. Pure.
import { APP_PATHS } from "../app/paths";

/** Where metric filters publish: one namespace per stack (a filter's dimensions can only come from the log line). */
export function logMetricNamespace(stack: string): string {
  return `NourishLink/Logs/${stack}`;
}

export type LogSource = "nginx-access" | "nginx-error" | "app" | "postgresql" | "jobs";

export interface LogSourceSpec {
  source: LogSource;
  roles: ("app" | "db")[];
  /** A file the agent tails, or systemd units whose journal it reads. */
  file?: string;
  units?: string[];
  description: string;
}

/** The PostgreSQL server log Debian's pg_ctlcluster writes. */
export const POSTGRES_LOG = "/var/log/postgresql/postgresql-15-main.log";

export const LOG_SOURCES: LogSourceSpec[] = [
  { source: "nginx-access", roles: ["app"], file: `${APP_PATHS.logDir}/nginx-access.log`, description: "nginx access log (JSON, components/app/nginx.ts)" },
  { source: "nginx-error", roles: ["app"], file: `${APP_PATHS.logDir}/nginx-error.log`, description: "nginx error log" },
  // gunicorn runs as nourish-link-app@<version>; the journal matches every release's instance.
  { source: "app", roles: ["app"], units: ["nourish-link-app@*"], description: "gunicorn and Django (journal of nourish-link-app@*)" },
  { source: "postgresql", roles: ["db"], file: POSTGRES_LOG, description: "PostgreSQL server log (errors, slow queries)" },
  { source: "jobs", roles: ["app", "db"], units: ["nourish-link-*"], description: "every nourishctl job (journal of nourish-link-*.service)" },
];

export function logGroupName(stack: string, source: LogSource): string {
  return `/nourish-link/${stack}/${source}`;
}

export interface MetricFilterSpec {
  id: string;
  source: LogSource;
  pattern: string;
  metricName: string;
  /** A number, or a JSON selector of the line ($.request_time). */
  value: string;
  defaultValue?: number;
  unit?: "Count" | "Seconds";
}

/** Lines → metrics. The nginx ones read fields of the JSON access log; the others match words. */
export const METRIC_FILTERS: MetricFilterSpec[] = [
  { id: "http-requests", source: "nginx-access", pattern: "{ $.status = * }", metricName: "HttpRequests", value: "1", defaultValue: 0, unit: "Count" },
  { id: "http-5xx", source: "nginx-access", pattern: "{ $.status >= 500 }", metricName: "Http5xx", value: "1", defaultValue: 0, unit: "Count" },
  // Every request's time, so that the alarm and the dashboard can take its p95.
  { id: "http-request-time", source: "nginx-access", pattern: "{ $.request_time >= 0 }", metricName: "HttpRequestTime", value: "$.request_time", unit: "Seconds" },
  { id: "app-errors", source: "app", pattern: "?ERROR ?CRITICAL ?Traceback", metricName: "AppErrors", value: "1", defaultValue: 0, unit: "Count" },
  { id: "postgres-errors", source: "postgresql", pattern: "?ERROR ?FATAL ?PANIC", metricName: "PostgresErrors", value: "1", defaultValue: 0, unit: "Count" },
];
