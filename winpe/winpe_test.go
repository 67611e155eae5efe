package winpe_test

import (
	"bytes"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/bcd"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/wim/wimtest"
	"github.com/pxewim/pxewim/winpe"
)

const startnet = "wpeinit\r\necho pxewim injected\r\n"

const winpeConfig = `
winpe:
  wimboot: tools/wimboot
entries:
  - name: setup
    title: Windows Setup
    winpe: {image: setup.wim, wimboot_args: [gui, pause=quiet]}
  - name: pe1
    title: WinPE with injection
    winpe:
      image: setup.wim
      index: 1
      inject:
        - {path: Windows/System32/startnet.cmd, content: "wpeinit\r\necho pxewim injected\r\n"}
        - {path: Windows/System32/drivers/lab, file: drivers}
      tftp: {blocksize: 1468, windowsize: 8}
  - name: solid
    winpe: {image: solid.wim, bcd: generate}
rules:
  - {match: {mac: "52:54:00:00:00:01"}, entry: pe1}
  - {match: {mac: "52:54:00:00:00:02"}, entry: setup}
`

// winpeStore builds a store: setup.wim (PE + Setup, LZX, boot index 2), solid.wim (LZMS
// solid), a driver folder and a stand-in wimboot.
func winpeStore(t *testing.T) (string, *localstore.Store) {
	t.Helper()
	dir := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(dir, "setup.wim"), []testenv.WinPEImage{
		{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"},
	}, "--compress=LZX", "--boot")
	testenv.BuildWinPE(t, filepath.Join(dir, "solid.wim"), []testenv.WinPEImage{{Name: "PE solid"}}, "--solid")
	os.MkdirAll(filepath.Join(dir, "drivers", "net"), 0o755)
	os.WriteFile(filepath.Join(dir, "drivers", "net", "lab.inf"), []byte("[Version]\r\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "tools"), 0o755)
	os.WriteFile(filepath.Join(dir, "tools", "wimboot"), []byte("stand-in for wimboot"), 0o644)
	st, err := localstore.New(dir, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return dir, st
}

func winpePolicy(t *testing.T, store fs.FS) *bound {
	t.Helper()
	cfg, err := boot.ParseConfig("winpe.yaml", []byte(winpeConfig))
	if err != nil {
		t.Fatal(err)
	}
	return mustBind(t, cfg, store, nil)
}

func client(mac string, fw boot.Firmware, ipxe bool) boot.Client {
	m, _ := net.ParseMAC(mac)
	arch := uint16(0)
	if fw == boot.FirmwareEFI64 {
		arch = 7
	}
	return boot.Client{MAC: m, Firmware: fw, Arch: arch, IPXE: ipxe}
}

func readAll(t *testing.T, fsys fs.FS, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func TestWinPEScriptsGolden(t *testing.T) {
	_, store := winpeStore(t)
	p := winpePolicy(t, store)
	for _, tc := range []struct{ entry, golden string }{
		{"setup", "winpe-setup.ipxe"},
		{"pe1", "winpe-pe1.ipxe"},
		{"solid", "winpe-solid.ipxe"},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			c := client("52:54:00:00:00:09", boot.FirmwareBIOS, true)
			tree, err := p.Tree(c)
			if err != nil {
				t.Fatal(err)
			}
			// URLs name the tree path; each must open in the client's tree.
			url := func(r boot.Ref) (string, error) {
				f, err := tree.Open(r.String())
				if err != nil {
					return "", err
				}
				f.Close()
				return "http://10.0.0.1/files/" + r.String(), nil
			}
			got, err := p.Script(c, tc.entry+".ipxe", url, nil)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.golden)
			if os.Getenv("PXEWIM_UPDATE_GOLDEN") != "" {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (PXEWIM_UPDATE_GOLDEN=1 go test ./boot -run WinPEScriptsGolden)", err)
			}
			if got != string(want) {
				t.Errorf("script differs from %s:\n%s", golden, got)
			}
		})
	}
}

func TestWinPENativeBootFile(t *testing.T) {
	_, store := winpeStore(t)
	p := winpePolicy(t, store)
	for _, tc := range []struct {
		c    boot.Client
		want string
	}{
		{client("52:54:00:00:00:01", boot.FirmwareBIOS, false), `boot\pxeboot.n12`},
		{client("52:54:00:00:00:01", boot.FirmwareEFI64, false), `boot\bootmgfw.efi`},
		{client("52:54:00:00:00:02", boot.FirmwareEFI64, false), `boot\bootmgfw.efi`},
		{client("52:54:00:00:00:09", boot.FirmwareBIOS, false), "ipxe/undionly.kpxe"}, // no rule: iPXE first
	} {
		if got := p.Decide(tc.c, netip.MustParseAddr("10.0.0.1")).BootFile; got != tc.want {
			t.Errorf("%s %s: boot file %q, want %q", tc.c.MAC, tc.c.Firmware, got, tc.want)
		}
	}
}

// TestWinPENativeTree checks the per-client tree against wimlib-imagex: the exported and
// injected WIM verifies and holds the injected files, the media BCD and boot files are the
// image's bytes, and a tuned entry gets the generated BCD.
func TestWinPENativeTree(t *testing.T) {
	dir, store := winpeStore(t)
	p := winpePolicy(t, store)
	setup := filepath.Join(dir, "setup.wim")

	// Client 2 boots "setup" (index 2 = the header's boot index): the file goes out as it is.
	uefi, err := p.Tree(client("52:54:00:00:00:02", boot.FirmwareEFI64, false))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(setup)
	for name, want := range map[string][]byte{
		"Boot/BCD":                    testenv.WimExtract(t, setup, 2, "Windows/Boot/DVD/EFI/BCD"),
		"boot/bcd":                    testenv.WimExtract(t, setup, 2, "Windows/Boot/DVD/EFI/BCD"),
		"boot/bootmgfw.efi":           testenv.WimExtract(t, setup, 2, "Windows/Boot/EFI/bootmgfw.efi"),
		"Boot/boot.sdi":               testenv.WimExtract(t, setup, 2, "Windows/Boot/DVD/EFI/boot.sdi"),
		"Boot/Fonts/wgl4_boot.ttf":    testenv.WimExtract(t, setup, 2, "Windows/Boot/Fonts/wgl4_boot.ttf"),
		"EFI/Microsoft/Boot/boot.stl": testenv.WimExtract(t, setup, 2, "Windows/Boot/EFI/boot.stl"),
		"sources/boot.wim":            orig,
		"tools/wimboot":               []byte("stand-in for wimboot"), // the rest of the store shows through
	} {
		if got := readAll(t, uefi, name); !bytes.Equal(got, want) {
			t.Errorf("UEFI tree %s: %d bytes, want %d", name, len(got), len(want))
		}
	}

	// Client 1 boots "pe1": image 1 exported with injected files, generated BCD with TFTP tuning.
	bios, err := p.Tree(client("52:54:00:00:00:01", boot.FirmwareBIOS, false))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{
		"boot/pxeboot.n12": testenv.WimExtract(t, setup, 1, "Windows/Boot/PXE/pxeboot.n12"),
		"boot/bootmgr.exe": testenv.WimExtract(t, setup, 1, "Windows/Boot/PXE/bootmgr.exe"),
		"bootmgr.exe":      testenv.WimExtract(t, setup, 1, "Windows/Boot/PXE/bootmgr.exe"),
		"Boot/boot.sdi":    testenv.WimExtract(t, setup, 1, "Windows/Boot/DVD/PCAT/boot.sdi"),
	} {
		if got := readAll(t, bios, name); !bytes.Equal(got, want) {
			t.Errorf("BIOS tree %s: %d bytes, want %d", name, len(got), len(want))
		}
	}
	var gen bytes.Buffer
	if err := bcd.WriteRamdiskBCD(&gen, bcd.RamdiskBoot{Firmware: bcd.BIOS, WIMPath: `\sources\boot.wim`, SDIPath: `\Boot\boot.sdi`,
		TFTPBlockSize: 1468, TFTPWindowSize: 8, Description: "Windows PE (pxewim pe1)"}); err != nil {
		t.Fatal(err)
	}
	gotBCD := readAll(t, bios, "Boot/BCD")
	if !bytes.Equal(gotBCD, gen.Bytes()) {
		t.Errorf("pe1 BCD is not the generated ramdisk BCD")
	}
	checkBCDWithHivex(t, gotBCD, []string{"35000007", "35000008", `\sources\boot.wim`})

	wimFile := filepath.Join(t.TempDir(), "served.wim")
	os.WriteFile(wimFile, readAll(t, bios, "sources/boot.wim"), 0o644)
	wimtest.Wimlib(t, "verify", wimFile)
	if info := wimtest.Wimlib(t, "info", wimFile); !strings.Contains(info, "Image Count:    1") {
		t.Errorf("served WIM is not a single-image export:\n%s", info)
	}
	if got := testenv.WimExtract(t, wimFile, 1, "Windows/System32/startnet.cmd"); string(got) != startnet {
		t.Errorf("injected startnet.cmd = %q", got)
	}
	if got := testenv.WimExtract(t, wimFile, 1, "Windows/System32/drivers/lab/net/lab.inf"); string(got) != "[Version]\r\n" {
		t.Errorf("injected driver file = %q", got)
	}
	if got, want := testenv.WimExtract(t, wimFile, 1, "Windows/Boot/PXE/wdsnbp.com"), testenv.WimExtract(t, setup, 1, "Windows/Boot/PXE/wdsnbp.com"); !bytes.Equal(got, want) {
		t.Errorf("an original file changed in the export")
	}
}

// checkBCDWithHivex reads a BCD back with Debian's hivexregedit and looks for each string.
func checkBCDWithHivex(t *testing.T, hive []byte, want []string) {
	t.Helper()
	if _, err := exec.LookPath("hivexregedit"); err != nil {
		t.Log("hivexregedit missing (install libhivex-bin): BCD not read back")
		return
	}
	f := filepath.Join(t.TempDir(), "BCD")
	os.WriteFile(f, hive, 0o644)
	out, err := exec.Command("hivexregedit", "--export", f, `\`).CombinedOutput()
	if err != nil {
		t.Fatalf("hivexregedit: %v\n%s", err, out)
	}
	text := strings.ToLower(string(out))
	for _, w := range want {
		wl := strings.ToLower(w)
		// Strings in exports are hex(1) UTF-16 dumps: look for element keys by name only.
		if strings.HasPrefix(wl, `\`) {
			continue
		}
		if !strings.Contains(text, wl) {
			t.Errorf("hivexregedit export lacks %q", w)
		}
	}
}

func TestWinPEWithCatalogAndCheck(t *testing.T) {
	dir, store := winpeStore(t)
	testenv.BuildWinPE(t, filepath.Join(dir, "nouefi.wim"), []testenv.WinPEImage{
		{Name: "PE without UEFI", Omit: []string{"Windows/Boot/EFI/bootmgfw.efi"}},
	}, "--compress=XPRESS")
	cfg, err := boot.ParseConfig("c.yaml", []byte("winpe: {auto: true, wimboot: tools/wimboot}\nentries:\n  - name: setup\n    winpe: {image: setup.wim}\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := catalog.Scan(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	eff := cfg.WithCatalog(winpe.Facts(snap))
	var names []string
	for _, e := range eff.Entries {
		names = append(names, e.Name)
	}
	// setup.wim:2 is taken by the "setup" entry (its default index); image 1 and the others
	// get entries of their own.
	if got := strings.Join(names, " "); got != "setup pe-nouefi-1 pe-setup-1 pe-solid-1" {
		t.Fatalf("entries = %q", got)
	}
	e, _ := eff.Entry("pe-setup-1")
	if e.Title != "Microsoft Windows PE (amd64) (setup.wim:1, x86_64)" {
		t.Errorf("title %q", e.Title)
	}
	p := mustBind(t, eff, store, snap)
	menu, err := p.Script(client("52:54:00:00:00:09", boot.FirmwareBIOS, true), boot.ScriptMenu, func(r boot.Ref) (string, error) { return "u/" + r.String(), nil }, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"item pe-solid-1 PE solid (solid.wim:1, x86_64)", "initrd -n boot.wim u/winpe/pe-solid-1/boot.wim"} {
		if !strings.Contains(menu, w) {
			t.Errorf("menu lacks %q", w)
		}
	}
	// wimboot boots index=N, else the header's boot index: setup.wim's boot index is its image
	// 2 (no argument needed); nouefi.wim, captured without --boot, has boot index 0 and needs
	// index=1, or wimboot would boot no image at all.
	for _, w := range []string{":winpe_setup_bios\nkernel u/tools/wimboot || goto failed", ":winpe_pe-nouefi-1_bios\nkernel u/tools/wimboot index=1 || goto failed"} {
		w = strings.ReplaceAll(w, "\\n", "\n")

		if !strings.Contains(menu, w) {
			t.Errorf("menu lacks %q", w)
		}
	}
	findings := map[string]string{}
	for _, e := range eff.Entries {
		for _, f := range p.set.Check(e.Name) {
			findings[e.Name] += f.What + " => " + f.Fix + "\n"
		}
	}
	for name, want := range map[string]string{
		"pe-nouefi-1": "UEFI clients cannot boot it: the image has no bootmgr (Windows/Boot/EFI/bootmgfw.efi)",
		"pe-solid-1":  "transcoded to uncompressed",
		"pe-setup-1":  "image 1 exported",
	} {
		if !strings.Contains(findings[name], want) {
			t.Errorf("findings of %s lack %q:\n%s", name, want, findings[name])
		}
	}
	if findings["setup"] != "" {
		t.Errorf("setup has findings: %s", findings["setup"])
	}
}

func TestWinPEConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"entries:\n  - name: a\n    winpe: {index: 2}\n", "entries[0].winpe.image: required"},
		{"entries:\n  - name: a\n    winpe: {image: x.wim, index: 0}\n", "entries[0].winpe.index: want a whole number from 1 to 65535"},
		{"entries:\n  - name: a\n    winpe: {image: x.wim, path: pxe}\n", `"pxe": want one of auto, wimboot, native`},
		{"entries:\n  - name: a\n    winpe: {image: x.wim, bcd: maybe}\n", `"maybe": want one of auto, image, generate`},
		{"entries:\n  - name: a\n    winpe: {image: x.wim:1/a}\n", "want a file in the store (not inside a WIM)"},
		{"entries:\n  - name: a\n    winpe: {image: x.wim, tftp: {blocksize: 100}}\n", "tftp.blocksize: want a whole number from 512 to 65464"},
		{"entries:\n  - name: a\n    winpe:\n      image: x.wim\n      inject: [{path: a/b, file: f, content: c}]\n", "needs exactly one of file"},
		{"entries:\n  - name: a\n    winpe:\n      image: x.wim\n      inject: [{path: ../b, content: c}]\n", "want a path inside the image"},
		{"entries:\n  - name: a\n    winpe:\n      image: x.wim\n      inject: [{path: A/b, content: c}, {path: a/B, content: d}]\n", "injected twice"},
		{"winpe: {auto: yes please}\n", "winpe.auto: want true or false"},
		{"winpe: {transcode: lzx}\n", `winpe.transcode: "lzx": want one of uncompressed, xpress`},
		{"entries:\n  - name: a\n    winpe: {image: x.wim, transcode: zip}\n", `entries[0].winpe.transcode: "zip": want one of uncompressed, xpress`},
		{"entries:\n  - name: a\n    winpe: {image: x.wim, wimboot_args: [initrd=x]}\n", `wimboot_args[0]: "initrd=x": wimboot knows only gui`},
	} {
		_, err := boot.ParseConfig("c.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

var _ = io.EOF

// TestWinPEInjectedFileEdit: editing an injected store file rebuilds the served WIM once the
// next state binds the entry (the file is looked up when a state is bound and by Set.Stale,
// which the daemon asks once per catalog poll, not per request); the state already bound keeps
// serving the WIM it built.
func TestWinPEInjectedFileEdit(t *testing.T) {
	dir, store := winpeStore(t)
	os.WriteFile(filepath.Join(dir, "startnet.cmd"), []byte("one\r\n"), 0o644)
	cfg, err := boot.ParseConfig("c.yaml", []byte("entries:\n  - name: pe\n    winpe:\n      image: setup.wim\n      inject: [{path: Windows/System32/startnet.cmd, file: startnet.cmd}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := boot.NewPolicy(cfg)
	lib := winpe.NewLibrary(winpe.Options{})
	p := &bound{set: lib.Bind(pol, store, "store", nil)}
	served := func() []byte {
		tree, err := p.Tree(client("52:54:00:00:00:09", boot.FirmwareBIOS, true))
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "b.wim")
		os.WriteFile(f, readAll(t, tree, "winpe/pe/boot.wim"), 0o644)
		return testenv.WimExtract(t, f, 1, "Windows/System32/startnet.cmd")
	}
	if got := served(); string(got) != "one\r\n" {
		t.Fatalf("injected %q", got)
	}
	if p.set.Stale() {
		t.Fatal("Stale before any edit")
	}
	later := time.Now().Add(time.Minute)
	os.WriteFile(filepath.Join(dir, "startnet.cmd"), []byte("two\r\n"), 0o644) // same size
	os.Chtimes(filepath.Join(dir, "startnet.cmd"), later, later)
	if got := served(); string(got) != "one\r\n" {
		t.Fatalf("the bound state looked the injected file up again: it injects %q", got)
	}
	if !p.set.Stale() {
		t.Fatal("Stale does not see the edited injected file (the daemon would not rebuild)")
	}
	old := p.set
	p.set = lib.Bind(pol, store, "store", nil) // the next state (the daemon binds one when Stale)
	old.Retire()
	if got := served(); string(got) != "two\r\n" {
		t.Fatalf("after the edit the served WIM still injects %q", got)
	}
}
