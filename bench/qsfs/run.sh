#!/usr/bin/env bash
# qsfs inside a container: sequential write and read of SIZE (default
# 1GiB) with fio at the container's /data (a qsfs, 3+2 over six zdbs on
# three nodes), at its plain volume /vol, and at `zgrid store mount` of the
# same zdbs on the container's node (as the host would mount it), in one
# run. Needs root, fio, and what `zgrid up` needs. Usage (from the repo):
#
#   go build -o /tmp/zg/ ./cmd/zgrid ./cmd/zgridd && PATH=/tmp/zg:$PATH bench/qsfs/run.sh [SIZE]
set -euo pipefail
SIZE=${1:-1GiB}
D=$(mktemp -d /tmp/qsfs-bench.XXXXXX)
export ZDB_PASSWORD=bench-zdb-password
zgrid up --dir "$D" --nodes 4 --heartbeat 2s --block-interval 200ms \
  --ledger-addr 127.0.0.1:0 --hub-addr 127.0.0.1:0 --gateway-addr 127.0.0.1:0 >"$D/up.out" 2>"$D/up.log" &
UP=$!
cleanup() { umount -l "$D/hostmnt" 2>/dev/null || true; [ -n "${MNT:-}" ] && kill "$MNT" 2>/dev/null; kill "$UP"; wait "$UP" || true; }
trap cleanup EXIT
until grep -q "grid ready" "$D/up.out"; do sleep 1; done
G="$D/grid.json"
zg() { zgrid --grid "$G" "$@"; }
STORE_MNEMONIC=$(ZGRID_PASSPHRASE=bench zgrid key new --out "$D/store.key" 2>&1 >/dev/null | sed -n 's/^  \(.*[a-z] .*\)$/\1/p' | head -1)
export STORE_MNEMONIC ZGRID_MNEMONIC="$STORE_MNEMONIC"
cat >"$D/zdb.yaml" <<'Y'
version: 1
secrets: {ZDB_PASSWORD: {env: ZDB_PASSWORD}}
workloads:
  - {name: db1, type: zdb, size: 4GiB, password: ZDB_PASSWORD}
  - {name: db2, type: zdb, size: 4GiB, password: ZDB_PASSWORD}
Y
ids=(); backends=()
for n in 1 2 3; do
  id=$(zg deploy -f "$D/zdb.yaml" --node "$n" 2>/dev/null); ids+=("$id")
  backends+=("$id/db1" "$id/db2")
done
wait_ready() { until zg status "$1" -o json | grep -q '"state": *"Ready"' && ! zg status "$1" -o json | grep -q '"state": *"\(Provisioning\|Pending\|Degraded\)"'; do sleep 1; done; }
for id in "${ids[@]}"; do wait_ready "$id"; done
BL=$(IFS=,; echo "${backends[*]}")
cat >"$D/fs.yaml" <<Y
version: 1
secrets: {ZDB_PASSWORD: {env: ZDB_PASSWORD}, STORE_MNEMONIC: {env: STORE_MNEMONIC}}
workloads:
  - {name: fs, type: qsfs, k: 3, m: 2, secret: STORE_MNEMONIC, password: ZDB_PASSWORD, backends: [${BL//,/, }]}
  - {name: vol, type: volume, size: 4GiB}
  - name: web
    type: container
    image: hello:latest
    cpu: 1
    memory: 256MiB
    ports: [8080]
    mounts: [{volume: fs, path: /data}, {volume: vol, path: /vol}]
Y
FS=$(zg deploy -f "$D/fs.yaml" --node 4 2>/dev/null); wait_ready "$FS"
root="$D/nodes/node4/run/runc"
PID=$(runc --root "$root" state "$(runc --root "$root" list -q | head -1)" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
NS=$(sed -n 's/.*"namespace": *"\([^"]*n4\)".*/\1/p' "$G" | head -1)
# The host's own mount of a store over the same zdbs, on node 4 (on the overlay).
ids_csv=$(IFS=,; echo "${ids[*]}")
# (init itself fails here, off the overlay; the qsfs created the store.)
zg store init --config "$D/host.yaml" --from-contracts "$ids_csv" >/dev/null 2>&1 || true
mkdir -p "$D/hostmnt"
nsenter --net=/run/netns/"$NS" zgrid store --config "$D/host.yaml" mount --repair-every 0 "$D/hostmnt" >"$D/hostmnt.log" 2>&1 &
MNT=$!
until mountpoint -q "$D/hostmnt"; do sleep 0.5; done
run_fio() { # $1 label, $2 dir
  for rw in write read; do
    out=$(fio --name=seq --directory="$2" --filename=fio.bin --rw=$rw --bs=1M --size="$SIZE" --ioengine=psync \
      --end_fsync=1 --invalidate=1 --numjobs=1 --output-format=terse --terse-version=3 2>/dev/null)
    if [ $rw = write ]; then bw=$(echo "$out" | cut -d';' -f48); else bw=$(echo "$out" | cut -d';' -f7); fi
    awk -v l="$1" -v rw=$rw -v bw="$bw" 'BEGIN { printf "%-34s %-5s %8.1f MB/s\n", l, rw, bw / 1000 }'
  done
}
echo "fio sequential, bs=1M, $SIZE, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run_fio "container /vol (plain volume)" "/proc/$PID/root/vol"
run_fio "container /data (qsfs 3+2)" "/proc/$PID/root/data"
run_fio "host: zgrid store mount (3+2)" "$D/hostmnt"
