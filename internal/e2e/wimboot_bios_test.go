package e2e

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// The SeaBIOS WinPE tests boot iPXE into testenv.WimbootStandIn: a bzImage that iPXE loads
// as it loads wimboot and that consumes the initrds the way wimboot does (the cpio stream iPXE
// builds from the initrds' command lines, walked with wimboot's rules), printing each file's
// name, size and SHA-1 and its command line. The tests compare that with what must arrive:
// bootmgr.exe, BCD and boot.sdi as `wimlib-imagex extract` gives them from the source WIM, and
// boot.wim as the daemon serves it (fetched again with curl), which `wimlib-imagex verify`
// accepts, in a form wimboot decodes, and whose image (index=N, else its boot index) holds
// exactly the source image's files plus the injected ones.

// wantPE is what one WinPE entry must hand wimboot.
type wantPE struct {
	src    string            // the store WIM (or a copy of the WIM inside an ISO)
	index  int               // the image of src the entry boots
	inject map[string][]byte // files the served image holds instead of, or besides, the source's
	asIs   bool              // boot.wim is the source file itself (nothing to export or transcode)
	args   []string          // command-line words besides index= (wimboot_args)
}

// wimbootBIOSFailOn ends a SeaBIOS wimboot VM at once when iPXE or the stand-in gives up.
func wimbootBIOSFailOn() []string {
	return append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed",
		testenv.StandInBadMagic, testenv.StandInFatal, "Truncated CPIO")
}

// runStandInVM boots vm to the stand-in's final line while the daemon keeps running, and
// returns the stand-in's report. On failure it shows the console, pxewim's log and the site
// dnsmasq's log.
func runStandInVM(t *testing.T, lab *testenv.Lab, d *daemon, site *testenv.Dnsmasq, vm testenv.VMSpec) *testenv.StandInReport {
	t.Helper()
	res, err := testenv.RunVM(context.Background(), lab.Srv, vm, testenv.StandInDone, vmTimeout)
	if res != nil {
		if res.MarkerLine != "" {
			t.Logf("%s: stand-in done after %.1fs (QEMU wall %.1fs)", vm.Name, res.TimeToMarker.Seconds(), res.Wall.Seconds())
		}
	}
	if err != nil {
		t.Fatalf("%v\n\npxewim log (last 30 lines):\n%s\nsite dnsmasq log:\n%s", err, dumpLog(readLog(t, d.logPath), 30), testenv.Tail(site.Log(), 10))
	}
	rep, err := testenv.ParseStandInReport(res.Serial)
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, testenv.Tail(res.Serial, 30))
	}
	for _, f := range rep.Files {
		t.Logf("%s: wimboot stand-in got %-12q %9d bytes sha1 %s", vm.Name, f.Name, f.Size, f.SHA1)
	}
	t.Logf("%s: command line %q", vm.Name, rep.Cmdline)
	return rep
}

