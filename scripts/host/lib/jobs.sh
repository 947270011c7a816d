# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say and the host.env values.
#
# A scheduled job that fails says so: every job unit has OnFailure=nourish-link-job-failed@<job>,
# which runs `nourishctl job-failed <job>`, publishing JobFailed=1 with the job's name. One alarm
# per job watches it (components/monitoring/alarms.ts).

VERBS+=("job-failed|internal|report that scheduled job JOB failed (systemd's OnFailure= runs it)")
help_job_failed() {
  cat <<EOF
nourishctl job-failed - report that a scheduled job failed

usage: nourishctl job-failed JOB

  Publishes NourishLink/JobFailed=1 with Job=JOB (lower-case words and dashes); run by
  nourish-link-job-failed@JOB, the OnFailure= unit of every job, not by hand.
EOF
}

cmd_job_failed() {
  local job="${1:-}"
  case "$job" in
    --help) help_job_failed; return 0 ;;
    "") die "job-failed: name the job (e.g. backup)" ;;
  esac
  [[ "$job" =~ ^[a-z0-9-]+$ ]] || die "job-failed: '$job' is not a job name (lower-case words and dashes)"
  if [ -n "$ROOT" ] && [ -z "${CLOUDWATCH_ENDPOINT:-}" ]; then
    mkdir -p "$ROOT/var/lib/nourish-link/metrics"
    echo 1 > "$ROOT/var/lib/nourish-link/metrics/JobFailed.$job"
  else
    local ep=()
    [ -z "${CLOUDWATCH_ENDPOINT:-}" ] || ep=(--endpoint-url "$CLOUDWATCH_ENDPOINT")
    aws "${ep[@]}" cloudwatch put-metric-data --region "$REGION" --namespace NourishLink \
      --metric-name JobFailed --dimensions "Stack=$STACK,Role=$ROLE,Job=$job" --value 1 \
      || die "job-failed: cannot publish JobFailed for $job to CloudWatch"
  fi
  echo "nourishctl: job-failed: nourish-link-$job failed; JobFailed published (journalctl -u nourish-link-$job)" >&2
}
