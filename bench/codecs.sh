#!/usr/bin/env bash
# bench/codecs.sh: pxewim's XPRESS and LZX chunk decoders against wimlib's C decoders on the
# same wimlib-compressed chunks (x86 binaries and libraries from this machine, text, zeros, and
# a mix with random bytes), in one run. Each chunk is decoded by both, alternately, and the
# calling thread's CPU time is counted, so other load on the machine skews neither side.
# ratio = pxewim time / wimlib time (below 1.00: pxewim is faster). Needs libwim-dev.
#
#   bench/codecs.sh                 default: 20 passes over 4 MiB per data kind
#   BENCHTIME=50x bench/codecs.sh   more passes
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${BENCHTIME:-20x}
printf '%-7s %-6s %8s %12s %12s %7s\n' codec data chunk pxewim-MB/s wimlib-MB/s ratio
for pkg in xpress lzx; do
  go test -tags libwim -run '^$' -bench '^BenchmarkDecompress$' -benchtime "$benchtime" "./wim/$pkg" |
    awk -v codec="$pkg" '
      /^BenchmarkDecompress\// {
        split($1, name, "/"); sub(/-[0-9]+$/, "", name[3])
        for (i = 2; i < NF; i++) {
          if ($(i+1) == "go-MB/s") g = $i
          if ($(i+1) == "wimlib-MB/s") w = $i
          if ($(i+1) == "ratio") r = $i
        }
        printf "%-7s %-6s %8s %12.1f %12.1f %7.3f\n", codec, name[2], name[3], g, w, r
      }
      /^(FAIL|---)/ { print; bad = 1 }
      END { exit bad }'
done
