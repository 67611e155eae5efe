#!/bin/bash
# Windows Setup share benchmark (issue 14): pxewim serve in a network namespace with a
# Windows-shaped ISO (genisoimage -udf: sources/boot.wim of two WindowsPE images, a random
# sources/install.wim of SETUP_MB MiB made by wimlib-imagex), then, in the same run:
#
#   1. time from the client's first request (GET of the Setup entry's served boot.wim) to the
#      first byte of install.wim read through the share with the credentials taken out of that
#      boot.wim (wimlib-imagex extract of startnet.cmd), and from the daemon's start to smbd
#      accepting connections;
#   2. bytes written to disk for the share: the daemon's and smbd's write_bytes (/proc/PID/io)
#      while install.wim is read through the share, and the size of the share's state folder
#      (smb.conf, passdb, tdbs, log);
#   3. read throughput of install.wim with smbclient (SMB3, signing) through pxewim's smbd on
#      the FUSE view of the ISO vs smbclient get of the same file (extracted once with xorriso)
#      from a plain folder shared by a second smbd with the same smb.conf settings. Rounds
#      alternate; the page cache is warm for both (the ISO and the plain copy were just
#      written); best of SETUP_ROUNDS each.
#
# Needs root, iproute2, genisoimage, xorriso, wimtools, samba, smbclient, curl, /dev/fuse.
#   sudo bench/setup-share.sh                    # 512 MiB install.wim, 3 rounds
#   SETUP_MB=1024 SETUP_ROUNDS=5 bench/setup-share.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/setup-share.sh: needs root (namespaces, FUSE, smbd)" >&2; exit 1; }
for t in ip genisoimage xorriso wimlib-imagex smbd smbclient curl; do
	command -v "$t" >/dev/null || { echo "bench/setup-share.sh: needs $t (apt-get install iproute2 genisoimage xorriso wimtools samba smbclient curl)" >&2; exit 1; }
