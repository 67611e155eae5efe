package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitramfsReport: the SHA-1s the test initramfs's /init prints are compared with the files
// inside the initramfs; a wrong or missing one is an error naming the file.
func TestInitramfsReport(t *testing.T) {
	initrd, err := BuildInitramfs(Marker)
	if err != nil {
		t.Skipf("no test initramfs: %v", err)
	}
	sums, err := InitramfsSHA1s(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums["bin/busybox"]) != 40 || len(sums["init"]) != 40 {
		t.Fatalf("SHA-1s %v", sums)
	}
	a := &Assets{Initrd: filepath.Join(t.TempDir(), "initrd")}
	if err := os.WriteFile(a.Initrd, initrd, 0o644); err != nil {
		t.Fatal(err)
	}
	good := Marker + " uptime=1.00 sha1-busybox=" + sums["bin/busybox"] + " sha1-init=" + sums["init"] + " cmdline=[x]"
	if err := a.CheckInitramfsReport(good); err != nil {
		t.Errorf("good report: %v", err)
	}
	bad := strings.Replace(good, sums["init"], strings.Repeat("0", 40), 1)
	if err := a.CheckInitramfsReport(bad); err == nil || !strings.Contains(err.Error(), "/init has SHA-1 "+strings.Repeat("0", 40)) {
		t.Errorf("wrong init SHA-1: %v", err)
	}
	if err := a.CheckInitramfsReport(Marker + " uptime=1.00 cmdline=[x]"); err == nil || !strings.Contains(err.Error(), "no sha1-busybox=") {
		t.Errorf("missing SHA-1s: %v", err)
	}
	if _, err := InitramfsSHA1s(initrd[:len(initrd)/2]); err == nil {
		t.Errorf("a truncated initramfs parsed")
	}
}
