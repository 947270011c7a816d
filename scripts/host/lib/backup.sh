# shellcheck shell=bash
# nourishctl-roles: db app
# Sourced by nourishctl, which provides die, say, pg_admin, aws_cli, metric and the host.env values.
#
# Where it runs: on the database host; and, with a managed database (RDS: DB_MANAGED=true in the app
# hosts' host.env), on an app host, where pg_admin is the app's database user over TLS (nourishctl)
# and everything else (bucket, key format, manifest, checks, swap) is the same. On an app host of a
# self-managed database every verb here refuses: the database host does it.
#
# The manual's "Backup and Restore": a nightly logical backup (pg_dump custom format, or the SQLite
# file when SQLITE_PATH is set) with a JSON manifest, kept locally and in the backup bucket; listing
# and verifying what the bucket holds; and a restore that checks a backup before it touches any
# database, restores into a new database, checks it, and only then swaps it in (keeping the old one).
#
# host.env: DB_NAME, STACK, BACKUP_BUCKET, BACKUP_DIR (/var/backups/nourish-link), BACKUP_LOCAL_DAYS
# (7), optional SQLITE_PATH, DJANGO_MANAGE (a command printing the app's migration state), DB_USER.
#
# Bucket layout: dumps/daily/db_backup_YYYYMMDD_HHMMSS.dump (+ .json manifest); on the 1st of the
# month the same pair is also copied to dumps/monthly/. A backup is complete only when its manifest
# exists: the manifest is uploaded last, and nothing without one is ever restored.
#
# The rule for every destructive step here and in pitr.sh (docs/RUNBOOK.md, "Destructive steps"):
# a destructive step names exactly what it created. A database is remembered for cleanup only after
# its CREATE succeeded and is dropped by that exact name (db_drop); leftovers of interrupted runs
# and kept copies are recognised by their exact pattern, <db>_restore_YYYYmmdd_HHMMSS and
# <db>_before_restore_YYYYmmdd_HHMMSS, never by a prefix; every derived name is checked to fit in
# PostgreSQL's 63 bytes before anything happens (db_ident_check), since a truncated name can be
# the live database's.

VERBS+=("backup|scheduled|back up the database now (pg_dump -Fc, or the SQLite file) to BACKUP_DIR and the bucket")
help_backup() {
  cat <<EOF
nourishctl backup - back up the database now (its timer runs it daily)

usage: nourishctl backup

  pg_dump -Fc of \$DB_NAME (or, with SQLITE_PATH, a consistent copy of the SQLite file) to
  BACKUP_DIR/db_backup_YYYYMMDD_HHMMSS.dump (UTC) with a JSON manifest (.json: time, size, duration,
  server version, sha256, migration state, tables, row_counts, tool versions); both uploaded to
  s3://\$BACKUP_BUCKET/dumps/daily/ (and dumps/monthly/ on the 1st, unless
  BACKUP_MONTHLY_RETENTION_MONTHS is 0), manifest last, then checked;
  then dumps/daily/latest.json ({key, sha256, size, time}) names it.
  row_counts ({"schema.table": rows}) are counted in the file just written (the dump's COPY data,
  or the SQLite copy), so they are the backup's own; a failed count fails the backup (step count).
  Local copies older than BACKUP_LOCAL_DAYS (7) are deleted. Metric BackupSuccess=1 only on success.
  A second backup while one runs exits 1 at once ("another backup is running"); while a restore or
  recovery holds the database lock it waits up to DB_LOCK_WAIT_SECONDS (900), then exits 1.

Options: none.
EOF
}
VERBS+=("backups|oncall|'backups list' (newest first), 'backups verify [--key K | --latest | --all]'")
help_backups() {
  cat <<EOF
nourishctl backups - the backups in the bucket

usage: nourishctl backups list
       nourishctl backups verify [--key KEY | --latest | --all]

  list     key, size, time, manifest or NO-MANIFEST; newest first
  verify   download, check SHA-256 against the manifest, pg_restore --list

Options:
  --key KEY   verify that backup
  --latest    verify the newest complete backup (the default)
  --all       verify every backup the bucket holds (daily and monthly), one at a time; goes on
              past a bad one and exits 1 naming each (a backup without a manifest is one). Its
              timer runs it monthly.
EOF
}
VERBS+=("restore|oncall|restore a backup into a new database, check it, swap it in (or keep it --as NAME)")
help_restore() {
  cat <<EOF
nourishctl restore - verify a backup, restore it into a new database, check it, swap it in

usage: nourishctl restore (--latest | --key KEY | --file PATH | --at TIMESTAMP) [--as NAME] [--replace-live --yes]

  Verifies the backup's SHA-256 against its manifest before touching any database, restores it into
  a new database ${DB_NAME:-\$DB_NAME}_restore_<UTC timestamp> owned by the app's role, as that role,
  never a superuser (pg_restore --exit-on-error --single-transaction --no-owner, grants as in the
  dump; the dump's extensions created first from the server's own scripts), checks it as that role
  (tables of the dump present, each table's row count equal to the manifest's row_counts, migration
  state equal to the manifest's; a manifest from before row_counts: counts printed, not compared,
  said once), then swaps it in: the live database is renamed ${DB_NAME:-\$DB_NAME}_before_restore_<ts>
  and kept (nourishctl restore-cleanup drops it later).
  With SQLITE_PATH: verify, copy beside it, PRAGMA integrity_check, row counts against the manifest,
  keep <path>.before_restore_<ts>, atomic mv into place, chmod 600 (--as PATH writes the copy there
  instead).
  A failed check drops the new database (or copy): the live one is untouched.
  A restore killed midway leaves the live database untouched; re-running it cleans up.

Options (exactly one of the first four):
  --latest          the backup dumps/daily/latest.json names
  --key KEY         that backup of the bucket (nourishctl backups list)
  --file PATH       a dump on this host, with its manifest PATH.json beside it
  --at TIMESTAMP    point-in-time restore through pgBackRest (needs PITR on this host), as
                    'YYYY-MM-DD HH:MM[:SS]+00' (see nourishctl pitr --help)
  --as NAME         keep the checked copy as database NAME (staging, rehearsals); no swap
                    (default: swap it in)
  --replace-live    with --yes: swap into the live database on STACK=prod (default: refused on prod)
  --yes             confirm --replace-live
EOF
}
VERBS+=("restore-cleanup|routine|drop what a restore kept (*_before_restore_*): NAME or --older-than DAYS")
help_restore_cleanup() {
  cat <<EOF
nourishctl restore-cleanup - drop databases (or SQLite files) a restore kept

usage: nourishctl restore-cleanup [NAME | --older-than DAYS]

  Without arguments lists what restores kept (*_before_restore_*); with NAME drops
  that one; with --older-than DAYS drops those older than DAYS days. Anything that only looks like
  it (a name PostgreSQL truncated, a hand-made copy) is left alone with a warning.

Options:
  --older-than DAYS   a whole number of days (default: none; list only)
EOF
}

# BK_KEY_RE (a backup's whole key) is nourishctl's: the app hosts check pre-release backup keys too.

# The newest complete daily backup: {key, sha256, size, time}, written by `backup` after its
# manifest (restore rehearsals and the staging preview read it).
BK_LATEST_POINTER=dumps/daily/latest.json
# Refuses on an app host unless the database is managed (there the database host's copy is the one).
bk_here() {
  [ "${ROLE:-}" != app ] || [ "$DB_MANAGED" = true ] \
    || die "$1: runs on the database host; on an app host only with a managed database (DB_MANAGED=true in $HOST_ENV)"
}

