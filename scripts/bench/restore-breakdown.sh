#!/usr/bin/env bash
# Where a pgBackRest restore's time goes, without S3: the same incompressible database restored
# from a local (posix) repository with our settings (zst + AES-256), with lz4 + AES, and with
# neither, against `cp -a` of the stopped data directory (the floor), side by side in one run.
# Only pgBackRest's restore step is timed (no PostgreSQL start, no WAL replay), each twice.
# Usage (root; PostgreSQL runs as postgres): bash scripts/bench/restore-breakdown.sh [GiB, default 1] [process-max, default 2]
set -euo pipefail
GIB="${1:-1}"
PMAX="${2:-2}"
BIN=/usr/lib/postgresql/15/bin
T=$(mktemp -d /tmp/nourish-restore-breakdown.XXXXXX)
chown postgres: "$T"
# From /: postgres may not enter the caller's cwd (/root, a 0700 checkout).
as_pg() { runuser -u postgres -- env -C / "$@"; }
cleanup() { as_pg "$BIN/pg_ctl" -D "$T/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

as_pg "$BIN/initdb" -D "$T/data" -A trust >/dev/null
cat >> "$T/data/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$T'
archive_mode = on
archive_command = 'pgbackrest --config=$T/%s.conf --stanza=main archive-push %p'
max_wal_size = 4GB
CONF
write_conf() { # name compress cipher
  local cipher=""
  [ "$3" = aes ] && cipher=$'repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=bench-passphrase-not-a-secret-0123456789'
  cat > "$T/$1.conf" <<CONF
[global]
repo1-type=posix
repo1-path=$T/repo-$1
repo1-retention-full=2
$cipher
compress-type=$2
process-max=$PMAX
start-fast=y
log-path=$T
lock-path=$T
log-level-console=warn
[main]
pg1-path=$T/data
pg1-port=$PORT
pg1-socket-path=$T
CONF
  chown postgres: "$T/$1.conf"
}
write_conf zst-aes zst aes
write_conf lz4-aes lz4 aes
write_conf none none none
# archive_command names one config; every stanza gets its WAL through archive-push of its own.
sed -i "s|%s.conf|zst-aes.conf|" "$T/data/postgresql.conf"
as_pg "$BIN/pg_ctl" -D "$T/data" -l "$T/server.log" -w start >/dev/null
ROWS=$(awk -v g="$GIB" 'BEGIN { printf "%d", g * 1024 * 1024 }')
echo "generating $GIB GiB of incompressible rows…"
as_pg "$BIN/psql" -h "$T" -p "$PORT" -q -d postgres -c "CREATE TABLE blob (id int, v bytea)" \
  -c "INSERT INTO blob SELECT i, decode(string_agg(lpad(to_hex((random()*4294967295)::bigint), 8, '0'), ''), 'hex') FROM generate_series(1, $ROWS) i, generate_series(1, 128) j GROUP BY i" \
  -c "CHECKPOINT"
SIZE=$(du -sm "$T/data" | cut -f1)
for c in zst-aes lz4-aes none; do
  # Each repository gets its stanza and a full backup; WAL for the other two is pushed by hand.
  sed -i "s|--config=$T/[a-z0-9-]*\.conf|--config=$T/$c.conf|" "$T/data/postgresql.conf"
  as_pg "$BIN/pg_ctl" -D "$T/data" reload >/dev/null
  as_pg pgbackrest --config="$T/$c.conf" --stanza=main stanza-create
  as_pg pgbackrest --config="$T/$c.conf" --stanza=main --type=full backup
done
as_pg "$BIN/pg_ctl" -D "$T/data" -m fast -w stop >/dev/null

declare -A took
for _ in 1 2; do
  rm -rf "$T/copy"; t=$(now); as_pg cp -a "$T/data" "$T/copy"; sync; took[floor]+="$(since "$t") "
  for c in zst-aes lz4-aes none; do
    rm -rf "$T/restore"; as_pg mkdir -m 0700 "$T/restore"
    t=$(now)
    as_pg pgbackrest --config="$T/$c.conf" --stanza=main --pg1-path="$T/restore" --type=immediate restore
    sync
    took[$c]+="$(since "$t") "
  done
done
best() { tr ' ' '\n' <<<"$1" | grep . | sort -n | head -1; }
F=$(best "${took[floor]}")
echo
echo "restore-breakdown: $SIZE MB data directory, process-max=$PMAX, local posix repository, best of 2"
printf '%-28s %8s %8s\n' "" seconds "÷ floor"
printf '%-28s %8s %8s\n' "cp -a (floor)" "$F" "1.00"
for c in zst-aes lz4-aes none; do
  b=$(best "${took[$c]}")
  printf '%-28s %8s %8s\n' "pgbackrest restore $c" "$b" "$(awk -v a="$b" -v f="$F" 'BEGIN { if (f > 0) printf "%.2f", a / f; else print "n/a" }')"
done
