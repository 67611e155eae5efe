#!/usr/bin/env bash
# bench/codecs.sh: pxewim's XPRESS, LZX and LZMS chunk decoders against wimlib's C decoders on
# the same wimlib-compressed chunks (x86 binaries and libraries from this machine, text, zeros,
# a mix with random bytes; for LZMS also strided numbers and bitmaps, and one 64 MiB chunk as
# in solid resources), in one run, then the XPRESS encoder against wimlib's compressor. Each chunk is decoded by both, alternately, and the
# calling thread's CPU time is counted, so other load on the machine skews neither side.
# ratio = pxewim time / wimlib time (below 1.00: pxewim is faster). Needs libwim-dev.
#
#   bench/codecs.sh                 default: 20 passes over 4 MiB per data kind
#   BENCHTIME=50x bench/codecs.sh   more passes (BENCHTIME_ENC for the encoder, default 5x)
#   CODECS="lzms" bench/codecs.sh   only some codecs (xpress lzx lzms xpress-encoder)
#   PXEWIM_LZMS_CACHE=/tmp/dir      keep wimlib's (slow) LZMS compressions between runs
# LZMS figures are from each chunk's fastest decode (thread CPU time) over the passes.
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${BENCHTIME:-20x}
codecs=${CODECS:-xpress lzx lzms xpress-encoder}
echo "load: $(uptime | sed 's/.*load average: //')"
printf '%-7s %-9s %8s %12s %12s %7s\n' codec data chunk pxewim-MB/s wimlib-MB/s ratio
for pkg in $codecs; do
  [ "$pkg" = xpress ] || [ "$pkg" = lzx ] || continue
  go test -tags libwim -run '^$' -bench '^BenchmarkDecompress$' -benchtime "$benchtime" "./wim/$pkg" |
    awk -v codec="$pkg" '
      /^BenchmarkDecompress\// {
        split($1, name, "/"); sub(/-[0-9]+$/, "", name[3])
        for (i = 2; i < NF; i++) {
          if ($(i+1) == "go-MB/s") g = $i
          if ($(i+1) == "wimlib-MB/s") w = $i
          if ($(i+1) == "ratio") r = $i
        }
        printf "%-7s %-9s %8s %12.1f %12.1f %7.3f\n", codec, name[2], name[3], g, w, r
      }
      /^(FAIL|---)/ { print; bad = 1 }
      END { exit bad }'
done
case " $codecs " in *" lzms "*)
  go test -tags libwim -run '^$' -bench '^BenchmarkDecompress$' -benchtime "${BENCHTIME:-5x}" ./wim/lzms |
    awk '
      /^BenchmarkDecompress\// {
        split($1, name, "/"); sub(/-[0-9]+$/, "", name[3]); sub(/^chunk=/, "", name[3])
        for (i = 2; i < NF; i++) {
          if ($(i+1) == "pxewim-MB/s") g = $i
          if ($(i+1) == "wimlib-MB/s") w = $i
          if ($(i+1) == "ratio") r = $i
        }
        printf "%-7s %-9s %8s %12.1f %12.1f %7.3f\n", "lzms", name[2], name[3], g, w, r
      }
      /^(FAIL|---)/ { print; bad = 1 }
      END { exit bad }' ;;
esac
case " $codecs " in *" xpress-encoder "*)
  echo
  echo "XPRESS encoder (compression speed from each chunk's fastest of the passes; speed = wimlib time / pxewim time, >= 1.00: pxewim faster; sizes as output/input):"
  printf '%-9s %8s %12s %12s %7s %10s %10s\n' data chunk pxewim-MB/s wimlib-MB/s speed pxewim-out wimlib-out
  go test -tags libwim -run '^$' -bench '^BenchmarkCompress$' -benchtime "${BENCHTIME_ENC:-5x}" ./wim/xpress |
    awk '
      /^BenchmarkCompress\// {
        split($1, name, "/"); sub(/-[0-9]+$/, "", name[3])
        for (i = 2; i < NF; i++) {
          if ($(i+1) == "go-MB/s") g = $i
          if ($(i+1) == "wimlib-MB/s") w = $i
          if ($(i+1) == "go-ratio") gr = $i
          if ($(i+1) == "wimlib-ratio") wr = $i
        }
        printf "%-9s %8s %12.1f %12.1f %7.3f %10.4f %10.4f\n", name[2], name[3], g, w, g / w, gr, wr
      }
      /^(FAIL|---)/ { print; bad = 1 }
      END { exit bad }' ;;
esac
echo "load: $(uptime | sed 's/.*load average: //')"
