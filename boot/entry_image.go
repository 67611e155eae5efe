package boot

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Diskless images: floppy and hard-disk images (.img, .ima) booted through syslinux's memdisk,
// and ISO images booted through iPXE's sanboot (the ISO is read over HTTP ranges as a SAN
// disk, so nothing is copied into the client's RAM) or through memdisk (the whole ISO in RAM,
// for old DOS-era CDs that need a real int 13h drive).

// MemdiskRef is the store path under which memdisk is served (images.syslinux mapped in).
const MemdiskRef = "syslinux/memdisk"

// DefaultSyslinuxDir is Debian's syslinux-common folder, which holds memdisk.
const DefaultSyslinuxDir = "/usr/lib/syslinux"

// ImagesConfig is the images: section: where memdisk comes from and whether image files in the
// store become menu entries by themselves.
type ImagesConfig struct {
	SyslinuxDir string // folder holding memdisk, served as "syslinux/"
	NoAuto      bool   // images.auto: false: only entries the config names
}

// MemdiskBoot boots a disk image through memdisk: iPXE loads memdisk as the kernel and the
// image as its initrd; memdisk hooks int 13h and boots the image as drive A: or C:.
type MemdiskBoot struct {
	Image Ref
	// Args are memdisk's options: "floppy", "harddisk", "raw", "iso", "c=80 h=2 s=18"...
	// Empty lets memdisk guess from the image size (a 1.44 MB image is a floppy).
	Args    string
	Memdisk Ref // memdisk itself; MemdiskRef unless the entry says otherwise
}

func (*MemdiskBoot) Kind() string  { return "memdisk" }
func (m *MemdiskBoot) Refs() []Ref { return []Ref{m.Memdisk, m.Image} }

func (m *MemdiskBoot) IPXE(env *ScriptEnv) (string, error) {
	return memdiskScript(env, m.Memdisk, m.Image, m.Args)
}

// BIOSOnly: memdisk is a real-mode program; UEFI clients cannot run it.
func (*MemdiskBoot) BIOSOnly() bool { return true }

func memdiskScript(env *ScriptEnv, memdisk, image Ref, args string) (string, error) {
	mu, err := env.URL(memdisk)
	if err != nil {
		return "", fmt.Errorf("memdisk %s: %w (install syslinux-common or set images.syslinux)", memdisk, err)
	}
	iu, err := env.URL(image)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", image, err)
	}
	var s ipxeScript
	// A client a rule sends here on UEFI gets the reason, not memdisk's failure.
	s.Cmd("iseq ${platform} pcbios || echo pxewim: memdisk boots only on BIOS machines, and this one runs ${platform}")
	s.Cmd("iseq ${platform} pcbios || goto failed")
	s.Cmd("kernel", ipxeURL(mu), ipxeArgs(args), ipxeLit("|| goto failed"))
	s.Cmd("initrd", ipxeURL(iu), ipxeLit("|| goto failed"))
	s.Cmd("boot || goto failed")
	return s.String()
}

// ISO boot methods.
const (
	ISOSanboot = "sanboot" // iPXE reads the ISO over HTTP ranges (BIOS El Torito, UEFI)
	ISOMemdisk = "memdisk" // memdisk loads the whole ISO into RAM ("iso raw")
)

// ISOBoot boots an ISO image.
type ISOBoot struct {
	Image   Ref
	Method  string // ISOSanboot or ISOMemdisk
	Memdisk Ref    // for ISOMemdisk
}

func (*ISOBoot) Kind() string { return "iso" }

func (b *ISOBoot) Refs() []Ref {
	if b.Method == ISOMemdisk {
		return []Ref{b.Memdisk, b.Image}
	}
	return []Ref{b.Image}
}

