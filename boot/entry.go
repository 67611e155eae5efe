package boot

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/template"

	"github.com/pxewim/pxewim/storepath"
	"gopkg.in/yaml.v3"
)

// EntryBoot is the kind-specific part of a boot entry. Each kind (linux, ipxe, winpe, and the
// image kinds iso, memdisk and sanboot) is one type implementing it, one parse function in
// entryKinds, and nothing else: the menu, rules, DHCP decision and HTTP serving treat every kind
// alike. A kind that boots without iPXE (native WinPE over TFTP) also implements NativeBooter.
type EntryBoot interface {
	// Kind is the config key of the kind ("linux", "ipxe").
	Kind() string
	// Refs lists the store files the entry needs, for checks and for pre-opening.
	Refs() []Ref
	// IPXE renders the iPXE commands that boot the entry (no "#!ipxe" line). Commands that can
	// fail should end in "|| goto failed": the menu script defines that label.
	IPXE(env *ScriptEnv) (string, error)
}

// NativeBooter is the seam for entries that boot a stock PXE client without iPXE (the native
// WinPE path: pxeboot.n12 / bootmgfw.efi over TFTP). When a rule sends a client to such
// an entry, the DHCP decision uses its boot file instead of the iPXE binary. img is the
// daemon's WinPE library (nil when there is none), for the facts of the served image.
type NativeBooter interface {
	NativeBootFile(c Client, img WinPEImages) (tftpPath string, ok bool)
}

// TreeBooter is the seam for entries that give their clients a file tree of their own (native
// WinPE: "\Boot\BCD" must resolve inside the image chosen for that MAC). Policy.TreeEntry
// names the entry whose tree a client gets; package winpe serves that tree.
type TreeBooter interface {
	OwnTree() bool
}

// ScriptEnv is what an entry needs to render its iPXE commands.
type ScriptEnv struct {
	Client Client
	// URL turns a store reference into an absolute (or script-relative) URL.
	URL func(Ref) (string, error)
	// WinPE is the daemon's WinPE library, for the facts of the images winpe entries serve
	// (boot files, wimboot's index). Nil when the caller has none: winpe entries cannot render.
	WinPE WinPEImages
	// OwnTree is set by Policy while it renders an entry whose tree (TreeBooter) is the
	// client's TFTP tree, because a rule sends the client there: a native WinPE entry can then
	// have iPXE chain its loader over TFTP.
	OwnTree bool
	// TFTP is listen.tftp ("" = no TFTP server), for entries that chain a loader over TFTP.
	TFTP string
	// TFTPServer is listen.tftp_advertise, the address DHCP names as the TFTP server; zero
	// means the host of the URLs that URL returns.
	TFTPServer netip.Addr
}

// entryKind parses one kind of entry from its YAML value.
type entryKind struct {
	name  string
	parse func(d *decoder, v *yaml.Node, key string) EntryBoot
}

// entryKinds lists the entry kinds the config understands.
func entryKinds() []entryKind {
	return []entryKind{
		{"linux", parseLinux},
		{"ipxe", parseIPXEScript},
		{"winpe", parseWinPE},
		{"memdisk", parseMemdisk}, // entry_image.go
		{"iso", parseISO},
	}
}

func entryKindNames() []string {
	var ns []string
	for _, k := range entryKinds() {
		ns = append(ns, k.name)
	}
	return ns
}

// LinuxBoot boots a Linux kernel with initrds and a command line.
type LinuxBoot struct {
	Kernel  Ref
	Initrds []Ref
	Cmdline string
}

func (*LinuxBoot) Kind() string { return "linux" }

func (l *LinuxBoot) Refs() []Ref { return append([]Ref{l.Kernel}, l.Initrds...) }

// IPXE renders kernel + initrd lines. EFI builds of Debian's 2019 iPXE lack the LoadFile2 initrd
// protocol, so the kernel's EFI stub loads initrds by name: every initrd is named on the kernel
// command line (initrd=NAME), where NAME is the image name iPXE gives it (the URL's basename).
func (l *LinuxBoot) IPXE(env *ScriptEnv) (string, error) {
	kernel, err := env.URL(l.Kernel)
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", l.Kernel, err)
	}
	var initrdArgs []ipxePart
	var initrdURLs []string
	for _, r := range l.Initrds {
		u, err := env.URL(r)
		if err != nil {
			return "", fmt.Errorf("initrd %s: %w", r, err)
		}
		// iPXE names the image after the URL's last segment, decoded: the file's base name.
		initrdArgs = append(initrdArgs, ipxeWord("initrd="+r.Base()))
		initrdURLs = append(initrdURLs, u)
	}
	var s ipxeScript
	args := append([]ipxePart{ipxeURL(kernel)}, initrdArgs...)
	s.Cmd("kernel", append(args, ipxeArgs(l.Cmdline), ipxeLit("|| goto failed"))...)
	for _, u := range initrdURLs {
		s.Cmd("initrd", ipxeURL(u), ipxeLit("|| goto failed"))
	}
	s.Cmd("boot || goto failed")
	return s.String()
}

