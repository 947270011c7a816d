# shellcheck shell=bash
# nourishctl-roles: db
# Sourced by nourishctl, which provides die, say, pg_admin and the host.env values.
#
# The manual's emergency section for the database ("Database Connection Errors", "Locks and Long
# Queries"): what is connected, who blocks whom, what has run too long, which tables are largest
# and most bloated, which statements cost most; and cancelling the long queries, naming each one.
# Each section is one SELECT, shown as a table or (--json) as one JSON document.

VERBS+=("db|oncall|'db diagnose': locks, long queries, connections; 'db kill-long-queries'; 'db check' (weekly)")
help_db() {
  cat <<EOF
nourishctl db - what the database is doing, and cancelling what has run too long

usage: nourishctl db diagnose [--older-than DURATION] [--json]
       nourishctl db kill-long-queries --older-than DURATION [--terminate] [--user NAME | --all-users] [--json] --yes
       nourishctl db check

  diagnose: connections by state against max_connections, sessions waiting for a lock with the
  session that blocks each, queries running (or transactions open) longer than --older-than,
  the largest tables, the tables with most dead tuples, and pg_stat_statements' top statements
  by total time.
  kill-long-queries: lists the sessions of the app's database user (DB_USER) whose query has run,
  or whose transaction has been open, longer than DURATION; with --yes cancels their queries
  (pg_cancel_backend), with --terminate --yes ends the sessions (pg_terminate_backend: an idle
  transaction only ends that way). Without --yes nothing changes.
  check: pg_amcheck on the app's database (DB_NAME): every table's heap pages and every B-tree
  index, each index checked to hold every heap tuple (--heapallindexed); installs the amcheck
  extension when missing. Publishes DbCorruption (the number of problems found, 0 when none) to
  CloudWatch, whose alarm db-corruption fires on any; exit 1 naming the first problem. Read-only
  (AccessShareLock: the app keeps running). Its timer runs it weekly.

Options:
  --older-than DURATION  a number and s, m, h or d: 30s, 5m, 1h (diagnose default: 5m;
                         kill-long-queries: required)
  --terminate            end the sessions (default: cancel their queries only)
  --user NAME            whose sessions (default: DB_USER, ${DB_USER:-the app role})
  --all-users            every user's sessions
  --json                 one JSON document (default: tables)
  --yes                  do it (default: list only, nothing changes)
EOF
}

# Long-running: active for longer than the threshold, or a transaction open for longer.
db_long_running_sql() {
  local secs="$1" user_filter="${2:-}"
  cat <<SQL
SELECT pid, usename AS "user", datname AS database, state, application_name AS application,
       round(extract(epoch FROM now() - query_start))::int AS query_seconds,
       round(extract(epoch FROM now() - xact_start))::int AS transaction_seconds,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 120) AS query
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
   AND ((state = 'active' AND now() - query_start > make_interval(secs => :'secs'::int))
        OR (state LIKE 'idle in transaction%' AND now() - xact_start > make_interval(secs => :'secs'::int)))
   $user_filter
 ORDER BY greatest(now() - query_start, now() - xact_start) DESC
SQL
}

# section name → SELECT (run in DB_NAME: the activity views are cluster-wide, the table statistics per database)
db_diagnose_sections() {
  local secs="$1" statements="$2"
  DB_SECTIONS=(connections blocked long_running largest_tables most_dead_tuples top_statements)
  DB_TITLES=(
    "connections by state (max_connections $(db_scalar "SELECT current_setting('max_connections')"))"
    "blocked: waiting for a lock, and who holds it"
    "running for more than ${secs}s (queries) or with a transaction open that long"
    "largest tables"
    "most dead tuples (bloat: VACUUM reclaims them)"
    "top statements by total time (pg_stat_statements)"
  )
  DB_SQL=(
    "SELECT coalesce(state, '(none)') AS state, count(*)::int AS connections,
            round(100.0 * count(*) / current_setting('max_connections')::int, 1)::float AS percent_of_max
       FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC"
    "SELECT w.pid AS waiting_pid, w.usename AS waiting_user, round(extract(epoch FROM now() - w.query_start))::int AS waiting_seconds,
            left(regexp_replace(w.query, '\\s+', ' ', 'g'), 100) AS waiting_query, b.pid AS blocking_pid, b.usename AS blocking_user,
            b.state AS blocking_state, left(regexp_replace(b.query, '\\s+', ' ', 'g'), 100) AS blocking_query
       FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) JOIN pg_stat_activity b ON b.pid = bp.pid
      ORDER BY waiting_seconds DESC"
    "$(db_long_running_sql "$secs")"
    "SELECT relname AS \"table\", pg_size_pretty(bytes) AS size, bytes, live_rows, dead_rows FROM (
       SELECT s.relname, s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
              (c.relpages + coalesce(t.relpages, 0) + coalesce((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), 0))
              * current_setting('block_size')::bigint AS bytes
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid LEFT JOIN pg_class t ON t.oid = c.reltoastrelid) z
      ORDER BY bytes DESC, relname LIMIT 10"
    "SELECT relname AS \"table\", n_live_tup AS live_rows, n_dead_tup AS dead_rows,
            round(100.0 * n_dead_tup / greatest(n_live_tup + n_dead_tup, 1), 1)::float AS dead_percent, last_autovacuum, last_vacuum
       FROM pg_stat_user_tables WHERE n_dead_tup > 0 ORDER BY n_dead_tup DESC, relname LIMIT 10"
    "$statements"
  )
}

