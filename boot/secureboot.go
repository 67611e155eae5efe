package boot

// Secure Boot policy: what x64 UEFI clients get when secure_boot (site-wide or per rule) asks
// for a signed chain (config_secureboot.go).
//
//	mode shim: DHCP boot file SecureBootDir/shimx64.efi (Debian's shim-signed, Microsoft UEFI
//	  CA) -> shim loads grubx64.efi from the same folder (Debian's signed netboot GRUB) ->
//	  GRUB's prefix is "(tftp,SERVER)/grub" (built into grubnetx64.efi) and it reads
//	  grub/grub.cfg (also grub/grub.cfg-01-MAC for GRUB builds that search per client), which
//	  pxewim writes per client from the same entries, rules, menu, default and timeout as the
//	  iPXE menu -> the kernel, checked by GRUB through shim's lock protocol, and its initrds,
//	  fetched over TFTP at their store paths (tools.wim:1/boot/vmlinuz: files inside WIMs as
//	  TFTP serves them to everyone; Debian's netboot GRUB has no http module built in).
//	mode ipxe: the site's signed iPXE (SecureBootDir/ipxe.efi), then iPXE menus as usual.
//
// winpe entries a rule sends a machine to boot natively (bootmgfw.efi from the image,
// Microsoft-signed) before any of this. Entries that cannot boot inside a signed chain are not
// offered in the GRUB menu; SecureBootProblems says which and why (pxewim check).

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pxewim/pxewim/grubcfg"
)

// SecureBootDir is the folder of the TFTP and HTTP trees that holds the signed loaders.
const SecureBootDir = "secureboot"

// Names of the signed chain in SecureBootDir, and of GRUB's config folder ("/grub" is the
// prefix built into Debian's grubnetx64.efi).
const (
	SecureBootShimName = "shimx64.efi"
	SecureBootGRUBName = "grubx64.efi" // the name shim loads (Debian's DEFAULT_LOADER)
	SecureBootIPXEName = "ipxe.efi"
	GRUBConfigDir      = "grub"
)

// SecureBootModeFor is the mode in effect for c: the first matching rule's secure_boot, else
// the site's, else off.
func (p *Policy) SecureBootModeFor(c Client) SecureBootMode {
	if r, _ := p.rule(c); r != nil && r.SecureBoot != "" {
		return r.SecureBoot
	}
	if p.cfg.SecureBoot.Mode != "" {
		return p.cfg.SecureBoot.Mode
	}
	return SecureBootOff
}

// SecureBootInUse reports whether any client can get a signed chain (the site's mode or a
// rule's is not off).
func (p *Policy) SecureBootInUse() bool {
	if m := p.cfg.SecureBoot.Mode; m != "" && m != SecureBootOff {
		return true
	}
	for _, r := range p.cfg.Rules {
		if r.SecureBoot != "" && r.SecureBoot != SecureBootOff {
			return true
		}
	}
	return false
}

// secureBootDecision is Decide's hook for x64 UEFI clients not running iPXE whose mode is not
// off (winpe entries that boot natively were decided before): the signed first stage. base is
// the HTTP prefix for HTTP Boot clients.
func (p *Policy) secureBootDecision(c Client, base string) (Decision, bool) {
	if c.IPXE || c.Firmware != FirmwareEFI64 {
		return Decision{}, false
	}
	var file, why string
	switch p.SecureBootModeFor(c) {
	case SecureBootShim:
		file, why = SecureBootDir+"/"+SecureBootShimName, "Secure Boot: shim -> GRUB"
	case SecureBootIPXE:
		if p.cfg.SecureBoot.IPXE == "" {
			return Decision{NoBoot: true, Reason: "Secure Boot mode ipxe, but secure_boot.ipxe names no signed iPXE"}, true
		}
		file, why = SecureBootDir+"/"+SecureBootIPXEName, "Secure Boot: the site's signed iPXE"
	default:
		return Decision{}, false
	}
	if c.HTTPBoot {
		if file == SecureBootDir+"/"+SecureBootShimName {
			// GRUB started over HTTP has its prefix on (http,SERVER), and Debian's signed
			// grubnetx64 has no http module built in; under Secure Boot it may not load one.
			return Decision{NoBoot: true, Reason: "UEFI HTTP Boot under Secure Boot: Debian's signed netboot GRUB cannot read files over HTTP (no built-in http module); use PXE, or secure_boot: ipxe with a signed iPXE"}, true
		}
		return Decision{BootFile: base + "/files/" + file, Reason: why + " over HTTP"}, true
	}
	return Decision{BootFile: file, Reason: why}, true
}

