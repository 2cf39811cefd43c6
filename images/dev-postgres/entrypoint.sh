#!/bin/sh
# dev-postgres: initialise $PGDATA on first start (superuser $POSTGRES_USER with the password in
# $POSTGRES_PASSWORD_FILE or $POSTGRES_PASSWORD, database $POSTGRES_DB), then run postgres in the
# foreground as this process (exec), so SIGTERM reaches it and it shuts down cleanly ("smart").
set -eu
: "${POSTGRES_USER:=mlmesh}"
: "${POSTGRES_DB:=mlmesh}"
: "${POSTGRES_PORT:=5432}"
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "dev-postgres: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2
        exit 1
    fi
    scratch="$PGDATA.initdb"
    rm -rf "$scratch"
    mkdir -p "$scratch"
    pwfile="$scratch.pw"
    umask 077
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$scratch" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$scratch/pg_hba.conf"
    echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -D "$scratch" -j postgres >/dev/null
    mv "$scratch" "$PGDATA"
fi
exec postgres -D "$PGDATA" -p "$POSTGRES_PORT" -c listen_addresses="${POSTGRES_LISTEN:-*}" \
    -c unix_socket_directories=/var/run/postgresql