// servedBootWIM finds the complete boot.wim download of mac in pxewim's log (waiting briefly
// for the log line, which the server writes as the response ends) and fetches the same path
// again with curl from inside the server namespace. It returns the bytes and the URL path.
func servedBootWIM(t *testing.T, lab *testenv.Lab, d *daemon, mac string) ([]byte, string) {
	t.Helper()
	var path string
	deadline := time.Now().Add(10 * time.Second)
	for path == "" {
		for _, r := range filterLog(readLog(t, d.logPath), "http request", func(r logRecord) bool {
			st, _ := r.num("status")
			return r.str("method") == "GET" && st == 200 && strings.EqualFold(r.str("mac"), mac) &&
				strings.HasSuffix(r.str("path"), "/boot.wim")
		}) {
			path = r.str("path")
		}
		if path == "" {
			if time.Now().After(deadline) {
				t.Fatalf("pxewim logged no complete boot.wim download for %s", mac)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	out := filepath.Join(t.TempDir(), "served-boot.wim")
	// Fetched as the client (its MAC in a /mac/ prefix), since what a client is served can
	// depend on who it is (per-client Windows Setup variants).
	url := "http://" + lab.SrvIP.String() + path
	if !strings.HasPrefix(path, "/mac/") {
		url = "http://" + lab.SrvIP.String() + "/mac/" + strings.ReplaceAll(mac, ":", "-") + path
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if msg, err := lab.Srv.Exec(ctx, "curl", "-sSf", "-o", out, url); err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b, path
}

func sha1Hex(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }

// checkStandInPE compares what the stand-in received with what the entry must hand wimboot.
func checkStandInPE(t *testing.T, lab *testenv.Lab, d *daemon, mac string, rep *testenv.StandInReport, w wantPE) {
	t.Helper()
	if !rep.Done || len(rep.Failures) > 0 {
		t.Fatalf("the stand-in did not get through the initrds: %+v", rep)
	}
	var names []string
	for _, f := range rep.Files {
		names = append(names, f.Name)
	}
	if got, want := strings.Join(names, " "), "bootmgr.exe BCD boot.sdi boot.wim"; got != want {
		t.Errorf("wimboot got files %q, want %q", got, want)
	}
	for _, x := range []struct{ name, path string }{
		{"bootmgr.exe", "Windows/Boot/PXE/bootmgr.exe"},
		{"BCD", "Windows/Boot/DVD/PCAT/BCD"},
		{"boot.sdi", "Windows/Boot/DVD/PCAT/boot.sdi"},
	} {
		want, ok := w.inject[x.path]
		if !ok {
			want = testenv.WimExtract(t, w.src, w.index, x.path)
		}
		got, ok := rep.ByName(x.name)
		if !ok {
			continue // reported above
		}
		if got.Size != int64(len(want)) || got.SHA1 != sha1Hex(want) {
			t.Errorf("%s: wimboot got %d bytes sha1 %s, want %d bytes sha1 %s (%s of image %d)",
				x.name, got.Size, got.SHA1, len(want), sha1Hex(want), x.path, w.index)
		}
	}

	// boot.wim: what arrived is what the daemon serves, and that is a WIM wimboot can boot.
	served, path := servedBootWIM(t, lab, d, mac)
	if got, ok := rep.ByName("boot.wim"); ok && (got.Size != int64(len(served)) || got.SHA1 != sha1Hex(served)) {
		t.Errorf("boot.wim: wimboot got %d bytes sha1 %s; %s serves %d bytes sha1 %s",
			got.Size, got.SHA1, path, len(served), sha1Hex(served))
	}
	if w.asIs {
		src, err := os.ReadFile(w.src)
		if err != nil {
			t.Fatal(err)
		}
		if sha1Hex(src) != sha1Hex(served) {
			t.Errorf("boot.wim: served %d bytes sha1 %s, want the source WIM as it is (%d bytes sha1 %s)",
				len(served), sha1Hex(served), len(src), sha1Hex(src))
		}
	}
	dir := t.TempDir()
	wimPath := filepath.Join(dir, "boot.wim")
	if err := os.WriteFile(wimPath, served, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("wimlib-imagex", "verify", wimPath).CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex verify of the served boot.wim: %v\n%s", err, out)
	}
	info := wimHeaderFields(t, wimPath)
	t.Logf("served boot.wim: %d bytes, compression %s, chunk size %s, version %s, %s images, boot index %s",
		len(served), info["Compression"], info["Chunk Size"], info["Version"], info["Image Count"], info["Boot Index"])
	// wimboot decodes only LZX and XPRESS at 32 KiB chunks, and no solid resources.
	switch c := info["Compression"]; {
	case c == "None":
	case (c == "LZX" || c == "XPRESS") && info["Chunk Size"] == "32768 bytes":
	default:
		t.Errorf("served boot.wim: compression %s, chunk size %s: wimboot decodes LZX or XPRESS at 32 KiB only", c, info["Chunk Size"])
	}
	if v := info["Version"]; v != "68864" {
		t.Errorf("served boot.wim: version %s (solid WIMs are 3584): wimboot reads 68864 (0x10d00)", v)
	}

	// The command line: index=N when the served WIM's boot index is not the image, plus args.
	var idx int
	var rest []string
	for _, word := range strings.Fields(rep.Cmdline) {
		if v, ok := strings.CutPrefix(word, "index="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || idx != 0 {
				t.Errorf("command line %q: bad or repeated index=", rep.Cmdline)
			}
			idx = n
			continue
		}
		rest = append(rest, word)
	}
	if strings.Join(rest, " ") != strings.Join(w.args, " ") {
		t.Errorf("command line %q: words %q besides index=, want %q", rep.Cmdline, rest, w.args)
	}
	boots := idx
	if boots == 0 {
		boots, _ = strconv.Atoi(info["Boot Index"])
	}
	count, _ := strconv.Atoi(info["Image Count"])
	if boots < 1 || boots > count {
		t.Fatalf("wimboot would boot no image: command line %q, served WIM's boot index %s, %d images", rep.Cmdline, info["Boot Index"], count)
	}
	// That image holds the source image's files with the injected ones in place.
	want := applyImage(t, w.src, w.index)
	for p, b := range w.inject {
		want[p] = b
	}
	got := applyImage(t, wimPath, boots)
	for p, b := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("image %d of the served boot.wim lacks %s", boots, p)
		} else if sha1Hex(g) != sha1Hex(b) {
			t.Errorf("image %d of the served boot.wim: %s is %d bytes sha1 %s, want %d bytes sha1 %s", boots, p, len(g), sha1Hex(g), len(b), sha1Hex(b))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("image %d of the served boot.wim has an unexpected %s", boots, p)
		}
	}
	t.Logf("served boot.wim image %d: the %d expected files (%d injected)", boots, len(want), len(w.inject))
}

var wimHeaderLine = regexp.MustCompile(`^([A-Za-z ]+):\s+(.*)$`)

// wimHeaderFields returns the "WIM Information" fields of `wimlib-imagex info`.
func wimHeaderFields(t *testing.T, path string) map[string]string {
	t.Helper()
	out, err := exec.Command("wimlib-imagex", "info", path).CombinedOutput()
	if err != nil {
		t.Fatalf("wimlib-imagex info %s: %v\n%s", path, err, out)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Available Images") {
			break
		}
		if sm := wimHeaderLine.FindStringSubmatch(strings.TrimSpace(line)); sm != nil {
			m[sm[1]] = sm[2]
		}
	}
	return m
}

// applyImage applies image index of the WIM at src with wimlib-imagex and returns its regular
// files (slash paths) and their contents.
func applyImage(t *testing.T, src string, index int) map[string][]byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "apply")
	if out, err := exec.Command("wimlib-imagex", "apply", src, strconv.Itoa(index), dir, "--no-acls").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex apply %s %d: %v\n%s", src, index, err, out)
	}
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return files
}