bk_dir() { echo "$ROOT${BACKUP_DIR:-/var/backups/nourish-link}"; }
bk_db() { host_env_need DB_NAME; echo "$DB_NAME"; }
bk_ext() { if [ -n "${SQLITE_PATH:-}" ]; then echo sqlite3; else echo dump; fi; }
bk_bucket() { [ -n "${BACKUP_BUCKET:-}" ] || die "$1: BACKUP_BUCKET is not set in $HOST_ENV"; echo "$BACKUP_BUCKET"; }

# psql as the superuser: unaligned, tuples only, stop at the first error. $1 is the database.
# Only for the catalogue (create, rename, drop databases): never on a restored database's data.
bk_psql() {
  local db="$1"; shift
  pg_admin psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"
}
# The same as the app's role (pg_app, not a superuser): every statement that reads or writes what a
# database holds (row counts, migration state, a rehearsal's scrub), so nothing the app planted in
# it (a trigger, a CHECK, a view calling a function) runs with more rights than the app's.
bk_app_psql() {
  local db="$1"; shift
  pg_app psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"
}

# A required tool, or a one-line reason naming its Debian package.
bk_need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: apt-get install -y $2"
}

# BACKUP_DIR, created 0700 (dumps hold every row of the database).
bk_mkdir() {
  local dir
  dir=$(bk_dir)
  { mkdir -p "$dir" && chmod 0700 "$dir"; } || die "$1: cannot create $dir"
}

# One value of a JSON manifest (strings as-is, anything else as compact JSON); empty when absent.
bk_json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
if v is None: pass
elif isinstance(v, str): print(v)
else: print(json.dumps(v, sort_keys=True, separators=(",", ":")))
PY
}

# The latest applied migration per Django app, as a JSON object; {} when there is no
# django_migrations table. $1: "pg <db>" or "sqlite <file>".
bk_migrations() {
  local q="SELECT app, name FROM django_migrations d WHERE id = (SELECT max(id) FROM django_migrations e WHERE e.app = d.app) ORDER BY app"
  local rows
  if [ "$1" = pg ]; then
    local has
    has=$(bk_app_psql "$2" -c "SELECT to_regclass('public.django_migrations') IS NOT NULL") || return 1
    [ "$has" = t ] || { echo "{}"; return 0; }
    rows=$(bk_app_psql "$2" -F '|' -c "$q") || return 1
  else
    local has
    has=$(sqlite3 "$2" "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='django_migrations'") || return 1
    [ "$has" = 1 ] || { echo "{}"; return 0; }
    rows=$(sqlite3 -separator '|' "$2" "$q") || return 1
  fi
  printf '%s\n' "$rows" | python3 -c '
import json, sys
print(json.dumps(dict(l.rstrip("\n").split("|", 1) for l in sys.stdin if "|" in l), sort_keys=True, separators=(",", ":")))'
}

# What a dump holds, read from the dump itself by pg_restore's script output (names unquoted as
# pg_dump quotes them, fmtId: "..." with "" for a quote; a quoted name may hold a space, a dot or a
# newline, which is why `pg_restore --list`, printing names bare, cannot be split safely):
# - tables: every TABLE entry ("schema.table" lines, sorted): the statement after each
#   "-- Name: ...; Type: TABLE; ..." header, `CREATE [UNLOGGED] TABLE schema.table`, as
#   `pg_restore --schema-only -f -` writes it (no data read).
# - counts: the rows each table has in the dump, as the dump itself holds them (not as the database
#   had them a moment later): `pg_restore --data-only -f -` streamed, each table's rows being the
#   lines of its `COPY schema.table (columns) FROM stdin;` block up to `\.` (COPY's text format
#   escapes newlines, tabs and backslashes, so one line is one row). A table without a COPY block
#   (a partitioned parent, a foreign table) has no count. Prints {"schema.table": rows} (sorted).
# On failure prints one line saying why and exits 1. Memory: one line at a time.
IFS= read -r -d '' BK_DUMP_PY <<'PY' || true
import json, re, subprocess, sys, tempfile
IDENT = rb'(?:"((?:[^"]|"")*)"|([^".\s]+))'
COPY = re.compile(rb'COPY ' + IDENT + rb'\.' + IDENT + rb' .*FROM stdin;\n\Z', re.S)
CREATE = re.compile(rb'CREATE (?:UNLOGGED )?TABLE ' + IDENT + rb'\.' + IDENT + rb'[ \n]', re.S)
HEADER = re.compile(rb'-- Name: .*; Type: TABLE; Schema: ')
class Unreadable(Exception): pass
def unreadable(statement):
    return Unreadable("cannot read the statement " + statement[:200].decode("utf-8", "replace").strip())
def name(quoted, bare):
    return (quoted.replace(b'""', b'"') if quoted is not None else bare).decode("utf-8", "surrogateescape")
def table_of(pattern, line, out, done):
    # A quoted name may hold a newline: read on until the statement's name is complete.
    while not done(line) and len(line) < 1 << 16:
        more = out.readline()
        if not more: break
        line += more
    m = pattern.match(line)
    if not m: raise unreadable(line)
    return name(*m.group(1, 2)) + "." + name(*m.group(3, 4))
# Each parser returns (what to print, why the output ended too early or None): a stream cut short
# is judged after pg_restore's exit status, whose own message says more.
def tables(out):
    found, entry = set(), False
    for line in out:
        if HEADER.match(line):
            entry = True
        elif entry and line.startswith(b"CREATE "):
            found.add(table_of(CREATE, line, out, CREATE.match)); entry = False
        elif entry and not (line.startswith((b"--", b"SET ")) or line == b"\n"):
            raise unreadable(line)
    return "\n".join(sorted(t.replace("\n", "\\n") for t in found)), "a TABLE entry of the dump has no CREATE TABLE statement" if entry else None
def counts(out):
    found, table, n = {}, None, 0
    for line in out:
        if table is not None:
            if line == b"\\.\n":
                found[table], table = n, None
            else:
                n += 1
        elif line.startswith(b"COPY "):
            table, n = table_of(COPY, line, out, lambda l: l.endswith(b" FROM stdin;\n")), 0
            if table in found: raise Unreadable(f"{table} has two COPY blocks")
    return json.dumps(found, sort_keys=True, separators=(",", ":")), f"the COPY block of {table} has no end (\\.)" if table is not None else None
def fail(why):
    print(why.replace("\n", " ")); sys.exit(1)
mode, dump = sys.argv[1:3]
parse, flag = {"tables": (tables, "--schema-only"), "counts": (counts, "--data-only")}[mode]
with tempfile.TemporaryFile() as err:
    try:
        p = subprocess.Popen(["pg_restore", flag, "-f", "-", dump], stdout=subprocess.PIPE, stderr=err, bufsize=1 << 20)
    except OSError as e:
        fail(f"cannot run pg_restore: {e.strerror}")
    try:
        result, cut_short = parse(p.stdout)
    except Unreadable as e:
        p.kill(); fail(str(e))
    rc = p.wait()
    if rc != 0:
        err.seek(0)
        msg = err.read().decode("utf-8", "replace").strip().splitlines()
        fail(f"pg_restore {flag} exited {rc}: {msg[0] if msg else '(no message)'}")
if cut_short: fail(cut_short)
print(result)
PY
# "schema.table" lines, sorted (a newline in a name printed as \n, as bk_check_db prints it).
bk_dump_tables() {
  python3 -c "$BK_DUMP_PY" tables "$1"
}
bk_dump_row_counts() {
  python3 -c "$BK_DUMP_PY" counts "$1"
}

