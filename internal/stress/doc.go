// Package stress holds pxewim's load, fault and hostile-input tests (issue 7): a boot storm of
// many simulated PXE clients against a real `pxewim serve` child in network namespaces (DHCP,
// TFTP, iPXE script, ranged download of a file inside an LZX WIM, checked byte for byte, with
// nginx on the same file as the throughput peer; in proxy mode beside a real dnsmasq that
// leases the addresses), TFTP and HTTP under netem loss, duplication and reordering (or, on
// kernels without sch_netem, the same done by nftables and an HTB slow class), hostile
// TFTP/HTTP/DHCP requests, decompression bombs and lying WIMs, and restarts (kill -9 with the
// lease database, reloads under load).
//
// The package has no non-test code: every test needs root and network namespaces, and skips
// with a message when they are missing. bench/storm.sh runs both storms at full size (100
// clients, 64 MB) and prints the nginx ratios.
package stress
