#!/usr/bin/env bash
# bench/tftp.sh: TFTP download throughput on loopback, pxewim against the usual servers, same
# file, same client (atftp), same run:
#   lock-step, blksize 1468:            pxewim vs tftpd-hpa (in.tftpd)   target >= 1.0x
#   RFC 7440 windowsize 16, blksize 1468: pxewim vs atftpd              target >= 1.2x
#   warm blob cache (WARM=0 skips it): the same file inside an LZX WIM ("big.wim:1/big.bin"),
#   served by pxewim's store from its decoded-blob cache (filled by a first download; the
#   script waits for the cached file), vs tftpd-hpa serving big.bin from the folder (lock-step),
#   vs pxewim serving it from the folder (lock-step), and vs atftpd (windowsize 16). Needs
#   wimtools.
# Ratio = peer's wall time / pxewim's (above 1: pxewim is faster). Each case runs RUNS times,
# alternating servers, and the best time of each counts (the machine is shared; the best run is
# the least disturbed one).
#
#   bench/tftp.sh                 100 MB file, 3 runs per server
#   SIZE_MB=20 RUNS=5 bench/tftp.sh
#   WARM=0 bench/tftp.sh          without the warm blob-cache cases
#   POLL=1 bench/tftp.sh          also pxewim with netpoller sockets (Config.PollSockets, the
#                                 code before pin/tftp patch P6), as a ratio to the default
#
# Needs: go, atftp (client), tftpd-hpa (in.tftpd). atftpd conflicts with tftpd-hpa in apt, so
# unless it is installed the script unpacks its .deb (apt-get download + dpkg-deb -x) into the
# temporary folder and runs it from there. Servers listen on 127.0.0.1 only, on random high
# ports, and are stopped by PID at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-100}
RUNS=${RUNS:-3}
BLKSIZE=1468
WINDOW=16

die() { echo "bench/tftp.sh: $*" >&2; exit 1; }
command -v atftp >/dev/null || die "atftp not found: apt-get install atftp"
command -v in.tftpd >/dev/null || die "in.tftpd not found: apt-get install tftpd-hpa"

work=$(mktemp -d /tmp/pxewim-bench-tftp.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir -m 755 "$work/root"

echo "building pxewim's bench server (bench/tftpserve)..." >&2
go build -o "$work/tftpserve" ./bench/tftpserve

# atftpd: installed, or unpacked from its .deb.
ATFTPD=$(command -v atftpd || true)
if [ -z "$ATFTPD" ]; then
	echo "unpacking atftpd from its Debian package..." >&2
	if (cd "$work" && apt-get download atftpd >/dev/null 2>&1 && dpkg-deb -x atftpd_*.deb atftpd-root); then
		ATFTPD="$work/atftpd-root/usr/sbin/atftpd"
	else
		echo "bench/tftp.sh: could not fetch atftpd (apt-get download atftpd failed): skipping the windowed comparison" >&2
	fi
fi

head -c $((SIZE_MB * 1000 * 1000)) /dev/urandom >"$work/root/big.bin"
chmod 644 "$work/root/big.bin"

port() { echo $((20000 + RANDOM % 40000)); }
P_PXEWIM=$(port)
P_HPA=$(port)
P_ATFTPD=$(port)

"$work/tftpserve" -addr "127.0.0.1:$P_PXEWIM" -dir "$work/root" -max-blksize 65464 -max-window 64 &
pids+=($!)
P_POLL=$(port)
if [ -n "${POLL:-}" ]; then
	"$work/tftpserve" -addr "127.0.0.1:$P_POLL" -dir "$work/root" -max-blksize 65464 -max-window 64 -poll &
	pids+=($!)
fi
in.tftpd -L -u nobody -a "127.0.0.1:$P_HPA" -s "$work/root" &
pids+=($!)
if [ -n "$ATFTPD" ]; then
	"$ATFTPD" --daemon --no-fork --port "$P_ATFTPD" --bind-address 127.0.0.1 \
		--user nobody --group nogroup --logfile /dev/null "$work/root" &
	pids+=($!)
fi
sleep 0.5

# fetch PORT OPTIONS...: download big.bin once, check it, print the wall time in seconds.
# FILE (default big.bin) names the file to ask for.
fetch() {
	local port=$1
	shift
	local args=()
	for o in "$@"; do args+=(--option "$o"); done
	rm -f "$work/out"
	local t0 t1
	t0=$(date +%s.%N)
	atftp "${args[@]}" -g -r "${FILE:-big.bin}" -l "$work/out" 127.0.0.1 "$port" >/dev/null 2>&1 ||
		die "atftp from port $port (${*}) failed"
	t1=$(date +%s.%N)
	cmp -s "$work/root/big.bin" "$work/out" || die "download from port $port (${*}) is not byte-exact"
	echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}

best() { printf '%s\n' "$@" | sort -n | head -1; }

# ratios PEER_TIMES OUR_TIMES: the per-round ratios (peer / pxewim), then their median and min.
ratios() {
	awk -v t="$1" -v o="$2" 'BEGIN {
		n = split(t, tt, " "); split(o, oo, " ")
		for (i = 1; i <= n; i++) r[i] = tt[i] / oo[i]
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { x = r[i]; r[i] = r[j]; r[j] = x }
		med = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
		printf "median %.2fx min %.2fx", med, r[1]
	}'
}

