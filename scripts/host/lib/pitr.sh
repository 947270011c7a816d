# shellcheck shell=bash
# nourishctl-roles: db
# Sourced by nourishctl, which provides die, say, pg_admin, metric, ssm_secret and the host.env
# values: PITR (true/false), PGBACKREST_BUCKET, PGBACKREST_CIPHER_PARAMETER, REGION, DB_NAME.
#
# Point-in-time recovery with pgBackRest: PostgreSQL archives every WAL segment (archive_command,
# at least once a minute) into an encrypted repository in S3; weekly full and daily differential
# backups are the starting points. pitr_restore_to_db rebuilds the database as it was at a moment
# into a NEW database of the live cluster, through a temporary cluster; the live one is never
# touched.

VERBS+=("pitr|point-in-time recovery with pgBackRest: setup, backup [full|diff|incr], info, restore --at <time> --as <db>, recover [--at <time>] --yes")

PITR_STANZA=nourish-link
# The finished file (passphrase included) and the template Pulumi ships (everything else).
PGBACKREST_CONFIG="${PGBACKREST_CONFIG:-$ROOT/etc/pgbackrest/pgbackrest.conf}"
PGBACKREST_TEMPLATE="${PGBACKREST_TEMPLATE:-$ROOT/etc/pgbackrest/pgbackrest.conf.in}"
PITR_CIPHER_PLACEHOLDER="@PGBACKREST_CIPHER_PASS@"
# A full backup when the last one is this old (weekly fulls, daily differentials).
PITR_FULL_EVERY_DAYS="${PITR_FULL_EVERY_DAYS:-7}"

# pgBackRest as the postgres OS user, with this host's configuration and stanza.
pgbr() {
  pg_admin pgbackrest --config="$PGBACKREST_CONFIG" --stanza="$PITR_STANZA" "$@"
}

pitr_enabled() {
  [ "${PITR:-false}" = true ]
}

pitr_require() {
  pitr_enabled || die "pitr: point-in-time recovery is off on this host (PITR=${PITR:-unset} in $HOST_ENV; stack key backups.pitr)"
  command -v pgbackrest >/dev/null || die "pitr: pgbackrest is not installed (apt-get install -y pgbackrest)"
}

# Writes the finished configuration from the template and the passphrase in SSM: the passphrase
# goes from the aws CLI's stdout into this shell's memory and into a 0640 root:postgres file,
# never onto a command line (sed, echo in argv) where ps could read it.
pitr_write_config() {
  if [ ! -r "$PGBACKREST_TEMPLATE" ]; then
    [ -r "$PGBACKREST_CONFIG" ] || die "pitr setup: neither $PGBACKREST_CONFIG nor its template $PGBACKREST_TEMPLATE exists"
    say "pitr setup: using $PGBACKREST_CONFIG as it is (no template at $PGBACKREST_TEMPLATE)"
    return 0
  fi
  [ -n "${PGBACKREST_CIPHER_PARAMETER:-}" ] || die "pitr setup: PGBACKREST_CIPHER_PARAMETER is not set in $HOST_ENV"
  local pass template dir tmp
  pass=$(ssm_secret "$PGBACKREST_CIPHER_PARAMETER") || die "pitr setup: cannot read $PGBACKREST_CIPHER_PARAMETER from SSM"
  [ "${#pass}" -ge 20 ] || die "pitr setup: the passphrase in $PGBACKREST_CIPHER_PARAMETER is shorter than 20 characters"
  case "$pass" in *[[:space:]]*) die "pitr setup: the passphrase in $PGBACKREST_CIPHER_PARAMETER contains white space" ;; esac
  template=$(<"$PGBACKREST_TEMPLATE")
  case "$template" in *"repo1-cipher-pass=$PITR_CIPHER_PLACEHOLDER"*) ;; *) die "pitr setup: $PGBACKREST_TEMPLATE has no repo1-cipher-pass=$PITR_CIPHER_PLACEHOLDER line" ;; esac
  dir=$(dirname "$PGBACKREST_CONFIG")
  install -d -m 0750 -o root -g postgres "$dir"
  tmp=$(mktemp "$dir/.pgbackrest.conf.XXXXXX")
  chmod 0640 "$tmp"
  chgrp postgres "$tmp"
  printf '%s\n' "${template//"$PITR_CIPHER_PLACEHOLDER"/"$pass"}" > "$tmp"
  mv "$tmp" "$PGBACKREST_CONFIG"
  say "pitr setup: wrote $PGBACKREST_CONFIG (0640 root:postgres) with the passphrase from $PGBACKREST_CIPHER_PARAMETER"
}

