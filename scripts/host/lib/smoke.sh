# shellcheck shell=bash
# nourishctl-roles: app
# Sourced by nourishctl, which provides die, say, metric and the host.env values; uses lib/release.sh.
#
# The smoke checks, after every change and every morning: the live release's `manage.py check
# --deploy` failing on warnings too (except SILENCED_CHECKS, release.silencedChecks: warning ids
# only, errors always fail), a request through nginx to the health path, and the app's own smoke
# command (the app contract's SMOKE_COMMAND, components/app/commands.ts) when the release has one:
# it places an order in a transaction it rolls back. Run after a release's switch (a failure rolls
# back, lib/release.sh), after a restore that swaps the live database (lib/backup.sh), by a restore
# rehearsal (lib/rehearsal-verify.sh), by `nourishctl status`, and on a stack nothing outside
# watches (staging) every 5 minutes with --publish (SmokeCheckFailed, the app-smoke alarm).

VERBS+=("smoke|oncall|the smoke checks: check --deploy (warnings too), the health path through nginx, the app's smoke command")
help_smoke() {
  cat <<EOF
nourishctl smoke - the smoke checks of the live release

usage: nourishctl smoke [--publish]

  1. manage.py check --deploy, failing on warnings too, except the warning ids of
     SILENCED_CHECKS in host.env (release.silencedChecks; here: ${SILENCED_CHECKS:-none})
  2. a request to the health path through nginx, answered 200 by the live release
  3. manage.py $SMOKE_COMMAND, when the release has it (the app contract): an order placed and
     read back in a transaction it rolls back
  Exit 1 naming the first check that failed. The same checks run after a release's switch (a
  failure rolls the release back), after a restore of the live database, in a restore
  rehearsal and in the morning check (nourishctl status).

Options:
  --publish  also publish SmokeCheckFailed (1 or 0) to CloudWatch (the probe timer of a stack
             without a load balancer or uptime check; the app-smoke alarm watches it)
EOF
}

# The app contract's smoke command (components/app/commands.ts).
SMOKE_COMMAND=smoke

# check --deploy of release $1, warnings failing too unless silenced; prints why when it fails.
smoke_deploy_check() {
  local v="$1" out rc=0 id ids bad=()
  out=$(rel_manage "$v" check --deploy --fail-level WARNING 2>&1) || rc=$?
  [ "$rc" -eq 0 ] && return 0
  # Each issue is one line "<object>: (<id>) <message>"; with none, check itself did not run.
  ids=$(sed -nE 's/^[^ ]+: \(([A-Za-z0-9_.]+)\) .*/\1/p' <<<"$out" | sort -u)
  if [ -z "$ids" ]; then echo "manage.py check --deploy of $v did not run: $(tail -n 1 <<<"$out")"; return 1; fi
  for id in $ids; do
    if [[ "$id" =~ \.W[0-9]{3}$ && " ${SILENCED_CHECKS:-} " == *" $id "* ]]; then continue; fi
    bad+=("$id")
  done
  [ "${#bad[@]}" -eq 0 ] && return 0
  echo "manage.py check --deploy of $v reports ${bad[*]} (not in release.silencedChecks)"
  return 1
}

# The app's smoke command of release $1, when the release has one.
smoke_app_command() {
  local v="$1" out
  out=$(rel_manage "$v" help --commands 2>&1) || { echo "manage.py help --commands of $v failed: $(tail -n 1 <<<"$out")"; return 1; }
  grep -qx "[[:space:]]*$SMOKE_COMMAND" <<<"$out" || return 0
  out=$(rel_manage "$v" "$SMOKE_COMMAND" 2>&1) || { echo "manage.py $SMOKE_COMMAND of $v failed: $(tail -n 1 <<<"$out")"; return 1; }
}

# What the release itself answers for (after a switch nginx was checked already): check --deploy
# and its smoke command. Prints why when one fails.
smoke_release_checks() {
  smoke_deploy_check "$1" && smoke_app_command "$1"
}

# All three on release $1; prints why when one fails.
smoke_checks() {
  smoke_deploy_check "$1" && rel_verify_through_nginx "$1" && smoke_app_command "$1"
}

cmd_smoke() {
  local publish=0 v why
  case "${1:-}" in
    --help) help_smoke; return 0 ;;
    --publish) publish=1 ;;
    "") ;;
    *) die "smoke: unknown option '$1' (--publish or --help)" ;;
  esac
  v=$(rel_current)
  if [ -z "$v" ]; then
    if [ "$publish" -eq 1 ]; then
      metric SmokeCheckFailed 1
    fi
    die "smoke: no release is live on this host"
  fi
  if why=$(smoke_checks "$v"); then
    if [ "$publish" -eq 1 ]; then
      metric SmokeCheckFailed 0
    fi
    say "smoke: $v passes check --deploy${SILENCED_CHECKS:+ (silenced: $SILENCED_CHECKS)}, answers through nginx, and its smoke command"
  else
    if [ "$publish" -eq 1 ]; then
      metric SmokeCheckFailed 1
    fi
    die "smoke: $v: $why"
  fi
}
