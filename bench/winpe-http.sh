#!/usr/bin/env bash
# bench/winpe-http.sh: a WinPE boot.wim pulled over loopback HTTP through pxewim's real HTTP
# handler by net/http clients: the plain LZX file, the same image with injected files
# (synthesised on the fly), and the LZMS solid capture of the same tree transcoded to an
# uncompressed WIM as it is served; net/http.FileServer (sendfile) serves the plain file as
# the peer. Prints time to first byte (whole GET and a cold 64 KiB range in the middle) and
# MB/s with ratios to the plain file, then 20 clients pulling 20 different injected variants
# at once: aggregate MB/s and the peak heap and resident set above the level before the run.
# Needs wimtools.
#
#   bench/winpe-http.sh                      default: a 128 MiB tree, 3 runs per case
#   MB=300 RUNS=1 bench/winpe-http.sh        bigger image
set -euo pipefail
cd "$(dirname "$0")/.."
export PXEWIM_BENCH_MB=${MB:-128}
runs=${RUNS:-3}
echo "image tree: ${PXEWIM_BENCH_MB} MiB (each run opens the sources afresh: cold chunk caches)"
go test -run '^$' -bench '^BenchmarkWinPEOverHTTP$' -benchtime "${runs}x" ./httpboot |
  awk '
    function metric(unit,   i) { for (i = 2; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
    /^BenchmarkWinPEOverHTTP\// {
      split($1, n, "/"); sub(/-[0-9]+$/, "", n[2])
      name[++k] = n[2]; mbs[k] = metric("MB/s"); ttfb[k] = metric("ttfb-ms")
      rttfb[k] = metric("range-ttfb-ms"); build[k] = metric("build-ms"); size[k] = metric("wim-MiB")
      if (n[2] == "plain") plain = k
    }
    /^(FAIL|---)/ { print; bad = 1 }
    END {
      if (bad || !plain) exit 1
      printf "%-24s %8s %9s %10s %13s %9s %10s %10s\n", "case", "WIM-MiB", "build-ms", "ttfb-ms", "range-ttfb-ms", "MB/s", "MB/s/plain", "ttfb/plain"
      for (i = 1; i <= k; i++)
        printf "%-24s %8.1f %9.2f %10.2f %13.2f %9.1f %10.3f %10.2f\n", name[i], size[i], build[i], ttfb[i], rttfb[i], mbs[i], mbs[i] / mbs[plain], ttfb[i] / ttfb[plain]
    }'
echo
go test -run '^$' -bench '^BenchmarkWinPE20Variants$' -benchtime 1x ./httpboot |
  awk '
    function metric(unit,   i) { for (i = 2; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
    BEGIN { printf "%-34s %12s %14s %13s %13s %12s\n", "20 clients, 20 variants", "variants-MiB", "aggregate-MB/s", "peak-heap-MiB", "peak-rss-MiB", "max-ttfb-ms" }
    /^BenchmarkWinPE20Variants\// {
      split($1, n, "/"); sub(/-[0-9]+$/, "", n[2])
      printf "%-34s %12.1f %14.1f %13.1f %13.1f %12.1f\n", n[2], metric("variants-MiB"), metric("aggregate-MB/s"), metric("peak-heap-MiB"), metric("peak-rss-MiB"), metric("max-ttfb-ms")
    }
    /^(FAIL|---)/ { print; bad = 1 }
    END { exit bad }'
