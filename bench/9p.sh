#!/usr/bin/env bash
# bench/9p.sh: benchmark the cowfs 9P server (`cowfs serve`) against diod
# serving a directory on a fresh tmpfs, with diod's own clients diodload and
# diodcat (Debian package diod). See bench/README.md.
#
# Usage (as root, from anywhere in the repository):
#
#   bench/9p.sh [--quick] [--runs N] [--runtime SEC] [--size MIB]
#               [--msize N] [--out FILE] [--keep]
#
# Tests on each server, each run --runs times (servers alternating), median
# reported: diodload read+write with 1 and with 16 threads, diodload -g
# (getattr) with 1 and with 16 threads, and a diodcat of a file of random
# data (the same bytes on both; checked once with cmp before the timed runs).
#
#   --quick      1 run of each, 2 s per diodload, a 256 MiB file: proves the
#                script works
#   --runs N     runs of each test (default 3; 1 with --quick)
#   --runtime S  seconds of each diodload run (default 5; 2 with --quick)
#   --size MIB   size of the diodcat file in MiB (default 1024; 256 with --quick)
#   --msize N    the msize diodload and diodcat ask for (default 65536,
#                diod's maximum)
#   --out FILE   also write every figure (each run) to this JSON file
#   --keep       keep the work directory (logs, store) for inspection
#
# Against diod, diodload attaches aname "ctl", diod's synthetic ctl file
# system (zero and null); against cowfs, aname "ctl" is a volume named ctl
# that the script creates with real files zero (1 MiB of zeros) and null
# (empty). Environment: BENCH_READY_TIMEOUT, seconds to wait for a server or
# mount (default 60).
#
# It prints the machine, the command and a markdown table on stdout
# (progress goes to stderr). A failed client run (a diodload that printed
# anything but its one result line, a diodcat that failed or read wrong
# bytes) shows as FAILED in the table, is listed with its command and output
# under it, and makes the script exit 1. Every mount it made is unmounted
# and every process it started is stopped on exit, on failure and on
# SIGINT/SIGTERM too.
set -euo pipefail

log() { printf '%s 9p.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# The script's own stdout and stderr, for cleanup: a signal can arrive while
# a command's output is redirected to a log.
exec 8>&1 9>&2

CMDLINE=$(printf '%q ' "$0" "$@")
CMDLINE=${CMDLINE% }

# ---------------------------------------------------------------- arguments
QUICK=0 RUNS="" RUNTIME="" SIZE_MIB="" MSIZE=65536 OUT="" KEEP=0
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS=$2; shift ;;
	--runs=*) RUNS=${1#--runs=} ;;
	--runtime) [ $# -ge 2 ] || die "--runtime needs a value"; RUNTIME=$2; shift ;;
	--runtime=*) RUNTIME=${1#--runtime=} ;;
	--size) [ $# -ge 2 ] || die "--size needs a value"; SIZE_MIB=$2; shift ;;
	--size=*) SIZE_MIB=${1#--size=} ;;
	--msize) [ $# -ge 2 ] || die "--msize needs a value"; MSIZE=$2; shift ;;
	--msize=*) MSIZE=${1#--msize=} ;;
	--out) [ $# -ge 2 ] || die "--out needs a value"; OUT=$2; shift ;;
	--out=*) OUT=${1#--out=} ;;
	--keep) KEEP=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "9p.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	: "${RUNS:=1}" "${RUNTIME:=2}" "${SIZE_MIB:=256}"
else
	: "${RUNS:=3}" "${RUNTIME:=5}" "${SIZE_MIB:=1024}"
fi
for v in RUNS RUNTIME SIZE_MIB MSIZE; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
SIZE=$((SIZE_MIB << 20))
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-60}
# No client should take longer than this; a hung one is killed.
CMD_TIMEOUT=$((RUNTIME * 3 + SIZE_MIB / 10 + 120))
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
if [ -n "$OUT" ]; then case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac; fi

cd "$(dirname "$0")/.."
[ -f go.mod ] && [ -d cmd/cowfs ] || die "run bench/9p.sh from the cowfs repository"
[ "$(id -u)" = 0 ] || die "must run as root (diod serves as root, tmpfs mount, FUSE mounts)"

