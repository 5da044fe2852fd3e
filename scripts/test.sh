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
# Chromium for the browser tests is installed from Debian's packages when
# missing (screenshots land in target/screenshots/), and the GraphQL over
# HTTP audit's npm packages (scripts/graphql-http-audit, pinned) with npm ci,
# and the schema fuzzer (schemathesis from PyPI, pinned) into a virtualenv.
# The Kubernetes tests run against real control planes: etcd, kube-apiserver
# and the controllers nspool relies on, built from Kubernetes' Go modules
# (tests/control-plane; needs Go, built once per machine into
# target/control-plane with Go's own caches); two of them side by side (two
# clusters, for multi-cluster tests) started once per Kubernetes version and
# stopped after its tests; kubectl from Debian's kubernetes-client.
# Then what ships besides the binary (scripts/check-shipping.sh: hadolint,
# kustomize, kubernetes-validate, checkov, promtool; installed when missing).
# Each stage is named as it starts and timed; the run ends with a summary, and
# the test databases this run made are dropped (also when it fails).
# The first run downloads and builds the crates (a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

STAGES=()
stage() {
  local name=$1 started=$SECONDS
  shift
  echo
  echo "==> ${name}"
  if "$@"; then
    STAGES+=("ok      $(printf '%4d' $((SECONDS - started))) s  ${name}")
  else
    STAGES+=("FAILED  $(printf '%4d' $((SECONDS - started))) s  ${name}")
    summary
    exit 1
  fi
}

PASSED=0
FAILED=0
TEST_LOG=$(mktemp /tmp/nspool-test-log.XXXXXX)
SHIP_LOG=$(mktemp /tmp/nspool-ship-log.XXXXXX)
# cargo's "test result:" lines, plus check-shipping.sh's closing line.
count_tests() {
  local p f sp sf
  p=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$TEST_LOG" | awk '{s += $4} END {print s + 0}')
  f=$(grep -Eo '[0-9]+ failed;' "$TEST_LOG" | awk '{s += $1} END {print s + 0}')
  sp=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$SHIP_LOG" | awk '{s += $1} END {print s + 0}')
  sf=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$SHIP_LOG" | awk '{s += $3} END {print s + 0}')
  PASSED=$((p + sp))
  FAILED=$((f + sf))
}

summary() {
  count_tests
  echo
  echo "==> summary"
  printf '  %s\n' "${STAGES[@]}"
  echo "${PASSED} passed, ${FAILED} failed"
}

# The `_sqlx_test_*` databases that exist now are not this run's to drop.
sqlx_databases() {
  command -v psql >/dev/null || return 0
  psql "$DATABASE_URL" -Atqc "select datname from pg_database where datname like '\\_sqlx\\_test\\_%'" 2>/dev/null || true
}
drop_test_databases() {
  command -v psql >/dev/null || return 0
  local db
  for db in $(comm -13 <(echo "$DATABASES_BEFORE" | sort) <(sqlx_databases | sort)); do
    psql "$DATABASE_URL" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  done
}

cleanup() {
  control_plane_stop || true
  drop_test_databases || true
  if declare -F private_postgres_stop >/dev/null; then private_postgres_stop; fi
  rm -f "$TEST_LOG" "$SHIP_LOG"
}

if [ "${NSPOOL_TEST_PRIVATE_PG:-}" = 1 ]; then unset DATABASE_URL; fi
if [ -z "${DATABASE_URL:-}" ]; then
  if [ "${NSPOOL_TEST_PRIVATE_PG:-}" != 1 ] && port_open 127.0.0.1 5432 && command -v psql >/dev/null && \
     psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    # shellcheck source=scripts/private-postgres.sh
    source scripts/private-postgres.sh
    private_postgres_start
  fi
