package testenv

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestWriteCpioWithGNUCpio lists our archive with GNU cpio, a reader nobody here wrote.
func TestWriteCpioWithGNUCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("needs cpio: apt-get install cpio")
	}
	var buf bytes.Buffer
	err := WriteCpio(&buf, []CpioEntry{
		{Name: "dev", Mode: CpioDir | 0o755},
		{Name: "dev/console", Mode: CpioCharDev | 0o600, RdevMajor: 5, RdevMinor: 1},
		{Name: "init", Mode: CpioRegular | 0o755, Data: []byte("#!/bin/sh\necho hi\n")},
		{Name: "odd", Mode: CpioRegular | 0o644, Data: []byte("abc")}, // exercises data padding
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t rejected the archive: %v\n%s", err, out)
	}
	listing := string(out)
	for _, want := range []string{"drwxr-xr-x", "crw-------", "5,   1", "dev/console", "-rwxr-xr-x", "18 ", "init", "odd"} {
		if !strings.Contains(listing, want) {
			t.Errorf("cpio listing lacks %q:\n%s", want, listing)
		}
	}
}

func TestWriteCpioRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "/abs"} {
		if err := WriteCpio(&bytes.Buffer{}, []CpioEntry{{Name: name, Mode: CpioRegular}}); err == nil {
			t.Errorf("WriteCpio accepted member name %q", name)
		}
	}
}

func TestBuildInitramfsHasInitAndConsole(t *testing.T) {
	RequireFiles(t, "busybox-static", busyboxPath)
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("needs cpio: apt-get install cpio")
	}
	gz, err := BuildInitramfs(Marker)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "gzip -dc | cpio -it --quiet")
	cmd.Stdin = bytes.NewReader(gz)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gzip|cpio rejected the initramfs: %v\n%s", err, out)
	}
	for _, want := range []string{"init", "bin/busybox", "dev/console", "dev/null"} {
		if !strings.Contains("\n"+string(out), "\n"+want+"\n") {
			t.Errorf("initramfs lacks %s:\n%s", want, out)
		}
	}
}
