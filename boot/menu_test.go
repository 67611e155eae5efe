package boot

import (
	"github.com/pxewim/pxewim/internal/ipxetok"
	"net/netip"
	"os"
	"strings"
	"testing"
)

const firmwareConfig = `
listen: {http: ":80"}
menu: {title: Lab, timeout: 3s, default: dos}
entries:
  - name: dos
    title: DOS floppy
    memdisk: {image: dos/dos.img}
  - name: oldcd
    title: Old CD
    iso: {image: isos/old.iso, method: memdisk}
  - name: live
    title: Live ISO
    iso: isos/live.iso
`

// TestMenuHidesWhatCannotBootOnTheFirmware: memdisk entries (disk images, ISOs in RAM) are
// hidden from UEFI clients, listed for BIOS clients, and listed under a ${platform} check when
// DHCP did not say which firmware the client runs. sanboot works on both.
func TestMenuHidesWhatCannotBootOnTheFirmware(t *testing.T) {
	p := mustPolicy(t, firmwareConfig)
	bios := Client{MAC: mac("52:54:00:00:01:01"), Firmware: FirmwareBIOS, IPXE: true}
	efi := Client{MAC: mac("52:54:00:00:01:02"), Firmware: FirmwareEFI64, Arch: 7, IPXE: true}
	unknown := Client{MAC: mac("52:54:00:00:01:03")}
	script := func(c Client) string {
		s, err := p.ScriptFor(c, ScriptMenu, hostileURL, func(err error) { t.Error(err) })
		if err != nil {
			t.Fatal(err)
		}
		if probs, _ := ipxetok.Check(s, []string{"http://10.77.0.1/files/"}); len(probs) > 0 {
			t.Errorf("%v\n%s", probs, s)
		}
		return s
	}
	b := script(bios)
	for _, want := range []string{"item dos DOS floppy\n", "item oldcd Old CD\n", "item live Live ISO\n", "--default dos target"} {
		if !strings.Contains(b, want) {
			t.Errorf("BIOS menu lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(b, "pxewim_bios_only") {
		t.Errorf("BIOS menu checks the platform:\n%s", b)
	}
	e := script(efi)
	if strings.Contains(e, "item dos ") || strings.Contains(e, "item oldcd ") || !strings.Contains(e, "item live Live ISO\n") {
		t.Errorf("UEFI menu lists memdisk entries, or lacks sanboot:\n%s", e)
	}
	if strings.Contains(e, "--default dos") || strings.Contains(e, "memdisk") {
		t.Errorf("UEFI menu defaults to, or loads, memdisk:\n%s", e)
	}
	if !strings.Contains(e, ":entry_dos\necho pxewim: entry dos cannot boot here: it boots only on BIOS machines, and this one runs UEFI\n") {
		t.Errorf("UEFI menu: the hidden entry's label does not say why:\n%s", e)
	}
	u := script(unknown)
	if !strings.Contains(u, "iseq ${platform} pcbios || goto pxewim_bios_only_0\nitem dos DOS floppy\n:pxewim_bios_only_0\n") ||
		!strings.Contains(u, "iseq ${platform} pcbios || goto pxewim_bios_only_1\nitem oldcd Old CD\n:pxewim_bios_only_1\n") ||
		!strings.Contains(u, "item live Live ISO\n") {
		t.Errorf("menu for an unknown firmware:\n%s", u)
	}
	// What iPXE runs on UEFI: no item for a memdisk entry (the model follows the goto).
	for _, platform := range []string{"efi", "pcbios"} {
		items := menuItems(u, platform)
		want := "dos oldcd live _shell _exit"
		if platform == "efi" {
			want = "live _shell _exit"
		}
		if strings.Join(items, " ") != want {
			t.Errorf("platform %s: items %v, want %s", platform, items, want)
		}
	}
	// A rule sending a UEFI client to a memdisk entry: the script says why, before memdisk.
	s, err := p.ScriptFor(efi, "dos.ipxe", hostileURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(s, "iseq ${platform} pcbios || goto failed"), strings.Index(s, "kernel "); i < 0 || j < i {
		t.Errorf("entry script does not stop UEFI clients before memdisk:\n%s", s)
	}
}

// menuItems runs the menu part of script (up to "choose") the way iPXE would on platform,
// following iseq, "&&", "||" and goto, and returns the selectable items' labels.
func menuItems(script, platform string) []string {
	p := ipxetok.Model{Values: map[string]string{"platform": platform}}.Parse(script)
	var items []string
	rc, prevOp, prevLine := 0, "", 0
	for i := 0; i < len(p.Cmds); i++ {
		c := p.Cmds[i]
		run := c.Line != prevLine || prevOp == ";" || prevOp == "&&" && rc == 0 || prevOp == "||" && rc != 0
		prevOp, prevLine = c.Op, c.Line
		if !run {
			continue
		}
		rc = 0
		switch c.Argv[0] {
		case "choose":
			return items
		case "item":
			if len(c.Argv) > 1 && c.Argv[1] != "--gap" {
				items = append(items, c.Argv[1])
			}
		case "iseq":
			if c.Argv[1] != c.Argv[2] {
				rc = 1
			}
		case "goto":
			line := p.Labels[c.Argv[1]]
			j := 0
			for j < len(p.Cmds) && p.Cmds[j].Line <= line {
				j++
			}
			i, prevLine = j-1, -1
		}
	}
	return items
}

// TestMenuShellOnce: an entry of the config that is an iPXE shell replaces the built-in one.
func TestMenuShellOnce(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		builtin   bool
	}{
		{"script runs shell", "entries:\n  - name: sh\n    ipxe: |\n      echo Type exit to go back\n      shell\n", false},
		{"titled iPXE shell", "entries:\n  - name: sh\n    title: \"iPXE  Shell\"\n    ipxe: \"chain http://10.0.0.9/x.ipxe\"\n", false},
		{"no shell", "entries:\n  - name: sh\n    ipxe: \"echo hi\"\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, "listen: {http: \":80\"}\n"+tc.cfg)
			s, err := p.ScriptFor(Client{}, ScriptMenu, hostileURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			n := strings.Count(strings.ToLower(s), "item sh ipxe shell") + strings.Count(s, "item _shell")
			if got := strings.Contains(s, "item _shell iPXE shell\n"); got != tc.builtin {
				t.Errorf("built-in shell listed: %v, want %v:\n%s", got, tc.builtin, s)
			}
			if tc.name == "titled iPXE shell" && n != 1 {
				t.Errorf("\"iPXE shell\" appears %d times:\n%s", n, s)
			}
			if strings.Contains(s, "entry__shell") != tc.builtin {
				t.Errorf("built-in shell label present: %v, want %v", !tc.builtin, tc.builtin)
			}
		})
	}
	// The example config has a "shell" entry titled "iPXE shell": one shell in its menu.
	data, err := os.ReadFile("../configs/proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("proxy.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := NewPolicy(cfg)
	s, err := p.ScriptFor(Client{}, ScriptMenu, hostileURL, func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(s, "iPXE shell"); n != 2 || strings.Contains(s, "item _shell") { // the item and its "booting" line
		t.Errorf("proxy.yaml menu: %d mentions of iPXE shell:\n%s", n, s)
	}
}

// TestMenuUnreadableImages: a WIM or ISO the catalog cannot read gets a disabled line with
// the reason, not an entry and not silence; a config entry that cannot render (a file missing
// from the store) is a disabled line too, and is not the menu's default.
func TestMenuUnreadableImages(t *testing.T) {
	cfg, err := ParseConfig("u.yaml", []byte("listen: {http: \":80\"}\nwinpe: {auto: true, wimboot: wimboot}\nmenu: {default: gone}\nentries:\n  - name: gone\n    iso: isos/gone.iso\n  - name: ok\n    iso: isos/ok.iso\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap := &StoreImages{Files: []ImageFile{
		{Path: "cut.wim", Kind: "wim", Unreadable: "unreadable WIM: wim: truncated header"},
		{Path: "fine.wim", Kind: "wim", Images: []FileImage{{Index: 1, Name: "Tools"}}},
		{Path: "isos/bad.iso", Kind: KindISO, Unreadable: "unreadable ISO: iso: bad descriptor"},
	}}
	eff := cfg.WithCatalog(snap).WithImages(snap)
	if len(cfg.Unbootable) != 0 {
		t.Error("WithCatalog changed the base config")
	}
	p, _ := NewPolicy(eff)
	url := func(r Ref) (string, error) {
		if r.Path == "isos/gone.iso" {
			return "", errNotThere
		}
		return hostileURL(r)
	}
	var warned []error
	s, err := p.ScriptFor(Client{}, ScriptMenu, url, func(err error) { warned = append(warned, err) })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"item --gap entry gone cannot boot: image isos/gone.iso: not in the store\n",
		"item ok ok\n",
		"item --gap cut.wim cannot boot: unreadable WIM: wim: truncated header\n",
		"item --gap isos/bad.iso cannot boot: unreadable ISO: iso: bad descriptor\n",
		":entry_gone\necho pxewim: entry gone cannot boot: image isos/gone.iso: not in the store\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("menu lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "fine.wim") || strings.Contains(s, "item gone") || strings.Contains(s, "--default gone") || strings.Contains(s, "iso-isos-bad") {
		t.Errorf("menu lists what cannot boot:\n%s", s)
	}
	if len(warned) != 1 {
		t.Errorf("warnings %v, want the missing file", warned)
	}
	if probs, _ := ipxetok.Check(s, []string{"http://10.77.0.1/files/"}); len(probs) > 0 {
		t.Errorf("%v\n%s", probs, s)
	}
}

type notThere struct{}

func (notThere) Error() string { return "not in the store" }

var errNotThere error = notThere{}

// TestCmdlineRefusesScriptSyntax: a kernel command line is the admin's, but what iPXE would
// read as more than arguments is a config error naming the key.
func TestCmdlineRefusesScriptSyntax(t *testing.T) {
	for _, tc := range []struct{ cmdline, want string }{
		{"quiet && chain http://x/", `"&&" would end the iPXE command`},
		{"quiet ; shell", `";" would end the iPXE command`},
		{"quiet #x", `"#x" would end the iPXE command`},
		{"ip=${ip}", "'$' would be expanded by iPXE"},
		{"a\x01b", "control character"},
	} {
		_, err := ParseConfig("c.yaml", []byte("entries:\n  - name: l\n    linux: {kernel: vmlinuz, cmdline: \""+strings.ReplaceAll(tc.cmdline, "\x01", `\x01`)+"\"}\n"))
		if err == nil || !strings.Contains(err.Error(), "entries[0].linux.cmdline") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cmdline %q: %v, want an error with %q", tc.cmdline, err, tc.want)
		}
	}
	// An initrd is named on the command line by its file name: only names that need no escape.
	if _, err := ParseConfig("c.yaml", []byte("entries:\n  - name: l\n    linux: {kernel: vmlinuz, initrd: [\"fw(1).cpio\"]}\n")); err == nil || !strings.Contains(err.Error(), `initrd file name "fw(1).cpio" has '('`) {
		t.Errorf("initrd name with a parenthesis: %v", err)
	}
	if _, err := ParseConfig("c.yaml", []byte("entries:\n  - name: l\n    linux: {kernel: vmlinuz, cmdline: \"console=ttyS0,115200 a&b x#y -- init=/bin/sh\"}\n")); err != nil {
		t.Errorf("ordinary cmdline refused: %v", err)
	}
}

// TestRuleToUnreadableImage: a rule naming the automatic entry of an image the catalog cannot
// read says so (in the warnings and the DHCP reason), not "the store holds no such file".
func TestRuleToUnreadableImage(t *testing.T) {
	cfg, err := ParseConfig("r.yaml", []byte("listen: {http: \":80\"}\nwinpe: {auto: true, wimboot: wimboot}\nipxe: {bios: undionly.kpxe}\nentries:\n  - name: ok\n    iso: ok.iso\n"+
		"rules:\n  - {match: {mac: \"52:54:00:00:02:01\"}, entry: iso-isos-cut-iso}\n  - {match: {mac: \"52:54:00:00:02:02\"}, entry: pe-bad-3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap := &StoreImages{Files: []ImageFile{
		{Path: "isos/cut.iso", Kind: KindISO, Unreadable: "unreadable ISO: iso: short read"},
		{Path: "bad.wim", Kind: "wim", Unreadable: "unreadable WIM: wim: bad magic"},
	}}
	p, _ := NewPolicy(cfg.WithCatalog(snap).WithImages(snap))
	w := strings.Join(p.RuleWarnings(), "\n")
	for _, want := range []string{
		`no entry "iso-isos-cut-iso" at the moment (the store holds isos/cut.iso, but it cannot boot: unreadable ISO: iso: short read)`,
		`no entry "pe-bad-3" at the moment (the store holds bad.wim, but it cannot boot: unreadable WIM: wim: bad magic)`,
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	d := p.Decide(Client{MAC: mac("52:54:00:00:02:01"), Firmware: FirmwareBIOS}, netip.MustParseAddr("10.0.0.1"))
	if !strings.Contains(d.Reason, "isos/cut.iso, but it cannot boot: unreadable ISO") {
		t.Errorf("DHCP reason: %s", d.Reason)
	}
	if autoEntryFor("bad.wim", "pe-bad-x-3") || !autoEntryFor("bad.wim", "pe-bad-12") || autoEntryFor("bad.wim", "pe-bad-") {
		t.Error("autoEntryFor matches another WIM's entries")
	}
}
