# shellcheck shell=bash
# Sourced by nourishctl, which provides die, say, svc_active, ssm_secret and the host.env values.

VERBS+=("setup|internal|first-boot preparation of this host for its role (cloud-init runs it; safe to re-run)")
help_setup() {
  cat <<EOF
nourishctl setup - prepare this host for its role (cloud-init runs it at first boot)

usage: nourishctl setup
       nourishctl setup app-env

  setup     prepare this host for its role; as root; safe to re-run
  app-env   (app host) rewrite app.env from SSM, e.g. after a secret rotation; gunicorn reads it
            when it next starts (the next release or rollback)
EOF
}

# Decides what data volume $2 (device $1) holds before anything touches it. Our ext4 'pgdata'
# filesystem is kept (a replaced instance finds the database it left). Only a readable device
# with no signature at all (blkid exit 2) is formatted: another filesystem, a partition table or a
# probe that fails stops setup with the reason, formatting and mounting nothing.
data_volume_prepare() {
  local dev="$1" id="$2" probe rc=0 found
  # blkid also exits 2 for a path it cannot open: prove the device reads first.
  dd if="$dev" of=/dev/null bs=4096 count=1 status=none 2>/dev/null \
    || die "setup: cannot read data volume $id ($dev); formatting nothing"
  probe=$(blkid -p -o export -- "$dev" 2>&1) || rc=$?
  case "$rc" in
    0)
      if grep -qx TYPE=ext4 <<<"$probe" && grep -qx LABEL=pgdata <<<"$probe"; then return 0; fi
      found=$(grep -E '^(TYPE|PTTYPE|LABEL)=' <<<"$probe" | paste -sd' ' -)
      die "setup: data volume $id ($dev) holds ${found:-an unknown signature}, not our ext4 filesystem labelled pgdata; formatting and mounting nothing (is the right volume attached?)" ;;
    2)
      say "setup: formatting data volume $id ($dev): blkid finds no filesystem, partition table or other signature on it"
      mkfs.ext4 -q -L pgdata "$dev" || die "setup: mkfs.ext4 failed on data volume $id ($dev)" ;;
    *)
      die "setup: cannot tell what data volume $id ($dev) holds (blkid exit $rc${probe:+: $(head -1 <<<"$probe")}); formatting nothing" ;;
  esac
}

# The data volume: found by its EBS volume id, checked (data_volume_prepare), mounted where
# PostgreSQL keeps its data. On first boot the cluster the package created on the root volume is
# moved onto it.
setup_data_volume() {
  [ -n "${DATA_VOLUME_ID:-}" ] || die "setup: DATA_VOLUME_ID is not set in $HOST_ENV"
  mountpoint -q "$DATA_MOUNT" && return 0
  local dev="" _ tmp
  for _ in $(seq 1 60); do
    dev=$(readlink -f "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${DATA_VOLUME_ID//-/}" 2>/dev/null || true)
    [ -b "$dev" ] && break
    dev=""
    sleep 5
  done
  [ -n "$dev" ] || die "setup: data volume $DATA_VOLUME_ID did not attach within 5 minutes"
  data_volume_prepare "$dev" "$DATA_VOLUME_ID"
  # The cluster unit itself: stopping the postgresql umbrella returns before the cluster is down
  # (found by test/boot.test.ts: cp raced the shutdown and lost postmaster.pid).
  svc_ctl stop "$PG_CLUSTER_UNIT"
  tmp=$(mktemp -d)
  mount "$dev" "$tmp"
  if [ ! -d "$tmp/15/main" ]; then
    say "moving the new cluster onto data volume $DATA_VOLUME_ID"
    cp -a "$DATA_MOUNT/." "$tmp/"
  fi
  umount "$tmp"
  rmdir "$tmp"
  grep -q "LABEL=pgdata" /etc/fstab || echo "LABEL=pgdata $DATA_MOUNT ext4 defaults,nofail,noatime 0 2" >> /etc/fstab
  # The device just checked, not the fstab line: LABEL= resolves through udev's by-label link,
  # which may not exist yet right after mkfs, and with nofail `mount` then mounts nothing and
  # succeeds (seen by test/boot.test.ts: PostgreSQL went on writing to the root volume).
  mount -o noatime "$dev" "$DATA_MOUNT"
  mountpoint -q "$DATA_MOUNT" || die "setup: data volume $DATA_VOLUME_ID ($dev) is not mounted at $DATA_MOUNT; not starting PostgreSQL"
}

