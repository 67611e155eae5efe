package boot

import (
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// IPXEDir is the folder under which the iPXE binaries appear in the TFTP and HTTP trees.
const IPXEDir = "ipxe"

// NativeBCDPather is implemented by NativeBooter entries whose loader reads a BCD: the path
// DHCP option 252 names for a client booted by NativeBootFile.
type NativeBCDPather interface {
	NativeBCDPath(c Client) string
}

// Policy decides, for one config, what each client boots: the DHCP boot file, and the iPXE
// script served to it. It is immutable; a reload builds a new Policy.
type Policy struct {
	cfg   *Config
	winpe WinPEImages // the daemon's WinPE library for this policy's entries (nil: none)
}

// NewPolicy builds the policy of a validated config.
func NewPolicy(cfg *Config) (*Policy, error) {
	return &Policy{cfg: cfg}, nil
}

// WithWinPE returns the policy with img, the daemon's WinPE library bound to this policy's
// winpe entries (winpe.Library.Bind), as the source of the facts of their served images.
func (p *Policy) WithWinPE(img WinPEImages) *Policy {
	q := *p
	q.winpe = img
	return &q
}

// Config returns the config the policy was built from.
func (p *Policy) Config() *Config { return p.cfg }

// rule returns the first rule matching c and its entry (nil when the entry does not exist).
func (p *Policy) rule(c Client) (*Rule, *Entry) {
	for i := range p.cfg.Rules {
		r := &p.cfg.Rules[i]
		if r.Match.Matches(c) {
			e, _ := p.cfg.Entry(r.Entry)
			return r, e
		}
	}
	return nil, nil
}

// RuleWarnings lists the rules whose entry does not exist in this policy: rules naming an
// automatic entry (see AutoEntryName) for an image the store does not hold now. Clients they
// match get the menu. The config accepted them because automatic entries come and go.
func (p *Policy) RuleWarnings() []string {
	var out []string
	for i, r := range p.cfg.Rules {
		if _, ok := p.cfg.Entry(r.Entry); !ok {
			out = append(out, fmt.Sprintf("%s:%d: rules[%d].entry: no entry %q at the moment (%s); clients it matches get the menu",
				p.cfg.Source, r.Line, i, r.Entry, p.hint(r.Entry)))
		}
	}
	return out
}

// hint explains, for messages, why the entry a rule names does not exist: an image of the
// store the catalog cannot read, or what automatic entries are.
func (p *Policy) hint(name string) string {
	for _, u := range p.cfg.Unbootable {
		if autoEntryFor(u.Name, name) {
			return "the store holds " + u.Name + ", but it cannot boot: " + u.Reason
		}
	}
	return autoEntryHint(name)
}

// Decide chooses the DHCP boot file. server is the address the client reached us at (the
// receiving interface's address); URLs use listen.advertise or the HTTP listen address before
// it. The order matters: a client already running iPXE must get the script (handing it an iPXE
// binary again would loop, since ROM iPXE and chainloaded iPXE send identical requests).
func (p *Policy) Decide(c Client, server netip.Addr) Decision {
	base := p.HTTPBase(server)
	switch {
	case c.IPXE:
		return Decision{BootFile: base + "/boot.ipxe?" + ipxeQuery(c), Reason: "iPXE: script URL"}
	case c.Firmware == FirmwareEFIARM64: // arm64.go
		d, _ := p.arm64Decision(c, base)
		return d
	case c.HTTPBoot:
		if d, ok := p.secureBootDecision(c, base); ok { // secureboot.go
			return d
		}
		if c.Firmware != FirmwareEFI64 || p.cfg.IPXE.HTTPBoot == "" {
			return Decision{NoBoot: true, Reason: fmt.Sprintf("UEFI HTTP Boot on %s: no iPXE binary configured for it", c.Firmware)}
		}
		return Decision{BootFile: base + "/files/" + IPXEDir + "/" + p.cfg.IPXE.HTTPBoot, Reason: "UEFI HTTP Boot: iPXE over HTTP"}
	}
	r, e := p.rule(c)
	if e != nil {
		if nb, ok := e.Boot.(NativeBooter); ok {
			if f, ok := nb.NativeBootFile(c, p.winpe); ok {
				d := Decision{BootFile: f, Reason: "rule to " + e.Name + ": native boot"}
				if bp, ok := e.Boot.(NativeBCDPather); ok {
					d.BCDPath = bp.NativeBCDPath(c)
				}
				return d
			}
		}
	}
	if d, ok := p.secureBootDecision(c, base); ok { // secureboot.go
		return d
	}
	d := p.ipxeBinary(c)
	if r != nil && e == nil && !d.NoBoot {
		d.Reason += fmt.Sprintf("; rule on line %d names entry %q, which does not exist now (%s): the menu", r.Line, r.Entry, p.hint(r.Entry))
	}
	return d
}

// ipxeBinary is the decision for a stock PXE client: the iPXE binary of its firmware.
func (p *Policy) ipxeBinary(c Client) Decision {
	var file string
	switch c.Firmware {
	case FirmwareBIOS:
		file = p.cfg.IPXE.BIOS
	case FirmwareEFI64:
		file = p.cfg.IPXE.EFI64
	case FirmwareEFI32:
		file = p.cfg.IPXE.EFI32
	}
	if file == "" {
		return Decision{NoBoot: true, Reason: fmt.Sprintf("firmware %s (arch %d): no iPXE binary configured", c.Firmware, c.Arch)}
	}
	return Decision{BootFile: IPXEDir + "/" + file, Reason: "stock PXE: iPXE over TFTP"}
}

// TreeEntry is the entry whose own file tree TFTP and HTTP serve to c (TreeBooter: native
// WinPE), or nil when c gets the plain tree (the store with every winpe entry's own files
// under WinPEDir/NAME/). Package winpe builds the trees.
//
// A rule counts for the tree when it matches c as it is or as its PXE firmware saw it (not
// running iPXE): when iPXE chainloads bootmgr, bootmgr's TFTP requests come from a client that
// DHCP last saw as iPXE, and it must still find \Boot\BCD of its image.
func (p *Policy) TreeEntry(c Client) *Entry {
	fw := c
	fw.IPXE = false
	for _, r := range p.cfg.Rules {
		if !r.Match.Matches(c) && !r.Match.Matches(fw) {
			continue
		}
		e, ok := p.cfg.Entry(r.Entry)
		if !ok {
			continue
		}
		if t, ok := e.Boot.(TreeBooter); ok && t.OwnTree() {
			return e
		}
		if r.Match.Matches(c) {
			break // the rule that really applies has no tree of its own
		}
	}
	return nil
}

// WinPEEntries lists the policy's winpe entries (from the config and the catalog), in menu order.
func (p *Policy) WinPEEntries() []*WinPEBoot {
	var out []*WinPEBoot
	for i := range p.cfg.Entries {
		if w, ok := p.cfg.Entries[i].Boot.(*WinPEBoot); ok {
			out = append(out, w)
		}
	}
	return out
}

// ipxeQuery identifies the client in script URLs. The MAC is written out (known from DHCP);
// iPXE expands ${...} in a DHCP filename, so the script learns which iPXE build runs.
func ipxeQuery(c Client) string {
	q := "platform=${platform}&arch=${buildarch}"
	if len(c.MAC) > 0 {
		q = "mac=" + strings.ReplaceAll(c.MAC.String(), ":", "-") + "&" + q
	}
	return q
}

// HTTPBase is the "http://IP[:PORT]" prefix of URLs handed to clients that reached us at
// server. Clients get an IP literal: UEFI HTTP Boot cannot resolve names from a proxy offer,
// and iPXE keeps proxy DHCP values apart from ${next-server}.
func (p *Policy) HTTPBase(server netip.Addr) string {
	host, port := p.httpHostPort()
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() && server.Is6() && !server.Is4In6() {
		host = "" // an IPv4 listen.advertise is no use to a client that reached us over IPv6
	}
	if host == "" {
		host = server.WithZone("").String()
	}
	if port == "80" || port == "" {
		if strings.Contains(host, ":") {
			return "http://[" + host + "]" // an IPv6 literal
		}
		return "http://" + host
	}
	return "http://" + net.JoinHostPort(host, port)
}

// httpHostPort is the advertised host and port: listen.advertise first, then listen.http.
func (p *Policy) httpHostPort() (host, port string) {
	lh, lp, _ := net.SplitHostPort(p.cfg.Listen.HTTP)
	if a, err := netip.ParseAddr(lh); err == nil && !a.IsUnspecified() {
		host = lh
	}
	port = lp
	adv := p.cfg.Listen.Advertise
	if adv == "" {
		return host, port
	}
	if ap, err := netip.ParseAddrPort(adv); err == nil {
		return ap.Addr().String(), strconv.Itoa(int(ap.Port()))
	}
	return adv, port
}

// Script names understood by Script.
const (
	ScriptBoot = "boot.ipxe" // the rule's entry, else the menu
	ScriptMenu = "menu.ipxe" // always the menu
)

// Script renders the iPXE script called name for client c: "boot.ipxe" (what DHCP hands
// iPXE), "menu.ipxe", or "ENTRY.ipxe" for one entry. winpe entries render from the facts of
// their served images (WithWinPE). url turns a store reference into a URL (resolved in the
// client's tree). A name that is none of these gives an error wrapping fs.ErrNotExist. Menu entries that
// cannot render (a file missing from the store) are shown with the reason instead of taking the
// menu down; warn hears about each of them.
func (p *Policy) Script(c Client, name string, url func(Ref) (string, error), warn func(error)) (string, error) {
	env := &ScriptEnv{Client: c, URL: url, WinPE: p.winpe, TFTP: p.cfg.Listen.TFTP, TFTPServer: p.cfg.Listen.TFTPServer()}
	switch name {
	case ScriptBoot:
		r, e := p.rule(c)
		if e != nil {
			return p.entryScript(env, e)
		}
		if r != nil && warn != nil {
			warn(fmt.Errorf("rule on line %d names entry %q, which does not exist now (%s): the client gets the menu", r.Line, r.Entry, p.hint(r.Entry)))
		}
		return p.menuScript(env, warn)
	case ScriptMenu:
		return p.menuScript(env, warn)
	}
	if e, ok := p.cfg.Entry(strings.TrimSuffix(name, ".ipxe")); ok && strings.HasSuffix(name, ".ipxe") {
		return p.entryScript(env, e)
	}
	return "", fmt.Errorf("no script %q (entries: %s): %w", name, strings.Join(entryNames(p.cfg), ", "), fs.ErrNotExist)
}

// entryScript renders one entry with the failure handling the menu script would give it.
func (p *Policy) entryScript(env *ScriptEnv, e *Entry) (string, error) {
	body, err := p.render(env, e)
	if err != nil {
		return "", fmt.Errorf("entry %q: %w", e.Name, err)
	}
	var s ipxeScript
	s.Raw("#!ipxe")
	s.Comment("pxewim: entry " + e.Name + " for " + clientLabel(env.Client))
	s.Label("", "retry")
	s.Cmd("echo pxewim: booting", ipxeText(e.Title))
	s.Raw(body)
	// On failure: wait, renew the address (the link may have changed under a chainloaded
	// iPXE), and try again; the console shows the error meanwhile.
	s.Cmd("goto failed")
	s.Label("", "failed")
	s.Cmd("echo pxewim: boot failed: ${errno}, retrying in 10 s")
	s.Cmd("sleep 10")
	s.Cmd("dhcp || echo pxewim: dhcp failed")
	s.Cmd("goto retry")
	return s.String()
}

// render renders e's commands for env's client, telling e whether the client's tree is e's.
func (p *Policy) render(env *ScriptEnv, e *Entry) (string, error) {
	env.OwnTree = p.TreeEntry(env.Client) == e
	return e.Boot.IPXE(env)
}

func clientLabel(c Client) string {
	if len(c.MAC) > 0 {
		return c.MAC.String()
	}
	if c.IP.IsValid() {
		return c.IP.String()
	}
	return "unknown client"
}

// BIOSOnlyBooter is implemented by entries that boot only on BIOS clients (memdisk is a
// real-mode program). Menus hide such entries from UEFI clients and, when DHCP did not tell the
// client's firmware, list them only where iPXE's ${platform} is pcbios.
type BIOSOnlyBooter interface {
	BIOSOnly() bool
}

func biosOnly(e *Entry) bool {
	b, ok := e.Boot.(BIOSOnlyBooter)
	return ok && b.BIOSOnly()
}

// FirmwareChecker is implemented by entries that know, for a client whose firmware DHCP
// told, whether they can boot on it (a WinPE image without UEFI boot files): the menu hides
// them from that client. It returns why not, or "" when the entry can boot or cannot tell.
type FirmwareChecker interface {
	CannotBootOn(env *ScriptEnv) string
}

// offersShell reports whether an entry of the config is an iPXE shell already (its title
// says so, or its script runs "shell"): the menu then does not add its own.
func offersShell(e *Entry) bool {
	if strings.EqualFold(strings.Join(strings.Fields(e.Title), " "), "iPXE shell") {
		return true
	}
	s, ok := e.Boot.(*IPXEScript)
	if !ok {
		return false
	}
	for _, l := range strings.Split(s.Script, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "shell" {
			return true
		}
	}
	return false
}

// menuLine is how one entry appears in one client's menu.
type menuLine struct {
	e      *Entry
	body   string // the entry's commands; "" when it cannot boot
	reason string // why it cannot boot (a file missing from the store...)
	hidden string // why it cannot boot on the client's firmware: not listed
	guard  bool   // BIOS only and the client's firmware is unknown: listed where ${platform} is pcbios
}

// menuScript writes the menu: every entry's commands sit under a label in the same script, so
// choosing costs no extra request; on failure it returns to the menu after a pause. Entries
// that cannot boot are listed as disabled lines with the reason (and their label says why,
// for a default or a typed label); entries that cannot boot on the client's firmware are not
// listed; images the catalog cannot read are listed as disabled lines (Config.Unbootable).
func (p *Policy) menuScript(env *ScriptEnv, warn func(error)) (string, error) {
	m := p.cfg.Menu
	var lines []menuLine
	shell := false
	for i := range p.cfg.Entries {
		e := &p.cfg.Entries[i]
		ml := menuLine{e: e}
		if biosOnly(e) {
			switch {
			case env.Client.Firmware.IsEFI():
				ml.hidden = "it boots only on BIOS machines, and this one runs UEFI"
			case env.Client.Firmware != FirmwareBIOS:
				ml.guard = true
			}
		} else if fc, ok := e.Boot.(FirmwareChecker); ok {
			ml.hidden = fc.CannotBootOn(env)
		}
		if ml.hidden == "" {
			ml.hidden = p.archHidden(env.Client, e) // arm64.go
		}
		if ml.hidden == "" {
			body, err := p.render(env, e)
			if err != nil {
				// One broken entry (a file missing from the store) must not take the menu
				// down: show it, disabled, and say why it cannot boot.
				if warn != nil {
					warn(fmt.Errorf("entry %q: %w", e.Name, err))
				}
				ml.reason = err.Error()
			} else {
				ml.body = body
			}
		}
		shell = shell || offersShell(e)
		lines = append(lines, ml)
	}
	if len(lines) == 0 && len(p.cfg.Unbootable) == 0 {
		return "#!ipxe\necho pxewim: no boot entries are configured\nsleep 10\nexit\n", nil
	}
	var s ipxeScript
	s.Raw("#!ipxe")
	s.Comment("pxewim: menu for " + clientLabel(env.Client))
	if m.Timeout == 0 && m.Default != "" {
		s.Cmd("goto", ipxeLabel("entry_", m.Default))
	}
	s.Label("", "menu")
	s.Cmd("menu", ipxeText(m.Title))
	listed := map[string]bool{}
	for i, ml := range lines {
		switch {
		case ml.hidden != "":
		case ml.reason != "":
			s.Cmd("item --gap", ipxeText("entry "+ml.e.Name+" cannot boot: "+ml.reason))
		case ml.guard:
			skip := ipxeLabel("pxewim_bios_only_", fmt.Sprint(i))
			s.Cmd("iseq ${platform} pcbios || goto", skip)
			s.Cmd("item", ipxeLabel("", ml.e.Name), ipxeText(ml.e.Title))
			s.Label("", skip.s)
			listed[ml.e.Name] = true
		default:
			s.Cmd("item", ipxeLabel("", ml.e.Name), ipxeText(ml.e.Title))
			listed[ml.e.Name] = true
		}
	}
	for _, u := range p.cfg.Unbootable {
		s.Cmd("item --gap", ipxeText(u.Name+" cannot boot: "+u.Reason))
	}
	// The built-in items' labels start with '_', which no entry name can (config names start
	// with a letter or digit; automatic ones with pe-, iso- or img-): no label is defined twice.
	s.Cmd("item --gap")
	if !shell {
		s.Cmd("item _shell iPXE shell")
	}
	s.Cmd("item _exit Boot from the next device")
	var choose []ipxePart
	if m.Timeout >= 0 {
		choose = append(choose, ipxeLit("--timeout"), ipxeWord(strconv.FormatInt(int64(m.Timeout/time.Millisecond), 10)))
	}
	if listed[m.Default] {
		choose = append(choose, ipxeLit("--default"), ipxeLabel("", m.Default))
	}
	s.Cmd("choose", append(choose, ipxeLit("target || goto cancel"))...)
	s.Cmd("goto entry_${target}")
	for _, ml := range lines {
		s.Blank()
		s.Label("entry_", ml.e.Name)
		switch {
		case ml.hidden != "":
			s.Cmd("echo pxewim: entry", ipxeWord(ml.e.Name), ipxeLit("cannot boot here:"), ipxeText(ml.hidden))
			s.Cmd("prompt --timeout 10000 Press a key")
			s.Cmd("goto menu")
		case ml.reason != "":
			s.Cmd("echo pxewim: entry", ipxeWord(ml.e.Name), ipxeLit("cannot boot:"), ipxeText(ml.reason))
			s.Cmd("prompt Press a key")
			s.Cmd("goto menu")
		default:
			s.Cmd("echo pxewim: booting", ipxeText(ml.e.Title))
			s.Raw(ml.body)
			s.Cmd("goto failed")
		}
	}
	s.Blank()
	if !shell {
		s.Label("", "entry__shell")
		s.Cmd("shell")
		s.Cmd("goto menu")
	}
	s.Label("", "entry__exit")
	s.Label("", "cancel")
	s.Cmd("exit")
	s.Label("", "failed")
	s.Cmd("echo pxewim: boot failed: ${errno}")
	s.Cmd("sleep 5")
	s.Cmd("goto menu")
	return s.String()
}
