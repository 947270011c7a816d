# shellcheck shell=bash
# nourishctl-roles: app
# Sourced by nourishctl, which provides die, say, metric and the host.env values; uses lib/release.sh.
#
# The app host's half of the weekly restore test (lib/rehearsal.sh is the database host's): the
# live release migrates the restored database to its own schema, passes `manage.py check
# --deploy` and answers the health URL through nginx; then the rehearsal's figures go to
# CloudWatch: RestoreRehearsalSuccess (1), RestoreRehearsalSeconds (the restore on the database
# host plus this half: time to a serving database, the RTO) and RestoreRehearsalBackupAgeSeconds
# (the backup's age when the rehearsal started, its RPO). Nothing is published on failure.
# `--report-age` publishes RestoreRehearsalAgeSeconds (since the last success) for the alarm.

VERBS+=("restore-rehearsal-verify|internal|finish a restore rehearsal on the app host (its SSM document runs it); --report-age")
help_restore_rehearsal_verify() {
  cat <<EOF
nourishctl restore-rehearsal-verify - finish a restore rehearsal (staging app host)

usage: nourishctl restore-rehearsal-verify [--report-age]

  After \`nourishctl restore-rehearsal\` on the database host: migrates the restored database with
  the live release (release migrate), runs the smoke checks (nourishctl smoke: check --deploy,
  the health URL through nginx, the app's smoke command), then publishes RestoreRehearsalSuccess, RestoreRehearsalSeconds (restore plus
  this, the RTO) and RestoreRehearsalBackupAgeSeconds (the RPO), and prints a JSON summary last:
  {"ok", "at", "backupKey", "backupSha256", "seconds", "backupAgeSeconds"}.

Options:
  --report-age  only publish RestoreRehearsalAgeSeconds: seconds since the last success on this
                host (its timer runs it)
EOF
}

RR_STATE_DIR="$ROOT/var/lib/nourish-link/rehearsal"
# No success recorded on this host yet: an age well past any alarm's threshold.
RR_NEVER_SECONDS=99999999

# The record restore-rehearsal left on the live database (its comment), read through the app's
# own connection: "nourishctl restore-rehearsal key=… sha256=… backup_time=… started=… restore_seconds=…".
rr_record() {
  rel_manage "$1" shell -c "from django.db import connection
c = connection.cursor()
c.execute(\"SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = current_database()\")
print(c.fetchone()[0])" 2>/dev/null | tail -1
}

rr_field() {
  local record="$1" name="$2" w
  for w in $record; do
    [ "${w%%=*}" = "$name" ] && { echo "${w#*=}"; return 0; }
  done
  return 1
}

cmd_restore_rehearsal_verify() {
  case "${1:-}" in
    --help) help_restore_rehearsal_verify; return 0 ;;
    --report-age)
      local last now age
      now=$(date -u +%s)
      last=$(cat "$RR_STATE_DIR/last-success" 2>/dev/null || true)
      if [[ "$last" =~ ^[0-9]+$ ]]; then age=$((now - last)); else age=$RR_NEVER_SECONDS; fi
      metric RestoreRehearsalAgeSeconds "$age"
      say "restore-rehearsal-verify: last success ${last:+$(( age / 3600 )) h ago}${last:-never recorded on this host}"
      return 0 ;;
    "") ;;
    *) die "restore-rehearsal-verify: unknown option '$1' (see nourishctl restore-rehearsal-verify --help)" ;;
  esac
  [ "${STACK:-}" != prod ] || die "restore-rehearsal-verify: refused on STACK=prod: rehearsals run on staging"
  local t0 v record key sha backup_time started restore_seconds
  t0=$EPOCHREALTIME
  v=$(rel_current)
  [ -n "$v" ] || die "restore-rehearsal-verify: no release is live on this host"
  record=$(rr_record "$v") || record=""
  [[ "$record" == "nourishctl restore-rehearsal "* ]] \
    || die "restore-rehearsal-verify: the live database was not put there by nourishctl restore-rehearsal (its comment: '${record:0:60}'); run it on the database host first"
  if ! { key=$(rr_field "$record" key) && sha=$(rr_field "$record" sha256) && backup_time=$(rr_field "$record" backup_time) \
    && started=$(rr_field "$record" started) && restore_seconds=$(rr_field "$record" restore_seconds); }; then
    die "restore-rehearsal-verify: the rehearsal record on the live database is incomplete: '$record'"
  fi
  [[ "$key" =~ $BK_KEY_RE && "$sha" =~ ^[0-9a-f]{64}$ && "$started" =~ ^[0-9]+$ && "$restore_seconds" =~ ^[0-9]+(\.[0-9]+)?$
     && "$backup_time" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] \
    || die "restore-rehearsal-verify: the rehearsal record on the live database is malformed: '$record'"
  rel_lock "restore-rehearsal-verify"
  # Prod's schema to staging's release: what the next prod release will do to prod's data.
  rel_migrate "$v"
  local why
  # The smoke checks (lib/smoke.sh): check --deploy, the health path through nginx, the app's smoke command.
  why=$(smoke_checks "$v") || die "restore-rehearsal-verify: $v on $key: $why"
  local seconds age at
  seconds=$(awk -v r="$restore_seconds" -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", r + b - a }')
  age=$(( started - $(date -u -d "$backup_time" +%s) ))
  at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  metric RestoreRehearsalSuccess 1
  metric RestoreRehearsalSeconds "$seconds"
  metric RestoreRehearsalBackupAgeSeconds "$age"
  if ! { mkdir -p "$RR_STATE_DIR" && date -u +%s > "$RR_STATE_DIR/last-success"; }; then
    say "restore-rehearsal-verify: warning: cannot record the success in $RR_STATE_DIR"
  fi
  say "restore-rehearsal-verify: ok: $key serves as $v after $seconds s (backup age $age s)"
  printf '{"ok": true, "at": "%s", "backupKey": "%s", "backupSha256": "%s", "seconds": %s, "backupAgeSeconds": %s}\n' "$at" "$key" "$sha" "$seconds" "$age"
}
