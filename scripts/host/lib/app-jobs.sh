# shellcheck shell=bash
# nourishctl-roles: app
# Sourced by nourishctl, which provides die, say and the host.env values; uses lib/release.sh.
#
# The app's own jobs (app.scheduledCommands): on the first app host a timer per command runs
# `nourishctl job run NAME`, which runs the live release's manage.py with the arguments of
# /etc/nourish-link/jobs/NAME.args (one per line, installed by pulumi up) as the app user with
# app.env (rel_manage): the arguments are passed as data, never through a shell. A failure fails
# the unit, whose OnFailure= publishes JobFailed (lib/jobs.sh) for job-failed-app-manage-NAME.

VERBS+=("job|routine|'job run NAME': run one of the app's scheduled commands now; 'job list'")
help_job() {
  cat <<EOF
nourishctl job - the app's own scheduled commands (app.scheduledCommands)

usage: nourishctl job run NAME
       nourishctl job list

  run   runs manage.py with NAME's arguments ($JOB_ARGS_DIR/NAME.args, one per line) on the
        live release, as the app user with app.env; exits non-zero when the command does
        (its timer nourish-link-manage-NAME then reports JobFailed)
  list  the commands this host runs, with their arguments
EOF
}

JOB_ARGS_DIR="$ROOT/etc/nourish-link/jobs"

job_run() {
  local name="${1:-}" file v a args=() rc=0 t0=$EPOCHREALTIME
  [ -n "$name" ] || die "job run: name the command (nourishctl job list)"
  [[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,39}$ ]] || die "job run: '$name' is not a command name (lower-case letters, digits, dashes)"
  file="$JOB_ARGS_DIR/$name.args"
  [ -r "$file" ] || die "job run: this host runs no command $name ($file is missing; app.scheduledCommands run on the first app host)"
  mapfile -t args < "$file"
  { [ "${#args[@]}" -gt 0 ] && [[ "${args[0]}" =~ ^[a-z][a-z0-9_]*$ ]]; } || die "job run: $file does not start with a manage.py command name"
  for a in "${args[@]:1}"; do
    [[ "$a" =~ ^[A-Za-z0-9._,:=@+/-]+$ ]] || die "job run: $file holds an argument with characters other than letters, digits and . , _ : = @ + / -"
  done
  v=$(rel_current)
  [ -n "$v" ] || die "job run: $name: no release is live on this host"
  say "job run: $name: manage.py ${args[*]} on $v"
  rel_manage "$v" "${args[@]}" || rc=$?
  [ "$rc" -eq 0 ] || die "job run: $name: manage.py ${args[0]} of $v exited $rc"
  say "job run: $name: done in $(rel_since "$t0") s"
}

cmd_job() {
  case "${1:-}" in
    --help) help_job ;;
    run) shift; job_run "$@" ;;
    list)
      local f
      for f in "$JOB_ARGS_DIR"/*.args; do
        [ -e "$f" ] || { say "job list: no scheduled commands on this host"; return 0; }
        printf '%-24s manage.py %s\n' "$(basename "$f" .args)" "$(tr '\n' ' ' < "$f")"
      done ;;
    *) die "job: say 'run NAME' or 'list' (nourishctl job --help)" ;;
  esac
}