# ------------------------------------------------------------------- tools
export PATH="$PATH:/usr/sbin"
missing=()
for tool in diod diodload diodcat; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ ${#missing[@]} = 0 ] ||
	die "diod's tools are missing (${missing[*]}; looked in PATH and /usr/sbin): install the Debian package diod (apt-get install diod)"
for tool in go python3 timeout cmp mountpoint; do
	command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
[ -w /dev/fuse ] || die "/dev/fuse is missing or not writable (needed by cowfs mount to fill the store)"
DIOD_VERSION=$(dpkg-query -W -f '${Version}' diod 2>/dev/null || echo unknown)

# ------------------------------------------------------------- work, trap
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cowfs-9p-bench.XXXXXX")
BIN=$WORK/bin
TMPFS=$WORK/tmpfs
STORE=$WORK/store
MNT=$WORK/mnt
SRC=$WORK/random.bin
FILE=random.bin
RECORDS=$WORK/records.jsonl
PROBLEMS=$WORK/problems.txt
: >"$RECORDS"
: >"$PROBLEMS"
declare -A SPID=()   # server -> pid
declare -A ADDR=()   # server -> 127.0.0.1:port
declare -A ANAME=()  # server -> attach name of the diodcat file's tree
MOUNT_PID=""         # the running cowfs mount
TMPFS_MOUNTED=0
CHILD=""             # the running guarded command

problem() { log "PROBLEM: $*"; printf '%s\n' "$*" >>"$PROBLEMS"; }

unmount() { # mount point
	mountpoint -q "$1" 2>/dev/null || return 0
	umount "$1" 2>/dev/null || fusermount3 -u "$1" 2>/dev/null ||
		umount -l "$1" 2>/dev/null || fusermount3 -u -z "$1" 2>/dev/null || true
}

# stop_pid PID: SIGTERM, wait up to 30 s, then SIGKILL; returns its status.
stop_pid() {
	local pid=$1 rc=0 w=0 i
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid still running 30 s after SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		rc=137
	fi
	wait "$pid" 2>/dev/null || w=$?
	[ "$rc" != 0 ] || rc=$w
	return "$rc"
}

cleanup() {
	local rc=$? s
	trap - EXIT INT TERM
	set +e
	exec 1>&8 2>&9
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		log "stopping the running client (pid $CHILD)"
		stop_pid "$CHILD"
	fi
	for s in "${!SPID[@]}"; do
		log "stopping $s (pid ${SPID[$s]})"
		stop_pid "${SPID[$s]}"
	done
	if [ -n "$MOUNT_PID" ]; then
		log "stopping cowfs mount (pid $MOUNT_PID)"
		stop_pid "$MOUNT_PID" || unmount "$MNT"
	fi
	unmount "$MNT"
	if [ "$TMPFS_MOUNTED" = 1 ]; then
		umount "$TMPFS" 2>/dev/null || umount -l "$TMPFS" 2>/dev/null
	fi
	if findmnt -rn -o TARGET | grep -qF "$WORK"; then
		log "something is still mounted under $WORK; not deleting it"
	elif [ "$KEEP" = 1 ]; then
		log "work directory kept: $WORK"
	elif [ "$rc" != 0 ]; then
		# Keep the logs of a failed run, not the bulk.
		rm -rf "$BIN" "$STORE" "$TMPFS" "$MNT" "$SRC"
		log "failed (status $rc); logs kept in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# guarded CMD...: run CMD under a timeout (a hung 9P request must not hang
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

# oneline FILE: the lines of FILE on one line, "; " between them, a line
# repeated N times (as each of 16 threads says the same) given once as "Nx".
oneline() {
	awk '{ if (!c[$0]++) o[++n] = $0 }
	END { for (i = 1; i <= n; i++) printf "%s%s%s", (i > 1 ? "; " : ""), (c[o[i]] > 1 ? c[o[i]] "x " : ""), o[i] }' "$@"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for FILE PATTERN PID WHAT: wait until FILE holds PATTERN.
wait_for() {
	local file=$1 pattern=$2 pid=$3 what=$4 deadline=$((SECONDS + READY_TIMEOUT))
	until grep -q "$pattern" "$file" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$WORK/$what.err" >&2; die "$what exited before it printed '$pattern'"; }
		[ $SECONDS -lt $deadline ] || { tail -n 20 "$WORK/$what.err" >&2; die "$what did not print '$pattern' within ${READY_TIMEOUT}s"; }
		sleep 0.1
	done
}

# wait_port PORT PID WHAT: wait until 127.0.0.1:PORT accepts connections.
wait_port() {
	local port=$1 pid=$2 what=$3 deadline=$((SECONDS + READY_TIMEOUT))
	until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$WORK/$what.err" >&2; die "$what exited before it accepted connections"; }
		[ $SECONDS -lt $deadline ] || { tail -n 20 "$WORK/$what.err" >&2; die "$what did not accept connections on port $port within ${READY_TIMEOUT}s"; }
		sleep 0.1
	done
}

# ---------------------------------------------------------------- building
mkdir -p "$BIN" "$MNT" "$TMPFS"
log "building cowfs"
go build -o "$BIN/cowfs" ./cmd/cowfs
help_text=$("$BIN/cowfs" help 2>&1 || true)
grep -qw serve <<<"$help_text" || die "this cowfs has no serve command"

mount -t tmpfs -o mode=0755 cowfs-9p-bench "$TMPFS"
TMPFS_MOUNTED=1

STORE_KIND="directory on $(stat -f -c %T "$WORK")"
case "$STORE_KIND" in
*tmpfs*) log "note: the cowfs store is on tmpfs, not on disk (set TMPDIR)" ;;
esac

MACHINE="$(nproc) CPUs (nproc), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
echo "cowfs 9P server (cowfs serve) vs diod $DIOD_VERSION on tmpfs: $([ "$QUICK" = 1 ] && echo quick || echo full) run, $STAMP"
echo
echo "- command: \`$CMDLINE\`"
echo "- machine: $MACHINE"
echo "- msize $MSIZE; diodload runs of ${RUNTIME} s; diodcat of a $SIZE_MIB MiB file; $RUNS run(s) of each test, median shown; cowfs store: $STORE_KIND"
echo

# ------------------------------------------------------------------- data
log "writing $SIZE_MIB MiB of random data"
dd if=/dev/urandom of="$SRC" bs=1M count="$SIZE_MIB" status=none

# with_mount VOLUME CMD...: mount VOLUME of the store on $MNT with cowfs
# mount, run CMD, then SIGTERM the mount, which must commit,
# unmount and exit 0.
with_mount() {
	local vol=$1 rc=0
	shift
	log "cowfs mount --volume $vol"
	: >"$WORK/mount.out"
	"$BIN/cowfs" mount --store "$STORE" --volume "$vol" "$MNT" >"$WORK/mount.out" 2>>"$WORK/mount.err" </dev/null &
	MOUNT_PID=$!
	wait_for "$WORK/mount.out" 'ready$' "$MOUNT_PID" mount
	mountpoint -q "$MNT" || die "cowfs mount printed 'ready' but $MNT is not a mount point"
	"$@" || die "filling volume $vol failed"
	stop_pid "$MOUNT_PID" || rc=$?
	MOUNT_PID=""
	[ "$rc" = 0 ] || die "cowfs mount of volume $vol exited with status $rc after SIGTERM: $(tail -n 5 "$WORK/mount.err")"
	! mountpoint -q "$MNT" || die "$MNT still mounted after cowfs mount exited"
}

fill_ctl() {
	dd if=/dev/zero of="$MNT/zero" bs=1M count=1 status=none &&
		: >"$MNT/null" && chmod 0666 "$MNT/null"
}
fill_main() { guarded cp "$SRC" "$MNT/$FILE"; }

with_mount ctl fill_ctl
with_mount main fill_main
log "copying the file to the tmpfs"
cp "$SRC" "$TMPFS/$FILE"

# ---------------------------------------------------------------- servers
# start_server NAME: start diod or cowfs serve on a free port and wait until
# it accepts connections.
start_server() {
	local s=$1 port cmd
	port=$(free_port)
	case "$s" in
	diod)
		cmd=(diod -f -n -c /dev/null -L stderr -l "127.0.0.1:$port" -e "$TMPFS" -e ctl)
		ANAME[$s]=$TMPFS
		;;
	cowfs)
		cmd=("$BIN/cowfs" serve --store "$STORE" --listen "127.0.0.1:$port")
		ANAME[$s]=main
		;;
	esac
	log "starting $s on 127.0.0.1:$port"
	"${cmd[@]}" >"$WORK/$s.out" 2>>"$WORK/$s.err" </dev/null &
	SPID[$s]=$!
	ADDR[$s]=127.0.0.1:$port
	[ "$s" != cowfs ] || wait_for "$WORK/$s.out" 'ready$' "${SPID[$s]}" "$s"
	wait_port "$port" "${SPID[$s]}" "$s"
}

