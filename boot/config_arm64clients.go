package boot

import (
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// ARM64Loader says what UEFI ARM64 clients (DHCP option 93 = 11, PXE; 19, HTTP Boot) get.
type ARM64Loader string

const (
	// ARM64Off (the default): ARM64 clients get no boot file (as before arm64: existed).
	ARM64Off ARM64Loader = "off"
	// ARM64GRUB: ARM64 PXE clients get Debian's signed arm64 netboot GRUB (grubnetaa64, from
	// grub-efi-arm64-signed) over TFTP, which reads the same per-client grub.cfg as x64 Secure
	// Boot clients (arm64.go).
	ARM64GRUB ARM64Loader = "grub"
)

// DefaultARM64GRUB is where Debian's grub-efi-arm64-signed puts the signed netboot GRUB.
const DefaultARM64GRUB = "/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed"

// ARM64Config is the arm64: section.
//
//	arm64: grub                      # or off (the default)
//	arm64:
//	  loader: grub
//	  grub: /usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed
type ARM64Config struct {
	Loader ARM64Loader // "" means off
	GRUB   string      // host path of the arm64 netboot GRUB; "" = DefaultARM64GRUB
}

// GRUBPath is the arm64 GRUB binary in effect.
func (a ARM64Config) GRUBPath() string {
	if a.GRUB != "" {
		return a.GRUB
	}
	return DefaultARM64GRUB
}

func (d *decoder) arm64Loader(n *yaml.Node, key string, dst *ARM64Loader) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		// YAML 1.1 readers take a bare off as false.
		if n.Value == "false" || n.Value == "off" {
			*dst = ARM64Off
			return
		}
		d.errorf(n, key, "want off or grub (what UEFI ARM64 clients get), got %s", n.Value)
		return
	}
	var s string
	if !d.str(n, key, &s) {
		return
	}
	switch l := ARM64Loader(s); l {
	case ARM64Off, ARM64GRUB:
		*dst = l
	default:
		d.errorf(n, key, "want off or grub (what UEFI ARM64 clients get), got %q", s)
	}
}

func (d *decoder) arm64(n *yaml.Node, key string, dst *ARM64Config) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		d.arm64Loader(n, key, &dst.Loader)
		return
	}
	d.mapping(n, key, fields{
		"loader": func(v *yaml.Node, k string) { d.arm64Loader(v, k, &dst.Loader) },
		"grub": func(v *yaml.Node, k string) {
			if d.str(v, k, &dst.GRUB) && !filepath.IsAbs(dst.GRUB) {
				d.errorf(v, k, "want an absolute path of the arm64 netboot GRUB on this host, got %q", dst.GRUB)
			}
		},
	})
}
