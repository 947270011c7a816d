# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, aws_cli, metric and the host.env values.
#
# The manual's monthly log archival ("tar -czf logs_archive_$(date +%Y%m).tar.gz logs/*.log, move,
# clear"): the rotated logs last written in a month, in one archive, uploaded to the backup
# bucket's logs/ prefix, checked there (size and SHA-256 as S3 reports them), and only then
# removed here. Any failure removes no local file. The live logs are never touched (logrotate
# and journald own them); CloudWatch Logs keeps a searchable copy for monitoring.logRetentionDays.

VERBS+=("logs|oncall|what went wrong: errors by type, slow requests, PostgreSQL's errors; 'logs archive' (monthly)")
help_logs() {
  cat <<EOF
nourishctl logs - summarise this host's logs, or archive last month's

usage: nourishctl logs errors|access|db [--since DURATION] [--top N] [--json]
       nourishctl logs archive [YYYYMM]

  errors   error lines counted by type, most frequent first: on app hosts the app's journal
           (ERROR, CRITICAL, exceptions by class), nginx's error log and 5xx responses; on the
           db host PostgreSQL's ERROR/FATAL/PANIC
  access   (app hosts) requests by status class, request_time percentiles, the slowest requests
  db       (db host) PostgreSQL's errors by type and its slowest logged statements
  archive  rotated logs (*.1, *.gz, ...) last written in month YYYYMM (default: last month) from
           ${LOG_ARCHIVE_DIRS[*]},
           and the month's journal of ${LOG_JOURNAL_UNITS[*]} (and postgresql@* on the db host)
           as journal/<role>_journal_YYYYMM.log.gz,
           to s3://\$BACKUP_BUCKET/logs/<role>/<aws:userid>/logs_archive_YYYYMM.tar.gz
           (write-once, SHA-256 checked by S3); removes the rotated logs here once S3 has them
           (logrotate keeps them 62 days until then). Its timer runs it monthly.

Options:
  --since DURATION  how far back (default: 1h); a number and s, m, h or d: 30m, 2h, 1d
  --top N           how many of each list (default: 10)
  --json            one JSON document (default: tables)
EOF
}

# The live logs the on-call summaries read (LOG_SOURCES in components/monitoring/logs.ts): nginx's
# JSON access log (format in components/app/nginx.ts) and error log, the app's journal
# (nourish-link-app@*; the sandbox's unit logs), PostgreSQL's server log (log_line_prefix
# '%m [%p] %q%u@%d ', components/database/postgresql.ts).
NGINX_ACCESS_LOG="$ROOT/var/log/nourish-link/nginx-access.log"
NGINX_ERROR_LOG="$ROOT/var/log/nourish-link/nginx-error.log"
POSTGRES_LOG="$ROOT/var/log/postgresql/postgresql-15-main.log"

# Reads the sources named SOURCE=PATH (PATH - is stdin) and prints one summary: errors counted by
# type (messages normalised: numbers, quoted strings and addresses replaced, so one cause is one
# line), the access log's status classes, percentiles and slowest requests (paths without their
# query strings), or PostgreSQL's errors and slowest statements (the first 120 characters).
IFS= read -r -d '' LOGS_SUMMARY <<'PY' || true
import json, re, sys, time, calendar
mode, since, top, as_json = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
sources = [a.split("=", 1) for a in sys.argv[5:]]
TS = re.compile(r"^\[?(\d{4})[-/](\d\d)[-/](\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?: ?(Z|UTC|GMT|[+-]\d\d:?\d\d))?\]?")
def stamp(line):
    m = TS.match(line)
    if not m:
        return None
    y, mo, d, h, mi, s, tz = m.groups()
    t = (int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, -1)
    if tz is None:
        return time.mktime(t)  # nginx's error log: the host's local time (UTC on the hosts)
    off = 0
    if tz[0] in "+-":
        tz = tz.replace(":", "")
        off = (int(tz[1:3]) * 3600 + int(tz[3:5]) * 60) * (1 if tz[0] == "+" else -1)
    return calendar.timegm(t) - off
def norm(msg, n=100):
    msg = re.sub(r"'[^']*'", "'?'", msg)
    msg = re.sub(r'"[^"]*"', '"?"', msg)
    msg = re.sub(r"0x[0-9a-fA-F]+", "0x?", msg)
    msg = re.sub(r"\d+", "N", msg)
    return re.sub(r"\s+", " ", msg).strip()[:n]
def lines(path):
    f = sys.stdin if path == "-" else open(path, errors="replace")
    with f:
        last = None
        for raw in f:
            raw = raw.rstrip("\n")
            t = stamp(raw)
            last = t if t is not None else last
            yield last, raw
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None
counts = {}
def count(kind, source, t):
    c = counts.setdefault((kind, source), [0, None])
    c[0] += 1
    c[1] = max(c[1] or 0, t or 0)
