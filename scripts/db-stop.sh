#!/usr/bin/env bash
# Stop this project's PostgreSQL clusters started by scripts/db-start.sh (`npm run db:stop`):
# the replica 15/bgem3replica, then the primary 15/bgem3primary.
#   --drop   also delete both clusters (data and configuration) and the env file;
#            the next db-start.sh creates them anew. pgvector and the apt packages stay.
# The default cluster 15/main is never touched. Safe to run when nothing is running.
set -euo pipefail

cd "$(dirname "$0")"
# shellcheck source=scripts/db-common.sh
. ./db-common.sh

DROP=0
for arg in "$@"; do
  case $arg in
    --drop) DROP=1 ;;
    -h | --help)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "db-stop: unknown argument '$arg' (use --drop or --help)" >&2
      exit 2
      ;;
  esac
done
db_require_root "$@"

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "db-stop: PostgreSQL is not installed; nothing to stop"
  exit 0
fi

for c in "$REPLICA_CLUSTER" "$PRIMARY_CLUSTER"; do
  t=$EPOCHREALTIME
  if ! cluster_exists "$c"; then
    echo "db-stop: $PG_MAJOR/$c does not exist"
    continue
  fi
  if cluster_running "$c"; then
    pg_ctlcluster "$PG_MAJOR" "$c" stop -m fast ||
      { echo "db-stop: ERROR: cannot stop $PG_MAJOR/$c" >&2; exit 1; }
    what=stopped
  else
    what="was not running"
  fi
  if [ "$DROP" -eq 1 ]; then
    pg_dropcluster "$PG_MAJOR" "$c" || { echo "db-stop: ERROR: cannot drop $PG_MAJOR/$c" >&2; exit 1; }
    what="$what, dropped"
  fi
  echo "db-stop: $PG_MAJOR/$c $what ($(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s)"
done
if [ "$DROP" -eq 1 ]; then rm -f "$ENV_FILE"; fi
