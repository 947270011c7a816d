# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, svc_ctl, svc_active, pg_admin, aws_ec2, aws_elb,
# json_str (status.sh) and the host.env values; on app hosts release.sh's rel_* functions.
#
# The manual's emergency section, one verb each: "Application Down" and "Connection Errors"
# (restart, then prove the service answers), "Security Incident" (isolate the host, keep it
# running for forensics; snapshot its volumes as evidence).

VERBS+=("restart|'restart app|nginx|postgresql|all --yes': restart the role's services, then prove they answer (health URL through nginx; pg_isready)")
VERBS+=("isolate|'isolate --yes' (security incident): quarantine security group, out of the load balancer, kept running; prints how to undo")
VERBS+=("snapshot|'snapshot [--reason TEXT]': EBS snapshots of all this host's volumes, tagged with the reason and the time")

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
      if [ -n "$ROOT" ]; then svc_ctl stop "$unit"; svc_ctl start "$unit"; else svc_ctl restart "$unit"; fi
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
      if [ -n "$ROOT" ]; then svc_ctl stop nginx; svc_ctl start nginx; else svc_ctl restart nginx; fi
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
      if [ -n "$ROOT" ]; then svc_ctl stop "$PG_CLUSTER_UNIT"; svc_ctl start "$PG_CLUSTER_UNIT"; else svc_ctl restart "$PG_CLUSTER_UNIT"; fi
      oncall_pg_ready 60 || return 1
      echo "$PG_CLUSTER_UNIT restarted; pg_isready: accepting connections" ;;
  esac
}

