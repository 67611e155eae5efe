package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/internal/testenv"
)

// TestWinPEFromISOWimbootSeaBIOS: a Windows-Setup-shaped ISO (UDF + Joliet by genisoimage,
// sources/boot.wim inside, no bare WIM in the store) is catalogued by itself, and a rule that
// names its automatic entry (pe-win-iso-sources-boot-2) boots it on SeaBIOS + iPXE through
// the wimboot stand-in: bootmgr.exe, BCD and boot.sdi must arrive with the bytes of image 2 of
// the WIM inside the ISO, and boot.wim as that WIM itself (image 2 is its boot index).
func TestWinPEFromISOWimbootSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:75:0a"
	testenv.RequireTools(t, "genisoimage")
	entry := boot.AutoEntryName("win.iso/sources/boot.wim", 2)
	wimPath := filepath.Join(t.TempDir(), "boot.wim") // a copy of the WIM inside the ISO
	var wimboot []byte
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.75", "winpe-iso", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`winpe:
  auto: true
  wimboot: tools/wimboot
entries:
  - name: shell
    ipxe: |
      shell
rules:
  - match: { mac: %q }
    entry: %s
`, mac, entry)
	}, func(store string) {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "sources"), 0o755)
		testenv.BuildWinPE(t, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{
			{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"}}, "--compress=LZX", "--boot")
		b, err := os.ReadFile(filepath.Join(root, "sources", "boot.wim"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(wimPath, b, 0o644)
		if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "win.iso"), root).CombinedOutput(); err != nil {
			t.Fatalf("genisoimage: %v\n%s", err, out)
		}
		wimboot = storeStandIn(t, store)
	})
	vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "winpe-iso", MAC: mac, Dir: dir,
		FailOn: wimbootBIOSFailOn()}
	rep := runStandInVM(t, lab, d, site, vm)
	checkStandInPE(t, lab, d, mac, rep, wantPE{src: wimPath, index: 2, asIs: true})
	recs := stopLab(t, capture, d)
	serial, _ := os.ReadFile(vm.SerialPath())
	if !strings.Contains(testenv.CleanConsole(serial), "pxewim: booting Microsoft Windows Setup (amd64)") {
		t.Errorf("console lacks the automatic entry's booting line")
	}
	wantHTTPSent(t, recs, "/tools/wimboot", int64(len(wimboot)), 1)
	wantNoErrorLogs(t, recs)
}
