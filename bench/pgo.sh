#!/usr/bin/env bash
# bench/pgo.sh: regenerate cmd/pxewim/default.pgo, the CPU profile that `go build` uses for
# profile-guided optimisation of the pxewim binary (Go picks up default.pgo in the main
# package's directory automatically; -pgo=off disables it).
#
# The workload is `pxewim wim verify`'s engine (wim.Archive.Verify, via BenchmarkVerify) on
# the XPRESS, LZX, LZMS and solid WIMs of bench/wim-verify.sh, plus cold ReadAts inside a large
# LZX file (BenchmarkColdReadAt): the decoders, SHA-1 and the chunk cache, which is where the
# binary spends its CPU. Measured gain: LZMS decoding a few per cent, XPRESS/LZX within noise.
#
#   bench/pgo.sh                                    # builds a ~100 MB tree and its WIMs first
#   PXEWIM_BENCH_WIMS='/tmp/dir/*.wim' bench/pgo.sh # profile existing WIMs instead
set -euo pipefail
cd "$(dirname "$0")/.."
out=cmd/pxewim/default.pgo
tmp=$(mktemp -d /tmp/pxewim-pgo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
wims=${PXEWIM_BENCH_WIMS:-}
src=${PXEWIM_BENCH_SRC:-}
if [ -z "$wims" ]; then
  SIZE_MB=${SIZE_MB:-100} WORK="$tmp/wims" WIMS_ONLY=1 bench/wim-verify.sh
  wims="$tmp/wims/*.wim"
  src="$tmp/wims/src"
fi
# The profile of the test binary names the same functions as the pxewim binary's; -pgo=off
# keeps the profiled code independent of an older default.pgo.
PXEWIM_BENCH_WIMS="$wims" PXEWIM_BENCH_SRC="$src" go test -pgo=off ./wim -run '^$' \
  -bench 'BenchmarkVerify|BenchmarkColdReadAt' -benchtime 5x -count 1 \
  -cpuprofile "$tmp/cpu.pprof" -o "$tmp/wim.test" | grep -E '^Benchmark|^ok'
cp "$tmp/cpu.pprof" "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