pitr_setup() {
  pitr_require
  pitr_write_config
  grep -q "^repo1-cipher-pass=$PITR_CIPHER_PLACEHOLDER" "$PGBACKREST_CONFIG" \
    && die "pitr setup: $PGBACKREST_CONFIG still holds the passphrase placeholder"
  local mode
  mode=$(pg_admin psql -X -A -t -q -c "SHOW archive_mode") || die "pitr setup: cannot reach PostgreSQL"
  [ "$mode" = on ] || die "pitr setup: archive_mode is '$mode' in PostgreSQL; restart it so the archive settings take effect"
  # stanza-create takes every lock of the stanza, so it waits out a running archive-push; it is
  # needed only once, and skipped when the stanza is already in order.
  if ! pgbr info 2>/dev/null | grep -q "status: ok"; then
    local try out
    for try in $(seq 1 60); do
      out=$(pgbr stanza-create 2>&1) && break
      case "$out" in *"unable to acquire lock"*) [ "$try" -lt 60 ] && { sleep 1; continue; } ;; esac
      die "pitr setup: stanza-create failed (bucket ${PGBACKREST_BUCKET:-?}): $(grep -m1 ERROR <<<"$out")"
    done
  fi
  # check: the repository is reachable and a WAL segment makes it through archive_command.
  pgbr check >/dev/null || die "pitr setup: check failed: WAL archiving to the repository does not work"
  say "pitr setup: stanza $PITR_STANZA ready, WAL archiving works"
}

# The repository's backups as "<label> <type> <start epoch> <stop epoch>" lines, oldest first.
pitr_backups() {
  local json
  json=$(pgbr --output=json info) || return 1
  python3 -c '
import json, sys
for stanza in json.load(sys.stdin):
    for b in stanza.get("backup", []):
        print(b["label"], b["type"], b["timestamp"]["start"], b["timestamp"]["stop"])
' <<<"$json"
}

# full when none exists or the last full is PITR_FULL_EVERY_DAYS old, else diff.
pitr_default_type() {
  local backups last_full
  backups=$(pitr_backups) || return 1
  last_full=$(awk '$2 == "full" { t = $4 } END { print t + 0 }' <<<"$backups")
  if [ "$last_full" -eq 0 ] || [ $(( $(date +%s) - last_full )) -ge $(( PITR_FULL_EVERY_DAYS * 86400 )) ]; then
    echo full
  else
    echo diff
  fi
}

pitr_backup() {
  pitr_require
  local type="${1:-}"
  case "$type" in
    "") type=$(pitr_default_type) || die "pitr backup: cannot list the repository's backups (info failed)" ;;
    full|diff|incr) ;;
    *) die "pitr backup: unknown type '$type' (full, diff or incr)" ;;
  esac
  say "pitr backup: $type backup of stanza $PITR_STANZA"
  pgbr --type="$type" backup || die "pitr backup: $type backup failed"
  metric PitrBackupSuccess 1
  say "pitr backup: $type backup done"
}

