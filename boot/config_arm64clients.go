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
	// Boot clients (arm64.go); ARM64 HTTP Boot clients get the site's own GRUB with http
	// (grub_http) over HTTP, when one is configured.
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
//	  grub_http: /etc/pxewim/grubaa64-http.efi   # UEFI HTTP Boot (arch 19); see ARM64HTTPGRUBCommand
type ARM64Config struct {
	Loader ARM64Loader // "" means off
	GRUB   string      // host path of the arm64 netboot GRUB; "" = DefaultARM64GRUB
	// GRUBHTTP is the host path of the site's own arm64 GRUB with the http module built in
	// (Debian's grubnetaa64 has none), built by the admin with ARM64HTTPGRUBCommand; ""
	// leaves ARM64 HTTP Boot clients without a boot file. It is not signed.
	GRUBHTTP string
}

// ARM64HTTPGRUBModules are the GRUB modules the site's HTTP Boot GRUB needs built in: the
// network (efinet, http; tftp for tftp paths), normal mode for grub.cfg, and the commands of
// the grub.cfg pxewim writes (grubcfg: linux, initrd, echo, sleep, chainloader, exit, reboot).
var ARM64HTTPGRUBModules = []string{"normal", "efinet", "http", "tftp", "linux", "echo", "sleep", "chain", "minicmd", "reboot"}

// ARM64HTTPGRUBCommand is the command that builds the site's arm64 HTTP Boot GRUB at out from
// Debian's grub-efi-arm64-bin modules (dir, normally /usr/lib/grub/arm64-efi; grub-mkimage runs
// on any host architecture). The empty prefix (-p ”) matters: GRUB then takes its prefix
// from the URL it was loaded from (Debian's efinet builds a DHCP ack out of HTTP Boot's URI
// device path: "(http,SERVER)/DIR"), so it reads grub.cfg from the same folder on the same
// server and needs no address built in.
func ARM64HTTPGRUBCommand(dir, out string) []string {
	return append([]string{"grub-mkimage", "-O", "arm64-efi", "-d", dir, "-p", "", "-o", out}, ARM64HTTPGRUBModules...)
}

// GRUBPath is the arm64 GRUB binary in effect.
func (a ARM64Config) GRUBPath() string {
	if a.GRUB != "" {
		return a.GRUB
	}
	return DefaultARM64GRUB
}

// HTTPInUse reports whether ARM64 HTTP Boot clients get the site's HTTP GRUB.
func (a ARM64Config) HTTPInUse() bool { return a.Loader == ARM64GRUB && a.GRUBHTTP != "" }

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
		"grub_http": func(v *yaml.Node, k string) {
			if d.str(v, k, &dst.GRUBHTTP) && !filepath.IsAbs(dst.GRUBHTTP) {
				d.errorf(v, k, "want an absolute path of the site's arm64 GRUB with http (grub-mkimage -O arm64-efi ... http) on this host, got %q", dst.GRUBHTTP)
			}
		},
	})
}
