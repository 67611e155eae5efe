#!/usr/bin/env bash
# bench/winpe-http.sh: a WinPE boot.wim pulled over loopback HTTP through pxewim's real HTTP
# handler by net/http clients: the plain LZX file, the same image with injected files
# (synthesised on the fly), and the LZMS and LZMS solid captures of the same tree transcoded to
# uncompressed WIMs as they are served; net/http.FileServer (sendfile) serves the plain file as
# the peer. Prints time to first byte (whole GET and a cold 64 KiB range in the middle) and
# MB/s with ratios to the plain file, then 20 clients pulling 20 different injected variants
# at once (injected LZX, and injected + transcoded LZMS and LZMS solid): aggregate MB/s, the
# peak heap above the heap before the run, and the peak resident set of the process.
# Needs wimtools.
#
#   bench/winpe-http.sh                      default: a 128 MiB tree, 3 runs per case
#   MB=300 RUNS=1 bench/winpe-http.sh        bigger image
#   VARIANTS=0 bench/winpe-http.sh          without the 20-client variants
#   MB=64 CASES='(plain|transcoded-lzms-solid)$' bench/winpe-http.sh   some cases only (the
#                                            plain one is needed for the ratios)
set -euo pipefail
cd "$(dirname "$0")/.."
export PXEWIM_BENCH_MB=${MB:-128}
runs=${RUNS:-3}
echo "image tree: ${PXEWIM_BENCH_MB} MiB (each run opens the sources afresh: cold chunk caches; warm = the same requests again), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
go test -timeout 60m -run '^$' -bench "^BenchmarkWinPEOverHTTP\$${CASES:+/$CASES}" -benchtime "${runs}x" ./httpboot |
  awk '
    function metric(unit,   i) { for (i = 2; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
    /^BenchmarkWinPEOverHTTP\// {
      split($1, n, "/"); sub(/-[0-9]+$/, "", n[2])
      name[++k] = n[2]; mbs[k] = metric("MB/s"); ttfb[k] = metric("ttfb-ms")
      rttfb[k] = metric("range-ttfb-ms"); build[k] = metric("build-ms"); size[k] = metric("wim-MiB")
      wttfb[k] = metric("warm-ttfb-ms"); wrttfb[k] = metric("warm-range-ttfb-ms")
      if (n[2] == "plain") plain = k
    }
    /^(FAIL|---)/ { print; bad = 1 }
    END {
      if (bad || !plain) exit 1
      printf "%-24s %8s %9s %10s %13s %12s %14s %9s %10s %10s\n", "case", "WIM-MiB", "build-ms", "ttfb-ms", "range-ttfb-ms", "warm-ttfb-ms", "warm-range-ms", "MB/s", "MB/s/plain", "ttfb/plain"
      for (i = 1; i <= k; i++)
        printf "%-24s %8.1f %9.2f %10.2f %13.2f %12.2f %14.2f %9.1f %10.3f %10.2f\n", name[i], size[i], build[i], ttfb[i], rttfb[i], wttfb[i], wrttfb[i], mbs[i], mbs[i] / mbs[plain], ttfb[i] / ttfb[plain]
    }'
[ "${VARIANTS:-1}" = 0 ] && exit 0 # VARIANTS=0: only the table above
echo
printf "%-34s %12s %14s %13s %13s %14s %12s\n" "20 clients, 20 variants" variants-MiB aggregate-MB/s peak-heap-MiB peak-rss-MiB rss-before-MiB max-ttfb-ms
# One process per case: resident memory one case leaves behind would hide the next one's peak.
for c in injected-lzx injected-transcoded-lzms injected-transcoded-lzms-solid; do
  go test -timeout 60m -run '^$' -bench "^BenchmarkWinPE20Variants\$/^$c\$" -benchtime 1x ./httpboot |
    awk '
      function metric(unit,   i) { for (i = 2; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
      /^BenchmarkWinPE20Variants\// {
        split($1, n, "/"); sub(/-[0-9]+$/, "", n[2])
        printf "%-34s %12.1f %14.1f %13.1f %13.1f %14.1f %12.1f\n", n[2], metric("variants-MiB"), metric("aggregate-MB/s"), metric("peak-heap-MiB"), metric("peak-rss-MiB"), metric("rss-before-MiB"), metric("max-ttfb-ms")
      }
      /^(FAIL|---)/ { print; bad = 1 }
      END { exit bad }'
done
