# A throwaway PgCat (postgresml/pgcat, a transaction pooler written in Rust) in front of the
# server pg_start made. Source after scripts/lib/pg.sh, call `pgcat_start` after `pg_start`,
# and `pgcat_stop` at the end.
#
# PgCat is not on crates.io and has no Debian package, so its source (commit 5b03881 of
# github.com/postgresml/pgcat, MIT licence, `src`, `Cargo.toml`, `Cargo.lock` and
# `LICENSE` only) is kept in scripts/vendor and built once with cargo (cached in
# ${SESSION_POOL_PGCAT_BUILD:-target/pgcat-<rev>}).
#
# Two pools (PgCat's database names), both in transaction mode with 4 server connections,
# for the user `postgres` with the password `pgcat` (PgCat asks clients for one; the
# throwaway server trusts its connections), exported as URLs:
#   PGCAT_URL           its statement cache on (`prepared_statements_cache_size = 500`): it
#                       renames prepared statements on the server connections (`PGCAT_<n>`)
#   PGCAT_DEFAULTS_URL  PgCat's defaults: no statement cache, so statement names are passed
#                       through to whichever server connection a transaction gets

PGCAT_REV=5b03881

# Prints the path of PgCat's binary, building it once.
pgcat_build() {
  local dir=${SESSION_POOL_PGCAT_BUILD:-$PWD/target/pgcat-$PGCAT_REV}
  local bin=$dir/pgcat/target/release/pgcat
  if [ -x "$bin" ]; then
    echo "$bin"
    return 0
  fi
  echo "pgcat: building $PGCAT_REV" >&2
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "scripts/vendor/pgcat-$PGCAT_REV.tar.gz" -C "$dir" || return 1
  # Its own target directory, whatever CARGO_TARGET_DIR says, so the binary is where
  # this looks for it.
  (cd "$dir/pgcat" && cargo build --release --locked --target-dir "$dir/pgcat/target" \
    >"$dir/build.log" 2>&1) || {
    echo "pgcat: build failed, see $dir/build.log" >&2
    return 1
  }
  echo "$bin"
}

pgcat_start() {
  [ -n "${PGPORT:-}" ] || { echo "pgcat: call pg_start first" >&2; return 1; }
  local bin; bin=$(pgcat_build) || return 1
  local dir; dir=$(mktemp -d /tmp/session-pool-pgcat.XXXXXX)
  local port; port=$(pg_free_port) || { echo "pgcat: no free port" >&2; return 1; }
  local pool
  {
    cat <<TOML
[general]
host = "127.0.0.1"
port = $port
admin_username = "pgcat_admin"
admin_password = "pgcat_admin"
connect_timeout = 5000
ban_time = 1
log_client_connections = false
log_client_disconnections = false
TOML
    for pool in postgres defaults; do
      cat <<TOML

[pools.$pool]
pool_mode = "transaction"
TOML
      [ "$pool" = postgres ] && echo 'prepared_statements_cache_size = 500'
      cat <<TOML

[pools.$pool.users.0]
username = "postgres"
password = "pgcat"
pool_size = 4
statement_timeout = 0

[pools.$pool.shards.0]
servers = [["127.0.0.1", $PGPORT, "primary"]]
database = "postgres"
TOML
    done
  } >"$dir/pgcat.toml"
  "$bin" "$dir/pgcat.toml" >"$dir/pgcat.log" 2>&1 &
  echo $! >"$dir/pgcat.pid"
  local i
  for i in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null || {
    cat "$dir/pgcat.log" >&2
    return 1
  }
  export SESSION_POOL_PGCAT_DIR=$dir
  export PGCAT_URL="postgres://postgres:pgcat@127.0.0.1:$port/postgres"
  export PGCAT_DEFAULTS_URL="postgres://postgres:pgcat@127.0.0.1:$port/defaults"
  echo "pgcat: $PGCAT_REV on 127.0.0.1:$port ($dir)" >&2
}

pgcat_stop() {
  local dir=${SESSION_POOL_PGCAT_DIR:-}
  [ -n "$dir" ] || return 0
  if [ -f "$dir/pgcat.pid" ]; then
    kill "$(cat "$dir/pgcat.pid")" 2>/dev/null || true
  fi
  rm -rf "$dir"
  unset SESSION_POOL_PGCAT_DIR
}
