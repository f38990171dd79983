# Throwaway PgBouncers in front of the server pg_start made. Source after scripts/lib/pg.sh,
# call `pgb_start` after `pg_start`, and `pgb_stop` at the end.
#
# Two PgBouncers, each in transaction mode with PgBouncer's default
# `ignore_startup_parameters` (none), a small `default_pool_size` (4), and four database
# entries, exported as URLs:
#
# - the distribution's (`apt-get install pgbouncer`; Debian 12 ships 1.18, which passes
#   prepared statements' names through unchanged, so sessions that did not declare it find
#   it at the first statement it refuses, tests/pooler_passthrough.rs):
#     PGBOUNCER_URL          transaction mode, pool_size 20 (the many-processes test)
#     PGBOUNCER_SMALL_URL    transaction mode, the default pool size 4
#     PGBOUNCER_SESSION_URL  session mode, pool_size 20
#     PGBOUNCER_STATEMENT_URL  statement mode (no transactions), the default pool size
# - a current release (1.25.2, built from scripts/vendor/pgbouncer-1.25.2.tar.gz, checked
#   against its SHA-256; the release's git tag, since Debian's mirror serves 1.24.1 at
#   newest and the suite's machines do not reach GitHub): its `max_prepared_statements`
#   (200 by default since 1.24) keeps prepared statements working in transaction mode by
#   renaming them on the server connections, which is what sessions must detect; and a
#   client queued for a server connection for 5 s gets a NOTICE (`query_wait_notify`,
#   new in 1.25) in the middle of its statement. The same four entries as
#   PGBOUNCER_CURRENT_URL, PGBOUNCER_CURRENT_SMALL_URL, PGBOUNCER_CURRENT_SESSION_URL and
#   PGBOUNCER_CURRENT_STATEMENT_URL.

PGB_CURRENT_VERSION=1.25.2
PGB_CURRENT_SHA256=99ae53a6d0d77852fe4bc2c34de0ddf5362bc675c54e6dd841b8a99901d7a3ef
PGB_CURRENT_TARBALL=scripts/vendor/pgbouncer-${PGB_CURRENT_VERSION}.tar.gz

pgb_apt() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "pgbouncer: installing $* needs root (apt-get install $*)" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pgb_install() {
  command -v pgbouncer >/dev/null 2>&1 && return 0
  echo "pgbouncer: installing" >&2
  pgb_apt pgbouncer
}

# Prints the path of the current release's binary, building it once (cached in
# ${SESSION_POOL_PGB_BUILD:-target/pgbouncer-<version>}).
pgb_current_build() {
  local dir=${SESSION_POOL_PGB_BUILD:-$PWD/target/pgbouncer-$PGB_CURRENT_VERSION}
  local bin=$dir/pgbouncer-$PGB_CURRENT_VERSION/pgbouncer
  if [ -x "$bin" ]; then
    echo "$bin"
    return 0
  fi
  echo "pgbouncer: building $PGB_CURRENT_VERSION" >&2
  local need=()
  command -v make >/dev/null 2>&1 || need+=(make)
  # A git archive, not a release tarball: `configure` is made by autogen.sh.
  command -v autoconf >/dev/null 2>&1 || need+=(autoconf)
  command -v automake >/dev/null 2>&1 || need+=(automake)
  command -v libtoolize >/dev/null 2>&1 || need+=(libtool)
  command -v cc >/dev/null 2>&1 || need+=(gcc)
  command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
  pkg-config --exists libevent 2>/dev/null || need+=(libevent-dev)
  pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
  if [ ${#need[@]} -gt 0 ]; then
    pgb_apt "${need[@]}" || return 1
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  echo "$PGB_CURRENT_SHA256  $PGB_CURRENT_TARBALL" | sha256sum -c --quiet - || return 1
  tar -xzf "$PGB_CURRENT_TARBALL" -C "$dir"
  (cd "$dir/pgbouncer-$PGB_CURRENT_VERSION" &&
    ./autogen.sh >"$dir/autogen.log" 2>&1 &&
    ./configure --without-cares --without-pam --without-ldap --without-systemd \
      >"$dir/configure.log" 2>&1 &&
    make -j"$(nproc)" pgbouncer >"$dir/make.log" 2>&1) || {
    echo "pgbouncer: build failed, see $dir/*.log" >&2
    return 1
  }
  echo "$bin"
}

# pgb_launch BINARY PREFIX DIRVAR: starts BINARY in front of $PGPORT, exports
# ${PREFIX}_URL, ${PREFIX}_SMALL_URL and ${PREFIX}_SESSION_URL, and its directory in DIRVAR.
pgb_launch() {
  local bin=$1 prefix=$2 dirvar=$3
  [ -n "${PGPORT:-}" ] || { echo "pgbouncer: call pg_start first" >&2; return 1; }
  local dir; dir=$(mktemp -d /tmp/session-pool-pgb.XXXXXX)
  local port; port=$(pg_free_port) || { echo "pgbouncer: no free port" >&2; return 1; }
  # A copy the server's owner can run, whatever the build directory's permissions.
  cp "$bin" "$dir/pgbouncer"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$PGPORT dbname=postgres pool_size=20
small = host=127.0.0.1 port=$PGPORT dbname=postgres
session = host=127.0.0.1 port=$PGPORT dbname=postgres pool_mode=session pool_size=20
statement = host=127.0.0.1 port=$PGPORT dbname=postgres pool_mode=statement

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
  pg_as_owner "$dir/pgbouncer" -d "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2; return 1; }
  local i
  for i in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
  done
  export "$dirvar=$dir"
  export "${prefix}_URL=postgres://postgres@127.0.0.1:$port/postgres"
  export "${prefix}_SMALL_URL=postgres://postgres@127.0.0.1:$port/small"
  export "${prefix}_SESSION_URL=postgres://postgres@127.0.0.1:$port/session"
  export "${prefix}_STATEMENT_URL=postgres://postgres@127.0.0.1:$port/statement"
  echo "pgbouncer: $("$bin" --version | head -n 1) on 127.0.0.1:$port ($dir)" >&2
}

pgb_start() {
  pgb_install || return 1
  pgb_launch "$(command -v pgbouncer)" PGBOUNCER SESSION_POOL_PGBDIR || return 1
  local current; current=$(pgb_current_build) || return 1
  pgb_launch "$current" PGBOUNCER_CURRENT SESSION_POOL_PGB_CURRENT_DIR
}

pgb_stop() {
  local dir
  for dir in "${SESSION_POOL_PGBDIR:-}" "${SESSION_POOL_PGB_CURRENT_DIR:-}"; do
    [ -n "$dir" ] || continue
    if [ -f "$dir/pgbouncer.pid" ]; then
      kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
  done
  unset SESSION_POOL_PGBDIR SESSION_POOL_PGB_CURRENT_DIR
}
