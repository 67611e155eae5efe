#!/usr/bin/env bash
# bench/wim-verify.sh: decode speed of pxewim's WIM reader against wimlib-imagex, same input,
# same run.
#
# Builds a tree of >= 100 MB of real binaries and text (from /usr/lib/x86_64-linux-gnu and
# /usr/share/doc), captures it with wimlib-imagex as XPRESS, LZX, LZMS and solid (LZMS) WIMs,
# then times `wimlib-imagex verify` and `pxewim wim verify` on each and prints the wall-time,
# CPU-time and peak-RSS ratios (issue 16: wall and CPU <= 1.0x for every mode, RSS of the
# solid WIM <= 1.2x). Then runs the Go
# benchmark of a cold 64 KiB ReadAt inside a large LZX file, and the comparison with
# github.com/Microsoft/go-winio/wim (a separate module in bench/gowinio) on the LZX WIM.
#
#   bench/wim-verify.sh                 # ~120 MB tree
#   SIZE_MB=300 RUNS=3 bench/wim-verify.sh
#   KEEP=1 bench/wim-verify.sh          # keep the work directory
#   PXEWIM=/path/to/pxewim bench/wim-verify.sh   # use a prebuilt binary
#   WORK=/tmp/dir WIMS_ONLY=1 bench/wim-verify.sh   # only build the tree and WIMs in /tmp/dir
#                                                   # (bench/pgo.sh profiles verify on them)
#   WORK=/tmp/dir REUSE=1 bench/wim-verify.sh       # time the tree and WIMs already in /tmp/dir
#   VERIFY_ONLY=1 ...                               # only the verify table (no ReadAt, go-winio)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wimlib-imagex >/dev/null || { echo "wim-verify.sh: wimlib-imagex not found: apt-get install wimtools" >&2; exit 1; }

SIZE_MB=${SIZE_MB:-120}
RUNS=${RUNS:-2}
if [ -n "${WORK:-}" ]; then mkdir -p "$WORK"; KEEP=1; else WORK=$(mktemp -d /tmp/pxewim-wimbench.XXXXXX); fi
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

echo "work directory: $WORK ($(nproc) cores)"
if [ "${WIMS_ONLY:-0}" = 1 ]; then :; elif [ -n "${PXEWIM:-}" ]; then cp "$PXEWIM" "$WORK/pxewim"; else go build -o "$WORK/pxewim" ./cmd/pxewim; fi

# take_files DIR MB: copy regular files from DIR (sorted, each < 16 MB) until MB megabytes.
take_files() {
  local dir=$1 cap=$(( $2 * 1024 * 1024 ))
  # (awk stops reading early: the SIGPIPE upstream is expected, hence "|| true")
  { find "$dir" -type f -size -16M -printf '%s\t%p\n' 2>/dev/null | sort -k2 |
    awk -F'\t' -v cap="$cap" '{ if (sum >= cap) exit; sum += $1; print $2 }' |
    while IFS= read -r f; do cp --parents -- "$f" "$WORK/src/" 2>/dev/null || true; done; } || true
}
MODES=(xpress lzx lzms solid)
reuse=0
if [ "${REUSE:-0}" = 1 ] && [ -d "$WORK/src" ]; then
  reuse=1
  for m in "${MODES[@]}"; do [ -f "$WORK/$m.wim" ] || reuse=0; done
