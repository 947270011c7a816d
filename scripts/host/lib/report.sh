# shellcheck shell=bash
# nourishctl-roles: app
# Sourced by nourishctl, which provides die, say, metric, aws_cli, s3_put_once and the host.env
# values; release.sh (rel_current, rel_dir, rel_manage, rel_as_app, RELEASE_LOG) and status.sh
# (json_str) come with the app role.
#
# The manual's weekly "Security Check" (manage.py check --deploy) and "Update Review" (check for
# dependency updates), run by a timer on the live release and kept as two numbers CloudWatch
# shows week after week: DeployCheckIssues (alarmed: a deploy check that finds anything) and
# OutdatedPackages (on the dashboard). The output lists what was found, for whoever reads it.
#
# The manual's weekly and monthly reports (app-0's timers): what the infrastructure knows of the
# period, from CloudWatch, the alarm history, Cost Explorer and releases.log, computed by
# REPORT_PY below from the spec the stack writes beside the tooling (components/monitoring/report.ts).

VERBS+=("report|internal|'report weekly|monthly': the period's report to the bucket and the alert topic; weekly also check --deploy and outdated packages (timers)")
help_report() {
  cat <<EOF
nourishctl report - the weekly and monthly reports (timers run them; app-0 writes the reports)

usage: nourishctl report weekly [--checks-only] [--json] [--end TIME]
       nourishctl report monthly [--json] [--end TIME]

  weekly   on the live release: manage.py check --deploy (DeployCheckIssues) and
           pip list --outdated of what its virtualenv installed itself (OutdatedPackages);
           then the report of the 7 days before --end (below)
  monthly  the report of the calendar month (UTC) before --end
  The report: requests, 5xx rate, p95, uptime, CPU/memory/disk peaks per host, database size
  and connections, backups, the last restore rehearsal, releases and rollbacks (releases.log),
  alarms that fired and the month's AWS cost against monitoring.monthlyBudgetUsd, from
  CloudWatch (GetMetricData, one call), the alarm history and Cost Explorer; written as
  Markdown and JSON to s3://BACKUP_BUCKET/reports/<weekly|monthly>/START_END.{md,json}
  (never overwritten) and mailed as short text through the alert topic (docs/MONITORING.md).

Options:
  --checks-only  weekly: the checks only (the other app hosts' timer)
  --json         the checks (weekly) and the report as one JSON object (default: lines of text)
  --end TIME     end of the period, UTC (2026-12-07T00:00:00Z); default: this hour (weekly),
                 the 1st of this month (monthly)
EOF
}

# Counts the issues in manage.py check's output: each is one "<obj>: (<app>.<E|W|C|I><n>) …" line.
# (grep finds none on a clean check: that is not a failure.)
report_check_ids() { { grep -oE '\(([a-z_]+\.)+[A-Z][0-9]+\)' || true; } | tr -d '()' | sort -u | paste -sd' ' -; }

cmd_report() {
  local what="${1:-}" json=0 checks_only=0 end=""
  case "$what" in
    --help|"")
      help_report
      [ -n "$what" ] && return 0
      die "report: say which report (weekly or monthly)"
      ;;
    weekly|monthly) shift ;;
    *) die "report: unknown report '$what' (weekly or monthly)" ;;
  esac
  while [ $# -gt 0 ]; do
    case "$1" in
      --json) json=1 ;;
      --checks-only) [ "$what" = weekly ] || die "report $what: --checks-only is the weekly report's"; checks_only=1 ;;
      --end) [ $# -ge 2 ] || die "report $what: --end needs a time"; end="$2"; shift ;;
      *) die "report $what: unknown option '$1' (--json, --end$([ "$what" = weekly ] && echo ", --checks-only"))" ;;
    esac
    shift
  done
  if [ "$what" = monthly ]; then report_period monthly "$end" "$json"; return; fi
  local checks summary
  checks=$(report_checks "$json") || exit 1
  if [ "$checks_only" -eq 1 ]; then printf '%s\n' "$checks"; return 0; fi
  summary=$(report_period weekly "$end" "$json") || exit 1
  if [ "$json" -eq 1 ]; then
    printf '%s,"report":%s}\n' "${checks%\}}" "$summary"
  else
    printf '%s\n%s\n' "$checks" "$summary"
  fi
}

