# Shared settings for scripts/db-start.sh and scripts/db-stop.sh (sourced, not run).
#
# Two PostgreSQL 15 clusters dedicated to this project, both on 127.0.0.1 only. The default
# Debian cluster 15/main (port 5432) is never used or touched.
#   primary  15/bgem3primary  port $BGE_M3_RAG_PG_PORT          (default 54329)
#   replica  15/bgem3replica  port $BGE_M3_RAG_PG_REPLICA_PORT  (default 54330), streaming hot standby
# Overridable through the environment (only the variables below).

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PRIMARY_CLUSTER=bgem3primary
REPLICA_CLUSTER=bgem3replica
PRIMARY_PORT=${BGE_M3_RAG_PG_PORT:-54329}
REPLICA_PORT=${BGE_M3_RAG_PG_REPLICA_PORT:-54330}
APP_ROLE=bge_m3_rag
APP_DB=bge_m3_rag
REPL_ROLE=bge_m3_rag_replicator
REPL_SLOT=bgem3replica
# A local-only development password (both servers listen on 127.0.0.1 only).
APP_PASSWORD=${BGE_M3_RAG_PG_PASSWORD:-bge_m3_rag}
ENV_FILE=${BGE_M3_RAG_DB_ENV_FILE:-/tmp/bge-m3-rag-db.env}
PGVECTOR_VERSION=0.8.0

# Environment variables worth keeping when the scripts re-run themselves under sudo.
DB_ENV_VARS=BGE_M3_RAG_PG_PORT,BGE_M3_RAG_PG_REPLICA_PORT,BGE_M3_RAG_PG_PASSWORD,BGE_M3_RAG_DB_ENV_FILE

# Installing packages and managing clusters needs root; re-run under sudo when not root.
db_require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      exec sudo --preserve-env="$DB_ENV_VARS" bash "$0" "$@"
    fi
    echo "$(basename "$0"): must run as root (or with sudo available)" >&2
    exit 1
  fi
}

# Run a command as the postgres OS user (root only).
as_postgres() { runuser -u postgres -- "$@"; }

cluster_exists() { [ -f "/etc/postgresql/$PG_MAJOR/$1/postgresql.conf" ]; }

# Exit status of pg_ctlcluster status: 0 running, 3 not running, 4 no data dir / unusable.
cluster_running() { pg_ctlcluster "$PG_MAJOR" "$1" status >/dev/null 2>&1; }