// initrdNameBad says what keeps name from being written on a kernel command line as it is
// ("a space", "a quote", or the character), or "" when nothing does.
func initrdNameBad(name string) string {
	for _, c := range name {
		switch {
		case c == ' ' || c == '\t':
			return "a space"
		case c == '"' || c == '\'':
			return "a quote"
		case c < 0x80 && (isAlnum(byte(c)) || strings.ContainsRune("._-+=,@", c)):
		default:
			return fmt.Sprintf("%q", c)
		}
	}
	return ""
}

func parseLinux(d *decoder, n *yaml.Node, key string) EntryBoot {
	l := &LinuxBoot{}
	ref := func(v *yaml.Node, k string, dst *Ref) {
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
	seen := d.mapping(n, key, fields{
		"kernel": func(v *yaml.Node, k string) { ref(v, k, &l.Kernel) },
		"initrd": func(v *yaml.Node, k string) {
			var ss []string
			d.strList(v, k, &ss)
			names := map[string]bool{}
			for i, s := range ss {
				r, err := ParseRef(s)
				if err != nil {
					d.errorf(v, fmt.Sprintf("%s[%d]", k, i), "%v", err)
					continue
				}
				if bad := initrdNameBad(r.Base()); bad != "" {
					d.errorf(v, fmt.Sprintf("%s[%d]", k, i), "initrd file name %q has %s: the kernel command line names it (initrd=NAME); use letters, digits and . _ - + = , @", r.Base(), bad)
				}
				if names[r.Base()] {
					d.errorf(v, fmt.Sprintf("%s[%d]", k, i), "two initrds named %q: the kernel tells them apart by file name", r.Base())
				}
				names[r.Base()] = true
				l.Initrds = append(l.Initrds, r)
			}
		},
		"cmdline": func(v *yaml.Node, k string) {
			if d.str(v, k, &l.Cmdline) {
				if err := checkScriptArgs(l.Cmdline); err != nil {
					d.errorf(v, k, "%v", err)
				}
			}
		},
	})
	if _, ok := seen["kernel"]; !ok {
		d.errorf(n, key+".kernel", "required")
	}
	for _, r := range l.Initrds {
		if seen["kernel"] != nil && l.Kernel.Path != "" && r.Base() == l.Kernel.Base() {
			// iPXE names images by file name, and a second image of the same name replaces
			// the first: the kernel would be gone before "boot".
			d.errorf(seen["initrd"], key+".initrd", "initrd %q has the kernel's file name %q", r, r.Base())
		}
	}
	return l
}

// IPXEScript is a custom iPXE script: the admin's own script, written into the menu and entry
// scripts as given (it may use any iPXE command and ${...} expansion). It runs as written, except that it may use Go template
// actions to name store files and the client: {{url "isos/x.iso"}} gives the file's URL (an
// immutable blob URL for files inside WIMs), and .MAC, .IP, .UUID, .Arch, .Firmware describe the
// client. iPXE itself never uses "{{", so plain scripts are unaffected.
type IPXEScript struct {
	Script string // without the "#!ipxe" line
	tmpl   *template.Template
	refs   []Ref
}

func (*IPXEScript) Kind() string  { return "ipxe" }
func (s *IPXEScript) Refs() []Ref { return s.refs }

// scriptData is what templates in ipxe entries see.
type scriptData struct {
	MAC, IP, UUID, Firmware string
	Arch                    uint16
}

func (s *IPXEScript) IPXE(env *ScriptEnv) (string, error) {
	if s.tmpl == nil {
		return s.Script, nil
	}
	c := env.Client
	// The client's facts come from DHCP and from the script URL's query (?uuid=): each is
	// written as one inert word, whatever the client sent.
	data := scriptData{Firmware: inertWord(c.Firmware.String()), Arch: c.Arch}
	if c.UUID != "" {
		data.UUID = inertWord(c.UUID)
	}
	if len(c.MAC) > 0 {
		data.MAC = inertWord(c.MAC.String())
	}
	if c.IP.IsValid() {
		data.IP = inertWord(c.IP.String())
	}
	t, err := s.tmpl.Clone()
	if err != nil {
		return "", err
	}
	t.Funcs(template.FuncMap{"url": func(ref string) (string, error) {
		r, err := ParseRef(ref)
		if err != nil {
			return "", err
		}
		u, err := env.URL(r)
		if err != nil {
			return "", err
		}
		return inertURL(u)
	}})
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("ipxe script: %w", err)
	}
	return b.String(), nil
}

