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
// wimboot: bootmgr, BCD, boot.sdi and boot.wim all come out of the WIM inside the ISO, read
// in place, and leave pxewim completely.
func TestWinPEFromISOWimbootSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:75:0a"
	testenv.RequireTools(t, "genisoimage")
	entry := boot.AutoEntryName("win.iso/sources/boot.wim", 2)
	wimPath := filepath.Join(t.TempDir(), "boot.wim") // a copy of the WIM inside the ISO
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
		os.MkdirAll(filepath.Join(store, "tools"), 0o755)
		if err := os.WriteFile(filepath.Join(store, "tools", "wimboot"), wimbootStandIn, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "winpe-iso", MAC: mac, Dir: dir,
		FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed")}
	res, recs, _ := bootVM(t, lab, d, capture, site, vm, "/boot.wim... ok", "winpe-iso")
	if !strings.Contains(res.Serial, "pxewim: booting Microsoft Windows Setup (amd64)") {
		t.Errorf("console lacks the automatic entry's booting line")
	}
	extract := func(p string) int64 { return int64(len(testenv.WimExtract(t, wimPath, 2, p))) }
	wimSize := fileSize(t, wimPath)
	want := []struct {
		what, suffix string
		size         int64
	}{
		{"wimboot", "/tools/wimboot", int64(len(wimbootStandIn))},
		{"bootmgr.exe", "/Windows/Boot/PXE/bootmgr.exe", extract("Windows/Boot/PXE/bootmgr.exe")},
		{"BCD", "/BCD", extract("Windows/Boot/DVD/PCAT/BCD")},
		{"boot.sdi", "/boot.sdi", extract("Windows/Boot/DVD/PCAT/boot.sdi")},
		{"boot.wim", "/boot.wim", wimSize}, // image 2 is the boot index: served as it is in the ISO
	}
	reqs := filterLog(recs, "http request", func(r logRecord) bool { return r.str("method") == "GET" })
	for _, w := range want {
		var ok bool
		for _, r := range reqs {
			n, _ := r.num("bytes")
			st, _ := r.num("status")
			if !strings.HasSuffix(r.str("path"), w.suffix) || st != 200 {
				continue
			}
			if n != w.size {
				t.Errorf("%s: %s sent %d bytes, want %d", w.what, r.str("path"), n, w.size)
				continue
			}
			ok = true
			t.Logf("HTTP %s: %s -> %d bytes", w.what, r.str("path"), n)
		}
		if !ok {
			t.Errorf("no complete download of %s (*%s); HTTP log:\n%s", w.what, w.suffix, dumpLog(reqs, 20))
		}
	}
	wantNoErrorLogs(t, recs)
}
