# Throwaway PgBouncer in front of the server pg_start made. Source after scripts/lib/pg.sh,
# call `pgb_start` after `pg_start` (installs pgbouncer if missing) and `pgb_stop`.
#
# It runs in transaction mode with PgBouncer's default `ignore_startup_parameters` (none),
# a small `default_pool_size` (4), and three database entries, exported as URLs:
#   PGBOUNCER_URL          transaction mode, pool_size 20 (the many-processes test)
#   PGBOUNCER_SMALL_URL    transaction mode, the default pool size 4
#   PGBOUNCER_SESSION_URL  session mode, pool_size 20

pgb_install() {
  command -v pgbouncer >/dev/null 2>&1 && return 0
  echo "pgbouncer: installing" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "pgbouncer: missing, and installing it needs root (apt-get install pgbouncer)" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
}

pgb_start() {
  pgb_install || return 1
  [ -n "${PGPORT:-}" ] || { echo "pgbouncer: call pg_start first" >&2; return 1; }
  local dir; dir=$(mktemp -d /tmp/session-pool-pgb.XXXXXX)
  local port; port=$(pg_free_port) || { echo "pgbouncer: no free port" >&2; return 1; }
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$PGPORT dbname=postgres pool_size=20
small = host=127.0.0.1 port=$PGPORT dbname=postgres
session = host=127.0.0.1 port=$PGPORT dbname=postgres pool_mode=session pool_size=20

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 4
max_client_conn = 2000
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  echo '"postgres" ""' >"$dir/userlist.txt"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$dir"
  pg_as_owner pgbouncer -d "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2; return 1; }
  local i
  for i in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
  done
  export SESSION_POOL_PGBDIR="$dir"
  export PGBOUNCER_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export PGBOUNCER_SMALL_URL="postgres://postgres@127.0.0.1:$port/small"
  export PGBOUNCER_SESSION_URL="postgres://postgres@127.0.0.1:$port/session"
  echo "pgbouncer: $(pgbouncer --version | head -n 1) on 127.0.0.1:$port ($dir)" >&2
}

pgb_stop() {
  [ -n "${SESSION_POOL_PGBDIR:-}" ] || return 0
  if [ -f "$SESSION_POOL_PGBDIR/pgbouncer.pid" ]; then
    kill "$(cat "$SESSION_POOL_PGBDIR/pgbouncer.pid")" 2>/dev/null || true
  fi
  rm -rf "$SESSION_POOL_PGBDIR"
  unset SESSION_POOL_PGBDIR
}