# The rows of every table of a SQLite file ("main.<name>", the manifest's "tables"), as JSON: one
# statement, generated by sqlite3 from its own catalogue with the names quoted by SQLite itself.
bk_sqlite_row_counts() {
  local q
  q=$(sqlite3 "$1" "SELECT 'SELECT json_group_object(n, c) FROM (' || group_concat('SELECT ' || quote('main.' || name) || ' AS n, count(*) AS c FROM main.\"' || replace(name, '\"', '\"\"') || '\"', ' UNION ALL ') || ');' FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") || return 1
  if [ -z "$q" ]; then echo "{}"; return 0; fi
  sqlite3 "$1" <<<"$q"
}

# Compares the row counts of a restored database (a JSON file, {"schema.table": rows}) with its
# backup's manifest: argv got-file manifest where label. Prints one line: what matched, or that the
# manifest predates row_counts (exit 0); or the first difference, naming the table, both numbers
# and the backup (exit 1). Only the tables the manifest counts are compared.
IFS= read -r -d '' BK_COMPARE_COUNTS_PY <<'PY' || true
import json, sys
got_file, manifest, where, label = sys.argv[1:5]
got = json.load(open(got_file))
try:
    want = json.load(open(manifest)).get("row_counts")
except ValueError:
    print(f"the manifest of {label} is not valid JSON"); sys.exit(1)
if want is None:
    print(f"row counts not compared: the manifest of {label} predates them (no row_counts)"); sys.exit(0)
if not isinstance(want, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in want.values()):
    print(f"the manifest of {label} has a row_counts that is not {{\"schema.table\": rows}}"); sys.exit(1)
bad = []
for t in sorted(want):
    if t not in got:
        bad.append(f"{t} is missing in {where}, the manifest of {label} says {want[t]} rows")
    elif got[t] != want[t]:
        bad.append(f"{t} has {got[t]} rows in {where}, the manifest of {label} says {want[t]}")
if bad:
    more = f" ({len(bad) - 1} more tables differ)" if len(bad) > 1 else ""
    print((bad[0] + more).replace("\n", "\\n")); sys.exit(1)
print(f"row counts match the manifest ({len(want)} tables)")
PY

# ---------------------------------------------------------------------------------------------
# backup

bk_cleanup_backup() {
  rm -f "${BK_TMP_FILES[@]}"
}