// IPXE renders sanboot. --no-describe: the ISO is read-only boot media, so the OS it starts
// must not be told (iBFT/ACPI) to keep using it as its root disk.
func (b *ISOBoot) IPXE(env *ScriptEnv) (string, error) {
	if b.Method == ISOMemdisk {
		return memdiskScript(env, b.Memdisk, b.Image, "iso raw")
	}
	u, err := env.URL(b.Image)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", b.Image, err)
	}
	var s ipxeScript
	s.Cmd("sanboot --no-describe", ipxeURL(u), ipxeLit("|| goto failed"))
	return s.String()
}

// BIOSOnly: an ISO loaded by memdisk boots on BIOS only; sanboot works on both.
func (b *ISOBoot) BIOSOnly() bool { return b.Method == ISOMemdisk }

// memdiskArg is one memdisk option: a word, or word=value (c=80, pause, floppy=1...).
var memdiskArg = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}(=[A-Za-z0-9.,:_-]{1,64})?$`)

// checkMemdiskArgs refuses what could break out of the iPXE kernel line.
func checkMemdiskArgs(s string) error {
	if len(s) > 512 {
		return fmt.Errorf("%d bytes of options, more than 512", len(s))
	}
	if strings.ContainsAny(s, "\t\r\n\v\f") {
		return fmt.Errorf("options must be one line of words separated by spaces")
	}
	for _, a := range strings.Fields(s) {
		if !memdiskArg.MatchString(a) {
			return fmt.Errorf("memdisk option %q: want a word or word=value (floppy, harddisk, raw, iso, c=80)", a)
		}
	}
	return nil
}

// imageFields decodes the keys shared by memdisk and iso entries.
func (d *decoder) imageRef(v *yaml.Node, k string, dst *Ref) {
	var s string
	if !d.str(v, k, &s) {
		return
	}
	r, err := ParseRef(s)
	if err != nil {
		d.errorf(v, k, "%v", err)
		return
	}
	*dst = r
}

func parseMemdisk(d *decoder, n *yaml.Node, key string) EntryBoot {
	m := &MemdiskBoot{Memdisk: Ref{Path: MemdiskRef}}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" { // "memdisk: dos.img"
		d.imageRef(n, key, &m.Image)
		return m
	}
	seen := d.mapping(n, key, fields{
		"image":   func(v *yaml.Node, k string) { d.imageRef(v, k, &m.Image) },
		"memdisk": func(v *yaml.Node, k string) { d.imageRef(v, k, &m.Memdisk) },
		"args": func(v *yaml.Node, k string) {
			if d.str(v, k, &m.Args) {
				if err := checkMemdiskArgs(m.Args); err != nil {
					d.errorf(v, k, "%v", err)
				}
			}
		},
	})
	if _, ok := seen["image"]; !ok {
		d.errorf(n, key+".image", "required (the .img/.ima file in the store)")
	}
	return m
}

func parseISO(d *decoder, n *yaml.Node, key string) EntryBoot {
	b := &ISOBoot{Method: ISOSanboot, Memdisk: Ref{Path: MemdiskRef}}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" { // "iso: rescue.iso"
		d.imageRef(n, key, &b.Image)
		return b
	}
	seen := d.mapping(n, key, fields{
		"image":   func(v *yaml.Node, k string) { d.imageRef(v, k, &b.Image) },
		"memdisk": func(v *yaml.Node, k string) { d.imageRef(v, k, &b.Memdisk) },
		"method": func(v *yaml.Node, k string) {
			if d.str(v, k, &b.Method) && b.Method != ISOSanboot && b.Method != ISOMemdisk {
				d.errorf(v, k, "want sanboot or memdisk, got %q", b.Method)
			}
		},
	})
	if _, ok := seen["image"]; !ok {
		d.errorf(n, key+".image", "required (the .iso file in the store)")
	}
	return b
}

func (d *decoder) images(n *yaml.Node, key string, dst *ImagesConfig) {
	d.mapping(n, key, fields{
		"syslinux": func(v *yaml.Node, k string) { d.nonEmpty(v, k, &dst.SyslinuxDir) },
		"auto": func(v *yaml.Node, k string) {
			auto := true
			d.boolean(v, k, &auto)
			dst.NoAuto = !auto
		},
	})
}

// Image file kinds the catalog lists for WithImages.
const (
	KindDiskImage = "img"
	KindISO       = "iso"
)

// Unbootable is an image of the store that gets no entry, and why: menus list it as a
// disabled line.
type Unbootable struct {
	Name   string // store path
	Reason string
}

// WithImages adds a menu entry for each .img/.ima/.iso file of the store that no entry of
// the config boots yet: disk images through memdisk, ISOs through sanboot. Names are "img-" or
// "iso-" and the file's path in lower case with other characters turned into "-". Any file
// name works (spaces, quotes, '&', '$': URLs are percent-encoded, titles made inert); files
// the catalog could not read, or whose name the store cannot address (a backslash), get no
// entry but a disabled menu line with the reason.
func (c *Config) WithImages(facts *StoreImages) *Config {
	out := *c
	out.Entries = append([]Entry(nil), c.Entries...)
	out.Unbootable = append([]Unbootable(nil), c.Unbootable...)
	if c.Images.NoAuto || facts == nil {
		return &out
	}
	booted := map[string]bool{}
	for _, e := range c.Entries {
		switch b := e.Boot.(type) {
		case *MemdiskBoot:
			booted[strings.ToLower(b.Image.String())] = true
		case *ISOBoot:
			booted[strings.ToLower(b.Image.String())] = true
		}
	}
	for _, f := range facts.Files {
		if f.Kind != KindDiskImage && f.Kind != KindISO || booted[strings.ToLower(f.Path)] {
			continue
		}
		if f.Unreadable != "" {
			out.Unbootable = append(out.Unbootable, Unbootable{Name: f.Path, Reason: f.Unreadable})
			continue
		}
		if err := refFor(f.Path); err != nil {
			out.Unbootable = append(out.Unbootable, Unbootable{Name: f.Path, Reason: err.Error()})
			continue
		}
		name := imageEntryName(f.Kind, f.Path)
		if _, dup := out.Entry(name); dup {
			continue
		}
		ref := Ref{Path: f.Path}
		var eb EntryBoot = &MemdiskBoot{Image: ref, Memdisk: Ref{Path: MemdiskRef}}
		what := "disk image, memdisk"
		if f.Kind == KindISO {
			eb = &ISOBoot{Image: ref, Method: ISOSanboot}
			what = "ISO, sanboot"
		}
		title := fmt.Sprintf("%s (%s)", singleLine(path.Base(f.Path)), what)
		out.Entries = append(out.Entries, Entry{Name: name, Title: title, Boot: eb})
	}
	if out.Menu.Default == "" && len(out.Entries) > 0 {
		out.Menu.Default = out.Entries[0].Name
	}
	return &out
}

// imageEntryName is the automatic entry name of an ISO or disk image: "iso-" or "img-" and
// the path in lower case, other characters turned into "-" (50 characters at most).
func imageEntryName(kind, p string) string {
	return kind + "-" + slug(p)
}

// autoEntryFor reports whether name is (or, for a WIM, could be) the automatic entry of the
// store file at p.
func autoEntryFor(p, name string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".iso":
		return name == imageEntryName(KindISO, p)
	case ".img", ".ima":
		return name == imageEntryName(KindDiskImage, p)
	case ".wim":
		prefix := strings.TrimSuffix(AutoEntryName(p, 1), "1") // "pe-SLUG-"
		idx, ok := strings.CutPrefix(name, prefix)
		return ok && idx != "" && strings.Trim(idx, "0123456789") == ""
	}
	return false
}

// refFor says why a catalog path cannot be a store reference (nil when it can): references
// read backslashes as slashes, so a file name holding one would name another file.
func refFor(p string) error {
	r, err := ParseRef(p)
	if err != nil {
		return err
	}
	if r.String() != p {
		return fmt.Errorf("its name cannot be served (a backslash reads as a folder separator): rename it")
	}
	return nil
}

// singleLine turns control characters (line breaks, tabs) into spaces, for titles and logs;
// scripts escape titles again (ipxescript.go).
func singleLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
