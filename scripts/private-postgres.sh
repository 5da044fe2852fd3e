# Sourced by scripts/test.sh: a throw-away PostgreSQL for the tests, started
# from the machine's server binaries, on 127.0.0.1:${PRIVATE_PG_PORT:-54329}.
# initdb refuses to run as root, so as root the server runs as `postgres`.

private_pg_bin() {
  local dir
  if [ -n "${NSPOOL_PG_BIN:-}" ] && [ -x "$NSPOOL_PG_BIN/initdb" ]; then echo "$NSPOOL_PG_BIN"; return; fi
  if command -v pg_config >/dev/null && dir=$(pg_config --bindir) && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; fi
}

private_postgres_start() {
  local bin
  bin=$(private_pg_bin)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "no PostgreSQL server binaries: installing Debian's postgresql package" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      bin=$(private_pg_bin)
    fi
    [ -n "$bin" ] || { echo "no PostgreSQL server binaries; install postgresql or set DATABASE_URL" >&2; return 1; }
  fi
  PRIVATE_PG_DIR=$(mktemp -d /tmp/nspool-test-pg.XXXXXX)
  PRIVATE_PG_PORT=${PRIVATE_PG_PORT:-54329}
  local as=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PRIVATE_PG_DIR"
    as=(setpriv --reuid=postgres --regid=postgres --clear-groups)
  fi
  (cd "$PRIVATE_PG_DIR" && "${as[@]}" "$bin/initdb" -D "$PRIVATE_PG_DIR/data" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null)
  (cd "$PRIVATE_PG_DIR" && "${as[@]}" "$bin/pg_ctl" -D "$PRIVATE_PG_DIR/data" -l "$PRIVATE_PG_DIR/log" -w \
    -o "-p $PRIVATE_PG_PORT -k $PRIVATE_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null)
  PRIVATE_PG_AS=("${as[@]}")
  PRIVATE_PG_BIN=$bin
  export DATABASE_URL="postgres://postgres@127.0.0.1:${PRIVATE_PG_PORT}/postgres"
}

private_postgres_stop() {
  [ -n "${PRIVATE_PG_DIR:-}" ] || return 0
  (cd "$PRIVATE_PG_DIR" && "${PRIVATE_PG_AS[@]}" "$PRIVATE_PG_BIN/pg_ctl" -D "$PRIVATE_PG_DIR/data" -m fast -w stop >/dev/null) || true
  rm -rf "$PRIVATE_PG_DIR"
}
