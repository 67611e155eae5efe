// Package e2e holds pxewim's end-to-end tests: real firmware (SeaBIOS with its iPXE ROM, OVMF's
// own PXE and UEFI HTTP Boot clients, under QEMU TCG) network-boots a Linux kernel and busybox
// initramfs, stored inside an LZX WIM, from `pxewim serve` running in network namespaces, with
// dnsmasq as the site's address-only DHCP server (proxy mode) or without it (full mode).
//
// The tests need root, /dev/net/tun, qemu-system-x86_64, OVMF, iPXE, dnsmasq and wimlib-imagex;
// they skip with a message naming what is missing. The lab is built by internal/testenv.
package e2e
