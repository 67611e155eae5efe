package boot

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// WinPEDefaults is the top-level winpe: section: defaults for winpe entries, and entries made
// from the store's catalog.
type WinPEDefaults struct {
	// Auto adds a menu entry for every WindowsPE image in the store that no entry names.
	Auto    bool
	Wimboot string // store path of wimboot, for entries that name none
	// UEFIBootmgr is uefi_bootmgr for entries that set none ("" = classic).
	UEFIBootmgr string
	// Transcode is transcode for entries that set none ("" = uncompressed).
	Transcode  string
	BlockSize  uint32
	WindowSize uint32
}

// wimbootArgs are the command-line options wimboot accepts besides index=N.
var wimbootArgs = map[string]bool{"gui": true, "pause": true, "pause=quiet": true, "quiet": true, "linear": true, "rawbcd": true, "rawwim": true}

func wimbootArgNames() []string {
	return []string{"gui", "linear", "pause", "pause=quiet", "quiet", "rawbcd", "rawwim"}
}

// parseWinPE decodes an entry's winpe: mapping.
func parseWinPE(d *decoder, n *yaml.Node, key string) EntryBoot {
	w := &WinPEBoot{Path: WinPEAuto, BCD: BCDAuto}
	storePath := func(v *yaml.Node, k string, dst *string) {
		var s string
		if !d.str(v, k, &s) {
			return
		}
		r, err := ParseRef(s)
		if err != nil || r.WIM != "" {
			d.errorf(v, k, "%q: want a file in the store (not inside a WIM)", s)
			return
		}
		*dst = r.Path
	}
	seen := d.mapping(n, key, fields{
		"image":   func(v *yaml.Node, k string) { storePath(v, k, &w.Image) },
		"index":   func(v *yaml.Node, k string) { w.Index = d.intRange(v, k, 1, 65535) },
		"wimboot": func(v *yaml.Node, k string) { storePath(v, k, &w.Wimboot) },
		"path":    func(v *yaml.Node, k string) { d.oneOf(v, k, &w.Path, WinPEAuto, WinPEWimboot, WinPENative) },
		"bcd":     func(v *yaml.Node, k string) { d.oneOf(v, k, &w.BCD, BCDAuto, BCDImage, BCDGenerate) },
		"tftp":    func(v *yaml.Node, k string) { d.tftpTuning(v, k, &w.BlockSize, &w.WindowSize) },
		"uefi_bootmgr": func(v *yaml.Node, k string) {
			d.oneOf(v, k, &w.UEFIBootmgr, UEFIBootmgrClassic, UEFIBootmgrEX, UEFIBootmgrAuto)
		},
		"transcode": func(v *yaml.Node, k string) { d.oneOf(v, k, &w.Transcode, TranscodeUncompressed, TranscodeXPRESS) },
		"inject":    func(v *yaml.Node, k string) { w.Inject = d.injections(v, k) },
		"wimboot_args": func(v *yaml.Node, k string) {
			d.strList(v, k, &w.WimbootArgs)
			for i, a := range w.WimbootArgs {
				if !wimbootArgs[a] {
					// wimboot stops on any argument it does not know (danderson/netboot#92).
					d.errorf(v, fmt.Sprintf("%s[%d]", k, i), "%q: wimboot knows only %s (index= comes from winpe.index)", a, strings.Join(wimbootArgNames(), ", "))
				}
			}
		},
	})
	if _, ok := seen["image"]; !ok {
		d.errorf(n, key+".image", "required (the WIM in the store, e.g. boot.wim)")
	}
	if w.Path == WinPEWimboot && w.BCD == BCDImage && (w.BlockSize != 0 || w.WindowSize != 0) {
		d.errorf(seen["tftp"], key+".tftp", "has no effect with bcd: image (only a generated BCD carries TFTP settings)")
	}
	return w
}

func (d *decoder) intRange(n *yaml.Node, key string, lo, hi int) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < lo || v > hi {
		d.errorf(n, key, "want a whole number from %d to %d, got %s", lo, hi, nodeKind(n))
		return 0
	}
	return v
}

func (d *decoder) oneOf(n *yaml.Node, key string, dst *string, choices ...string) {
	var s string
	if !d.str(n, key, &s) {
		return
	}
	for _, c := range choices {
		if s == c {
			*dst = s
			return
		}
	}
	d.errorf(n, key, "%q: want one of %s", s, strings.Join(choices, ", "))
}

