package main

import (
	"bytes"
	"debug/pe"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pxewim/pxewim/authenticode"
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
	ps = append(ps, checkARM64HTTP(st)...)
	if cfg.DHCP.Mode == boot.DHCPProxy {
		ps = append(ps, problem{what: "arm64: grub in proxy mode: Debian's netboot GRUB (ARM64 PXE) reads its grub.cfg from the site DHCP server's next-server (siaddr), not from pxewim's proxy offer (the HTTP Boot GRUB, arm64.grub_http, takes its server from its boot URL instead)", info: true,
			fix: "set next-server to this host on the site's DHCP server (dnsmasq: dhcp-boot=,pxewim,ADDRESS), or use full mode"})
	}
	return ps
}

// maxGRUBImage bounds what check reads of the site's HTTP GRUB (a GRUB image is a few MB).
const maxGRUBImage = 64 << 20

// checkARM64HTTP checks arm64.grub_http, the site's GRUB for UEFI ARM64 HTTP Boot: an arm64 EFI
// program with the http module built in; and, when secure_boot is on for any client, says that
// it is unsigned and that such ARM64 HTTP Boot clients get no boot file.
func checkARM64HTTP(st *state) []problem {
	a := st.cfg.ARM64
	if !a.HTTPInUse() {
		return nil
	}
	fix := "build it from Debian's grub-efi-arm64-bin modules: " + strings.ReplaceAll(strings.Join(boot.ARM64HTTPGRUBCommand("/usr/lib/grub/arm64-efi", a.GRUBHTTP), " "), " -p  ", " -p '' ")
	f, err := os.Open(a.GRUBHTTP)
	if err != nil {
		return []problem{{what: fmt.Sprintf("arm64.grub_http: %v: UEFI ARM64 HTTP Boot clients get no loader", err), fix: fix}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxGRUBImage+1))
	if err != nil || len(data) > maxGRUBImage {
		return []problem{{what: fmt.Sprintf("arm64.grub_http: %s: unreadable or larger than %d MB (%v)", a.GRUBHTTP, maxGRUBImage>>20, err), fix: fix}}
	}
	pf, err := pe.NewFile(bytes.NewReader(data))
	if err != nil {
		return []problem{{what: fmt.Sprintf("arm64.grub_http: %s is not an EFI program: %v", a.GRUBHTTP, err), fix: fix}}
	}
	var ps []problem
	if pf.Machine != pe.IMAGE_FILE_MACHINE_ARM64 {
		ps = append(ps, problem{what: fmt.Sprintf("arm64.grub_http: %s is a PE for machine %#x, not arm64 (0xaa64): ARM64 firmware refuses it", a.GRUBHTTP, pf.Machine), fix: fix})
	}
	// "net/http.c" is the http module's own debug tag: a GRUB image without it (Debian's
	// grubnetaa64) cannot read its grub.cfg over HTTP and stops at its prompt.
	if !bytes.Contains(data, []byte("net/http.c")) {
		ps = append(ps, problem{what: fmt.Sprintf("arm64.grub_http: %s has no http module built in: started by HTTP Boot, it cannot read its grub.cfg", a.GRUBHTTP), fix: fix})
	}
	if st.policy.SecureBootInUse() {
		signed := "is not signed"
		if rep, err := authenticode.Parse(bytes.NewReader(data), int64(len(data))); err == nil && rep.Signed {
			signed = "is the site's own build (pxewim hands it to no Secure Boot client, signed or not)"
		}
		ps = append(ps, problem{what: fmt.Sprintf("arm64.grub_http: %s %s: UEFI ARM64 HTTP Boot clients whose secure_boot is not off (site-wide or by rule) get no boot file, since Secure Boot firmware would refuse it", a.GRUBHTTP, signed),
			fix: "boot those ARM64 machines with PXE (Debian's signed grubnetaa64, arm64.grub), or set secure_boot: off for them by rule"})
	}
	return ps
}