# server_up NAME: whether the server still runs; says so once if not.
declare -A DEAD=()
server_up() {
	kill -0 "${SPID[$1]}" 2>/dev/null && return 0
	if [ -z "${DEAD[$1]:-}" ]; then
		DEAD[$1]=1
		local rc=0
		wait "${SPID[$1]}" 2>/dev/null || rc=$?
		problem "$1: the server exited (status $rc) during the benchmark; its last stderr lines: $(tail -n 5 "$WORK/$1.err" | tr '\n' ' ')"
	fi
	return 1
}

# record SERVER TEST UNIT RUN VALUE|null [ERROR]
record() {
	python3 -c 'import json, sys
s, test, unit, run, value, err = sys.argv[1:]
print(json.dumps({"server": s, "test": test, "unit": unit, "run": int(run),
                  "value": None if value == "null" else float(value), "error": err or None}))' \
		"$1" "$2" "$3" "$4" "$5" "${6:-}" >>"$RECORDS"
}

# failed SERVER RUN MESSAGE TEST:UNIT...: record the tests as failed.
failed() {
	local s=$1 run=$2 msg=$3 tu
	shift 3
	problem "$s, run $run: $msg"
	for tu in "$@"; do record "$s" "${tu%%|*}" "${tu##*|}" "$run" null "$msg"; done
}