cmd_backup() {
  if [ "${1:-}" = "--help" ]; then help_backup; return 0; fi
  [ $# -eq 0 ] || die "backup: unexpected argument '$1' (see nourishctl backup --help)"
  bk_here backup
  local db bucket dir ext kind ts name started
  db=$(bk_db) || exit 1; bucket=$(bk_bucket backup) || exit 1; dir=$(bk_dir); ext=$(bk_ext)
  bk_need python3 python3
  db_lock backup shared
  bk_mkdir backup
  ts=$(date -u +%Y%m%d_%H%M%S)
  name="db_backup_$ts"
  started=$(date +%s)
  BK_TMP_FILES=("$dir/.$name.$ext.partial" "$dir/.$name.json.partial" "$dir/.$name.counts.partial")
  trap bk_cleanup_backup EXIT
  local tmp="$dir/.$name.$ext.partial" mtmp="$dir/.$name.json.partial" ctmp="$dir/.$name.counts.partial"

  # Step: dump. Written by root from pg_dump's stdout, so the postgres user needs no access here.
  local server_version migrations tool_dump tables
  if [ "$ext" = sqlite3 ]; then
    kind=sqlite3
    bk_need sqlite3 sqlite3
    [ -r "$SQLITE_PATH" ] || die "backup failed at step dump: $SQLITE_PATH is not readable"
    sqlite3 "$SQLITE_PATH" ".backup '$tmp'" || die "backup failed at step dump: sqlite3 .backup of $SQLITE_PATH"
    [ "$(sqlite3 "$tmp" 'PRAGMA integrity_check')" = ok ] || die "backup failed at step dump: the copy of $SQLITE_PATH fails PRAGMA integrity_check"
    server_version=$(sqlite3 --version | awk '{ print $1 }')
    migrations=$(bk_migrations sqlite "$tmp") || die "backup failed at step dump: cannot read django_migrations"
    tool_dump="sqlite3 $server_version"
    tables=$(sqlite3 "$tmp" "SELECT 'main.' || name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")
  else
    kind=postgresql-custom
    server_version=$(bk_psql postgres -c "SHOW server_version") || die "backup failed at step dump: cannot reach PostgreSQL"
    pg_admin pg_dump -Fc --dbname="$db" > "$tmp" || die "backup failed at step dump: pg_dump of database $db"
    [ -s "$tmp" ] || die "backup failed at step dump: pg_dump of $db wrote nothing"
    tables=$(bk_dump_tables "$tmp") || die "backup failed at step dump: cannot read the tables of the new dump of $db: ${tables##*$'\n'}"
    migrations=$(bk_migrations pg "$db") || die "backup failed at step dump: cannot read django_migrations in $db"
    tool_dump=$(pg_admin pg_dump --version)
  fi

  local duration
  duration=$(( $(date +%s) - started ))

  # Step: count. Each table's rows as the backup file holds them (the dump's COPY blocks, or the
  # SQLite copy), for restore to compare with what it restored.
  if [ "$ext" = sqlite3 ]; then
    bk_sqlite_row_counts "$tmp" > "$ctmp" 2>&1 \
      || die "backup failed at step count: cannot count the rows of the copy of $SQLITE_PATH: $(tail -n 1 "$ctmp")"
  else
    bk_dump_row_counts "$tmp" > "$ctmp" 2>&1 \
      || die "backup failed at step count: cannot count the rows in the dump of $db: $(tail -n 1 "$ctmp")"
  fi

  # Step: checksum.
  local sha size app_state tool_sha
  sha=$(sha256sum "$tmp" | awk '{ print $1 }') || sha=""
  [ ${#sha} -eq 64 ] || die "backup failed at step checksum: sha256sum of $tmp"
  size=$(stat -c %s "$tmp")
  app_state=unknown
  if [ -n "${DJANGO_MANAGE:-}" ]; then
    app_state=$(timeout 120 sh -c "$DJANGO_MANAGE" 2>&1) || app_state="unknown (DJANGO_MANAGE failed)"
  fi
  tool_sha=$(sha256sum --version) || tool_sha=unknown
  tool_sha="${tool_sha%%$'\n'*}"
  BK_FILE="$name.$ext" BK_KIND="$kind" BK_DB="$db" BK_STACK="${STACK:-}" BK_TS="$ts" BK_SIZE="$size" \
  BK_DURATION="$duration" BK_SHA="$sha" BK_SERVER="$server_version" BK_MIGRATIONS="$migrations" \
  BK_APP_STATE="$app_state" BK_TOOL_BASH="$BASH_VERSION" BK_TABLES="$tables" BK_TOOL_DUMP="$tool_dump" BK_TOOL_SHA="$tool_sha" \
  BK_ROW_COUNTS_FILE="$ctmp" python3 - > "$mtmp" <<'PY' || die "backup failed at step checksum: cannot write the manifest"
import datetime, json, os, platform
e = os.environ
t = datetime.datetime.strptime(e["BK_TS"], "%Y%m%d_%H%M%S").replace(tzinfo=datetime.timezone.utc)
print(json.dumps({
  "format": "nourish-link-backup/1",
  "file": e["BK_FILE"],
  "kind": e["BK_KIND"],
  "database": e["BK_DB"],
  "stack": e["BK_STACK"],
  "time": t.isoformat().replace("+00:00", "Z"),
  "size_bytes": int(e["BK_SIZE"]),
  "duration_seconds": int(e["BK_DURATION"]),
  "server_version": e["BK_SERVER"],
  "sha256": e["BK_SHA"],
  "migrations": json.loads(e["BK_MIGRATIONS"]),
  "app_migration_state": e["BK_APP_STATE"],
  "tables": [l for l in e["BK_TABLES"].splitlines() if l],
  "row_counts": dict(sorted(json.load(open(e["BK_ROW_COUNTS_FILE"])).items())),
  "tools": {"dump": e["BK_TOOL_DUMP"], "sha256sum": e["BK_TOOL_SHA"], "bash": e["BK_TOOL_BASH"], "python": platform.python_version()},
}, indent=2))
PY
  # The local copy is complete: give it its final name.
  { mv "$tmp" "$dir/$name.$ext" && mv "$mtmp" "$dir/$name.json"; } || die "backup failed at step checksum: cannot move $name into $dir"
  rm -f "$ctmp"
  chmod 0600 "$dir/$name.$ext" "$dir/$name.json"

  # Step: upload (dump, then manifest) and verify-upload (size and checksum as S3 reports them).
  local prefixes=("dumps/daily") p
  # A monthly copy on the 1st, unless backups.monthlyRetentionMonths is 0: no lifecycle rule or
  # lock would ever expire it, so a copy taken then would be kept forever.
  [ "${ts:6:2}" = 01 ] && [ "${BACKUP_MONTHLY_RETENTION_MONTHS:-1}" != 0 ] && prefixes+=("dumps/monthly")
  # Write-once (If-None-Match), checked by S3 against the SHA-256, and locked for as long as the
  # class is kept (s3_put_once): neither this host nor anyone else can overwrite it afterwards.
  for p in "${prefixes[@]}"; do
    local key="$p/$name.$ext" mkey="$p/$name.json" head days msha
    days=$(lock_days "${p#dumps/}")
    if ! s3_put_once "$bucket" "$key" "$dir/$name.$ext" "$sha" "$days"; then
      die "backup failed at step upload: $name.$ext to s3://$bucket/$key (local copy kept in $dir)"
    fi
    head=$(aws_cli s3api head-object --bucket "$bucket" --key "$key" --query '[ContentLength, Metadata.sha256]' --output text 2>&1) || head=""
    if [ "$head" != "$size	$sha" ]; then
      aws_cli s3 rm --only-show-errors "s3://$bucket/$key" >/dev/null 2>&1 || true
      die "backup failed at step verify-upload: s3://$bucket/$key reports '${head//	/ }', expected size $size sha256 $sha"
    fi
    msha=$(sha256sum "$dir/$name.json" | cut -d' ' -f1)
    if ! s3_put_once "$bucket" "$mkey" "$dir/$name.json" "$msha" "$days" application/json; then
      aws_cli s3 rm --only-show-errors "s3://$bucket/$key" >/dev/null 2>&1 || true
      die "backup failed at step upload: manifest s3://$bucket/$mkey (dump removed again; local copy kept in $dir)"
    fi
    say "backup: uploaded s3://$bucket/$key ($size bytes, sha256 $sha) and its manifest"
  done
  # Last of all, the pointer to this backup: whoever reads it (a restore rehearsal, the staging
  # preview's data source) finds a backup whose dump and manifest are already complete.
  local pointer="$dir/.$name.latest.partial"
  BK_TMP_FILES+=("$pointer")
  printf '{"key": "dumps/daily/%s", "sha256": "%s", "size": %s, "time": "%s"}\n' \
    "$name.$ext" "$sha" "$size" "$(bk_json_get "$dir/$name.json" time)" > "$pointer" \
    || die "backup failed at step pointer: cannot write $pointer"
  if ! aws_cli s3 cp --only-show-errors --content-type application/json "$pointer" "s3://$bucket/$BK_LATEST_POINTER" >&2; then
    die "backup failed at step pointer: s3://$bucket/$BK_LATEST_POINTER (the backup itself is complete: dumps/daily/$name.$ext)"
  fi
  rm -f "$pointer"

  # Local retention: complete backups older than BACKUP_LOCAL_DAYS, and stale partial files.
  local days="${BACKUP_LOCAL_DAYS:-7}"
  find "$dir" -maxdepth 1 -type f \( -name 'db_backup_*' -o -name '.db_backup_*.partial' \) \
    -mmin +$(( days * 1440 )) -delete || say "backup: warning: could not prune local copies in $dir"

  metric BackupSuccess 1
  metric BackupSizeBytes "$size"
  metric BackupDurationSeconds "$(( $(date +%s) - started ))"
  say "backup: done: $name.$ext ($size bytes, dumped in $duration s) in $dir and s3://$bucket/${prefixes[*]}"
  # Last line: the key, for whoever needs to name this backup later (a release's way back).
  echo "dumps/daily/$name.$ext"
}

# ---------------------------------------------------------------------------------------------
# backups list / verify

# "key size time manifest" for every backup in the bucket, newest first (by the name's timestamp).
bk_list() {
  local bucket="$1" out
  out=$(aws_cli s3api list-objects-v2 --bucket "$bucket" --prefix dumps/ \
    --query 'Contents[].[Key, Size, LastModified]' --output text 2>&1) \
    || die "backups: cannot list s3://$bucket/dumps/: ${out//$'\n'/ }"
  printf '%s\n' "$out" | python3 -c '
import re, sys
rows = [l.rstrip("\n").split("\t") for l in sys.stdin if l.count("\t") >= 2]
keys = {r[0] for r in rows}
out = []
for key, size, time in rows:
  m = re.fullmatch(r"dumps/(?:daily|monthly)/db_backup_(\d{8}_\d{6})\.(dump|sqlite3)", key)
  if not m: continue
  manifest = key.rsplit(".", 1)[0] + ".json" in keys
  out.append((m.group(1), "daily" in key, key, size, time, "manifest" if manifest else "NO-MANIFEST"))
out.sort(reverse=True)
for o in out: print("\t".join(o[2:]))'
}

# The newest complete backup (with a manifest) of this host's kind, or dies.
bk_latest_key() {
  local bucket="$1" what="$2" key
  key=$(bk_list "$bucket" | awk -F '\t' -v ext=".$(bk_ext)" '!found && $4 == "manifest" && substr($1, length($1) - length(ext) + 1) == ext { print $1; found = 1 }')
  [ -n "$key" ] || die "$what: no complete backup (with a manifest) in s3://$bucket/dumps/"
  echo "$key"
}

# A file's SHA-256 (hex) by Python's hashlib, which is OpenSSL's (SHA-NI where the CPU has it):
# 3.5x faster than coreutils' sha256sum on the 2-vCPU bench machine (1.1 GB: see docs/BENCHMARKS.md), same digest.
bk_sha256() {
  /usr/bin/python3 -I -S -c '
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
print(h.hexdigest())' "$1"
}

# Checks a backup file against its manifest: SHA-256, then that the format tools can read it.
# Dies naming $3 (the key or path) on any mismatch.
bk_check_file() {
  local file="$1" manifest="$2" label="$3" what="$4" want got
  [ -s "$file" ] || die "$what: backup $label is missing or empty"
  [ -s "$manifest" ] || die "$what: backup $label has no manifest ($manifest): cannot verify it, refusing"
  want=$(bk_json_get "$manifest" sha256) || die "$what: manifest of $label is not valid JSON"
  [ ${#want} -eq 64 ] || die "$what: manifest of $label has no sha256"
  got=$(bk_sha256 "$file") || die "$what: cannot read backup $label to check its sha256"
  [ "$got" = "$want" ] || die "$what: backup $label is corrupted or truncated: sha256 $got, manifest says $want; refusing it"
  case "$file" in
    *.sqlite3)
      bk_need sqlite3 sqlite3
      [ "$(sqlite3 "$file" 'PRAGMA integrity_check' 2>&1)" = ok ] || die "$what: backup $label fails PRAGMA integrity_check"
      ;;
    *)
      pg_restore --list "$file" >/dev/null 2>&1 || die "$what: pg_restore --list cannot read backup $label"
      ;;
  esac
}

# Downloads key and its manifest into dir; prints the local file's path.
bk_fetch() {
  local bucket="$1" key="$2" dir="$3" what="$4" base
  base=$(basename "$key")
  [[ "$key" =~ $BK_KEY_RE ]] || die "$what: $key is not a backup key (dumps/daily/ or dumps/monthly/, then db_backup_YYYYMMDD_HHMMSS.dump|.sqlite3)"
  # The backup and its manifest in one call (each aws CLI start costs half a second).
  aws_cli s3 cp --only-show-errors --recursive "s3://$bucket/$(dirname "$key")/" "$dir/" \
    --exclude '*' --include "$base" --include "${base%.*}.json" >&2 || die "$what: cannot download backup s3://$bucket/$key"
  [ -f "$dir/$base" ] || die "$what: backup s3://$bucket/$key does not exist"
  [ -f "$dir/${base%.*}.json" ] || die "$what: backup $key has no manifest (${key%.*}.json): cannot verify it, refusing"
  echo "$dir/$base"
}

# Every backup in the bucket, one download at a time (the temp dir emptied after each): its SHA-256
# against its manifest and pg_restore --list. Names every bad one; exit 1 if any.
bk_verify_all() {
  local bucket="$1" list key size time manifest n=0 bad=() why
  list=$(bk_list "$bucket") || exit 1
  [ -n "$list" ] || die "backups verify: no backups in s3://$bucket/dumps/"
  mkdir -p "$(bk_dir)"
  BK_TMPDIR=$(mktemp -d "$(bk_dir)/.verify.XXXXXX") || die "backups verify: cannot create a temp dir in $(bk_dir)"
  trap bk_cleanup_tmpdir EXIT
  while IFS=$'\t' read -r key size time manifest; do
    n=$((n + 1))
    if [ "$manifest" != manifest ]; then
      bad+=("$key"); echo "nourishctl: backups verify: FAILED: $key has no manifest: cannot verify it" >&2; continue
    fi
    # Each check in a subshell: its die ends that backup's check, not the run.
    if why=$( { file=$(bk_fetch "$bucket" "$key" "$BK_TMPDIR" "backups verify") && bk_check_file "$file" "${file%.*}.json" "$key" "backups verify"; } 2>&1 >/dev/null); then
      say "backups verify: ok: $key ($size bytes, $time)"
    else
      why=${why##*$'\n'}
      bad+=("$key"); echo "nourishctl: backups verify: FAILED: ${why#nourishctl: backups verify: }" >&2
    fi
    find "$BK_TMPDIR" -mindepth 1 -delete
  done <<<"$list"
  [ "${#bad[@]}" -eq 0 ] || die "backups verify: ${#bad[@]} of $n backups failed: ${bad[*]}"
  say "backups verify: all $n backups in s3://$bucket/dumps/ match their manifests and are readable"
}

bk_cleanup_tmpdir() {
  [ -n "${BK_TMPDIR:-}" ] && rm -rf "$BK_TMPDIR"
  return 0
}

cmd_backups() {
  local sub="${1:-}"
  case "$sub" in list|verify) bk_here "backups $sub" ;; esac
  [ $# -gt 0 ] && shift
  case "$sub" in
    list)
      local bucket
      bucket=$(bk_bucket backups) || exit 1
      bk_need python3 python3
      bk_list "$bucket"
      ;;
    verify)
      local key="" latest=1 bucket file
      while [ $# -gt 0 ]; do
        case "$1" in
          --key) [ $# -ge 2 ] || die "backups verify: --key needs a key"; key="$2"; latest=0; shift 2 ;;
          --latest) latest=1; shift ;;
          --all) latest=all; shift ;;
          *) die "backups verify: unknown option '$1'" ;;
        esac
      done
      bucket=$(bk_bucket "backups verify") || exit 1
      bk_need python3 python3
      if [ "$latest" = all ]; then bk_verify_all "$bucket"; return; fi
      if [ "$latest" -eq 1 ] && [ -z "$key" ]; then key=$(bk_latest_key "$bucket" "backups verify") || exit 1; fi
      mkdir -p "$(bk_dir)"
      BK_TMPDIR=$(mktemp -d "$(bk_dir)/.verify.XXXXXX") || die "backups verify: cannot create a temp dir in $(bk_dir)"
      trap bk_cleanup_tmpdir EXIT
      file=$(bk_fetch "$bucket" "$key" "$BK_TMPDIR" "backups verify") || exit 1
      bk_check_file "$file" "${file%.*}.json" "$key" "backups verify"
      say "backups verify: ok: $key (sha256 matches its manifest, readable)"
      ;;
    --help|help|"")
      help_backups
      [ -n "$sub" ] || return 1
      ;;
    *) die "backups: unknown subcommand '$sub' (list or verify)" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# restore