# pitr_parse_time <time> <verb>: prints "<time>|<epoch>", the time as pgBackRest and PostgreSQL
# both read it without ambiguity (UTC, explicit offset). Only an explicit timestamp with its UTC
# offset is accepted (2025-03-01 14:05:00+02, 2025-03-01T12:05:00.5Z): no "yesterday", no
# "next week", no time zone left to the reader's setting, nothing in the future. Parsed without
# PostgreSQL, which may be down (that is when one recovers); dies naming the time.
pitr_parse_time() {
  local out rc=0
  out=$(python3 - "$1" <<'PY'
import datetime, re, sys
m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(Z|[+-]\d{2}(?::?\d{2})?)", sys.argv[1])
if not m:
    sys.exit(2)
off = m.group(3)
off = "+00:00" if off == "Z" else off[:3] + ":" + (off[3:].lstrip(":") or "00")
try:
    t = datetime.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{off}")
except ValueError:
    sys.exit(2)
if t > datetime.datetime.now(datetime.timezone.utc):
    sys.exit(3)
u = t.astimezone(datetime.timezone.utc)
print(u.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00|" + str(int(u.timestamp() // 1)))
PY
) || rc=$?
  case "$rc" in
    0) echo "$out" ;;
    3) die "$2: $1 is in the future; there is nothing to recover to yet" ;;
    *) die "$2: '$1' is not an explicit time with its UTC offset (e.g. '2025-03-01 14:05:00+02'); nothing changed" ;;
  esac
}

# The EXIT trap of pitr_restore_to_db (its subshell's variables): stop and delete the temporary
# cluster; drop the target database unless it was restored completely, and only when this run
# created it ($created is set after CREATE DATABASE succeeded).
# shellcheck disable=SC2317,SC2154  # invoked by the trap; the variables are pitr_restore_to_db's
pitr_restore_cleanup() {
  if [ -n "$started" ]; then
    pg_admin "$PG_BINDIR/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  if [ -n "$created" ] && [ -z "$done_ok" ]; then
    db_drop "$target" 2>/dev/null || true
  fi
}

