#!/usr/bin/env bash
# bench/fuse.sh: benchmark the cowfs FUSE mount against go-fuse's loopback
# example (github.com/hanwen/go-fuse/v2/example/loopback, the version go.mod
# requires) serving a directory on a fresh tmpfs. See bench/README.md.
#
# Usage (as root, from anywhere in the repository):
#
#   bench/fuse.sh [--quick] [--store DIR|mem:|tmpfs] [--remount] [--standin]
#                 [--targets LIST] [--out FILE] [--runtime SEC] [--keep]
#
# Targets: loopback (go-fuse's loopback as root, which uses FUSE passthrough:
# file data bypasses the daemon), loopback-nopt (the same without
# CAP_SYS_ADMIN, so without passthrough: every read and write reaches the
# daemon, as on cowfs) and cowfs. Tests on each: fio sequential 1 MiB and
# random 4 KiB write then read (caches dropped in between), cp of a 1 GiB
# file within the mount, and copy_file_range of a file of 65,536 pieces
# against a file written at once (bench/cfr).
#
#   --quick      small sizes (32 MiB sequential and cp, 8 MiB random, 1,024
#                pieces), a few seconds per target: proves the script works
#   --store S    the cowfs store: a new directory DIR (created, deleted on
#                exit; default: a fresh directory under ${TMPDIR:-/tmp}, which
#                should be on disk), mem: (in-memory), or tmpfs (a directory on
#                the same fresh tmpfs that backs loopback)
#   --remount    stop and restart each daemon between a write test and the
#                read test after it (a cold read: the daemon's own caches are
#                empty); not with --store mem:
#   --standin    measure a second loopback (without passthrough) in place of
#                cowfs (to test the script without a `cowfs mount`)
#   --out FILE   the JSON file of raw figures (default:
#                fuse-bench-<UTC time>.json in the current directory)
#   --runtime S  cap of each fio job in seconds (default 120; 10 with --quick)
#   --keep       keep the work directory (logs, fio JSON) for inspection
#   --targets L  the targets to measure, in order (default
#                loopback,loopback-nopt,cowfs)
#
# Environment: COWFS_MOUNT_ARGS, extra arguments for `cowfs mount` (split on
# white space); BENCH_READY_TIMEOUT, seconds to wait for a mount (default 60).
#
# It prints a markdown table on stdout (progress goes to stderr) and writes
# the JSON file. Every mount it made is unmounted and every process it
# started is stopped on exit, on failure and on SIGINT/SIGTERM too.
set -euo pipefail

log() { printf '%s fuse.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- arguments
QUICK=0 STORE_ARG="" REMOUNT=0 STANDIN=0 OUT="" RUNTIME="" KEEP=0
TARGETS=loopback,loopback-nopt,cowfs
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--store) [ $# -ge 2 ] || die "--store needs a value"; STORE_ARG=$2; shift ;;
	--store=*) STORE_ARG=${1#--store=} ;;
	--remount) REMOUNT=1 ;;
	--standin) STANDIN=1 ;;
	--out) [ $# -ge 2 ] || die "--out needs a value"; OUT=$2; shift ;;
	--out=*) OUT=${1#--out=} ;;
	--runtime) [ $# -ge 2 ] || die "--runtime needs a value"; RUNTIME=$2; shift ;;
	--runtime=*) RUNTIME=${1#--runtime=} ;;
	--keep) KEEP=1 ;;
	--targets) [ $# -ge 2 ] || die "--targets needs a value"; TARGETS=$2; shift ;;
	--targets=*) TARGETS=${1#--targets=} ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "fuse.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	SEQ_SIZE=$((32 << 20)) RAND_SIZE=$((8 << 20)) CP_SIZE=$((32 << 20)) PIECES=1024
	: "${RUNTIME:=10}"
else
	SEQ_SIZE=$((1 << 30)) RAND_SIZE=$((256 << 20)) CP_SIZE=$((1 << 30)) PIECES=65536
	: "${RUNTIME:=120}"
fi
PIECE=4096
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-60}
CMD_TIMEOUT=$((RUNTIME * 3 + 300))

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
[ -n "$OUT" ] || OUT="fuse-bench-$STAMP.json"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac

cd "$(dirname "$0")/.."
[ -f go.mod ] && [ -d cmd/cowfs ] || die "run bench/fuse.sh from the cowfs repository"

for t in ${TARGETS//,/ }; do
	case "$t" in loopback | loopback-nopt | cowfs) ;; *) die "--targets: unknown target $t" ;; esac
done
if [ "$REMOUNT" = 1 ] && [ "$STORE_ARG" = mem: ] && [ "$STANDIN" = 0 ]; then
	die "--remount with --store mem: would lose the files between write and read"
fi
[ "$(id -u)" = 0 ] || die "must run as root (tmpfs mount, drop_caches)"
[ -w /dev/fuse ] || die "/dev/fuse is missing or not writable"

# ------------------------------------------------------------------- tools
missing=()
command -v fio >/dev/null || missing+=(fio)
command -v fusermount3 >/dev/null || command -v fusermount >/dev/null || missing+=(fuse3)
command -v python3 >/dev/null || missing+=(python3)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get"
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2; } ||
		die "apt-get install ${missing[*]}"
fi
command -v go >/dev/null || die "go is not on PATH"
FUSERMOUNT=$(command -v fusermount3 || command -v fusermount)

# ------------------------------------------------------------- work, trap
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cowfs-fuse-bench.XXXXXX")
BIN=$WORK/bin
TMPFS=$WORK/tmpfs
RECORDS=$WORK/records.jsonl
PROBLEMS=$WORK/problems.txt
: >"$RECORDS"
: >"$PROBLEMS"
declare -A DPID=()   # target -> daemon pid
declare -A DMNT=()   # target -> mount point
TMPFS_MOUNTED=0
STORE_CREATED=""
CHILD=""             # the running guarded command

problem() { log "PROBLEM: $*"; printf '%s\n' "$*" >>"$PROBLEMS"; }

unmount() { # mount point
	mountpoint -q "$1" 2>/dev/null || return 0
	"$FUSERMOUNT" -u "$1" 2>/dev/null || umount "$1" 2>/dev/null ||
		"$FUSERMOUNT" -u -z "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
}