fi
# The browser tests drive Debian's Chromium (NSPOOL_CHROMIUM names another).
if [ -z "${NSPOOL_CHROMIUM:-}" ] && ! [ -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "no Chromium: installing Debian's chromium package"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "no Chromium: install Debian's chromium package or set NSPOOL_CHROMIUM" >&2
  fi
fi
# The GraphQL over HTTP audit (tests/it/graphql_http.rs) runs graphql-http's
# serverAudits with Node.js, from the pinned packages of its lock file.
AUDIT=scripts/graphql-http-audit
if ! [ -d "$AUDIT/node_modules/graphql-http" ]; then
  if command -v npm >/dev/null; then
    echo "installing the GraphQL over HTTP audit (npm ci in $AUDIT)"
    npm ci --prefix "$AUDIT" --no-audit --no-fund --silent
  else
    echo "no npm: the GraphQL over HTTP audit test will fail; install Node.js" >&2
  fi
fi
# The schema fuzzer (tests/it/schemathesis.rs): schemathesis from PyPI, pinned,
# in its own virtualenv so that its dependencies meet no other tool's.
FUZZER_VENV=target/schemathesis-venv
FUZZER_REQUIREMENTS=scripts/schemathesis/requirements.txt
if ! [ -x "$FUZZER_VENV/bin/st" ] || ! cmp -s "$FUZZER_REQUIREMENTS" "$FUZZER_VENV/requirements.txt"; then
  echo "installing the schema fuzzer ($(grep -v '^#' "$FUZZER_REQUIREMENTS" | xargs) into $FUZZER_VENV)"
  if ! python3 -m venv --clear "$FUZZER_VENV" >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    # Debian keeps venv apart from python3.
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv --clear "$FUZZER_VENV"
  fi
  "$FUZZER_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$FUZZER_REQUIREMENTS"
  cp "$FUZZER_REQUIREMENTS" "$FUZZER_VENV/requirements.txt"
fi
# The test control plane needs Go to be built; without it the Kubernetes
# tests cannot run, and the run says so rather than skip them.
if ! command -v go >/dev/null; then
  echo "no Go: the Kubernetes tests build their control plane with Go 1.26 or newer; install it (https://go.dev/doc/install) and put it on PATH" >&2
  exit 1
fi
if ! command -v kubectl >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "no kubectl: installing Debian's kubernetes-client package"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
  else
    echo "no kubectl: install Debian's kubernetes-client package (the Kubernetes tests use kubectl)" >&2
    exit 1
  fi
fi
CONTROL_PLANE_PIDS=()
CONTROL_PLANE_DIRS=()
# The Kubernetes versions tested: the newest first (the whole suite), then
# the oldest (the Kubernetes tests again). `scripts/control-plane --k8s VER`
# builds an older one from the same sources (tests/control-plane/go.VER.mod).
KUBERNETES_NEWEST=1.36
KUBERNETES_OLDEST=1.34
control_plane_args() { if [ "$1" != "$KUBERNETES_NEWEST" ]; then echo --k8s "$1"; fi; }
control_plane_build() {
  local version
  for version in "$KUBERNETES_NEWEST" "$KUBERNETES_OLDEST"; do
    # shellcheck disable=SC2046
    scripts/control-plane $(control_plane_args "$version") --build-only >/dev/null || return 1
  done
}
# Two control planes of Kubernetes $1, side by side, for every test (two
# clusters: tests/it/cluster.rs, Cluster::connect and Cluster::connect_second).
# They start at once; their kubeconfigs and audit logs are named to the tests
# in NSPOOL_TEST_KUBECONFIG and NSPOOL_TEST_AUDIT_LOG (with _2: the second),
# and the version in NSPOOL_TEST_K8S (--k8s; unset: the newest) for the
# control planes a test starts of its own (OwnedPlane).
control_plane_start() {
  local dir pid i waited
  for i in 0 1; do
    dir=$(mktemp -d /tmp/nspool-control-plane.XXXXXX)
    CONTROL_PLANE_DIRS+=("$dir")
    # shellcheck disable=SC2046
    scripts/control-plane $(control_plane_args "$1") --kubeconfig "$dir/kubeconfig" \
      --audit-log "$dir/audit.log" >"$dir/out.log" 2>&1 &
    CONTROL_PLANE_PIDS+=("$!")
  done
  for i in 0 1; do
    dir=${CONTROL_PLANE_DIRS[$i]}
    pid=${CONTROL_PLANE_PIDS[$i]}
    waited=0
    until [ -s "$dir/kubeconfig" ]; do
      if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge 1200 ]; then
        echo "test control plane $((i + 1)) did not start; its output:" >&2
        tail -n 40 "$dir/out.log" >&2
        return 1
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
    cat "$dir/out.log"
  done
  export NSPOOL_TEST_KUBECONFIG="${CONTROL_PLANE_DIRS[0]}/kubeconfig"
  export NSPOOL_TEST_AUDIT_LOG="${CONTROL_PLANE_DIRS[0]}/audit.log"
  export NSPOOL_TEST_KUBECONFIG_2="${CONTROL_PLANE_DIRS[1]}/kubeconfig"
  export NSPOOL_TEST_AUDIT_LOG_2="${CONTROL_PLANE_DIRS[1]}/audit.log"
  if [ "$1" = "$KUBERNETES_NEWEST" ]; then unset NSPOOL_TEST_K8S; else export NSPOOL_TEST_K8S="$1"; fi
}
# Both at once (each stops in about a second), then their files.
control_plane_stop() {
  local pid dir
  for pid in "${CONTROL_PLANE_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${CONTROL_PLANE_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  for dir in "${CONTROL_PLANE_DIRS[@]}"; do
    rm -rf "$dir"
  done
  CONTROL_PLANE_PIDS=()
  CONTROL_PLANE_DIRS=()
  unset NSPOOL_TEST_KUBECONFIG NSPOOL_TEST_AUDIT_LOG NSPOOL_TEST_KUBECONFIG_2 NSPOOL_TEST_AUDIT_LOG_2 NSPOOL_TEST_K8S
}
# Over the whole run, not test by test: no account of nspool's ever sent a
# DELETE to either control plane (their audit logs, every request at Metadata
# level), but the tests' own probes of what nspool's RBAC refuses (user agent
# nspool-test-probe, tests/it/cluster.rs). The planes a test owns are checked
# by the test itself (OwnedPlane's drop), as their logs go with them.
never_deleted() {
  local log found all=0
  for log in "$NSPOOL_TEST_AUDIT_LOG" "$NSPOOL_TEST_AUDIT_LOG_2"; do
    found=$(grep -E '"verb":"(delete|deletecollection)"' "$log" |
      grep 'system:serviceaccount:astronomer:nspool' | grep -vc '"userAgent":"nspool-test-probe"' || true)
    echo "${log}: $(grep -c . "$log" || true) requests audited; DELETEs sent by nspool: ${found}"
    all=$((all + found))
  done
  [ "$all" = 0 ]
}
# The Kubernetes tests alone (every test that talks to the control plane).
KUBERNETES_TESTS=(cluster_planes:: kube_cluster:: kube_clusters:: kube_drift:: kube_rbac:: kube_lease:: hygiene:: kube_events:: reload::a_reload_reapplies)
run_kubernetes_tests() {
  cargo test --locked --test it -- "${KUBERNETES_TESTS[@]}" 2>&1 | tee -a "$TEST_LOG"
}
DATABASES_BEFORE=$(sqlx_databases)
trap cleanup EXIT
echo "tests use ${DATABASE_URL}"