# load SERVER RUN NAME THREADS [-g]: one diodload run. diodload exits 0
# even when a thread failed; a failed thread prints a line of its own, so
# anything on stderr but the one result line is a failure.
load() {
	local s=$1 run=$2 name=$3 threads=$4 rc=0 err line
	shift 4
	local cmd=(diodload -s "${ADDR[$s]}" -m "$MSIZE" -n "$threads" -r "$RUNTIME" "$@")
	local tests=("$name: ops/s|ops/s")
	[ "$*" = -g ] || tests+=("$name: read MiB/s|MiB/s" "$name: write MiB/s|MiB/s")
	server_up "$s" || { failed "$s" "$run" "\`${cmd[*]}\` not run: the server is not running" "${tests[@]}"; return 0; }
	err=$WORK/diodload-$s-${name//[^A-Za-z0-9]/_}-$run.err
	log "$s: ${cmd[*]}"
	guarded "${cmd[@]}" >/dev/null 2>"$err" || rc=$?
	line=$(cat "$err")
	if [ "$rc" != 0 ] || ! [[ $line =~ ^diodload:\ ([0-9]+)\ ops/s,\ ([0-9]+)\ rMB/s,\ ([0-9]+)\ wMB/s$ ]]; then
		failed "$s" "$run" "\`${cmd[*]}\` failed (exit status $rc), stderr: $(oneline "$err")" "${tests[@]}"
		return 0
	fi
	record "$s" "$name: ops/s" ops/s "$run" "${BASH_REMATCH[1]}"
	if [ "$*" != -g ]; then
		record "$s" "$name: read MiB/s" MiB/s "$run" "${BASH_REMATCH[2]}"
		record "$s" "$name: write MiB/s" MiB/s "$run" "${BASH_REMATCH[3]}"
	fi
}

# cat_file SERVER RUN: one timed diodcat of the file to /dev/null.
CATNAME="diodcat of a $SIZE_MIB MiB file: MiB/s"
cat_file() {
	local s=$1 run=$2 rc=0 t0 t1
	local cmd=(diodcat -s "${ADDR[$s]}" -a "${ANAME[$s]}" -m "$MSIZE" "$FILE")
	server_up "$s" || { failed "$s" "$run" "\`${cmd[*]}\` not run: the server is not running" "$CATNAME|MiB/s"; return 0; }
	local err=$WORK/diodcat-$s-$run.err
	log "$s: ${cmd[*]} >/dev/null"
	t0=$(now)
	guarded "${cmd[@]}" >/dev/null 2>"$err" || rc=$?
	t1=$(now)
	if [ "$rc" != 0 ] || [ -s "$err" ]; then
		failed "$s" "$run" "\`${cmd[*]} >/dev/null\` failed (exit status $rc), stderr: $(oneline "$err")" "$CATNAME|MiB/s"
		return 0
	fi
	record "$s" "$CATNAME" MiB/s "$run" "$(awk -v b="$SIZE" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.3f", b / 2^20 / ((c - a) / 1e9) }')"
}

# verify SERVER: read the file back once and compare it with the source
# (this also warms both servers up before the timed runs).
verify() {
	local s=$1 rc=0 err=$WORK/verify-$s.err
	local cmd=(diodcat -s "${ADDR[$s]}" -a "${ANAME[$s]}" -m "$MSIZE" "$FILE")
	log "$s: ${cmd[*]} | cmp - SOURCE"
	guarded bash -c 'set -o pipefail; "${@:2}" 2>"$1" | cmp - "$SRC"' _ "$err" "${cmd[@]}" >>"$err.cmp" 2>&1 || rc=$?
	if [ "$rc" != 0 ] || [ -s "$err" ]; then
		problem "$s: \`${cmd[*]}\` did not read back the bytes written (status $rc): $(oneline "$err" "$err.cmp")"
		VERIFIED[$s]="FAILED"
	else
		VERIFIED[$s]="ok"
	fi
}
export SRC
declare -A VERIFIED=()

