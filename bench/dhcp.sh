#!/bin/bash
# Proxy DHCP load benchmark: pxewim's proxy (dhcp package) against dnsmasq in proxy mode, same
# load generator, same DISCOVERs (iPXE BIOS, as captured from QEMU), in the same run.
# Everything runs in two network namespaces this script creates and removes (a veth pair,
# 10.210.0.0/24); nothing touches a real interface. Needs root, iproute2, dnsmasq-base.
#
#   sudo bench/dhcp.sh                 # rates 1000 5000 20000 /s, 5 s each, then a burst of 500
#   RATES="2000" DUR=3s bench/dhcp.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/dhcp.sh: needs root (network namespaces)" >&2; exit 1; }
cd "$(dirname "$0")/.."
RATES=${RATES:-"1000 5000 20000"}
DUR=${DUR:-5s}
BURST=${BURST:-500}
tmp=$(mktemp -d /tmp/pxewim-dhcpbench.XXXXXX)
S=pxwbench-$$-s
C=pxwbench-$$-c
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$C" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build ${GOFLAGS_BENCH:-} -o "$tmp/dhcpload" ./bench/dhcpload
ip netns add "$S"
ip netns add "$C"
ip link add s0 netns "$S" type veth peer name c0 netns "$C"
ip -n "$S" addr add 10.210.0.1/24 dev s0
for ns in "$S" "$C"; do ip -n "$ns" link set lo up; done
ip -n "$S" link set s0 up
ip -n "$C" link set c0 up
sleep 0.5

run_load() { # label
	for r in $RATES; do
		ip netns exec "$C" "$tmp/dhcpload" load -i c0 -rate "$r" -d "$DUR" -label "$1" | tee -a "$tmp/results"
	done
	# A room of machines powering on at once: BURST DISCOVERs back to back.
	ip netns exec "$C" "$tmp/dhcpload" load -i c0 -burst "$BURST" -label "$1" | tee -a "$tmp/results"
}

wait_port67() {
	for _ in $(seq 50); do
		ip netns exec "$S" grep -q ':0043 ' /proc/net/udp && return 0
		sleep 0.1
	done
	echo "server did not bind port 67" >&2
	return 1
}

echo "== pxewim proxy (bench/dhcpload serve)"
ip netns exec "$S" "$tmp/dhcpload" serve -i s0 >"$tmp/pxewim.log" 2>&1 &
pids+=($!)
wait_port67
run_load pxewim
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
unset 'pids[-1]'

if command -v dnsmasq >/dev/null; then
	echo "== dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}') proxy (dhcp-range=...,proxy + pxe-service)"
	ip netns exec "$S" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --user=root \
		--interface=s0 --bind-interfaces --dhcp-range=10.210.0.0,proxy --quiet-dhcp \
		--pxe-service=x86PC,"pxewim bench",undionly.kpxe --pid-file="$tmp/dnsmasq.pid" \
		--dhcp-leasefile="$tmp/dnsmasq.leases" --log-facility="$tmp/dnsmasq.log" &
	pids+=($!)
	wait_port67
	run_load dnsmasq
	echo "== ratio pxewim/dnsmasq (offers/s higher is better, p99 lower is better)"
	awk '{
		delete v
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		key = v["rate"] != "" ? "rate=" v["rate"] : "burst=" v["burst"]; ops[$1, key] = v["offers/s"]; p99[$1, key] = v["p99"]; rates[key] = 1
	} END {
		for (r in rates) printf "%s offers/s ratio=%.2f  p99 pxewim=%s dnsmasq=%s\n", r, ops["pxewim", r] / (ops["dnsmasq", r] ? ops["dnsmasq", r] : 1), p99["pxewim", r], p99["dnsmasq", r]
	}' "$tmp/results"
else
	echo "dnsmasq not installed: no peer comparison (apt-get install dnsmasq-base)"
fi
