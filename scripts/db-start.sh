#!/usr/bin/env bash
# Start a real PostgreSQL 15 + pgvector 0.8.0 primary and a streaming read replica on 127.0.0.1
# for this project's tests, and write their URLs to an env file (default /tmp/bge-m3-rag-db.env):
#   export BGE_M3_RAG_PG_URL=postgres://bge_m3_rag:…@127.0.0.1:54329/bge_m3_rag
#   export BGE_M3_RAG_PG_REPLICA_URL=postgres://bge_m3_rag:…@127.0.0.1:54330/bge_m3_rag
#
# Idempotent: every step checks first and does only what is missing, so a second run just
# verifies (a few seconds). Used by .ci/run and by `npm run db:start`; `npm run db:stop`
# (scripts/db-stop.sh) stops the servers, `db-stop.sh --drop` removes them.
#
# What it does, one line per step with its time:
#   1. apt packages postgresql-15, postgresql-server-dev-15, build-essential (only if missing;
#      `apt-get update` at most once).
#   2. pgvector 0.8.0 built from Debian trixie's `pgvector` source package (bookworm has no
#      pgvector package) using a separate apt state dir, so the system's apt sources are not
#      changed; the mirror is the one apt already uses for bookworm/main. Skipped when
#      vector.control for PostgreSQL 15 already says 0.8.0.
#   3. primary cluster 15/bgem3primary on 127.0.0.1:54329 (wal_level=replica, replication
#      allowed from 127.0.0.1 with a password), role + database bge_m3_rag (the role owns the
#      database, is not a superuser, may CREATEDB), `CREATE EXTENSION vector` run by the
#      superuser in that database only. vector is not a trusted extension: the app role may run
#      `CREATE EXTENSION IF NOT EXISTS vector` there (a no-op), but cannot create it in a
#      database of its own.
#   4. replica cluster 15/bgem3replica on 127.0.0.1:54330: `pg_basebackup -R` from the primary
#      with a physical replication slot, started as a read-only hot standby.
#   5. checks: a row written on the primary is read back on the replica; the app role sees
#      vector 0.8.0 on both and may re-run `CREATE EXTENSION IF NOT EXISTS vector`; a write on
#      the replica fails as read-only.
# The default cluster 15/main (port 5432) is never used or modified.
set -Eeuo pipefail

cd "$(dirname "$0")"
SCRIPT_DIR=$(pwd)
# shellcheck source=scripts/db-common.sh
. "$SCRIPT_DIR/db-common.sh"
db_require_root "$@"

export DEBIAN_FRONTEND=noninteractive
LOG=${TMPDIR:-/tmp}/bge-m3-rag-db-start.log
exec 3>&2 # the caller's stderr, for messages while a step's output goes to $LOG

T0=$EPOCHREALTIME
CURRENT_STEP=setup
STEP_NOTE=
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "db-start: $*"; }
die() {
  echo "db-start: ERROR in step '$CURRENT_STEP': $*" >&3
  exit 1
}
CLEANUP_DIRS=()
on_exit() {
  local rc=$?
  if [ "${#CLEANUP_DIRS[@]}" -gt 0 ]; then rm -rf "${CLEANUP_DIRS[@]}"; fi
  if [ "$rc" -ne 0 ]; then
    {
      echo "db-start: FAILED in step '$CURRENT_STEP' (exit $rc) after $(elapsed "$T0")s."
      if [ -s "$LOG" ]; then
        echo "db-start: last lines of $LOG:"
        tail -n 40 "$LOG" | sed 's/^/  | /'
      fi
      case $CURRENT_STEP in
        primary | replica | *check)
          local c f
          for c in "$PRIMARY_CLUSTER" "$REPLICA_CLUSTER"; do
            f=/var/log/postgresql/postgresql-$PG_MAJOR-$c.log
            if [ -s "$f" ]; then
              echo "db-start: last lines of $f:"
              tail -n 10 "$f" | sed 's/^/  | /'
            fi
          done
          ;;
      esac
    } >&3
  fi
}
trap on_exit EXIT