func parseIPXEScript(d *decoder, n *yaml.Node, key string) EntryBoot {
	s := &IPXEScript{}
	var text string
	if !d.str(n, key, &text) {
		return s
	}
	text = strings.TrimPrefix(strings.TrimLeft(text, " \t\r\n"), "#!ipxe")
	text = strings.TrimLeft(text, "\r\n")
	if strings.TrimSpace(text) == "" {
		d.errorf(n, key, "empty script")
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	s.Script = text
	if !strings.Contains(text, "{{") {
		return s
	}
	// Parse now, so a broken template is a config error; a dry run with a recording url()
	// checks the references and lists them for pxewim serve --check.
	t, err := template.New(key).Option("missingkey=error").Funcs(template.FuncMap{"url": func(string) (string, error) { return "", nil }}).Parse(text)
	if err != nil {
		d.errorf(n, key, "template: %v", err)
		return s
	}
	dry, _ := t.Clone()
	dry.Funcs(template.FuncMap{"url": func(ref string) (string, error) {
		r, err := ParseRef(ref)
		if err != nil {
			return "", err
		}
		s.refs = append(s.refs, r)
		return "", nil
	}})
	if err := dry.Execute(io.Discard, scriptData{}); err != nil {
		d.errorf(n, key, "template: %v", err)
		return s
	}
	s.tmpl = t
	return s
}

// Ref names a file in the store: a plain path ("isos/x.iso") or a file inside a WIM image
// ("tools.wim:1/boot/vmlinuz", image indexes count from 1).
type Ref struct {
	WIM   string // path of the WIM in the store; "" for a plain file
	Index int    // image index in the WIM (1-based)
	Path  string // slash-separated path, fs.ValidPath form
}

// ParseRef parses a store reference. Backslashes count as slashes and one leading slash is
// dropped; ".." and empty elements are refused, so a reference never leaves the store.
func ParseRef(s string) (Ref, error) {
	orig := s
	s = strings.TrimPrefix(strings.ReplaceAll(s, `\`, "/"), "/")
	var r Ref
	if wim, idx, inner, ok := storepath.Split(s); ok { // the store's own grammar
		wimPath, err := cleanRefPath(wim)
		if err != nil {
			return Ref{}, fmt.Errorf("%q: WIM path: %w", orig, err)
		}
		if inner == "." {
			inner = "" // a reference names a file inside the image
		}
		r.WIM, r.Index, s = wimPath, idx, inner
	} else if storepath.BadImageElem(s) {
		return Ref{}, fmt.Errorf("%q: image index must be 1 or more (at most %d)", orig, storepath.MaxIndex)
	}
	p, err := cleanRefPath(s)
	if err != nil {
		return Ref{}, fmt.Errorf("%q: %w", orig, err)
	}
	r.Path = p
	return r, nil
}

// cleanRefPath cleans a store path of the config with storepath's one rule, and refuses what
// that rule would only tidy ("a//b", "a/./b", "a/"): a reference is written clean.
func cleanRefPath(s string) (string, error) {
	p, err := storepath.CleanFile(s)
	if err == nil && p != strings.TrimPrefix(strings.ReplaceAll(s, `\`, "/"), "/") {
		err = fmt.Errorf("%q has empty or \".\" elements", s)
	}
	if err != nil {
		return "", fmt.Errorf("not a clean relative path inside the store: %w", err)
	}
	return p, nil
}

// String gives the reference back in config syntax.
func (r Ref) String() string {
	if r.WIM != "" {
		return fmt.Sprintf("%s:%d/%s", r.WIM, r.Index, r.Path)
	}
	return r.Path
}

// Base is the file name the reference ends with.
func (r Ref) Base() string { return r.Path[strings.LastIndex(r.Path, "/")+1:] }

// checkScriptArgs refuses, in admin-written arguments that go onto an iPXE command line
// (a kernel command line), what iPXE would read as more than arguments: line breaks and
// control characters, '$' (setting expansion), the words "&&", "||" and ";" (command
// separators) and words starting with '#' (a comment).
func checkScriptArgs(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("must be one line")
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("control character %U", r)
		}
	}
	if strings.Contains(s, "$") {
		return fmt.Errorf("'$' would be expanded by iPXE (${...} settings): write the value itself")
	}
	for _, w := range strings.Fields(s) {
		if w == "&&" || w == "||" || w == ";" || w[0] == '#' {
			return fmt.Errorf("%q would end the iPXE command (&&, || and ; separate commands, # starts a comment)", w)
		}
	}
	return nil
}