# On any exit before the swap, drop the half-restored database (BK_RESTORE_DB: set only once this
# run's CREATE succeeded) and temp files.
bk_cleanup_restore() {
  if [ -n "${BK_RESTORE_DB:-}" ]; then
    db_drop "$BK_RESTORE_DB" 2>/dev/null || true
  fi
  [ -n "${BK_RESTORE_TMPFILE:-}" ] && rm -f "$BK_RESTORE_TMPFILE"
  bk_cleanup_tmpdir
}

# Prints row counts per table of a database; dies when a table the backup lists is missing, when
# a table's rows differ from the count in the manifest (a manifest from before row_counts: said
# once, not compared), or when the migration state differs. A table's count is its own rows (FROM
# ONLY: an inheritance parent's COPY holds only its own), a partitioned table's the sum of its
# partitions (printed, never compared: the dump has its rows in the partitions' blocks).
# $5: the manifest (empty for a point-in-time restore, which has none).
bk_check_db() {
  local db="$1" tables_file="$2" want_migrations="$3" label="$4" manifest="${5:-}" counts present missing got msg
  local counts_file="$BK_TMPDIR/counts.json"
  bk_app_psql "$db" -c "
    SELECT json_object_agg(name, n ORDER BY name) FROM (
      SELECT n.nspname || '.' || c.relname AS name,
             (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %s %I.%I',
               CASE c.relkind WHEN 'p' THEN '' ELSE 'ONLY' END, n.nspname, c.relname), false, true, '')))[1]::text::bigint AS n
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%') t" \
    > "$counts_file" || die "restore: check failed: cannot count rows in $db"
  [ -n "$(tr -d '[:space:]' < "$counts_file")" ] || die "restore: check failed: $db (from $label) holds no tables"
  counts=$(python3 -c 'import json, sys
for k, v in json.load(open(sys.argv[1])).items(): print(k.replace("\n", "\\n") + "\t" + str(v))' "$counts_file") \
    || die "restore: check failed: cannot read the row counts of $db"
  if [ -n "$tables_file" ]; then
    present=$(printf '%s\n' "$counts" | cut -f1 | sort -u)
    missing=$(comm -23 <(sort -u "$tables_file") <(printf '%s\n' "$present") | tr '\n' ' ')
    [ -z "${missing// /}" ] || die "restore: check failed: tables missing in $db after restoring $label: $missing"
  fi
  say "restore: row counts in $db:"
  printf '%s\n' "$counts" | awk -F '\t' '{ printf "  %-40s %s\n", $1, $2 }'
  if [ -n "$manifest" ]; then
    msg=$(python3 -c "$BK_COMPARE_COUNTS_PY" "$counts_file" "$manifest" "$db" "$label" 2>&1) || die "restore: check failed: ${msg##*$'\n'}"
    say "restore: $msg"
  fi
  if [ -n "$want_migrations" ]; then
    got=$(bk_migrations pg "$db") || die "restore: check failed: cannot read django_migrations in $db"
    python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' "$got" "$want_migrations" \
      || die "restore: check failed: migration state of $db ($got) differs from the manifest of $label ($want_migrations)"
    say "restore: migration state matches the manifest"
  fi
}