# psql on DB_NAME that never queues behind a lock: the tables it reads may be locked by the very
# sessions it is diagnosing (sizes come from pg_class's page counts, which take no lock).
#
# db_psql [PSQL OPTION…] SQL: the SQL goes in on stdin, because psql interpolates variables there
# and not in -c. Every value reaches it as a psql variable (:'secs', :'who', :'dbname', :'action'
# from DB_SECS, DB_WHO, DB_NAME, DB_ACTION), never pasted into the text.
db_psql() {
  local sql="${*: -1}"
  pg_admin psql -X -q -v ON_ERROR_STOP=1 -d "$DB_NAME" -v secs="${DB_SECS:-0}" -v who="${DB_WHO:-}" \
    -v dbname="$DB_NAME" -v action="${DB_ACTION:-}" "${@:1:$#-1}" -f - <<<"SET lock_timeout = '5s';
$sql"
}
db_scalar() { db_psql -A -t "$1"; }

# 30s, 5m, 2h (or plain seconds) → seconds; dies naming the option otherwise.
db_duration() {
  local v="$1" what="$2"
  [[ "$v" =~ ^([1-9][0-9]{0,5})(s|m|h)?$ ]] || die "$what: '$v' is not a duration (such as 30s, 5m, 1h); nothing changed"
  case "${BASH_REMATCH[2]}" in
    m) echo $((BASH_REMATCH[1] * 60)) ;;
    h) echo $((BASH_REMATCH[1] * 3600)) ;;
    *) echo "${BASH_REMATCH[1]}" ;;
  esac
}

