# shellcheck shell=bash
# nourishctl-roles: app
# Sourced by nourishctl, which provides die, say, pg_remote_load and the host.env values.
#
# A managed database (RDS) has its own master user (database.masterUser), whose password RDS keeps
# in Secrets Manager (DB_MASTER_SECRET_ARN in host.env). The app connects as database.user, a role
# with least privilege: LOGIN, CREATEDB (restore builds the new database beside the live one), no
# superuser, no CREATEROLE, owner of the app's database and of what is in it. `create-app-role`
# makes it so from the first app host (the Release's step before the backup), as the master user,
# over TLS; it is idempotent. The app's password is the one app.env holds (from SSM): the server
# only ever receives its SCRAM verifier, computed here, so no statement carries the password.

VERBS+=("create-app-role|internal|managed database: create or update the app's database role (the Release runs it)")
help_create_app_role() {
  cat <<EOF
nourishctl create-app-role - managed database: the app's database role

usage: nourishctl create-app-role

  Managed database only (DB_MANAGED=true): as RDS's master user (its password from Secrets Manager,
  DB_MASTER_SECRET_ARN) over TLS, creates or updates the role \$DB_USER: LOGIN, CREATEDB, no
  superuser, no CREATEROLE, the password app.env holds (sent as a SCRAM verifier); makes it the
  owner of database \$DB_NAME and of the tables, sequences, views, functions, types and schemas the
  master user owns there. Safe to re-run; run by the Release before the pre-release backup.

Options: none.
EOF
}

# The master user and password from Secrets Manager, as two NUL-ended fields on stdout.
rds_master_credentials() {
  local json
  if [ -n "${SECRETS_ENDPOINT:-}" ]; then
    json=$(aws --endpoint-url "$SECRETS_ENDPOINT" secretsmanager get-secret-value --region "$REGION" --secret-id "$DB_MASTER_SECRET_ARN" --query SecretString --output text) || return 1
  else
    json=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$DB_MASTER_SECRET_ARN" --query SecretString --output text) || return 1
  fi
  # RDS's managed secret is {"username": ..., "password": ...}.
  printf '%s' "$json" | /usr/bin/python3 -I -S -c '
import json, sys
try:
    s = json.loads(sys.stdin.read())
    u, p = s["username"], s["password"]
except (ValueError, KeyError, TypeError):
    sys.exit("not a JSON object with username and password")
sys.stdout.write(u + "\0" + p + "\0")'
}

# A SCRAM-SHA-256 verifier of the password on stdin (RFC 5803, PostgreSQL's format, 4096 rounds).
rds_scram_verifier() {
  # shellcheck disable=SC2016  # Python, not shell: $ is SCRAM's separator.
  /usr/bin/python3 -I -S -c '
import base64, hashlib, hmac, os, sys
pw = sys.stdin.buffer.read()
salt = os.urandom(16)
salted = hashlib.pbkdf2_hmac("sha256", pw, salt, 4096)
client = hmac.new(salted, b"Client Key", "sha256").digest()
server = hmac.new(salted, b"Server Key", "sha256").digest()
b = lambda x: base64.b64encode(x).decode()
print(f"SCRAM-SHA-256$4096:{b(salt)}${b(hashlib.sha256(client).digest())}:{b(server)}")'
}

cmd_create_app_role() {
  if [ "${1:-}" = "--help" ]; then help_create_app_role; return 0; fi
  [ $# -eq 0 ] || die "create-app-role: unexpected argument '$1'"
  [ "$DB_MANAGED" = true ] || die "create-app-role: only with a managed database (DB_MANAGED=true in $HOST_ENV); a database host's setup creates the role itself"
  [ -n "${DB_MASTER_SECRET_ARN:-}" ] || die "create-app-role: DB_MASTER_SECRET_ARN is not set in $HOST_ENV"
  host_env_need DB_NAME DB_USER
  local db="$DB_NAME" user="$DB_USER" fields master mpw verifier
  pg_remote_load
  [ "$PGR_DATABASE_USER" = "$user" ] || die "create-app-role: DATABASE_USER in $APP_ENV ($PGR_DATABASE_USER) is not DB_USER ($user); run nourishctl setup app-env"
  mapfile -d '' -t fields < <(rds_master_credentials) || true
  [ "${#fields[@]}" -eq 2 ] || die "create-app-role: cannot read the master user's secret $DB_MASTER_SECRET_ARN from Secrets Manager"
  master="${fields[0]}" mpw="${fields[1]}"
  [ "$master" != "$user" ] || die "create-app-role: the master user is $user itself (database.masterUser must differ from database.user)"
  verifier=$(printf '%s' "$PGR_DATABASE_PASSWORD" | rds_scram_verifier) || die "create-app-role: cannot compute the password's SCRAM verifier"
  # The master's password reaches libpq in its environment only; the role's as a verifier.
  PGHOST="$PGR_DATABASE_HOST" PGPORT="${PGR_DATABASE_PORT:-${PGPORT:-5432}}" PGUSER="$master" PGPASSWORD="$mpw" \
    PGSSLMODE="$PGR_DATABASE_SSLMODE" PGCHANNELBINDING="$PGR_PGCHANNELBINDING" PGCONNECT_TIMEOUT=15 PGAPPNAME=nourishctl \
    psql -X -q -v ON_ERROR_STOP=1 -v user="$user" -v db="$db" -v verifier="$verifier" -d "$db" >/dev/null <<'SQL' || die "create-app-role: as master user $master on $PGR_DATABASE_HOST: the statements above failed; nothing is half-done (one transaction)"
BEGIN;
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user')\gexec
SELECT format('ALTER ROLE %I WITH LOGIN CREATEDB NOCREATEROLE PASSWORD %L', :'user', :'verifier')\gexec
-- The master may hand the database to the role only as a member of it (PostgreSQL 15's rule).
SELECT format('GRANT %I TO %I', :'user', current_user) WHERE NOT pg_has_role(current_user, :'user', 'MEMBER')\gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'user')\gexec
-- What the master created in the app's database (an instance whose app connected as the master).
SELECT format('ALTER SCHEMA %I OWNER TO %I', nspname, :'user') FROM pg_namespace
  WHERE nspowner = current_user::regrole AND nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'\gexec
SELECT format('ALTER %s %I.%I OWNER TO %I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname, :'user')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relowner = current_user::regrole AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f') AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
    AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))\gexec
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'user') FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE p.proowner = current_user::regrole AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'\gexec
SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, :'user') FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE t.typowner = current_user::regrole AND t.typtype IN ('e', 'd', 'c', 'r') AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'\gexec
COMMIT;
SQL
  say "create-app-role: $user is a LOGIN CREATEDB role without superuser or CREATEROLE and owns database $db (as master user $master)"
}
