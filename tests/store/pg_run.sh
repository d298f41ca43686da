#!/bin/bash
# pg_run.sh COMMAND [ARG...]: run COMMAND against a private PostgreSQL cluster.
#
# Starts a throwaway cluster from Debian's packages (the newest
# /usr/lib/postgresql/*/bin; tests/fixture/install.sh installs them) in a
# temporary folder, listening on a free loopback port only, with trust
# authentication and durability off; creates the database abqtest; runs
# COMMAND with ABQ_TEST_STORE_URL=postgresql://postgres@127.0.0.1:PORT/abqtest;
# stops the cluster and removes the folder. Exits with COMMAND's status.
#
# A missing PostgreSQL is a failure (exit 1), never a skip: the store contract
# must run against PostgreSQL wherever this script is registered.
set -euo pipefail

die() { echo "pg_run: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: pg_run.sh COMMAND [ARG...]"

pgb=$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1)
pgb=${pgb%/postgres}
[ -x "$pgb/postgres" ] && [ -x "$pgb/initdb" ] && [ -x "$pgb/pg_ctl" ] ||
	die "PostgreSQL server not installed (apt-get install postgresql, or run scripts/install-deps.sh)"
command -v psql >/dev/null || die "psql not installed (apt-get install postgresql-client)"

# initdb refuses to run as root: run the server as the postgres user then.
as_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' user"
	command -v runuser >/dev/null || die "running as root, but runuser is missing"
	as_pg() { runuser -u postgres -- "$@"; }
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/abq-pg-XXXXXX")
chmod 755 "$dir"
mkdir "$dir/data" "$dir/sock"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/data" "$dir/sock"

started=0
cleanup() {
	if [ "$started" = 1 ]; then
		as_pg "$pgb/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: ask the kernel for one, then retry if the server lost a race.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

as_pg "$pgb/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync --locale=C.UTF-8 \
	>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

port=""
for attempt in 1 2 3 4 5; do
	port=$(free_port)
	if as_pg "$pgb/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50" \
		start >/dev/null 2>&1; then
		started=1
		break
	fi
	started=1 # a half-started server is stopped by cleanup
	as_pg "$pgb/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
	started=0
done
[ "$started" = 1 ] || { cat "$dir/data/server.log" >&2 || true; die "PostgreSQL did not start"; }

psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
	-c "CREATE DATABASE abqtest" >/dev/null || die "cannot create database abqtest"

status=0
ABQ_TEST_STORE_URL="postgresql://postgres@127.0.0.1:$port/abqtest" "$@" || status=$?
if [ "$status" -ne 0 ] && [ -n "${ABQ_PG_RUN_LOG:-}" ]; then
	tail -n 50 "$dir/data/server.log" >&2 || true
fi
exit "$status"
