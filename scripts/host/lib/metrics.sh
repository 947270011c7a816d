# shellcheck shell=bash
# nourishctl-roles: db
# Sourced by nourishctl, which provides die, say, pg_admin and the host.env values (and
# status_log_sizes, json_str: lib/status.sh).
#
# The numbers the manual has people count by hand (connections in pg_stat_activity, locks, long
# queries), plus what tells a database is about to hurt: bloat, cache misses, growth and WAL
# archiving. Run every minute by nourish-link-metrics.timer; published in one put-metric-data call
# to the namespace and dimensions the alarms watch (components/monitoring/metrics.ts names them).

VERBS+=("metrics|internal|publish the database's health numbers to CloudWatch (its timer, every minute)")
help_metrics() {
  cat <<EOF
nourishctl metrics - publish the database's health numbers (its timer runs it every minute)

usage: nourishctl metrics [--dry-run]

  Publishes to CloudWatch (namespace NourishLink, dimensions Stack, Role): DbConnections,
  DbConnectionsUsedPercent, DbLocksWaiting, DbOldestQuerySeconds, DbOldestTransactionSeconds,
  DbDeadTuplePercentMax (10 largest tables), DbCacheHitPercent, DbSizeBytes,
  DbWalArchiveAgeSeconds (with archive_mode); LogVolumeBytes (/var/log, the journal included) and
  LogLargestFileBytes (its largest file; \`nourishctl status\` names it).

Options:
  --dry-run  print the metric data (JSON) instead of sending it (default: send)
EOF
}

# The MetricData of one put-metric-data call, as JSON, computed by PostgreSQL itself. A metric whose
# value is NULL is left out (WAL archiving without archive_mode). Never query text.
metrics_sql() {
  cat <<'SQL'
-- Never queue behind a lock: a table locked by a migration must not stall the minute's numbers.
SET statement_timeout = '10s';
SET lock_timeout = '1s';
WITH client AS (
  SELECT * FROM pg_stat_activity WHERE backend_type = 'client backend'
), largest AS (
  -- The dead-tuple ratio of the tables that matter: the ten largest, so a tiny table's churn is no
  -- alarm. Sized by pg_class.relpages, which takes no lock (pg_total_relation_size waits for one).
  SELECT s.n_live_tup, s.n_dead_tup FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid ORDER BY c.relpages DESC LIMIT 10
), m(name, unit, value) AS (VALUES
  ('DbConnections', 'Count', (SELECT count(*) FROM client)::float8),
  ('DbConnectionsUsedPercent', 'Percent', (SELECT count(*) FROM client) * 100.0 / current_setting('max_connections')::float8),
  ('DbLocksWaiting', 'Count', (SELECT count(*) FROM pg_locks WHERE NOT granted)::float8),
  ('DbOldestQuerySeconds', 'Seconds', coalesce((SELECT extract(epoch FROM max(now() - query_start)) FROM client WHERE state = 'active'), 0)::float8),
  ('DbOldestTransactionSeconds', 'Seconds', coalesce((SELECT extract(epoch FROM max(now() - xact_start)) FROM client), 0)::float8),
  ('DbDeadTuplePercentMax', 'Percent', coalesce((SELECT max(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0)) FROM largest), 0)::float8),
  ('DbCacheHitPercent', 'Percent', (SELECT coalesce(100.0 * sum(blks_hit) / nullif(sum(blks_hit) + sum(blks_read), 0), 100) FROM pg_stat_database WHERE datname = current_database())::float8),
  ('DbSizeBytes', 'Bytes', pg_database_size(current_database())::float8),
  -- Seconds since a WAL segment was last archived, while one waits to be (a .ready file): an idle
  -- database archives nothing and is not stalled.
  ('DbWalArchiveAgeSeconds', 'Seconds', CASE
     WHEN current_setting('archive_mode') = 'off' THEN NULL
     WHEN NOT EXISTS (SELECT 1 FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') THEN 0
     ELSE (SELECT extract(epoch FROM now() - coalesce(last_archived_time, pg_postmaster_start_time())) FROM pg_stat_archiver)
   END::float8)
)
SELECT json_agg(json_build_object(
  'MetricName', name, 'Unit', unit, 'Value', round(value::numeric, 3),
  'Dimensions', json_build_array(json_build_object('Name', 'Stack', 'Value', :'stack'), json_build_object('Name', 'Role', 'Value', :'role'))))
FROM m WHERE value IS NOT NULL;
SQL
}

cmd_metrics() {
  local dry=0
  case "${1:-}" in
    --help) help_metrics; return 0 ;;
    --dry-run) dry=1 ;;
    "") ;;
    *) die "metrics: unknown option '$1' (--dry-run or --help)" ;;
  esac
  [ -n "${STACK:-}" ] || die "metrics: STACK is not set in $HOST_ENV"
  host_env_need DB_NAME
  local data file
  data=$(metrics_sql | pg_admin psql -X -Atq -v ON_ERROR_STOP=1 -v stack="$STACK" -v role="$ROLE" -d "$DB_NAME" 2>&1) \
    || die "metrics: cannot read the numbers from $DB_NAME: $(head -1 <<<"$data")"
  # The logs' size beside the database's (status_log_sizes, lib/status.sh): rotated logs wait for
  # the monthly archive, so a failed archive shows as growth here.
  local log_bytes log_largest dims
  read -r log_bytes log_largest _ < <(status_log_sizes)
  [[ "$data" == \[*\] && "$log_bytes$log_largest" =~ ^[0-9]+$ ]] || die "metrics: cannot read the numbers (database or /var/log)"
  dims="\"Dimensions\": [{\"Name\": \"Stack\", \"Value\": $(json_str "$STACK")}, {\"Name\": \"Role\", \"Value\": $(json_str "$ROLE")}]"
  data="${data%]}, {\"MetricName\": \"LogVolumeBytes\", \"Unit\": \"Bytes\", \"Value\": $log_bytes, $dims}, {\"MetricName\": \"LogLargestFileBytes\", \"Unit\": \"Bytes\", \"Value\": $log_largest, $dims}]"
  if [ "$dry" -eq 1 ]; then echo "$data"; return 0; fi
  file=$(mktemp) || die "metrics: cannot create a temp file"
  printf '%s\n' "$data" > "$file"
  local ep=()
  [ -z "${CLOUDWATCH_ENDPOINT:-}" ] || ep=(--endpoint-url "$CLOUDWATCH_ENDPOINT")
  if ! aws "${ep[@]}" cloudwatch put-metric-data --region "${REGION:?REGION is not set in $HOST_ENV}" --namespace NourishLink --metric-data "file://$file"; then
    rm -f "$file"
    die "metrics: put-metric-data to CloudWatch failed (region $REGION)"
  fi
  rm -f "$file"
}
