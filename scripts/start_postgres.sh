#!/usr/bin/env bash
# Start a local PostgreSQL for the tests of the PostgreSQL record store.
#
# Listens on 127.0.0.1:5432 and lets user "postgres" in over local TCP without a password
# (trust), so EHRQA_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres works.
# Installs Debian's "postgresql" package when no server is installed. Idempotent: a running
# cluster is only reloaded. Needs root (or sudo); meant for CI and development machines.
# EHRQA_PG_PORT (5432) and EHRQA_PG_CLUSTER (main) pick another port or Debian cluster.
set -euo pipefail

PORT="${EHRQA_PG_PORT:-5432}"
CLUSTER="${EHRQA_PG_CLUSTER:-main}"
HBA_LINE="host all postgres 127.0.0.1/32 trust"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

installed_version() {
    ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1
}

if [ -z "$(installed_version)" ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "start_postgres: installing postgresql with apt-get" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
VERSION="$(installed_version)"
BIN="/usr/lib/postgresql/$VERSION/bin"

if ! pg_lsclusters -h | awk '{print $1 "/" $2}' | grep -qx "$VERSION/$CLUSTER"; then
    $SUDO pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" >/dev/null
fi
HBA="/etc/postgresql/$VERSION/$CLUSTER/pg_hba.conf"
if ! $SUDO grep -qxF "$HBA_LINE" "$HBA"; then
    # pg_hba.conf is read top-down and the first matching line wins.
    $SUDO sed -i "1i $HBA_LINE" "$HBA"
fi

STATUS="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}')"
CLUSTER_PORT="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $3}')"
if [ "$CLUSTER_PORT" != "$PORT" ]; then
    echo "start_postgres: cluster $VERSION/$CLUSTER is set to port $CLUSTER_PORT, not $PORT;" \
        "change 'port' in /etc/postgresql/$VERSION/$CLUSTER/postgresql.conf" >&2
    exit 1
fi
if [ "$STATUS" = "online" ]; then
    $SUDO pg_ctlcluster "$VERSION" "$CLUSTER" reload
else
    $SUDO pg_ctlcluster "$VERSION" "$CLUSTER" start
fi

for _ in $(seq 1 50); do
    if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        echo "start_postgres: PostgreSQL $VERSION ready on 127.0.0.1:$PORT"
        exit 0
    fi
    sleep 0.2
done
echo "start_postgres: PostgreSQL did not become ready on 127.0.0.1:$PORT;" \
    "see /var/log/postgresql/postgresql-$VERSION-$CLUSTER.log" >&2
exit 1