db_diagnose() {
  local secs=300 json="" i
  while [ $# -gt 0 ]; do
    case "$1" in
      --older-than) secs=$(db_duration "${2:-}" "db diagnose: --older-than") || exit 1; shift 2 ;;
      --json) json=1; shift ;;
      *) die "db diagnose: unknown option '$1' (--older-than DURATION, --json)" ;;
    esac
  done
  local statements=""
  if [ "$(db_scalar "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'" 2>/dev/null)" = 1 ]; then
    statements="SELECT round(total_exec_time)::bigint AS total_ms, calls, round(mean_exec_time::numeric, 1)::float AS mean_ms,
                       left(regexp_replace(query, '\\s+', ' ', 'g'), 120) AS query
                  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                 ORDER BY total_exec_time DESC LIMIT 10"
  fi
  DB_SECS="$secs"
  db_diagnose_sections "$secs" "$statements"
  if [ -n "$json" ]; then
    local parts=("'database', :'dbname'" "'threshold_seconds', :'secs'::int" "'max_connections', current_setting('max_connections')::int")
    for ((i = 0; i < ${#DB_SECTIONS[@]}; i++)); do
      if [ -n "${DB_SQL[i]}" ]; then parts+=("'${DB_SECTIONS[i]}', (SELECT coalesce(json_agg(t), '[]') FROM (${DB_SQL[i]}) t)")
      else parts+=("'${DB_SECTIONS[i]}', NULL"); fi
    done
    local IFS=,
    db_scalar "SELECT json_build_object(${parts[*]})" || die "db diagnose: cannot query $DB_NAME"
    return 0
  fi
  say "db diagnose: $DB_NAME at $(date -u +%FT%TZ)"
  for ((i = 0; i < ${#DB_SECTIONS[@]}; i++)); do
    echo
    echo "== ${DB_TITLES[i]}"
    if [ -z "${DB_SQL[i]}" ]; then
      echo "(pg_stat_statements is not installed in $DB_NAME: nourishctl setup creates it)"
      continue
    fi
    db_psql -P footer=off -P null='-' "${DB_SQL[i]}" || die "db diagnose: cannot query $DB_NAME"
  done
}


db_kill_long_queries() {
  local secs="" terminate="" yes="" json="" user="${DB_USER:-}" all=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --older-than) secs=$(db_duration "${2:-}" "db kill-long-queries: --older-than") || exit 1; shift 2 ;;
      --terminate) terminate=1; shift ;;
      --user) user="${2:-}"; shift 2 ;;
      --all-users) all=1; shift ;;
      --yes) yes=1; shift ;;
      --json) json=1; shift ;;
      *) die "db kill-long-queries: unknown option '$1' (--older-than DURATION [--terminate] [--user NAME | --all-users] --yes)" ;;
    esac
  done
  [ -n "$secs" ] || die "db kill-long-queries: say how old with --older-than DURATION (such as 5m); nothing changed"
  local filter=""
  if [ -z "$all" ]; then
    [[ "$user" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "db kill-long-queries: '--user ${user}' is not a database role name (default DB_USER from host.env); nothing changed"
    filter="AND usename = :'who'"
  fi
  # One statement selects and acts, so what it names is exactly what it signalled (no pid reused
  # between a listing and a kill). Cancel stops the running statement; an idle transaction holds
  # its locks until it is terminated.
  local action="NULL::boolean"
  if [ -n "$yes" ]; then
    if [ -n "$terminate" ]; then action="pg_terminate_backend(pid)"; else action="pg_cancel_backend(pid)"; fi
  fi
  local verb="cancel"
  [ -n "$terminate" ] && verb="terminate"
  DB_SECS="$secs" DB_WHO="$user" DB_ACTION="${yes:+$verb}"
  local sql
  sql="SELECT l.*, $action AS signalled FROM ($(db_long_running_sql "$secs" "$filter")) l"
  local out
  if [ -n "$json" ]; then
    out=$(db_scalar "SELECT json_build_object('action', :'action', 'threshold_seconds', :'secs'::int, 'sessions', (SELECT coalesce(json_agg(t), '[]') FROM ($sql) t))") \
      || die "db kill-long-queries: cannot query $DB_NAME"
    echo "$out"
    return 0
  fi
  out=$(db_psql -A -t -F $'\t' "$sql") || die "db kill-long-queries: cannot query $DB_NAME"
  local n=0 pid u db state qs ts q sig
  while IFS=$'\t' read -r pid u db state _ qs ts q sig; do
    [ -n "$pid" ] || continue
    n=$((n + 1))
    local note=""
    [ -z "$terminate" ] && [[ "$state" == idle\ in\ transaction* ]] && note=" (idle in a transaction: a cancel does not end it, --terminate does)"
    if [ -z "$yes" ]; then echo "would $verb pid $pid ($u on $db, $state, query ${qs}s, transaction ${ts}s): $q$note"
    elif [ "$sig" = t ]; then echo "${verb}led pid $pid ($u on $db, $state, query ${qs}s, transaction ${ts}s): $q$note"
    else echo "could not $verb pid $pid (it ended first): $q"; fi
  done <<<"$out"
  local who="${all:+every user}"
  who="${who:-user $user}"
  if [ "$n" -eq 0 ]; then say "db kill-long-queries: nothing of $who older than ${secs}s; nothing changed"
  elif [ -z "$yes" ]; then say "db kill-long-queries: $n session(s) of $who older than ${secs}s; nothing changed: add --yes to ${verb} them"
  else say "db kill-long-queries: ${verb}led $n session(s) of $who older than ${secs}s"; fi
}

# The manual's "corruption": pg_amcheck reads every page of the app's tables and B-tree indexes.
# It reports each problem as a relation line ('heap table "DB.SCHEMA.T", block N, offset M:' or
# 'btree index "DB.SCHEMA.I":') followed by the detail, indented (a page failing its data checksum
# is the ERROR "invalid page in block N of relation ..."). DbCorruption counts those reports.
db_check() {
  [ $# -eq 0 ] || die "db check: unknown option '$1' (none)"
  host_env_need DB_NAME STACK
  local out rc=0 problems first
  out=$(pg_admin "$PG_BINDIR/pg_amcheck" --no-password --install-missing --heapallindexed -d "$DB_NAME" 2>&1) || rc=$?
  problems=$(grep -cE '^(heap table|btree index) "' <<<"$out" || true)
  if [ "$rc" -ne 0 ] && [ "$problems" -eq 0 ]; then
    # No problem named: pg_amcheck could not check (no server, no database); nothing to publish.
    die "db check: pg_amcheck could not check $DB_NAME (exit $rc): $(grep -m1 -v '^NOTICE:' <<<"$out")"
  fi
  metric DbCorruption "$problems" || die "db check: cannot publish DbCorruption to CloudWatch"
  if [ "$problems" -gt 0 ]; then
    printf '%s\n' "$out" >&2
    first=$(grep -m1 -A1 -E '^(heap table|btree index) "' <<<"$out" | tr -s ' \n' ' ')
    die "db check: $problems problem(s) in $DB_NAME: ${first% }"
  fi
  say "db check: $DB_NAME: heap and B-tree indexes checked by pg_amcheck (--heapallindexed), no corruption"
}

cmd_db() {
  case "${1:-}" in
    check) shift; db_check "$@" ;;
    diagnose) shift; host_env_need DB_NAME; db_diagnose "$@" ;;
    kill-long-queries) shift; host_env_need DB_NAME; db_kill_long_queries "$@" ;;
    --help|"")
      help_db
      [ -n "${1:-}" ] && return 0; exit 2 ;;
    *) die "db: unknown command '$1' (diagnose, kill-long-queries or check)" ;;
  esac
}
