# shellcheck shell=bash
# nourishctl-roles: db
# Sourced by nourishctl, which provides die, say, pg_admin, metric and the host.env values.
#
# The manual's weekly VACUUM ANALYZE and monthly "VACUUM FULL; REINDEX; ANALYZE". VACUUM FULL
# rewrites every table under an exclusive lock, so orders would stop while it runs; autovacuum
# plus a weekly VACUUM ANALYZE keeps bloat down without that, and REINDEX CONCURRENTLY rebuilds
# indexes without blocking writes.

VERBS+=("maintain|scheduled|'maintain vacuum' (weekly), 'maintain reindex' (monthly)")
help_maintain() {
  cat <<EOF
nourishctl maintain - database maintenance (its timers run it)

usage: nourishctl maintain vacuum|reindex

  vacuum   VACUUM (ANALYZE) the database ${DB_NAME:-dusangire} (weekly)
  reindex  REINDEX DATABASE CONCURRENTLY, then ANALYZE (monthly; never VACUUM FULL: it locks out orders)
Waits up to DB_LOCK_WAIT_SECONDS (900) while a restore or recovery holds the database lock.
EOF
}

cmd_maintain() {
  local what="${1:-}"
  case "$what" in
    --help|"")
      help_maintain
      [ -n "$what" ] && return 0
      die "maintain: say vacuum or reindex"
      ;;
    vacuum)
      host_env_need DB_NAME
      db_lock "maintain vacuum" shared
      pg_admin vacuumdb --analyze --quiet --dbname "$DB_NAME" || die "maintain vacuum: vacuumdb failed on $DB_NAME"
      metric MaintenanceVacuumSuccess 1
      say "maintain vacuum: VACUUM ANALYZE done on $DB_NAME"
      ;;
    reindex)
      host_env_need DB_NAME
      db_lock "maintain reindex" shared
      pg_admin reindexdb --concurrently --quiet --dbname "$DB_NAME" || die "maintain reindex: reindexdb failed on $DB_NAME"
      pg_admin vacuumdb --analyze-only --quiet --dbname "$DB_NAME" || die "maintain reindex: ANALYZE failed on $DB_NAME"
      metric MaintenanceReindexSuccess 1
      say "maintain reindex: REINDEX CONCURRENTLY and ANALYZE done on $DB_NAME"
      ;;
    *) die "maintain: unknown task '$what' (vacuum or reindex)" ;;
  esac
}
