package e2e

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestWimbootUEFIStandIn: WinPE through iPXE + wimboot on UEFI, checked on the client's side.
// OVMF's own UEFI HTTP Boot client gets snponly.efi from pxewim (HTTP Boot, PXE options off:
// ~12 s a VM against ~17-25 s through OVMF PXE and TFTP, same iPXE afterwards; the PXE first
// stage is covered by TestWinPEIPXEChainsNativeOVMF), a rule per MAC sends that iPXE to one
// winpe entry, and pxewim's wimboot script runs the store's tools/wimboot, which here is the
// UEFI stand-in for wimboot.efi (testenv.BuildWimbootEFIStandIn, built from C at test time).
// The stand-in finds the initrds iPXE downloaded the way wimboot.efi does (the virtual
// EFI_SIMPLE_FILE_SYSTEM_PROTOCOL on its loaded image's DeviceHandle, root directory, open
// by name), reads each one fully and prints name, size and SHA-1, and its LoadOptions.
//
// For every variant the test compares what the stand-in read with what must arrive:
// bootmgfw.efi (or bootmgfw_EX.efi's bytes under uefi_bootmgr: ex), BCD, boot.sdi and
// boot.stl as wimlib-imagex extracts them from the source image, and boot.wim as curl fetches
// it from pxewim inside the lab (checked by wimlib-imagex verify, readable by wimboot: no LZMS,
// no solid resources, 32 KiB chunks), whose image that wimboot would boot (index=N from the
// command line, else the header's boot index) is the entry's image, with its fonts (which
// wimboot reads from the WIM itself) and any injected files.
//
// One lab and one pxewim serve every variant; the VMs run one after another.
func TestWimbootUEFIStandIn(t *testing.T) {
	testenv.RequireOVMF(t)
	testenv.RequireFiles(t, "ipxe", filepath.Join(testenv.IPXEDir, "snponly.efi"))
	testenv.RequireTools(t, "curl")
	standin := testenv.WimbootEFIStandIn(t) // skips without gcc or gnu-efi
	const startnet = "wpeinit\r\necho pxewim e2e injected\r\n"
	type variant struct {
		entry, title string
		yaml         string // entry lines after "winpe:" (image, index, ...)
		src          string // source WIM in the store
		index        int    // the image of src that must boot
		bootmgr      string // path in that image whose bytes must arrive as bootmgfw.efi
		inject       map[string]string
		noSTL        bool // the image has no boot.stl: none may reach the client
		asIs         bool // boot.wim must be the source file itself
		exported     bool // boot.wim must be a synthesised WIM holding only that image
	}
	const (
		classic = "Windows/Boot/EFI/bootmgfw.efi"
		ex      = "Windows/Boot/EFI_EX/bootmgfw_EX.efi"
	)
	variants := []variant{
		// Boot index 0 (captured without --boot): served as it is, so index=1 must tell
		// wimboot which image to use. uefi_bootmgr: ex: bootmgfw_EX.efi's bytes must arrive
		// as bootmgfw.efi (the other variants check the classic one).
		{entry: "lzx", title: "WinPE LZX, 2023 CA boot manager", src: "lzx.wim", index: 1, bootmgr: ex,
			yaml: "image: lzx.wim\n      uefi_bootmgr: ex", asIs: true},
		{entry: "lzms", title: "WinPE LZMS solid, transcoded", src: "lzms.wim", index: 1, bootmgr: classic,
			yaml: "image: lzms.wim\n      transcode: uncompressed", noSTL: true},
		// LZX with 128 KiB chunks (wimboot: "no bootmgr.exe"), served as XPRESS at 32 KiB.
		{entry: "xpress", title: "WinPE LZX 128K chunks, transcoded to XPRESS", src: "lzx128k.wim", index: 1, bootmgr: classic,
			yaml: "image: lzx128k.wim\n      transcode: xpress"},
		{entry: "inject", title: "WinPE LZX injected", src: "lzx.wim", index: 1, bootmgr: classic,
			yaml:   "image: lzx.wim\n      inject:\n        - { path: Windows/System32/startnet.cmd, content: " + strconv.Quote(startnet) + " }",
			inject: map[string]string{"Windows/System32/startnet.cmd": startnet}},
		// setup.wim's boot index is 2: image 1 is served as a WIM of its own.
		{entry: "export", title: "WinPE image 1 of 2, exported", src: "setup.wim", index: 1, bootmgr: classic,
			yaml: "image: setup.wim\n      index: 1", exported: true},
		// Image 2 is the boot index: the two-image WIM goes out as it is.
		{entry: "multi", title: "WinPE image 2 of 2, the boot index", src: "setup.wim", index: 2, bootmgr: classic,
			yaml: "image: setup.wim\n      index: 2", asIs: true},
	}
	macOf := func(i int) string { return fmt.Sprintf("52:54:00:77:91:%02x", 0x10+i) }

	var store string
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.91", "wimboot-uefi", func(lab *testenv.Lab, s string) string {
		var b strings.Builder
		b.WriteString(winpeBaseConfig(lab, s) + "winpe:\n  wimboot: tools/wimboot\nentries:\n  - name: shell\n    ipxe: |\n      shell\n")
		for _, v := range variants {
			fmt.Fprintf(&b, "  - name: %s\n    title: %q\n    winpe:\n      %s\n", v.entry, v.title, v.yaml)
		}
		b.WriteString("rules:\n")
		for i, v := range variants {
			// ipxe: true: the firmware's own client gets iPXE (snponly.efi), not the native loader.
			fmt.Fprintf(&b, "  - match: { mac: %q, ipxe: true }\n    entry: %s\n", macOf(i), v.entry)
		}
		return b.String()
	}, func(s string) {
		store = s
		testenv.BuildWinPE(t, filepath.Join(s, "lzx.wim"), []testenv.WinPEImage{{Name: "WinPE LZX e2e"}}, "--compress=LZX")
		testenv.BuildWinPE(t, filepath.Join(s, "lzms.wim"), []testenv.WinPEImage{{Name: "WinPE LZMS e2e",
			Omit: []string{"Windows/Boot/EFI/boot.stl"}}}, "--compress=LZMS", "--solid")
		testenv.BuildWinPE(t, filepath.Join(s, "lzx128k.wim"), []testenv.WinPEImage{{Name: "WinPE LZX 128K e2e"}}, "--compress=LZX", "--chunk-size=131072")
		testenv.BuildWinPE(t, filepath.Join(s, "setup.wim"), []testenv.WinPEImage{
			{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"}}, "--compress=LZX", "--boot")
		if err := os.MkdirAll(filepath.Join(s, "tools"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s, "tools", "wimboot"), standin, 0o644); err != nil {
			t.Fatal(err)
		}
	})

	type run struct {
		res    *testenv.VMResult
		err    error
		served string // boot.wim as curl fetched it from pxewim
		url    string // the path the client fetched boot.wim from
		curl   error
	}
	runs := make([]run, len(variants))
	start := time.Now()
	for i, v := range variants {
		vm := testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(),
			Name: "uefi-" + v.entry, MAC: macOf(i), Dir: dir, FwCfg: testenv.HTTPBootOnly(),
			FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed")}
		runs[i].res, runs[i].err = testenv.RunVM(context.Background(), lab.Srv, vm, testenv.EFIStandInDone, vmTimeout)
		if r := runs[i].res; r != nil {
			t.Logf("%s: stand-in done %.1fs after QEMU started (QEMU wall %.1fs)", v.entry, r.TimeToMarker.Seconds(), r.Wall.Seconds())
		}
		// Fetch boot.wim again at the URL the client used, while pxewim still runs.
		runs[i].served = filepath.Join(dir, v.entry+"-served-boot.wim")
		runs[i].curl = fmt.Errorf("the client requested no boot.wim")
		for _, rec := range filterLog(readLog(t, d.logPath), "http request", func(rec logRecord) bool {
			st, _ := rec.num("status")
			return st == 200 && strings.EqualFold(rec.str("mac"), macOf(i)) && strings.HasSuffix(rec.str("path"), "/boot.wim")
		}) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_, runs[i].curl = lab.Srv.Exec(ctx, "curl", "-sSf", "-o", runs[i].served, fmt.Sprintf("http://%s%s", lab.SrvIP, rec.str("path")))
			cancel()
			runs[i].url = rec.str("path")
			break
		}
	}
	t.Logf("%d VMs in %.1fs", len(variants), time.Since(start).Seconds())
	stopCapture(t, capture)
	recs := d.stop(t)

	standinSum := sha1.Sum(standin)
	for i, v := range variants {
		t.Run(v.entry, func(t *testing.T) {
			r := runs[i]
			if r.err != nil {
				t.Fatalf("%v\n\npxewim log (last 40 lines):\n%s\nsite dnsmasq log:\n%s", r.err, dumpLog(recs, 40), testenv.Tail(site.Log(), 10))
			}
			if !strings.Contains(r.res.Serial, "pxewim: booting "+v.title) {
				t.Errorf("console lacks the entry's \"booting %s\" line", v.title)
			}
			rep, err := testenv.ParseEFIStandIn(r.res.Serial)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Done || len(rep.Errors) > 0 {
				t.Fatalf("stand-in did not read every file (errors %q):\n%s", rep.Errors, testenv.Tail(r.res.Serial, 30))
			}
			for _, f := range rep.Files {
				t.Logf("stand-in read %-12s %9d bytes  sha1 %s", f.Name, f.Size, f.SHA1)
			}
			t.Logf("stand-in LoadOptions: %q", rep.Cmdline)
			if r.curl != nil {
				t.Fatalf("curl boot.wim from pxewim: %v", r.curl)
			}
			src := filepath.Join(store, v.src)
			want := map[string][]byte{
				"bootmgfw.efi": testenv.WimExtract(t, src, v.index, v.bootmgr),
				"BCD":          testenv.WimExtract(t, src, v.index, "Windows/Boot/DVD/EFI/BCD"),
				"boot.sdi":     testenv.WimExtract(t, src, v.index, "Windows/Boot/DVD/EFI/boot.sdi"),
			}
			if !v.noSTL {
				want["boot.stl"] = testenv.WimExtract(t, src, v.index, "Windows/Boot/EFI/boot.stl")
			}
			served, err := os.ReadFile(r.served)
			if err != nil {
				t.Fatal(err)
			}
			want["boot.wim"] = served
			for name, b := range want {
				sum := sha1.Sum(b)
				got, ok := rep.ByName(name)
				switch {
				case !ok:
					t.Errorf("%s: not among the files iPXE exposed to the stand-in", name)
				case got.Size != int64(len(b)) || got.SHA1 != hex.EncodeToString(sum[:]):
					t.Errorf("%s: the stand-in read %d bytes with SHA-1 %s; want %d bytes, %x", name, got.Size, got.SHA1, len(b), sum)
				}
			}
			if v.bootmgr == ex {
				classicBytes := testenv.WimExtract(t, src, v.index, classic)
				if got, _ := rep.ByName("bootmgfw.efi"); got.SHA1 == fmt.Sprintf("%x", sha1.Sum(classicBytes)) {
					t.Errorf("uefi_bootmgr: ex handed the classic bootmgfw.efi")
				}
			}
			// Besides those, wimboot sees only itself (iPXE lists every image it holds).
			for _, f := range rep.Files {
				if _, ok := want[f.Name]; ok {
					continue
				}
				if strings.EqualFold(f.Name, "wimboot") && f.SHA1 == hex.EncodeToString(standinSum[:]) {
					continue
				}
				t.Errorf("unexpected file %q (%d bytes) on the volume wimboot reads", f.Name, f.Size)
			}
			checkServedWIM(t, r.served, rep.Cmdline, src, v.index, v.inject)
			if orig, err := os.ReadFile(src); err != nil {
				t.Fatal(err)
			} else if v.asIs && string(served) != string(orig) {
				t.Errorf("boot.wim is not %s as it is", v.src)
			}
			if n := wimInfo(t, r.served)["Image Count"]; v.exported && n != "1" {
				t.Errorf("boot.wim holds %s images, want image %d of %s exported alone", n, v.index, v.src)
			}
			// The client's own download of boot.wim was complete (the same bytes curl got).
			var got bool
			for _, rec := range filterLog(recs, "http request", func(rec logRecord) bool {
				return strings.EqualFold(rec.str("mac"), macOf(i)) && rec.str("path") == r.url
			}) {
				n, _ := rec.num("bytes")
				st, _ := rec.num("status")
				if st == 200 && n == int64(len(served)) {
					got = true
				}
			}
			if !got {
				t.Errorf("pxewim's log has no complete download of boot.wim by %s", macOf(i))
			}
		})
	}
	wantNoErrorLogs(t, recs)
}

