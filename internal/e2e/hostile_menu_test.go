package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestHostileMenuSeaBIOS: a real iPXE (SeaBIOS + iPXE ROM, then undionly.kpxe) runs a menu
// built from a store whose names try to add commands: WIM images named "PE && chain URL && echo"
// and the like, ISO files named with ';', '${x}', '#', quotes and '&', an unreadable ISO with
// such a name, a menu title and an entry title doing the same. Every URL they name points at a
// listener of the test on the lab server's address, another port, inside the test's own
// network namespace. iPXE builds the whole menu (every item line runs), times out into the
// default entry, whose title is hostile and whose ISO has a hostile file name, and boots the
// ISO's boot sector through sanboot. The listener must receive nothing, and pxewim only the
// requests it meant: the script and the ISO's ranges (and undionly.kpxe over TFTP).
func TestHostileMenuSeaBIOS(t *testing.T) {
	const (
		mac      = "52:54:00:77:96:0a"
		subnet   = "10.77.96"
		evilPort = 8099
		ranMark  = "PXEWIM-HOSTILE-SCRIPT-RAN"
	)
	testenv.RequireTools(t, "nasm", "genisoimage")
	srv := subnet + ".1" // the lab's server address (testenv.Lab.SrvIP)
	evil := fmt.Sprintf("http://%s:%d", srv, evilPort)
	// The ISO the default entry boots, and a copy that becomes an automatic entry.
	defaultISO := "my iso's & stuff ; chain ${x} #1.iso"
	autoISO := "auto && chain ${filename} || shell #2.iso"
	brokenISO := "broken ; chain ${${a}} #3.iso"
	peNames := []string{
		"PE && chain " + evil + "/and.ipxe && echo",
		"PE ; chain " + evil + "/semi.ipxe #c ${net0/mac}",
	}
	var isoSize int64
	lab, d, capture, site, dir := winpeLabStart(t, subnet, "hostile-menu", func(lab *testenv.Lab, store string) string {
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
winpe: {auto: true, wimboot: wimboot}
menu:
  title: "Lab ; chain %s/title.ipxe && echo ${x}"
  timeout: 1s
entries:
  - name: rescue
    title: "Rescue && chain %s/cfg.ipxe && echo ${${a}} #"
    iso: { image: %q, method: sanboot }
`, store, lab.SrvIP, lab.SrvIP, lab.Bridge, testenv.IPXEDir, evil, evil, defaultISO)
	}, func(store string) {
		sector := buildBootSector(t, t.TempDir())
		writeBootISO(t, filepath.Join(store, defaultISO), sector)
		writeBootISO(t, filepath.Join(store, autoISO), sector)
		if err := os.WriteFile(filepath.Join(store, brokenISO), []byte(strings.Repeat("not an ISO ", 5000)), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(store, defaultISO))
		if err != nil {
			t.Fatal(err)
		}
		isoSize = fi.Size()
		var imgs []testenv.WinPEImage
		for _, n := range peNames {
			imgs = append(imgs, testenv.WinPEImage{Name: n})
		}
		os.MkdirAll(filepath.Join(store, "pe"), 0o755)
		testenv.BuildWinPE(t, filepath.Join(store, "pe", "hostile.wim"), imgs)
		os.WriteFile(filepath.Join(store, "wimboot"), []byte("stand-in: never fetched in this test"), 0o644)
	})
	// The listener every hostile URL names: any request to it is a failure; what it would
	// serve prints a marker the VM watch fails on.
	evilScript := filepath.Join(dir, "evil.ipxe")
	os.WriteFile(evilScript, []byte("#!ipxe\necho "+ranMark+"\nshell\n"), 0o644)
	files := map[string]string{}
	for _, p := range []string{"/and.ipxe", "/semi.ipxe", "/title.ipxe", "/cfg.ipxe", "/"} {
		files[p] = evilScript
	}
	listener := serveFiles(t, lab.Srv, fmt.Sprintf("%s:%d", srv, evilPort), files)

	vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "hostile-menu", MAC: mac, Dir: dir,
		Extra:  []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"},
		FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed", ranMark, "command not found")}
	start := time.Now()
	res, recs, _ := bootVM(t, lab, d, capture, site, vm, bootSectorMarker, "hostile-menu")
	t.Logf("hostile menu: boot sector marker %.1fs after QEMU started (run %.1fs): %s", res.TimeToMarker.Seconds(), time.Since(start).Seconds(), res.MarkerLine)

	listener.mu.Lock()
	reqs := append([]string(nil), listener.reqs...)
	listener.mu.Unlock()
	if len(reqs) > 0 {
		t.Errorf("the listener named by the store's names got %d requests: %q", len(reqs), reqs)
	}
	// The default entry ran: its (inert) title (iPXE wraps the console at 80 columns), then
	// sanboot of the hostile-named ISO.
	wantTitle := "pxewim: booting Rescue and chain " + evil + "/cfg.ipxe and echo {{a}}"
	if !strings.Contains(res.Serial, wantTitle) {
		t.Errorf("console lacks %q", wantTitle)
	}
	if !strings.Contains(res.MarkerLine, bootSectorMarker+" dl=80") {
		t.Errorf("boot sector did not start from iPXE's SAN drive 0x80: %q", res.MarkerLine)
	}
	// pxewim got only what it meant: the script, and the default ISO (by its real name).
	isoPaths := map[string]bool{"/files/" + defaultISO: true, "/files/" + url.PathEscape(defaultISO): true,
		(&url.URL{Path: "/files/" + defaultISO}).EscapedPath(): true}
	var isoBytes int64
	for _, r := range filterLog(recs, "http request", nil) {
		p := r.str("path")
		switch {
		case p == "/boot.ipxe":
		case isoPaths[p]:
			n, _ := r.num("bytes")
			isoBytes += n
		default:
			t.Errorf("pxewim got a request it did not mean: %s", r)
		}
	}
	if isoBytes == 0 || isoBytes > isoSize {
		t.Errorf("sanboot read %d bytes of the %d-byte ISO", isoBytes, isoSize)
	}
	for _, r := range filterLog(recs, "tftp: sent", nil) {
		if !strings.HasSuffix(r.str("path"), "undionly.kpxe") {
			t.Errorf("TFTP sent something else than iPXE: %s", r)
		}
	}
	// iPXE drew the menu: the names, made inert, are item texts on the console, and the
	// unreadable ISO is a disabled line saying why.
	for _, want := range []string{
		"  PE and chain " + evil + "/and.ipxe and echo (pe/hostile.wim:1, x",
		"  PE , chain " + evil + "/semi.ipxe _#c {net0/mac} (pe/hostile.wim",
		"  auto and chain {filename} or shell _#2.iso (ISO, sanboot)",
		"  broken , chain {{a}} _#3.iso cannot boot: unreadable ISO: ",
		"Lab , chain " + evil + "/title.ipxe and echo {x}",
	} {
		if !strings.Contains(res.Serial, want) {
			t.Errorf("the menu on the console lacks %q", want)
		}
	}
	if n := len(filterLog(recs, "http request", func(r logRecord) bool { return r.str("path") == "/boot.ipxe" })); n != 1 {
		t.Errorf("%d requests for /boot.ipxe, want 1", n)
	}
	wantNoErrorLogs(t, recs)
}
