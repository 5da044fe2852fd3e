#!/usr/bin/env bash
# The whole test suite: format, lints, unit and integration tests.
#
# The integration tests need a PostgreSQL server they may create databases on
# (`#[sqlx::test]` makes one per test). In order of preference:
#   1. DATABASE_URL, if set;
#   2. the machine's server on 127.0.0.1:5432 (user postgres, trust auth);
#   3. a private server started here from the installed PostgreSQL binaries
#      (installed from Debian's packages first if there are none), stopped on exit.
#      NSPOOL_TEST_PRIVATE_PG=1 skips 1 and 2.
set -euo pipefail
cd "$(dirname "$0")/.."

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if [ "${NSPOOL_TEST_PRIVATE_PG:-}" = 1 ]; then unset DATABASE_URL; fi
if [ -z "${DATABASE_URL:-}" ]; then
  if [ "${NSPOOL_TEST_PRIVATE_PG:-}" != 1 ] && port_open 127.0.0.1 5432 && command -v psql >/dev/null && \
     psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    # shellcheck source=scripts/private-postgres.sh
    source scripts/private-postgres.sh
    private_postgres_start
    trap private_postgres_stop EXIT
  fi
fi
echo "tests use ${DATABASE_URL}"

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