# compare NAME PEER_PORT PEER_NAME OPTIONS...
compare() {
	local name=$1 peer_port=$2 peer_name=$3
	shift 3
	local ours=() theirs=() i
	for i in $(seq "$RUNS"); do
		# Alternate which server goes first, so that neither always follows the other.
		if [ $((i % 2)) = 1 ]; then
			ours+=("$(FILE=${OURS_FILE:-big.bin} fetch "${OURS_PORT:-$P_PXEWIM}" "$@")")
			theirs+=("$(fetch "$peer_port" "$@")")
		else
			theirs+=("$(fetch "$peer_port" "$@")")
			ours+=("$(FILE=${OURS_FILE:-big.bin} fetch "${OURS_PORT:-$P_PXEWIM}" "$@")")
		fi
	done
	local o t
	o=$(best "${ours[@]}")
	t=$(best "${theirs[@]}")
	awk -v name="$name" -v peer="$peer_name" -v o="$o" -v t="$t" -v mb="$SIZE_MB" \
		-v ol="${ours[*]}" -v tl="${theirs[*]}" -v rr="$(ratios "${theirs[*]}" "${ours[*]}")" 'BEGIN {
		printf "%-28s pxewim %6.3fs (%6.1f MB/s)   %-9s %6.3fs (%6.1f MB/s)   ratio %.2fx (best), per round %s\n",
			name, o, mb / o, peer, t, mb / t, t / o, rr
		printf "%-28s   runs: pxewim [%s]  %s [%s]\n", "", ol, peer, tl
	}'
}

echo "TFTP, ${SIZE_MB} MB file on loopback, atftp client, best of ${RUNS} runs ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
compare "lock-step blksize $BLKSIZE" "$P_HPA" tftpd-hpa "blksize $BLKSIZE"
if [ -n "$ATFTPD" ]; then
	compare "windowsize $WINDOW blksize $BLKSIZE" "$P_ATFTPD" atftpd "blksize $BLKSIZE" "windowsize $WINDOW"
fi
if [ -n "${POLL:-}" ]; then
	compare "lock-step, poll sockets" "$P_POLL" "poll" "blksize $BLKSIZE"
	compare "windowsize $WINDOW, poll sockets" "$P_POLL" "poll" "blksize $BLKSIZE" "windowsize $WINDOW"
fi
if [ "${WARM:-1}" != 0 ]; then
	if command -v wimlib-imagex >/dev/null; then
		# The store: big.bin inside an LZX WIM; pxewim serves it from its decoded-blob cache.
		mkdir -m 755 "$work/store" "$work/wimsrc"
		ln "$work/root/big.bin" "$work/wimsrc/big.bin"
		wimlib-imagex capture "$work/wimsrc" "$work/store/big.wim" big --compress=LZX >/dev/null
		P_WARM=$(port)
		"$work/tftpserve" -addr "127.0.0.1:$P_WARM" -dir "$work/store" -blob-cache "$work/blobcache" \
			-max-blksize 65464 -max-window 64 &
		pids+=($!)
		sleep 0.5
		cached="$work/blobcache/$(sha1sum "$work/root/big.bin" | cut -d' ' -f1)-$(stat -c %s "$work/root/big.bin")"
		# A first download from the WIM: a read in full fills the cache in the background.
		FILE=big.wim:1/big.bin fetch "$P_WARM" "blksize $BLKSIZE" "windowsize $WINDOW" >/dev/null
		for _ in $(seq 600); do [ -f "$cached" ] && break; sleep 0.1; done
		[ -f "$cached" ] || die "the blob was not cached after a download in full ($cached)"
		OURS_PORT=$P_WARM OURS_FILE=big.wim:1/big.bin compare "warm lock-step blksize $BLKSIZE" "$P_HPA" tftpd-hpa "blksize $BLKSIZE"
		OURS_PORT=$P_WARM OURS_FILE=big.wim:1/big.bin compare "warm vs pxewim's folder" "$P_PXEWIM" "pxewim-dir" "blksize $BLKSIZE"
		if [ -n "$ATFTPD" ]; then
			OURS_PORT=$P_WARM OURS_FILE=big.wim:1/big.bin compare "warm windowsize $WINDOW" "$P_ATFTPD" atftpd "blksize $BLKSIZE" "windowsize $WINDOW"
		fi
	else
		echo "bench/tftp.sh: wimlib-imagex not found (apt-get install wimtools): skipping the warm blob-cache cases" >&2
	fi
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "targets: lock-step >= 1.0x tftpd-hpa, windowed >= 1.2x atftpd; warm blob cache (file inside a WIM) >= 1.0x tftpd-hpa (folder)"
