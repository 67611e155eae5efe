package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeISOWinPETree: a WinPE-shaped UDF ISO (genisoimage -udf, sources/boot.wim made by
// wimlib-imagex) in the store; pxewim serve hands out the ISO's files and files inside its
// WIM byte-exact to curl (whole and by range) and atftp, and a menu entry naming a file inside
// the ISO's WIM gets a URL that serves it.
func TestServeISOWinPETree(t *testing.T) {
	for _, tool := range []string{"genisoimage", "wimlib-imagex", "curl", "atftp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install genisoimage, wimtools, curl and atftp", tool)
		}
	}
	fx := newServeFixture(t, false)
	dir := fx.dir
	pe := filepath.Join(dir, "pe")
	bootmgr := bytes.Repeat([]byte("PXE bootmgr.exe stand-in "), 20000) // 500 kB, many LZX chunks
	bcd := []byte("regf BCD stand-in")
	os.MkdirAll(filepath.Join(pe, "Windows", "Boot", "PXE"), 0o755)
	os.WriteFile(filepath.Join(pe, "Windows", "Boot", "PXE", "bootmgr.exe"), bootmgr, 0o644)
	isoRoot := filepath.Join(dir, "isoroot")
	for _, d := range []string{"sources", "boot"} {
		os.MkdirAll(filepath.Join(isoRoot, d), 0o755)
	}
	os.WriteFile(filepath.Join(isoRoot, "boot", "bcd"), bcd, 0o644)
	if out, err := exec.Command("wimlib-imagex", "capture", pe, filepath.Join(isoRoot, "sources", "boot.wim"), "Microsoft Windows PE", "--compress=LZX").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex: %v\n%s", err, out)
	}
	if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(fx.store, "win.iso"), isoRoot).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	const inWIM = "win.iso/sources/boot.wim:1/Windows/Boot/PXE/bootmgr.exe"
	fx.writeConfig(t, "Menu A", `  - name: fromiso
    title: From the ISO
    linux:
      kernel: `+inWIM+`
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, tftpAddr, log, done := startServe(t, ctx, "--config", fx.config)

	curl := func(args ...string) []byte {
		out, err := exec.Command("curl", append([]string{"-sSfL", "--globoff"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v\nserve log:\n%s", args, err, log)
		}
		return out
	}
	if got := curl(base + "/files/" + inWIM); !bytes.Equal(got, bootmgr) {
		t.Errorf("HTTP %s: %d bytes, want %d", inWIM, len(got), len(bootmgr))
	}
	if got := curl("-r", "300000-300099", base+"/files/WIN.ISO/SOURCES/BOOT.WIM:1/windows/boot/pxe/bootmgr.exe"); !bytes.Equal(got, bootmgr[300000:300100]) {
		t.Errorf("HTTP range inside the ISO's WIM: %q", got)
	}
	if got := curl(base + "/files/win.iso/boot/bcd"); !bytes.Equal(got, bcd) {
		t.Errorf("HTTP win.iso/boot/bcd: %q", got)
	}
	menu := serveHTTPGet(t, base+"/boot.ipxe?mac=52-54-00-12-34-56")
	m := regexp.MustCompile(`(?m)^kernel (\S+)`).FindAllStringSubmatch(menu, -1)
	var served bool
	for _, k := range m {
		if got := curl(k[1]); bytes.Equal(got, bootmgr) {
			served = true
		}
	}
	if !served {
		t.Errorf("no kernel URL of the menu serves the file inside the ISO's WIM:\n%s", menu)
	}

	host, port, _ := net.SplitHostPort(tftpAddr)
	for name, want := range map[string][]byte{inWIM: bootmgr, `\win.iso\boot\BCD`: bcd} {
		out := filepath.Join(t.TempDir(), "got")
		cmd := exec.Command("atftp", "--option", "blksize 1428", "-g", "-r", name, "-l", out, host, port)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("atftp %s: %v\n%s\nserve log:\n%s", name, err, b, log)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
			t.Errorf("TFTP %s: %d bytes, want %d", name, len(got), len(want))
		}
	}
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("serve logged errors:\n%s", log)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