JOURNAL = re.compile(r"^\S+ \S+ [^\s:]+\[\d+\]: ")
GUNICORN = re.compile(r"^\[[^\]]+\] \[\d+\] \[([A-Z]+)\] (.*)")
EXC = re.compile(r"^((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*(?:Error|Exception|Exit|Interrupt|Warning|DoesNotExist|Denied|Invalid|Failure)\b)(?::|$)")
LEVEL = re.compile(r"\b(ERROR|CRITICAL)\b[:\]]?\s*(.*)")
NGINX_ERR = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(error|crit|alert|emerg)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client: .*)?$")
PG = re.compile(r"^\S+ \S+ \S+ \[\d+\] (?:\S*@\S* )?(ERROR|FATAL|PANIC):\s+(.*)")
PG_SLOW = re.compile(r"^\S+ \S+ \S+ \[\d+\] (\S*@\S* )?LOG:\s+duration: ([0-9.]+) ms\s+(?:statement|execute [^:]*): (.*)")
slow, requests, statuses, times = [], 0, {}, []
for source, path in sources:
    try:
        it = list(lines(path))
    except OSError as e:
        sys.exit(f"nourishctl: logs: cannot read {path}: {e.strerror}")
    in_tb = False
    for t, line in it:
        if source != "access" and t is not None and t < since:
            continue
        if source == "access":
            try:
                r = json.loads(line)
                t = stamp(str(r.get("time", "")))
            except ValueError:
                continue
            if t is None or t < since:
                continue
            status = int(r.get("status", 0))
            path_only = str(r.get("uri", "")).split("?", 1)[0]
            if mode == "errors":
                if status >= 500:
                    count(f"HTTP {status} {r.get('method', '?')} {norm(path_only, 80)}", "nginx access log", t)
                continue
            requests += 1
            statuses[f"{status // 100}xx"] = statuses.get(f"{status // 100}xx", 0) + 1
            rt = float(r.get("request_time", 0) or 0)
            times.append(rt)
            slow.append({"time": r.get("time"), "method": r.get("method"), "path": path_only, "status": status,
                         "request_time": rt, "upstream_response_time": r.get("upstream_response_time"), "request_id": r.get("request_id")})
        elif source == "app":
            body = JOURNAL.sub("", line)
            g = GUNICORN.match(body)
            if g:
                if g.group(1) in ("ERROR", "CRITICAL"):
                    count(f"{g.group(1)} {norm(g.group(2))}", "app", t)
                in_tb = False
                continue
            if body.startswith("Traceback (most recent call last)"):
                in_tb = True
                continue
            if in_tb and not body[:1].isspace():
                e = EXC.match(body)
                if e:
                    count(f"exception {e.group(1)}", "app", t)
                    in_tb = False
                continue
            if not in_tb:
                m = LEVEL.search(body)
                if m:
                    count(f"{m.group(1)} {norm(m.group(2))}", "app", t)
        elif source == "nginx-error":
            m = NGINX_ERR.match(line)
            if m:
                count(f"nginx {m.group(1)}: {norm(m.group(2))}", "nginx error log", t)
        elif source == "postgresql":
            m = PG.match(line)
            if m:
                count(f"{m.group(1)}: {norm(m.group(2))}", "postgresql", t)
                continue
            m = PG_SLOW.match(line)
            if m and mode == "db":
                slow.append({"time": iso(t), "duration_ms": float(m.group(2)), "user_db": (m.group(1) or "").strip(),
                             "statement": re.sub(r"\s+", " ", m.group(3))[:120]})
types = sorted(({"count": c[0], "type": k, "source": s, "last_seen": iso(c[1])} for (k, s), c in counts.items()), key=lambda x: (-x["count"], x["type"]))
def pct(p):
    if not times:
        return None
    s = sorted(times)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]
key = "request_time" if mode == "access" else "duration_ms"
slow = sorted(slow, key=lambda x: -x[key])[:top]
if mode == "access":
    out = {"requests": requests, "by_status": dict(sorted(statuses.items())),
           "request_time_p50": pct(50), "request_time_p95": pct(95), "request_time_p99": pct(99), "slowest": slow}
elif mode == "db":
    out = {"errors": sum(x["count"] for x in types), "types": types[:top], "slowest_statements": slow}
else:
    out = {"errors": sum(x["count"] for x in types), "types": types[:top]}
if as_json:
    out = {"since": iso(since), **out}
    print(json.dumps(out))
    sys.exit(0)
