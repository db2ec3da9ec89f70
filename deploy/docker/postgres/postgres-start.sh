#!/bin/sh
# First start: initdb with POSTGRES_USER / POSTGRES_PASSWORD (a SCRAM password on every connection,
# the container's own socket included), then one
# database per name in POSTGRES_DATABASES, created in single-user mode (no server is listening
# yet, so nothing can connect to a half-made cluster). Then runs the command (`postgres -c ...`).
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" > /dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    for database in ${POSTGRES_DATABASES:-}; do
        echo "CREATE DATABASE \"$database\"" | postgres --single -D "$PGDATA" -j postgres > /dev/null
        echo "postgres-start: created database $database"
    done
fi
if [ "${1:-postgres}" = "postgres" ]; then
    [ "$#" -gt 0 ] && shift
    exec postgres -D "$PGDATA" "$@"
fi
exec "$@"