# The role restores run as (pg_app's), by name; dies when it is a superuser, or cannot log in.
bk_app_role() {
  local what="$1" row
  row=$(bk_app_psql postgres <<<"SELECT current_user || ' ' || rolsuper FROM pg_roles WHERE rolname = current_user" 2>&1) \
    || die "$what: cannot log in as the app's role ${DB_USER:-} (pg_hba.conf and pg_ident.conf map nourishctl): ${row##*$'\n'}"
  [ "${row#* }" = false ] || die "$what: the app's role ${row% *} is a superuser; restores run as a role that is not one; nothing changed"
  echo "${row% *}"
}

# Restores dump $1 into the new, empty database $2 (owned by the app's role) as the app's role:
# pg_restore --no-owner, so every object is the app's and whatever the dump runs while it is
# restored (a CHECK, a default, an index expression calling a function) runs with the app's rights,
# never a superuser's. Grants are restored as the dump has them. The one exception is extensions,
# and none of their code comes from the dump: the superuser (pg_admin) creates each extension the
# dump names, from the server's own scripts, in schema public of the still empty database; the
# restore skips the dump's EXTENSION entries and their comments (only an extension's owner may
# comment on it). $3: the backup's name, for messages.
bk_restore_dump() {
  local src="$1" db="$2" label="$3" list="$BK_TMPDIR/restore.list" ext err
  bk_app_role restore >/dev/null || exit 1
  pg_restore --list "$src" > "$list.all" 2>/dev/null || die "restore: pg_restore --list cannot read $label"
  # List lines are "ID; TABLEOID OID TYPE SCHEMA NAME OWNER" (pg_restore prints newlines in names as spaces).
  awk '$4 == "EXTENSION" && $5 == "-" || $4 == "COMMENT" && $5 == "-" && $6 == "EXTENSION" { print ";" $0; next } { print }' "$list.all" > "$list" \
    || die "restore: cannot write $list"
  chmod 0644 "$list"
  while IFS= read -r ext; do
    [[ "$ext" =~ ^[a-z0-9_-]{1,63}$ ]] || die "restore: backup $label names an extension '$ext' that is not an extension name; nothing restored"
    bk_psql "$db" -v e="$ext" <<<"SELECT format('CREATE EXTENSION IF NOT EXISTS %I SCHEMA public', :'e')"$'\n\\gexec' >/dev/null \
      || die "restore: cannot create extension $ext (named by backup $label) in $db"
  done < <(awk '$4 == "EXTENSION" && $5 == "-" { print $6 }' "$list.all")
  # The list on descriptor 3: pg_restore (as the postgres OS user) cannot open BACKUP_DIR's files.
  err=$(pg_app pg_restore --exit-on-error --single-transaction --no-owner --use-list=/dev/fd/3 --dbname="$db" < "$src" 3< "$list" 2>&1) \
    || die "restore: pg_restore of $label into $db failed: $(printf '%s\n' "$err" | awk '/[Ee][Rr][Rr][Oo][Rr]/ && !n { print; n = 1 } END { if (!n) print "(no message)" }')"
}

# Every manifest field a restore or rehearsal uses, against its exact form, before anything
# happens: the manifest is read from a bucket, and a field that goes on (into a database's
# comment, a metric, a JSON summary) must be what `backup` wrote. Dies naming the field.
IFS= read -r -d '' BK_MANIFEST_PY <<'PY' || true
import json, re, sys
path, label = sys.argv[1:3]
try:
    m = json.load(open(path))
except ValueError:
    print(f"the manifest of {label} is not valid JSON"); sys.exit(1)
if not isinstance(m, dict):
    print(f"the manifest of {label} is not a JSON object"); sys.exit(1)
NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
def bad(field, why):
    print(f"the manifest of {label} has a {field} that is not {why}; refusing it"); sys.exit(1)
if not (isinstance(m.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", m["sha256"])):
    bad("sha256", "64 lower-case hex digits")
if not (isinstance(m.get("time"), str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["time"])):
    bad("time", "YYYY-MM-DDTHH:MM:SSZ")
mig = m.get("migrations", {})
if not (isinstance(mig, dict) and all(isinstance(k, str) and NAME.fullmatch(k) and isinstance(v, str) and NAME.fullmatch(v) for k, v in mig.items())):
    bad("migrations", '{"app": "migration"} (letters, digits, _ . -)')
rc = m.get("row_counts")
if rc is not None and not (isinstance(rc, dict) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in rc.values())):
    bad("row_counts", '{"schema.table": rows}')
PY
bk_manifest_check() {
  local manifest="$1" label="$2" what="$3" msg
  msg=$(python3 -c "$BK_MANIFEST_PY" "$manifest" "$label" 2>&1) || die "$what: ${msg##*$'\n'}"
}

bk_db_exists() {
  [ "$(bk_psql postgres -v d="$1" <<<"SELECT count(*) FROM pg_database WHERE datname = :'d'")" = 1 ]
}

# --as NAME: the checked copy gets NAME. An existing NAME is replaced only when a previous restore
# made it (its comment says so); anything else is refused.
bk_keep_as() {
  local tmpdb="$1" name="$2" comment
  if bk_db_exists "$name"; then
    comment=$(bk_psql postgres -v d="$name" <<<"SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = :'d'")
    [[ "$comment" == "nourishctl restore"* ]] || die "restore: database $name exists and was not made by a restore; refusing to replace it"
    db_drop "$name" || die "restore: cannot drop the previous restore copy $name"
    say "restore: replaced the previous restore copy $name"
  fi
  bk_psql postgres -v a="$tmpdb" -v b="$name" <<<'ALTER DATABASE :"a" RENAME TO :"b"' >/dev/null || die "restore: cannot rename $tmpdb to $name"
  BK_RESTORE_DB=""
}

# The swap: no new connections to the live database, terminate the ones it has, then rename
# live -> kept and restored -> live in one transaction (if the second rename fails, the first is
# undone with it). The kept database is left for inspection and for restore-cleanup.
bk_swap() {
  local tmpdb="$1" live="$2" kept="$3"
  if bk_db_exists "$live"; then
    bk_psql postgres -v d="$live" <<<'ALTER DATABASE :"d" WITH ALLOW_CONNECTIONS false' >/dev/null \
      || die "restore: swap failed: cannot close $live to new connections (nothing changed)"
    if ! bk_psql postgres -v d="$live" >/dev/null <<'SQL'
SELECT set_config('nl.live', :'d', false);
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'d' AND pid <> pg_backend_pid();
DO $$ BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_setting('nl.live'));
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SQL
    then
      bk_psql postgres -v d="$live" <<<'ALTER DATABASE :"d" WITH ALLOW_CONNECTIONS true' >/dev/null 2>&1 || true
      die "restore: swap failed: cannot terminate the connections to $live (nothing changed)"
    fi
    if ! bk_psql postgres -v live="$live" -v kept="$kept" -v tmpdb="$tmpdb" >/dev/null <<'SQL'
BEGIN;
ALTER DATABASE :"live" RENAME TO :"kept";
ALTER DATABASE :"tmpdb" RENAME TO :"live";
COMMIT;
SQL
    then
      # The transaction undid the first rename; let the live database serve again.
      bk_psql postgres -v d="$live" <<<'ALTER DATABASE :"d" WITH ALLOW_CONNECTIONS true' >/dev/null 2>&1 || true
      die "restore: swap failed: renaming $live to $kept and $tmpdb to $live was rolled back; $live is unchanged and serving"
    fi
    BK_RESTORE_DB=""
    bk_psql postgres -v d="$kept" <<<'ALTER DATABASE :"d" WITH ALLOW_CONNECTIONS true' >/dev/null \
      || say "restore: warning: $kept still refuses connections (ALTER DATABASE \"$kept\" WITH ALLOW_CONNECTIONS true)"
    say "restore: swapped: the previous $live is kept as $kept; $live now holds the restored data (drop the old one with: nourishctl restore-cleanup $kept)"
  else
    bk_psql postgres -v a="$tmpdb" -v b="$live" <<<'ALTER DATABASE :"a" RENAME TO :"b"' >/dev/null || die "restore: cannot rename $tmpdb to $live"
    BK_RESTORE_DB=""
    say "restore: there was no database $live; the restored one is now $live"
  fi
}

