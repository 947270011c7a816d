# shellcheck shell=bash
# nourishctl-roles: db
# Sourced by nourishctl, which provides die, say, pg_admin, aws_cli and the host.env values; uses
# the restore of lib/backup.sh.
#
# The manual's weekly restore test, on staging's database host: prod's backup (from prod's bucket,
# read-only) restored into staging's live database by the restore itself (checksum first, a new
# database, checked against the backup's manifest), optionally scrubbed, then swapped in with the
# previous database kept. The app host finishes it (lib/rehearsal-verify.sh): migrate to staging's
# release, manage.py check, the health URL through nginx, the metrics. The two halves meet in the
# live database's comment, which this half writes:
#   nourishctl restore-rehearsal key=K sha256=S backup_time=ISO started=EPOCH restore_seconds=N
#
# host.env: REHEARSAL_SOURCE_BUCKET (prod's backup bucket), REHEARSAL_SCRUB_COLUMNS (table.column
# words, space-separated), DB_NAME, STACK.

VERBS+=("restore-rehearsal|restore prod's backup (--key K --sha256 S, or --latest) into this staging database, scrub, swap in")

RR_COLUMN_RE='^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$'
RR_RECORD_PREFIX="nourishctl restore-rehearsal"
# A backup's time as `backup` writes it in the manifest (and the rehearsal in its record).
RR_TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

# The pointer `nourishctl backup` writes last in the source bucket: prints "KEY SHA256".
rr_latest() {
  local bucket="$1" dir="$2" out
  out=$(aws_cli s3 cp --only-show-errors "s3://$bucket/$BK_LATEST_POINTER" "$dir/latest.json" 2>&1) \
    || die "restore-rehearsal: cannot read s3://$bucket/$BK_LATEST_POINTER: ${out//$'\n'/ }"
  python3 - "$dir/latest.json" <<'PY' || die "restore-rehearsal: s3://$bucket/$BK_LATEST_POINTER is not a backup pointer ({key, sha256, size, time})"
import json, sys
p = json.load(open(sys.argv[1]))
print(p["key"], p["sha256"])
PY
}

# BK_BEFORE_SWAP of the restore: scrub the checked copy before the app can see it, as the app's
# role (bk_app_psql): a trigger the app put on a scrubbed table runs with the app's rights only.
rr_scrub() {
  local db="$1" label="$2" col table column type
  for col in ${REHEARSAL_SCRUB_COLUMNS:-}; do
    table="${col%%.*}"; column="${col#*.}"
    type=$(bk_app_psql "$db" -v t="$table" -v c="$column" <<<"SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = :'t' AND column_name = :'c'") \
      || die "restore-rehearsal: cannot read the columns of $db"
    [ -n "$type" ] || die "restore-rehearsal: scrub column $col (rehearsal.scrubColumns) does not exist in backup $label; nothing swapped in"
    case "$type" in
      text|"character varying"|character) ;;
      *) die "restore-rehearsal: scrub column $col is $type; only text columns can be scrubbed (rehearsal.scrubColumns); nothing swapped in" ;;
    esac
    # A digest keeps distinct values distinct (unique constraints hold) and says nothing of the value.
    bk_app_psql "$db" -v t="$table" -v c="$column" >/dev/null <<'SQL' || die "restore-rehearsal: scrubbing $col failed; nothing swapped in"
SELECT format('UPDATE public.%I SET %I = left(''scrubbed-'' || md5(%I::text), %s) WHERE %I IS NOT NULL',
  :'t', :'c', :'c', (SELECT coalesce(character_maximum_length, 41) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = :'t' AND column_name = :'c'), :'c')
\gexec
SQL
    say "restore-rehearsal: scrubbed $col"
  done
}

cmd_restore_rehearsal() {
  local key="" sha="" latest=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --help)
        cat <<'EOF'
usage: nourishctl restore-rehearsal (--key KEY --sha256 HEX | --latest)
  The weekly restore test (staging only): downloads prod's backup KEY from REHEARSAL_SOURCE_BUCKET
  (--latest: the one dumps/daily/latest.json names), refuses it unless its SHA-256 is HEX and
  matches its manifest, restores it into a new database and checks it (tables, each table's row
  count and migration state against the manifest), scrubs REHEARSAL_SCRUB_COLUMNS, then swaps it in as the
  live database; the previous one is kept as <db>_before_restore_<ts> (nourishctl restore-cleanup).
  Any failure leaves the live database as it was. The app host finishes the rehearsal with
  `nourishctl restore-rehearsal-verify`. Last line: a JSON summary of this half.
