#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and the benchmarks, started by the project itself.
#
#   .ci/postgres.sh run -- CMD [ARG...]   start a server, run CMD with the URL exported, stop it
#                                         (CMD's exit status is kept; the server stops however
#                                         CMD ends)
#   eval "$(.ci/postgres.sh start)"       start one and print `export` lines for the shell:
#                                         PAYLEDGER_TEST_POSTGRES_URL and PAYLEDGER_TEST_POSTGRES_DIR
#   .ci/postgres.sh stop DIR              stop the server started in DIR and remove DIR
#
# The server lives in a new temporary directory (data, unix socket, log), listens on 127.0.0.1
# on a free port, and has one role, `payledger` (superuser: the tests tamper with triggers and
# end other sessions; a random password, so the password paths are exercised), and a database
# `payledger`. When `initdb`/`pg_ctl` are missing it installs Debian's `postgresql` package
# (root only). As root, the server runs as the `postgres` user (initdb refuses root).
#
# `run` exports PAYLEDGER_REQUIRE_POSTGRES=1, so the tests that need PostgreSQL fail rather than
# skip. When PAYLEDGER_TEST_POSTGRES_URL is already set, `run` starts nothing and uses it.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local dir
    for dir in "${PG_BINDIR:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

ensure_installed() {
    local bindir
    if bindir=$(find_bindir); then
        echo "$bindir"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        log "initdb and pg_ctl not found; install PostgreSQL (Debian: apt-get install postgresql)"
        return 1
    fi
    log "installing PostgreSQL (apt-get install -y postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    find_bindir
}

as_owner() {
    # Run a server command as the owner of the data directory (postgres when we are root).
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    # Every step is checked by hand: `set -e` does not apply inside `exports=$(start) || ...`.
    local bindir dir port password tries=0
    bindir=$(ensure_installed) || return 1
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres || return 1
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/payledger-pg.XXXXXX") || return 1
    case "$dir" in */payledger-pg.*) [ -d "$dir" ] || return 1 ;; *) return 1 ;; esac
    fail() { log "$1"; [ -f "$dir/server.log" ] && tail -n 20 "$dir/server.log" >&2; rm -rf "$dir"; return 1; }
    chmod 755 "$dir" && mkdir "$dir/data" "$dir/socket" || { fail "cannot prepare $dir"; return 1; }
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))') || { fail "no python3"; return 1; }
    printf '%s\n' "$password" >"$dir/password" && chmod 600 "$dir/password" || { fail "cannot write"; return 1; }
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$dir" || { fail "cannot chown $dir"; return 1; }
    fi
    chmod 700 "$dir/data" || { fail "cannot chmod"; return 1; }
    if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --no-sync \
        --auth-local=trust --auth-host=scram-sha-256 --pwfile="$dir/password" >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        fail "initdb failed"
        return 1
    fi
    while :; do
        port=$(free_port) || { fail "no free port"; return 1; }
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/socket -c max_connections=300 -c fsync=on -c synchronous_commit=on" \
            >"$dir/pg_ctl.log" 2>&1; then
            break
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 3 ]; then
            cat "$dir/pg_ctl.log" >&2
            fail "the server did not start"
            return 1
        fi
    done
    if ! as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/socket" -p "$port" -U postgres \
        -d postgres -c "CREATE ROLE payledger LOGIN SUPERUSER PASSWORD '$password'" \
        -c "CREATE DATABASE payledger OWNER payledger" >&2; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
        fail "cannot create the role and the database"
        return 1
    fi
    echo "$port" >"$dir/port"
    echo "export PAYLEDGER_TEST_POSTGRES_URL='postgresql://payledger:$password@127.0.0.1:$port/payledger'"
    echo "export PAYLEDGER_TEST_POSTGRES_DIR='$dir'"
    log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)"
}

stop() {
    local dir="$1" bindir
    case "$dir" in */payledger-pg.*) ;; *) log "not a server directory: $dir"; return 1 ;; esac
    [ -d "$dir/data" ] || { log "no server in $dir"; return 0; }
    bindir=$(find_bindir) || true
    if [ -n "$bindir" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start)
    start
    ;;
stop)
    [ $# -eq 2 ] || { log "usage: $0 stop DIR"; exit 2; }
    stop "$2"
    ;;
run)
    shift
    [ "${1:-}" = "--" ] && shift
    [ $# -ge 1 ] || { log "usage: $0 run -- CMD [ARG...]"; exit 2; }
    export PAYLEDGER_REQUIRE_POSTGRES=1
    if [ -n "${PAYLEDGER_TEST_POSTGRES_URL:-}" ]; then
        exec "$@"
    fi
    exports=$(start) || { log "could not start PostgreSQL"; exit 1; }
    eval "$exports"
    trap 'stop "$PAYLEDGER_TEST_POSTGRES_DIR"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    status=0
    "$@" || status=$?
    exit "$status"
    ;;
*)
    log "usage: $0 start | stop DIR | run -- CMD [ARG...]"
    exit 2
    ;;
esac
