# shellcheck shell=bash
# nourishctl-roles: db
# Sourced by nourishctl, which provides die, say, pg_admin, metric and the host.env values.
#
# The manual's weekly VACUUM ANALYZE and monthly "VACUUM FULL; REINDEX; ANALYZE". VACUUM FULL
# rewrites every table under an exclusive lock, so orders would stop while it runs; autovacuum
# plus a weekly VACUUM ANALYZE keeps bloat down without that, and REINDEX CONCURRENTLY rebuilds
# indexes without blocking writes.

VERBS+=("maintain|database maintenance: 'maintain vacuum' (weekly), 'maintain reindex' (monthly)")

cmd_maintain() {
  local what="${1:-}"
  case "$what" in
    --help|"")
      echo "usage: nourishctl maintain vacuum|reindex"
      echo "  vacuum   VACUUM (ANALYZE) the database ${DB_NAME:-dusangire}"
      echo "  reindex  REINDEX DATABASE CONCURRENTLY, then ANALYZE (never VACUUM FULL: it locks out orders)"
      [ -n "$what" ] && return 0
      die "maintain: say vacuum or reindex"
      ;;
    vacuum)
      db_lock "maintain vacuum" shared
      pg_admin vacuumdb --analyze --quiet --dbname "$DB_NAME" || die "maintain vacuum: vacuumdb failed on $DB_NAME"
      metric MaintenanceVacuumSuccess 1
      say "maintain vacuum: VACUUM ANALYZE done on $DB_NAME"
      ;;
    reindex)
      db_lock "maintain reindex" shared
      pg_admin reindexdb --concurrently --quiet --dbname "$DB_NAME" || die "maintain reindex: reindexdb failed on $DB_NAME"
      pg_admin vacuumdb --analyze-only --quiet --dbname "$DB_NAME" || die "maintain reindex: ANALYZE failed on $DB_NAME"
      metric MaintenanceReindexSuccess 1
      say "maintain reindex: REINDEX CONCURRENTLY and ANALYZE done on $DB_NAME"
      ;;
    *) die "maintain: unknown task '$what' (vacuum or reindex)" ;;
  esac
}
