# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, svc_active, pg_admin and the host.env values.

VERBS+=("status|oncall|is this host well? services, agents, database, disk; exit 1 naming what is not")
help_status() {
  cat <<EOF
nourishctl status - the morning checklist of this host

usage: nourishctl status [--json]

Checks the role's services are running (nginx and the live release's gunicorn on an app host;
the PostgreSQL cluster itself on the database host), the SSM and CloudWatch agents installed and
running, the database's connections and oldest query, on an app host the smoke checks
(nourishctl smoke), that every data mount has at least DISK_FREE_MIN_PERCENT
(${DISK_FREE_MIN_PERCENT}) free, and that /var/log (rotated logs and the journal) holds at most
LOG_VOLUME_MAX_MB (${LOG_VOLUME_MAX_MB}) MB, naming its largest file; publishes LogVolumeBytes (the
log-volume alarm) and LogLargestFileBytes. Exit 1 when a service is down, the database does not
answer, the disk is too full or the logs too big, naming each.

Options:
  --json    one JSON object: ok, checks [{check, ok, detail}], logs {bytes, largest_file,
            largest_bytes}, and on the db host database {connections, max_connections,
            oldest_query_seconds, oldest_query_pid}
            (default: one line per check)
EOF
}

# One JSON string: the text of $1 escaped (our own messages and unit names, never query text).
json_str() {
  local s="$1"
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# The database's numbers the manual counts by hand: client connections against max_connections,
# and the oldest running query (age in seconds and pid; never its text, which may hold data).
# Prints "connections max_connections oldest_seconds oldest_pid"; fails when the server answers
# nothing.
status_db_numbers() {
  pg_admin psql -X -Atq -F ' ' -v ON_ERROR_STOP=1 -d postgres <<'SQL'
SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
       current_setting('max_connections'),
       coalesce(extract(epoch FROM now() - q.query_start)::bigint, 0),
       coalesce(q.pid, 0)
FROM (SELECT 1) one
LEFT JOIN LATERAL (
  SELECT pid, query_start FROM pg_stat_activity
  WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  ORDER BY query_start LIMIT 1) q ON true
SQL
}

# "bytes largest_bytes largest_path" of /var/log (every file under it, the journal included).
status_log_sizes() {
  local dir="$ROOT/var/log" total
  [ -d "$dir" ] || { echo "0 0 -"; return 0; }
  total=$(du -sb -- "$dir" | cut -f1)
  find "$dir" -type f -printf '%s %p\n' 2>/dev/null | sort -n | tail -1 | { read -r size file || { echo "$total 0 -"; exit 0; }; echo "$total $size ${file#"$ROOT"}"; }
}

cmd_status() {
  local json=0
  case "${1:-}" in
    --help) help_status; return 0 ;;
    --json) json=1 ;;
    "") ;;
    *) die "status: unknown option '$1' (--json or --help)" ;;
  esac
  local failed=0 s free services mounts="/" checks=() db_json="" numbers conn max oldest pid detail
  # check NAME OK DETAIL: one line for people, one entry for --json.
  check() {
    checks+=("{\"check\":$(json_str "$1"),\"ok\":$2,\"detail\":$(json_str "$3")}")
    if [ "$2" = true ]; then
      [ "$json" -eq 1 ] || say "ok: $3"
    else
      failed=1
      echo "nourishctl: FAIL: $3" >&2
    fi
  }
  services=$(services_of_role) || exit 1
  [ "$ROLE" = db ] && mounts="/ $DATA_MOUNT"
  for s in $services; do
    if svc_active "$s"; then check "$s" true "$s is running"; else check "$s" false "$s is not running"; fi
  done
  # The SSM and CloudWatch agents (lib/agent.sh), each pinned in host.env: installed and running.
  for s in "${AGENTS[@]}"; do
    [ -n "$(agent_version "$s")" ] || continue
    if detail=$(agent_state "$s"); then check "$(agent_pkg "$s")" true "$detail"; else check "$(agent_pkg "$s")" false "$detail"; fi
  done
  if [ "$ROLE" = db ]; then
    # A running unit is not yet a database that answers (starting up, out of connections).
    if numbers=$(status_db_numbers 2>/dev/null) && read -r conn max oldest pid <<<"$numbers" && [[ "$conn$max$oldest$pid" =~ ^[0-9]+$ ]]; then
      check connections true "$conn of $max connections in use; oldest running query: ${oldest} s${pid:+ (pid $pid)}"
      db_json="{\"connections\":$conn,\"max_connections\":$max,\"oldest_query_seconds\":$oldest,\"oldest_query_pid\":$pid}"
    else
      check connections false "PostgreSQL does not answer queries (psql as postgres on the local socket)"
    fi
  fi
  # On an app host serving a release, the smoke checks (lib/smoke.sh).
  local live why
  if [ "$ROLE" = app ] && declare -F smoke_checks >/dev/null && live=$(rel_current) && [ -n "$live" ] && rel_installed "$live"; then
    if why=$(smoke_checks "$live"); then check smoke true "$live passes the smoke checks (check --deploy, health through nginx, smoke command)"
    else check smoke false "smoke checks: $why"; fi
  fi
  for mount in $mounts; do
    [ -d "$ROOT$mount" ] || continue
    free=$(df -P "$ROOT$mount" | awk 'NR==2 { gsub("%", "", $5); print 100 - $5 }')
    if [ "$free" -ge "$DISK_FREE_MIN_PERCENT" ]; then check "disk $mount" true "$mount has $free% free"
    else check "disk $mount" false "$mount has $free% free, below $DISK_FREE_MIN_PERCENT%"; fi
  done
  # The manual's "logs eat the disk": rotation keeps rotated logs until the monthly archive has
  # them, journald caps itself; this says how big they are and which file is the largest.
  local log_bytes log_largest log_file log_max_bytes=$((LOG_VOLUME_MAX_MB * 1048576)) logs_json
  read -r log_bytes log_largest log_file < <(status_log_sizes)
  detail="/var/log holds $((log_bytes / 1048576)) MB; largest file $log_file ($((log_largest / 1048576)) MB)"
  if [ "$log_bytes" -le "$log_max_bytes" ]; then check logs true "$detail"
  else check logs false "$detail, above LOG_VOLUME_MAX_MB $LOG_VOLUME_MAX_MB MB"; fi
  logs_json="{\"bytes\":$log_bytes,\"largest_file\":$(json_str "$log_file"),\"largest_bytes\":$log_largest}"
  metric LogVolumeBytes "$log_bytes" || echo "nourishctl: status: could not publish LogVolumeBytes" >&2
  metric LogLargestFileBytes "$log_largest" || echo "nourishctl: status: could not publish LogLargestFileBytes" >&2
  if [ "$json" -eq 1 ]; then
    local ok=true IFS=,
    [ "$failed" -eq 0 ] || ok=false
    printf '{"ok":%s,"role":%s,"checks":[%s],"logs":%s%s}\n' "$ok" "$(json_str "$ROLE")" "${checks[*]}" "$logs_json" "${db_json:+,\"database\":$db_json}"
  fi
  [ "$failed" -eq 0 ] || die "status: checks failed"
}
