#!/usr/bin/env bash
# The dev loop without Skaffold: build the image, load it into kind, install or
# upgrade the chart and run its tests. Creates the kind cluster and the Traefik
# ingress controller on first use.
#
#   scripts/kind-dev.sh            # whole loop
#   SKIP_TESTS=1 scripts/kind-dev.sh
#
# Environment: KIND_CLUSTER (twitter), RELEASE (twitter), NAMESPACE (twitter),
# IMAGE_REPO (twitter-backend), HELM/KUBECTL/KIND/DOCKER (binaries; .tools/bin is
# preferred for helm and kubectl), TRAEFIK_CHART_VERSION (pin the ingress chart),
# HELM_TIMEOUT (10m), EXTRA_VALUES (another values file).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIND_CLUSTER="${KIND_CLUSTER:-twitter}"
RELEASE="${RELEASE:-twitter}"
NAMESPACE="${NAMESPACE:-twitter}"
IMAGE_REPO="${IMAGE_REPO:-twitter-backend}"
HELM_TIMEOUT="${HELM_TIMEOUT:-10m}"
CONTEXT="kind-${KIND_CLUSTER}"

tool() {  # tool NAME: the pinned copy in .tools/bin when present
  local name="$1"
  if [[ -x "${ROOT}/.tools/bin/${name}" ]]; then
    echo "${ROOT}/.tools/bin/${name}"
  else
    echo "${name}"
  fi
}
HELM="${HELM:-$(tool helm)}"
KUBECTL="${KUBECTL:-$(tool kubectl)}"
KIND="${KIND:-kind}"
DOCKER="${DOCKER:-docker}"

step() { printf '\n==> %s\n' "$*"; }

for bin in "$DOCKER" "$KIND" "$HELM" "$KUBECTL"; do
  command -v "$bin" >/dev/null || { echo "missing: $bin" >&2; exit 1; }
done

if ! "$KIND" get clusters | grep -qx "$KIND_CLUSTER"; then
  step "creating kind cluster $KIND_CLUSTER"
  "$KIND" create cluster --name "$KIND_CLUSTER" --config "${ROOT}/k8s/kind-config.yaml"
fi

if ! "$KUBECTL" --context "$CONTEXT" get ingressclass traefik >/dev/null 2>&1; then
  step "installing the Traefik ingress controller"
  version_args=()
  if [[ -n "${TRAEFIK_CHART_VERSION:-}" ]]; then
    version_args=(--version "$TRAEFIK_CHART_VERSION")
  fi
  "$HELM" --kube-context "$CONTEXT" upgrade --install traefik traefik \
    --repo https://traefik.github.io/charts --namespace traefik --create-namespace \
    --values "${ROOT}/k8s/traefik-values.yaml" \
    ${version_args[@]+"${version_args[@]}"} --wait
fi

step "building ${IMAGE_REPO}"
"$DOCKER" build --tag "${IMAGE_REPO}:dev" "$ROOT"
# A tag per image content, so a rebuilt image rolls the pods and an unchanged one does not.
image_id="$("$DOCKER" image inspect --format '{{.Id}}' "${IMAGE_REPO}:dev")"
tag="dev-${image_id#sha256:}"
tag="${tag:0:16}"
"$DOCKER" tag "${IMAGE_REPO}:dev" "${IMAGE_REPO}:${tag}"

step "loading ${IMAGE_REPO}:${tag} into kind"
"$KIND" load docker-image "${IMAGE_REPO}:${tag}" --name "$KIND_CLUSTER"

step "namespace ${NAMESPACE} (Pod Security Standard: restricted)"
"$KUBECTL" --context "$CONTEXT" create namespace "$NAMESPACE" --dry-run=client -o yaml \
  | "$KUBECTL" --context "$CONTEXT" apply -f -
"$KUBECTL" --context "$CONTEXT" label --overwrite namespace "$NAMESPACE" \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted

step "helm upgrade --install ${RELEASE}"
values_args=(--values "${ROOT}/k8s/values-kind.yaml")
if [[ -n "${EXTRA_VALUES:-}" ]]; then
  values_args+=(--values "$EXTRA_VALUES")
fi
"$HELM" --kube-context "$CONTEXT" upgrade --install "$RELEASE" "${ROOT}/charts/twitter" \
  --namespace "$NAMESPACE" --create-namespace \
  "${values_args[@]}" \
  --set "image.repository=${IMAGE_REPO}" --set "image.tag=${tag}" \
  --wait --wait-for-jobs --timeout "$HELM_TIMEOUT"

if [[ -z "${SKIP_TESTS:-}" ]]; then
  step "helm test ${RELEASE}"
  "$HELM" --kube-context "$CONTEXT" test "$RELEASE" --namespace "$NAMESPACE" \
    --logs --timeout 5m
fi

step "ready"
echo "API: http://twitter.local/healthz (add '127.0.0.1 twitter.local' to /etc/hosts)"