// storeStandIn writes the wimboot stand-in where the config's winpe.wimboot points.
func storeStandIn(t *testing.T, store string) []byte {
	t.Helper()
	b := testenv.WimbootStandIn(t)
	if err := os.MkdirAll(filepath.Join(store, "tools"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "tools", "wimboot"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// peVariant is one WinPE store shape booted through wimboot on SeaBIOS.
type peVariant struct {
	name  string                         // entry name and VM name
	file  string                         // the store WIM
	build func(t *testing.T, dst string) // writes the WIM
	entry string                         // YAML lines under the entry's "winpe:" (besides image:)
	want  wantPE                         // src is filled in from file
}

// TestWinPEVariantsWimbootSeaBIOS boots every kind of WinPE store image on SeaBIOS + iPXE
// through the wimboot stand-in, one VM per variant against one daemon (a rule per MAC), and
// checks what the stand-in received: LZX and XPRESS WIMs served as they are (with a wimboot
// argument), LZX 128K and XPRESS 64K chunks transcoded (wimboot reads 32K only), an injected
// startnet.cmd, LZMS and solid WIMs transcoded, an LZMS WIM transcoded to XPRESS, image 2 of a
// multi-image WIM exported, and a WIM whose boot index is 0 (served as it is: index=1 must be
// on wimboot's command line, or wimboot boots no image).
func TestWinPEVariantsWimbootSeaBIOS(t *testing.T) {
	startnet := []byte("wpeinit\r\necho pxewim injected\r\n")
	pe := []testenv.WinPEImage{{Name: "Microsoft Windows PE (amd64)"}}
	two := []testenv.WinPEImage{{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows PE (amd64) lab",
		Files: map[string][]byte{"Windows/System32/lab.txt": []byte("image 2 only\r\n")}}}
	build := func(images []testenv.WinPEImage, flags ...string) func(*testing.T, string) {
		return func(t *testing.T, dst string) { testenv.BuildWinPE(t, dst, images, flags...) }
	}
	variants := []peVariant{
		{name: "lzx", file: "lzx.wim", build: build(pe, "--compress=LZX", "--boot"),
			want: wantPE{index: 1, asIs: true}},
		{name: "xpress", file: "xpress.wim", build: build(pe, "--compress=XPRESS", "--boot"), entry: "      wimboot_args: [gui]\n",
			want: wantPE{index: 1, asIs: true, args: []string{"gui"}}},
		{name: "lzx-128k", file: "lzx128k.wim", build: build(pe, "--compress=LZX", "--chunk-size=128K", "--boot"),
			want: wantPE{index: 1}},
		{name: "xpress-64k", file: "xpress64k.wim", build: build(pe, "--compress=XPRESS", "--chunk-size=64K", "--boot"),
			want: wantPE{index: 1}},
		{name: "injected", file: "lzx.wim", entry: "      inject:\n        - { path: Windows/System32/startnet.cmd, content: \"wpeinit\\r\\necho pxewim injected\\r\\n\" }\n",
			want: wantPE{index: 1, inject: map[string][]byte{"Windows/System32/startnet.cmd": startnet}}},
		{name: "lzms", file: "lzms.wim", build: build(pe, "--compress=LZMS", "--boot"),
			want: wantPE{index: 1}},
		{name: "lzms-xpress", file: "lzms.wim", entry: "      transcode: xpress\n",
			want: wantPE{index: 1}},
		{name: "solid", file: "solid.wim", build: build(pe, "--solid", "--boot"),
			want: wantPE{index: 1}},
		{name: "exported", file: "two.wim", build: build(two, "--compress=LZX"), entry: "      index: 2\n",
			want: wantPE{index: 2}},
		{name: "bootindex0", file: "noboot.wim", build: build(pe, "--compress=LZX"),
			want: wantPE{index: 1, asIs: true}},
	}
	const macFmt = "52:54:00:77:79:%02x"
	var wimboot []byte
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.79", "winpe-variants", func(lab *testenv.Lab, store string) string {
		var b strings.Builder
		b.WriteString(winpeBaseConfig(lab, store))
		b.WriteString("winpe:\n  auto: false\n  wimboot: tools/wimboot\nentries:\n  - name: shell\n    ipxe: |\n      shell\n")
		for _, v := range variants {
			fmt.Fprintf(&b, "  - name: %s\n    title: WinPE %s\n    winpe:\n      image: %s\n%s", v.name, v.name, v.file, v.entry)
		}
		b.WriteString("rules:\n")
		for i, v := range variants {
			fmt.Fprintf(&b, "  - match: { mac: %q }\n    entry: %s\n", fmt.Sprintf(macFmt, i+1), v.name)
		}
		return b.String()
	}, func(store string) {
		for _, v := range variants {
			if v.build != nil {
				v.build(t, filepath.Join(store, v.file))
			}
		}
		// two.wim: boot index 1, so that image 2 must be exported (or named by index=).
		if out, err := exec.Command("wimlib-imagex", "info", filepath.Join(store, "two.wim"), "1", "--boot").CombinedOutput(); err != nil {
			t.Fatalf("wimlib-imagex info --boot: %v\n%s", err, out)
		}
		wimboot = storeStandIn(t, store)
	})
	var ran int
	defer func() {
		recs := stopLab(t, capture, d)
		wantNoErrorLogs(t, recs)
		wantHTTPSent(t, recs, "/tools/wimboot", int64(len(wimboot)), ran)
	}()
	store := filepath.Join(dir, "store")
	for i, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ran++
			mac := fmt.Sprintf(macFmt, i+1)
			vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "pe-" + v.name, MAC: mac, Dir: dir,
				FailOn: wimbootBIOSFailOn()}
			rep := runStandInVM(t, lab, d, site, vm)
			w := v.want
			w.src = filepath.Join(store, v.file)
			checkStandInPE(t, lab, d, mac, rep, w)
		})
	}
}