cmd_restart() {
  local what="" yes="" json="" t
  while [ $# -gt 0 ]; do
    case "$1" in
      --help)
        echo "usage: nourishctl restart app|nginx|postgresql|all --yes [--json]"
        echo "  app hosts: app (the live release's gunicorn, nourish-link-app@VERSION; the warm standby is left alone),"
        echo "  nginx (after nginx -t), all = both; then ${HEALTH_PATH:-/health/} must answer 200 through nginx."
        echo "  db host: postgresql or all (the cluster unit $PG_CLUSTER_UNIT); then pg_isready must answer."
        echo "  Without --yes nothing is restarted. Exit 1 with the reason when a service does not come back."
        return 0 ;;
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

# --- this host in EC2 ------------------------------------------------------------------------

# This host's instance id: INSTANCE_ID from host.env (tests), else IMDSv2 (token first: the hosts
# require it).
oncall_instance_id() {
  if [ -n "${INSTANCE_ID:-}" ]; then echo "$INSTANCE_ID"; return 0; fi
  local imds="${IMDS_ENDPOINT:-http://169.254.169.254}" token id
  token=$(curl -sf --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$imds/latest/api/token") \
    || die "$1: cannot reach the instance metadata service ($imds) for this host's instance id; set INSTANCE_ID in $HOST_ENV"
  id=$(curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id") \
    || die "$1: the instance metadata service gave no instance id"
  echo "$id"
}

oncall_check_instance_id() {
  [[ "$1" =~ ^i-[0-9a-f]{8,17}$ ]] || die "$2: '$1' is not an EC2 instance id"
}

# The JSON state file isolate keeps on the host (the instance's tags keep the same record in EC2:
# a compromised host's files are not evidence of anything).
ISOLATION_RECORD="$ROOT/var/lib/nourish-link/isolation.json"

# --- isolate ---------------------------------------------------------------------------------

cmd_isolate() {
  local yes="" json=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --help)
        echo "usage: nourishctl isolate --yes [--json]    (security incident)"
        echo "  Moves this instance into the stack's quarantine security group (nourish-link-\$STACK-quarantine:"
        echo "  no ingress; egress only 443 inside the VPC, to its SSM and CloudWatch Logs endpoints), deregisters"
        echo "  it from every load balancer target group it is in, and keeps it running for forensics."
        echo "  Records what it changed (previous security groups, target groups) in the instance's tags"
        echo "  quarantine:previous-groups / quarantine:target-groups / quarantine:since and in $ISOLATION_RECORD,"
        echo "  and prints the commands that undo it. Without --yes it prints the plan and changes nothing."
        return 0 ;;
      --yes) yes=1 ;;
      --json) json=1 ;;
      *) die "isolate: unknown option '$1' (--yes, --json, --help)" ;;
    esac
    shift
  done
  [ -n "${STACK:-}" ] || die "isolate: STACK is not set in $HOST_ENV"
  local iid desc vpc groups qsg
  iid=$(oncall_instance_id isolate) || exit 1
  oncall_check_instance_id "$iid" isolate
  # shellcheck disable=SC2016  # the backticks are a JMESPath literal, not a command
  desc=$(aws_ec2 describe-instances --instance-ids "$iid" --query 'Reservations[0].Instances[0].[VpcId, join(`" "`, SecurityGroups[].GroupId)]' --output text 2>&1) \
    || die "isolate: cannot describe instance $iid: $(tail -1 <<<"$desc")"
  read -r vpc groups <<<"$desc"
  [[ "$vpc" =~ ^vpc- ]] || die "isolate: instance $iid has no VPC ($desc)"
  qsg="${QUARANTINE_SG:-}"
  if [ -z "$qsg" ]; then
    qsg=$(aws_ec2 describe-security-groups --filters "Name=vpc-id,Values=$vpc" "Name=tag:Name,Values=nourish-link-$STACK-quarantine" \
      --query 'SecurityGroups[].GroupId' --output text 2>&1) || die "isolate: cannot look up the quarantine security group: $(tail -1 <<<"$qsg")"
  fi
  [[ "$qsg" =~ ^sg-[0-9a-f]+$ ]] || die "isolate: no single security group tagged Name=nourish-link-$STACK-quarantine in $vpc (found '${qsg}'); pulumi up creates it; nothing changed"
  # The target groups this instance is registered in (in this VPC).
  local tgs tg port registered=()
  tgs=$(aws_elb describe-target-groups --query "TargetGroups[?VpcId=='$vpc'].TargetGroupArn" --output text 2>&1) \
    || die "isolate: cannot list target groups: $(tail -1 <<<"$tgs")"
  for tg in $tgs; do
    for port in $(aws_elb describe-target-health --target-group-arn "$tg" --query "TargetHealthDescriptions[?Target.Id=='$iid'].Target.Port" --output text); do
      registered+=("$tg:$port")
    done
  done
  local already=""
  [ "$groups" = "$qsg" ] && already=1
  local previous="$groups"
  # Re-run after an isolation: the groups to restore are the recorded ones, not the quarantine.
  if [ -n "$already" ]; then
    previous=$(aws_ec2 describe-tags --filters "Name=resource-id,Values=$iid" "Name=key,Values=quarantine:previous-groups" --query 'Tags[0].Value' --output text 2>/dev/null || true)
    [ "$previous" != None ] || previous=""
  fi
  if [ -z "$yes" ]; then
    say "isolate: would move $iid from security groups ${groups:-none} to $qsg and deregister it from ${#registered[@]} target group(s)${registered[*]:+: ${registered[*]}}; add --yes to do it; nothing changed"
    return 0
  fi
  local since
  since=$(date -u +%FT%TZ)
  mkdir -p "$(dirname "$ISOLATION_RECORD")"
  # Recorded before anything changes: an interrupted isolate can still be undone.
  if [ -z "$already" ]; then
    local tagged
    tagged=$(aws_ec2 create-tags --resources "$iid" --tags "Key=quarantine:previous-groups,Value=$previous" \
      "Key=quarantine:target-groups,Value=${registered[*]:-none}" "Key=quarantine:since,Value=$since" 2>&1) \
      || die "isolate: cannot record the previous security groups on $iid ($(tail -1 <<<"$tagged")); nothing changed"
  fi
  printf '{"instance_id":%s,"previous_groups":%s,"quarantine_group":%s,"target_groups":%s,"since":%s,"by":%s}\n' \
    "$(json_str "$iid")" "$(json_str "$previous")" "$(json_str "$qsg")" "$(json_str "${registered[*]}")" "$(json_str "$since")" "$(json_str "$(caller_name)")" > "$ISOLATION_RECORD"
  local r out
  for r in "${registered[@]}"; do
    out=$(aws_elb deregister-targets --target-group-arn "${r%:*}" --targets "Id=$iid,Port=${r##*:}" 2>&1) \
      || die "isolate: cannot deregister $iid from ${r%:*}: $(tail -1 <<<"$out"); security groups unchanged"
  done
  if [ -z "$already" ]; then
    out=$(aws_ec2 modify-instance-attribute --instance-id "$iid" --groups "$qsg" 2>&1) \
      || die "isolate: cannot move $iid to $qsg: $(tail -1 <<<"$out") (deregistered from ${#registered[@]} target group(s))"
  fi
  local undo=("aws ec2 modify-instance-attribute --region $REGION --instance-id $iid --groups ${previous:-<the groups it had>}")
  for r in "${registered[@]}"; do undo+=("aws elbv2 register-targets --region $REGION --target-group-arn ${r%:*} --targets Id=$iid,Port=${r##*:}"); done
  if [ -n "$json" ]; then
    local u=() c
    for c in "${undo[@]}"; do u+=("$(json_str "$c")"); done
    local IFS=,
    printf '{"instance_id":%s,"quarantine_group":%s,"previous_groups":%s,"deregistered":[%s],"already_isolated":%s,"since":%s,"undo":[%s]}\n' \
      "$(json_str "$iid")" "$(json_str "$qsg")" "$(json_str "$previous")" \
      "$(for r in "${registered[@]}"; do printf '%s,' "$(json_str "$r")"; done | sed 's/,$//')" \
      "$([ -n "$already" ] && echo true || echo false)" "$(json_str "$since")" "${u[*]}"
    return 0
  fi
  if [ -n "$already" ]; then say "isolate: $iid was already in $qsg (since the recorded isolation)"
  else say "isolate: $iid moved from security groups $previous to $qsg (no ingress; egress 443 to the VPC's endpoints only)"; fi
  say "isolate: deregistered from ${#registered[@]} target group(s)${registered[*]:+: ${registered[*]}}; the instance keeps running"
  say "isolate: recorded in the instance's quarantine:* tags and $ISOLATION_RECORD; next: nourishctl snapshot --reason incident"
  say "isolate: to undo, as an operator:"
  local c
  for c in "${undo[@]}"; do echo "  $c"; done
}