# step NAME FUNCTION: run FUNCTION with its output in $LOG, print one line with its time.
step() {
  CURRENT_STEP=$1
  STEP_NOTE=
  local t=$EPOCHREALTIME
  echo "=== $1" >>"$LOG"
  "$2" >>"$LOG" 2>&1
  say "$(printf '%-22s %6ss  %s' "$1" "$(elapsed "$t")" "$STEP_NOTE")"
}

if ! [[ $APP_PASSWORD =~ ^[A-Za-z0-9._~-]+$ ]]; then
  die "BGE_M3_RAG_PG_PASSWORD may only contain A-Z a-z 0-9 . _ ~ - (it goes into a URL unescaped)"
fi

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    apt-get update -qq || die "apt-get update failed (see $LOG)"
    APT_UPDATED=1
  fi
}

# ---------------------------------------------------------------------------------------------
PACKAGES=("postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" build-essential)
install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    STEP_NOTE="already installed (${PACKAGES[*]})"
    return
  fi
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    die "apt-get install ${missing[*]} failed (see $LOG)"
  [ -x "$PG_BIN/postgres" ] || die "$PG_BIN/postgres missing after installing postgresql-$PG_MAJOR"
  STEP_NOTE="installed ${missing[*]}"
}

# ---------------------------------------------------------------------------------------------
EXT_DIR=/usr/share/postgresql/$PG_MAJOR/extension
pgvector_installed() {
  grep -Eq "^default_version = '${PGVECTOR_VERSION//./\\.}'" "$EXT_DIR/vector.control" 2>/dev/null &&
    [ -f "$("$PG_BIN/pg_config" --pkglibdir)/vector.so" ]
}

debian_mirror() {
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "cannot read VERSION_CODENAME from /etc/os-release"
  apt-cache policy | awk -v want="$codename/main" '$3 == want && $2 ~ /^https?:/ {print $2; exit}'
}

build_pgvector() {
  if pgvector_installed; then
    STEP_NOTE="pgvector $PGVECTOR_VERSION already installed"
    return
  fi
  local mirror work
  mirror=$(debian_mirror)
  if [ -z "$mirror" ]; then
    apt_update_once
    mirror=$(debian_mirror)
  fi
  [ -n "$mirror" ] || die "could not find this system's Debian mirror (the <codename>/main line of 'apt-cache policy')"
  work=$(mktemp -d "${TMPDIR:-/tmp}/bge-m3-rag-pgvector.XXXXXX")
  CLEANUP_DIRS+=("$work") # removed however the script ends
  chmod 755 "$work"
  mkdir -p "$work/lists/partial" "$work/src"
  # Let apt's unprivileged download user write there (avoids the "_apt sandbox" warning).
  if id _apt >/dev/null 2>&1; then chown _apt "$work/lists/partial" "$work/src"; fi
  echo "deb-src $mirror trixie main" >"$work/sources.list"
  # A separate sources list and state dir: the system's apt configuration is not changed.
  local apt=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$work/lists")
  apt-get "${apt[@]}" update -qq || die "apt-get update of the trixie source index failed (see $LOG)"
  local version
  version=$(apt-cache "${apt[@]}" showsrc pgvector | awk '$1 == "Version:" {print $2}' |
    grep -E "^${PGVECTOR_VERSION//./\\.}-" | head -n1 || true)
  [ -n "$version" ] || die "Debian trixie has no pgvector $PGVECTOR_VERSION source package"
  (cd "$work/src" && apt-get "${apt[@]}" source --download-only "pgvector=$version") ||
    die "apt-get source pgvector=$version failed (see $LOG)"
  tar -C "$work/src" -xzf "$work/src/pgvector_${PGVECTOR_VERSION}.orig.tar.gz"
  local srcdir="$work/src/pgvector-$PGVECTOR_VERSION"
  grep -q "^default_version = '$PGVECTOR_VERSION'" "$srcdir/vector.control" ||
    die "the pgvector source is not version $PGVECTOR_VERSION"
  # OPTFLAGS="" drops pgvector's -march=native (the build must run on any x86-64 CPU).
  make -C "$srcdir" -j"$(nproc)" PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS="" ||
    die "building pgvector failed (see $LOG)"
  make -C "$srcdir" PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS="" install ||
    die "installing pgvector failed (see $LOG)"
  pgvector_installed || die "pgvector $PGVECTOR_VERSION is not in $EXT_DIR after make install"
  STEP_NOTE="built and installed pgvector $PGVECTOR_VERSION (Debian source $version)"
}