// checkServedWIM checks the served boot.wim as wimboot would use it: it verifies, it is a
// WIM wimboot can decode (no LZMS, no solid resources, 32 KiB chunks), and the image wimboot
// picks (index=N in cmdline, else the header's boot index) is image index of src: same name,
// same fonts and boot files, plus the injected files.
func checkServedWIM(t *testing.T, served, cmdline, src string, index int, inject map[string]string) {
	t.Helper()
	if out, err := exec.Command("wimlib-imagex", "verify", served).CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex verify of the served boot.wim: %v\n%s", err, out)
	}
	hdr := wimInfo(t, served)
	t.Logf("served boot.wim: %s images, boot index %s, compression %s, chunk size %s, attributes %q",
		hdr["Image Count"], hdr["Boot Index"], hdr["Compression"], hdr["Chunk Size"], hdr["Attributes"])
	if c := hdr["Compression"]; c != "None" && c != "XPRESS" && c != "LZX" {
		t.Errorf("served boot.wim compression %q: wimboot reads only none, XPRESS and LZX", c)
	}
	if c := hdr["Compression"]; c != "None" && hdr["Chunk Size"] != "32768 bytes" {
		t.Errorf("served boot.wim chunk size %q: wimboot decodes 32 KiB chunks only", hdr["Chunk Size"])
	}
	if strings.Contains(hdr["Attributes"], "Solid") {
		t.Errorf("served boot.wim has solid resources (%q): wimboot cannot read them", hdr["Attributes"])
	}
	pick, err := wimbootIndex(cmdline)
	if err != nil {
		t.Fatalf("wimboot would stop: %v", err)
	}
	if pick == 0 {
		pick, _ = strconv.Atoi(hdr["Boot Index"])
	}
	count, _ := strconv.Atoi(hdr["Image Count"])
	if pick < 1 || pick > count {
		t.Fatalf("wimboot would boot image %d of %d (command line %q, boot index %s): no such image",
			pick, count, cmdline, hdr["Boot Index"])
	}
	if got, want := wimInfo(t, served, strconv.Itoa(pick))["Name"], wimInfo(t, src, strconv.Itoa(index))["Name"]; got != want {
		t.Errorf("wimboot would boot image %d of the served WIM, %q; want %q", pick, got, want)
	}
	for _, p := range []string{"Windows/Boot/Fonts/segmono_boot.ttf", "Windows/Boot/Fonts/wgl4_boot.ttf",
		"Windows/Boot/EFI/bootmgfw.efi", "Windows/Boot/DVD/EFI/BCD"} {
		if string(testenv.WimExtract(t, served, pick, p)) != string(testenv.WimExtract(t, src, index, p)) {
			t.Errorf("%s in image %d of the served WIM differs from the source image's", p, pick)
		}
	}
	for p, content := range inject {
		if got := string(testenv.WimExtract(t, served, pick, p)); got != content {
			t.Errorf("injected %s: the served WIM holds %q, want %q", p, got, content)
		}
	}
}

