#!/bin/sh
# restic backup and restore of one file through `zgrid store serve-s3`
# against restic to a local directory, in the same run.
#
#   ZGRID_MNEMONIC="…24 words…" bench/s3/run.sh ZGRID_BINARY [SIZE_MIB]   (default 1024)
#
# The store: 4+2 over six packed directory backends in $WORK (one disk),
# 8 MiB segments. Prints one line per phase: name, seconds, MB/s (10^6
# bytes of the file per second), the gateway's peak RSS for S3 phases.
# Every restore is compared with the source (cmp).
set -eu
zgrid=$1 mib=${2:-1024}
WORK=$(mktemp -d /var/tmp/zgs3.XXXXXX)
trap 'kill $sp 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
unset AWS_CA_BUNDLE
head -c $((mib << 20)) /dev/urandom > "$WORK/src.bin"
bytes=$((mib << 20))
{
  echo "k: 4"; echo "m: 2"; echo "segment_size: 8388608"; echo "backends:"
  for i in 0 1 2 3 4 5; do echo "  - {id: b$i, type: dir, path: shards/b$i, domain: r$i, layout: packed}"; done
} > "$WORK/store.yaml"
: "${ZGRID_MNEMONIC:?set ZGRID_MNEMONIC to a 24-word mnemonic (a throwaway one for the benchmark)}"
"$zgrid" store init --config "$WORK/store.yaml" >/dev/null
eval "$("$zgrid" store s3-keys -o json | python3 -c 'import json,sys; k=json.load(sys.stdin); print("export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s" % (k["access_key_id"], k["secret_access_key"]))')"
"$zgrid" store serve-s3 --config "$WORK/store.yaml" --listen 127.0.0.1:19300 >"$WORK/serve.log" 2>&1 &
sp=$!
sleep 1
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$WORK/cache"
timed() { # name command...
  name=$1; shift
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N); "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }; t1=$(date +%s.%N)
  echo "$name $(echo "$t0 $t1 $bytes $load" | awk '{d=$2-$1; printf "%.2f s  %.0f MB/s  (load %s)", d, $3/d/1e6, $4}')"
}
rs3="s3:http://127.0.0.1:19300/restic"
restic -r "$rs3" init >/dev/null
timed "restic-backup-serve-s3" restic -r "$rs3" backup "$WORK/src.bin"
timed "restic-restore-serve-s3" restic -r "$rs3" restore latest --target "$WORK/out-s3"
cmp "$WORK/src.bin" "$WORK/out-s3$WORK/src.bin"
echo "serve-s3 peak RSS: $(grep VmHWM /proc/$sp/status | awk '{print $2/1024 " MiB"}')"
rdir="$WORK/restic-local"
restic -r "$rdir" init >/dev/null
timed "restic-backup-local" restic -r "$rdir" backup "$WORK/src.bin"
timed "restic-restore-local" restic -r "$rdir" restore latest --target "$WORK/out-local"
cmp "$WORK/src.bin" "$WORK/out-local$WORK/src.bin"
echo "verified: both restores are byte-identical to the source"