fi
# build_wims: the source tree and its four WIMs.
build_wims() {
  mkdir -p "$WORK/src"
  take_files /usr/lib/x86_64-linux-gnu $(( SIZE_MB * 3 / 4 ))
  take_files /usr/share/doc $(( SIZE_MB / 4 ))
  total=$(du -sb "$WORK/src" | cut -f1)
  echo "source tree: $(( total / 1024 / 1024 )) MiB in $(find "$WORK/src" -type f | wc -l) files"
  if [ "$total" -lt $(( 100 * 1024 * 1024 )) ]; then
    take_files /usr/lib $(( (100 * 1024 * 1024 - total) / 1024 / 1024 + 5 ))
    total=$(du -sb "$WORK/src" | cut -f1)
    echo "topped up to $(( total / 1024 / 1024 )) MiB"
  fi

  declare -A CAPTURE=(
    [xpress]="--compress=xpress"
    [lzx]="--compress=lzx"
    [lzms]="--compress=lzms"
    [solid]="--solid"
  )
  for m in "${MODES[@]}"; do
    # shellcheck disable=SC2086
    wimlib-imagex capture "$WORK/src" "$WORK/$m.wim" bench ${CAPTURE[$m]} >/dev/null 2>&1
  done
}
if [ "$reuse" = 1 ]; then echo "reusing the tree and WIMs in $WORK"; else build_wims; fi
if [ "${WIMS_ONLY:-0}" = 1 ]; then echo "WIMs built: $WORK/{${MODES[*]}}.wim" | tr ' ' ','; exit 0; fi

# best_time CMD...: "WALL CPU RSS" (seconds, seconds, MiB) of the run with the smallest wall
# time out of $RUNS. CPU (user+sys) is printed too: on a busy machine wall times swing, CPU
# time much less. RSS is the largest peak resident set (VmHWM, from /usr/bin/time) of the runs.
best_time() {
  local best="" cpu="" rss=0 line w c m
  for _ in $(seq "$RUNS"); do
    line=$( /usr/bin/time -f '%e %U %S %M' -o /dev/stdout "$@" 2>/dev/null | tail -n 1 ) || { echo "FAILED: $*" >&2; return 1; }
    w=$(echo "$line" | awk '{ print $1 }')
    c=$(echo "$line" | awk '{ print $2 + $3 }')
    m=$(echo "$line" | awk '{ print int($4 / 1024) }')
    [ "$m" -gt "$rss" ] && rss=$m
    if [ -z "$best" ] || awk -v d="$w" -v b="$best" 'BEGIN { exit !(d < b) }'; then best=$w; cpu=$c; fi
  done
  echo "$best $cpu $rss"
}

echo "load: $(uptime | sed 's/.*load average: //')"
printf '\n%-8s %8s %10s %10s %10s %10s %8s %8s %8s %10s %10s %8s\n' mode "WIM MiB" "wimlib s" "pxewim s" "wimlib cpu" "pxewim cpu" ratio "cpu ratio" target "wimlib RSS" "pxewim RSS" "RSS ratio"
for m in "${MODES[@]}"; do
  size=$(( $(stat -c %s "$WORK/$m.wim") / 1024 / 1024 ))
  read -r tw cw rw < <(best_time wimlib-imagex verify "$WORK/$m.wim")
  read -r tp cp rp < <(best_time "$WORK/pxewim" wim verify "$WORK/$m.wim")
  target=1.00
  awk -v m="$m" -v s="$size" -v tw="$tw" -v tp="$tp" -v cw="$cw" -v cp="$cp" -v t="$target" -v rw="$rw" -v rp="$rp" \
    'BEGIN { printf "%-8s %8d %10.3f %10.3f %10.3f %10.3f %7.2fx %8.2fx %7.2fx %9dM %9dM %7.2fx\n", m, s, tw, tp, cw, cp, tp/tw, cp/cw, t, rw, rp, rp/rw }'
done
echo "load: $(uptime | sed 's/.*load average: //')"
if [ -r /proc/pressure/cpu ]; then echo "CPU pressure (some avg60): $(awk '/some/ { print $3 }' /proc/pressure/cpu)"; fi

[ "${VERIFY_ONLY:-0}" = 1 ] && exit 0

echo
echo "cold 64 KiB ReadAt inside a large LZX file (Go benchmark):"
PXEWIM_BENCH_SRC="$WORK/src" go test ./wim -run '^$' -bench 'BenchmarkColdReadAt' -benchtime 400x -count 1 | grep -E '^Benchmark|ok|FAIL'

echo
echo "sequential read of every file in the LZX WIM: pxewim vs github.com/Microsoft/go-winio/wim"
(cd bench/gowinio && go run . "$WORK/lzx.wim")
