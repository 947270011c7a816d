# shellcheck shell=bash
# nourishctl-roles: app
# Sourced by nourishctl, which provides die, say, svc_ctl, svc_active, aws_cli and host.env values.
#
# The manual's "Update Process" and "Rollback Procedure", without the downtime: releases live side
# by side (Capistrano layout), each release's gunicorn listens on its own socket
# ($RUN_DIR/app-<version>.sock, unit nourish-link-app@<version>), and nginx always connects to
# $RUN_DIR/app.sock, a hard link that a switch moves with one rename(2) once the new release has
# proved healthy. Every connection reaches the old or the new listener, never neither; the old
# gunicorn is stopped only after its queue has drained, and then stops gracefully.
#
#   releases/<version>/           the unpacked artifact, its venv, and .nourish/ (what we recorded)
#   shared/static, shared/media   collectstatic output (hashed names: old and new coexist), uploads
#   current -> releases/<version> the live release (switched atomically)
#   releases.log                  one line per release, switch and rollback: when, who, what
#
# host.env: DOMAIN, HEALTH_PATH (/health/), KEEP_RELEASES (5), TLS (alb|nginx), optional
# APP_LOCAL_URL (how this host's nginx is reached; default from TLS), VERIFY_CHECKS (5).

VERBS+=("release|routine|deploy a release: fetch, install, migrate, collectstatic, switch (health-gated), verify")
help_release() {
  cat <<EOF
nourishctl release - deploy a release, or one step of it

usage: nourishctl release VERSION [--file PATH --sha256 HEX] [--pre-release-backup KEY]
       nourishctl release fetch|migrate|collectstatic|switch|verify VERSION [options]   (one step)
       nourishctl release publish VERSION    (unit hook: re-link the live socket after a reboot)
       nourishctl release list               (installed releases, the live one marked)

The whole release is fetch -> migrate -> collectstatic -> switch: the new release's gunicorn starts
beside the old one, must answer the health URL and pass 'manage.py check --deploy', then takes
traffic in one atomic socket switch; if it then fails verification through nginx or the smoke
checks (nourishctl smoke: check --deploy failing on warnings too, the app's smoke command) it
rolls back.
Where VERSION comes from is the stack's: /etc/nourish-link/release-source.env (release.version
and release.artifact, installed with the tooling) names one version and its artifact, an S3
object with its SHA-256 or a git commit (and tag); any other version not installed here is
refused, and so is any other source. --file PATH --sha256 HEX installs a tarball on this host.
A git release is pinned: the full 40-hex commit is checked out; its tag, when named, must
resolve to it. The URL carries no credentials (the host reads it with its own key).

Options:
  --file PATH                a release tarball on this host (default: the stack's release source)
  --sha256 HEX               with --file: its SHA-256, checked before anything is installed
  --pre-release-backup KEY   the backup taken before this release (recorded for a rollback)
EOF
}
VERBS+=("rollback|oncall|back to the previous (or a named) release; its migrations reversed")
help_rollback() {
  cat <<EOF
nourishctl rollback - back to the previous (or a named) release

usage: nourishctl rollback [VERSION]    (default: the release the live one replaced)
       nourishctl rollback VERSION --database-restored    (after restoring the pre-release backup)
       nourishctl rollback VERSION --keep-schema          (irreversible migrations: old code, new schema)

Proves VERSION's gunicorn healthy (the warm standby a switch left running, or started now),
switches traffic to it atomically, stops the failed release, then reverses the failed release's
migrations when it applied any. When they are irreversible it refuses before touching anything
(exit 3) and names the pre-release backup to restore on the db host; says which it did.

Options:
  --database-restored  the database was restored to the pre-release backup: migrations are not
                       reversed (default: reversed)
  --keep-schema        leave the new schema in place (default: reversed, or refused when irreversible)
EOF
}
VERBS+=("maintenance|oncall|'maintenance on|off|status': the maintenance page nginx serves")
help_maintenance() {
  cat <<EOF
nourishctl maintenance - the maintenance page nginx serves (503, Retry-After)

usage: nourishctl maintenance on [--message TEXT] [--until HH:MM] | off | status

  on       nginx serves the maintenance page until 'maintenance off'
  off      the site is served by the live release again (the page's notice is emptied)
  status   on (by whom, since when, the notice) or off
nginx reads the flag on every request: no reload.

Options (on):
  --message TEXT  one line the page shows (as text: HTML is escaped)
  --until HH:MM   the estimated end the page shows (24-hour, the host's time zone)
EOF
}

APP_ROOT="$ROOT/srv/nourish-link"
RELEASES_DIR="$APP_ROOT/releases"
CURRENT_LINK="$APP_ROOT/current"
RUN_DIR="$ROOT/run/nourish-link"
LIVE_SOCKET="$RUN_DIR/app.sock"
APP_ENV_FILE="$ROOT/etc/nourish-link/app.env"
MAINTENANCE_FLAG="$APP_ROOT/maintenance/on"
MAINTENANCE_PAGE="$APP_ROOT/maintenance/index.html"
RELEASE_LOG="$APP_ROOT/releases.log"
# The interpreter every release's venv is built from (Debian's, with Django from the distribution).
RELEASE_PYTHON="${RELEASE_PYTHON:-/usr/bin/python3}"
VERSION_RE='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'

rel_dir() { echo "$RELEASES_DIR/$1"; }
rel_meta() { echo "$RELEASES_DIR/$1/.nourish"; }
rel_unit() { echo "nourish-link-app@$1"; }
rel_socket() { echo "$RUN_DIR/app-$1.sock"; }
rel_current() { [ -L "$CURRENT_LINK" ] && basename "$(readlink "$CURRENT_LINK")"; true; }
rel_log() { printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$1" "$2" "$3" "$(caller_name)" >> "$RELEASE_LOG"; }

# Seconds since an $EPOCHREALTIME, to the hundredth.
rel_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

rel_check_version() {
  [[ "$1" =~ $VERSION_RE ]] || die "$2: '$1' is not a release version (semantic version such as 1.4.2)"
}

rel_installed() { [ -e "$(rel_meta "$1")/installed" ]; }
rel_need_installed() {
  rel_installed "$1" || die "$2: release $1 is not installed here (nourishctl release fetch $1 …)"
}

# One deploy at a time per host, and say who holds it. Re-entrant within one nourishctl run.
REL_LOCKED=
rel_lock() {
  [ -n "$REL_LOCKED" ] && return 0
  mkdir -p "$APP_ROOT"
  exec 8>>"$APP_ROOT/.deploy.lock"
  if ! flock -n 8; then
    die "$1: another deploy is running ($(cat "$APP_ROOT/.deploy.lock.info" 2>/dev/null || echo unknown)); not starting a second one"
  fi
  echo "$1 by $(caller_name) since $(date -u +%FT%TZ) (pid $$)" > "$APP_ROOT/.deploy.lock.info"
  REL_LOCKED=1
  rel_reclaim
}

# Releases installed before root owned them belong to the app user, who could rename them or plant
# links in .nourish: root takes back the directories it writes in (never following a link; files
# stay where they are, rel_meta_put refuses links already there). A no-op once done.
rel_reclaim() {
  rel_drops_privileges || return 0
  local d
  # Parent first: once root owns a directory, the app user can no longer swap what is in it.
  for d in "$RELEASES_DIR" "$RELEASES_DIR"/*; do
    rel_reclaim_dir "$d"
    [ "$d" = "$RELEASES_DIR" ] || rel_reclaim_dir "$d/.nourish"
  done
}
rel_reclaim_dir() {
  local d="$1"
  if [ ! -d "$d" ] || [ -L "$d" ] || [ -L "$(dirname "$d")" ] || [ "$(stat -c %u "$d")" = 0 ]; then return 0; fi
  { chown -h root:root "$d" && chmod go-w "$d"; } || die "release: cannot take $d back from the app user"
  if [ "${d##*/}" = .nourish ]; then find "$d" -mindepth 1 -maxdepth 1 -exec chown -h root:root {} +; fi
  say "release: $d now belongs to root (installed when the app user owned releases)"
}

# The app user runs what a release brings (pip, manage.py) and owns only its venv: root owns the
# rest of every release, .nourish included, so nothing the app runs can change a release's code or
# plant a link where root writes. The sandbox runs it as whoever runs the tests, or becomes
# NOURISH_APP_USER when that is set (tests of the privilege drop).
APP_USER="${NOURISH_APP_USER:-nourish}"
rel_drops_privileges() { [ -z "$ROOT" ] || [ -n "${NOURISH_APP_USER:-}" ]; }
rel_as_app() {
  if rel_drops_privileges; then runuser -u "$APP_USER" -- "$@"; else "$@"; fi
}

# Writes stdin to release $1's record .nourish/$2, refusing to write through a link (one left in a
# release installed when the app user still owned it).
rel_meta_put() {
  local f
  f="$(rel_meta "$1")/$2"
  if [ -L "$(rel_dir "$1")" ] || [ -L "$(rel_meta "$1")" ] || [ -L "$f" ]; then
    die "release: $f is reached through a symbolic link; not writing to it"
  fi
  cat > "$f"
}

# Runs manage.py of a release with the app's environment (app.env, read as data), as the app user.
rel_manage() {
  local v="$1"; shift
  local dir
  dir=$(rel_dir "$v")
  [ -r "$APP_ENV_FILE" ] || die "release: $APP_ENV_FILE is missing (nourishctl setup writes it)"
  (
    env_file_load "$APP_ENV_FILE" export
    cd "$dir" || exit 1
    rel_as_app "$dir/venv/bin/python" manage.py "$@"
  )
}

# --- fetch and install ---------------------------------------------------------------------

# A git artifact is pinned to a full commit, optionally with its tag; neither can start with '-'.
# The URL is written to releases.log, so it may carry no credentials: no user info but ssh's
# `git@`, no query string (the same rule as the stack config's release.artifact.url).
GIT_COMMIT_RE='^[0-9a-f]{40}$'
GIT_TAG_RE='^[A-Za-z0-9_][A-Za-z0-9._+/-]*$'
GIT_URL_RE='^(https://[A-Za-z0-9.-]+(:[0-9]+)?/|ssh://(git@)?[A-Za-z0-9.-]+(:[0-9]+)?/|git@[A-Za-z0-9.-]+:|file:///)[A-Za-z0-9._~/+-]+$'

# Clones $1 into $4 and checks out exactly commit $2, which tag $3 (when given) must point at.
rel_git_checkout() {
  local url="$1" commit="$2" tag="$3" src="$4" got
  # Never $url in a message before it passed the pattern: it could carry a token.
  [[ "$url" =~ $GIT_URL_RE ]] || die "release fetch: --git must be https://HOST/PATH, ssh://git@HOST/PATH or git@HOST:PATH, with no credentials or query string"
  [[ "$commit" =~ $GIT_COMMIT_RE ]] || die "release fetch: --commit must be the full commit SHA (40 lower-case hex digits); a branch, tag or short SHA can move"
  if [ -n "$tag" ]; then
    if ! [[ "$tag" =~ $GIT_TAG_RE ]] || ! git check-ref-format "refs/tags/$tag"; then
      die "release fetch: --tag '$tag' is not a tag name"
    fi
  fi
  GIT_TERMINAL_PROMPT=0 git clone --quiet --no-checkout -- "$url" "$src" || die "release fetch: cannot clone $url"
  got=$(git -C "$src" rev-parse --verify --quiet --end-of-options "$commit^{commit}") || die "release fetch: $url has no commit $commit"
  [ "$got" = "$commit" ] || die "release fetch: $url resolves $commit to $got"
  if [ -n "$tag" ]; then
    got=$(git -C "$src" rev-parse --verify --quiet --end-of-options "refs/tags/$tag^{commit}") || die "release fetch: $url has no tag $tag"
    [ "$got" = "$commit" ] || die "release fetch: tag $tag of $url is commit $got, not $commit; not installed"
  fi
  git -C "$src" -c advice.detachedHead=false checkout --quiet --detach "$commit" || die "release fetch: cannot check out $commit"
  [ "$(git -C "$src" rev-parse HEAD)" = "$commit" ] || die "release fetch: the checkout of $url is not at $commit"
}

# Where releases come from is the stack's decision, not the caller's: pulumi up installs this file
# with the tooling (components/release/source.ts), root's, naming release.version and its one
# artifact: RELEASE_VERSION, then RELEASE_S3_BUCKET, RELEASE_S3_KEY and RELEASE_SHA256, or
# RELEASE_GIT_URL, RELEASE_COMMIT and RELEASE_TAG (optional). Read as data, never sourced.
RELEASE_SOURCE_FILE="$ROOT/etc/nourish-link/release-source.env"

# Sets s3 and sha, or git, commit and tag, to what the release source names for version $1.
# Returns 1 (nothing to fetch) when it names another version and $1 is installed already.
rel_source() {
  local v="$1"
  unset RELEASE_VERSION RELEASE_S3_BUCKET RELEASE_S3_KEY RELEASE_SHA256 RELEASE_GIT_URL RELEASE_COMMIT RELEASE_TAG
  if [ -r "$RELEASE_SOURCE_FILE" ]; then env_file_load "$RELEASE_SOURCE_FILE"; fi
  if [ "${RELEASE_VERSION:-}" != "$v" ]; then
    rel_installed "$v" && return 1
    if [ -r "$RELEASE_SOURCE_FILE" ]; then
      die "release fetch: this host's stack names release ${RELEASE_VERSION:-none} ($RELEASE_SOURCE_FILE), not $v; nothing fetched (a release is release.version and release.artifact in the stack config)"
    fi
    die "release fetch: $RELEASE_SOURCE_FILE is missing: this host's stack names no release to fetch (pulumi up installs it with the tooling)"
  fi
  if [ -n "${RELEASE_GIT_URL:-}" ]; then
    git="$RELEASE_GIT_URL" commit="${RELEASE_COMMIT:-}" tag="${RELEASE_TAG:-}"
  elif [ -n "${RELEASE_S3_BUCKET:-}" ] && [ -n "${RELEASE_S3_KEY:-}" ]; then
    s3="s3://$RELEASE_S3_BUCKET/$RELEASE_S3_KEY" sha="${RELEASE_SHA256:-}"
  else
    die "release fetch: $RELEASE_SOURCE_FILE names no artifact for $v (RELEASE_S3_BUCKET and RELEASE_S3_KEY, or RELEASE_GIT_URL)"
  fi
}

# Fetches the release the stack names (rel_source); `--file PATH --sha256 HEX` installs a tarball
# already on this host instead (a person on the host; the SSM document cannot pass it).
rel_fetch() {
  local v="$1" file="" s3="" git="" commit="" tag="" sha=""
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --file) file="${2:?--file needs a path}"; shift 2 ;;
      --sha256) sha="${2:?--sha256 needs a hex digest}"; shift 2 ;;
      --s3|--git|--commit|--tag|--ref) die "release fetch: $1 is gone: a host fetches only the release its stack names in $RELEASE_SOURCE_FILE (release.version and release.artifact), or --file PATH --sha256 HEX already on this host" ;;
      --pre-release-backup) shift 2 ;;
      *) die "release fetch: unknown option '$1'" ;;
    esac
  done
  if [ -z "$file" ]; then
    [ -z "$sha" ] || die "release fetch: --sha256 goes with --file; the stack's release source names the SHA-256 of what it fetches"
    rel_source "$v" || { say "release fetch: $v already installed"; return 0; }
  fi
  local meta
  meta=$(rel_meta "$v")
  if rel_installed "$v"; then
    if [ -n "$sha" ] && [ "$(cat "$meta/sha256" 2>/dev/null)" != "$sha" ]; then
      die "release fetch: $v is already installed from a different artifact (sha256 $(cat "$meta/sha256" 2>/dev/null || echo none)); a version is immutable, publish a new one"
    fi
    if [ -n "$commit" ] && [ "$(cat "$meta/commit" 2>/dev/null)" != "$commit" ]; then
      die "release fetch: $v is already installed from a different artifact (commit $(cat "$meta/commit" 2>/dev/null || echo none)); a version is immutable, publish a new one"
    fi
    say "release fetch: $v already installed"
    return 0
  fi
  # An artifact is one version: the stack naming an installed release's artifact for another version
  # (release.version set back without release.artifact) would install that release under this name.
  local other
  for other in "$RELEASES_DIR"/*/.nourish; do
    if [ -n "$file" ] || [ ! -e "$other/installed" ]; then continue; fi
    if { [ -n "$sha" ] && [ "$(cat "$other/sha256" 2>/dev/null)" = "$sha" ]; } || { [ -n "$commit" ] && [ "$(cat "$other/commit" 2>/dev/null)" = "$commit" ]; }; then
      die "release fetch: the stack names for $v the artifact of release $(basename "$(dirname "$other")") here; set release.artifact with release.version, nothing fetched"
    fi
  done
  if [ -z "$git" ]; then
    [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "release fetch: --sha256 must be the artifact's SHA-256 (64 lower-case hex digits)"
  fi
  mkdir -p "$RELEASES_DIR"
  local tmp
  tmp=$(mktemp -d "$RELEASES_DIR/.fetch-$v.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  mkdir -p "$tmp/app"
  if [ -n "$git" ]; then
    [ -n "$commit" ] || die "release fetch: --git needs --commit SHA (the full commit to deploy)"
    rel_git_checkout "$git" "$commit" "$tag" "$tmp/app/src"
    rm -rf "$tmp/app/src/.git"
    ( shopt -s dotglob; mv "$tmp/app/src/"* "$tmp/app/" ) || die "release fetch: cannot move the checkout of $v into place"
    rmdir "$tmp/app/src"
  else
    local tarball="$tmp/artifact.tar.gz" got
    if [ -n "$s3" ]; then
      aws_cli s3 cp --only-show-errors "$s3" "$tarball" || die "release fetch: cannot download $s3"
    else
      cp "$file" "$tarball" || die "release fetch: cannot read $file"
    fi
    got=$(sha256sum "$tarball" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || die "release fetch: artifact ${s3:-$file} has sha256 $got, expected $sha; not installed"
    tar -xzf "$tarball" -C "$tmp/app" --no-same-owner || die "release fetch: ${s3:-$file} is not a readable tar.gz"
  fi
  # .nourish/ holds what root records about the release: an artifact that brings its own (a
  # symlink to /etc/shadow, say) would have root write through it.
  if [ -e "$tmp/app/.nourish" ] || [ -L "$tmp/app/.nourish" ]; then
    die "release fetch: the artifact of $v ships a .nourish entry; the host keeps its records there, not installed"
  fi
  mkdir "$tmp/app/.nourish"
  if [ -n "$git" ]; then
    echo "$commit" > "$tmp/app/.nourish/commit"
    echo "$git" > "$tmp/app/.nourish/source"
    [ -z "$tag" ] || echo "$tag" > "$tmp/app/.nourish/tag"
  else
    echo "$sha" > "$tmp/app/.nourish/sha256"
    echo "${s3:-$file}" > "$tmp/app/.nourish/source"
  fi
  [ -f "$tmp/app/manage.py" ] || die "release fetch: the artifact of $v has no manage.py at its root"
  [ -f "$tmp/app/requirements.txt" ] || die "release fetch: the artifact of $v has no requirements.txt"
  # The app user builds the venv (pip runs whatever the requirements bring) in a directory it owns,
  # the only one of the release it does: it reaches it through $tmp, which it cannot write.
  chmod 0755 "$tmp"
  mkdir "$tmp/app/venv" 2>/dev/null || die "release fetch: the artifact of $v ships a venv/; the host builds it"
  if rel_drops_privileges; then chown "$APP_USER:" "$tmp/app/venv"; fi
  # Debian's Django, psycopg2 and gunicorn are visible; pip adds only what the release pins beyond them.
  rel_as_app "$RELEASE_PYTHON" -m venv --system-site-packages "$tmp/app/venv" || die "release fetch: cannot create a virtualenv with $RELEASE_PYTHON (apt-get install -y python3-venv)"
  # Hashes in requirements.txt are enforced for every requirement; wheels shipped in wheels/ are
  # all pip may install beyond Debian's packages (no index).
  local pip=(--quiet --disable-pip-version-check --no-cache-dir)
  grep -q -- '--hash=sha256:' "$tmp/app/requirements.txt" && pip+=(--require-hashes)
  [ -d "$tmp/app/wheels" ] && pip+=(--no-index --find-links "$tmp/app/wheels")
  rel_as_app "$tmp/app/venv/bin/python" -m pip install "${pip[@]}" -r "$tmp/app/requirements.txt" \
    || die "release fetch: pip install -r requirements.txt failed for $v; not installed"
  # gunicorn from Debian leaves no venv/bin/gunicorn; run it with the venv's python so it sees
  # what the release installed there. Installed by the app user: root writes nothing in its venv.
  if [ ! -x "$tmp/app/venv/bin/gunicorn" ]; then
    # shellcheck disable=SC2016
    printf '#!/bin/sh\nexec "$(dirname "$0")/python" -m gunicorn "$@"\n' > "$tmp/gunicorn"
    rel_as_app install -m 0755 "$tmp/gunicorn" "$tmp/app/venv/bin/gunicorn"
  fi
  date -u +%FT%TZ > "$tmp/app/.nourish/installed"
  rm -rf "$(rel_dir "$v")"
  mv "$tmp/app" "$(rel_dir "$v")"
  rm -rf "$tmp"
  trap - EXIT
  rel_log fetch "$v" "${s3:-${file:-$git commit $commit${tag:+ tag $tag}}}"
  say "release fetch: $v installed in $(rel_dir "$v")"
}

# --- migrations ----------------------------------------------------------------------------

# "app last_applied_migration|zero" per app, as release $1's code sees the database.
rel_migration_state() {
  rel_manage "$1" showmigrations --list | awk '
    /^[^ ]/ { app = $1; if (!(app in last)) { last[app] = "zero"; order[n++] = app } next }
    /^ \[X\] / { last[app] = $2 }
    END { for (i = 0; i < n; i++) print order[i], last[order[i]] }'
}

# Moves the database back to the state in file $2 using release $1's code (it knows the
# migrations to reverse). Refuses up front (status 2) when a step is irreversible; with --check
# only plans. Prints what it did.
rel_migrate_back() {
  local code="$1" state="$2" check="${3:-}" app target now moved=""
  local -A want=()
  while read -r app target; do want[$app]=$target; done < "$state"
  local steps=()
  while read -r app now; do
    target="${want[$app]:-zero}"
    [ "$now" = "$target" ] || steps+=("$app $target")
  done < <(rel_migration_state "$code")
  [ ${#steps[@]} -eq 0 ] && { echo "none"; return 0; }
  local s plan
  for s in "${steps[@]}"; do
    # shellcheck disable=SC2086
    plan=$(rel_manage "$code" migrate $s --plan 2>&1) || { echo "cannot plan: $plan" >&2; return 1; }
    if grep -q IRREVERSIBLE <<<"$plan"; then
      echo "irreversible: $(grep -B1 IRREVERSIBLE <<<"$plan" | head -1 | xargs) (migrate $s)" >&2
      return 2
    fi
  done
  [ -n "$check" ] && { echo "reversible: ${steps[*]}"; return 0; }
  for s in "${steps[@]}"; do
    # shellcheck disable=SC2086
    rel_manage "$code" migrate $s --noinput >/dev/null || { echo "migrate $s failed" >&2; return 1; }
    moved+="${moved:+, }$s"
  done
  echo "$moved"
}

rel_migrate() {
  local v="$1" meta
  rel_need_installed "$v" "release migrate"
  meta=$(rel_meta "$v")
  rel_migration_state "$v" | rel_meta_put "$v" migrations-before.tmp || die "release migrate: $v cannot read the database's migration state"
  if rel_manage "$v" migrate --check >/dev/null 2>&1; then
    rm -f "$meta/migrations-before.tmp"
    [ -e "$meta/migrations-after" ] || rel_migration_state "$v" | rel_meta_put "$v" migrations-after
    say "release migrate: $v has no migrations to apply"
    return 0
  fi
  mv "$meta/migrations-before.tmp" "$meta/migrations-before"
  local out
  if out=$(rel_manage "$v" migrate --noinput 2>&1); then
    rel_migration_state "$v" | rel_meta_put "$v" migrations-after
    rel_meta_put "$v" migrated-here </dev/null
    # Planned now, while nothing is on fire: a rollback reads the answer instead of asking Django.
    { rel_migrate_back "$v" "$meta/migrations-before" --check 2>&1 || true; } | rel_meta_put "$v" way-back
    rel_log migrate "$v" ok
    say "release migrate: $v applied its migrations"
    return 0
  fi
  local why back rc=0
  why=$(grep -v '^\s*$' <<<"$out" | tail -1)
  back=$(rel_migrate_back "$v" "$meta/migrations-before" 2>&1) || rc=$?
  rel_log migrate "$v" "failed: $why"
  if [ "$rc" -eq 0 ]; then
    die "release migrate: $v failed to migrate ($why); database moved back to where it was (${back})"
  fi
  die "release migrate: $v failed to migrate ($why) and could not be moved back (${back}); restore the pre-release backup: $(cat "$meta/pre-release-backup" 2>/dev/null || echo 'see nourishctl backups list')"
}

# The backup taken before release $1 changed the database is its way back: recorded the first
# time, and again only when its migrations were applied since (after a rollback reversed them).
# Re-deploying it without migrating keeps the key: a later backup holds its own schema.
# A pre-release backup key is what an operator is later told to restore: only a key that
# `nourishctl backup` could have written is recorded.
rel_check_backup_key() {
  [[ "$1" =~ $BK_KEY_RE ]] || die "$2: --pre-release-backup '$1' is not a backup key (dumps/daily/ or dumps/monthly/, then db_backup_YYYYMMDD_HHMMSS.dump); nothing changed"
}

rel_record_backup() {
  local file
  file="$(rel_meta "$1")/pre-release-backup"
  [ -n "$2" ] || return 0
  rel_check_backup_key "$2" release
  if [ ! -s "$file" ] || [ "$(rel_meta "$1")/migrated-here" -nt "$file" ]; then echo "$2" | rel_meta_put "$1" pre-release-backup; fi
}

rel_collectstatic() {
  local v="$1"
  rel_need_installed "$v" "release collectstatic"
  # Without --clear: the live release's hashed files stay until a later release is pruned.
  rel_manage "$v" collectstatic --noinput >/dev/null || die "release collectstatic: collectstatic failed for $v"
  say "release collectstatic: $v static files collected"
}

# --- serving ---------------------------------------------------------------------------------

# GET the health path from release $1's own socket until it answers 200 as that release.
rel_health_gate() {
  local v="$1" sock deadline code hdr
  sock=$(rel_socket "$v")
  deadline=$((SECONDS + ${HEALTH_TIMEOUT:-30}))
  while [ $SECONDS -lt $deadline ]; do
    svc_active "$(rel_unit "$v")" || { echo "its gunicorn exited" ; return 1; }
    if [ -S "$sock" ]; then
      hdr=$(curl -s -o /dev/null -D - --max-time 5 --unix-socket "$sock" -H "Host: ${DOMAIN:-localhost}" "http://localhost${HEALTH_PATH:-/health/}" 2>/dev/null || true)
      code=$(awk 'NR==1 { print $2 }' <<<"$hdr")
      if [ "$code" = 200 ]; then
        if grep -qi '^x-release:' <<<"$hdr" && ! grep -qi "^x-release: $v"$'\r'"\?$" <<<"$hdr"; then
          echo "the socket answers as another release"; return 1
        fi
        return 0
      fi
    fi
    sleep 0.2
  done
  echo "${HEALTH_PATH:-/health/} did not answer 200 within ${HEALTH_TIMEOUT:-30}s (last: ${code:-no answer})"
  return 1
}

# How this host's nginx is reached, as the load balancer (or a browser) reaches it.
rel_local_url() {
  if [ -n "${APP_LOCAL_URL:-}" ]; then echo "$APP_LOCAL_URL"
  elif [ "${TLS:-alb}" = nginx ]; then echo "https://127.0.0.1"
  else echo "http://127.0.0.1"; fi
}

# VERIFY_CHECKS consecutive 200s from the health path through nginx, answered by release $1.
rel_verify_through_nginx() {
  local v="$1" i hdr code url
  url="$(rel_local_url)${HEALTH_PATH:-/health/}"
  for ((i = 0; i < ${VERIFY_CHECKS:-5}; i++)); do
    hdr=$(curl -s -k -o /dev/null -D - --max-time 5 -H "Host: ${DOMAIN:-localhost}" -H "X-Forwarded-Proto: https" "$url" 2>/dev/null || true)
    code=$(awk 'NR==1 { print $2 }' <<<"$hdr")
    [ "$code" = 200 ] || { echo "$url answered ${code:-nothing} through nginx"; return 1; }
    if grep -qi '^x-release:' <<<"$hdr" && ! grep -qi "^x-release: $v"$'\r'"\?$" <<<"$hdr"; then
      echo "$url is answered by $(grep -i '^x-release:' <<<"$hdr" | tr -d '\r'), not $v"; return 1
    fi
    sleep 0.1
  done
}

# Points app.sock at release $1's socket in one rename(2), then `current` at its directory.
rel_publish() {
  local v="$1" sock
  sock=$(rel_socket "$v")
  [ -S "$sock" ] || die "release: $sock is not a listening socket"
  ln -f "$sock" "$RUN_DIR/.app.sock.new"
  mv -fT "$RUN_DIR/.app.sock.new" "$LIVE_SOCKET"
  ln -sfn "releases/$v" "$APP_ROOT/.current.new"
  mv -fT "$APP_ROOT/.current.new" "$CURRENT_LINK"
}

# Waits until release $1's listen queue is empty (nobody can reach it any more), then stops it.
rel_retire() {
  local v="$1" sock i q
  sock=$(rel_socket "$v")
  for ((i = 0; i < 50; i++)); do
    q=$(ss -xlnH 2>/dev/null | awk -v p="$sock" '$5 == p { print $3 }')
    [ "${q:-0}" = 0 ] && break
    sleep 0.1
  done
  # A connect() that resolved the old path just before the rename lands within microseconds.
  sleep 0.2
  svc_ctl stop "$(rel_unit "$v")"
  [ -z "$ROOT" ] && systemctl disable --quiet "$(rel_unit "$v")" 2>/dev/null
  return 0
}

rel_start() {
  local v="$1"
  mkdir -p "$RUN_DIR"
  svc_active "$(rel_unit "$v")" || svc_ctl start "$(rel_unit "$v")"
}

# The release a switch replaced stays up, unpublished, as a warm standby: rolling back to it is
# one health check and one rename(2), not a cold gunicorn start (seconds on a busy host). It
# takes no traffic (nothing reaches its socket but the health gate) and is not enabled at boot;
# every other release's gunicorn is retired.
rel_keep_standby() {
  local live="$1" standby="$2" sock v
  for sock in "$RUN_DIR"/app-*.sock; do
    [ -S "$sock" ] || continue
    v=${sock##*/app-}; v=${v%.sock}
    [ "$v" = "$live" ] || [ "$v" = "$standby" ] && continue
    [[ "$v" =~ $VERSION_RE ]] && svc_active "$(rel_unit "$v")" && rel_retire "$v"
  done
  [ -z "$ROOT" ] && [ -n "$standby" ] && systemctl disable --quiet "$(rel_unit "$standby")" 2>/dev/null
  return 0
}