# The 100,000-namespace tests run on their own after the rest: their load
# (a pool that size, a serve process measured for memory) would otherwise
# share 2 cores with tests that hold answers to a time budget.
run_tests() { cargo test --locked -- --skip scale:: 2>&1 | tee "$TEST_LOG"; }
run_scale_tests() { cargo test --locked --test it -- scale:: 2>&1 | tee -a "$TEST_LOG"; }
# Its own closing line is folded into the summary, so it is not echoed as is.
run_shipping() { scripts/check-shipping.sh 2>&1 | tee "$SHIP_LOG" | grep -Ev '^[0-9]+ passed, [0-9]+ failed$'; }

stage "format (cargo fmt --check)" cargo fmt --all -- --check
stage "lints (cargo clippy -D warnings)" cargo clippy --locked --all-targets -- -D warnings
stage "test control planes: Kubernetes ${KUBERNETES_NEWEST} and ${KUBERNETES_OLDEST}, built when changed (scripts/control-plane)" control_plane_build
stage "Kubernetes ${KUBERNETES_NEWEST} control planes (two): start" control_plane_start "$KUBERNETES_NEWEST"
stage "unit and integration tests (cargo test), Kubernetes ${KUBERNETES_NEWEST}" run_tests
stage "the 100,000-namespace tests, alone (scale::)" run_scale_tests
stage "nspool never sent a DELETE to Kubernetes ${KUBERNETES_NEWEST} (audit logs)" never_deleted
stage "Kubernetes ${KUBERNETES_NEWEST} control planes: stop" control_plane_stop
stage "Kubernetes ${KUBERNETES_OLDEST} control planes (two): start" control_plane_start "$KUBERNETES_OLDEST"
stage "the Kubernetes tests again, Kubernetes ${KUBERNETES_OLDEST}" run_kubernetes_tests
stage "nspool never sent a DELETE to Kubernetes ${KUBERNETES_OLDEST} (audit logs)" never_deleted
stage "Kubernetes ${KUBERNETES_OLDEST} control planes: stop" control_plane_stop
stage "shipped files: Dockerfile, manifests, alert rules (scripts/check-shipping.sh)" run_shipping
summary
