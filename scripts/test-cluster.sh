#!/usr/bin/env bash
# The second half of `make test`: the API, worker, fault and e2e suites again,
# this time on a local Redis Cluster (3 masters + 3 replicas, ports 7101-7106)
# started from the machine's redis-server. In CI a missing redis-server fails
# the run; elsewhere the half is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.venv/bin/python}
if ! command -v redis-server >/dev/null; then
  if [ -n "${CI:-}" ]; then echo "test-cluster: redis-server is missing" >&2; exit 1; fi
  echo "test-cluster: no redis-server on this machine: the cluster run is skipped"
  exit 0
fi
scripts/redis-cluster.sh start 7101
REDIS_MODE=cluster TEST_REDIS_CLUSTER_URL=redis://127.0.0.1:7101/0 \
  "$python" -m pytest -q tests/api tests/core tests/workers tests/observability tests/e2e
