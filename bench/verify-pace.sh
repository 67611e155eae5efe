#!/bin/bash
# Background verification after a mass change (issue 16): a store of N WIMs, all replaced at
# once (copied aside and renamed over: new inodes), served by a real `pxewim serve` on
# loopback with a state folder (the replaced WIMs are verified in the background). bench/reqlat
# probes the daemon throughout (HTTP GET and TFTP RRQ of a small loose file, sequential, every
# 5 ms). Printed per round: request latency p50/p99 while idle and while the replaced WIMs are
# verified (from the catalog's rescan that noticed them until the last "WIM verified"
# record), p99 ratio during/idle, and how long that took. Each round runs twice, alternating: verification paced (the
# default) and unpaced (PXEWIM_VERIFY_PACE=-1: every core until done), each on a freshly
# started daemon. Needs wimtools; no root; everything listens on 127.0.0.1.
#
#   bench/verify-pace.sh                       # 16 WIMs of ~16 MiB (LZX), 2 rounds
#   VP_WIMS=32 VP_MB=8 VP_ROUNDS=3 bench/verify-pace.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WIMS=${VP_WIMS:-16} MB=${VP_MB:-16} ROUNDS=${VP_ROUNDS:-2}
tmp=$(mktemp -d /tmp/pxewim-verifypace.XXXXXX)
pid= probe=
cleanup() {
	[ -n "$probe" ] && kill "$probe" 2>/dev/null && wait "$probe" 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
go build ${GOFLAGS_BENCH:-} -o "$tmp/pxewim" ./cmd/pxewim
go build -o "$tmp/reqlat" ./bench/reqlat
store=$tmp/store
mkdir -p "$store/wims" "$tmp/src/Windows/System32" "$tmp/state"
# One WIM of compressible data (base64 of random bytes: LZX has work to do), copied N times.
for i in $(seq 1 8); do head -c $((MB * 1024 * 1024 * 3 / 32)) /dev/urandom | base64 > "$tmp/src/Windows/System32/f$i.dll"; done
wimlib-imagex capture "$tmp/src" "$tmp/base.wim" img --compress=LZX >/dev/null
for n in $(seq 1 "$WIMS"); do cp "$tmp/base.wim" "$store/wims/$(printf %03d "$n").wim"; done
echo "probe" > "$store/small.txt"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hport=$(port) tport=$(port)
cat > "$tmp/pxewim.yaml" <<CFG
store: $store
state_dir: $tmp/state
listen: {http: "127.0.0.1:$hport", tftp: "127.0.0.1:$tport"}
dhcp: {mode: off}
admin: {listen: off}
CFG
now_ns() { date +%s%N; }
count() { grep -c "\"msg\":\"$2\"" "$1" || true; }
# logtime LOG MSG first|last AFTER: Unix ns of the first or last record MSG at or after AFTER (ns).
logtime() {
	python3 - "$@" <<'PY'
import json, sys, datetime
path, msg, which, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
found = []
for line in open(path):
    try: r = json.loads(line)
    except ValueError: continue
    if r.get("msg") == msg:
        s = r["time"]; main, rest = s.split(".", 1); digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]; d = datetime.datetime.fromisoformat(main + tz.replace("Z", "+00:00"))
        t = int(d.timestamp()) * 10**9 + int(digits.ljust(9, "0")[:9])
        if t >= after: found.append(t)
print(found[0] if which == "first" else found[-1])
PY
}
waitcount() { # LOG N: until the log has N "WIM verified" records
	local i
	for i in $(seq 1 3000); do
		[ "$(count "$1" "WIM verified")" -ge "$2" ] && return 0
		kill -0 "$pid" 2>/dev/null || { tail -20 "$1"; exit 1; }
		sleep 0.2
	done
	echo "verify-pace: only $(count "$1" "WIM verified") of $2 WIMs verified after 10 minutes" >&2
	exit 1
}
echo "verify-pace: $WIMS WIMs of $(du -m "$tmp/base.wim" | cut -f1) MiB (LZX, $MB MiB of files), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# The store's first verification, before any round (then every start remembers the verdicts).
"$tmp/pxewim" serve --config "$tmp/pxewim.yaml" --log-format json > "$tmp/first.log" 2>&1 &
pid=$!
waitcount "$tmp/first.log" "$WIMS"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

# round MODE PACE: one daemon; idle probing, then every WIM replaced at once.
round() {
	local mode=$1 log=$tmp/$1-$2.log lat=$tmp/lat-$1-$2.txt
	PXEWIM_VERIFY_PACE=$3 "$tmp/pxewim" serve --config "$tmp/pxewim.yaml" --log-format json > "$log" 2>&1 &
	pid=$!
	until curl -sf -o /dev/null "http://127.0.0.1:$hport/files/small.txt"; do
		kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
		sleep 0.05
	done
	sleep 3 # the start's catalog scan and remembered verdicts settle
	"$tmp/reqlat" -http "http://127.0.0.1:$hport/files/small.txt" -tftp "127.0.0.1:$tport" -tftp-file small.txt \
		-every 5ms -for 15m -out "$lat" 2>"$tmp/reqlat.err" &
	probe=$!
	local idle_from idle_to from to before
	idle_from=$(now_ns); sleep 8; idle_to=$(now_ns)
	before=$(count "$log" "WIM verified")
	for f in "$store"/wims/*.wim; do cp "$tmp/base.wim" "$f.new"; done
	local moved; moved=$(now_ns)
	for f in "$store"/wims/*.wim; do mv "$f.new" "$f"; done
	waitcount "$log" $((before + WIMS))
	from=$(logtime "$log" "catalog: store files changed: scanning" first "$moved")
	to=$(logtime "$log" "WIM verified" last "$moved")
	sleep 1
	kill "$probe"; wait "$probe" 2>/dev/null || true; probe=
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	python3 - "$lat" "$idle_from" "$idle_to" "$from" "$to" "$mode" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import sys
rows = [r for r in (l.split() for l in open(sys.argv[1])) if len(r) == 4]
a, b, c, d = map(int, sys.argv[2:6])
mode, load = sys.argv[6], sys.argv[7]
def pct(proto, lo, hi, q):
    l = sorted(int(r[2]) for r in rows if r[1] == proto and lo <= int(r[0]) < hi)
    return (l[min(len(l) - 1, int(q * len(l)))] / 1e6, len(l)) if l else (float("nan"), 0)
out = f"  {mode:8s} verifying took {(d - c) / 1e9:6.1f} s, load {load}:"
for proto in ("http", "tftp"):
    i50, _ = pct(proto, a, b, 0.5); i99, ni = pct(proto, a, b, 0.99)
    v50, _ = pct(proto, c, d, 0.5); v99, nv = pct(proto, c, d, 0.99)
    out += f"  {proto} idle p50/p99 {i50:.2f}/{i99:.2f} ms ({ni}), verifying {v50:.2f}/{v99:.2f} ms ({nv}), p99 {v99 / i99:.2f}x idle;"
fails = sum(1 for r in rows if r[3] != "true")
print(out + (f"  {fails} failed requests" if fails else ""))
PY
}
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r"
	if [ $((r % 2)) = 1 ]; then
		round paced "$r" 0
		round unpaced "$r" -1
	else
		round unpaced "$r" -1
		round paced "$r" 0
	fi
done
