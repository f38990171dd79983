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
  local dir; dir=$(pg_new_cluster) || return 1
  local port; port=$(pg_free_port) || { echo "pg: no free port" >&2; return 1; }
  echo "$port" >"$dir/port"
  pg_server_start "$dir" || return 1
  export SESSION_POOL_PGDIR="$dir"
  export SESSION_POOL_PGDATA="$dir/data"
  export SESSION_POOL_PGBIN="$bin"
  export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "pg: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
}

# A new throwaway directory (owned by the server's user) with a fresh cluster in its
# `data`; prints the directory.
pg_new_cluster() {
  local bin; bin=$(pg_bin_dir)
  local dir; dir=$(mktemp -d /tmp/session-pool-pg.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  chmod 700 "$dir"
  pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  echo "$dir"
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

# Starts a second throwaway server that refuses plain connections, as managed services do
# (`hostssl` only), with a certificate for 127.0.0.1 and localhost signed by a throwaway CA.
# Exports SESSION_POOL_PG_TLS_URL (no sslmode: the tests add theirs), SESSION_POOL_PG_TLS_CA
# (the CA's certificate) and SESSION_POOL_PG_TLS_OTHER_CA (a CA that signed nothing of it).
# Role `certuser` logs in by client certificate only (`cert`): beside the CA, the
# directory holds client.crt (X.509 v3) with its key as PKCS#8 (client.key) and as PKCS#1
# (client-rsa.key, what older tooling writes), client-v1.crt (the same key, a version 1
# certificate, as PostgreSQL's manual's openssl recipe makes), and intruder.crt/.key for
# CN=certuser signed by the other CA.
pg_tls_start() {
  command -v openssl >/dev/null 2>&1 || {
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
    else
      echo "pg: openssl is missing" >&2; return 1
    fi
  }
  local bin; bin=$(pg_bin_dir)
  local dir; dir=$(pg_new_cluster) || return 1
  local tls="$dir/tls"
  mkdir -p "$tls"
  (
    cd "$tls"
    for ca in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=session-pool test $ca" \
        -keyout "$ca.key" -out "$ca.crt" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key \
      -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out server.crt 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >client.ext
    for who in client:ca intruder:other-ca; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=certuser" -keyout "${who%%:*}.key" \
        -out "${who%%:*}.csr" 2>/dev/null
      openssl x509 -req -in "${who%%:*}.csr" -CA "${who##*:}.crt" -CAkey "${who##*:}.key" \
        -CAcreateserial -days 2 -extfile client.ext -out "${who%%:*}.crt" 2>/dev/null
    done
    # No extensions: a version 1 certificate.
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -out client-v1.crt 2>/dev/null
    openssl rsa -in client.key -traditional -out client-rsa.key 2>/dev/null
  ) || { echo "pg: openssl could not make the test certificates" >&2; return 1; }
  chmod 600 "$tls/server.key"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$tls"
  chmod 755 "$tls"
  chmod 644 "$tls"/*.crt
  cat >>"$dir/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$tls/server.crt'
ssl_key_file = '$tls/server.key'
ssl_ca_file = '$tls/ca.crt'
CONF
  # Plain connections refused; over TLS, role `scram` by password (SCRAM, as managed
  # servers ask), `certuser` by client certificate, every other role trusted.
  printf '%s\n' 'hostnossl all all all reject' \
    'hostssl all scram 127.0.0.1/32 scram-sha-256' \
    'hostssl all certuser 127.0.0.1/32 cert' \
    'hostssl all all 127.0.0.1/32 trust' 'local all all trust' >"$dir/data/pg_hba.conf"
  local port; port=$(pg_free_port) || { echo "pg: no free port" >&2; return 1; }
  echo "$port" >"$dir/port"
  pg_server_start "$dir" || return 1
  # A password with every character a URL gives a meaning to.
  pg_as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -qc \
    "SET password_encryption = 'scram-sha-256'; CREATE ROLE scram LOGIN PASSWORD 'p@ss:w/rd+&=?#%x'; CREATE ROLE certuser LOGIN" \
    >/dev/null || return 1
  export SESSION_POOL_PG_TLS_DIR="$dir"
  export SESSION_POOL_PG_TLS_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export SESSION_POOL_PG_TLS_CA="$tls/ca.crt"
  export SESSION_POOL_PG_TLS_OTHER_CA="$tls/other-ca.crt"
  echo "pg: TLS-only server on 127.0.0.1:$port ($dir)" >&2
}

pg_tls_stop() {
  [ -n "${SESSION_POOL_PG_TLS_DIR:-}" ] || return 0
  pg_server_stop "$SESSION_POOL_PG_TLS_DIR"
  rm -rf "$SESSION_POOL_PG_TLS_DIR"
  unset SESSION_POOL_PG_TLS_DIR
}

# Promotes the standby in directory $1 to a primary, waiting for it.
pg_promote() {
  pg_as_owner "$(pg_bin_dir)/pg_ctl" -D "$1/data" -w promote >/dev/null
}
