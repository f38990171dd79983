# Throwaway PostgreSQL server for tests and benchmarks. Source this file, then call
# `pg_start` (installs PostgreSQL if missing, starts a server on a free loopback port and
# exports DATABASE_URL, PGHOST, PGPORT, PGUSER, SESSION_POOL_PGDATA, SESSION_POOL_PGBIN)
# and `pg_stop`.

pg_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_install() {
  if [ -n "$(pg_bin_dir)" ] && [ -x "$(pg_bin_dir)/initdb" ]; then return 0; fi
  echo "pg: installing PostgreSQL" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "pg: PostgreSQL is missing and installing it needs root (apt-get install postgresql)" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return 0
  local p
  for p in $(seq 55432 55532); do
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}

# Runs a command as the server's owner: `postgres` when we are root (initdb refuses root).
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  pg_install || return 1
  local bin; bin=$(pg_bin_dir)
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  local dir; dir=$(mktemp -d /tmp/session-pool-pg.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  chmod 700 "$dir"
  local port; port=$(pg_free_port) || { echo "pg: no free port" >&2; return 1; }
  pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  echo "$port" >"$dir/port"
  pg_server_start "$dir" || return 1
  export SESSION_POOL_PGDIR="$dir"
  export SESSION_POOL_PGDATA="$dir/data"
  export SESSION_POOL_PGBIN="$bin"
  export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "pg: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
}

# Starts (or starts again) the server of a directory made by pg_start, on its port.
pg_server_start() {
  local dir=$1 bin; bin=$(pg_bin_dir)
  # fsync off: a throwaway server; max_connections covers parallel tests.
  pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
}

# Stops the server of a directory made by pg_start, at once (as a crash would).
pg_server_stop() {
  local dir=$1
  pg_as_owner "$(pg_bin_dir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}

pg_stop() {
  [ -n "${SESSION_POOL_PGDATA:-}" ] || return 0
  pg_server_stop "$SESSION_POOL_PGDIR"
  rm -rf "$SESSION_POOL_PGDIR"
  unset SESSION_POOL_PGDATA
}

# Starts a streaming standby of the server in directory $1 (made by pg_start), on a free
# port of its own, and prints its directory. `pg_basebackup -R` writes the standby's
# connection to the primary.
pg_standby_start() {
  local primary=$1 bin; bin=$(pg_bin_dir)
  local dir; dir=$(mktemp -d /tmp/session-pool-pg.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  chmod 700 "$dir"
  pg_as_owner "$bin/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" -U postgres \
    -D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 \
    || { cat "$dir/basebackup.log" >&2; return 1; }
  local port; port=$(pg_free_port) || { echo "pg: no free port" >&2; return 1; }
  echo "$port" >"$dir/port"
  pg_server_start "$dir" || return 1
  echo "$dir"
}

# Promotes the standby in directory $1 to a primary, waiting for it.
pg_promote() {
  pg_as_owner "$(pg_bin_dir)/pg_ctl" -D "$1/data" -w promote >/dev/null
}
