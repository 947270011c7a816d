# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, svc_active and the host.env values.
#
# The SSM agent (Run Command, Session Manager: how releases and procedures reach this host) and
# the CloudWatch agent (memory, disk and process metrics, the host's logs). Debian ships neither:
# each is downloaded at first boot (`nourishctl setup`) from AWS's regional S3 bucket over HTTPS,
# at the version pinned in stack config (SSM_AGENT_VERSION, CLOUDWATCH_AGENT_VERSION in host.env),
# checked to be that package at that version, installed (apt-get; dpkg in the sandbox), enabled and started with
# systemd. The URLs are components/hosts/agents.ts's (test/agent.test.ts holds them equal);
# docs/AGENTS.md says why this way and not Distributor.

VERBS+=("agent|the SSM and CloudWatch agents: 'agent install [ssm|cloudwatch]' (pinned versions from AWS's regional buckets), 'agent status'")

AGENT_CONFIG="$ROOT/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
AGENT_CTL=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
AGENTS=(ssm cloudwatch)

# The Debian package of agent $1, which is also its systemd unit.
agent_pkg() { case "$1" in ssm) echo amazon-ssm-agent ;; cloudwatch) echo amazon-cloudwatch-agent ;; *) die "agent: unknown agent '$1' (ssm or cloudwatch)" ;; esac; }
# The host.env variable pinning agent $1's version.
agent_var() { case "$1" in ssm) echo SSM_AGENT_VERSION ;; cloudwatch) echo CLOUDWATCH_AGENT_VERSION ;; esac; }
agent_version() { local var; var=$(agent_var "$1"); echo "${!var:-}"; }

# Where agent $1's package comes from: AWS's documented `latest/` path with the pinned version in
# its place. AGENT_S3_ENDPOINT (tests, a test boot: an S3 stand-in on loopback, path-style)
# replaces AWS's endpoint and keeps the bucket and key.
agent_url() {
  local v bucket key
  v=$(agent_version "$1")
  case "$1" in
    ssm) bucket="amazon-ssm-$REGION"; key="$v/debian_amd64/amazon-ssm-agent.deb" ;;
    cloudwatch) bucket="amazoncloudwatch-agent-$REGION"; key="debian/amd64/$v/amazon-cloudwatch-agent.deb" ;;
  esac
  if [ -n "${AGENT_S3_ENDPOINT:-}" ]; then echo "$AGENT_S3_ENDPOINT/$bucket/$key"
  elif [ "$1" = ssm ]; then echo "https://s3.$REGION.amazonaws.com/$bucket/$key"
  else echo "https://$bucket.s3.$REGION.amazonaws.com/$key"; fi
}

# Whether Debian version $1 is release $2 (AWS's packages add a build or revision: 3.3.3598.0-1).
agent_version_is() { case "$1" in "$2" | "$2"-* | "$2"b* | "$2"~* | "$2"+*) return 0 ;; *) return 1 ;; esac; }

# "installed VERSION" when dpkg has package $1 installed, nothing otherwise.
agent_dpkg_state() {
  # shellcheck disable=SC2016 # dpkg-query's own ${Field} format
  dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null | grep '^installed ' || true
}

