package boot

import (
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// SecureBootMode says which signed chain UEFI clients (x64 PXE and HTTP Boot) get. DHCP cannot
// see whether a client has Secure Boot on, so the site says it, for everyone or per rule.
type SecureBootMode string

const (
	// SecureBootOff (the default): UEFI clients get the iPXE binary (ipxe.efi64 /
	// ipxe.http_boot), which Secure Boot firmware refuses unless it is signed.
	SecureBootOff SecureBootMode = "off"
	// SecureBootShim: UEFI clients get shim (signed by the Microsoft UEFI CA), which loads
	// GRUB (signed by the distribution, trusted by shim), which reads a grub.cfg pxewim writes
	// per client from the same entries, rules, menu, default and timeout as the iPXE menu.
	// linux entries boot (their kernels must be signed); winpe entries boot through the native
	// path (bootmgfw.efi, Microsoft-signed); the rest is not offered (secureboot.go).
	SecureBootShim SecureBootMode = "shim"
	// SecureBootIPXE: UEFI clients get the site's own signed iPXE (secure_boot.ipxe), and
	// the iPXE menus work as without Secure Boot.
	SecureBootIPXE SecureBootMode = "ipxe"
)

// Where Debian's shim-signed and grub-efi-amd64-signed put the signed binaries.
const (
	DefaultSecureBootShim = "/usr/lib/shim/shimx64.efi.signed"
	DefaultSecureBootGRUB = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"
)

// SecureBootConfig is the secure_boot: section.
//
//	secure_boot: shim                       # or off, or ipxe
//	secure_boot:
//	  mode: shim
//	  shim: /usr/lib/shim/shimx64.efi.signed
//	  grub: /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed
//	  ipxe: /srv/pxewim-signed/ipxe.efi     # the site's signed iPXE (mode ipxe)
//
// rules[].secure_boot (off, shim or ipxe) overrides the mode for the clients a rule matches.
type SecureBootConfig struct {
	Mode SecureBootMode // "" means off
	Shim string         // host path of the signed shim
	GRUB string         // host path of the signed netboot GRUB
	IPXE string         // host path of the site's signed iPXE; "" = none
}

// ShimPath is the shim binary in effect.
func (s SecureBootConfig) ShimPath() string {
	if s.Shim != "" {
		return s.Shim
	}
	return DefaultSecureBootShim
}

// GRUBPath is the GRUB binary in effect.
func (s SecureBootConfig) GRUBPath() string {
	if s.GRUB != "" {
		return s.GRUB
	}
	return DefaultSecureBootGRUB
}

func (d *decoder) secureBootMode(n *yaml.Node, key string, dst *SecureBootMode) {
	var s string
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		// YAML 1.1 readers take a bare off as false: accept false/true spelled that way.
		if n.Value == "false" || n.Value == "off" {
			*dst = SecureBootOff
			return
		}
		d.errorf(n, key, "want off, shim or ipxe (which signed chain UEFI clients get), got %s", n.Value)
		return
	}
	if !d.str(n, key, &s) {
		return
	}
	switch m := SecureBootMode(s); m {
	case SecureBootOff, SecureBootShim, SecureBootIPXE:
		*dst = m
	default:
		d.errorf(n, key, "want off, shim or ipxe (which signed chain UEFI clients get), got %q", s)
	}
}

func (d *decoder) secureBoot(n *yaml.Node, key string, dst *SecureBootConfig) {
	if n.Kind == yaml.ScalarNode {
		d.secureBootMode(n, key, &dst.Mode)
		return
	}
	path := func(dst *string) func(v *yaml.Node, k string) {
		return func(v *yaml.Node, k string) {
			if d.str(v, k, dst) && !filepath.IsAbs(*dst) {
				d.errorf(v, k, "want an absolute path of a signed EFI binary on this host, got %q", *dst)
			}
		}
	}
	seen := d.mapping(n, key, fields{
		"mode": func(v *yaml.Node, k string) { d.secureBootMode(v, k, &dst.Mode) },
		"shim": path(&dst.Shim),
		"grub": path(&dst.GRUB),
		"ipxe": path(&dst.IPXE),
	})
	if dst.Mode == SecureBootIPXE && dst.IPXE == "" && seen["mode"] != nil {
		d.errorf(seen["mode"], key+".ipxe", "mode ipxe needs the site's signed iPXE binary (secure_boot.ipxe: /path/ipxe.efi)")
	}
}