// stopLab stops the capture and the daemon of a lab that ran several VMs, logs the DHCP and
// TFTP exchanges captured, and returns pxewim's log.
func stopLab(t *testing.T, capture *testenv.Capture, d *daemon) []logRecord {
	t.Helper()
	pkts := stopCapture(t, capture)
	recs := d.stop(t)
	if pkts != nil {
		t.Logf("capture: %d DHCP messages, %d TFTP transfers", len(testenv.DHCPMessages(pkts)), len(testenv.TFTPTransfers(pkts)))
	}
	return recs
}

// wantHTTPSent: pxewim's log holds n complete GETs of a path ending in suffix, of size bytes.
func wantHTTPSent(t *testing.T, recs []logRecord, suffix string, size int64, n int) {
	t.Helper()
	var got int
	for _, r := range filterLog(recs, "http request", func(r logRecord) bool {
		return r.str("method") == "GET" && strings.HasSuffix(r.str("path"), suffix)
	}) {
		b, _ := r.num("bytes")
		st, _ := r.num("status")
		if st != 200 || b != size {
			t.Errorf("%s: status %d, %d bytes, want 200 and %d", r.str("path"), st, b, size)
			continue
		}
		got++
	}
	if got != n {
		t.Errorf("%d complete downloads of *%s, want %d", got, suffix, n)
	}
}
