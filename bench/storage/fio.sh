#!/usr/bin/env bash
# fio against `zgrid store mount` and against a local directory on the same
# disk, in the same run (docs/benchmarks.md). Needs root, /dev/fuse,
# fusermount3 and fio. Each mount job gets a fresh mount (cold caches) and
# reports the mount process's peak RSS (VmHWM).
#
#   bench/storage/fio.sh [WORKDIR] [SIZE] [FILES]   SIZE default 256M, FILES 2000
set -euo pipefail
work=${1:-$(mktemp -d /var/tmp/zgrid-fio-XXXXXX)}
size=${2:-256M}
files=${3:-2000}
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"
bin="$work/zgrid"
(cd "$repo" && go build -o "$bin" ./cmd/zgrid)
# The BIP-39 test vector: a throwaway store, never a real secret.
export ZGRID_MNEMONIC="$(printf 'abandon %.0s' $(seq 23))art"
cfg="$work/store.yaml"
{
	echo "k: 4"; echo "m: 2"; echo "backends:"
	for i in 0 1 2 3 4 5; do echo "  - {id: b$i, type: dir, path: shards/b$i, domain: d$i}"; done
} >"$cfg"
[ -e "$work/shards" ] || "$bin" store init --config "$cfg" >/dev/null
mnt="$work/mnt" local="$work/local"
mkdir -p "$mnt" "$local"

mount_store() {
	"$bin" store mount --config "$cfg" --repair-every 0 "$mnt" >"$work/mount.out" 2>"$work/mount.err" &
	mpid=$!
	for _ in $(seq 100); do grep -q "mounted at" "$work/mount.out" 2>/dev/null && return; sleep 0.1; done
	echo "mount failed: $(cat "$work/mount.err")" >&2; exit 1
}
unmount_store() {
	rss=$(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$mpid/status)
	kill -TERM $mpid; wait $mpid || true
}

job() { # name dir fio-args...
	local name=$1 dir=$2; shift 2
	fio --name="$name" --directory="$dir" --output-format=terse --terse-version=3 "$@" >"$work/$name.terse"
}
# terse v3: field 7 read bw KiB/s, 8 read IOPS, 48 write bw KiB/s, 49 write IOPS, 5/46 runtime?
report() { # name where
	awk -F';' -v n="$1" -v w="$2" -v r="$3" '{printf "%-22s %-6s read %8.1f MB/s %9.0f IOPS | write %8.1f MB/s %9.0f IOPS | rss %s\n", n, w, $7*1.024/1000, $8, $48*1.024/1000, $49, r}' "$work/$1.terse"
}

run() { # name fio-args... : once on the mount, once on the local dir
	local name=$1; shift
	mount_store
	job "$name-zgrid" "$mnt" "$@"
	unmount_store
	report "$name-zgrid" zgrid "$rss"
	job "$name-local" "$local" "$@"
	report "$name-local" local "-"
}

# refill_buffers: incompressible data (compressed segments are read whole).
run seqwrite --rw=write --bs=1M --size="$size" --end_fsync=1 --refill_buffers=1 --filename=seq
run seqread --rw=read --bs=1M --size="$size" --direct=1 --filename=seq
run randread4k --rw=randread --bs=4k --size="$size" --direct=1 --filename=seq --time_based --runtime=15
# From the mount's caches: a 16 MiB region read twice, reported the second time.
mount_store
job randread4k-warm-zgrid "$mnt" --rw=randread --bs=4k --size=16M --direct=1 --filename=seq --time_based --runtime=5
job randread4k-cached-zgrid "$mnt" --rw=randread --bs=4k --size=16M --direct=1 --filename=seq --time_based --runtime=10
unmount_store
report randread4k-cached-zgrid zgrid "$rss"
job randread4k-cached-local "$local" --rw=randread --bs=4k --size=16M --direct=1 --filename=seq --time_based --runtime=10
report randread4k-cached-local local "-"
# Small files: N × 16 KiB, each fsynced on close.
for n in $files; do
	for where in zgrid local; do
		d=$local; [ $where = zgrid ] && { mount_store; d=$mnt; }
		mkdir -p "$d/small$n"
		t0=$(date +%s.%N)
		fio --name=small --minimal --directory="$d/small$n" --rw=write --bs=16k --filesize=16k --nrfiles=$n \
			--openfiles=1 --file_service_type=sequential --fsync_on_close=1 --create_on_open=1 --refill_buffers=1 >"$work/small-$where.out" 2>&1
		t1=$(date +%s.%N)
		r="-"; [ $where = zgrid ] && unmount_store && r=$rss
		printf "%-22s %-6s %8.0f files/s (%d files in %.1f s) | rss %s\n" "small16k-fsync-$n" $where \
			"$(echo "$n / ($t1 - $t0)" | bc -l)" $n "$(echo "$t1 - $t0" | bc -l)" "$r"
	done
done
