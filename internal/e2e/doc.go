// Package e2e holds pxewim's end-to-end tests: real firmware (SeaBIOS with its iPXE ROM, OVMF's
// own PXE and UEFI HTTP Boot clients, under QEMU TCG) network-boots a Linux kernel and busybox
// initramfs, stored inside an LZX WIM, from `pxewim serve` running in network namespaces, with
// dnsmasq as the site's address-only DHCP server (proxy mode) or without it (full mode).
//
// The tests need root, /dev/net/tun, qemu-system-x86_64, OVMF, iPXE, dnsmasq and wimlib-imagex;
// they skip with a message naming what is missing (and in -short mode). The lab is built by
// internal/testenv. Run them alone with
//
//	sudo go test ./internal/e2e -v
//
// Environment:
//
//	PXEWIM_E2E_ARTIFACTS=DIR  keep each test's files (serial log, pcap, pxewim/dnsmasq logs,
//	                          config, QEMU command line) in DIR/TESTNAME
//	PXEWIM_TEST_CACHE=DIR     asset cache (default /var/cache/pxewim-test): the downloaded
//	                          kernel per Debian package version, the initramfs and tools.wim
//	PXEWIM_TEST_KERNEL=FILE   boot this vmlinuz instead of Debian's cloud kernel
//
// The VMs run one after another: under TCG on two cores, parallel VMs only slow each other.
package e2e
