#!/usr/bin/env bash
# bench/verify-cost.sh: what the background verification of the local store's WIMs costs
# (issue 11 point 3): seconds and CPU-seconds per GB of WIM file, measured on the verifier the
# daemon runs (localstore.Verifier: every blob decoded and checked against its SHA-1, the
# metadata parsed, the integrity table if any), then a second start over the same verdicts
# file, which must verify nothing. `wimlib-imagex verify` on the same WIM in the same run is
# the peer figure.
#
# The store is one WIM of about SIZE_MB captured by wimlib-imagex (LZX, as Windows PE ships)
# from the Go toolchain ($(go env GOROOT)) and files of /usr/lib (each < 16 MB).
#
#   bench/verify-cost.sh                      # ~1 GB, LZX
#   SIZE_MB=300 COMPRESS=XPRESS bench/verify-cost.sh
#   WORK=/tmp/dir KEEP=1 bench/verify-cost.sh # keep the tree and WIM (REUSE=1 to time them again)
#
# An LZX capture of 1 GB takes wimlib-imagex over 20 minutes on a busy 2-core machine; XPRESS
# captures in a few. The verification cost per GB differs by codec (LZX decodes slower).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wimlib-imagex >/dev/null || { echo "verify-cost.sh: wimlib-imagex not found: apt-get install wimtools" >&2; exit 1; }
SIZE_MB=${SIZE_MB:-1024}
COMPRESS=${COMPRESS:-LZX}
if [ -n "${WORK:-}" ]; then mkdir -p "$WORK"; KEEP=1; else WORK=$(mktemp -d /tmp/pxewim-verifycost.XXXXXX); fi
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
echo "verify-cost: work $WORK, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
go build -o "$WORK/verifycost" ./bench/verifycost

mkdir -p "$WORK/store"
if [ "${REUSE:-0}" != 1 ] || [ ! -f "$WORK/store/big.wim" ]; then
 if [ "${REUSE:-0}" != 1 ] || [ ! -d "$WORK/src" ]; then
  rm -rf "$WORK/src" && mkdir -p "$WORK/src"
  cp -a "$(go env GOROOT)" "$WORK/src/go"
  have=$(du -sLm "$WORK/src" | cut -f1)
  cap=$(( (SIZE_MB - have) * 1024 * 1024 ))
  if [ "$cap" -gt 0 ]; then
    # (awk stops reading early: the SIGPIPE upstream is expected, hence "|| true")
    { find /usr/lib -type f -size -16M -printf '%s\t%p\n' 2>/dev/null | sort -k2 |
      awk -F'\t' -v cap="$cap" '{ if (sum >= cap) exit; sum += $1; print $2 }' |
      while IFS= read -r f; do cp --parents -- "$f" "$WORK/src/" 2>/dev/null || true; done; } || true
  fi
 fi
  echo "tree: $(du -sLm "$WORK/src" | cut -f1) MB in $(find -L "$WORK/src" -type f | wc -l) files"
  start=$(date +%s.%N)
  wimlib-imagex capture "$WORK/src" "$WORK/store/big.wim" bench "--compress=$COMPRESS" >/dev/null
  echo "capture ($COMPRESS): $(echo "$(date +%s.%N) - $start" | bc) s, WIM $(( $(stat -c %s "$WORK/store/big.wim") / 1048576 )) MiB"
fi

"$WORK/verifycost" "$WORK/store" big.wim
# The peer: wimlib-imagex verify, same file, same run (user+sys from bash's time).
TIMEFORMAT='PEER wimlib-imagex verify: wall %R s, CPU %U s user + %S s sys'
time wimlib-imagex verify "$WORK/store/big.wim" >/dev/null
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
