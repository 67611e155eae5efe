#!/bin/bash
# DHCPv6 load benchmark: pxewim's dhcp.Server6 (proxy and full mode) against dnsmasq as a
# stateful DHCPv6 server (dnsmasq has no DHCPv6 proxy mode), same load generator, same EDK2-PXE
# Solicits (a distinct DUID each), in the same run; beside it the DHCPv4 proxy figure of
# bench/dhcp.sh (bench/dhcpload, iPXE DISCOVERs) for the same rates.
# Everything runs in two network namespaces this script creates and removes (a veth pair,
# fd00:210::/64 and 10.210.0.0/24); nothing touches a real interface. Needs root, iproute2,
# dnsmasq-base.
#
#   sudo bench/dhcp6.sh                  # rates 1000 5000, 3 s each
#   RATES="2000" DUR=2s bench/dhcp6.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/dhcp6.sh: needs root (network namespaces)" >&2; exit 1; }
cd "$(dirname "$0")/.."
RATES=${RATES:-"1000 5000"}
DUR=${DUR:-3s}
tmp=$(mktemp -d /tmp/pxewim-dhcp6bench.XXXXXX)
S=pxw6bench-$$-s
C=pxw6bench-$$-c
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$C" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/dhcp6load" ./bench/dhcp6load
go build -o "$tmp/dhcpload" ./bench/dhcpload
ip netns add "$S"
ip netns add "$C"
ip link add s0 netns "$S" type veth peer name c0 netns "$C"
for ns in "$S" "$C"; do
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
ip netns exec "$S" sysctl -qw net.ipv6.conf.s0.accept_dad=0
ip netns exec "$C" sysctl -qw net.ipv6.conf.c0.accept_dad=0
ip -n "$S" addr add fd00:210::1/64 dev s0 nodad
ip -n "$S" addr add 10.210.0.1/24 dev s0
ip -n "$S" link set s0 up
ip -n "$C" link set c0 up
for _ in $(seq 50); do # the client's link-local address
	ip -n "$C" -6 addr show dev c0 scope link | grep -q 'inet6' && ip -n "$C" -6 addr show dev c0 scope link | grep -qv tentative && break
	sleep 0.1
done

wait_port() { # port (hex as in /proc/net/udp6)
	for _ in $(seq 50); do
		ip netns exec "$S" grep -q ":$1 " /proc/net/udp6 /proc/net/udp && return 0
		sleep 0.1
	done
	echo "server did not bind port $1" >&2
	return 1
}

run6() { # label
	for r in $RATES; do
		ip netns exec "$C" "$tmp/dhcp6load" load -i c0 -rate "$r" -d "$DUR" -label "$1" | tee -a "$tmp/results"
	done
}

for mode in proxy full; do
	echo "== pxewim DHCPv6 $mode (bench/dhcp6load serve)"
	ip netns exec "$S" "$tmp/dhcp6load" serve -i s0 -mode "$mode" -db "$tmp/leases-$mode.db" >"$tmp/pxewim-$mode.log" 2>&1 &
	pids+=($!)
	wait_port 0223
	run6 "pxewim-v6-$mode"
	kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
	unset 'pids[-1]'
done

echo "== pxewim DHCPv4 proxy (bench/dhcpload serve), same rates"
ip netns exec "$S" "$tmp/dhcpload" serve -i s0 >"$tmp/pxewim-v4.log" 2>&1 &
pids+=($!)
wait_port 0043
for r in $RATES; do
	ip netns exec "$C" "$tmp/dhcpload" load -i c0 -rate "$r" -d "$DUR" -label pxewim-v4-proxy | tee -a "$tmp/results"
done
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
unset 'pids[-1]'

if command -v dnsmasq >/dev/null; then
	echo "== dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}') stateful DHCPv6 (dhcp-range=fd00:210::1000,fd00:210::ffff)"
	ip netns exec "$S" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --user=root \
		--interface=s0 --bind-interfaces --dhcp-range=fd00:210::1000,fd00:210::ffff,64,10m --quiet-dhcp6 \
		--dhcp-option=option6:bootfile-url,"tftp://[fd00:210::1]/ipxe/snponly.efi" --pid-file="$tmp/dnsmasq.pid" \
		--dhcp-leasefile="$tmp/dnsmasq.leases" --log-facility="$tmp/dnsmasq.log" &
	pids+=($!)
	wait_port 0223
	run6 dnsmasq-v6
	echo "== ratio pxewim/dnsmasq (answers/s higher is better, p99 lower is better)"
	awk '{
		delete v
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		a = v["answers/s"] != "" ? v["answers/s"] : v["offers/s"]
		ops[$1, v["rate"]] = a; p99[$1, v["rate"]] = v["p99"]; rates[v["rate"]] = 1; labels[$1] = 1
	} END {
		for (r in rates) for (l in labels) if (l != "dnsmasq-v6")
			printf "rate=%s %-16s answers/s ratio to dnsmasq-v6=%.2f  p99 %s=%s dnsmasq-v6=%s\n", r, l, ops[l, r] / (ops["dnsmasq-v6", r] ? ops["dnsmasq-v6", r] : 1), l, p99[l, r], p99["dnsmasq-v6", r]
	}' "$tmp/results"
else
	echo "dnsmasq not installed: no peer comparison (apt-get install dnsmasq-base)"
fi
