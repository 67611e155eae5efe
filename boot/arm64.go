package boot

// UEFI ARM64 clients (DHCP option 93 = 11 PXE, 19 HTTP Boot; config_arm64clients.go).
//
//	arm64: grub: DHCP boot file ARM64Dir/grubaa64.efi (Debian's signed netboot GRUB for arm64,
//	  grubnetaa64.efi.signed from grub-efi-arm64-signed) over TFTP -> GRUB's prefix is
//	  "(tftp,SERVER)/grub", as on x64: it reads grub/grub.cfg (or grub.cfg-01-MAC), which
//	  pxewim writes per client from the same entries, rules, menu, default and timeout as the
//	  x64 Secure Boot GRUB menu (GRUBConfig: linux entries; kernels and initrds fetched over
//	  TFTP at their store paths, files inside WIMs included).
//	UEFI HTTP Boot (arch 19): Debian's grubnetaa64 has no http module built in (as grubnetx64),
//	  so these machines need the site's own GRUB (arm64.grub_http, built from Debian's
//	  grub-efi-arm64-bin modules by ARM64HTTPGRUBCommand, unsigned). Boot file URL
//	  BASE/mac/MAC/files/arm64/grubaa64-http.efi -> EDK2's HttpBootDxe loads it and leaves the
//	  URL in the loaded image's device path (.../IPv4(...)/Uri(URL)) -> Debian's efinet turns
//	  that into a DHCP ack with vendor class HTTPClient and the URL as boot file, and its bootp
//	  code makes the prefix "(http,HOST[:PORT])/mac/MAC/files/arm64" (the image is built with
//	  an empty prefix, so the URL's folder is kept) -> GRUB reads $prefix/grub.cfg, i.e.
//	  arm64/grub.cfg of this client's tree (the MAC in the path names the client even in proxy
//	  mode), written from the same entries and rules as over TFTP, with every file an HTTP path
//	  on the same server (files inside WIMs by their immutable /blob/SHA1/ URLs). Under Secure Boot (secure_boot for the
//	  client) the firmware would refuse the unsigned GRUB: no boot file then.
//
// WinPE for ARM64: a rule that sends an ARM64 PXE client to a winpe entry whose image the
// catalog marks ARM64 gets the native path, as x64 UEFI clients do: bootmgfw.efi from that
// image (the DHCP boot file boot\bootmgfw.efi, option 252 the BCD), then BCD, boot.sdi and
// boot.wim over TFTP from the entry's own tree (firmware.EFIARM64 takes the UEFI path).
//
// Entries for another architecture are not offered (archHidden): an entry whose WIM image the
// catalog marks ARM64 is not offered to x86/x64 clients, and one it marks x86/x64 not to ARM64
// clients (WinPE for ARM64 is picked by the catalog's arch). Images of unknown arch (no
// Windows ARCH in the WIM's XML, e.g. a Linux tools WIM) are offered to everyone.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pxewim/pxewim/grubcfg"
)

// ARM64Dir is the folder of the TFTP and HTTP trees that holds the arm64 loaders:
// ARM64GRUBName (Debian's netboot GRUB, PXE) and ARM64HTTPGRUBName (the site's GRUB with http,
// HTTP Boot; its grub.cfg is ARM64Dir/grub.cfg, in the folder it was loaded from).
const (
	ARM64Dir          = "arm64"
	ARM64GRUBName     = "grubaa64.efi"
	ARM64HTTPGRUBName = "grubaa64-http.efi"
)

// ARM64InUse reports whether ARM64 clients get a loader.
func (p *Policy) ARM64InUse() bool { return p.cfg.ARM64.Loader == ARM64GRUB }

// arm64Decision is Decide's hook for UEFI ARM64 clients not running iPXE: a rule's ARM64
// WinPE natively, else GRUB (over TFTP for PXE, the site's HTTP GRUB for HTTP Boot). base is
// the HTTP prefix.
func (p *Policy) arm64Decision(c Client, base string) (Decision, bool) {
	if c.IPXE || c.Firmware != FirmwareEFIARM64 {
		return Decision{}, false
	}
	if d, ok := p.arm64Native(c); ok {
		return d, true
	}
	if !p.ARM64InUse() {
		return Decision{NoBoot: true, Reason: fmt.Sprintf("UEFI ARM64 (arch %d): no loader configured (arm64: grub)", c.Arch)}, true
	}
	if c.HTTPBoot {
		if !p.cfg.ARM64.HTTPInUse() {
			return Decision{NoBoot: true, Reason: "UEFI ARM64 HTTP Boot: Debian's arm64 netboot GRUB cannot read files over HTTP (no built-in http module); set arm64.grub_http to the site's GRUB with http (README: ARM64 clients), or use PXE"}, true
		}
		if m := p.SecureBootModeFor(c); m != SecureBootOff {
			return Decision{NoBoot: true, Reason: fmt.Sprintf("UEFI ARM64 HTTP Boot with secure_boot %s: the site's GRUB (arm64.grub_http) is not signed, Secure Boot firmware refuses it; use PXE", m)}, true
		}
		return Decision{BootFile: ARM64HTTPGRUBURL(base, c), Reason: "UEFI ARM64 HTTP Boot: the site's GRUB with http (arm64.grub_http, unsigned) over HTTP"}, true
	}
	return Decision{BootFile: ARM64Dir + "/" + ARM64GRUBName, Reason: "UEFI ARM64: Debian's arm64 netboot GRUB over TFTP"}, true
}

