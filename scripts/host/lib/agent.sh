# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, svc_ctl and the host.env values.
#
# The CloudWatch agent, installed at first boot (nourishctl setup) from AWS's official Debian
# package at the version pinned in stack config (AGENT_VERSION in host.env), and only when its
# signature checks out against AWS's signing key delivered with the tooling and the key's pinned
# fingerprint (AGENT_KEY_FINGERPRINT). Without the key nothing is installed and setup says so:
# the memory alarm, the agent's heartbeat, then reports the agent missing.

VERBS+=("agent|the CloudWatch agent: 'agent install' (pinned version, signature checked), 'agent status'")

AGENT_KEY_FILE="$ROOT/usr/local/share/nourish-link/amazon-cloudwatch-agent.gpg"
AGENT_CONFIG="$ROOT/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
AGENT_CTL=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl

# AWS's per-region copy of the packages; AGENT_PACKAGE_URL (tests: a loopback server) overrides it.
agent_package_url() {
  echo "${AGENT_PACKAGE_URL:-https://amazoncloudwatch-agent-$REGION.s3.$REGION.amazonaws.com/debian/amd64/$AGENT_VERSION}"
}

# Downloads the package and its detached signature into $1 and checks the signature with a
# keyring holding only the delivered key, whose fingerprint must be the pinned one.
agent_fetch_verified() {
  local work="$1" url fpr
  url=$(agent_package_url)
  [ -s "$AGENT_KEY_FILE" ] || die "agent install: no AWS signing key at $AGENT_KEY_FILE (vendor/amazon-cloudwatch-agent/ in the infra repository has none); installing nothing"
  [[ "${AGENT_KEY_FINGERPRINT:-}" =~ ^[0-9A-F]{40}$ ]] || die "agent install: AGENT_KEY_FINGERPRINT in $HOST_ENV is not a 40-digit key fingerprint; installing nothing"
  mkdir -m 0700 "$work/gnupg"
  GNUPGHOME="$work/gnupg" gpg --batch --quiet --import "$AGENT_KEY_FILE" 2>/dev/null || die "agent install: cannot read the signing key $AGENT_KEY_FILE; installing nothing"
  fpr=$(GNUPGHOME="$work/gnupg" gpg --batch --with-colons --fingerprint 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }')
  [ "$fpr" = "$AGENT_KEY_FINGERPRINT" ] || die "agent install: the signing key's fingerprint is $fpr, not the pinned $AGENT_KEY_FINGERPRINT; installing nothing"
  GNUPGHOME="$work/gnupg" gpg --batch --export > "$work/trusted.gpg"
  curl -fsSL --retry 3 -o "$work/agent.deb" "$url/amazon-cloudwatch-agent.deb" || die "agent install: cannot download $url/amazon-cloudwatch-agent.deb; installing nothing"
  curl -fsSL --retry 3 -o "$work/agent.deb.sig" "$url/amazon-cloudwatch-agent.deb.sig" || die "agent install: cannot download $url/amazon-cloudwatch-agent.deb.sig; installing nothing"
  # gpgv trusts exactly the keyring it is given: a valid signature by any other key fails.
  gpgv --keyring "$work/trusted.gpg" "$work/agent.deb.sig" "$work/agent.deb" >/dev/null 2>&1 \
    || die "agent install: the signature of amazon-cloudwatch-agent $AGENT_VERSION does not verify against AWS's key $AGENT_KEY_FINGERPRINT; installing nothing"
}

cmd_agent() {
  case "${1:-}" in
    --help|"")
      echo "usage: nourishctl agent install|status"
      echo "  install  download amazon-cloudwatch-agent \$AGENT_VERSION, check its signature, install it, load $AGENT_CONFIG"
      echo "  status   the agent's own status"
      [ -n "${1:-}" ] && return 0
      die "agent: say install or status" ;;
    install)
      [ -n "${AGENT_VERSION:-}" ] || die "agent install: AGENT_VERSION is not set in $HOST_ENV"
      [ -r "$AGENT_CONFIG" ] || die "agent install: no agent configuration at $AGENT_CONFIG"
      local work
      work=$(mktemp -d) || die "agent install: cannot create a temp dir"
      # shellcheck disable=SC2064
      trap "rm -rf '$work'" EXIT
      agent_fetch_verified "$work"
      if [ -n "$ROOT" ]; then
        dpkg --root="$ROOT" --force-script-chrootless --force-not-root -i "$work/agent.deb" >/dev/null || die "agent install: dpkg failed"
      else
        dpkg -i "$work/agent.deb" >/dev/null || die "agent install: dpkg failed"
        "$AGENT_CTL" -a fetch-config -m ec2 -s -c "file:$AGENT_CONFIG" >/dev/null || die "agent install: the agent rejected $AGENT_CONFIG"
      fi
      say "agent install: amazon-cloudwatch-agent $AGENT_VERSION installed (signature by $AGENT_KEY_FINGERPRINT verified), configuration $AGENT_CONFIG loaded" ;;
    status)
      [ -z "$ROOT" ] || die "agent status: not in the sandbox"
      "$AGENT_CTL" -a status ;;
    *) die "agent: unknown task '$1' (install or status)" ;;
  esac
}

# Called by `nourishctl setup` at first boot: a missing agent is reported, not fatal (the app and
# the database come first; the memory alarm says the agent is missing).
agent_setup_hook() {
  ( cmd_agent install ) || echo "nourishctl: warning: the CloudWatch agent is not installed (see above); host metrics and logs are missing until 'nourishctl agent install' succeeds" >&2
}