// grubOffer is why e cannot boot inside shim -> GRUB, or "" when it can (linux entries; their
// kernel must be signed, which pxewim check verifies).
func grubOffer(e *Entry) string {
	switch e.Boot.(type) {
	case *LinuxBoot:
		return ""
	case *IPXEScript:
		return "an ipxe: entry needs iPXE, which is not in the shim -> GRUB chain (secure_boot: ipxe with a site-signed iPXE runs it)"
	case *WinPEBoot:
		return "winpe entries boot signed only natively (bootmgfw.efi from the image): send the machines there with a rule (the entry's path: native or auto)"
	}
	switch e.Boot.Kind() {
	case "memdisk":
		return "memdisk is a BIOS program, not a signed EFI loader"
	case "iso":
		return "ISO entries boot through iPXE's sanboot, which is not in the signed chain"
	}
	return e.Boot.Kind() + " entries have no signed EFI loader"
}

// SecureBootProblem is one entry Secure Boot clients are not offered, and why.
type SecureBootProblem struct {
	Entry  string
	Line   int
	Reason string
}

// SecureBootProblems lists, when some clients get shim -> GRUB, the entries their menu leaves
// out, and rules that send such clients to one of them.
func (p *Policy) SecureBootProblems() []SecureBootProblem {
	shim := p.cfg.SecureBoot.Mode == SecureBootShim
	for _, r := range p.cfg.Rules {
		shim = shim || r.SecureBoot == SecureBootShim
	}
	var out []SecureBootProblem
	if shim {
		for i := range p.cfg.Entries {
			e := &p.cfg.Entries[i]
			if why := grubOffer(e); why != "" {
				out = append(out, SecureBootProblem{Entry: e.Name, Line: e.Line, Reason: "not offered to Secure Boot (shim -> GRUB) clients: " + why})
			}
		}
	}
	for i, r := range p.cfg.Rules {
		if r.SecureBoot == SecureBootIPXE && p.cfg.SecureBoot.IPXE == "" {
			out = append(out, SecureBootProblem{Entry: r.Entry, Line: r.Line, Reason: fmt.Sprintf("rules[%d].secure_boot is ipxe, but secure_boot.ipxe names no signed iPXE binary: its UEFI clients get no boot file", i)})
		}
	}
	return out
}

// GRUBConfig writes the grub.cfg GRUB reads for c: the rule's entry at once (as boot.ipxe
// does), else the menu with its default and timeout; entries GRUB cannot boot signed are left
// out, entries whose files are missing are shown disabled with the reason. path turns a store
// reference into the GRUB file path that fetches it (GRUBTFTPPath).
func (p *Policy) GRUBConfig(c Client, path func(Ref) (string, error), warn func(error)) ([]byte, error) {
	m := grubcfg.Menu{Comment: "pxewim menu for " + clientLabel(c), Timeout: p.cfg.Menu.Timeout}
	add := func(e *Entry) bool {
		if grubOffer(e) != "" || p.archHidden(c, e) != "" { // arm64.go
			return false
		}
		ge, err := linuxGRUBEntry(e, path)
		if err != nil {
			if warn != nil {
				warn(fmt.Errorf("entry %q (GRUB): %w", e.Name, err))
			}
			ge = grubcfg.Entry{ID: e.Name, Title: e.Title + " (cannot boot)", Kind: grubcfg.KindDisabled, Reason: err.Error()}
		}
		m.Entries = append(m.Entries, ge)
		return true
	}
	if r, e := p.rule(c); e != nil && add(e) {
		m.Default, m.Timeout = e.Name, 0
	} else {
		if r != nil && warn != nil {
			warn(fmt.Errorf("rule on line %d: entry %q cannot boot in GRUB (Secure Boot or ARM64 clients: linux entries only, of the client's arch) or does not exist now: the client gets the GRUB menu", r.Line, r.Entry))
		}
		for i := range p.cfg.Entries {
			e := &p.cfg.Entries[i]
			if add(e) && e.Name == p.cfg.Menu.Default {
				m.Default = e.Name
			}
		}
	}
	m.Entries = append(m.Entries, grubcfg.Entry{ID: "_exit", Title: "Boot from the next device", Kind: grubcfg.KindExit})
	return grubcfg.Render(m)
}

// linuxGRUBEntry is a linux entry as GRUB boots it: kernel and initrds at their GRUB paths, the
// command line's words as arguments (GRUB loads the initrds itself: no initrd= words).
func linuxGRUBEntry(e *Entry, grubPath func(Ref) (string, error)) (grubcfg.Entry, error) {
	l := e.Boot.(*LinuxBoot)
	path := func(r Ref) (string, error) {
		p, err := grubPath(r)
		if err != nil {
			return "", fmt.Errorf("%s: %w", r, err)
		}
		return p, nil
	}
	ge := grubcfg.Entry{ID: e.Name, Title: e.Title, Kind: grubcfg.KindLinux, Args: strings.Fields(l.Cmdline)}
	var err error
	if ge.Kernel, err = path(l.Kernel); err != nil {
		return ge, fmt.Errorf("kernel %w", err)
	}
	for _, r := range l.Initrds {
		p, err := path(r)
		if err != nil {
			return ge, fmt.Errorf("initrd %w", err)
		}
		ge.Initrds = append(ge.Initrds, p)
	}
	return ge, grubcfg.CheckEntry(ge)
}