SERVERS=(diod cowfs)
for s in "${SERVERS[@]}"; do start_server "$s"; done
for s in "${SERVERS[@]}"; do verify "$s"; done

# ---------------------------------------------------------------------- run
# Each test runs RUNS times, the servers alternating, so that a drift of the
# machine touches both alike.
for threads in 1 16; do
	th="$threads thread$([ "$threads" = 1 ] || echo s)"
	for run in $(seq "$RUNS"); do
		for s in "${SERVERS[@]}"; do load "$s" "$run" "diodload read+write, $th" "$threads"; done
	done
done
for threads in 1 16; do
	th="$threads thread$([ "$threads" = 1 ] || echo s)"
	for run in $(seq "$RUNS"); do
		for s in "${SERVERS[@]}"; do load "$s" "$run" "diodload -g (getattr), $th" "$threads" -g; done
	done
done
for run in $(seq "$RUNS"); do
	for s in "${SERVERS[@]}"; do cat_file "$s" "$run"; done
done

for s in "${SERVERS[@]}"; do
	if server_up "$s"; then
		rc=0
		stop_pid "${SPID[$s]}" || rc=$?
		# diod's exit status on SIGTERM is not ours to judge; cowfs must exit 0.
		[ "$s" != cowfs ] || [ "$rc" = 0 ] ||
			problem "cowfs serve exited with status $rc after SIGTERM: $(tail -n 5 "$WORK/$s.err" | tr '\n' ' ')"
	fi
	unset "SPID[$s]"
done

# ------------------------------------------------------------------ report
python3 - "$RECORDS" "$PROBLEMS" "${OUT:-}" "${VERIFIED[diod]}" "${VERIFIED[cowfs]}" \
	"$CMDLINE" "$MACHINE" "$STAMP" "$STORE_KIND" "$MSIZE" "$RUNTIME" "$SIZE" "$RUNS" "$DIOD_VERSION" <<'EOF'
import json, statistics, sys
(records_path, problems_path, out_path, ver_diod, ver_cowfs, cmdline, machine, stamp,
 store_kind, msize, runtime, size, runs, diod_version) = sys.argv[1:]
records = [json.loads(l) for l in open(records_path) if l.strip()]
problems = [l.rstrip("\n") for l in open(problems_path) if l.strip()]
servers = ["diod", "cowfs"]
tests = []
for r in records:
    if r["test"] not in tests:
        tests.append(r["test"])

def median(server, test):
    vals = [r["value"] for r in records if r["server"] == server and r["test"] == test]
    if not vals or any(v is None for v in vals):
        return None, bool(vals)
    return statistics.median(vals), False

def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"

rows = []
print("| test | diod (tmpfs) | cowfs | cowfs/diod ratio |")
print("|---|---:|---:|---:|")
for test in tests:
    cells, vals = [], {}
    for s in servers:
        v, failed = median(s, test)
        vals[s] = v
        cells.append("FAILED" if failed else "-" if v is None else fmt(v))
    ratio = vals["cowfs"] / vals["diod"] if vals["diod"] and vals["cowfs"] is not None else None
    rows.append({"test": test, **vals, "ratio": ratio})
    print(f"| {test} | {' | '.join(cells)} | {'-' if ratio is None else f'{ratio:.2f}'} |")
print()
print(f"Higher is better everywhere; a ratio above 1 means cowfs is faster. diodcat read back "
      f"the same bytes as written: diod {ver_diod}, cowfs {ver_cowfs}.")
if problems:
    print()
    print("Problems:")
    for p in problems:
        print(f"- {p}")
if out_path:
    meta = {"date_utc": stamp, "command": cmdline, "machine": machine, "diod_version": diod_version,
            "cowfs_store": store_kind, "msize": int(msize), "diodload_runtime_s": int(runtime),
            "diodcat_bytes": int(size), "runs": int(runs),
            "verified": {"diod": ver_diod, "cowfs": ver_cowfs}}
    json.dump({"meta": meta, "problems": problems, "table": rows, "records": records},
              open(out_path, "w"), indent=2)
EOF
[ -z "$OUT" ] || log "raw figures: $OUT"
if [ -s "$PROBLEMS" ]; then
	die "$(wc -l <"$PROBLEMS") problem(s), listed under the table"
fi