print(f"since {iso(since)}")
if mode in ("errors", "db"):
    print(f"{out['errors']} error line(s) by type (the manual's grep ERROR | sort | uniq -c | sort -rn):")
    for x in out["types"]:
        print(f"  {x['count']:6d}  {x['type']}  [{x['source']}, last {x['last_seen']}]")
if mode == "db":
    print(f"slowest statements (log_min_duration_statement):")
    for x in slow:
        print(f"  {x['duration_ms']:10.1f} ms  {x['time']}  {x['user_db']}  {x['statement']}")
if mode == "access":
    print(f"{requests} request(s): " + ", ".join(f"{k} {v}" for k, v in out["by_status"].items()))
    if times:
        print(f"request_time p50 {out['request_time_p50']:.3f} s, p95 {out['request_time_p95']:.3f} s, p99 {out['request_time_p99']:.3f} s")
    print(f"slowest {len(slow)}:")
    for x in slow:
        print(f"  {x['request_time']:8.3f} s  {x['status']}  {x['method']} {x['path']}  {x['time']}  upstream {x['upstream_response_time']}  id {x['request_id']}")
PY

logs_summary() {
  local mode="$1" since=3600 top=10 json=0
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --since) since=$(duration_seconds "${2:-}" "logs $mode: --since") || exit 1; shift 2 ;;
      --top)
        [[ "${2:-}" =~ ^[1-9][0-9]?$ ]] || die "logs $mode: --top must be a number from 1 to 99"
        top="$2"; shift 2 ;;
      --json) json=1; shift ;;
      *) die "logs $mode: unknown option '$1' (--since DURATION, --top N, --json)" ;;
    esac
  done
  local from sources=() f
  from=$(($(date +%s) - since))
  case "$ROLE:$mode" in
    app:errors)
      [ -e "$NGINX_ERROR_LOG" ] && sources+=("nginx-error=$NGINX_ERROR_LOG")
      [ -e "$NGINX_ACCESS_LOG" ] && sources+=("access=$NGINX_ACCESS_LOG")
      if [ -n "$ROOT" ]; then
        for f in "$ROOT"/var/log/nourish-link/nourish-link-app@*.log; do [ -e "$f" ] && sources+=("app=$f"); done
      else
        sources+=("app=-")
      fi ;;
    app:access)
      [ -e "$NGINX_ACCESS_LOG" ] || die "logs access: no access log at $NGINX_ACCESS_LOG"
      sources+=("access=$NGINX_ACCESS_LOG") ;;
    db:errors|db:db)
      [ -e "$POSTGRES_LOG" ] || die "logs $mode: no PostgreSQL log at $POSTGRES_LOG"
      sources+=("postgresql=$POSTGRES_LOG") ;;
    app:db) die "logs db: PostgreSQL's log is on the db host (here: logs errors, logs access)" ;;
    db:access) die "logs access: nginx's access log is on the app hosts (here: logs errors, logs db)" ;;
    :*) die "ROLE is not set in $HOST_ENV (app or db)" ;;
  esac
  [ "$json" -eq 1 ] || say "logs $mode on this $ROLE host, last ${since} s:"
  if [ -z "$ROOT" ] && [ "$mode" = errors ] && [ "$ROLE" = app ]; then
    journalctl --no-pager -q -o short-iso -u 'nourish-link-app@*' --since "@$from" \
      | /usr/bin/python3 -I -S -c "$LOGS_SUMMARY" "$mode" "$from" "$top" "$json" "${sources[@]}"
  else
    /usr/bin/python3 -I -S -c "$LOGS_SUMMARY" "$mode" "$from" "$top" "$json" "${sources[@]}" </dev/null
  fi
}

# Where rotated logs accumulate: ours (nginx, app), PostgreSQL's.
LOG_ARCHIVE_DIRS=("/var/log/nourish-link" "/var/log/postgresql" "/var/log/nginx")
# The units whose journal the archive exports: the app (gunicorn, every port) and nourishctl's jobs
# on every host; the cluster's unit on the db host (its server log is a file, above).
LOG_JOURNAL_UNITS=("nourish-link-*")

# journalctl, reading the host's journal, or in the sandbox (NOURISH_ROOT, tests) the journal files
# under $ROOT/var/log/journal.
logs_journalctl() {
  if [ -n "$ROOT" ]; then journalctl -D "$ROOT/var/log/journal" "$@"; else journalctl "$@"; fi
}

