#!/usr/bin/env bash
# test.sh: install every tool the test suite uses (Debian 12, as root), then run `go test ./...`.
#
#   ./test.sh                 install what is missing, run the whole suite
#   ./test.sh -run TestWIM    extra arguments go to `go test`
#   PXEWIM_NO_INSTALL=1 ./test.sh   skip the apt-get step (tests that lack a tool skip and say so)
#   PXEWIM_NO_STATICCHECK=1 ./test.sh   skip staticcheck (it runs first and fails the run on any finding)
#
# Peers the tests run against (none written here): wimlib-imagex (wimtools), QEMU with SeaBIOS
# iPXE ROMs and OVMF, dnsmasq, atftp / tftp-hpa clients and servers, curl, nginx, hivex,
# genisoimage/xorriso, nasm, memdisk (syslinux-common), OpenSSH, headless Chromium.
set -euo pipefail
cd "$(dirname "$0")"

PKGS=(
  wimtools libwim-dev                         # reference WIM implementation (CLI + C library for codec tests)
  qemu-system-x86 ipxe-qemu ipxe ovmf         # real PXE / UEFI clients, iPXE binaries
  qemu-user-static                            # arm64 servers: wim/tftp/dhcp/iso unit tests run under qemu-aarch64-static
  qemu-system-arm qemu-efi-aarch64            # ARM64 clients: qemu-system-aarch64 + AAVMF (arm64 kernel/GRUB/busybox: apt-get download below)
  dnsmasq-base busybox-static cpio            # the site's DHCP server; initramfs for e2e boots
  iproute2 procps iputils-ping tcpdump nftables  # network namespaces, veth, tap, netem (nft: loss where netem is missing)
  atftp tftp-hpa tftpd-hpa curl nginx   # protocol peers (atftpd conflicts with tftpd-hpa: bench/ unpacks its .deb)
  libhivex-bin libwin-hivex-perl genisoimage xorriso nasm syslinux-common mtools dosfstools
  grub-efi-amd64-bin                          # grub-mkstandalone: the EFI program inside the UEFI sanboot test ISO
  gnu-efi                                     # headers, crt0 and libefi: the wimboot.efi stand-in is built from C at test time
  openssh-server openssh-client udftools 7zip ieee-data
  chromium
  shim-signed grub-efi-amd64-signed sbsigntool osslsigncode  # Secure Boot chain: real signed binaries (authenticode), sbsign/osslsigncode as signing peers
  faketime                                    # frozen clocks: WIMs captured at edge dates (no test depends on today)
  samba smbclient libnss-wrapper              # network Windows Setup: smbd runs the Setup share (smbshare), smbclient reads it; nss_wrapper: per-client accounts
  ca-certificates git gcc
)

install_packages() {
  [ "$(id -u)" = 0 ] || { echo "test.sh: not root, not installing packages (tests needing them will skip)" >&2; return; }
  local missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # ARM64 clients' e2e fetches Debian's arm64 kernel, busybox-static and signed GRUB with
  # `apt-get download PKG:arm64` (never installed): dpkg must know arm64 and apt have its lists.
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64 && apt-get update -q
  fi
  [ "${#missing[@]}" -eq 0 ] && return
  echo "test.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as nginx, tftpd-hpa and atftpd start system services on install; the tests start
  # their own instances on loopback or in namespaces, so keep the package scripts from starting any.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ "$made_policy" = 1 ] && rm -f "$policy"
  return 0
}

[ "${PXEWIM_NO_INSTALL:-}" = 1 ] || install_packages
[ -c /dev/net/tun ] || modprobe tun 2>/dev/null || true

export PATH=$PATH:/usr/local/go/bin

# staticcheck, pinned, built from the Go module proxy into the tool cache; its findings fail the run.
STATICCHECK_VERSION=v0.8.2   # staticcheck 2026.2.2
SC_BIN="$(go env GOPATH)/bin/staticcheck"
if [ "${PXEWIM_NO_STATICCHECK:-}" != 1 ]; then
  if ! "$SC_BIN" -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
    echo "test.sh: installing staticcheck $STATICCHECK_VERSION" >&2
    GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  fi
  echo "test.sh: staticcheck ./... (default and libwim tags)" >&2
  # Findings fail the run, but after the tests: one finding must not hide the suite's results.
  "$SC_BIN" ./... && "$SC_BIN" -tags libwim ./... || STATICCHECK_FAILED=1
fi
# -tags libwim: build the cgo binding to wimlib's own compressors, the peer for codec tests.
# -count=1: never reuse cached results: the e2e tests build and run the pxewim binary, which go
# test's cache cannot see.
rc=0
go test -tags libwim -count=1 -timeout 45m "$@" ./... || rc=$?
# arm64 servers (issue 17): a static arm64 build (CGO_ENABLED=0; it must run and print its
# version), then the unit tests of wim, tftp, dhcp and iso built for arm64 and run under
# qemu-user (go test -exec qemu-aarch64-static). -short skips the slow cases as on amd64; tests
# needing root, network namespaces or QEMU system emulation skip or run as they would natively.
# A failure fails the run. PXEWIM_NO_ARM64=1 skips this step.
if [ "${PXEWIM_NO_ARM64:-}" != 1 ]; then
  if command -v qemu-aarch64-static >/dev/null; then
    echo "test.sh: arm64: static cross-build, then wim/tftp/dhcp/iso tests under qemu-aarch64-static" >&2
    arm64_dir=$(mktemp -d)
    if GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -o "$arm64_dir/pxewim" ./cmd/pxewim \
       && qemu-aarch64-static "$arm64_dir/pxewim" --version; then :; else echo "test.sh: arm64 build failed" >&2; rc=1; fi
    rm -rf "$arm64_dir"
    GOARCH=arm64 CGO_ENABLED=0 go test -exec qemu-aarch64-static -short -count=1 -timeout 20m "$@" \
      ./wim ./tftp ./dhcp ./iso || { echo "test.sh: arm64 tests under qemu-user failed" >&2; rc=1; }
  else
    echo "test.sh: qemu-aarch64-static missing (qemu-user-static): arm64 step skipped" >&2
  fi
fi
if [ "${STATICCHECK_FAILED:-}" = 1 ]; then
  echo "test.sh: staticcheck reported findings (listed above the tests): failing the run" >&2
  [ "$rc" = 0 ] && rc=1
fi
exit "$rc"
