#!/usr/bin/env bash
# Starts etcd on loopback with a fresh data dir, measures it with etcdbench,
# then measures trunkd's RPC the same way, so both sets of numbers come from
# the same machine in the same run. Needs etcd (Debian: etcd-server).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v etcd >/dev/null; then
  echo "etcd is not installed (Debian: apt-get install etcd-server); skipping the etcd comparison" >&2
  exit 1
fi
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
etcd --data-dir "$dir/etcd" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster default=http://127.0.0.1:23800 --log-level error >"$dir/etcd.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  (echo > /dev/tcp/127.0.0.1/23790) 2>/dev/null && break
  sleep 0.1
done
(cd "$here" && go run . -duration "${BENCHTIME:-3s}")
kill $pid; wait $pid 2>/dev/null || true
echo
echo "trunkd (same machine, same run):"
cd "$here/../.."
go test -run '^$' -bench 'BenchmarkRPC/(GetTrunk|UpdateTrunk)/' -benchtime "${BENCHTIME:-3s}" ./cmd/trunkd | grep -E '^Benchmark'
