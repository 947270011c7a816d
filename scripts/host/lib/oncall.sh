# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, svc_ctl, svc_active, pg_admin, json_str (status.sh)
# and the host.env values; on app hosts release.sh's rel_* functions.
#
# The manual's emergency section, one verb each: "Application Down" and "Connection Errors"
# (restart, then prove the service answers). "Security Incident" (isolate a host, snapshot its
# volumes) is done from outside the host with the operator's rights: `npm run incident`
# (scripts/incident.ts); a host has no EC2 or ELB write right (issue 20).

VERBS+=("restart|oncall|restart this host's services (app, nginx, postgresql or all) and prove they answer")
help_restart() {
  cat <<EOF
nourishctl restart - restart the role's services, then prove they answer

usage: nourishctl restart app|nginx|postgresql|all --yes [--json]

  app hosts: app (the live release's gunicorn, nourish-link-app@VERSION; the warm standby is left
  alone), nginx (after nginx -t), all = both; then ${HEALTH_PATH:-/health/} must answer 200 through nginx.
  db host: postgresql or all (the cluster unit $PG_CLUSTER_UNIT); then pg_isready must answer.
  Exit 1 with the reason when a service does not come back.

Options:
  --yes     do it (default: nothing is restarted; says what would be)
  --json    the result as one JSON object
EOF
}

# --- restart ---------------------------------------------------------------------------------

# What each restart target means on this host's role.
oncall_targets() {
  local what="$1"
  case "$ROLE:$what" in
    app:app) echo app ;;
    app:nginx) echo nginx ;;
    # nginx first: the app's check goes through it.
    app:all) echo "nginx app" ;;
    db:postgresql|db:all) echo postgresql ;;
    app:postgresql) die "restart: postgresql runs on the db host, this is an app host (app, nginx or all); nothing restarted" ;;
    db:app|db:nginx) die "restart: $what runs on the app hosts, this is the db host (postgresql or all); nothing restarted" ;;
    :*) die "ROLE is not set in $HOST_ENV (app or db)" ;;
    *) die "restart: '$what' is not a service to restart (app, nginx, postgresql or all)" ;;
  esac
}

# pg_isready on the local socket until the cluster accepts connections (at most $1 seconds).
oncall_pg_ready() {
  local deadline=$((SECONDS + $1))
  while [ $SECONDS -lt "$deadline" ]; do
    pg_admin "$PG_BINDIR/pg_isready" -q -t 2 -d postgres && return 0
    sleep 0.2
  done
  echo "pg_isready: the cluster does not accept connections after $1 s"
  return 1
}

# Restarts one target and proves it answers; prints what it proved, or why not (and fails). $2 is
# "all" when the app follows nginx (nginx then need only answer: the app's check covers both).
oncall_restart_one() {
  local t="$1" live unit
  set -- "$1" "${2:-}"
  case "$t" in
    app)
      live=$(rel_current)
      [ -n "$live" ] || { echo "no live release here (nourishctl release …): nothing to restart"; return 1; }
      unit=$(rel_unit "$live")
      # Only the live release: the warm standby (rollback's target) keeps running untouched.
      svc_ctl restart "$unit"
      local why
      why=$(rel_health_gate "$live") || { echo "$unit restarted but $why"; return 1; }
      # gunicorn made a new socket: nginx's app.sock must name it again (one rename, as a switch).
      [ "$LIVE_SOCKET" -ef "$(rel_socket "$live")" ] || rel_publish "$live"
      why=$(rel_verify_through_nginx "$live") || { echo "$unit restarted but $why"; return 1; }
      echo "$unit restarted; ${HEALTH_PATH:-/health/} answers 200 through nginx" ;;
    nginx)
      # Never restart into a configuration nginx refuses: the site would stay down.
      if [ -z "$ROOT" ]; then
        local test
        test=$(nginx -t -q 2>&1) || { echo "nginx -t refuses the configuration, not restarted: $(tail -1 <<<"$test")"; return 1; }
      fi
      svc_ctl restart nginx
      # The unit can be up a moment before its listeners are: wait (briefly) for an answer first.
      local code="" i
      for ((i = 0; i < 50; i++)); do
        code=$(curl -s -k -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: ${DOMAIN:-localhost}" "$(rel_local_url)/" || true)
        [ "$code" = 000 ] || break
        sleep 0.2
      done
      [ "$code" != 000 ] || { echo "nginx restarted but does not answer on $(rel_local_url) after 10 s"; return 1; }
      live=$(rel_current)
      # Restarting everything: the app's own check (next) goes through nginx; here nginx must answer.
      [ -z "$2" ] || live=""
      if [ -n "$live" ]; then
        local why
        why=$(rel_verify_through_nginx "$live") || { echo "nginx restarted but $why"; return 1; }
        echo "nginx restarted; ${HEALTH_PATH:-/health/} answers 200 through it"
      else
        if [ -n "$2" ]; then echo "nginx restarted; answers $code"
        else echo "nginx restarted; answers $code (no live release yet: the maintenance page)"; fi
      fi ;;
    postgresql)
      # Not under a backup or restore: they hold the database lock (waits are for timers, not people).
      db_lock restart exclusive
      svc_ctl restart "$PG_CLUSTER_UNIT"
      oncall_pg_ready 60 || return 1
      echo "$PG_CLUSTER_UNIT restarted; pg_isready: accepting connections" ;;
  esac
}

cmd_restart() {
  local what="" yes="" json="" t
  while [ $# -gt 0 ]; do
    case "$1" in
      --help) help_restart; return 0 ;;
      --yes) yes=1 ;;
      --json) json=1 ;;
      -*) die "restart: unknown option '$1' (--yes, --json, --help)" ;;
      *) [ -z "$what" ] || die "restart: one of app, nginx, postgresql or all, not '$what $1'"; what="$1" ;;
    esac
    shift
  done
  [ -n "$what" ] || die "restart: say what: app, nginx, postgresql or all (nourishctl restart --help)"
  local targets
  targets=$(oncall_targets "$what") || exit 1
  [ -n "$yes" ] || die "restart: would restart $targets on this $ROLE host (a short outage); add --yes to do it; nothing restarted"
  [ "$ROLE" = app ] && rel_lock restart
  local failed=0 out entries=() t0 took ok
  for t in $targets; do
    t0=$EPOCHREALTIME
    if out=$(oncall_restart_one "$t" "$([ "$what" = all ] && echo all)"); then ok=true; else ok=false; failed=1; fi
    took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    entries+=("{\"service\":$(json_str "$t"),\"ok\":$ok,\"seconds\":$took,\"detail\":$(json_str "$out")}")
    if [ -z "$json" ]; then
      if [ "$ok" = true ]; then say "restart: $out (${took} s)"; else echo "nourishctl: restart: FAIL: $out" >&2; fi
    fi
  done
  if [ -n "$json" ]; then
    local IFS=,
    printf '{"ok":%s,"role":%s,"restarted":[%s]}\n' "$([ "$failed" -eq 0 ] && echo true || echo false)" "$(json_str "$ROLE")" "${entries[*]}"
  fi
  [ "$failed" -eq 0 ] || die "restart: $what did not come back healthy (nourishctl status; nourishctl logs errors)"
}