// tftpTuning decodes {blocksize, windowsize}: what bootmgr asks for when it downloads the WIM.
func (d *decoder) tftpTuning(n *yaml.Node, key string, bs, ws *uint32) {
	d.mapping(n, key, fields{
		"blocksize":  func(v *yaml.Node, k string) { *bs = uint32(d.intRange(v, k, 512, 65464)) },
		"windowsize": func(v *yaml.Node, k string) { *ws = uint32(d.intRange(v, k, 1, 64)) },
	})
}

// injections decodes a list of {path, file} or {path, content}.
func (d *decoder) injections(n *yaml.Node, key string) []Injection {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list of {path: ..., file: ...} or {path: ..., content: ...}, got %s", nodeKind(n))
		return nil
	}
	var out []Injection
	paths := map[string]bool{}
	for i, item := range n.Content {
		item = resolveAlias(item)
		k := fmt.Sprintf("%s[%d]", key, i)
		var in Injection
		seen := d.mapping(item, k, fields{
			"path": func(v *yaml.Node, k string) {
				var s string
				if !d.str(v, k, &s) {
					return
				}
				p, err := cleanRefPath(s)
				if err != nil || strings.ContainsAny(p, ":\x00") {
					d.errorf(v, k, "%q: want a path inside the image like Windows/System32/startnet.cmd", s)
					return
				}
				in.Path = p
			},
			"file": func(v *yaml.Node, k string) {
				var s string
				if !d.str(v, k, &s) {
					return
				}
				r, err := ParseRef(s)
				if err != nil {
					d.errorf(v, k, "%v", err)
					return
				}
				in.File = r
			},
			"content": func(v *yaml.Node, k string) { in.Inline = d.str(v, k, &in.Content) },
		})
		_, hasFile := seen["file"]
		_, hasContent := seen["content"]
		switch {
		case seen["path"] == nil:
			d.errorf(item, k+".path", "required")
		case hasFile == hasContent:
			d.errorf(item, k, "needs exactly one of file (a store file or folder) and content (inline text)")
		case paths[strings.ToLower(in.Path)]:
			d.errorf(item, k+".path", "%q is injected twice", in.Path)
		}
		paths[strings.ToLower(in.Path)] = true
		out = append(out, in)
	}
	return out
}

// winpeDefaults decodes the top-level winpe: section.
func (d *decoder) winpeDefaults(n *yaml.Node, key string, dst *WinPEDefaults) {
	d.mapping(n, key, fields{
		"auto": func(v *yaml.Node, k string) { d.boolean(v, k, &dst.Auto) },
		"wimboot": func(v *yaml.Node, k string) {
			var s string
			if d.str(v, k, &s) {
				if r, err := ParseRef(s); err != nil || r.WIM != "" {
					d.errorf(v, k, "%q: want a file in the store", s)
				} else {
					dst.Wimboot = r.Path
				}
			}
		},
		"tftp": func(v *yaml.Node, k string) { d.tftpTuning(v, k, &dst.BlockSize, &dst.WindowSize) },
		"uefi_bootmgr": func(v *yaml.Node, k string) {
			d.oneOf(v, k, &dst.UEFIBootmgr, UEFIBootmgrClassic, UEFIBootmgrEX, UEFIBootmgrAuto)
		},
		"transcode": func(v *yaml.Node, k string) { d.oneOf(v, k, &dst.Transcode, TranscodeUncompressed, TranscodeXPRESS) },
	})
}

// applyWinPEDefaults fills what winpe entries left out from the winpe: section.
func (c *Config) applyWinPEDefaults() {
	for i := range c.Entries {
		w, ok := c.Entries[i].Boot.(*WinPEBoot)
		if !ok {
			continue
		}
		if w.Wimboot == "" {
			w.Wimboot = c.WinPE.Wimboot
		}
		if w.UEFIBootmgr == "" {
			w.UEFIBootmgr = c.WinPE.UEFIBootmgr
		}
		if w.Transcode == "" {
			w.Transcode = c.WinPE.Transcode
		}
		if w.BlockSize == 0 && w.WindowSize == 0 {
			w.BlockSize, w.WindowSize = c.WinPE.BlockSize, c.WinPE.WindowSize
		}
	}
}

var slugChars = regexp.MustCompile(`[^a-z0-9]+`)