# The weekly checks of the live release; prints their JSON (--json) or their lines.
report_checks() {
  local json="$1"
  local v dir out ids n=0 outdated count=0
  v=$(rel_current)
  [ -n "$v" ] || die "report weekly: no live release on this host yet (nothing to check)"
  dir=$(rel_dir "$v")

  # check --deploy exits 1 when it finds an error and 0 with warnings only; either way it ends
  # with "System check identified …". Anything else is manage.py failing, not a finding.
  out=$(rel_manage "$v" check --deploy 2>&1) || true
  grep -q 'System check identified' <<<"$out" \
    || die "report weekly: manage.py check --deploy of $v did not run: $(tail -n 1 <<<"$out")"
  ids=$(report_check_ids <<<"$out")
  [ -z "$ids" ] || n=$(wc -w <<<"$ids")
  metric DeployCheckIssues "$n"

  # --local: what the release's virtualenv brought itself; Debian's packages are apt's to update,
  # and pip and setuptools are the virtualenv's own tools (python3-venv's), not the app's. pip
  # leaves out of both --outdated and --uptodate a package it could not look up (an index it
  # cannot reach answers an empty list, exit 0): such a package is a failure, not "up to date".
  local all_json old_json new_json err
  err=$(mktemp)
  # pip's warnings go to a file: only its JSON may reach the parser.
  report_pip() {
    rel_as_app "$dir/venv/bin/python" -m pip list --local --format=json --disable-pip-version-check \
      --exclude pip --exclude setuptools --exclude wheel "$@" 2>"$err" \
      || { local why; why=$(tail -n 1 "$err"); rm -f "$err"; die "report weekly: pip list $* failed in $dir/venv: $why"; }
  }
  all_json=$(report_pip)
  old_json=$(report_pip --outdated)
  new_json=$(report_pip --uptodate)
  rm -f "$err"
  # "name version latest" per outdated package, by the venv's own Python; exit 3 naming the
  # packages pip could not look up.
  outdated=$(ALL="$all_json" OLD="$old_json" NEW="$new_json" "$dir/venv/bin/python" -c '
import json, os, sys
try:
    every, old, new = (json.loads(os.environ[k]) for k in ("ALL", "OLD", "NEW"))
except ValueError:
    sys.exit("pip list answered something that is not its JSON")
unknown = sorted({p["name"] for p in every} - {p["name"] for p in old + new})
if unknown:
    sys.exit("pip could not look up " + " ".join(unknown) + " on the package index (unreachable?)")
for p in old:
    print(p["name"], p["version"], p["latest_version"])' 2>&1) \
    || die "report weekly: $outdated; OutdatedPackages not published"
  [ -z "$outdated" ] || count=$(wc -l <<<"$outdated")
  metric OutdatedPackages "$count"

  if [ "$json" -eq 1 ]; then
    local items=() name ver latest
    while read -r name ver latest; do
      [ -n "$name" ] && items+=("{\"name\":$(json_str "$name"),\"version\":$(json_str "$ver"),\"latest\":$(json_str "$latest")}")
    done <<<"$outdated"
    local idj=() id
    for id in $ids; do idj+=("$(json_str "$id")"); done
    local IFS=,
    printf '{"release":%s,"deployCheckIssues":%s,"deployCheckIds":[%s],"outdatedPackages":%s,"outdated":[%s]}\n' \
      "$(json_str "$v")" "$n" "${idj[*]}" "$count" "${items[*]}"
    return 0
  fi
  say "report weekly: release $v"
  say "  manage.py check --deploy: $n issue(s)${ids:+ ($ids)}"
  say "  outdated packages in its virtualenv: $count"
  local name ver latest
  while read -r name ver latest; do
    [ -n "$name" ] && say "    $name $ver -> $latest"
  done <<<"$outdated"
  return 0
}

# The report's figures from what the AWS calls answered (files in $1: spec.json, metrics.json,
# alarms.json, cost.json) and releases.log: report.json, report.md and report.txt in $1.
# Arguments: DIR MODE START END RELEASES_LOG. CloudWatch's missing figures stay null ("n/a").
IFS= read -r -d '' REPORT_PY <<'PY' || true
import datetime, json, os, sys
d, mode, start, end, rel_log = sys.argv[1:6]
load = lambda n: json.load(open(os.path.join(d, n)))
spec, metrics, alarms, cost = load("spec.json"), load("metrics.json"), load("alarms.json"), load("cost.json")
t = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
t0, t1 = t(start), t(end)
# Timestamps: ISO text or epoch seconds, as the CLI's version and the protocol have them.
iso = lambda ts: datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(ts, (int, float)) else ts
series = {r["Id"]: [(iso(ts), v) for ts, v in zip(r.get("Timestamps", []), r.get("Values", [])) if v is not None] for r in metrics.get("MetricDataResults", [])}
stat = {q["id"]: q["stat"] for q in spec["queries"]}
def fig(i, digits=2):
    vs = [v for _, v in series.get(i, [])]
    if i not in stat or not vs: return None
    v = sum(vs) if stat[i] == "Sum" else max(vs)
    v = round(v, digits) if digits else int(round(v))
    return int(v) if v == int(v) else v
requests = fig("requests", 0)
errors = None if requests is None else (fig("errors_target", 0) or 0) + (fig("errors_elb", 0) or 0)
uptime = None
if spec["uptime"]:
    samples = int((t1 - t0).total_seconds()) // 300
    up = sum(1 for _, v in series.get("healthy", []) if v >= 1)
    uptime = round(100 * up / samples, 3) if samples else None
rehearsal = None
if spec["rehearsal"] and series.get("rehearsal_seconds"):
    at, rto = max(series["rehearsal_seconds"])
    rehearsal = {"day": at[:10], "rtoSeconds": round(rto, 2)}
releases = []
if os.path.exists(rel_log):
    for line in open(rel_log, encoding="utf-8", errors="replace"):
        f = line.rstrip("\n").split("\t")
        if len(f) < 5 or f[1] not in ("switch", "rollback"): continue
        try:
            when = t(f[0])
        except ValueError:
            continue
        if not (t0 <= when < t1) or f[3].startswith(("refused", "failed")): continue
        releases.append({"at": f[0], "kind": f[1], "version": f[2], "detail": f[3], "by": f[4]})
fired = None if alarms.get("unavailable") else {}
for h in [] if fired is None else alarms.get("AlarmHistoryItems", []):
    if h.get("AlarmName", "").startswith(spec["alarmPrefix"]) and h.get("HistorySummary", "").endswith("to ALARM"):
        n = h["AlarmName"][len(spec["alarmPrefix"]):]
        fired[n] = fired.get(n, 0) + 1
amount = None
for r in cost.get("ResultsByTime", []):
    a = r.get("Total", {}).get("UnblendedCost", {}).get("Amount")
    if a is not None: amount = round((amount or 0) + float(a), 2)
budget = spec["monthlyBudgetUsd"]
report = {
    "stack": spec["stack"], "report": mode, "start": start, "end": end,
    "traffic": {"source": spec["traffic"], "requests": requests, "errors5xx": errors,
                "errorRatePercent": round(100 * errors / requests, 3) if requests else None, "p95Seconds": fig("p95", 3)},
    "uptimePercent": uptime, "uptimeSource": spec["uptime"],
    "hosts": [{"name": h["name"], "cpuMaxPercent": fig(h["cpu"]), "memoryMaxPercent": fig(h["memory"]) if h["memory"] else None,
               "diskMaxPercent": {k["path"]: fig(k["id"]) for k in h["disks"]}} for h in spec["hosts"]],
    "database": {"sizeBytesMax": fig("db_size", 0), "connectionsMax": fig("db_connections", 0)},
    "backups": {"taken": fig("backups", 0) or 0, "verifyFailures": fig("verify_failed", 0) or 0} if spec["database"] == "host" else None,
    "restoreRehearsal": rehearsal, "rehearsalHere": spec["rehearsal"],
    "releases": [r for r in releases if r["kind"] == "switch"], "rollbacks": [r for r in releases if r["kind"] == "rollback"],
    "alarmsFired": None if fired is None else [{"alarm": k, "times": v} for k, v in sorted(fired.items())],
    "cost": {"month": cost.get("month"), "usd": amount, "budgetUsd": budget,
             "budgetUsedPercent": round(100 * amount / budget, 1) if amount is not None and budget else None},
}
na = lambda v, unit="": "n/a" if v is None else f"{v}{unit}"
tr = report["traffic"]
nouptime = "n/a (no load balancer or uptime check on this stack)" if not spec["uptime"] else na(uptime, " %")
norehearsal = ("none in the period" if spec["rehearsal"] else "n/a (this stack runs none: staging rehearses prod's backups)") if not rehearsal else f"{rehearsal['day']}, RTO {rehearsal['rtoSeconds']} s"
c = report["cost"]
costline = f"{na(c['usd'], ' USD')} ({c['month']})" + (f" of a {budget} USD budget ({na(c['budgetUsedPercent'], ' %')})" if budget else " (no budget: monitoring.monthlyBudgetUsd)")
bk = report["backups"]
lines = [
    f"NOURISH LINK {spec['stack']}: {mode} report, {start} to {end}",
    f"Requests: {na(tr['requests'])}; 5xx: {na(tr['errors5xx'])} ({na(tr['errorRatePercent'], ' %')}); p95: {na(tr['p95Seconds'], ' s')}",
    f"Uptime: {nouptime}",
    *[f"{h['name']}: CPU max {na(h['cpuMaxPercent'], ' %')}, memory max {na(h['memoryMaxPercent'], ' %')}" + "".join(f", disk {p} max {na(v, ' %')}" for p, v in h["diskMaxPercent"].items()) for h in report["hosts"]],
    f"Database: size max {na(report['database']['sizeBytesMax'], ' bytes')}, connections max {na(report['database']['connectionsMax'])}",
    f"Backups: {bk['taken']} taken, {bk['verifyFailures']} verification failures" if bk else "Backups: RDS's own (not counted here)",
    f"Last restore rehearsal: {norehearsal}",
    f"Releases: {len(report['releases'])} ({', '.join(r['version'] for r in report['releases']) or 'none'}); rollbacks: {len(report['rollbacks'])}",
    "Alarms fired: n/a (the alarm history could not be read)" if report["alarmsFired"] is None else
    f"Alarms fired: {sum(a['times'] for a in report['alarmsFired'])}" + "".join(f"; {a['alarm']} x{a['times']}" for a in report["alarmsFired"]),
    f"AWS cost: {costline}",
]
md = [f"# NOURISH LINK {spec['stack']}: {mode} report", "", f"Period: {start} to {end} (UTC). Figures: CloudWatch, the alarm history, Cost Explorer, releases.log; n/a: no data.", "",
      "| Figure | Value |", "| --- | --- |"]
md += [f"| {l.split(': ', 1)[0]} | {l.split(': ', 1)[1]} |" for l in lines[1:]]
md += ["", "## Releases and rollbacks", ""] + ([f"- {r['at']} {r['kind']} {r['version']} ({r['detail']}, by {r['by']})" for r in releases] or ["- none"])
json.dump(report, open(os.path.join(d, "report.json"), "w"), indent=2)
open(os.path.join(d, "report.md"), "w").write("\n".join(md) + "\n")
open(os.path.join(d, "report.txt"), "w").write("\n".join(lines) + "\n")
PY

# The AWS CLI for service $1 (cloudwatch, ce, sns) at <SERVICE>_ENDPOINT when set (tests: moto).
report_aws() {
  local svc="$1" var ep=()
  shift
  var="$(tr '[:lower:]' '[:upper:]' <<<"$svc")_ENDPOINT"
  [ -z "${!var:-}" ] || ep=(--endpoint-url "${!var}")
  aws "${ep[@]}" --output json "$@"
}

# report_period weekly|monthly END JSON: the period's report, stored once and mailed once.
report_period() {
  local mode="$1" end="$2" json="$3" start tmp
  host_env_need STACK REGION TOOLING_BUCKET
  if [ -z "$end" ]; then
    if [ "$mode" = weekly ]; then end=$(date -u +%Y-%m-%dT%H:00:00Z); else end=$(date -u +%Y-%m-01T00:00:00Z); fi
  fi
  if ! [[ "$end" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] || ! date -u -d "$end" >/dev/null 2>&1; then
    die "report $mode: --end '$end' is not a UTC time such as 2026-12-07T00:00:00Z"
  fi
  if [ "$mode" = weekly ]; then
    start=$(date -u -d "$end - 7 days" +%Y-%m-%dT%H:%M:%SZ)
  else
    [[ "$end" == *-01T00:00:00Z ]] || die "report monthly: --end '$end' is not the 1st of a month at 00:00:00Z"
    start=$(date -u -d "${end%%T*} - 1 month" +%Y-%m-01T00:00:00Z)
  fi
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  aws_cli s3 cp --only-show-errors "s3://$TOOLING_BUCKET/tooling/report-spec.json" "$tmp/spec.json" \
    || die "report $mode: cannot read s3://$TOOLING_BUCKET/tooling/report-spec.json (pulumi up writes it)"
  local seconds=$(( $(date -u -d "$end" +%s) - $(date -u -d "$start" +%s) ))
  /usr/bin/python3 -I -c '
import json, sys
spec = json.load(open(sys.argv[1]))
print(json.dumps([{"Id": q["id"], "ReturnData": True, "MetricStat": {
    "Metric": {"Namespace": q["namespace"], "MetricName": q["metricName"], "Dimensions": [{"Name": k, "Value": v} for k, v in q["dimensions"].items()]},
    "Period": int(sys.argv[2]) if q["period"] == "report" else q["period"], "Stat": q["stat"]}} for q in spec["queries"]]))' \
    "$tmp/spec.json" "$seconds" > "$tmp/queries.json" || die "report $mode: the report spec is not what this nourishctl reads"
  # One call for every figure (the CLI follows NextToken).
  report_aws cloudwatch --region "$REGION" cloudwatch get-metric-data --start-time "$start" --end-time "$end" \
    --metric-data-queries "file://$tmp/queries.json" > "$tmp/metrics.json" || die "report $mode: cloudwatch get-metric-data failed"
  # REPORT_ALARM_HISTORY_FILE (tests only): moto_server has no DescribeAlarmHistory; it stands in for its answer.
  if [ -n "${REPORT_ALARM_HISTORY_FILE:-}" ]; then
    cp "$REPORT_ALARM_HISTORY_FILE" "$tmp/alarms.json"
  else
    # One figure missing is no reason to lose the report: it says n/a and why (stderr has the error).
    report_aws cloudwatch --region "$REGION" cloudwatch describe-alarm-history --history-item-type StateUpdate \
      --start-date "$start" --end-date "$end" > "$tmp/alarms.json" \
      || { echo "nourishctl: report $mode: cloudwatch describe-alarm-history failed; alarms fired: n/a" >&2; echo '{"unavailable": true}' > "$tmp/alarms.json"; }
  fi
  # The month the period ends in (monthly: the month reported), to the period's end day; Cost
  # Explorer answers in us-east-1 only and takes whole days, the end day excluded.
  local month_start cost_end last
  last=$(date -u -d "$end - 1 second" +%Y-%m-%d)
  month_start="${last%-*}-01"
  cost_end=$(date -u -d "$last + 1 day" +%Y-%m-%d)
  report_aws ce --region us-east-1 ce get-cost-and-usage --time-period "Start=$month_start,End=$cost_end" \
    --granularity MONTHLY --metrics UnblendedCost > "$tmp/cost.raw" \
    || { echo "nourishctl: report $mode: ce get-cost-and-usage failed; AWS cost: n/a" >&2; echo '{}' > "$tmp/cost.raw"; }
  /usr/bin/python3 -I -c 'import json, sys; c = json.load(open(sys.argv[1])); c["month"] = sys.argv[2]; json.dump(c, open(sys.argv[3], "w"))' \
    "$tmp/cost.raw" "${month_start%-01}" "$tmp/cost.json"
  /usr/bin/python3 -I -c "$REPORT_PY" "$tmp" "$mode" "$start" "$end" "$RELEASE_LOG" || die "report $mode: could not compute the report"

  local key stored=1 f sha rc
  key="reports/$mode/${start%%T*}_${end%%T*}"
  [ "$mode" = monthly ] || key="reports/$mode/$(date -u -d "$start" +%Y%m%dT%H%MZ)_$(date -u -d "$end" +%Y%m%dT%H%MZ)"
  if [ -n "${BACKUP_BUCKET:-}" ]; then
    for f in json md; do
      sha=$(sha256sum "$tmp/report.$f" | cut -d' ' -f1)
      rc=0
      s3_put_once "$BACKUP_BUCKET" "$key.$f" "$tmp/report.$f" "$sha" "$(lock_days reports)" "$([ "$f" = json ] && echo application/json || echo text/markdown)" >&2 || rc=$?
      case "$rc" in
        0) ;;
        2) stored=0 ;;
        *) die "report $mode: could not store s3://$BACKUP_BUCKET/$key.$f" ;;
      esac
    done
  fi
  # Mailed once: a re-run finds the report stored and sends nothing again.
  if [ "$stored" -eq 1 ]; then
    local topic
    topic=$(/usr/bin/python3 -I -c 'import json, sys; print(json.load(open(sys.argv[1]))["topicArn"])' "$tmp/spec.json")
    report_aws sns --region "$REGION" sns publish --topic-arn "$topic" --subject "NOURISH LINK $STACK $mode report ${start%%T*} to ${end%%T*}" \
      --message "file://$tmp/report.txt" >/dev/null || die "report $mode: sns publish to $topic failed (the report is stored)"
  else
    echo "nourishctl: report $mode: s3://$BACKUP_BUCKET/$key exists already: not stored or mailed again" >&2
  fi
  if [ "$json" -eq 1 ]; then cat "$tmp/report.json"; else cat "$tmp/report.txt"; fi
}