# pitr_restore_to_db <time> <target db>: the database DB_NAME as it was at <time>, restored into
# a new database <target db> of the live cluster. Leaves it for the caller to check and swap.
# Runs in a subshell so its EXIT trap (which stops and deletes the temporary cluster, and drops a
# half-restored target) never replaces the caller's; every step is checked explicitly, since
# errexit does not apply when the caller tests the result.
pitr_restore_to_db() (
  at="${1:-}"
  target="${2:-}"
  if [ -z "$at" ] || [ -z "$target" ]; then die "restore: usage: pitr_restore_to_db <time> <target database>"; fi
  db_ident_check "$target" restore
  [ -n "${DB_NAME:-}" ] || die "restore: DB_NAME is not set in $HOST_ENV"
  [ "$target" != "$DB_NAME" ] || die "restore: the target must be a new database, not the live $DB_NAME"
  pitr_require

  # psql -c does not interpolate variables: statements go through stdin.
  exists=$(pg_admin psql -X -A -t -q -v db="$target" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'") \
    || die "restore: cannot reach the live PostgreSQL"
  [ -z "$exists" ] || die "restore: database $target already exists; drop it or choose another name"

  when=$(pitr_parse_time "$at" restore) || exit 1
  IFS='|' read -r target_time target_epoch <<<"$when"

  # A commit after the target (recovery stops at the first one past it; without one it would
  # replay to the end of the WAL and fail), then check: switches and archives the current WAL.
  pg_admin psql -X -q -c "SELECT txid_current()" >/dev/null || die "restore: cannot reach the live PostgreSQL"
  pgbr check >/dev/null 2>&1 || echo "nourishctl: warning: restore: pgbackrest check failed; recovering from what the repository already holds" >&2

  backups=$(pitr_backups) || die "restore: cannot list the repository's backups (pgbackrest info failed)"
  [ -n "$backups" ] || die "restore: the repository holds no backup yet; run 'nourishctl pitr backup'"
  oldest=$(awk 'NR == 1 { print $4 }' <<<"$backups")
  if [ "$target_epoch" -lt "$oldest" ]; then
    die "restore: $at is before the end of the oldest backup ($(date -u -d "@$oldest" '+%Y-%m-%d %H:%M:%S+00')); cannot recover to it"
  fi
  # The newest backup that ended before the target: the least WAL to replay.
  set_label=$(awk -v t="$target_epoch" '$4 <= t { l = $1 } END { print l }' <<<"$backups")

  work_parent="${PITR_WORK_DIR:-$ROOT$DATA_MOUNT}"
  install -d "$work_parent" || die "restore: cannot create $work_parent"
  work=$(mktemp -d "$work_parent/pitr-restore.XXXXXX") || die "restore: cannot create a work directory under $work_parent"
  chown postgres:postgres "$work"
  chmod 0700 "$work"
  data="$work/data"
  install -d -m 0700 -o postgres -g postgres "$data"
  started=""
  created=""
  done_ok=""
  trap pitr_restore_cleanup EXIT

  say "restore: recovering $PITR_STANZA to $target_time from backup $set_label into $data"
  # archive-mode=off: the temporary cluster must never push its own WAL into the repository.
  # The live cluster's archive-push keeps its queue and status files in the spool path, which a
  # restore clears: the restore gets a spool of its own. Its restore_command fetches WAL
  # synchronously: the asynchronous archive-get would take the stanza's archive lock.
  local_get="pgbackrest --config=$PGBACKREST_CONFIG --stanza=$PITR_STANZA --pg1-path=$data --no-archive-async archive-get %f \"%p\""
  pgbr restore --set="$set_label" --type=time --target="$target_time" --target-action=promote \
    --archive-mode=off --pg1-path="$data" --spool-path="$work/spool" \
    --recovery-option="restore_command=$local_get" >/dev/null \
    || die "restore: pgbackrest restore into $data failed"

  # A minimal configuration of our own: no TCP, a socket in the work directory, no archiving,
  # no hot standby (so nothing connects before recovery has ended and the server promoted).
  {
    echo "listen_addresses = ''"
    echo "port = 5432"
    echo "unix_socket_directories = '$work'"
    echo "hba_file = '$work/pg_hba.conf'"
    echo "ident_file = '$work/pg_ident.conf'"
    echo "archive_mode = off"
    echo "hot_standby = off"
    echo "max_connections = 20"
    echo "shared_buffers = 128MB"
    echo "timezone = 'UTC'"
    echo "log_timezone = 'UTC'"
    echo "logging_collector = off"
  } > "$work/postgresql.conf"
  echo "local all postgres peer" > "$work/pg_hba.conf"
  : > "$work/pg_ident.conf"
  chown postgres:postgres "$work/postgresql.conf" "$work/pg_hba.conf" "$work/pg_ident.conf"

  started=1
  pg_admin "$PG_BINDIR/pg_ctl" -D "$data" -o "-c config_file=$work/postgresql.conf" -l "$work/server.log" -W start >/dev/null 7>&- 9>&- \
    || die "restore: the temporary cluster did not start: $(tail -n 3 "$work/server.log" 2>/dev/null | tr '\n' ' ')"

  tmp_psql() { pg_admin "$PG_BINDIR/psql" -X -A -t -q -h "$work" -p 5432 "$@"; }
  deadline=$(( $(date +%s) + ${PITR_RECOVERY_TIMEOUT:-3600} ))
  down=0
  until [ "$(tmp_psql -d postgres -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ]; do
    # Gone (no postmaster for 2 s: pg_ctl -W returns before it has written its pid file).
    if pg_admin "$PG_BINDIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then down=0; else down=$((down + 1)); fi
    if [ "$down" -ge 10 ]; then
      die "restore: recovery to $target_time failed: $(grep -E 'FATAL|PANIC' "$work/server.log" | tail -n 2 | tr '\n' ' ')"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "restore: recovery did not finish within ${PITR_RECOVERY_TIMEOUT:-3600} s"
    sleep 0.2
  done
  grep -q "recovery stopping" "$work/server.log" \
    || die "restore: recovery ended before reaching $target_time (is the WAL up to then archived?)"
  say "restore: recovered to $target_time; copying $DB_NAME into $target"

  pg_admin "$PG_BINDIR/pg_dump" -h "$work" -p 5432 -Fc -f "$work/db.dump" "$DB_NAME" \
    || die "restore: pg_dump of $DB_NAME from the temporary cluster failed"
  # Restored as the app's role, into a database it owns (lib/backup.sh, bk_restore_dump): what the
  # app's database holds runs with the app's rights, never a superuser's.
  owner=$(bk_app_role restore) || exit 1
  pg_admin psql -X -q -v ON_ERROR_STOP=1 -v db="$target" -v owner="$owner" >/dev/null <<<"SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0', :'db', :'owner')"$'\n\\gexec' \
    || die "restore: cannot create database $target"
  created=1
  BK_TMPDIR="$work" bk_restore_dump "$work/db.dump" "$target" "$DB_NAME as of $target_time"
  done_ok=1
  say "restore: $target holds $DB_NAME as of $target_time (left for you to check and swap)"
)

# Disaster recovery of the whole cluster on this host (the host was replaced and its data volume
# lost, or the cluster is damaged beyond a per-database restore): PostgreSQL stopped, the current
# data directory kept aside, the repository restored into an empty one, recovery replayed to the
# end of the archived WAL (or to --at), and PostgreSQL serving again.
pitr_recover() {
  local at="$1" ts kept="" target=() when
  pitr_require
  ts=$(date -u +%Y%m%d_%H%M%S)
  if [ -n "$at" ]; then
    # Checked before PostgreSQL is stopped, without it (the server may be gone).
    when=$(pitr_parse_time "$at" "pitr recover") || exit 1
    at="${when%%|*}"
    target=(--type=time "--target=$at" --target-action=promote)
  fi
  db_lock "pitr recover" exclusive
  say "pitr recover: stopping PostgreSQL"
  svc_ctl stop postgresql
  if [ -d "$PG_DATA" ] && [ -n "$(ls -A "$PG_DATA" 2>/dev/null)" ]; then
    kept="$PG_DATA.before_recover_$ts"
    mv "$PG_DATA" "$kept" || die "pitr recover: cannot move $PG_DATA aside"
    say "pitr recover: kept the previous data directory as $kept"
  fi
  install -d -m 0700 -o postgres -g postgres "$PG_DATA"
  local t0=$EPOCHREALTIME t1 t2
  if ! pgbr restore --pg1-path="$PG_DATA" "${target[@]}" --log-level-console=warn; then
    [ -n "$kept" ] && { rm -rf "$PG_DATA"; mv "$kept" "$PG_DATA"; svc_ctl start postgresql || true; }
    die "pitr recover: pgbackrest restore failed${kept:+; the previous data directory is back in place}"
  fi
  t1=$EPOCHREALTIME
  svc_ctl start postgresql || die "pitr recover: PostgreSQL did not start on the restored data (see its log)"
  local _
  for _ in $(seq 1 600); do
    [ "$(pg_admin psql -XAtqc "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ] && break
    sleep 0.2
  done
  [ "$(pg_admin psql -XAtqc "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ] || die "pitr recover: PostgreSQL is still replaying WAL after 2 minutes"
  t2=$EPOCHREALTIME
  # PostgreSQL's checkpointer plans its sleep during the end-of-recovery checkpoint, while recovery
  # still counts as in progress, so it ignores archive_timeout and sleeps for checkpoint_timeout
  # (5 min): no timed WAL switch, and an RPO of minutes, right after a recovery. A checkpoint
  # wakes it to plan again with archive_timeout in force (measured in test/pitr.test.ts).
  pg_admin psql -XAtqc "CHECKPOINT" >/dev/null || die "pitr recover: PostgreSQL is serving, but CHECKPOINT failed"
  # Put the new timeline into the repository now (history file and first segment), rather than
  # whenever archive_timeout next switches segments.
  pgbr check >/dev/null || die "pitr recover: PostgreSQL is serving, but archiving to the repository fails (pgbackrest check)"
  metric PitrRecoverSuccess 1
  say "pitr recover: PostgreSQL serving, recovered to ${at:-the end of the archived WAL}${kept:+; previous data in $kept}"
  say "pitr recover: took $(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$EPOCHREALTIME" \
    'BEGIN { printf "%.1f s: repository restore %.1f s, WAL replay to serving %.1f s, checkpoint and archive check %.1f s", d - a, b - a, c - b, d - c }')"
}

cmd_pitr() {
  local sub="${1:-}"
  [ $# -gt 0 ] && shift
  case "$sub" in
    setup)
      [ "${1:-}" = --help ] && { echo "usage: nourishctl pitr setup    (config from SSM, stanza-create, check; idempotent)"; return 0; }
      db_lock "pitr setup" exclusive
      pitr_setup ;;
    backup)
      [ "${1:-}" = --help ] && { echo "usage: nourishctl pitr backup [full|diff|incr]    (default: full when the last is ${PITR_FULL_EVERY_DAYS} days old or none exists, else diff)"; return 0; }
      db_lock "pitr backup" shared
      pitr_backup "$@" ;;
    info)
      [ "${1:-}" = --help ] && { echo "usage: nourishctl pitr info    (the repository's backups and WAL range)"; return 0; }
      pitr_require
      pgbr info || die "pitr info: pgbackrest info failed" ;;
    restore)
      local at="" as=""
      while [ $# -gt 0 ]; do
        case "$1" in
          --at) at="${2:-}"; shift 2 || die "pitr restore: --at needs a time" ;;
          --as) as="${2:-}"; shift 2 || die "pitr restore: --as needs a database name" ;;
          --help) echo "usage: nourishctl pitr restore --at '<time>' --as <new database>    (the live cluster is not touched)"; return 0 ;;
          *) die "pitr restore: unknown option '$1'" ;;
        esac
      done
      if [ -z "$at" ] || [ -z "$as" ]; then die "pitr restore: usage: nourishctl pitr restore --at '<time>' --as <new database>"; fi
      db_ident_check "$as" "pitr restore"
      db_lock "pitr restore" exclusive
      pitr_restore_to_db "$at" "$as" ;;
    recover)
      local at="" yes=""
      while [ $# -gt 0 ]; do
        case "$1" in
          --at) at="${2:-}"; shift 2 || die "pitr recover: --at needs a time" ;;
          --yes) yes=1; shift ;;
          --help) echo "usage: nourishctl pitr recover [--at '<time>'] --yes    (replace this host's cluster from the repository; the old data directory is kept)"; return 0 ;;
          *) die "pitr recover: unknown option '$1'" ;;
        esac
      done
      [ -n "$yes" ] || die "pitr recover: replaces the whole cluster on this host; say --yes"
      pitr_recover "$at" ;;
    ""|--help|help)
      echo "usage: nourishctl pitr setup|backup [full|diff|incr]|info|restore --at <time> --as <db>|recover [--at <time>] --yes" ;;
    *) die "pitr: unknown subcommand '$sub' (setup, backup, info, restore, recover)" ;;
  esac
}

# First boot (setup_db): configure the repository, create the stanza and take the first full
# backup, so the host can be recovered to any point from then on. A no-op when PITR is off.
pitr_setup_hook() {
  pitr_enabled || return 0
  pitr_setup
  [ -n "$(pitr_backups)" ] || pitr_backup full
}