// slug is s in lower case with every run of other characters than a-z and 0-9 turned into "-",
// trimmed of "-", at most 50 characters: the one rule behind automatic entry names.
func slug(s string) string {
	out := strings.Trim(slugChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(out) > 50 {
		out = out[:50]
	}
	return out
}

// AutoEntryName is the name of the automatic entry (winpe.auto) for image index of the WIM at
// path in the store: "pe-", the path in lower case without ".wim" and with every run of other
// characters turned into "-" (50 characters at most), "-" and the index. boot.wim image 2 is
// "pe-boot-2", "PE/Lab Tools.wim" image 1 "pe-pe-lab-tools-1". Rules may name it.
func AutoEntryName(path string, index int) string {
	return fmt.Sprintf("pe-%s-%d", slug(strings.TrimSuffix(path, ".wim")), index)
}

var (
	autoWinPEName = regexp.MustCompile(`^pe-[a-z0-9-]+-[0-9]+$`) // WithCatalog: WIM images
	autoImageName = regexp.MustCompile(`^(iso|img)-[a-z0-9-]+$`) // WithImages: ISOs and disk images
)

// autoEntryKind says which automatic entries name has the form of: "winpe" (pe-FILE-INDEX),
// "images" (iso-FILE, img-FILE), or "" when it is no automatic entry's name.
func autoEntryKind(name string) string {
	switch {
	case autoWinPEName.MatchString(name):
		return "winpe"
	case autoImageName.MatchString(name):
		return "images"
	}
	return ""
}

// autoEntryHint explains, for messages, why a rule's entry may be missing.
func autoEntryHint(name string) string {
	switch autoEntryKind(name) {
	case "winpe":
		return "an automatic entry for a WIM image: pe-FILE-INDEX, e.g. pe-boot-2 for image 2 of boot.wim; the store holds no such image, or an entry of the config boots it already"
	case "images":
		return "an automatic entry for an ISO or disk image: iso-FILE or img-FILE, e.g. iso-tools-rescue-iso for tools/rescue.iso; the store holds no such file, or an entry of the config boots it already"
	}
	return "not an entry of the config"
}

// WithCatalog returns a copy of c with an entry for every WindowsPE image of the store that no
// winpe entry names (when winpe.auto is on). Generated entries are named "pe-FILE-INDEX" and
// titled with the image's name, file and architecture; they use wimboot from the winpe:
// section and boot natively when a rule sends a stock PXE client to them.
func (c *Config) WithCatalog(facts *StoreImages) *Config {
	out := *c
	out.Entries = append([]Entry(nil), c.Entries...)
	out.Unbootable = append([]Unbootable(nil), c.Unbootable...)
	out.ImageArch = imageArchs(facts) // arm64.go
	if !c.WinPE.Auto || facts == nil {
		return &out
	}
	named := map[string]bool{} // "path:index" of images an entry already boots
	for _, e := range c.Entries {
		if w, ok := e.Boot.(*WinPEBoot); ok {
			idx := w.Index
			if f, ok := facts.file(w.Image); ok && idx == 0 {
				idx = f.DefaultPEIndex
			}
			named[strings.ToLower(w.Image)+":"+strconv.Itoa(idx)] = true
		}
	}
	for i := range facts.Files {
		// A WIM the catalog cannot read has no images: the menu says so instead of nothing.
		if f := &facts.Files[i]; f.Kind == "wim" && len(f.Images) == 0 && !named[strings.ToLower(f.Path)+":0"] {
			if f.Unreadable != "" {
				out.Unbootable = append(out.Unbootable, Unbootable{Name: f.Path, Reason: f.Unreadable})
			}
		}
	}
	for i := range facts.Files {
		f := &facts.Files[i]
		for _, im := range f.Images {
			if !im.WindowsPE {
				continue
			}
			lp := strings.ToLower(f.Path)
			if named[lp+":"+strconv.Itoa(im.Index)] {
				continue
			}
			name := AutoEntryName(f.Path, im.Index)
			if _, dup := out.Entry(name); dup {
				continue
			}
			w := &WinPEBoot{Image: f.Path, Index: im.Index, Path: WinPEAuto, BCD: BCDAuto, Wimboot: c.WinPE.Wimboot,
				Inject:      mediaInjections(f, im), // winpe_media.go
				UEFIBootmgr: c.WinPE.UEFIBootmgr, Transcode: c.WinPE.Transcode, BlockSize: c.WinPE.BlockSize, WindowSize: c.WinPE.WindowSize, Auto: true, name: name}
			title := fmt.Sprintf("%s (%s:%d, %s)", singleLine(im.Name), singleLine(f.Path), im.Index, im.ArchName)
			out.Entries = append(out.Entries, Entry{Name: name, Title: title, Boot: w})
		}
	}
	if out.Menu.Default == "" && len(out.Entries) > 0 {
		out.Menu.Default = out.Entries[0].Name
	}
	return &out
}
