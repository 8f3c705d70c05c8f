#!/bin/sh
# Compares `zgridd zdb` with 0-db (built from its source) under
# redis-benchmark: SET and GET, pipeline 1 and 16, 12-byte and 4 KiB values,
# 50 clients, keys drawn from 100 000. Both servers run on loopback, data
# in fresh directories under $WORK, each with its defaults (zdb: --sync
# batch, 0-db: no fsync; zdb allows the 50 clients from one address with
# --max-conns-per-addr 64).
#
#   bench/zdb/run.sh ZGRIDD_BINARY ZERODB_BINARY [REQUESTS]
#
# (0-db stalled under 100 000 SETs from 50 clients in our runs, so the
# default is 20 000 requests per row; a row that times out prints empty.)
#
# Prints one CSV line per row: server,test,pipeline,value_bytes,requests_per_second.
set -eu
zgridd=$1 zerodb=$2 n=${3:-20000}
WORK=$(mktemp -d)
trap 'kill $zp $op 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
"$zerodb" --listen 127.0.0.1 --port 19901 --data "$WORK/0db/data" --index "$WORK/0db/index" >"$WORK/0db.log" 2>&1 &
zp=$!
ZGRID_ZDB_ADMIN= "$zgridd" zdb --dir "$WORK/zdb" --listen 127.0.0.1:19902 --protect=false --max-conns-per-addr 64 >"$WORK/zdb.log" 2>&1 &
op=$!
sleep 1
v12=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
v4k=$(head -c 2048 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for size in 12 4096; do
  if [ $size = 12 ]; then v=$v12; else v=$v4k; fi
  for p in 1 16; do
    for srv in 0-db:19901 zdb:19902; do
      name=${srv%%:*} port=${srv##*:}
      set=$(timeout 120 redis-benchmark -p "$port" -n "$n" -c 50 -P "$p" -r 100000 --csv SET "k:__rand_int__" "$v" 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      get=$(timeout 120 redis-benchmark -p "$port" -n "$n" -c 50 -P "$p" -r 100000 --csv GET "k:__rand_int__" 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      echo "$name,SET,$p,$size,$set"
      echo "$name,GET,$p,$size,$get"
    done
  done
done