done
cd "$(dirname "$0")/.."
MB=${SETUP_MB:-512} ROUNDS=${SETUP_ROUNDS:-3}
tmp=$(mktemp -d /tmp/pxewim-setup.XXXXXX)
chmod 755 "$tmp"
ns=pxw-bench-smb-$$
pids=()
daemon=""
cleanup() {
	# `ip netns exec` forks: stop the daemon itself (it stops its smbd) and the plain smbd by PID.
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null || true
	[ -f "$tmp/plain/run/smbd.pid" ] && kill "$(cat "$tmp/plain/run/smbd.pid")" 2>/dev/null || true
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

# The media.
mkdir -p "$tmp/iso/sources" "$tmp/store" "$tmp/state" "$tmp/pe1/Windows/System32" "$tmp/pe2/Windows/System32" "$tmp/content"
for i in 1 2; do
	printf 'wpeinit\r\n' > "$tmp/pe$i/Windows/System32/startnet.cmd"
	head -c 300000 /dev/urandom > "$tmp/pe$i/Windows/System32/boot.sdi.stand-in"
done
wimlib-imagex capture "$tmp/pe1" "$tmp/iso/sources/boot.wim" "Microsoft Windows PE (amd64)" --compress=LZX \
	--image-property WINDOWS/INSTALLATIONTYPE=WindowsPE --image-property WINDOWS/ARCH=9 >/dev/null
wimlib-imagex append "$tmp/pe2" "$tmp/iso/sources/boot.wim" "Microsoft Windows Setup (amd64)" --boot \
	--image-property WINDOWS/INSTALLATIONTYPE=WindowsPE --image-property WINDOWS/ARCH=9 >/dev/null
for i in 1 2 3 4; do head -c $((MB * 1024 * 1024 / 4)) /dev/urandom > "$tmp/content/data$i.bin"; done
wimlib-imagex capture "$tmp/content" "$tmp/iso/sources/install.wim" "Windows 11 Pro" --compress=none >/dev/null
printf 'MZ setup stand-in' > "$tmp/iso/setup.exe"
rm -rf "$tmp/content"
genisoimage -quiet -udf -J -o "$tmp/store/win11.iso" "$tmp/iso"
rm -rf "$tmp/iso" "$tmp/pe1" "$tmp/pe2"
mkdir -p "$tmp/plainshare/sources"
xorriso -osirrox on -indev "$tmp/store/win11.iso" -extract /sources/install.wim "$tmp/plainshare/sources/install.wim" >/dev/null 2>&1
chmod -R a+rX "$tmp/plainshare"
want=$(sha1sum < "$tmp/plainshare/sources/install.wim" | cut -d' ' -f1)
size=$(stat -c %s "$tmp/plainshare/sources/install.wim")

# The lab: one namespace, the server's address on a veth end.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add s0 type veth peer name c0
ip -n "$ns" addr add 10.208.0.1/24 dev s0
ip -n "$ns" link set s0 up
ip -n "$ns" link set c0 up
inns() { ip netns exec "$ns" "$@"; }

cat > "$tmp/pxewim.yaml" <<EOF
store: $tmp/store
state_dir: $tmp/state
listen: {http: "10.208.0.1:80", tftp: ""}
dhcp: {mode: off}
winpe: {auto: true}
blob_cache: off
setup: {share: on}
admin: {listen: off}
EOF
t_start=$(now)
inns "$tmp/pxewim" serve --config "$tmp/pxewim.yaml" > "$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do daemon=$(pgrep -f "^$tmp/pxewim serve" | head -1); [ -n "$daemon" ] && break; sleep 0.05; done
for _ in $(seq 600); do grep -q "Windows Setup share running" "$tmp/serve.log" && break; sleep 0.05; done
grep -q "Windows Setup share running" "$tmp/serve.log" || { cat "$tmp/serve.log"; exit 1; }
t_ready=$(now)
smbd_main=$(cat "$tmp/state/smb/run/smbd.pid")

# 1. First request to first read.
t0=$(now)
inns curl -sSf -o "$tmp/served.wim" "http://10.208.0.1/files/winpe/pe-win11-iso-sources-boot-2/boot.wim"
script=""
for i in 1 2; do # the served WIM may be the Setup image alone (injected images are exported)
	s=$(wimlib-imagex extract "$tmp/served.wim" $i /Windows/System32/startnet.cmd --to-stdout 2>/dev/null || true)
	case "$s" in *"net use"*) script=$s; break ;; esac
done
[ -n "$script" ] || { echo "bench/setup-share.sh: no startnet.cmd with net use in the served boot.wim" >&2; exit 1; }
user=$(printf '%s' "$script" | sed -n 's/.* \/user:\([^ ]*\) \([^ ]*\) \/persistent:no >nul.*/\1/p' | head -1)
pass=$(printf '%s' "$script" | sed -n 's/.* \/user:\([^ ]*\) \([^ ]*\) \/persistent:no >nul.*/\2/p' | head -1)
folder=$(printf '%s' "$script" | sed -n 's/^"S:\\\([^"]*\)\\setup\.exe".*/\1/p' | tr -d '\r')
printf 'username = %s\npassword = %s\n' "$user" "$pass" > "$tmp/auth"
chmod 600 "$tmp/auth"
inns smbclient //10.208.0.1/pxewim-setup -m SMB3 -A "$tmp/auth" -c "get $folder\\sources\\install.wim -" 2>/dev/null | head -c 1 > /dev/null || true
t1=$(now)

