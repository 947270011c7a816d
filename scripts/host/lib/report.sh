# shellcheck shell=bash
# nourishctl-roles: app
# Sourced by nourishctl, which provides die, say, metric and the host.env values; release.sh
# (rel_current, rel_dir, rel_manage, rel_as_app) and status.sh (json_str) come with the app role.
#
# The manual's weekly "Security Check" (manage.py check --deploy) and "Update Review" (check for
# dependency updates), run by a timer on the live release and kept as two numbers CloudWatch
# shows week after week: DeployCheckIssues (alarmed: a deploy check that finds anything) and
# OutdatedPackages (on the dashboard). The output lists what was found, for whoever reads it.

VERBS+=("report|internal|'report weekly': check --deploy and outdated packages, as metrics (its timer)")
help_report() {
  cat <<EOF
nourishctl report - the weekly report, as metrics (its timer runs it)

usage: nourishctl report weekly [--json]

  weekly  on the live release: manage.py check --deploy (DeployCheckIssues) and
          pip list --outdated of what its virtualenv installed itself (OutdatedPackages)

Options:
  --json  the report as one JSON object (default: lines of text)
EOF
}

# Counts the issues in manage.py check's output: each is one "<obj>: (<app>.<E|W|C|I><n>) …" line.
# (grep finds none on a clean check: that is not a failure.)
report_check_ids() { { grep -oE '\(([a-z_]+\.)+[A-Z][0-9]+\)' || true; } | tr -d '()' | sort -u | paste -sd' ' -; }

cmd_report() {
  local what="${1:-}" json=0
  case "$what" in
    --help|"")
      help_report
      [ -n "$what" ] && return 0
      die "report: say which report (weekly)"
      ;;
    weekly) shift ;;
    *) die "report: unknown report '$what' (weekly)" ;;
  esac
  while [ $# -gt 0 ]; do
    case "$1" in
      --json) json=1 ;;
      *) die "report weekly: unknown option '$1' (--json)" ;;
    esac
    shift
  done

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