bk_restore_sqlite() {
  local file="$1" label="$2" as="$3" ts="$4" target dir kept
  bk_need sqlite3 sqlite3
  target="${as:-$SQLITE_PATH}"
  dir=$(dirname "$target")
  [ -d "$dir" ] || die "restore: directory $dir does not exist"
  if [ -z "$as" ] && svc_active "nourish-link-app@*"; then
    die "restore: stop the application first (nourishctl maintenance on; systemctl stop 'nourish-link-app@*'): it has $SQLITE_PATH open"
  fi
  BK_RESTORE_TMPFILE=$(mktemp "$dir/.$(basename "$target").restore.XXXXXX") || die "restore: cannot create a temp file in $dir"
  cp "$file" "$BK_RESTORE_TMPFILE" || die "restore: cannot copy $label to $dir"
  [ "$(sqlite3 "$BK_RESTORE_TMPFILE" 'PRAGMA integrity_check' 2>&1)" = ok ] \
    || die "restore: check failed: the copy of $label fails PRAGMA integrity_check; $target untouched"
  # Each table's rows in the copy against the manifest's row_counts (none in older manifests).
  local msg
  bk_sqlite_row_counts "$BK_RESTORE_TMPFILE" > "$BK_TMPDIR/counts.json" 2>&1 \
    || die "restore: check failed: cannot count the rows of the copy of $label: $(tail -n 1 "$BK_TMPDIR/counts.json"); $target untouched"
  msg=$(python3 -c "$BK_COMPARE_COUNTS_PY" "$BK_TMPDIR/counts.json" "${file%.*}.json" "$BK_RESTORE_TMPFILE" "$label" 2>&1) \
    || die "restore: check failed: ${msg##*$'\n'}; $target untouched"
  say "restore: $msg"
  [ -e "$target" ] && chown --reference="$target" "$BK_RESTORE_TMPFILE"
  chmod 0600 "$BK_RESTORE_TMPFILE"
  if [ -e "$target" ] && [ -z "$as" ]; then
    kept="$target.before_restore_$ts"
    ln "$target" "$kept" 2>/dev/null || cp -p "$target" "$kept" || die "restore: cannot keep the previous $target as $kept"
    local side
    for side in -wal -shm -journal; do
      [ -e "$target$side" ] && mv "$target$side" "$kept$side"
    done
  fi
  mv -f "$BK_RESTORE_TMPFILE" "$target" || die "restore: cannot move the restored file into $target"
  BK_RESTORE_TMPFILE=""
  if [ -n "${kept:-}" ]; then
    say "restore: $target restored from $label; the previous file is kept as $kept"
  else
    say "restore: $target restored from $label"
  fi
}