// GRUBTFTPPath is the GRUB path function for a client whose TFTP server is server: a store
// reference r becomes "(tftp,SERVER)/r" (tools.wim:1/boot/vmlinuz stays a store path: TFTP
// serves files inside WIMs by it). A reference missing from tree is an error (the entry is
// shown disabled, as in the iPXE menu).
func GRUBTFTPPath(tree fs.FS, server netip.Addr) func(Ref) (string, error) {
	return func(r Ref) (string, error) {
		if !server.Is4() {
			return "", fmt.Errorf("no IPv4 TFTP server address for GRUB (listen.tftp_advertise)")
		}
		name := strings.TrimPrefix(r.String(), "/")
		if _, err := fs.Stat(tree, name); err != nil {
			return "", err
		}
		return "(tftp," + server.String() + ")/" + name, nil
	}
}

// SecureBootTree is tree with the signed chain added for c: SecureBootDir/shimx64.efi,
// grubx64.efi and ipxe.efi (the configured host files, opened at each request so that a
// package upgrade is picked up), and GRUB's config, grub/grub.cfg and grub/grub.cfg-01-MAC,
// written for c when opened, its files fetched over TFTP from tftpServer (listen.tftp_advertise,
// else the address c reached us at). Everything else is tree's. A policy with Secure Boot off
// for everyone returns tree.
func (p *Policy) SecureBootTree(c Client, tree fs.FS, tftpServer netip.Addr, warn func(error)) fs.FS {
	if t := p.arm64Tree(c, tree, tftpServer, warn); t != nil { // arm64.go
		return t
	}
	if !p.SecureBootInUse() {
		return tree
	}
	if a := p.cfg.Listen.TFTPServer(); a.IsValid() {
		tftpServer = a
	}
	return &secureBootFS{p: p, c: c, tree: tree, url: GRUBTFTPPath(tree, tftpServer), warn: warn}
}

type secureBootFS struct {
	p    *Policy
	c    Client
	tree fs.FS
	url  func(Ref) (string, error)
	warn func(error)
}

// grubConfigNames are the names GRUB tries for its config under the prefix: Debian's
// grubnetx64 sources $prefix/grub.cfg; GRUB's per-client search (normal mode without an
// embedded config) tries grub.cfg-01-MAC first.
func (s *secureBootFS) isGRUBConfig(name string) bool {
	if name == GRUBConfigDir+"/grub.cfg" {
		return true
	}
	if len(s.c.MAC) == 0 {
		return false
	}
	return name == GRUBConfigDir+"/grub.cfg-01-"+strings.ReplaceAll(strings.ToLower(s.c.MAC.String()), ":", "-")
}

func (s *secureBootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	lower := strings.ToLower(name)
	sb := s.p.cfg.SecureBoot
	host := map[string]string{
		SecureBootDir + "/" + SecureBootShimName: sb.ShimPath(),
		SecureBootDir + "/" + SecureBootGRUBName: sb.GRUBPath(),
	}
	if sb.IPXE != "" {
		host[SecureBootDir+"/"+SecureBootIPXEName] = sb.IPXE
	}
	if hp, ok := host[lower]; ok {
		f, err := os.Open(hp)
		if err != nil {
			return nil, fmt.Errorf("secure boot: %s (%s): %w", name, hp, err)
		}
		return f, nil
	}
	if lower == SecureBootDir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	if s.isGRUBConfig(lower) {
		b, err := s.p.GRUBConfig(s.c, s.url, s.warn)
		if err != nil {
			return nil, fmt.Errorf("secure boot: %s for %s: %w", name, clientLabel(s.c), err)
		}
		return &memFile{Reader: bytes.NewReader(b), name: path.Base(name), size: int64(len(b))}, nil
	}
	if strings.HasPrefix(lower, SecureBootDir+"/") || strings.HasPrefix(lower, GRUBConfigDir+"/grub.cfg-") {
		// Other clients' configs and other names in these folders are not served: GRUB
		// moves on to the next name it tries.
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return s.tree.Open(name)
}

// memFile is a generated file: io.ReaderAt and io.Seeker as the servers need.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

var _ io.ReaderAt = (*memFile)(nil)

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f.name, f.size}, nil }
func (f *memFile) Close() error               { return nil }

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
