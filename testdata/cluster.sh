#!/usr/bin/env bash
# Starts a 3-member etcd and 3 trunkd nodes sharing it, on loopback
# addresses 127.0.0.2-4 (one machine), in the foreground; Ctrl-C stops
# them all. Run by `make cluster`; data in $CLUSTER_DIR (./trunkd-cluster).
#
#   etcd member mN   127.0.0.N+1:2379 (clients), :2380 (peers)
#   trunkd node nN   127.0.0.N+1:7443 (admin RPC, UDP), :9464 (metrics)
#
# Trunks stored with internal_sip_ip 127.0.0.2 run on each node's own
# address (--ip-map 127.0.0.2=127.0.0.N+1).
set -euo pipefail
BIN=${BIN:-bin}
DIR=${CLUSTER_DIR:-./trunkd-cluster}
IPS=(127.0.0.2 127.0.0.3 127.0.0.4)
command -v etcd >/dev/null || { echo "etcd is not installed: make deps (Debian's etcd-server)"; exit 1; }

# Leftover members on these ports would join this cluster: refuse.
for ip in "${IPS[@]}"; do
  for port in 2379 2380 9464; do
    if (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; then echo "$ip:$port is in use; stop what listens there first"; exit 1; fi
  done
done

mkdir -p "$DIR"
chmod 700 "$DIR"
# Every node shares the secret key (secrets at rest) and the JWT secret.
if [ ! -f "$DIR/secret.key" ]; then
  (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$DIR/secret.key"; echo >> "$DIR/secret.key")
fi
if [ ! -f "$DIR/jwt.secret" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > "$DIR/jwt.secret"; echo >> "$DIR/jwt.secret")
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

initial=""
for i in 0 1 2; do initial+="${initial:+,}m$((i+1))=http://${IPS[$i]}:2380"; done
state=new
[ -d "$DIR/m1" ] && state=existing
for i in 0 1 2; do
  ip=${IPS[$i]}
  etcd --name "m$((i+1))" --data-dir "$DIR/m$((i+1))" \
    --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
    --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
    --initial-cluster "$initial" --initial-cluster-state "$state" --initial-cluster-token trunkd-cluster \
    --auto-compaction-mode periodic --auto-compaction-retention 10m --experimental-enable-lease-checkpoint \
    --logger zap --log-level warn > "$DIR/m$((i+1)).log" 2>&1 &
  pids+=($!)
done

endpoints=$(printf "%s:2379," "${IPS[@]}"); endpoints=${endpoints%,}
for i in 0 1 2; do
  ip=${IPS[$i]}
  "$BIN/trunkd" --listen "$ip:7443" --data "$DIR/n$((i+1))" --metrics-listen "$ip:9464" \
    --store "etcd://$endpoints" --node-name "n$((i+1))" --ip-map "127.0.0.2=$ip" \
    --secret-key-file "$DIR/secret.key" --jwt-secret-file "$DIR/jwt.secret" > >(sed -u "s/^/n$((i+1)) /") 2>&1 &
  pids+=($!)
done

# One file pins the three nodes' self-signed certificates.
for _ in $(seq 50); do
  [ -f "$DIR/n1/tls.crt" ] && [ -f "$DIR/n2/tls.crt" ] && [ -f "$DIR/n3/tls.crt" ] && break
  sleep 0.2
done
cat "$DIR"/n{1,2,3}/tls.crt > "$DIR/ca.pem" 2>/dev/null || true
cat <<MSG

3 etcd members and 3 trunkd nodes (n1 127.0.0.2, n2 127.0.0.3, n3 127.0.0.4) are starting; Ctrl-C stops them.
In another terminal:

  export TRUNKD_TOKEN=\$($BIN/trunkctl token --secret-file $DIR/jwt.secret --scope trunks:manage --ttl 1h) TRUNKD_CA=$DIR/ca.pem
  $BIN/trunkctl --addr 127.0.0.2:7443 add --trunk-id carrier-1 --gateway-ip 192.0.2.10 --domain sip.example.com --internal-sip-ip 127.0.0.2
  $BIN/trunkctl --addr 127.0.0.4:7443 get carrier-1     # the same trunk, live on n3 at 127.0.0.4:5060

MSG
wait -n "${pids[@]}" || true