cmd_restore() {
  local key="" file="" latest=0 as="" replace=0 yes=0 at="" n=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --help) help_restore; return 0 ;;
      --latest) latest=1; n=$((n + 1)); shift ;;
      --key) [ $# -ge 2 ] || die "restore: --key needs a key"; key="$2"; n=$((n + 1)); shift 2 ;;
      --file) [ $# -ge 2 ] || die "restore: --file needs a path"; file="$2"; n=$((n + 1)); shift 2 ;;
      --at) [ $# -ge 2 ] || die "restore: --at needs a timestamp"; at="$2"; n=$((n + 1)); shift 2 ;;
      --as) [ $# -ge 2 ] || die "restore: --as needs a name"; as="$2"; shift 2 ;;
      --replace-live) replace=1; shift ;;
      --yes) yes=1; shift ;;
      *) die "restore: unknown option '$1' (see nourishctl restore --help)" ;;
    esac
  done
  [ "$n" -eq 1 ] || die "restore: give exactly one of --latest, --key KEY, --file PATH, --at TIMESTAMP"
  bk_here restore
  local db ts tmpdb kept
  db=$(bk_db) || exit 1
  ts=$(date -u +%Y%m%d_%H%M%S)
  tmpdb="${db}_restore_$ts"
  kept="${db}_before_restore_$ts"
  if [ -z "${SQLITE_PATH:-}" ]; then
    # Every name this restore will create or rename to, whole, before anything happens.
    db_ident_check "$db" restore
    db_ident_check "$tmpdb" restore
    db_ident_check "$kept" restore
  fi
  if [ -n "$as" ] && [ -z "${SQLITE_PATH:-}" ]; then
    db_ident_check "$as" "restore --as"
    [ "$as" != "$db" ] || die "restore: --as $db is the live database; to replace it, leave out --as"
    [[ "$as" != *_before_restore_* && "$as" != "${db}_restore_"* ]] || die "restore: --as $as is a name restore uses itself"
  fi
  # Refuse before anything happens: on prod the live database is replaced only on explicit request.
  if [ -z "$as" ] && [ "${STACK:-}" = prod ] && { [ "$replace" -eq 0 ] || [ "$yes" -eq 0 ]; }; then
    die "restore: refusing to replace the live ${SQLITE_PATH:-database $db} on STACK=prod without --replace-live --yes (or use --as NAME); nothing changed"
  fi
  bk_need python3 python3
  db_lock restore exclusive
  bk_mkdir restore
  # Temp dirs of a restore that was killed midway (we hold the lock: none is in use).
  find "$(bk_dir)" -mindepth 1 -maxdepth 1 -type d -name '.restore.*' -exec rm -rf {} + || true
  BK_TMPDIR=$(mktemp -d "$(bk_dir)/.restore.XXXXXX") || die "restore: cannot create a temp dir in $(bk_dir)"
  trap bk_cleanup_restore EXIT

  local src="" label="" manifest=""
  if [ -n "$at" ]; then
    [ -z "${SQLITE_PATH:-}" ] || die "restore: --at (point-in-time) is for PostgreSQL, not SQLite"
    declare -F pitr_restore_to_db >/dev/null || die "restore: point-in-time restore needs pgBackRest (PITR off on this host)"
    label="point in time $at"
  elif [ -n "$file" ]; then
    [ -r "$file" ] || die "restore: backup file $file is not readable"
    src="$file"; label="$file"
  else
    local bucket
    bucket=$(bk_bucket restore) || exit 1
    if [ "$latest" -eq 1 ]; then key=$(bk_latest_key "$bucket" restore) || exit 1; fi
    src=$(bk_fetch "$bucket" "$key" "$BK_TMPDIR" restore) || exit 1
    label="$key"
  fi
  if [ -n "$src" ]; then
    manifest="${src%.*}.json"
    # Step: verify, before any database (or file) is touched.
    bk_check_file "$src" "$manifest" "$label" restore
    # A caller that named the backup by its checksum too (a restore rehearsal, from the plan) gets
    # exactly that backup or nothing.
    if [ -n "${BK_EXPECT_SHA256:-}" ]; then
      local named
      named=$(bk_json_get "$manifest" sha256)
      [ "$named" = "$BK_EXPECT_SHA256" ] || die "restore: backup $label has sha256 $named, not the $BK_EXPECT_SHA256 it was named by; refusing it"
    fi
    say "restore: $label: sha256 matches its manifest"
    bk_manifest_check "$manifest" "$label" restore
  fi

  if [ -n "${SQLITE_PATH:-}" ]; then
    [[ "$src" == *.sqlite3 ]] || die "restore: $label is not a SQLite backup (.sqlite3) and this host has SQLITE_PATH"
    bk_restore_sqlite "$src" "$label" "$as" "$ts"
    return 0
  fi
  [ -z "$src" ] || [[ "$src" == *.dump ]] || die "restore: $label is not a PostgreSQL backup (.dump)"

  # Leftovers of a restore that was killed midway (never the live or a kept database): a live
  # database it closed to new connections just before its swap, and its half-restored database.
  local old
  if [ "$(bk_psql postgres -v d="$db" <<<"SELECT NOT datallowconn FROM pg_database WHERE datname = :'d'")" = t ]; then
    bk_psql postgres -v d="$db" <<<'ALTER DATABASE :"d" WITH ALLOW_CONNECTIONS true' >/dev/null || die "restore: cannot reopen $db to connections"
    say "restore: reopened $db to connections (closed by an interrupted restore)"
  fi
  # Exactly <db>_restore_YYYYmmdd_HHMMSS (we hold the exclusive lock: no other restore uses one).
  for old in $(bk_psql postgres -c "SELECT datname FROM pg_database"); do
    [[ "$old" =~ ^${db}_restore_[0-9]{8}_[0-9]{6}$ ]] || continue
    db_drop "$old" || die "restore: cannot drop $old, left by an interrupted restore"
    say "restore: dropped $old, left by an interrupted restore"
  done

  if [ -n "$at" ]; then
    # pitr_restore_to_db drops its target itself when it fails; from here on it is ours to drop.
    pitr_restore_to_db "$at" "$tmpdb" || die "restore: point-in-time restore to $at into $tmpdb failed"
    bk_db_exists "$tmpdb" || die "restore: point-in-time restore to $at did not create $tmpdb"
    BK_RESTORE_DB="$tmpdb"
    bk_check_db "$tmpdb" "" "" "$label"
  else
    local owner
    owner=$(bk_app_role restore) || exit 1
    bk_psql postgres -v d="$tmpdb" -v o="$owner" <<<"SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0', :'d', :'o')"$'\n\\gexec' >/dev/null \
      || die "restore: cannot create database $tmpdb"
    BK_RESTORE_DB="$tmpdb"
    # Step: restore, as the app's role (every object the app's, whatever the dump runs runs as it).
    bk_restore_dump "$src" "$tmpdb" "$label"
    bk_dump_tables "$src" > "$BK_TMPDIR/tables" || die "restore: cannot read the tables of $label: $(tail -n 1 "$BK_TMPDIR/tables")"
    local want
    want=$(bk_json_get "$manifest" migrations) || die "restore: manifest of $label is not valid JSON"
    bk_check_db "$tmpdb" "$BK_TMPDIR/tables" "$want" "$label" "$manifest"
  fi
  bk_psql postgres -v d="$tmpdb" -v c="nourishctl restore of $label at $ts" <<<"COMMENT ON DATABASE :\"d\" IS :'c'" >/dev/null || true
  # A caller's last step on the checked copy before anyone sees it (restore-rehearsal: scrubbing).
  if [ -n "${BK_BEFORE_SWAP:-}" ]; then "$BK_BEFORE_SWAP" "$tmpdb" "$label"; fi

  if [ -n "$as" ]; then
    bk_keep_as "$tmpdb" "$as"
    say "restore: $label restored and checked as database $as (the live $db is untouched)"
  else
    bk_swap "$tmpdb" "$db" "$kept"
    # The live database changed under the app: the smoke checks where the app runs (lib/smoke.sh).
    local live why
    if [ "$ROLE" = app ] && declare -F smoke_checks >/dev/null && live=$(rel_current) && [ -n "$live" ]; then
      why=$(smoke_checks "$live") || die "restore: $label is live, but $live fails the smoke checks on it: $why"
      say "restore: $live passes the smoke checks on the restored database"
    elif [ "$ROLE" = db ]; then
      say "restore: next, on an app host: nourishctl smoke (the live release on the restored database)"
    fi
  fi
}

cmd_restore_cleanup() {
  local older="" name=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --help) help_restore_cleanup; return 0 ;;
      --older-than) { [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]]; } || die "restore-cleanup: --older-than needs a number of days"; older="$2"; shift 2 ;;
      -*) die "restore-cleanup: unknown option '$1'" ;;
      *) name="$1"; shift ;;
    esac
  done
  # What a restore kept is exactly <db or file>.before_restore_YYYYmmdd_HHMMSS: anything else that
  # looks like it (a name PostgreSQL truncated, a hand-made copy) has no age we can trust, and is
  # left alone with a warning.
  local kept=() candidates=() k cutoff dropped=0 prefix
  bk_here restore-cleanup
  if [ -n "$name" ] || [ -n "$older" ]; then db_lock restore-cleanup exclusive; fi
  if [ -n "${SQLITE_PATH:-}" ]; then
    prefix="$SQLITE_PATH.before_restore_"
    for k in "$prefix"*; do [ -e "$k" ] && candidates+=("$k"); done
  else
    local db
    db=$(bk_db) || exit 1
    prefix="${db}_before_restore_"
    mapfile -t candidates < <(bk_psql postgres -v p="$prefix" <<<"SELECT datname FROM pg_database WHERE starts_with(datname, :'p') ORDER BY 1")
  fi
  for k in "${candidates[@]}"; do
    [ -n "$k" ] || continue
    case "$k" in *-wal|*-shm|*-journal) continue ;; esac  # a kept SQLite file's side files
    if [[ "${k#"$prefix"}" =~ ^[0-9]{8}_[0-9]{6}$ ]] && [ "$k" != "${DB_NAME:-}" ]; then
      kept+=("$k")
    else
      echo "nourishctl: warning: restore-cleanup: skipping $k: not <name>_before_restore_YYYYmmdd_HHMMSS, its time cannot be read; drop it by hand if it is not needed" >&2
    fi
  done
  if [ -z "$name" ] && [ -z "$older" ]; then
    say "restore-cleanup: kept by restores: ${kept[*]:-none}; nothing dropped (give NAME or --older-than DAYS)"
    return 0
  fi
  if [ -n "$name" ]; then
    local found=0
    for k in "${kept[@]}"; do [ "$k" = "$name" ] && found=1; done
    [ "$found" -eq 1 ] || die "restore-cleanup: $name is not something a restore kept (${kept[*]:-none})"
    kept=("$name")
  fi
  cutoff=$(date -u -d "-${older:-0} days" +%Y%m%d%H%M%S)
  for k in "${kept[@]}"; do
    local stamp="${k#"$prefix"}"
    if [ -n "$older" ] && [ "${stamp/_/}" -gt "$cutoff" ]; then continue; fi
    if [ -n "${SQLITE_PATH:-}" ]; then
      rm -f "$k" "$k-wal" "$k-shm" "$k-journal" || die "restore-cleanup: cannot remove $k"
    else
      db_drop "$k" || die "restore-cleanup: cannot drop $k"
    fi
    say "restore-cleanup: dropped $k"
    dropped=$((dropped + 1))
  done
  say "restore-cleanup: $dropped dropped"
}