# 2 and 3. Reads through pxewim's share, bytes written meanwhile.
io_w() { # write_bytes of the daemon and every smbd of our config
	local sum=0 p
	for p in $daemon $(pgrep -f -- "--configfile=$tmp/state/smb/smb.conf"); do
		sum=$((sum + $(awk '/^write_bytes/ {print $2}' /proc/$p/io 2>/dev/null || echo 0)))
	done
	echo $sum
}
# The plain-folder peer: smbd with pxewim's own smb.conf, another port, its own state folders.
mkdir -p "$tmp/plain/private" "$tmp/plain/lock" "$tmp/plain/state/ncalrpc" "$tmp/plain/cache" "$tmp/plain/run" "$tmp/plain/log"
chmod 700 "$tmp/plain/private"
sed -e "s|$tmp/state/smb|$tmp/plain|g" -e "s|smb ports = 445|smb ports = 4450|" -e "s|path = $tmp/state/setup-view|path = $tmp/plainshare|" \
	"$tmp/state/smb/smb.conf" > "$tmp/plain/smb.conf"
cp "$tmp/state/smb/users.map" "$tmp/plain/users.map"
unixuser=$(sed -n 's/^\([^ ]*\) = .*/\1/p' "$tmp/plain/users.map" | head -1)
unixuser=${unixuser:-$user}
printf '%s\n%s\n' "$pass" "$pass" | smbpasswd -c "$tmp/plain/smb.conf" -s -a "$unixuser" >/dev/null
# setsid: smbd signals its whole process group when it stops (pxewim's smbshare gives it a group of its own too).
inns setsid smbd --foreground --no-process-group --configfile="$tmp/plain/smb.conf" > "$tmp/plain/out" 2>&1 &
pids+=($!)
for _ in $(seq 200); do inns bash -c 'echo > /dev/tcp/10.208.0.1/4450' 2>/dev/null && break; sleep 0.05; done

read_once() { # share port folder-prefix -> seconds
	local share=$1 port=$2 prefix=$3 a b
	rm -f "$tmp/got.wim"
	a=$(now)
	inns smbclient "//10.208.0.1/$share" -p "$port" -m SMB3 -A "$tmp/auth" -c "get ${prefix}sources\\install.wim $tmp/got.wim" >/dev/null 2>&1
	b=$(now)
	[ "$(sha1sum < "$tmp/got.wim" | cut -d' ' -f1)" = "$want" ] || { echo "bench/setup-share.sh: $share: bytes differ" >&2; exit 1; }
	rm -f "$tmp/got.wim"
	echo "$a $b" | awk '{printf "%.3f", $2 - $1}'
}
w0=$(io_w)
best_view=999999 best_plain=999999
for r in $(seq "$ROUNDS"); do
	v=$(read_once pxewim-setup 445 "$folder\\")
	p=$(read_once pxewim-setup 4450 "")
	echo "setup-share: round $r: FUSE view ${v}s, plain folder ${p}s"
	best_view=$(echo "$v $best_view" | awk '{print ($1 < $2) ? $1 : $2}')
	best_plain=$(echo "$p $best_plain" | awk '{print ($1 < $2) ? $1 : $2}')
done
w1=$(io_w)
state_kb=$(du -sk "$tmp/state/smb" | cut -f1)

awk -v mb="$MB" -v size="$size" -v start="$t_start" -v ready="$t_ready" -v t0="$t0" -v t1="$t1" \
	-v bv="$best_view" -v bp="$best_plain" -v w="$((w1 - w0))" -v rounds="$ROUNDS" -v skb="$state_kb" 'BEGIN {
	printf "setup-share: install.wim %.0f MiB in a UDF ISO, %d rounds, %d cores\n", size / 1048576, rounds, '"$(nproc)"'
	printf "setup-share: daemon start to share ready (smbd accepting): %.2f s\n", ready - start
	printf "setup-share: first request (GET served boot.wim) to first byte of install.wim over SMB: %.2f s\n", t1 - t0
	printf "setup-share: bytes written by the daemon and smbd while reading install.wim %d times: %d (state folder %d KiB)\n", rounds, w, skb
	printf "setup-share: throughput FUSE view %.0f MB/s, plain folder %.0f MB/s, ratio %.2f (best of %d)\n", size / bv / 1e6, size / bp / 1e6, bp / bv, rounds
}'
echo "setup-share: load $(cut -d' ' -f1-3 /proc/loadavg)"