# ---------------------------------------------------------------------------------------------
write_hba() { # $1 = cluster
  cat >"/etc/postgresql/$PG_MAJOR/$1/pg_hba.conf" <<EOF
# Written by bge-m3-rag scripts/db-start.sh (rewritten on every run).
# TYPE  DATABASE     USER                ADDRESS         METHOD
local   all          postgres                            peer
local   all          all                                 peer
host    all          all                 127.0.0.1/32    scram-sha-256
host    replication  $REPL_ROLE   127.0.0.1/32    scram-sha-256
EOF
  chown postgres:postgres "/etc/postgresql/$PG_MAJOR/$1/pg_hba.conf"
  chmod 640 "/etc/postgresql/$PG_MAJOR/$1/pg_hba.conf"
}

write_conf() { # $1 = cluster, $2 = port
  pg_conftool -s "$PG_MAJOR" "$1" set port "$2"
  mkdir -p "/etc/postgresql/$PG_MAJOR/$1/conf.d"
  cat >"/etc/postgresql/$PG_MAJOR/$1/conf.d/bge-m3-rag.conf" <<EOF
# Written by bge-m3-rag scripts/db-start.sh (rewritten on every run).
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
EOF
  chown -R postgres:postgres "/etc/postgresql/$PG_MAJOR/$1/conf.d"
}

create_cluster() { # $1 = cluster, $2 = port
  # --start-conf=manual: started by this script, not at boot. C.UTF-8 whatever the caller's locale.
  pg_createcluster "$PG_MAJOR" "$1" -p "$2" --start-conf=manual --locale=C.UTF-8 -e UTF8 ||
    die "pg_createcluster $PG_MAJOR $1 failed (see $LOG)"
}

# Run a command that leaves a server running with every file descriptor above 2 closed: a
# daemon holding the lock (fd 9), the caller's stderr (fd 3) or a pipe of whoever ran this script
# would block the next run's lock or keep a CI log pipe open.
detached() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec "$@"
  )
}

start_cluster() { # $1 = cluster
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  detached pg_ctlcluster "$PG_MAJOR" "$1" start
}

wait_ready() { # $1 = port
  local i
  for i in $(seq 1 100); do
    as_postgres "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" && return 0
    sleep 0.1
  done
  return 1
}

# Start the cluster, or apply changed settings to a running one (restart only if needed).
# Sets CLUSTER_STATE; returns non-zero (without exiting) if the cluster does not come up.
CLUSTER_STATE=
start_or_reload() { # $1 = cluster, $2 = port
  if ! cluster_running "$1"; then
    start_cluster "$1" || return 1
    CLUSTER_STATE=started
  else
    pg_ctlcluster "$PG_MAJOR" "$1" reload || return 1
    sleep 0.2
    local pending
    pending=$(as_postgres psql -X -At -p "$2" -d postgres -c "SELECT count(*) FROM pg_settings WHERE pending_restart" || echo 1)
    if [ "$pending" != 0 ]; then
      detached pg_ctlcluster "$PG_MAJOR" "$1" restart -m fast || return 1
      CLUSTER_STATE=restarted
    else
      CLUSTER_STATE="already running"
    fi
  fi
  wait_ready "$2"
}

psql_primary() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PRIMARY_PORT" "$@"; }