# Starts release $1 and proves it healthy; a standby that fails the gate gets one fresh start
# (it may have idled through a database restart). Prints why when it is not healthy.
rel_start_healthy() {
  local v="$1" why
  if svc_active "$(rel_unit "$v")"; then
    why=$(rel_health_gate "$v") && return 0
    svc_ctl stop "$(rel_unit "$v")"
  fi
  rel_start "$v" || { echo "cannot start $(rel_unit "$v")"; return 1; }
  rel_health_gate "$v"
}

# Keeps KEEP_RELEASES releases (newest installs), never the live one or the one it came from.
rel_prune() {
  local keep="${KEEP_RELEASES:-5}" cur prev n=0 d v
  cur=$(rel_current)
  prev=$(cat "$(rel_meta "$cur")/previous" 2>/dev/null || true)
  while read -r d; do
    v=$(basename "$(dirname "$(dirname "$d")")")
    n=$((n + 1))
    [ "$n" -le "$keep" ] && continue
    [ "$v" = "$cur" ] || [ "$v" = "$prev" ] && continue
    svc_active "$(rel_unit "$v")" && continue
    rm -rf "$(rel_dir "$v")"
    say "release: pruned $v (keeping $keep)"
  done < <(ls -1t "$RELEASES_DIR"/*/.nourish/installed 2>/dev/null)
}

# The first release replaces the page `nourishctl setup` put up; an operator's flag stays.
rel_clear_first_release_page() {
  [ "$(cat "$MAINTENANCE_FLAG" 2>/dev/null)" = first-release ] && rm -f "$MAINTENANCE_FLAG"
  return 0
}

rel_switch() {
  local v="$1" backup="${2:-}" meta prev why
  rel_need_installed "$v" "release switch"
  meta=$(rel_meta "$v")
  prev=$(rel_current)
  rel_manage "$v" migrate --check >/dev/null 2>&1 || die "release switch: $v has unapplied migrations (nourishctl release migrate $v first)"
  rel_record_backup "$v" "$backup"
  if [ "$prev" = "$v" ] && svc_active "$(rel_unit "$v")" && [ "$LIVE_SOCKET" -ef "$(rel_socket "$v")" ]; then
    say "release switch: $v is already serving"
    return 0
  fi
  # Switching to a release that was live before the current one is a rollback (pulumi config set
  # release.version <previous>; pulumi up): code first, then its migrations reversed.
  if [ -n "$prev" ] && [ "$prev" != "$v" ] && [ -e "$meta/deployed" ] && [ "$meta/deployed" -ot "$(rel_meta "$prev")/deployed" ]; then
    say "release switch: $v was live before $prev: rolling back"
    cmd_rollback "$v"
    return 0
  fi
  local checks
  checks=$(rel_manage "$v" check --deploy 2>&1) || die "release switch: $v fails 'manage.py check --deploy': $(tail -1 <<<"$checks"); ${prev:-nothing} still serving"
  if ! why=$(rel_start_healthy "$v"); then
    svc_ctl stop "$(rel_unit "$v")"
    rel_log switch "$v" "refused: $why"
    die "release switch: $v failed its health gate ($why); ${prev:-nothing} still serving"
  fi
  [ -n "$prev" ] && [ "$prev" != "$v" ] && echo "$prev" | rel_meta_put "$v" previous
  local t0=$EPOCHREALTIME
  rel_publish "$v"
  rel_clear_first_release_page
  # Verified through nginx, then the smoke checks of the release itself (lib/smoke.sh): check
  # --deploy with warnings, its smoke command on the live database. Either failing rolls back.
  if ! { why=$(rel_verify_through_nginx "$v") && why=$(smoke_release_checks "$v"); }; then
    rel_log switch "$v" "failed verification: $why"
    if [ -n "$prev" ] && [ "$prev" != "$v" ] && svc_active "$(rel_unit "$prev")"; then
      rel_publish "$prev"
      local took
      took=$(rel_since "$t0")
      rel_retire "$v"
      local back rc=0
      back=$(rel_undo_migrations "$v" "$prev") || rc=$?
      rel_log rollback "$prev" "automatic, from $v; migrations: $back"
      die "release switch: $v failed verification after the switch ($why); rolled back in ${took}s to $prev (migrations: $back)"
    fi
    die "release switch: $v failed verification after the switch ($why); there is no previous release to go back to"
  fi
  [ "$prev" != "$v" ] && rel_keep_standby "$v" "$prev"
  [ -z "$ROOT" ] && systemctl enable --quiet "$(rel_unit "$v")"
  date -u +%FT%TZ | rel_meta_put "$v" deployed
  rel_log switch "$v" "from ${prev:-nothing}"
  rel_prune
  say "release switch: $v is serving (was ${prev:-nothing}; verified $(rel_since "$t0")s after the switch)"
}

rel_backup_of() {
  local key
  key=$(cat "$(rel_meta "$1")/pre-release-backup" 2>/dev/null) || key="(see nourishctl backups list)"
  # With a managed database the backup was taken, and is restored, on the first app host.
  local where="the db host"
  [ "$DB_MANAGED" = true ] && where="the first app host (managed database)"
  echo "$key (on $where: nourishctl restore --key $key --replace-live --yes)"
}

# Reverses the migrations release $1 applied, back to release $2's recorded state, when this
# host applied them. Prints what it did; returns 2 (and prints why) when they are irreversible.
# With --check it only says whether it could.
rel_undo_migrations() {
  local from="$1" to="$2" check="${3:-}" state out rc=0
  state="$(rel_meta "$to")/migrations-after"
  [ -e "$(rel_meta "$from")/migrated-here" ] || { echo "none (it applied none on this host)"; return 0; }
  [ -s "$state" ] || state="$(rel_meta "$from")/migrations-before"
  [ -s "$state" ] || { echo "none (no recorded state)"; return 0; }
  # Back to the state it came from: the plan recorded when it migrated answers --check at once.
  local cached
  cached="$(rel_meta "$from")/way-back"
  if [ -n "$check" ] && [ -s "$cached" ] && [ "$(cat "$state")" = "$(cat "$(rel_meta "$from")/migrations-before" 2>/dev/null)" ]; then
    out=$(cat "$cached")
    case "$out" in irreversible:*) rc=2 ;; esac
  else
    out=$(rel_migrate_back "$from" "$state" ${check:+"$check"} 2>&1) || rc=$?
  fi
  case "$rc" in
    0) if [ -n "$check" ]; then echo "$out"; else echo "reversed: $out"; fi ;;
    2)
      if [ -n "$check" ]; then echo "$out; the way back is the pre-release backup $(rel_backup_of "$from")"
      else echo "kept, $out; $to runs on $from's schema; to undo it restore the pre-release backup $(rel_backup_of "$from")"; fi
      return 2 ;;
    *) echo "could not reverse: $out"; return 1 ;;
  esac
}

cmd_release() {
  case "${1:-}" in
    ""|--help|-h)
      help_release
      [ -n "${1:-}" ] && return 0; exit 2 ;;
    list)
      local cur d v
      cur=$(rel_current)
      for d in "$RELEASES_DIR"/*/.nourish/installed; do
        [ -e "$d" ] || continue
        v=$(basename "$(dirname "$(dirname "$d")")")
        printf '%s %-12s installed %s%s\n' "$([ "$v" = "$cur" ] && echo '*' || echo ' ')" "$v" "$(cat "$d")" \
          "$([ -e "$(rel_meta "$v")/deployed" ] && echo ", deployed $(cat "$(rel_meta "$v")/deployed")")"
      done
      return 0 ;;
    publish)
      # Called by the unit after start: only the live release publishes its socket.
      [ "$(rel_current)" = "${2:-}" ] && rel_publish "$2"
      return 0 ;;
    fetch|migrate|collectstatic|switch|verify)
      local step="$1" v="${2:-}"
      [ -n "$v" ] || die "release $step: which version?"
      rel_check_version "$v" "release $step"
      shift 2
      rel_lock "release $step $v"
      case "$step" in
        fetch) rel_fetch "$v" "$@" ;;
        migrate) rel_migrate "$v" ;;
        collectstatic) rel_collectstatic "$v" ;;
        switch)
          local backup=""
          [ "${1:-}" = --pre-release-backup ] && backup="${2:?--pre-release-backup needs a key}"
          [ -z "$backup" ] || rel_check_backup_key "$backup" "release switch"
          rel_switch "$v" "$backup" ;;
        verify)
          [ "$(rel_current)" = "$v" ] || die "release verify: $v is not the live release ($(rel_current || true) is)"
          local why
          why=$(rel_verify_through_nginx "$v") || die "release verify: $why"
          # The time is part of the contract: the stack exports it (releaseVerified) and promotion reads it.
          say "release verify: $v answers through nginx at $(date -u +%Y-%m-%dT%H:%M:%SZ)" ;;
      esac
      return 0 ;;
  esac
  local v="$1" backup="" a
  shift
  rel_check_version "$v" release
  local args=("$@")
  for ((a = 0; a < ${#args[@]}; a++)); do
    [ "${args[a]}" = --pre-release-backup ] && backup="${args[a + 1]:-}"
  done
  [ -z "$backup" ] || rel_check_backup_key "$backup" release
  rel_lock "release $v"
  rel_fetch "$v" "$@"
  rel_record_backup "$v" "$backup"
  rel_migrate "$v"
  rel_collectstatic "$v"
  rel_switch "$v" "$backup"
}

cmd_rollback() {
  if [ "${1:-}" = --help ]; then help_rollback; return 0; fi
  local target="" restored="" keep=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --database-restored) restored=1; shift ;;
      --keep-schema) keep=1; shift ;;
      -*) die "rollback: unknown option '$1'" ;;
      *) target="$1"; shift ;;
    esac
  done
  rel_lock rollback
  local cur why t0=$EPOCHREALTIME
  cur=$(rel_current)
  [ -n "$cur" ] || die "rollback: no release is live yet"
  if [ -z "$target" ]; then
    target=$(cat "$(rel_meta "$cur")/previous" 2>/dev/null) || die "rollback: $cur has no recorded previous release; name one (nourishctl release list)"
  fi
  rel_check_version "$target" rollback
  [ "$target" != "$cur" ] || die "rollback: $target is already the live release"
  rel_need_installed "$target" rollback
  if [ -n "$restored" ]; then
    rel_manage "$target" migrate --check >/dev/null 2>&1 || die "rollback: the database does not match $target's migrations; was the pre-release backup restored?"
  elif [ -z "$keep" ]; then
    local plan rc=0
    plan=$(rel_undo_migrations "$cur" "$target" --check) || rc=$?
    if [ "$rc" -eq 2 ]; then
      rel_log rollback "$target" "refused: $plan"
      echo "nourishctl: rollback: refused, nothing changed ($cur still serving): $plan, then 'nourishctl rollback $target --database-restored'; or --keep-schema to run $target on $cur's schema" >&2
      exit 3
    fi
    [ "$rc" -eq 0 ] || die "rollback: cannot plan reversing $cur's migrations: $plan"
  fi
  if ! why=$(rel_start_healthy "$target"); then
    svc_ctl stop "$(rel_unit "$target")"
    die "rollback: $target failed its health gate ($why); $cur still serving"
  fi
  rel_publish "$target"
  # Serving again from here on; stopping the failed release and its schema come after.
  local switched back rc=0
  switched=$(rel_since "$t0")
  rel_keep_standby "$target" ""
  if [ -n "$restored" ]; then back="none (database restored from the pre-release backup)"
  elif [ -n "$keep" ]; then back="kept $cur's schema (--keep-schema)"
  else back=$(rel_undo_migrations "$cur" "$target") || rc=$?; fi
  [ -z "$ROOT" ] && systemctl enable --quiet "$(rel_unit "$target")"
  rel_log rollback "$target" "from $cur; migrations: $back"
  say "rollback: $target is serving (was $cur; serving again ${switched}s after the rollback started, done in $(rel_since "$t0")s); migrations: $back"
  [ "$rc" -eq 0 ] || die "rollback: code is back on $target but $cur's migrations were not reversed: $back"
}