setup_db() {
  setup_data_volume
  [ -d "$DATA_MOUNT/15/main" ] || die "setup: no cluster at $DATA_MOUNT/15/main on the data volume"
  systemctl enable --now postgresql
  # The password travels from SSM to PostgreSQL in psql's environment (\getenv), never on a
  # command line, where any user could read it, or in a log.
  local password
  password=$(ssm_secret "$DB_PASSWORD_PARAMETER") || die "setup: cannot read $DB_PASSWORD_PARAMETER from SSM"
  NOURISH_DB_PASSWORD="$password" pg_admin psql -v ON_ERROR_STOP=1 -q -v user="$DB_USER" -v db="$DB_NAME" <<'SQL'
\getenv pw NOURISH_DB_PASSWORD
-- Keep the ALTER ROLE statement, password included, out of logs and pg_stat_statements.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET pg_stat_statements.track_utility = off;
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user')\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'user', :'pw')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')\gexec
SQL
  pg_admin psql -q -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  # Settings such as archive_mode (PITR) take a restart; restart only when one is pending.
  svc_ctl reload postgresql
  if [ "$(pg_admin psql -Atqc "SELECT bool_or(pending_restart) FROM pg_settings")" = t ]; then
    svc_ctl restart postgresql
  fi
  # Point-in-time recovery (lib/pitr.sh): stanza, check, first full backup.
  if declare -F pitr_setup_hook >/dev/null; then pitr_setup_hook; fi
  say "setup: database host ready ($DB_NAME on $DATA_MOUNT)"
}

