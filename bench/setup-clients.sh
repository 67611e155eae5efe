#!/bin/bash
# Per-client Windows Setup credentials benchmark (issue 14): pxewim serve in a network
# namespace with setup.credentials: per_client and a Windows-shaped ISO whose boot.wim image 2
# holds SETUP_FILES files (a real Windows 11 Setup image has about 15,000: its metadata is what
# each client's variant re-synthesises). Then, in the same run:
#
#   1. for SETUP_CLIENTS new clients (one MAC each, /mac/ URLs as iPXE's), the time of the
#      first GET of the Setup entry's served boot.wim (the client's SMB account is made, smbd
#      learns it, the state is rebuilt with the client's variant, the variant's WIM is built)
#      against a second GET of the same (nothing made): median of each, and their ratio;
#   2. the daemon's RSS before the first client and after the last: the memory one client's
#      variant costs while the daemon runs;
#   3. that every client's account reads the share (smbclient ls) and a made-up one does not.
#
# Needs root, iproute2, genisoimage, wimtools, samba, smbclient, libnss-wrapper, curl, /dev/fuse.
#   sudo bench/setup-clients.sh                          # 20 clients, 15000 files
#   SETUP_CLIENTS=50 SETUP_FILES=30000 bench/setup-clients.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/setup-clients.sh: needs root (namespaces, FUSE, smbd)" >&2; exit 1; }
for t in ip genisoimage wimlib-imagex smbd smbclient curl; do
	command -v "$t" >/dev/null || { echo "bench/setup-clients.sh: needs $t (apt-get install iproute2 genisoimage wimtools samba smbclient curl libnss-wrapper)" >&2; exit 1; }