html_escape() { printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' -e "s/'/\&#39;/g"; }

# Rewrite the page's notice line (the one renderMaintenancePage starts with <!--notice-->) with
# $1 as its HTML (empty: no notice); atomically, so nginx never serves half a page.
maintenance_notice() {
  local html=$1 tmp
  if ! grep -q '^<!--notice-->' "$MAINTENANCE_PAGE" 2>/dev/null; then
    [ -z "$html" ] || die "maintenance on: $MAINTENANCE_PAGE has no notice line (deploy the stack to update the page); nothing changed"
    return 0
  fi
  tmp=$(mktemp "$MAINTENANCE_PAGE.XXXXXX")
  NOTICE_HTML="$html" awk '/^<!--notice-->/ { print "<!--notice-->" ENVIRON["NOTICE_HTML"] "<!--/notice-->"; next } { print }' \
    "$MAINTENANCE_PAGE" > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$MAINTENANCE_PAGE"
}

cmd_maintenance() {
  local action="${1:-}" message="" until="" notice="" note=""
  [ $# -gt 0 ] && shift
  if [ "$action" = on ]; then
    while [ $# -gt 0 ]; do
      case "$1" in
        --message) [ $# -ge 2 ] || die "maintenance on: --message needs a text"; message=$2; shift 2 ;;
        --until) [ $# -ge 2 ] || die "maintenance on: --until needs HH:MM"; until=$2; shift 2 ;;
        *) die "maintenance on: unknown option '${1//[^[:print:]]/?}' (see --help)" ;;
      esac
    done
    [[ "$message" != *[![:print:]]* ]] || die "maintenance on: --message must be one line of printable text"
    [ ${#message} -le 500 ] || die "maintenance on: --message is ${#message} characters; at most 500"
    [ -z "$until" ] || [[ "$until" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] \
      || die "maintenance on: --until '${until//[^[:print:]]/?}' is not HH:MM (24-hour, e.g. 14:30)"
    [ -z "$message" ] || { notice+="<p class=\"notice\">$(html_escape "$message")</p>"; note+="; message: $message"; }
    [ -z "$until" ] || { notice+="<p class=\"notice\">Expected back by $until $(date +%Z).</p>"; note+="; until $until $(date +%Z)"; }
  elif [ $# -gt 0 ] && [ "$action" != --help ]; then
    die "maintenance $action: takes no options (--message and --until are for 'on')"
  fi
  case "$action" in
    on)
      mkdir -p "$(dirname "$MAINTENANCE_FLAG")"
      maintenance_notice "$notice"
      echo "on by $(caller_name) at $(date -u +%FT%TZ)$note" > "$MAINTENANCE_FLAG"
      say "maintenance: on; nginx serves the maintenance page (503, Retry-After) until 'nourishctl maintenance off'" ;;
    off)
      rm -f "$MAINTENANCE_FLAG"
      maintenance_notice ""
      say "maintenance: off; the site is served by $(rel_current || true)" ;;
    status)
      if [ -e "$MAINTENANCE_FLAG" ]; then say "maintenance: $(cat "$MAINTENANCE_FLAG")"; else say "maintenance: off"; fi ;;
    --help)
      help_maintenance ;;
    *) die "maintenance: say on, off or status" ;;
  esac
}
