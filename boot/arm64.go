package boot

// UEFI ARM64 clients (DHCP option 93 = 11 PXE, 19 HTTP Boot; config_arm64clients.go).
//
//	arm64: grub: DHCP boot file ARM64Dir/grubaa64.efi (Debian's signed netboot GRUB for arm64,
//	  grubnetaa64.efi.signed from grub-efi-arm64-signed) over TFTP -> GRUB's prefix is
//	  "(tftp,SERVER)/grub", as on x64: it reads grub/grub.cfg (or grub.cfg-01-MAC), which
//	  pxewim writes per client from the same entries, rules, menu, default and timeout as the
//	  x64 Secure Boot GRUB menu (GRUBConfig: linux entries; kernels and initrds fetched over
//	  TFTP at their store paths, files inside WIMs included).
//	UEFI HTTP Boot (arch 19): no boot file. GRUB started over HTTP takes (http,SERVER) as its
//	  prefix device, and Debian's grubnetaa64 has no http module built in (as grubnetx64): it
//	  would stop at its prompt. Such machines boot with PXE.
//
// Entries for another architecture are not offered (archHidden): an entry whose WIM image the
// catalog marks ARM64 is not offered to x86/x64 clients, and one it marks x86/x64 not to ARM64
// clients (WinPE for ARM64 is picked by the catalog's arch). Images of unknown arch (no
// Windows ARCH in the WIM's XML, e.g. a Linux tools WIM) are offered to everyone.

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ARM64Dir is the folder of the TFTP tree that holds the arm64 loader; ARM64GRUBName its name.
const (
	ARM64Dir      = "arm64"
	ARM64GRUBName = "grubaa64.efi"
)

// ARM64InUse reports whether ARM64 clients get a loader.
func (p *Policy) ARM64InUse() bool { return p.cfg.ARM64.Loader == ARM64GRUB }

// arm64Decision is Decide's hook for UEFI ARM64 clients not running iPXE: GRUB over TFTP.
func (p *Policy) arm64Decision(c Client) (Decision, bool) {
	if c.IPXE || c.Firmware != FirmwareEFIARM64 {
		return Decision{}, false
	}
	if !p.ARM64InUse() {
		return Decision{NoBoot: true, Reason: fmt.Sprintf("UEFI ARM64 (arch %d): no loader configured (arm64: grub)", c.Arch)}, true
	}
	if c.HTTPBoot {
		return Decision{NoBoot: true, Reason: "UEFI ARM64 HTTP Boot: Debian's arm64 netboot GRUB cannot read files over HTTP (no built-in http module); use PXE"}, true
	}
	return Decision{BootFile: ARM64Dir + "/" + ARM64GRUBName, Reason: "UEFI ARM64: Debian's arm64 netboot GRUB over TFTP"}, true
}

// imageArchs maps "path:index" (lower-case store path) of every WIM image the catalog knows to
// its arch name; "path:0" is the arch of the file's default WindowsPE image.
func imageArchs(facts *StoreImages) map[string]string {
	if facts == nil {
		return nil
	}
	out := map[string]string{}
	for _, f := range facts.Files {
		lp := strings.ToLower(f.Path)
		for _, im := range f.Images {
			out[lp+":"+strconv.Itoa(im.Index)] = im.ArchName
			if im.Index == f.DefaultPEIndex {
				out[lp+":0"] = im.ArchName
			}
		}
	}
	return out
}

// entryArch is the catalog's arch name of the WIM image e boots from ("" when unknown or not
// from a WIM).
func (p *Policy) entryArch(e *Entry) string {
	var wim string
	var idx int
	switch b := e.Boot.(type) {
	case *LinuxBoot:
		wim, idx = b.Kernel.WIM, b.Kernel.Index
	case *WinPEBoot:
		wim, idx = b.Image, b.Index
	default:
		return ""
	}
	if wim == "" {
		return ""
	}
	return p.cfg.ImageArch[strings.ToLower(wim)+":"+strconv.Itoa(idx)]
}

// archHidden is why e is not offered to c because its image is for another architecture, or "".
func (p *Policy) archHidden(c Client, e *Entry) string {
	a := p.entryArch(e)
	switch {
	case a == "" || a == "unknown":
		return ""
	case c.Firmware == FirmwareEFIARM64 && a != "ARM64":
		return "its image is " + a + ", and this machine is ARM64"
	case c.Firmware != FirmwareEFIARM64 && c.Firmware != FirmwareEFIARM32 && (a == "ARM64" || a == "ARM"):
		return "its image is " + a + ", and this machine is " + c.Firmware.String()
	}
	return ""
}

// arm64Tree is SecureBootTree's hook: for an ARM64 client, tree with ARM64Dir/grubaa64.efi
// (the configured host file, opened at each request) and GRUB's config for c; nil for others.
func (p *Policy) arm64Tree(c Client, tree fs.FS, tftpServer netip.Addr, warn func(error)) fs.FS {
	if c.Firmware != FirmwareEFIARM64 || !p.ARM64InUse() {
		return nil
	}
	if a := p.cfg.Listen.TFTPServer(); a.IsValid() {
		tftpServer = a
	}
	return &arm64FS{secureBootFS{p: p, c: c, tree: tree, url: GRUBTFTPPath(tree, tftpServer), warn: warn}}
}

type arm64FS struct{ secureBootFS }

func (s *arm64FS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	lower := strings.ToLower(name)
	switch {
	case lower == ARM64Dir+"/"+strings.ToLower(ARM64GRUBName):
		hp := s.p.cfg.ARM64.GRUBPath()
		f, err := os.Open(hp)
		if err != nil {
			return nil, fmt.Errorf("arm64: %s (%s): %w", name, hp, err)
		}
		return f, nil
	case lower == ARM64Dir:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	case s.isGRUBConfig(lower):
		return s.secureBootFS.Open(name) // c's grub.cfg
	case strings.HasPrefix(lower, ARM64Dir+"/"), strings.HasPrefix(lower, SecureBootDir+"/"), strings.HasPrefix(lower, GRUBConfigDir+"/grub.cfg-"):
		// Other names in these folders and other clients' configs are not served.
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return s.tree.Open(name)
}
