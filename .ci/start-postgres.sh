#!/usr/bin/env bash
# Starts Debian's PostgreSQL cluster (creating one if the package made none), sets the
# postgres user's password for TCP logins and makes an empty `paywall_test` database.
# Idempotent: a running cluster is left running.
set -euo pipefail
cluster=$(pg_lsclusters --no-header 2>/dev/null | awk 'NR == 1 { print $1 " " $2 }')
if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    pg_createcluster "$version" main
    cluster="$version main"
fi
set -- $cluster
if ! pg_lsclusters --no-header | awk -v v="$1" -v c="$2" '$1 == v && $2 == c { print $4 }' | grep -q online; then
    pg_ctlcluster "$1" "$2" start
fi
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
done
# The tests run at once, each store with its own pool (the HTTP route tests on PostgreSQL
# too): more than the default 100 connections. A restart puts the setting in force.
if [ "$(su postgres -c "psql -tAq -c 'SHOW max_connections'")" -lt 500 ]; then
    su postgres -c "psql -q -c 'ALTER SYSTEM SET max_connections = 500'"
    pg_ctlcluster "$1" "$2" restart
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 1
    done
fi
# The socket tests sign in with the password through the unix socket too, for the test
# database alone (Debian's default there is peer authentication: the OS user's name).
hba=$(su postgres -c "psql -tAq -c 'SHOW hba_file'")
if ! grep -q '^local  *paywall_test  *postgres  *scram-sha-256' "$hba"; then
    sed -i '1i local   paywall_test    postgres                                scram-sha-256' "$hba"
    pg_ctlcluster "$1" "$2" reload
fi
su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD '${PAYWALL_CI_POSTGRES_PASSWORD:-paywall-ci}'\"" 
su postgres -c "psql -q -c 'DROP DATABASE IF EXISTS paywall_test' -c 'CREATE DATABASE paywall_test'"
echo "PostgreSQL $1/$2 ready on 127.0.0.1:5432 (database paywall_test)"