EOF
        return 0 ;;
      --key) [ $# -ge 2 ] || die "restore-rehearsal: --key needs a key"; key="$2"; shift 2 ;;
      --sha256) [ $# -ge 2 ] || die "restore-rehearsal: --sha256 needs a checksum"; sha="$2"; shift 2 ;;
      --latest) latest=1; shift ;;
      *) die "restore-rehearsal: unknown option '$1' (see nourishctl restore-rehearsal --help)" ;;
    esac
  done
  # Before anything: where, what, and from which bucket.
  [ "${STACK:-}" != prod ] || die "restore-rehearsal: refused on STACK=prod: a rehearsal replaces this host's live database"
  [ -n "${REHEARSAL_SOURCE_BUCKET:-}" ] || die "restore-rehearsal: REHEARSAL_SOURCE_BUCKET (prod's backup bucket) is not set in $HOST_ENV"
  [ -z "${SQLITE_PATH:-}" ] || die "restore-rehearsal: this host has SQLITE_PATH; rehearsals restore PostgreSQL backups"
  if [ "$latest" -eq 1 ]; then
    [ -z "$key$sha" ] || die "restore-rehearsal: give --latest or --key with --sha256, not both"
  else
    { [ -n "$key" ] && [ -n "$sha" ]; } || die "restore-rehearsal: give --key KEY --sha256 HEX (or --latest)"
  fi
  local col
  for col in ${REHEARSAL_SCRUB_COLUMNS:-}; do
    [[ "$col" =~ $RR_COLUMN_RE ]] || die "restore-rehearsal: scrub column '$col' in REHEARSAL_SCRUB_COLUMNS is not table.column (lower-case identifiers)"
  done
  bk_need python3 python3
  local started
  started=$EPOCHREALTIME
  if [ "$latest" -eq 1 ]; then
    local pdir words
    bk_mkdir restore-rehearsal
    pdir=$(mktemp -d "$(bk_dir)/.rehearsal.XXXXXX") || die "restore-rehearsal: cannot create a temp dir in $(bk_dir)"
    words=$(rr_latest "$REHEARSAL_SOURCE_BUCKET" "$pdir") || { rm -rf "$pdir"; exit 1; }
    rm -rf "$pdir"
    key="${words%% *}"; sha="${words#* }"
  fi
  [[ "$key" =~ $BK_KEY_RE && "$key" == *.dump ]] || die "restore-rehearsal: '$key' is not a PostgreSQL backup key (dumps/daily|monthly/db_backup_YYYYMMDD_HHMMSS.dump)"
  [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "restore-rehearsal: '$sha' is not a SHA-256 (64 lower-case hex digits)"
  say "restore-rehearsal: $key (sha256 $sha) from s3://$REHEARSAL_SOURCE_BUCKET"

  # The restore, reading prod's bucket, held to the named checksum, scrubbing before the swap.
  local db
  db=$(bk_db) || exit 1
  BACKUP_BUCKET="$REHEARSAL_SOURCE_BUCKET" BK_EXPECT_SHA256="$sha" BK_BEFORE_SWAP=rr_scrub cmd_restore --key "$key"
  local backup_time restore_seconds age
  # The restore checked the manifest's fields (bk_manifest_check); checked again where it is used.
  backup_time=$(bk_json_get "$BK_TMPDIR/$(basename "${key%.*}").json" time 2>/dev/null) || backup_time=""
  [[ "$backup_time" =~ $RR_TIME_RE ]] || die "restore-rehearsal: the manifest of $key has a time that is not YYYY-MM-DDTHH:MM:SSZ"
  restore_seconds=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  age=$(( ${started%.*} - $(date -u -d "$backup_time" +%s) ))
  bk_psql postgres -v d="$db" -v c="$RR_RECORD_PREFIX key=$key sha256=$sha backup_time=$backup_time started=${started%.*} restore_seconds=$restore_seconds" \
    <<<"COMMENT ON DATABASE :\"d\" IS :'c'" >/dev/null \
    || die "restore-rehearsal: cannot record the rehearsal on database $db"
  say "restore-rehearsal: $key is the live $db after $restore_seconds s (backup age ${age} s); finish on the app host: nourishctl restore-rehearsal-verify"
  printf '{"phase": "restored", "backupKey": "%s", "backupSha256": "%s", "backupTime": "%s", "restoreSeconds": %s, "backupAgeSeconds": %s}\n' \
    "$key" "$sha" "$backup_time" "$restore_seconds" "$age"
}
