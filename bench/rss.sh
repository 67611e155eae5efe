#!/bin/bash
# Memory bound of the one chunk cache (issue 12): `pxewim serve` on loopback with a generated
# store of ten WinPE WIMs stored LZMS solid (each served transcoded, so every byte read decodes
# source chunks through the shared cache), twenty curl clients reading the ten entries'
# boot.wim at once (two per entry). Peak RSS is the kernel's high-water mark (VmHWM in
# /proc/PID/status) after start-up and after the load; it is printed against the `cache:` bound
# for each bound in RSS_CACHES, so the overhead above the bound is measured, not guessed.
# Needs go, wimtools (wimlib-imagex) and curl; no root (loopback only, TFTP on a high port).
#
#   bench/rss.sh                          # bounds 64MiB and 256MiB, 16 MiB of payload per WIM
#   RSS_CACHES="32MiB 128MiB 512MiB" RSS_PAYLOAD_MIB=32 bench/rss.sh
#   RSS_SOLID_CHUNK=1M bench/rss.sh       # smaller solid chunks (wimlib's default is 64 MiB)
#   RSS_ENV="GOGC=50" bench/rss.sh        # environment for pxewim serve (Go runtime settings)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in go wimlib-imagex curl; do
	command -v "$tool" >/dev/null || { echo "bench/rss.sh: $tool not found (install golang, wimtools, curl)" >&2; exit 1; }
done
caches=${RSS_CACHES:-64MiB 256MiB}
payload_mib=${RSS_PAYLOAD_MIB:-16}
clients=${RSS_CLIENTS:-20}
tmp=$(mktemp -d /tmp/pxewim-rss.XXXXXX)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/pxewim" ./cmd/pxewim

# The store: ten WinPE-shaped WIMs (the boot files at their ADK paths, WindowsPE installation
# type), each with its own payload of base64 text (LZMS keeps ~75% of it), captured --solid.
store=${RSS_STORE:-$tmp/store} # RSS_STORE=DIR keeps the generated store there for the next run
mkdir -p "$store"
echo "stand-in" >"$store/wimboot"
solid_flags=(--solid)
[ -n "${RSS_SOLID_CHUNK:-}" ] && solid_flags+=("--solid-chunk-size=$RSS_SOLID_CHUNK")
for i in $(seq 0 9); do
	[ -s "$store/pe$i.wim" ] && continue
	src="$tmp/src$i"
	for f in Windows/Boot/PXE/pxeboot.n12 Windows/Boot/PXE/bootmgr.exe Windows/Boot/EFI/bootmgfw.efi \
		Windows/Boot/EFI/boot.stl Windows/Boot/DVD/PCAT/BCD Windows/Boot/DVD/EFI/BCD \
		Windows/Boot/Fonts/segmono_boot.ttf Windows/Boot/Fonts/wgl4_boot.ttf \
		Windows/System32/startnet.cmd Windows/System32/winpeshl.ini; do
		mkdir -p "$src/$(dirname "$f")"
		head -c 4000 < <(yes "pxewim rss bench $f image $i") >"$src/$f"
	done
	for f in Windows/Boot/DVD/PCAT/boot.sdi Windows/Boot/DVD/EFI/boot.sdi; do
		head -c 200000 < <(yes "boot.sdi $i") >"$src/$f"
	done
	head -c $((payload_mib * 1048576 * 3 / 4)) /dev/urandom | base64 >"$src/Windows/System32/payload$i.txt"
	wimlib-imagex capture "$src" "$store/pe$i.wim.tmp" "PE $i" "${solid_flags[@]}" \
		--image-property WINDOWS/ARCH=9 --image-property WINDOWS/INSTALLATIONTYPE=WindowsPE >/dev/null
	mv "$store/pe$i.wim.tmp" "$store/pe$i.wim"
	rm -rf "$src"
done
decoded=$(du -cm --apparent-size "$store"/pe*.wim | tail -1 | cut -f1)
echo "rss: 10 LZMS solid WinPE WIMs (${payload_mib} MiB payload each, ${decoded} MiB stored), $clients clients, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hwm() { awk '/^VmHWM:/ {print int($2/1024)}' "/proc/$1/status"; }

for cache in $caches; do
	state="$tmp/state-$cache"
	mkdir -p "$state"
	http=$(free_port)
	tftp=$(free_port)
	cat >"$tmp/pxewim.yaml" <<-EOF
		store: $store
		state_dir: $state
		cache: $cache
		winpe: {auto: true, wimboot: wimboot}
	EOF
	env ${RSS_ENV:-} "$tmp/pxewim" serve --config "$tmp/pxewim.yaml" --http "127.0.0.1:$http" --tftp "127.0.0.1:$tftp" \
		--log-level warn 2>"$tmp/serve-$cache.log" &
	pid=$!
	base="http://127.0.0.1:$http"
	# grep reads the whole menu: grep -q would exit at the match and, under pipefail, fail
	# the pipeline when curl then cannot finish writing (it made this check flaky).
	for _ in $(seq 1 600); do # up to two minutes: start-up on a loaded machine
		curl -sf "$base/ipxe/menu.ipxe?mac=52-54-00-00-00-01&platform=efi" 2>/dev/null | grep "pe-pe9-1" >/dev/null && break
		sleep 0.2
	done
	curl -sf "$base/ipxe/menu.ipxe?mac=52-54-00-00-00-01&platform=efi" | grep "pe-pe9-1" >/dev/null ||
		{ echo "rss: the ten entries did not reach the menu" >&2; cat "$tmp/serve-$cache.log" >&2; exit 1; }
	idle=$(hwm "$pid")
	start=$(date +%s.%N)
	cpids=()
	for c in $(seq 0 $((clients - 1))); do
		curl -sf -o /dev/null -w '%{size_download}\n' "$base/files/winpe/pe-pe$((c % 10))-1/boot.wim" >"$tmp/client$c" &
		cpids+=($!)
	done
	for c in "${cpids[@]}"; do wait "$c" || { echo "rss: a client failed" >&2; cat "$tmp/serve-$cache.log" >&2; exit 1; }; done
	took=$(echo "$(date +%s.%N) - $start" | bc)
	bytes=$(cat "$tmp"/client* | paste -sd+ | bc)
	peak=$(hwm "$pid")
	bound=$(numfmt --from=iec-i "${cache%B}")
	bound_mib=$((bound / 1048576))
	printf 'RSS cache=%-7s peak %4d MiB (idle %3d MiB), bound %4d MiB, over the bound %4d MiB; %d clients read %d MiB in %.1f s\n' \
		"$cache" "$peak" "$idle" "$bound_mib" $((peak - bound_mib)) "$clients" $((bytes / 1048576)) "$took"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
	rm -f "$tmp"/client*
done
