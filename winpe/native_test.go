package winpe_test

import (
	"bytes"
	"encoding/hex"
	"github.com/pxewim/pxewim/winpe"
	"io/fs"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/localstore"
)

var server = netip.MustParseAddr("10.0.0.1")

// policyFor parses cfg and binds its policy to store.
func policyFor(t *testing.T, cfg string, store fs.FS) *bound {
	t.Helper()
	c, err := boot.ParseConfig("c.yaml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return mustBind(t, c, store, nil)
}

// treeURL is a URL func as the daemon builds it: the file must open in the client's tree.
func treeURL(t *testing.T, p *bound, c boot.Client, store *localstore.Store) (tree interface{}, url func(boot.Ref) (string, error)) {
	t.Helper()
	tr, err := p.Tree(c)
	if err != nil {
		t.Fatal(err)
	}
	return tr, func(r boot.Ref) (string, error) {
		f, err := tr.Open(r.String())
		if err != nil {
			return "", err
		}
		f.Close()
		return "http://10.0.0.1:8080/files/" + r.String(), nil
	}
}

// TestWinPEDecideBCDPath: a client booted natively is told its BCD in option 252; clients that
// get iPXE (no rule, or a wimboot entry) are not.
func TestWinPEDecideBCDPath(t *testing.T) {
	_, store := winpeStore(t)
	p := winpePolicy(t, store)
	for _, tc := range []struct {
		c        boot.Client
		file     string
		bcd      string
		wantWhat string
	}{
		{client("52:54:00:00:00:01", boot.FirmwareBIOS, false), `boot\pxeboot.n12`, `\Boot\BCD`, "BIOS native"},
		{client("52:54:00:00:00:01", boot.FirmwareEFI64, false), `boot\bootmgfw.efi`, `\Boot\BCD`, "UEFI native"},
		{client("52:54:00:00:00:01", boot.FirmwareBIOS, true), "http://10.0.0.1:8080/boot.ipxe?mac=52-54-00-00-00-01&platform=${platform}&arch=${buildarch}", "", "iPXE"},
		{client("52:54:00:00:00:09", boot.FirmwareEFI64, false), "ipxe/snponly.efi", "", "no rule"},
	} {
		d := p.Decide(tc.c, server)
		if d.BootFile != tc.file || d.BCDPath != tc.bcd {
			t.Errorf("%s: boot file %q, BCD %q; want %q, %q", tc.wantWhat, d.BootFile, d.BCDPath, tc.file, tc.bcd)
		}
	}
}

// TestWinPEUEFIBootmgr: uefi_bootmgr picks the UEFI boot manager for the native DHCP boot file
// and for wimboot's bootmgfw.efi, in images with and without bootmgfw_EX.efi; the file served
// under the native name is the image's own bytes.
func TestWinPEUEFIBootmgr(t *testing.T) {
	dir, _ := winpeStore(t)
	testenv.BuildWinPE(t, filepath.Join(dir, "noex.wim"), []testenv.WinPEImage{
		{Name: "PE without EX", Omit: []string{"Windows/Boot/EFI_EX/bootmgfw_EX.efi"}},
	}, "--compress=LZX")
	testenv.BuildWinPE(t, filepath.Join(dir, "exonly.wim"), []testenv.WinPEImage{
		{Name: "PE with EX only", Omit: []string{"Windows/Boot/EFI/bootmgfw.efi"}},
	}, "--compress=LZX")
	store, err := localstore.New(dir, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	const ex, classic = "Windows/Boot/EFI_EX/bootmgfw_EX.efi", "Windows/Boot/EFI/bootmgfw.efi"
	for _, tc := range []struct {
		name, image, mode string
		native            string // DHCP boot file of a stock UEFI client ("ipxe/..." = cannot boot natively)
		wimboot           string // image path in wimboot's bootmgfw.efi line ("" = UEFI cannot boot)
	}{
		{"default", "setup.wim", "", `boot\bootmgfw.efi`, classic},
		{"classic", "setup.wim", "classic", `boot\bootmgfw.efi`, classic},
		{"ex", "setup.wim", "ex", `boot\bootmgfw_EX.efi`, ex},
		// The stand-in bootmgfw_EX.efi is unsigned: auto keeps the classic one (see
		// TestWinPEUEFIBootmgrAutoSigned for a 2023-signed one).
		{"auto-unsigned-ex", "setup.wim", "auto", `boot\bootmgfw.efi`, classic},
		{"auto-without-ex", "noex.wim", "auto", `boot\bootmgfw.efi`, classic},
		{"ex-without-ex", "noex.wim", "ex", "ipxe/snponly.efi", ""},
		{"ex-only-ex", "exonly.wim", "ex", `boot\bootmgfw_EX.efi`, ex},
		{"classic-only-ex", "exonly.wim", "classic", "ipxe/snponly.efi", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := ""
			if tc.mode != "" {
				opt = ", uefi_bootmgr: " + tc.mode
			}
			p := policyFor(t, "winpe: {wimboot: tools/wimboot}\nentries:\n  - name: pe\n    winpe: {image: "+tc.image+", index: 1"+opt+"}\n"+
				"rules:\n  - {match: {mac: \"52:54:00:00:00:01\"}, entry: pe}\n", store)
			stock := client("52:54:00:00:00:01", boot.FirmwareEFI64, false)
			if got := p.Decide(stock, server).BootFile; got != tc.native {
				t.Errorf("native boot file %q, want %q", got, tc.native)
			}
			if strings.HasPrefix(tc.native, "boot") {
				tree, err := p.Tree(stock)
				if err != nil {
					t.Fatal(err)
				}
				got := readAll(t, tree, strings.ReplaceAll(tc.native, `\`, "/"))
				if want := testenv.WimExtract(t, filepath.Join(dir, tc.image), 1, tc.wimboot); !bytes.Equal(got, want) {
					t.Errorf("%s in the tree is not the image's %s", tc.native, tc.wimboot)
				}
			}
			ipxe := client("52:54:00:00:00:01", boot.FirmwareEFI64, true)
			if _, err := p.Tree(ipxe); err != nil {
				t.Fatal(err)
			}
			script, err := p.Script(ipxe, "pe.ipxe", func(r boot.Ref) (string, error) { return "u/" + r.String(), nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			uefi := script[strings.Index(script, ":winpe_pe_uefi"):]
			if tc.wimboot == "" {
				if !strings.Contains(uefi, "cannot boot on UEFI: the image has no bootmgr") {
					t.Errorf("UEFI part of the script does not say why it cannot boot:\n%s", uefi)
				}
				return
			}
			if want := "initrd -n bootmgfw.efi u/winpe/pe/image/" + tc.wimboot + " bootmgfw.efi || goto failed"; !strings.Contains(uefi, want) {
				t.Errorf("UEFI part lacks %q:\n%s", want, uefi)
			}
		})
	}
}

// TestWinPEUEFIBootmgrCheck: pxewim check says when ex is asked for and missing, and notes
// when auto keeps bootmgfw.efi because the image's bootmgfw_EX.efi is not 2023-signed.
func TestWinPEUEFIBootmgrCheck(t *testing.T) {
	dir, _ := winpeStore(t)
	testenv.BuildWinPE(t, filepath.Join(dir, "noex.wim"), []testenv.WinPEImage{
		{Omit: []string{"Windows/Boot/EFI_EX/bootmgfw_EX.efi"}},
	}, "--compress=XPRESS")
	store, err := localstore.New(dir, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg, err := boot.ParseConfig("c.yaml", []byte(`winpe: {wimboot: tools/wimboot, uefi_bootmgr: ex}
entries:
  - {name: a, winpe: {image: noex.wim}}
  - {name: b, winpe: {image: setup.wim, uefi_bootmgr: auto}}
  - {name: c, winpe: {image: setup.wim, index: 2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := mustBind(t, cfg, store, nil)
	for _, tc := range []struct{ entry, want string }{
		{"a", "UEFI clients cannot boot it: the image has no bootmgrex (Windows/Boot/EFI_EX/bootmgfw_EX.efi)"},
		{"b", "UEFI clients get Windows/Boot/EFI/bootmgfw.efi (uefi_bootmgr: auto): the image's bootmgfw_EX.efi is not signed by Windows UEFI CA 2023"},
	} {
		e, _ := cfg.Entry(tc.entry)
		var all []string
		for _, f := range p.set.Check(e.Name) {
			all = append(all, f.What)
		}
		if !strings.Contains(strings.Join(all, "\n"), tc.want) {
			t.Errorf("entry %s: findings lack %q:\n%s", tc.entry, tc.want, strings.Join(all, "\n"))
		}
	}
	// The top-level default reaches entries that set nothing.
	e, _ := cfg.Entry("c")
	if got := e.Boot.(*boot.WinPEBoot).UEFIBootmgr; got != boot.UEFIBootmgrEX {
		t.Errorf("entry c: uefi_bootmgr %q, want the winpe: default ex", got)
	}
}

// TestWinPEIPXEChainsNative: an iPXE client that a rule sends to a native-only entry gets a
// script that chains the native loader from its own tree over TFTP, with next-server, the
// filename and option 252 set for the loader; the menu (no rule) still explains why it
// cannot boot the entry.
func TestWinPEIPXEChainsNative(t *testing.T) {
	_, store := winpeStore(t)
	for _, tc := range []struct {
		name, listen, host, next string
	}{
		{"port-69", `tftp: ":69"`, "10.0.0.1", "10.0.0.1"},
		{"other-port", `tftp: "127.0.0.1:1069"`, "10.0.0.1:1069", "10.0.0.1"},
		{"tftp-advertise", `tftp: ":69", tftp_advertise: 192.0.2.7`, "192.0.2.7", "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policyFor(t, `listen: {http: ":8080", `+tc.listen+`}
entries:
  - {name: shell, ipxe: "shell\n"}
  - name: pe
    winpe: {image: setup.wim, index: 1, path: native, uefi_bootmgr: ex}
rules:
  - {match: {mac: "52:54:00:00:00:01"}, entry: pe}
`, store)
			for _, fc := range []struct {
				fw             boot.Firmware
				loader, native string
			}{
				{boot.FirmwareBIOS, "pxeboot.n12", `boot\pxeboot.n12`},
				{boot.FirmwareEFI64, "bootmgfw_EX.efi", `boot\bootmgfw_EX.efi`},
			} {
				c := client("52:54:00:00:00:01", fc.fw, true)
				_, url := treeURL(t, p, c, store)
				script, err := p.Script(c, boot.ScriptBoot, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{
					"echo pxewim: chaining " + fc.loader + " (native WinPE over TFTP)\nset netX/next-server " + tc.next + "\n",
					"chain tftp://" + tc.host + "/boot/" + fc.loader + " || goto failed\n",
				} {
					if !strings.Contains(script, want) {
						t.Errorf("%s: script lacks %q:\n%s", fc.fw, want, script)
					}
				}
				// The hex settings decode to what a native PXE boot would have given.
				got := map[string]string{}
				for _, m := range regexp.MustCompile(`set netX/(filename|252):hex ([0-9a-f:]+)`).FindAllStringSubmatch(script, -1) {
					b, err := hex.DecodeString(strings.ReplaceAll(m[2], ":", ""))
					if err != nil {
						t.Fatal(err)
					}
					got[m[1]] = string(b)
				}
				if got["filename"] != fc.native || got["252"] != `\Boot\BCD` {
					t.Errorf("%s: hex settings decode to %q", fc.fw, got)
				}
				// What the script chains is what a native PXE boot of the client gets.
				stock := c
				stock.IPXE = false
				if d := p.Decide(stock, server); d.BootFile != fc.native {
					t.Errorf("%s: native DHCP boot file %q, script chains %q", fc.fw, d.BootFile, fc.native)
				}
			}
			// Without a rule, the menu shows why the entry cannot boot from iPXE.
			c := client("52:54:00:00:00:09", boot.FirmwareBIOS, true)
			menu, err := p.Script(c, boot.ScriptMenu, func(r boot.Ref) (string, error) { return "u/" + r.String(), nil }, func(error) {})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(menu, "entry pe cannot boot: winpe path is native and no rule sends this client here") || strings.Contains(menu, "chain tftp") {
				t.Errorf("menu for a client without rule:\n%s", menu)
			}
		})
	}
	// No TFTP server: a clear message instead of a chain that cannot work.
	p := policyFor(t, "listen: {http: \":8080\", tftp: \"\"}\nentries:\n  - name: pe\n    winpe: {image: setup.wim, path: native}\nrules:\n  - {match: {mac: \"52:54:00:00:00:01\"}, entry: pe}\n", store)
	c := client("52:54:00:00:00:01", boot.FirmwareBIOS, true)
	_, url := treeURL(t, p, c, store)
	if _, err := p.Script(c, boot.ScriptBoot, url, nil); err == nil || !strings.Contains(err.Error(), "no TFTP server is configured (listen.tftp)") {
		t.Errorf("without TFTP: %v", err)
	}
}

// TestRulesNameAutoEntries: rules may name automatic entries (pe-FILE-INDEX); they resolve once
// the catalog holds the image, and while it does not, the rule is reported and its clients get
// the menu. Names of no possible entry stay config errors.
func TestRulesNameAutoEntries(t *testing.T) {
	dir, store := winpeStore(t)
	const cfgText = `winpe: {auto: true, wimboot: tools/wimboot}
entries:
  - {name: shell, ipxe: "shell\n"}
rules:
  - {match: {mac: "52:54:00:00:00:01"}, entry: pe-setup-1}
  - {match: {mac: "52:54:00:00:00:02"}, entry: pe-gone-1}
`
	cfg, err := boot.ParseConfig("c.yaml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := catalog.Scan(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := boot.AutoEntryName("setup.wim", 1); got != "pe-setup-1" {
		t.Fatalf("AutoEntryName = %q", got)
	}
	pol, err := boot.NewPolicy(cfg.WithCatalog(winpe.Facts(snap)))
	if err != nil {
		t.Fatal(err)
	}
	p := bindTo(t, pol, store, snap, winpe.Options{})
	if d := p.Decide(client("52:54:00:00:00:01", boot.FirmwareBIOS, false), server); d.BootFile != `boot\pxeboot.n12` || d.BCDPath != `\Boot\BCD` {
		t.Errorf("rule to the automatic entry: %+v", d)
	}
	ipxe := client("52:54:00:00:00:01", boot.FirmwareBIOS, true)
	script, err := p.Script(ipxe, boot.ScriptBoot, func(r boot.Ref) (string, error) { return "u/" + r.String(), nil }, nil)
	if err != nil || !strings.Contains(script, "# pxewim: entry pe-setup-1 for") || !strings.Contains(script, "kernel u/tools/wimboot") {
		t.Errorf("iPXE script for the rule: %v\n%s", err, script)
	}
	warn := p.RuleWarnings()
	if len(warn) != 1 || !strings.Contains(warn[0], `c.yaml:6: rules[1].entry: no entry "pe-gone-1" at the moment`) {
		t.Errorf("warnings = %q", warn)
	}
	// The iPXE script of such a client is the menu, and the caller hears why.
	var warned []string
	gone := client("52:54:00:00:00:02", boot.FirmwareBIOS, true)
	menu, err := p.Script(gone, boot.ScriptBoot, func(r boot.Ref) (string, error) { return "u/" + r.String(), nil }, func(err error) { warned = append(warned, err.Error()) })
	if err != nil || !strings.Contains(menu, "# pxewim: menu for") {
		t.Errorf("script for a rule to a missing automatic entry: %v\n%s", err, menu)
	}
	if len(warned) == 0 || !strings.Contains(warned[0], `rule on line 6 names entry "pe-gone-1", which does not exist now`) {
		t.Errorf("warnings: %q", warned)
	}
	d := p.Decide(client("52:54:00:00:00:02", boot.FirmwareBIOS, false), server)
	if d.BootFile != "ipxe/undionly.kpxe" || !strings.Contains(d.Reason, `names entry "pe-gone-1", which does not exist now`) {
		t.Errorf("rule to a missing automatic entry: %+v", d)
	}
	// Before the catalog has been read (no snapshot), every automatic name is missing.
	if w := mustNewPolicy(t, cfg).RuleWarnings(); len(w) != 2 {
		t.Errorf("without a catalog: %q", w)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"entries:\n  - {name: a, ipxe: x}\nrules:\n  - {match: {mac: \"*\"}, entry: pe-setup-1}\n",
			`c.yaml:4: rules[0].entry: no entry named "pe-setup-1", and winpe.auto is off`},
		{"entries:\n  - {name: a, ipxe: x}\nrules:\n  - {match: {mac: \"*\"}, entry: setup}\n",
			`c.yaml:4: rules[0].entry: no entry named "setup" (entries: a; automatic entries are named pe-FILE-INDEX`},
		{"images: {auto: false}\nentries:\n  - {name: a, ipxe: x}\nrules:\n  - {match: {mac: \"*\"}, entry: iso-tools-x-iso}\n",
			`c.yaml:5: rules[0].entry: no entry named "iso-tools-x-iso", and images.auto is off`},
		{"entries:\n  - name: a\n    winpe: {image: x.wim, uefi_bootmgr: new}\n",
			`c.yaml:3: entries[0].winpe.uefi_bootmgr: "new": want one of classic, ex, auto`},
		{"winpe: {uefi_bootmgr: 2023}\n", `c.yaml:1: winpe.uefi_bootmgr: "2023": want one of classic, ex, auto`},
	} {
		if _, err := boot.ParseConfig("c.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := boot.ParseConfig("c.yaml", []byte("entries:\n  - {name: a, ipxe: x}\nrules:\n  - {match: {mac: \"*\"}, entry: iso-tools-x-iso}\n")); err != nil {
		t.Errorf("rule naming an automatic ISO entry: %v", err)
	}
}

func mustNewPolicy(t *testing.T, cfg *boot.Config) *boot.Policy {
	t.Helper()
	p, err := boot.NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
