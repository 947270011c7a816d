# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, aws_cli, metric and the host.env values.
#
# The manual's monthly log archival ("tar -czf logs_archive_$(date +%Y%m).tar.gz logs/*.log, move,
# clear"): the rotated logs last written in a month, in one archive, uploaded to the backup
# bucket's logs/ prefix, checked there (size and SHA-256 as S3 reports them), and only then
# removed here. Any failure removes no local file. The live logs are never touched (logrotate
# and journald own them); CloudWatch Logs keeps a searchable copy for monitoring.logRetentionDays.

VERBS+=("logs|'logs archive [YYYYMM]': last month's rotated logs to s3://BACKUP_BUCKET/logs/, verified, then removed here")

# Where rotated logs accumulate: ours (nginx, app), PostgreSQL's.
LOG_ARCHIVE_DIRS=("/var/log/nourish-link" "/var/log/postgresql" "/var/log/nginx")

cmd_logs() {
  case "${1:-}" in
    --help|"")
      echo "usage: nourishctl logs archive [YYYYMM]    (default: last month)"
      echo "  archives rotated logs (*.1, *.gz, …) last written in that month from ${LOG_ARCHIVE_DIRS[*]}"
      echo "  to s3://\$BACKUP_BUCKET/logs/<stack>/<role>/<host>/logs_archive_YYYYMM.tar.gz; removes them here once S3 has them"
      [ -n "${1:-}" ] && return 0
      die "logs: say archive" ;;
    archive) shift ;;
    *) die "logs: unknown task '$1' (archive)" ;;
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
  if [ "${#files[@]}" -eq 0 ]; then say "logs archive: no rotated logs from $month; nothing to do"; return 0; fi
  local work name key sha size head
  work=$(mktemp -d) || die "logs archive: cannot create a temp dir"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  name="logs_archive_$month.tar.gz"
  tar -czf "$work/$name" -C "${ROOT:-/}" -- "${files[@]}" || die "logs archive: tar failed; nothing removed"
  sha=$(sha256sum "$work/$name" | cut -d' ' -f1)
  size=$(stat -c %s "$work/$name")
  key="logs/${STACK:-unknown}/$ROLE/$(hostname -s)/$name"
  # An archive already there is never overwritten (Object Lock keeps it on prod anyway).
  if head=$(aws_cli s3api head-object --bucket "$bucket" --key "$key" --query 'Metadata.sha256' --output text 2>/dev/null); then
    die "logs archive: s3://$bucket/$key exists already (sha256 $head); nothing removed"
  fi
  aws_cli s3 cp --only-show-errors --metadata "sha256=$sha" "$work/$name" "s3://$bucket/$key" >&2 \
    || die "logs archive: upload to s3://$bucket/$key failed; nothing removed"
  head=$(aws_cli s3api head-object --bucket "$bucket" --key "$key" --query '[ContentLength, Metadata.sha256]' --output text 2>&1) || head=""
  [ "$head" = "$size	$sha" ] || die "logs archive: s3://$bucket/$key reports '${head//	/ }', expected size $size sha256 $sha; nothing removed"
  for f in "${files[@]}"; do rm -f -- "${ROOT:-}/$f"; done
  say "logs archive: ${#files[@]} rotated logs from $month in s3://$bucket/$key ($size bytes, sha256 $sha, verified); removed here"
}