# --- snapshot --------------------------------------------------------------------------------

# A tag value AWS accepts that is also one inert word in JSON and shell: letters, digits, spaces
# and + - = . _ : / @ (AWS's own tag character set), at most 200.
SNAPSHOT_REASON_RE='^[A-Za-z0-9 +=._:/@-]{1,200}$'

cmd_snapshot() {
  local reason="on-call snapshot" json=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --help)
        echo "usage: nourishctl snapshot [--reason TEXT] [--json]"
        echo "  One EBS snapshot of every volume attached to this instance, tagged reason=TEXT, taken-at=<UTC time>,"
        echo "  instance, device, project and stack. TEXT: letters, digits, spaces and + - = . _ : / @ (at most 200)."
        echo "  The snapshots are crash-consistent: PostgreSQL recovers from them as after a power cut."
        return 0 ;;
      --reason) reason="${2:-}"; shift ;;
      --json) json=1 ;;
      *) die "snapshot: unknown option '$1' (--reason TEXT, --json, --help)" ;;
    esac
    shift
  done
  [[ "$reason" =~ $SNAPSHOT_REASON_RE ]] || die "snapshot: --reason must be 1-200 letters, digits, spaces or + - = . _ : / @; nothing taken"
  [ -n "${STACK:-}" ] || die "snapshot: STACK is not set in $HOST_ENV"
  local iid vols taken_at
  iid=$(oncall_instance_id snapshot) || exit 1
  oncall_check_instance_id "$iid" snapshot
  vols=$(aws_ec2 describe-volumes --filters "Name=attachment.instance-id,Values=$iid" \
    --query 'Volumes[].[VolumeId, Attachments[0].Device]' --output text 2>&1) || die "snapshot: cannot list the volumes of $iid: $(tail -1 <<<"$vols")"
  [ -n "$vols" ] || die "snapshot: instance $iid has no volumes attached"
  taken_at=$(date -u +%FT%TZ)
  local vol dev snap out entries=() n=0
  while read -r vol dev; do
    [[ "$vol" =~ ^vol-[0-9a-f]+$ ]] || die "snapshot: unexpected volume id '$vol'"
    # Every value is checked above (reason, ids) or ours, so this JSON needs no escaping.
    local tags
    tags="[{\"ResourceType\":\"snapshot\",\"Tags\":[{\"Key\":\"Name\",\"Value\":\"nourish-link-$STACK-$ROLE $dev\"},{\"Key\":\"reason\",\"Value\":\"$reason\"},{\"Key\":\"taken-at\",\"Value\":\"$taken_at\"},{\"Key\":\"instance\",\"Value\":\"$iid\"},{\"Key\":\"device\",\"Value\":\"$dev\"},{\"Key\":\"project\",\"Value\":\"nourish-link\"},{\"Key\":\"stack\",\"Value\":\"$STACK\"},{\"Key\":\"taken-by\",\"Value\":\"nourishctl snapshot\"}]}]"
    out=$(aws_ec2 create-snapshot --volume-id "$vol" --description "nourish-link $STACK $ROLE $iid $dev: $reason" \
      --tag-specifications "$tags" --query SnapshotId --output text 2>&1) || die "snapshot: create-snapshot of $vol ($dev) failed: $(tail -1 <<<"$out") (after $n snapshot(s))"
    snap="$out"
    n=$((n + 1))
    entries+=("{\"volume_id\":$(json_str "$vol"),\"device\":$(json_str "$dev"),\"snapshot_id\":$(json_str "$snap")}")
    [ -n "$json" ] || say "snapshot: $vol ($dev) -> $snap"
  done <<<"$vols"
  if [ -n "$json" ]; then
    local IFS=,
    printf '{"instance_id":%s,"reason":%s,"taken_at":%s,"snapshots":[%s]}\n' "$(json_str "$iid")" "$(json_str "$reason")" "$(json_str "$taken_at")" "${entries[*]}"
    return 0
  fi
  say "snapshot: $n snapshot(s) of $iid started at $taken_at, tagged reason='$reason' (aws ec2 describe-snapshots --filters Name=tag:instance,Values=$iid)"
}