# One line on agent $1 for people; fails when it is not installed at the pinned version and running.
agent_state() {
  local pkg v st
  pkg=$(agent_pkg "$1"); v=$(agent_version "$1")
  st=$(agent_dpkg_state "$pkg")
  if [ -z "$st" ]; then
    echo "$pkg is not installed (pinned $v from $(agent_url "$1"); 'nourishctl agent install $1' says why)"; return 1
  fi
  st=${st#installed }
  if ! agent_version_is "$st" "$v"; then echo "$pkg $st is installed, not the pinned $v ('nourishctl agent install $1')"; return 1; fi
  if svc_active "$pkg"; then echo "$pkg $st is installed and running"
  else echo "$pkg $st is installed but not running (systemctl status $pkg)"; return 1; fi
}

# Downloads, checks and installs agent $1 into work dir $2, then enables and starts it. Dies with
# one line naming the agent and why; installs nothing it has not checked.
agent_install_one() {
  local agent="$1" work="$2" pkg v var url deb err got got_pkg got_ver got_arch proto="=https"
  pkg=$(agent_pkg "$agent"); var=$(agent_var "$agent"); v=$(agent_version "$agent")
  [ -n "$v" ] || die "agent install: $pkg: $var is not set in $HOST_ENV"
  case "$agent" in
    ssm) [[ "$v" =~ ^[0-9]+(\.[0-9]+){3}$ ]] ;;
    cloudwatch) [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+(b[0-9]+)?$ ]] ;;
  esac || die "agent install: $pkg: $var=$v in $HOST_ENV is not a release number; installing nothing"
  [[ "${REGION:-}" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "agent install: $pkg: REGION in $HOST_ENV is not an AWS region; installing nothing"
  url=$(agent_url "$agent")
  if [ -z "$(agent_dpkg_state "$pkg")" ] || ! agent_version_is "$(agent_dpkg_state "$pkg" | cut -d' ' -f2)" "$v"; then
    # HTTPS only from AWS; a test's stand-in may be plain HTTP on loopback.
    [ -z "${AGENT_S3_ENDPOINT:-}" ] || proto="=http,https"
    deb="$work/$pkg.deb"
    err=$(curl -fsS --proto "$proto" --retry 3 --connect-timeout 20 --max-time 600 -o "$deb" "$url" 2>&1) \
      || die "agent install: $pkg $v: cannot download $url (${err//$'\n'/ }); installing nothing"
    # shellcheck disable=SC2016 # dpkg-deb's own ${Field} format
    got=$(dpkg-deb --show --showformat='${Package} ${Version} ${Architecture}' "$deb" 2>/dev/null) \
      || die "agent install: $pkg $v: $url is not a Debian package; installing nothing"
    read -r got_pkg got_ver got_arch <<<"$got"
    [ "$got_pkg" = "$pkg" ] || die "agent install: $pkg $v: $url holds package '$got_pkg', not $pkg; installing nothing"
    agent_version_is "$got_ver" "$v" || die "agent install: $pkg $v: $url holds version $got_ver, not the pinned $v; installing nothing"
    [ "$got_arch" = amd64 ] || die "agent install: $pkg $v: $url is built for $got_arch, not amd64; installing nothing"
    if [ -n "$ROOT" ]; then
      err=$(dpkg --root="$ROOT" --force-script-chrootless --force-not-root -i "$deb" 2>&1 >/dev/null) || die "agent install: $pkg $v: dpkg failed (${err//$'\n'/ })"
    else
      # apt-get on the checked file: it waits for the dpkg lock (unattended-upgrades may hold it at boot).
      err=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "$deb" 2>&1 >/dev/null) \
        || die "agent install: $pkg $v: apt-get install of the package failed (${err//$'\n'/ })"
    fi
  fi
  # The sandbox has no systemd: the package is what the tests check.
  if [ -z "$ROOT" ]; then
    systemctl daemon-reload
    if [ "$agent" = cloudwatch ]; then
      [ -r "$AGENT_CONFIG" ] || die "agent install: $pkg $v: no agent configuration at $AGENT_CONFIG"
      # Translates the rendered JSON, installs it and (-s) restarts the agent with it.
      err=$("$AGENT_CTL" -a fetch-config -m ec2 -s -c "file:$AGENT_CONFIG" 2>&1 >/dev/null) || die "agent install: $pkg $v: the agent rejected $AGENT_CONFIG (${err//$'\n'/ })"
    fi
    err=$(systemctl enable --now "$pkg.service" 2>&1) || die "agent install: $pkg $v: systemctl enable --now $pkg failed (${err//$'\n'/ })"
    systemctl is-active --quiet "$pkg.service" || die "agent install: $pkg $v: installed, but $pkg.service is not running (systemctl status $pkg)"
  fi
  say "agent install: $pkg $v installed from $url${ROOT:+ (sandbox: not started)}"
}

# Installs agents $@ (default: both), each on its own; dies with one line naming every agent that
# did not install and why.
agent_install() {
  local a failed=() work err
  [ $# -gt 0 ] || set -- "${AGENTS[@]}"
  for a in "$@"; do agent_pkg "$a" >/dev/null; done
  work=$(mktemp -d) || die "agent install: cannot create a temp dir"
  for a in "$@"; do
    # A subshell: one agent's failure (die) leaves the other to install. Its stdout passes through.
    # Its last line on stderr is die's.
    { err=$( (agent_install_one "$a" "$work") 2>&1 1>&3 3>&-); } 3>&1 || { err=${err##*$'\n'}; failed+=("${err#nourishctl: agent install: }"); }
  done
  rm -rf "$work"
  [ ${#failed[@]} -eq 0 ] || die "agent install: $(printf '%s; ' "${failed[@]}" | sed 's/; $//')"
}

cmd_agent() {
  case "${1:-}" in
    --help|"")
      echo "usage: nourishctl agent install [ssm|cloudwatch]|status"
      echo "  install  download amazon-ssm-agent \$SSM_AGENT_VERSION and amazon-cloudwatch-agent \$CLOUDWATCH_AGENT_VERSION"
      echo "           from AWS's regional buckets (HTTPS), check each is that package at that version, install it,"
      echo "           enable and start it (the CloudWatch agent with $AGENT_CONFIG); run by setup"
      echo "  status   each agent: installed at its pinned version and running, or why not (exit 1)"
      [ -n "${1:-}" ] && return 0
      die "agent: say install or status" ;;
    install) shift; agent_install "$@" ;;
    status)
      local a line down=0
      for a in "${AGENTS[@]}"; do
        if line=$(agent_state "$a"); then say "ok: $line"; else echo "nourishctl: FAIL: $line" >&2; down=1; fi
      done
      [ "$down" -eq 0 ] || die "agent status: an agent is missing or down" ;;
    *) die "agent: unknown task '$1' (install or status)" ;;
  esac
}

# First boot (cmd_setup): both agents before anything else, so Session Manager reaches a host
# whose later setup fails; setup_agents_verdict then fails setup at its end, in one line, when an
# agent did not install (cloud-init's runcmd fails and the boot is reported as an error).
AGENT_SETUP_FAILURE=""
setup_agents() {
  local err
  { err=$( (agent_install) 2>&1 1>&3 3>&-); } 3>&1 || AGENT_SETUP_FAILURE=${err##*$'\n'}
}
setup_agents_verdict() {
  [ -z "$AGENT_SETUP_FAILURE" ] || die "setup: ${AGENT_SETUP_FAILURE#nourishctl: }"
}