cleanup() {
	local rc=$? t pid i
	trap - EXIT INT TERM
	set +e
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		log "stopping the running benchmark command (pid $CHILD)"
		kill -TERM "$CHILD" 2>/dev/null
		for i in $(seq 100); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.1; done
	fi
	for t in "${!DPID[@]}"; do
		pid=${DPID[$t]}
		if kill -0 "$pid" 2>/dev/null; then
			log "stopping $t daemon (pid $pid)"
			[ "$(kind "$t")" != nopt ] || unmount "${DMNT[$t]}"
			kill -TERM "$pid" 2>/dev/null
			for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			if kill -0 "$pid" 2>/dev/null; then
				unmount "${DMNT[$t]}"
				kill -KILL "$pid" 2>/dev/null
			fi
			wait "$pid" 2>/dev/null
		fi
	done
	for t in "${!DMNT[@]}"; do unmount "${DMNT[$t]}"; done
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		kill -KILL "$CHILD" 2>/dev/null
		wait "$CHILD" 2>/dev/null
	fi
	if [ "$TMPFS_MOUNTED" = 1 ]; then
		umount "$TMPFS" 2>/dev/null || umount -l "$TMPFS" 2>/dev/null
	fi
	if findmnt -rn -o TARGET | grep -qF "$WORK"; then
		log "something is still mounted under $WORK; not deleting it"
	elif [ "$KEEP" = 1 ]; then
		log "work directory kept: $WORK"
	else
		[ -z "$STORE_CREATED" ] || rm -rf "$STORE_CREATED"
		if [ "$rc" != 0 ]; then
			# Keep the logs and fio output of a failed run, not the bulk.
			rm -rf "$WORK/bin" "$WORK/store" "$WORK"/tmpfs "$WORK"/mnt-*
			log "failed (status $rc); logs kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- building
mkdir -p "$BIN"
log "building loopback, cfr and cowfs"
go build -o "$BIN/loopback" github.com/hanwen/go-fuse/v2/example/loopback
go build -o "$BIN/cfr" ./bench/cfr
go build -o "$BIN/cowfs" ./cmd/cowfs
if [ "$STANDIN" = 0 ] && ! "$BIN/cowfs" help 2>&1 | grep -qw mount; then
	die "this cowfs has no mount command; run with --standin to test the script against a second loopback"
fi

mkdir -p "$TMPFS"
mount -t tmpfs -o mode=0755 cowfs-bench "$TMPFS"
TMPFS_MOUNTED=1

case "$STORE_ARG" in
"") STORE=$WORK/store; STORE_KIND=disk ;;
mem:) STORE=mem:; STORE_KIND=mem ;;
tmpfs) STORE=$TMPFS/cowfs-store; STORE_KIND=tmpfs ;;
*)
	case "$STORE_ARG" in /*) STORE=$STORE_ARG ;; *) STORE=$OLDPWD/$STORE_ARG ;; esac
	if [ -e "$STORE" ]; then die "--store $STORE_ARG exists; give a new directory"; fi
	mkdir "$STORE" || die "cannot create --store $STORE_ARG"
	STORE_CREATED=$STORE
	STORE_KIND=disk
	;;
esac
[ "$STANDIN" = 0 ] || STORE_KIND="none (stand-in)"
if [ "$STORE" != mem: ] && [ "$STANDIN" = 0 ]; then
	fstype=$(stat -f -c %T "$(dirname "$STORE")")
	STORE_KIND="directory on $fstype"
	[ "$fstype" != tmpfs ] || [ "$STORE_ARG" = tmpfs ] ||
		log "note: the cowfs store is on tmpfs, not on disk (set TMPDIR or --store)"
fi

# ----------------------------------------------------------------- targets
# Targets: "loopback" is go-fuse's loopback example as it runs for root:
# go-fuse registers each opened file as a FUSE passthrough backing file
# (kernel >= 6.9), so file reads and writes go from the kernel straight to
# tmpfs without reaching the daemon. "loopback-nopt" is the same binary
# without CAP_SYS_ADMIN, so passthrough is refused and every read and write
# is a FUSE request served by the daemon, as on cowfs. (Without
# CAP_SYS_ADMIN it cannot mount either: the mount is made by a small
# privileged parent that passes /dev/fuse as the magic mount point
# /dev/fd/N, which go-fuse supports; the daemon cannot unmount such a mount
# itself, so stop_target unmounts it.)
#
# kind NAME: pt, nopt or cowfs.
kind() {
	case "$1" in
	loopback) echo pt ;;
	loopback-nopt | standin) echo nopt ;;
	*) echo cowfs ;;
	esac
}

# The privileged parent of a loopback-nopt daemon: opens /dev/fuse, mounts
# it, then executes the daemon with CAP_SYS_ADMIN out of its bounding set.
NOPT_PY='
import ctypes, os, sys
mnt, loopback, orig = sys.argv[1:4]
fd = os.open("/dev/fuse", os.O_RDWR)
os.set_inheritable(fd, True)
libc = ctypes.CDLL(None, use_errno=True)
MS_NOSUID, MS_NODEV = 2, 4
opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
if libc.mount(b"loopback-nopt", mnt.encode(), b"fuse.loopback", MS_NOSUID | MS_NODEV, opts) != 0:
    sys.exit("mount " + mnt + ": " + os.strerror(ctypes.get_errno()))
os.execvp("setpriv", ["setpriv", "--bounding-set=-sys_admin", "--", loopback, f"/dev/fd/{fd}", orig])
'

# start_target NAME: mount target NAME on $WORK/mnt-NAME and wait for it.
start_target() {
	local t=$1 mnt=$WORK/mnt-$1 ready cmd
	mkdir -p "$mnt"
	case "$(kind "$t")" in
	pt)
		mkdir -p "$TMPFS/$t"
		cmd=("$BIN/loopback" "$mnt" "$TMPFS/$t")
		ready='Mounted!'
		;;
	nopt)
		mkdir -p "$TMPFS/$t"
		cmd=(python3 -c "$NOPT_PY" "$mnt" "$BIN/loopback" "$TMPFS/$t")
		ready='Mounted!'
		;;
	cowfs)
		# shellcheck disable=SC2206
		cmd=("$BIN/cowfs" mount --store "$STORE" ${COWFS_MOUNT_ARGS:-} "$mnt")
		ready='ready'
		;;
	esac
	log "mounting $t"
	DMNT[$t]=$mnt
	# The ready line must come from this start, not from an earlier one.
	if [ -f "$WORK/$t.out" ]; then cat "$WORK/$t.out" >>"$WORK/$t.out.earlier"; fi
	: >"$WORK/$t.out"
	"${cmd[@]}" >"$WORK/$t.out" 2>>"$WORK/$t.err" </dev/null &
	DPID[$t]=$!
	local deadline=$((SECONDS + READY_TIMEOUT))
	until grep -q "$ready" "$WORK/$t.out" 2>/dev/null; do
		if ! kill -0 "${DPID[$t]}" 2>/dev/null; then
			tail -n 20 "$WORK/$t.err" >&2
			die "$t daemon exited before it printed '$ready'"
		fi
		[ $SECONDS -lt $deadline ] || { tail -n 20 "$WORK/$t.err" >&2; die "$t did not print '$ready' within ${READY_TIMEOUT}s"; }
		sleep 0.1
	done
	mountpoint -q "$mnt" || die "$t printed '$ready' but $mnt is not a mount point"
}

# stop_target NAME: SIGTERM the daemon, which must unmount and exit 0 (a
# loopback-nopt mount is unmounted first: its daemon cannot).
stop_target() {
	local t=$1 pid=${DPID[$1]} rc=0 i
	[ "$(kind "$t")" != nopt ] || unmount "${DMNT[$t]}"
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		problem "$t: daemon still running 30 s after SIGTERM; killed"
		unmount "${DMNT[$t]}"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	unset "DPID[$t]"
	[ "$rc" = 0 ] || problem "$t: daemon exited with status $rc after SIGTERM (stderr: $(tail -n 3 "$WORK/$t.err" | tr '\n' ' '))"
	if mountpoint -q "${DMNT[$t]}"; then
		problem "$t: ${DMNT[$t]} still mounted after the daemon exited"
		unmount "${DMNT[$t]}"
	fi
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# between_write_and_read NAME: flush, drop the kernel caches (the page cache
# of the mount, and of the store's disk), and with --remount restart the
# daemon.
between_write_and_read() {
	if [ "$REMOUNT" = 1 ]; then
		stop_target "$1"
		drop_caches
		start_target "$1"
	else
		drop_caches
	fi
}

# guarded CMD...: run CMD under a timeout (a hung FUSE request must not hang
# the benchmark), in the background so that SIGINT/SIGTERM reach the trap at
# once; cleanup stops it.
guarded() {
	local rc=0
	timeout -k 10 "$CMD_TIMEOUT" "$@" </dev/null &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	return "$rc"
}

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", (b - a) / 1e9 }'; }
human() { awk -v b="$1" 'BEGIN { if (b >= 2^30 && b % 2^30 == 0) printf "%d GiB", b / 2^30; else printf "%d MiB", b / 2^20 }'; }

# record TARGET TEST UNIT VALUE [RAW-JSON]
record() {
	printf '{"target":"%s","test":"%s","unit":"%s","value":%s,"raw":%s}\n' \
		"$1" "$2" "$3" "$4" "${5:-null}" >>"$RECORDS"
}

# fio_job TARGET TEST UNIT(MiB/s|ops/s) fio-arguments...
fio_job() {
	local t=$1 test=$2 unit=$3 json
	shift 3
	json=$WORK/fio-$t-${test//[^A-Za-z0-9]/_}.json
	log "$t: fio $test"
	guarded fio --name=bench --ioengine=psync --direct=0 --numjobs=1 \
		--iodepth=1 --runtime="$RUNTIME" --fallocate=none --refill_buffers=1 \
		--output-format=json --output="$json" "$@" >&2 ||
		{ cat "$json" >&2 2>/dev/null; die "$t: fio $test failed"; }
	python3 - "$json" "$t" "$test" "$unit" "$RUNTIME" >>"$RECORDS" <<-'EOF'
		import json, sys
		path, target, test, unit, runtime = sys.argv[1:]
		text = open(path).read()
		doc = json.loads(text[text.index("{"):])  # fio may print notes first
		job = doc["jobs"][0]
		if job.get("error"):
		    sys.exit(f"fio job {test} error {job['error']}")
		d = job["write"] if job["write"]["io_bytes"] else job["read"]
		pct = d["clat_ns"].get("percentile", {})
		raw = {
		    "bw_bytes_per_s": d["bw_bytes"],
		    "mib_per_s": d["bw_bytes"] / 2**20,
		    "iops": d["iops"],
		    "io_bytes": d["io_bytes"],
		    "runtime_ms": d["runtime"],
		    "capped": d["runtime"] >= int(runtime) * 1000 * 0.99,
		    "clat_mean_us": d["clat_ns"]["mean"] / 1e3,
		    "clat_p50_us": pct.get("50.000000", 0) / 1e3,
		    "clat_p99_us": pct.get("99.000000", 0) / 1e3,
		    "sync_total_ms": job.get("sync", {}).get("total_ios", 0) and job["sync"]["lat_ns"]["mean"] / 1e6,
		    "fio_version": doc.get("fio version"),
		}
		value = raw["mib_per_s"] if unit == "MiB/s" else raw["iops"]
		print(json.dumps({"target": target, "test": test, "unit": unit, "value": value, "raw": raw}))
	EOF
}

# cowfs_info NAME LABEL ARGS...: for a cowfs target only, run the --json
# command `cowfs ARGS` and keep its output for the JSON file (best effort:
# diagnostics, never a failure).
cowfs_info() {
	local t=$1 label=$2 out
	shift 2
	[ "$(kind "$t")" = cowfs ] || return 0
	out=$(timeout 60 "$BIN/cowfs" "$@" 2>/dev/null) || return 0
	printf '%s' "$out" | python3 -c '
import json, sys
print(json.dumps({"target": sys.argv[1], "label": sys.argv[2], "data": json.load(sys.stdin)}))
' "$t" "$label" >>"$WORK/cowfs-info.jsonl" 2>/dev/null || true
}

# stored_bytes NAME: the bytes the backing storage of target NAME holds:
# the bytes used on the tmpfs for loopback, the store's bytes (cowfs stats)
# for cowfs; empty if unknown.
stored_bytes() {
	if [ "$(kind "$1")" = cowfs ]; then
		timeout 60 "$BIN/cowfs" stats --json "${DMNT[$1]}" 2>/dev/null |
			python3 -c 'import json, sys; print(json.load(sys.stdin)["store"]["bytes"])' 2>/dev/null || true
	else
		df -B1 --output=used "$TMPFS" | tail -n 1 | tr -d ' '
	fi
}

# run_suite NAME: every test on the mounted target NAME.
run_suite() {
	local t=$1 d=${DMNT[$1]}/bench t0 t1 t2 cp_s sync_s
	mkdir -p "$d"

	fio_job "$t" "seq write 1 MiB" MiB/s --rw=write --bs=1M --size="$SEQ_SIZE" --end_fsync=1 --filename="$d/seq.dat"
	between_write_and_read "$t"
	fio_job "$t" "seq read 1 MiB" MiB/s --rw=read --bs=1M --filename="$d/seq.dat"
	rm -f "$d/seq.dat"

	fio_job "$t" "rand write 4 KiB" ops/s --rw=randwrite --bs=4k --size="$RAND_SIZE" --overwrite=1 --end_fsync=1 --filename="$d/rand.dat"
	between_write_and_read "$t"
	fio_job "$t" "rand read 4 KiB" ops/s --rw=randread --bs=4k --filename="$d/rand.dat"
	rm -f "$d/rand.dat"

	local cpname="cp $(human "$CP_SIZE")"
	log "$t: $cpname"
	guarded "$BIN/cfr" fill "$d/cp.src" "$CP_SIZE"
	drop_caches
	local before after
	before=$(stored_bytes "$t")
	cowfs_info "$t" "stats before cp" stats --json "${DMNT[$t]}"
	t0=$(now)
	guarded cp "$d/cp.src" "$d/cp.dst" || die "$t: cp failed"
	t1=$(now)
	guarded sync "$d/cp.dst" || die "$t: sync of the copy failed"
	t2=$(now)
	cp_s=$(secs "$t0" "$t1") sync_s=$(secs "$t1" "$t2")
	# What starting a command costs, a yardstick for a cp of a few ms.
	t0=$(now)
	guarded true
	t1=$(now)
	local exec_s
	exec_s=$(secs "$t0" "$t1")
	after=$(stored_bytes "$t")
	cowfs_info "$t" "stats after cp" stats --json "${DMNT[$t]}"
	cowfs_info "$t" "du after cp" du --json "$d/cp.src" "$d/cp.dst"
	guarded cmp "$d/cp.src" "$d/cp.dst" || die "$t: the copy differs from the source"
	record "$t" "$cpname" s "$cp_s" "{\"bytes\":$CP_SIZE,\"cp_seconds\":$cp_s,\"sync_seconds\":$sync_s,\"start_a_command_seconds\":$exec_s}"
	record "$t" "$cpname, then fsync of the copy" s "$(awk -v a="$cp_s" -v b="$sync_s" 'BEGIN { printf "%.6f", a + b }')"
	if [ -n "$before" ] && [ -n "$after" ]; then
		record "$t" "$cpname: storage it used" MiB "$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.6f", (b - a) / 2^20 }')" \
			"{\"before_bytes\":$before,\"after_bytes\":$after}"
	fi
	rm -f "$d/cp.src" "$d/cp.dst"

	log "$t: copy_file_range of a $PIECES-piece file vs a one-write file"
	mkdir -p "$d/cfr"
	local cfrjson=$WORK/cfr-$t.json
	guarded "$BIN/cfr" run -pieces "$PIECES" -piece "$PIECE" -drop-caches "$d/cfr" >"$cfrjson" ||
		die "$t: cfr run failed"
	python3 - "$cfrjson" "$t" "$PIECES" "$PIECE" >>"$RECORDS" <<-'EOF'
		import json, sys
		path, target, pieces, piece = sys.argv[1:]
		r = json.load(open(path))
		size = int(pieces) * int(piece)
		mib = f"{size / 2**20:g} MiB"
		rows = [
		    (f"build: {int(pieces):,} copy_file_range calls of {int(piece) // 1024} KiB", "ops/s", r["build_frag_ops_per_s"]),
		    (f"copy_file_range of a {mib} file of {int(pieces):,} pieces", "s", r["copy_frag"]["seconds"]),
		    (f"copy_file_range of a {mib} file written at once", "s", r["copy_one"]["seconds"]),
		    ("copy_file_range time: pieces / written at once", "x", r["ratio_frag_over_one"]),
		]
		for i, (test, unit, value) in enumerate(rows):
		    print(json.dumps({"target": target, "test": test, "unit": unit, "value": value, "raw": r if i == 0 else None}))
	EOF
	cowfs_info "$t" "du of the copy_file_range files" du --json "$d/cfr/frag" "$d/cfr/frag.copy" "$d/cfr/one" "$d/cfr/one.copy"
	cowfs_info "$t" "stats at the end" stats --json "${DMNT[$t]}"
	rm -rf "$d"
}

# --------------------------------------------------------------------- run
# Warm-up: write and delete a file of three times the largest test file on
# the tmpfs first, so that no target pays for memory the machine (a VM,
# say) touches for the first time: without it, the first target's 1 GiB cp
# took 6 times as long in one run on a fresh VM.
WARM=$((3 * CP_SIZE))
avail=$(awk '/^MemAvailable:/ { print $2 * 1024 }' /proc/meminfo)
[ "$WARM" -le $((avail / 3)) ] || WARM=$((avail / 3))
log "warm-up: writing $(human "$WARM") to the tmpfs"
dd if=/dev/zero of="$TMPFS/warm-up" bs=1M count=$((WARM >> 20)) status=none
rm -f "$TMPFS/warm-up"
B=cowfs
[ "$STANDIN" = 0 ] || B=standin
for t in ${TARGETS//,/ }; do
	[ "$t" != cowfs ] || t=$B
	start_target "$t"
	run_suite "$t"
	stop_target "$t"
done

# ------------------------------------------------------------------ report
META=$WORK/meta.json
python3 - "$META" <<EOF
import json, platform, subprocess, sys
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception:
        return None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None)
mem = next((int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), None)
json.dump({
    "date_utc": "$STAMP",
    "kernel": platform.release(),
    "cpu": cpu, "cpus": $(nproc), "mem_bytes": mem,
    "go": out("go", "version"), "fio": out("fio", "--version"), "cp": out("cp", "--version"),
    "quick": $QUICK == 1, "standin": $STANDIN == 1, "remount": $REMOUNT == 1,
    "cowfs_store": "$STORE_KIND", "cowfs_mount_args": "${COWFS_MOUNT_ARGS:-}",
    "seq_bytes": $SEQ_SIZE, "rand_bytes": $RAND_SIZE, "cp_bytes": $CP_SIZE,
    "cfr_pieces": $PIECES, "cfr_piece_bytes": $PIECE, "fio_runtime_cap_s": $RUNTIME,
    "loopback_backing": "fresh tmpfs",
    "drop_caches_between_write_and_read": True,
}, open(sys.argv[1], "w"), indent=2)
EOF

python3 - "$RECORDS" "$META" "$PROBLEMS" "$OUT" "$B" <<'EOF'
import json, sys
records_path, meta_path, problems_path, out_path, b = sys.argv[1:]
records = [json.loads(l) for l in open(records_path) if l.strip()]
try:
    cowfs_info = [json.loads(l) for l in open(records_path.rsplit("/", 1)[0] + "/cowfs-info.jsonl") if l.strip()]
except FileNotFoundError:
    cowfs_info = []
meta = json.load(open(meta_path))
problems = [l.rstrip("\n") for l in open(problems_path) if l.strip()]
targets = ["loopback", "loopback-nopt", b]
tests, val = [], {}
for r in records:
    if r["test"] not in tests:
        tests.append(r["test"])
    val[(r["target"], r["test"])] = r

def ratio(x, y):
    return x / y if x is not None and y else None

rows = []
for test in tests:
    v = {t: val[(t, test)]["value"] if (t, test) in val else None for t in targets}
    unit = next(val[(t, test)]["unit"] for t in targets if (t, test) in val)
    rows.append({"test": test, "unit": unit, **v,
                 "ratio_vs_loopback": ratio(v[b], v["loopback"]),
                 "ratio_vs_loopback_nopt": ratio(v[b], v["loopback-nopt"])})
json.dump({"meta": meta, "problems": problems, "table": rows, "records": records, "cowfs_info": cowfs_info},
          open(out_path, "w"), indent=2)

def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"

capped = {(r["target"], r["test"]) for r in records if (r.get("raw") or {}).get("capped")}
name = "cowfs" if b == "cowfs" else "stand-in (loopback, no passthrough)"
print(f"cowfs FUSE mount vs go-fuse loopback on tmpfs: {'quick' if meta['quick'] else 'full'} run, "
      f"{meta['date_utc']}, kernel {meta['kernel']}, {meta['cpus']} CPUs, cowfs store: {meta['cowfs_store']}, "
      f"{'daemons restarted' if meta['remount'] else 'caches dropped'} between write and read")
print()
print(f"| test | unit | loopback (passthrough) | loopback (no passthrough) | {name} | ratio cowfs/loopback | ratio cowfs/loopback-nopt |")
print("|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    cells = []
    for t in targets:
        s = fmt(r[t])
        if (t, r["test"]) in capped:
            s += " (capped)"
        cells.append(s)
    print(f"| {r['test']} | {r['unit']} | {' | '.join(cells)} | {fmt(r['ratio_vs_loopback'])} | {fmt(r['ratio_vs_loopback_nopt'])} |")
print()
print("MiB/s and ops/s: higher is better; s, x and MiB (storage used): lower is better. "
      "\"capped\": the fio job hit its runtime cap before it had done its whole size.")
if problems:
    print()
    print("Problems:")
    for p in problems:
        print(f"- {p}")
EOF
log "raw figures: $OUT"