cmd_logs() {
  case "${1:-}" in
    errors|access|db) logs_summary "$@"; return ;;
    --help|"")
      help_logs
      [ -n "${1:-}" ] && return 0
      die "logs: say archive" ;;
    archive) shift ;;
    *) die "logs: unknown task '$1' (errors, access, db or archive)" ;;
  esac
  local month="${1:-$(date -d "$(date +%Y-%m-01) -1 month" +%Y%m)}" start end bucket="${BACKUP_BUCKET:-}"
  [[ "$month" =~ ^20[0-9]{2}(0[1-9]|1[0-2])$ ]] || die "logs archive: '$month' is not a month (YYYYMM)"
  [ -n "$bucket" ] || die "logs archive: BACKUP_BUCKET is not set in $HOST_ENV (backups.enabled is off?)"
  start="${month:0:4}-${month:4:2}-01"
  end=$(date -d "$start +1 month" +%F)
  # Rotated files only (a live *.log is still being written), last modified within the month.
  local files=() d f
  for d in "${LOG_ARCHIVE_DIRS[@]}"; do
    [ -d "$ROOT$d" ] || continue
    while IFS= read -r -d '' f; do files+=("${f#"$ROOT"/}"); done < <(find "$ROOT$d" -type f \
      \( -name '*.log.[0-9]*' -o -name '*.gz' \) ! -name 'logs_archive_*' -newermt "$start" ! -newermt "$end" -print0 | sort -z)
  done
  local work name key sha size journal="" lines=0 units=() u
  work=$(mktemp -d) || die "logs archive: cannot create a temp dir"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  # The month's journal of the app, the jobs (and the cluster on the db host), as journalctl prints
  # it, compressed: journald keeps only what its size cap allows (journald.conf.d), the archive all.
  units=("${LOG_JOURNAL_UNITS[@]}")
  [ "$ROLE" = db ] && units+=("postgresql@*")
  local uargs=()
  for u in "${units[@]}"; do uargs+=(-u "$u"); done
  if [ -z "$ROOT" ] || [ -d "$ROOT/var/log/journal" ]; then
    journal="journal/${ROLE}_journal_$month.log.gz"
    mkdir -p "$work/journal"
    logs_journalctl --no-pager -q -o short-iso-precise --since "$start 00:00:00" --until "$end 00:00:00" "${uargs[@]}" > "$work/journal.log" \
      || die "logs archive: journalctl cannot export $month's journal (${units[*]}); nothing removed"
    lines=$(wc -l < "$work/journal.log")
    if [ "$lines" -gt 0 ]; then gzip -9 -c "$work/journal.log" > "$work/$journal" || die "logs archive: cannot compress the journal; nothing removed"
    else journal=""; fi
    rm -f "$work/journal.log"
  fi
  if [ "${#files[@]}" -eq 0 ] && [ -z "$journal" ]; then say "logs archive: no rotated logs or journal from $month; nothing to do"; return 0; fi
  name="logs_archive_$month.tar.gz"
  local jfile=()
  [ -z "$journal" ] || jfile=("$journal")
  tar -czf "$work/$name" -C "$work" "${jfile[@]}" -C "${ROOT:-/}" -- "${files[@]}" || die "logs archive: tar failed; nothing removed"
  # What is removed here is exactly what the archive lists: read it back before anything goes.
  local listed
  listed=$(tar -tzf "$work/$name") || die "logs archive: cannot read $name back; nothing removed"
  for f in "${files[@]}"; do
    grep -qxF -- "$f" <<<"$listed" || die "logs archive: $f is missing from $name; nothing removed"
  done
  sha=$(sha256sum "$work/$name" | cut -d' ' -f1)
  size=$(stat -c %s "$work/$name")
  # This host's own prefix, logs/<role>/<aws:userid>/: the only place its role may write, and it
  # may read none (components/backups/policy.ts, logArchiveStatements).
  local userid rc=0
  userid=$(aws_userid 2>&1) || userid="${userid//$'\n'/ }"
  [[ "$userid" =~ ^[A-Za-z0-9:._@-]+$ ]] || die "logs archive: cannot tell this host's AWS identity (sts get-caller-identity: $userid); nothing removed"
  key="logs/$ROLE/$userid/$name"
  # One PUT with If-None-Match (an archive already there is never overwritten) and SHA-256 (S3
  # refuses the PUT unless it received exactly this file), locked for as long as logs are kept.
  s3_put_once "$bucket" "$key" "$work/$name" "$sha" "$(lock_days logs)" || rc=$?
  [ "$rc" -ne 2 ] || die "logs archive: s3://$bucket/$key exists already; nothing removed"
  [ "$rc" -eq 0 ] || die "logs archive: upload to s3://$bucket/$key failed; nothing removed"
  for f in "${files[@]}"; do rm -f -- "${ROOT:-}/$f"; done
  say "logs archive: ${#files[@]} rotated logs${journal:+ and $lines journal lines} from $month in s3://$bucket/$key ($size bytes, sha256 $sha, checked by S3); removed here"
}