// ARM64HTTPGRUBURL is the HTTP Boot URL of the site's arm64 GRUB for c: under /mac/MAC/, so
// that every request of the GRUB it starts (its prefix is this URL's folder) names c.
func ARM64HTTPGRUBURL(base string, c Client) string {
	return clientBase(base, c) + "/files/" + ARM64Dir + "/" + ARM64HTTPGRUBName
}

// clientBase is base with c's /mac/ prefix (base itself when c has no MAC).
func clientBase(base string, c Client) string {
	base = strings.TrimRight(base, "/")
	if len(c.MAC) == 0 {
		return base
	}
	return base + "/mac/" + strings.ReplaceAll(strings.ToLower(c.MAC.String()), ":", "-")
}

// arm64Native is the decision for an ARM64 PXE client a rule sends to a winpe entry whose
// image the catalog marks ARM64: the image's bootmgfw.efi, as for x64 UEFI (NativeBootFile).
func (p *Policy) arm64Native(c Client) (Decision, bool) {
	if c.HTTPBoot {
		return Decision{}, false // bootmgr reads BCD, boot.sdi and the WIM through PXE (TFTP)
	}
	_, e := p.rule(c)
	if e == nil {
		return Decision{}, false
	}
	w, ok := e.Boot.(*WinPEBoot)
	if !ok || p.entryArch(e) != "ARM64" {
		return Decision{}, false
	}
	f, ok := w.NativeBootFile(c, p.winpe)
	if !ok {
		return Decision{}, false
	}
	return Decision{BootFile: f, BCDPath: w.NativeBCDPath(c), Reason: "rule to " + e.Name + ": native boot (ARM64 WinPE)"}, true
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
// and ARM64Dir/grubaa64-http.efi (the configured host files, opened at each request) and
// GRUB's configs for c: grub/grub.cfg with TFTP paths (Debian's GRUB over PXE) and
// ARM64Dir/grub.cfg with HTTP paths on the server at local (the HTTP Boot GRUB's prefix);
// nil for others.
func (p *Policy) arm64Tree(c Client, tree fs.FS, local netip.Addr, warn func(error)) fs.FS {
	if c.Firmware != FirmwareEFIARM64 || !p.ARM64InUse() {
		return nil
	}
	tftpServer := local
	if a := p.cfg.Listen.TFTPServer(); a.IsValid() {
		tftpServer = a
	}
	return &arm64FS{secureBootFS: secureBootFS{p: p, c: c, tree: tree, url: GRUBTFTPPath(tree, tftpServer), warn: warn},
		httpURL: GRUBHTTPPath(tree, p.HTTPBase(local), c)}
}

// GRUBHTTPPath is the GRUB path function for client c fetching over HTTP from base: a store
// reference r becomes an HTTP path on base, each segment escaped. A file with a content SHA-1
// (files inside WIMs) gets its immutable blob URL, "(http,HOST[:PORT])/blob/SHA1/r", which
// caches in front of pxewim share between clients (no per-client part, as iPXE scripts do);
// others "(http,HOST[:PORT])/mac/MAC/files/r". A reference missing from tree is an error.
func GRUBHTTPPath(tree fs.FS, base string, c Client) func(Ref) (string, error) {
	return func(r Ref) (string, error) {
		name := strings.TrimPrefix(r.String(), "/")
		f, err := tree.Open(name)
		if err != nil {
			return "", err
		}
		var sum [20]byte
		if h, ok := f.(interface{ Hash() [20]byte }); ok {
			sum = h.Hash()
		}
		f.Close()
		segs := strings.Split(name, "/")
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		u := clientBase(base, c) + "/files/" + strings.Join(segs, "/")
		if sum != ([20]byte{}) {
			u = strings.TrimRight(base, "/") + "/blob/" + hex.EncodeToString(sum[:]) + "/" + strings.Join(segs, "/")
		}
		return grubcfg.URLPath(u)
	}
}

type arm64FS struct {
	secureBootFS
	httpURL func(Ref) (string, error)
}

func (s *arm64FS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	lower := strings.ToLower(name)
	switch {
	case lower == ARM64Dir+"/"+strings.ToLower(ARM64GRUBName),
		lower == ARM64Dir+"/"+strings.ToLower(ARM64HTTPGRUBName) && s.p.cfg.ARM64.HTTPInUse():
		hp := s.p.cfg.ARM64.GRUBPath()
		if strings.HasSuffix(lower, ARM64HTTPGRUBName) {
			hp = s.p.cfg.ARM64.GRUBHTTP
		}
		f, err := os.Open(hp)
		if err != nil {
			return nil, fmt.Errorf("arm64: %s (%s): %w", name, hp, err)
		}
		return f, nil
	case lower == ARM64Dir+"/grub.cfg" && s.p.cfg.ARM64.HTTPInUse():
		b, err := s.p.GRUBConfig(s.c, s.httpURL, s.warn)
		if err != nil {
			return nil, fmt.Errorf("arm64: %s for %s: %w", name, clientLabel(s.c), err)
		}
		return &memFile{Reader: bytes.NewReader(b), name: path.Base(name), size: int64(len(b))}, nil
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