primary_cluster() {
  local note=""
  if ! cluster_exists "$PRIMARY_CLUSTER"; then
    create_cluster "$PRIMARY_CLUSTER" "$PRIMARY_PORT"
    note="created, "
  fi
  write_conf "$PRIMARY_CLUSTER" "$PRIMARY_PORT"
  write_hba "$PRIMARY_CLUSTER"
  start_or_reload "$PRIMARY_CLUSTER" "$PRIMARY_PORT" ||
    die "primary cluster $PG_MAJOR/$PRIMARY_CLUSTER does not start or accept connections on 127.0.0.1:$PRIMARY_PORT"
  # Roles, database and extension; every statement is safe to repeat.
  psql_primary -d postgres -v app="$APP_ROLE" -v db="$APP_DB" -v repl="$REPL_ROLE" -v pw="$APP_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'app') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'pw';
SELECT format('CREATE ROLE %I LOGIN REPLICATION', :'repl') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'repl') \gexec
ALTER ROLE :"repl" WITH LOGIN NOSUPERUSER REPLICATION PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0 ENCODING ''UTF8'' LOCALE ''C.UTF-8''', :'db', :'app')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"app";
SQL
  # Only in the app database: a database the app role creates itself starts without vector (tests
  # rely on that), and the role, not being a superuser, cannot create it there (vector is not a
  # trusted extension).
  psql_primary -d "$APP_DB" -c "CREATE EXTENSION IF NOT EXISTS vector" -c "ALTER EXTENSION vector UPDATE" ||
    die "CREATE EXTENSION vector failed in database $APP_DB"
  STEP_NOTE="${note}${CLUSTER_STATE} on 127.0.0.1:$PRIMARY_PORT, database $APP_DB owned by role $APP_ROLE"
}

# ---------------------------------------------------------------------------------------------
REPLICA_DATA=/var/lib/postgresql/$PG_MAJOR/$REPLICA_CLUSTER
system_id() { "$PG_BIN/pg_controldata" "$1" 2>/dev/null | awk -F': *' '/^Database system identifier/ {print $2}'; }

replica_is_current() {
  cluster_exists "$REPLICA_CLUSTER" || return 1
  [ -f "$REPLICA_DATA/standby.signal" ] || return 1
  local p r
  p=$(system_id "/var/lib/postgresql/$PG_MAJOR/$PRIMARY_CLUSTER")
  r=$(system_id "$REPLICA_DATA")
  [ -n "$p" ] && [ "$p" = "$r" ]
}

rebuild_replica() {
  if cluster_exists "$REPLICA_CLUSTER"; then
    pg_ctlcluster "$PG_MAJOR" "$REPLICA_CLUSTER" stop -m immediate 2>/dev/null || true
  else
    create_cluster "$REPLICA_CLUSTER" "$REPLICA_PORT"
  fi
  write_conf "$REPLICA_CLUSTER" "$REPLICA_PORT"
  write_hba "$REPLICA_CLUSTER"
  # A stale slot (from an earlier replica) would hold WAL and block `pg_basebackup -C`.
  psql_primary -d postgres -At -v slot="$REPL_SLOT" >/dev/null <<'SQL'
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = :'slot' AND NOT active;
SQL
  find "$REPLICA_DATA" -mindepth 1 -delete
  as_postgres env PGPASSWORD="$APP_PASSWORD" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" \
    -U "$REPL_ROLE" -D "$REPLICA_DATA" -R -X stream -c fast -C -S "$REPL_SLOT" ||
    die "pg_basebackup from 127.0.0.1:$PRIMARY_PORT failed (see $LOG)"
  [ -f "$REPLICA_DATA/standby.signal" ] || die "pg_basebackup -R wrote no standby.signal"
}

replica_cluster() {
  local note=""
  if ! replica_is_current; then
    rebuild_replica
    note="pg_basebackup done, "
  else
    write_conf "$REPLICA_CLUSTER" "$REPLICA_PORT"
    write_hba "$REPLICA_CLUSTER"
  fi
  if ! start_or_reload "$REPLICA_CLUSTER" "$REPLICA_PORT"; then
    # E.g. the WAL it needs is gone: take a fresh base backup, once.
    [ -z "$note" ] || die "replica cluster $PG_MAJOR/$REPLICA_CLUSTER does not start or accept connections on 127.0.0.1:$REPLICA_PORT"
    rebuild_replica
    note="pg_basebackup redone, "
    start_or_reload "$REPLICA_CLUSTER" "$REPLICA_PORT" ||
      die "replica cluster $PG_MAJOR/$REPLICA_CLUSTER does not start or accept connections on 127.0.0.1:$REPLICA_PORT"
  fi
  [ "$(as_postgres psql -X -At -p "$REPLICA_PORT" -d postgres -c 'SELECT pg_is_in_recovery()')" = t ] ||
    die "the cluster on port $REPLICA_PORT is not a standby"
  STEP_NOTE="${note}${CLUSTER_STATE} on 127.0.0.1:$REPLICA_PORT as hot standby of :$PRIMARY_PORT"
}

# ---------------------------------------------------------------------------------------------
check_replication() {
  local token t i got=""
  token="$$-$RANDOM-$EPOCHREALTIME"
  t=$EPOCHREALTIME
  # In the postgres database, so the app database stays empty for the tests.
  psql_primary -d postgres -v token="$token" <<'SQL'
CREATE TABLE IF NOT EXISTS bge_m3_rag_replication_check (id int PRIMARY KEY, token text NOT NULL, written_at timestamptz NOT NULL DEFAULT now());
INSERT INTO bge_m3_rag_replication_check (id, token) VALUES (1, :'token')
  ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, written_at = now();
SQL
  for i in $(seq 1 150); do
    got=$(as_postgres psql -X -At -p "$REPLICA_PORT" -d postgres \
      -c "SELECT token FROM bge_m3_rag_replication_check WHERE id = 1" 2>/dev/null || true)
    [ "$got" = "$token" ] && break
    sleep 0.1
  done
  [ "$got" = "$token" ] || die "a row written on the primary did not reach the replica within 15 s"
  STEP_NOTE="row written on :$PRIMARY_PORT read on :$REPLICA_PORT after $(elapsed "$t")s"
}

PRIMARY_URL="postgres://$APP_ROLE:$APP_PASSWORD@127.0.0.1:$PRIMARY_PORT/$APP_DB"
REPLICA_URL="postgres://$APP_ROLE:$APP_PASSWORD@127.0.0.1:$REPLICA_PORT/$APP_DB"

check_app_access() {
  local v out
  # As the app role, over TCP with its password, exactly as the tests connect.
  v=$(psql -X -q -At -v ON_ERROR_STOP=1 "$PRIMARY_URL" -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION IF NOT EXISTS vector" -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'") ||
    die "the app role cannot connect to $PRIMARY_URL or run CREATE EXTENSION IF NOT EXISTS vector"
  [ "$v" = "$PGVECTOR_VERSION" ] || die "vector on the primary is '$v', expected $PGVECTOR_VERSION"
  v=$(psql -X -At -v ON_ERROR_STOP=1 "$REPLICA_URL" -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'") ||
    die "the app role cannot connect to $REPLICA_URL"
  [ "$v" = "$PGVECTOR_VERSION" ] || die "vector on the replica is '$v', expected $PGVECTOR_VERSION"
  if out=$(psql -X -At -v ON_ERROR_STOP=1 "$REPLICA_URL" -c "CREATE TABLE bge_m3_rag_must_fail (id int)" 2>&1); then
    die "a write on the replica succeeded; it must be read-only"
  fi
  grep -q "read-only transaction" <<<"$out" || die "a write on the replica failed, but not as read-only: $out"
  STEP_NOTE="app role: vector $PGVECTOR_VERSION on both, CREATE EXTENSION IF NOT EXISTS ok, replica read-only"
}

write_env_file() {
  local tmp
  tmp=$(mktemp "$ENV_FILE.XXXXXX")
  cat >"$tmp" <<EOF
# Written by bge-m3-rag scripts/db-start.sh: PostgreSQL $PG_MAJOR + pgvector $PGVECTOR_VERSION on 127.0.0.1.
export BGE_M3_RAG_PG_URL=$PRIMARY_URL
export BGE_M3_RAG_PG_REPLICA_URL=$REPLICA_URL
EOF
  chmod 644 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
  STEP_NOTE="$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------
# One run at a time (CI and a developer, or two terminals).
exec 9>"${TMPDIR:-/tmp}/bge-m3-rag-db.lock"
flock -w 300 9 || die "another db-start.sh has held the lock for 5 minutes"
: >"$LOG"

step "packages" install_packages
step "pgvector" build_pgvector
step "primary" primary_cluster
step "replica" replica_cluster
step "replication check" check_replication
step "app access check" check_app_access
step "env file" write_env_file
CURRENT_STEP=done
say "ready in $(elapsed "$T0")s; to use: source $ENV_FILE"
echo "export BGE_M3_RAG_PG_URL=$PRIMARY_URL"
echo "export BGE_M3_RAG_PG_REPLICA_URL=$REPLICA_URL"
