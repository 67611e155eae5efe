package boot_test

import (
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
	p, _ := boot.NewPolicy(cfg.WithCatalog(snap))
	p.AttachStore(store)
	menu := func(c boot.Client) string {
		tree, err := p.Tree(c, store)
		if err != nil {
			t.Fatal(err)
		}
		url := func(r boot.Ref) (string, error) { return "http://10.0.0.1/files/" + r.String(), nil }
		s, err := p.ScriptForTree(c, boot.ScriptMenu, tree, url, func(err error) { t.Error(err) })
		if err != nil {
			t.Fatal(err)
		}
		if probs, _ := boot.CheckIPXEScript(s, []string{"http://10.0.0.1/files/"}); len(probs) > 0 {
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