// wimbootIndex parses a command line as wimboot 2.9.0 does (src/cmdline.c process_cmdline:
// whitespace-separated KEY or KEY=VALUE words; an unknown first word is the program name and
// ignored, any other unknown word stops wimboot; index needs a number, strtoul base 0) and
// returns index=N, 0 when absent.
func wimbootIndex(cmdline string) (int, error) {
	index := 0
	for i, w := range strings.Fields(cmdline) {
		key, value, hasValue := strings.Cut(w, "=")
		switch key {
		case "rawbcd", "rawwim", "gui", "linear", "quiet", "pause", "initrdfile":
		case "index":
			n, err := strconv.ParseUint(value, 0, 32)
			if !hasValue || value == "" || err != nil || strings.Contains(value, "_") {
				return 0, fmt.Errorf("command line %q: invalid index %q", cmdline, value)
			}
			index = int(n)
		default:
			if i > 0 {
				return 0, fmt.Errorf("command line %q: unrecognised argument %q", cmdline, w)
			}
		}
	}
	return index, nil
}

// wimInfo returns the "Key: value" lines of `wimlib-imagex info WIM [IMAGE]` (the first
// occurrence of each key: the header, or the named image's section).
func wimInfo(t *testing.T, wim string, image ...string) map[string]string {
	t.Helper()
	out, err := exec.Command("wimlib-imagex", append([]string{"info", wim}, image...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("wimlib-imagex info %s %v: %v\n%s", wim, image, err, out)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	if len(image) > 0 { // skip the header up to the image's own section
		for sc.Scan() && !strings.HasPrefix(sc.Text(), "Information for Image") {
		}
	}
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if k = strings.TrimSpace(k); m[k] == "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestWimbootIndex(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    int
		bad     bool
	}{
		{"", 0, false},
		{"wimboot", 0, false},
		{"wimboot index=2", 2, false},
		{"wimboot quiet index=0x3 gui", 3, false},
		{"index=4", 4, false}, // the first word may be a real argument too
		{"wimboot index=", 0, true},
		{"wimboot index", 0, true},
		{"wimboot index=2x", 0, true},
		{"wimboot index=1_0", 0, true},
		{"wimboot bootmgr=x", 0, true},
	} {
		got, err := wimbootIndex(tc.cmdline)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("wimbootIndex(%q) = %d, %v; want %d, error %v", tc.cmdline, got, err, tc.want, tc.bad)
		}
	}
}
