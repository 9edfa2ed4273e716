#!/usr/bin/env bash
# A local Redis Cluster (3 masters + 3 replicas) from the machine's redis-server,
# for the cluster-mode test run and for trying REDIS_MODE=cluster by hand.
#   scripts/redis-cluster.sh start [FIRST_PORT]   (default 7101: ports 7101-7106)
#   scripts/redis-cluster.sh stop  [FIRST_PORT]
# Nodes keep nothing on disk; their files live in var/redis-cluster/<port>.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-start}
first=${2:-7101}
ports=$(seq "$first" $((first + 5)))
base=var/redis-cluster

# Shut a node down and wait until its port is free.
down() {
  redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true
  for _ in $(seq 50); do
    redis-cli -p "$1" ping >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  echo "redis cluster: node $1 did not stop" >&2
  return 1
}

up() { redis-cli -p "$first" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; }

case $action in
start)
  if up; then echo "redis cluster: already up on $first-$((first + 5))"; exit 0; fi
  for port in $ports; do
    mkdir -p "$base/$port"
    down "$port"
    # a replica keeps the RDB its master sent it: start empty
    rm -f "$base/$port/nodes.conf" "$base/$port/"*.rdb
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
      --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 2000 --cluster-replica-validity-factor 0 \
      --save "" --appendonly no \
      --dir "$base/$port" --logfile redis.log
  done
  for port in $ports; do
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  # shellcheck disable=SC2046
  redis-cli --cluster create $(for p in $ports; do echo "127.0.0.1:$p"; done) \
    --cluster-replicas 1 --cluster-yes >"$base/create-$first.log" \
    || { cat "$base/create-$first.log" >&2; exit 1; }
  for _ in $(seq 100); do up && break; sleep 0.1; done
  up || { echo "redis cluster: did not come up" >&2; exit 1; }
  # every replica in sync before tests start failing masters over
  for _ in $(seq 100); do
    n=0
    for port in $ports; do
      redis-cli -p "$port" info replication | grep -q 'master_link_status:up' && n=$((n + 1))
    done
    [ "$n" -ge 3 ] && break
    sleep 0.1
  done
  # and every node lists them in CLUSTER SLOTS, where clients that wait for
  # replicas read them: a replica is listed once its replication offset is
  # not 0, so each master replicates one write (a no-op FLUSHALL) first
  for port in $ports; do
    if redis-cli -p "$port" info replication | grep -q 'role:master'; then
      redis-cli -p "$port" flushall >/dev/null
    fi
  done
  pattern=$(echo $ports | tr ' ' '|')
  for _ in $(seq 100); do
    n=0
    for port in $ports; do
      k=$(redis-cli -p "$port" cluster slots | grep -cxE "$pattern" || true)
      [ "$k" -ge 6 ] && n=$((n + 1))
    done
    [ "$n" -ge 6 ] && break
    sleep 0.1
  done
  echo "redis cluster: up on 127.0.0.1:$first-$((first + 5))"
  ;;
stop)
  for port in $ports; do down "$port"; done
  echo "redis cluster: stopped"
  ;;
*) echo "usage: $0 start|stop [FIRST_PORT]" >&2; exit 2 ;;
esac
