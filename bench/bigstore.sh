#!/bin/bash
# Big-store benchmark (issue 16): a store of 2,000 small WIMs and 50 ISOs (each holding a
# WIM), served by a real `pxewim serve` on loopback. Measures, in one run:
#   - the catalog's first scan (cold: no saved catalog) and pxewim's peak RSS (VmHWM);
#   - a restart with the saved catalog (state_dir/catalog.gob): time to serve and scan time;
#   - request latency (HTTP GET and TFTP RRQ of a small loose file, sequential, every 5 ms)
#     while idle and while the catalog rescans every file (all mtimes touched), same daemon:
#     p50/p99 and the ratio scan/idle.
# Needs wimtools and genisoimage. No root needed; everything listens on 127.0.0.1.
#
#   bench/bigstore.sh                     # 2000 WIMs, 50 ISOs
#   BIG_WIMS=500 BIG_ISOS=10 bench/bigstore.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WIMS=${BIG_WIMS:-2000} ISOS=${BIG_ISOS:-50}
tmp=$(mktemp -d /tmp/pxewim-bigstore.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
go build ${GOFLAGS_BENCH:-} -o "$tmp/pxewim" ./cmd/pxewim
go build -o "$tmp/reqlat" ./bench/reqlat
store=$tmp/store
mkdir -p "$store/wims" "$store/isos" "$tmp/src" "$tmp/state"
# 20 distinct small WIMs (three codecs), copied to $WIMS files.
for i in $(seq 0 19); do
	d=$tmp/src/$i; mkdir -p "$d/Windows/System32" "$d/tools"
	head -c $((20000 + i * 1000)) /dev/urandom > "$d/tools/blob.bin"
	seq 1 $((2000 + i * 50)) > "$d/Windows/System32/list.txt"
	codec=(LZX XPRESS LZMS); wimlib-imagex capture "$d" "$tmp/base$i.wim" "img$i" --compress=${codec[$((i % 3))]} >/dev/null
done
for n in $(seq 0 $((WIMS - 1))); do cp "$tmp/base$((n % 20)).wim" "$store/wims/$(printf %04d "$n").wim"; done
mkdir -p "$tmp/isoroot/sources"; cp "$tmp/base0.wim" "$tmp/isoroot/sources/boot.wim"
genisoimage -quiet -udf -R -J -o "$tmp/base.iso" "$tmp/isoroot"
for n in $(seq 0 $((ISOS - 1))); do cp "$tmp/base.iso" "$store/isos/$(printf %02d "$n").iso"; done
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
secs() { python3 -c "import sys; v = sys.argv[1]; print(f'{int(v) / 1e9:.2f} s' if v.isdigit() else v)" "$1"; } # slog's JSON durations are ns
start_serve() { # $1: log file; sets pid and ready_ms (ms until the first HTTP answer)
	local t0; t0=$(now_ns)
	"$tmp/pxewim" serve --config "$tmp/pxewim.yaml" --log-format json > "$1" 2>&1 &
	pid=$!
	until curl -sf -o /dev/null "http://127.0.0.1:$hport/files/small.txt"; do
		kill -0 "$pid" 2>/dev/null || { cat "$1"; exit 1; }
		sleep 0.02
	done
	ready_ms=$(( ($(now_ns) - t0) / 1000000 ))
}
stop_serve() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
hwm() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status"; }
logval() { # $1 log, $2 message, $3 key: the key's value in the last record with that message
	python3 - "$@" <<'PY'
import json, sys
v = ""
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    if r.get("msg") == sys.argv[2]: v = r.get(sys.argv[3], "")
print(v)
PY
}
logtime() { # $1 log, $2 message: Unix ns of its last record
	python3 - "$@" <<'PY'
import json, sys, datetime
t = ""
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    if r.get("msg") == sys.argv[2]:
        s = r["time"]; frac = ""
        if "." in s:
            main, rest = s.split(".", 1); digits = "".join(c for c in rest if c.isdigit()); tz = rest[len(digits):]
            frac = digits.ljust(9, "0")[:9]; s = main + tz
        else: frac = "000000000"
        d = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
        t = str(int(d.timestamp()) * 10**9 + int(frac))
print(t)
PY
}
echo "bigstore: $WIMS WIMs + $ISOS ISOs ($(du -sh "$store" | cut -f1)), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

start_serve "$tmp/cold.log"; cold_ready=$ready_ms
cold_took=$(logval "$tmp/cold.log" "catalog: store scanned" took)
cold_files=$(logval "$tmp/cold.log" "catalog: store scanned" files)
cold_rss=$(hwm)
echo "cold start: serving after ${cold_ready} ms; catalog scan took $(secs "$cold_took") ($cold_files catalog files); peak RSS ${cold_rss} MiB"

# Latency: idle, then while every file is rescanned (the watcher polls every 30 s).
"$tmp/reqlat" -http "http://127.0.0.1:$hport/files/small.txt" -tftp "127.0.0.1:$tport" -tftp-file small.txt \
	-every 5ms -for 75s -out "$tmp/lat.txt" 2>"$tmp/reqlat.err" &
probe=$!
idle_from=$(now_ns); sleep 10; idle_to=$(now_ns)
find "$store" -name '*.wim' -o -name '*.iso' | xargs touch
until [ -n "$(logtime "$tmp/cold.log" "catalog: store changed")" ]; do sleep 0.5; kill -0 "$probe" 2>/dev/null || break; done
scan_from=$(logtime "$tmp/cold.log" "catalog: store files changed: scanning")
scan_to=$(logtime "$tmp/cold.log" "catalog: store changed")
sleep 10 # the changed WIMs are verified in the background after the scan
after_to=$(now_ns)
kill "$probe" 2>/dev/null; wait "$probe" 2>/dev/null || true
scan_ms=$(( (scan_to - scan_from) / 1000000 ))
echo "rescan of every file while serving: ${scan_ms} ms; peak RSS now $(hwm) MiB"
echo "  idle:";   "$tmp/reqlat" -stats -out "$tmp/lat.txt" -from "$idle_from" -to "$idle_to" | sed 's/^/    /'
echo "  scanning:"; "$tmp/reqlat" -stats -out "$tmp/lat.txt" -from "$scan_from" -to "$scan_to" | sed 's/^/    /'
echo "  the 10 s after the scan (background verification of the changed WIMs):"
"$tmp/reqlat" -stats -out "$tmp/lat.txt" -from "$scan_to" -to "$after_to" | sed 's/^/    /'
python3 - "$tmp/lat.txt" "$idle_from" "$idle_to" "$scan_from" "$scan_to" <<'PY'
import sys
rows = [r for r in (l.split() for l in open(sys.argv[1])) if len(r) == 4]
a, b, c, d = map(int, sys.argv[2:6])
for proto in ("http", "tftp"):
    def p99(lo, hi):
        l = sorted(int(r[2]) for r in rows if r[1] == proto and lo <= int(r[0]) < hi)
        return l[min(len(l) - 1, int(0.99 * len(l)))] if l else None
    i, s = p99(a, b), p99(c, d)
    if i and s: print(f"  {proto}: p99 while scanning / p99 idle = {s / i:.2f}x")
PY
stop_serve

start_serve "$tmp/warm.log"; warm_ready=$ready_ms
warm_took=$(logval "$tmp/warm.log" "catalog: store scanned" took)
warm_rss=$(hwm)
echo "restart with the saved catalog: serving after ${warm_ready} ms; catalog scan took $(secs "$warm_took"); peak RSS ${warm_rss} MiB"
echo "restart vs cold start: $(python3 -c "print(f'{$warm_ready / $cold_ready:.2f}x')") of the time to serve"
stop_serve
