# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, svc_active, ssm_secret and the host.env values.

VERBS+=("status|the morning checklist: the role's services running, disk at least DISK_FREE_MIN_PERCENT free")

cmd_status() {
  if [ "${1:-}" = "--help" ]; then
    echo "usage: nourishctl status    (exit 1 when a service is down or the disk is too full)"
    return 0
  fi
  local failed=0 s free services mounts="/"
  services=$(services_of_role) || exit 1
  [ "$ROLE" = db ] && mounts="/ $DATA_MOUNT"
  for s in $services; do
    if svc_active "$s"; then say "ok: $s is running"; else echo "nourishctl: FAIL: $s is not running" >&2; failed=1; fi
  done
  for mount in $mounts; do
    [ -d "$ROOT$mount" ] || continue
    free=$(df -P "$ROOT$mount" | awk 'NR==2 { gsub("%", "", $5); print 100 - $5 }')
    if [ "$free" -ge "$DISK_FREE_MIN_PERCENT" ]; then say "ok: $mount has $free% free"
    else echo "nourishctl: FAIL: $mount has $free% free, below $DISK_FREE_MIN_PERCENT%" >&2; failed=1; fi
  done
  [ "$failed" -eq 0 ] || die "status: checks failed"
}