done
ls /usr/lib/*/libnss_wrapper.so >/dev/null 2>&1 || { echo "bench/setup-clients.sh: needs libnss-wrapper" >&2; exit 1; }
cd "$(dirname "$0")/.."
N=${SETUP_CLIENTS:-20} FILES=${SETUP_FILES:-15000}
tmp=$(mktemp -d /tmp/pxewim-clients.XXXXXX)
chmod 755 "$tmp"
ns=pxw-bench-smbc-$$
pids=()
daemon=""
cleanup() {
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null || true
	for _ in $(seq 150); do
		{ [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; } || break
		sleep 0.2
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
now() { date +%s.%N; }

go build -o "$tmp/pxewim" ./cmd/pxewim

mkdir -p "$tmp/iso/sources" "$tmp/store" "$tmp/state" "$tmp/pe1/Windows/System32" "$tmp/pe2/Windows/System32" "$tmp/content"
printf 'wpeinit\r\n' > "$tmp/pe1/Windows/System32/startnet.cmd"
printf 'wpeinit\r\n' > "$tmp/pe2/Windows/System32/startnet.cmd"
for d in $(seq 0 $((FILES / 100))); do mkdir -p "$tmp/pe2/Windows/WinSxS/d$d"; done
for i in $(seq 1 "$FILES"); do printf 'f%d' "$i" > "$tmp/pe2/Windows/WinSxS/d$((i / 100))/file-$i.dll"; done
wimlib-imagex capture "$tmp/pe1" "$tmp/iso/sources/boot.wim" "Microsoft Windows PE (amd64)" --compress=LZX \
	--image-property WINDOWS/INSTALLATIONTYPE=WindowsPE --image-property WINDOWS/ARCH=9 >/dev/null
wimlib-imagex append "$tmp/pe2" "$tmp/iso/sources/boot.wim" "Microsoft Windows Setup (amd64)" --boot \
	--image-property WINDOWS/INSTALLATIONTYPE=WindowsPE --image-property WINDOWS/ARCH=9 >/dev/null
head -c 1048576 /dev/urandom > "$tmp/content/data.bin"
wimlib-imagex capture "$tmp/content" "$tmp/iso/sources/install.wim" "Windows 11 Pro" --compress=none >/dev/null
printf 'MZ setup stand-in' > "$tmp/iso/setup.exe"
genisoimage -quiet -udf -J -o "$tmp/store/win11.iso" "$tmp/iso"
rm -rf "$tmp/iso" "$tmp/pe1" "$tmp/pe2" "$tmp/content"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add s0 type veth peer name c0
ip -n "$ns" addr add 10.208.1.1/24 dev s0
ip -n "$ns" link set s0 up
ip -n "$ns" link set c0 up
inns() { ip netns exec "$ns" "$@"; }

cat > "$tmp/pxewim.yaml" <<EOF2
store: $tmp/store
state_dir: $tmp/state
listen: {http: "10.208.1.1:80", tftp: ""}
dhcp: {mode: off}
winpe: {auto: true}
blob_cache: off
setup: {share: on, credentials: per_client}
admin: {listen: "127.0.0.1:9090"}
EOF2
inns "$tmp/pxewim" serve --config "$tmp/pxewim.yaml" > "$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do daemon=$(pgrep -f "^$tmp/pxewim serve" | head -1 || true); [ -n "$daemon" ] && break; sleep 0.05; done
[ -n "$daemon" ] || { echo "bench/setup-clients.sh: pxewim serve did not start:" >&2; cat "$tmp/serve.log" >&2; exit 1; }
for _ in $(seq 600); do grep -q "Windows Setup share running" "$tmp/serve.log" && break; sleep 0.05; done
grep -q "Windows Setup share running" "$tmp/serve.log" || { cat "$tmp/serve.log"; exit 1; }
url=/files/winpe/pe-win11-iso-sources-boot-2/boot.wim
# Warm: the base entry opened once (its own source), so client 1 pays only for its variant.
inns curl -sSf -o /dev/null "http://10.208.1.1$url"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$daemon/status"; }
heap() { inns curl -sSf http://127.0.0.1:9090/metrics | awk '/^go_memstats_heap_inuse_bytes/ {printf "%d", $2 / 1048576}'; }
rss0=$(rss) heap0=$(heap)
first=() again=()
for i in $(seq 1 "$N"); do
	mac=$(printf '52-54-00-cc-%02x-%02x' $((i / 256)) $((i % 256)))
	t0=$(now)
	inns curl -sSf -o "$tmp/c$i.wim" "http://10.208.1.1/mac/$mac$url"
	t1=$(now)
	inns curl -sSf -o /dev/null "http://10.208.1.1/mac/$mac$url"
	t2=$(now)
	first+=("$(echo "$t1 - $t0" | bc)")
	again+=("$(echo "$t2 - $t1" | bc)")
done
rss1=$(rss) heap1=$(heap)
# Go's forced collection runs every 2 minutes: after it, the heap in use is what the variants
# keep (the first figure includes the garbage of building them).
if [ "${SETUP_SETTLE:-0}" -gt 0 ]; then sleep "$SETUP_SETTLE"; fi
heap2=$(heap)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mf=$(median "${first[@]}") ma=$(median "${again[@]}")

# Every client's own account reads the share; a made-up one does not.
ok=0
for i in $(seq 1 "$N"); do
	s=$(wimlib-imagex extract "$tmp/c$i.wim" 1 /Windows/System32/startnet.cmd --to-stdout 2>/dev/null || true)
	user=$(printf '%s' "$s" | sed -n 's/.* \/user:\([^ ]*\) \([^ ]*\) \/persistent:no >nul.*/\1/p' | head -1)
	pass=$(printf '%s' "$s" | sed -n 's/.* \/user:\([^ ]*\) \([^ ]*\) \/persistent:no >nul.*/\2/p' | head -1)
	printf 'username = %s\npassword = %s\n' "$user" "$pass" > "$tmp/auth"
	chmod 600 "$tmp/auth"
	inns smbclient //10.208.1.1/pxewim-setup -m SMB3 -A "$tmp/auth" -c ls >/dev/null 2>&1 && ok=$((ok + 1))
done
printf 'username = pxe-525400cc0fff\npassword = %s\n' "$pass" > "$tmp/auth"
if inns smbclient //10.208.1.1/pxewim-setup -m SMB3 -A "$tmp/auth" -c ls >/dev/null 2>&1; then bad=accepted; else bad=refused; fi

echo "per-client Setup variants: $N clients, boot.wim image 2 of $FILES files ($(stat -c %s "$tmp/c1.wim") bytes served)"
printf '  first GET (account + smbd + state rebuild + variant WIM): median %.3f s\n' "$mf"
printf '  second GET of the same client:                           median %.3f s  (first/second %.1fx)\n' "$ma" "$(echo "$mf / $ma" | bc -l)"
printf '  daemon RSS: %d MiB before, %d MiB after %d clients: %.2f MiB per client\n' $((rss0 / 1024)) $((rss1 / 1024)) "$N" "$(echo "($rss1 - $rss0) / 1024 / $N" | bc -l)"
printf '  Go heap in use: %d MiB before, %d MiB after, %d MiB %ss later: %.2f MiB per client kept\n' "$heap0" "$heap1" "$heap2" "${SETUP_SETTLE:-0}" "$(echo "($heap2 - $heap0) / $N" | bc -l)"
echo "  accounts reading the share: $ok of $N; a made-up account: $bad"
echo "  load: $(uptime)"
