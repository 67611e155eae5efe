#!/bin/bash
# Boot storm benchmark (issue 7): N simulated PXE clients at once against a real `pxewim serve`
# in network namespaces (DHCP, TFTP of undionly.kpxe at blksize 1468, the iPXE script, then a
# file inside an LZX WIM by 1 MiB ranges, every byte checked), then Debian's nginx serving the
# same file pre-extracted to the same clients in the same run. Prints both rates and the ratio,
# and pxewim's peak RSS (VmHWM). Two storms: full DHCP (pxewim leases the addresses) and proxy
# DHCP (the site's dnsmasq, DHCP only, leases them from its own namespace and pxewim answers
# beside it). Needs root, iproute2, wimtools, ipxe, nginx, dnsmasq-base.
#
#   sudo bench/storm.sh                       # both storms, 100 clients, 64 MiB file
#   STORM_CLIENTS=50 STORM_MB=16 bench/storm.sh
#   STORM_MODES=Proxy bench/storm.sh          # one storm (Full, Proxy or Warm)
#
# A third storm, Warm, runs full DHCP with the decoded-blob cache on (blob_cache:): a first
# round from the WIM while the cache fills, then alternating rounds of nginx (pre-extracted),
# pxewim serving the file inside the WIM from its cache (sendfile), and pxewim serving the same
# bytes as a loose file of the store (the plain-folder peer). Full and Proxy run with the cache
# off (the cold case: every byte decoded from the WIM).
# STORM_ROUNDS sets the warm storm's alternating rounds (default 5; the order flips every other
# round). Each round prints its warm/nginx ratio; the summary line prints their median and min.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/storm.sh: needs root (network namespaces)" >&2; exit 1; }
cd "$(dirname "$0")/.."
export STORM_CLIENTS=${STORM_CLIENTS:-100} STORM_MB=${STORM_MB:-64}
tmp=$(mktemp -d /tmp/pxewim-storm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go build ${GOFLAGS_BENCH:-} -o "$tmp/pxewim" ./cmd/pxewim
go test -c -o "$tmp/stress.test" ./internal/stress
echo "storm: $STORM_CLIENTS clients, $STORM_MB MiB file, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
PXEWIM="$tmp/pxewim" "$tmp/stress.test" -test.run "^TestStorm(${STORM_MODES:-Full|Proxy|Warm})\$" -test.v -test.timeout 30m 2>&1 |
	tee "$tmp/out" | grep -E 'STORM|DHCP|FAIL|PASS|ok' || true
echo "storm: done, load $(cut -d' ' -f1-3 /proc/loadavg)"
grep -q '^--- PASS' "$tmp/out" && ! grep -q -e '^--- FAIL' -e '^FAIL' "$tmp/out" || { tail -40 "$tmp/out"; exit 1; }