# One line of an env file: KEY="VALUE", escaped so that systemd's EnvironmentFile= and
# nourishctl's env_file_load give back VALUE byte for byte (and so would a shell). printf is a
# builtin: the value never appears on a command line.
env_line() {
  local v="$2"
  [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "env file: '$1' is not a variable name"
  [[ "$v" != *[[:cntrl:]]* ]] || die "env file: the value of $1 has a control character (a newline?)"
  v=${v//\\/\\\\}
  v=${v//\"/\\\"}
  v=${v//\$/\\\$}
  v=${v//\`/\\\`}
  printf '%s="%s"\n' "$1" "$v"
}

# Django's environment: names from host.env, secrets fetched from SSM into a file only root and
# the app user can read, as data (quoted by env_line, never sourced). Written atomically so
# gunicorn never reads half a file. Exactly the app contract's environment, in its order (APP_ENV
# in components/app/contract.ts; test/app-contract.test.ts compares them).
write_app_env() {
  local tmp password key dir="$ROOT/etc/nourish-link"
  host_env_need DB_PASSWORD_PARAMETER DJANGO_SECRET_KEY_PARAMETER
  password=$(ssm_secret "$DB_PASSWORD_PARAMETER") || die "setup: cannot read $DB_PASSWORD_PARAMETER from SSM"
  key=$(ssm_secret "$DJANGO_SECRET_KEY_PARAMETER") || die "setup: cannot read $DJANGO_SECRET_KEY_PARAMETER from SSM"
  tmp=$(mktemp "$dir/.app.env.XXXXXX")
  chmod 0640 "$tmp"
  [ -n "$ROOT" ] || chgrp nourish "$tmp"
  (
    env_line DJANGO_SETTINGS_MODULE dusangire.settings
    env_line DJANGO_ALLOWED_HOSTS "$DOMAIN"
    env_line DATABASE_HOST "$DB_HOST"
    env_line DATABASE_PORT 5432
    env_line DATABASE_NAME "$DB_NAME"
    env_line DATABASE_USER "$DB_USER"
    env_line DATABASE_SSLMODE require
    env_line PGCHANNELBINDING require
    env_line DATABASE_PASSWORD "$password"
    env_line DJANGO_SECRET_KEY "$key"
    env_line STATIC_ROOT /srv/nourish-link/shared/static
    env_line MEDIA_ROOT /srv/nourish-link/shared/media
  ) > "$tmp" || { rm -f "$tmp"; exit 1; }
  mv "$tmp" "$dir/app.env"
}

# TLS on nginx (single host): start with a self-signed certificate so nginx can serve the
# maintenance page at once, then ask Let's Encrypt; certbot's timer renews, its deploy hook
# re-runs this to install the renewed files.
setup_tls() {
  [ "${TLS:-alb}" = nginx ] || return 0
  install -d -m 0750 "$TLS_DIR"
  local live="/etc/letsencrypt/live/$DOMAIN"
  if [ -s "$live/fullchain.pem" ]; then
    install -m 0644 "$live/fullchain.pem" "$TLS_DIR/fullchain.pem"
    install -m 0600 "$live/privkey.pem" "$TLS_DIR/privkey.pem"
  elif [ ! -s "$TLS_DIR/fullchain.pem" ]; then
    install -m 0644 /etc/ssl/certs/ssl-cert-snakeoil.pem "$TLS_DIR/fullchain.pem"
    install -m 0600 /etc/ssl/private/ssl-cert-snakeoil.key "$TLS_DIR/privkey.pem"
  fi
}

request_certificate() {
  [ "${TLS:-alb}" = nginx ] || return 0
  [ -s "/etc/letsencrypt/live/$DOMAIN/fullchain.pem" ] && return 0
  install -d /var/www/letsencrypt
  if certbot certonly --webroot -w /var/www/letsencrypt -d "$DOMAIN" --non-interactive --agree-tos \
      -m "$ACME_EMAIL" --deploy-hook "$0 setup" >/dev/null 2>&1; then
    setup_tls
    systemctl reload nginx
  else
    echo "nourishctl: warning: Let's Encrypt refused $DOMAIN (does its DNS point here yet?); serving a self-signed certificate, re-run 'nourishctl setup'" >&2
  fi
}

setup_app() {
  id nourish >/dev/null 2>&1 || useradd --system --home-dir /srv/nourish-link --shell /usr/sbin/nologin nourish
  install -d -o nourish -g nourish /srv/nourish-link/shared/static /srv/nourish-link/shared/media /var/log/nourish-link
  # Root owns the releases (the app user only their venvs, see lib/release.sh): what root records
  # in releases/<version>/.nourish is out of the app's reach.
  install -d -o root -g root -m 0755 /srv/nourish-link/releases
  install -d -o root -g nourish -m 0750 /etc/nourish-link
  write_app_env
  # A new host serves the maintenance page until its first release is deployed.
  [ -e /srv/nourish-link/current ] || echo first-release > /srv/nourish-link/maintenance/on
  setup_tls
  ln -sf /etc/nginx/sites-available/nourish-link.conf /etc/nginx/sites-enabled/nourish-link.conf
  rm -f /etc/nginx/sites-enabled/default
  nginx -t -q || die "setup: nginx rejects its configuration"
  systemctl enable --now nginx
  systemctl reload nginx
  systemctl daemon-reload
  request_certificate
  say "setup: app host ready (maintenance page until the first release)"
}

# journald was running before cloud-init wrote its drop-in (persistent, capped: journald.conf.d):
# it reads it when it starts again. Then the runtime journal goes to /var/log/journal.
setup_journald() {
  [ -e /etc/systemd/journald.conf.d/nourish-link.conf ] || return 0
  systemctl restart systemd-journald || die "setup: systemd-journald does not restart with /etc/systemd/journald.conf.d/nourish-link.conf"
  journalctl --flush || true
}

# The manual's scheduled procedures: every timer cloud-init installed for this host's role.
enable_timers() {
  local t
  systemctl daemon-reload
  for t in /etc/systemd/system/nourish-link-*.timer; do
    [ -e "$t" ] || continue
    systemctl enable --now "$(basename "$t")"
  done
}

cmd_setup() {
  if [ "${1:-}" = "--help" ]; then help_setup; return 0; fi
  [ "$(id -u)" -eq 0 ] || die "setup: must run as root"
  if [ "${1:-}" = app-env ]; then
    [ "$ROLE" = app ] || die "setup app-env: this is not an app host (ROLE=$ROLE in $HOST_ENV)"
    write_app_env
    say "setup app-env: $ROOT/etc/nourish-link/app.env rewritten from SSM; gunicorn reads it when it next starts (the next release or rollback)"
    return 0
  fi
  # The SSM and CloudWatch agents first (lib/agent.sh): Session Manager then reaches a host whose
  # setup fails further on.
  setup_agents
  setup_journald
  case "$ROLE" in
    db) db_lock setup exclusive; setup_db ;;
    app) setup_app ;;
    *) die "ROLE is not set in $HOST_ENV (app or db)" ;;
  esac
  enable_timers
  # An agent that did not install fails the boot here, in one line naming it and why.
  setup_agents_verdict
}
