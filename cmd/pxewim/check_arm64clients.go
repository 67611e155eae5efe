package main

import (
	"debug/pe"
	"fmt"

	"github.com/pxewim/pxewim/boot"
)

// checkARM64 checks what UEFI ARM64 clients get with arm64: grub (boot/arm64.go): the GRUB
// file exists and is an arm64 EFI program, and, in proxy mode, the next-server Debian's GRUB
// needs (it reads its grub.cfg from the site DHCP server's siaddr, as on x64).
func checkARM64(st *state) []problem {
	if st.policy == nil || !st.policy.ARM64InUse() {
		return nil
	}
	cfg := st.cfg
	var ps []problem
	path := cfg.ARM64.GRUBPath()
	const fix = "apt-get install grub-efi-arm64-signed:arm64 (after dpkg --add-architecture arm64 && apt-get update), or set arm64.grub to Debian's grubnetaa64.efi.signed"
	if f, err := pe.Open(path); err != nil {
		ps = append(ps, problem{what: fmt.Sprintf("arm64.grub: %s: %v: UEFI ARM64 clients get no loader", path, err), fix: fix})
	} else {
		if f.Machine != pe.IMAGE_FILE_MACHINE_ARM64 {
			ps = append(ps, problem{what: fmt.Sprintf("arm64.grub: %s is a PE for machine %#x, not arm64 (0xaa64): ARM64 firmware refuses it", path, f.Machine), fix: fix})
		}
		f.Close()
	}
	if cfg.DHCP.Mode == boot.DHCPProxy {
		ps = append(ps, problem{what: "arm64: grub in proxy mode: Debian's netboot GRUB reads its grub.cfg from the site DHCP server's next-server (siaddr), not from pxewim's proxy offer", info: true,
			fix: "set next-server to this host on the site's DHCP server (dnsmasq: dhcp-boot=,pxewim,ADDRESS), or use full mode"})
	}
	return ps
}
