package main

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// releaseLDFlags and releaseFlags are the release build's flags; the Makefile and the .deb
// build (packaging/deb.go) must use the same ones (checked below).
const releaseLDFlags = "-s -w -buildid= -X main.version="

var releaseFlags = []string{"-trimpath", "-buildvcs=false"}

// TestReproducibleBuild builds pxewim twice with the release flags, the second time with an
// empty build cache (every package recompiled), and wants identical bytes; the binary must be
// static and print the stamped version.
func TestReproducibleBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("reproducible build: compiles everything twice; skipped with -short")
	}
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("go command not found")
		}
	}
	dir := t.TempDir()
	build := func(out string, env ...string) []byte {
		t.Helper()
		args := append([]string{"build"}, releaseFlags...)
		args = append(args, "-ldflags", releaseLDFlags+"repro-test", "-o", out, ".")
		cmd := exec.Command(goBin, args...)
		cmd.Env = append(os.Environ(), append([]string{"CGO_ENABLED=0"}, env...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := build(filepath.Join(dir, "a"))
	b := build(filepath.Join(dir, "b"), "GOCACHE="+filepath.Join(dir, "cache"))
	if !bytes.Equal(a, b) {
		t.Fatalf("builds differ: %x (%d bytes) vs %x (%d bytes)", sha256.Sum256(a), len(a), sha256.Sum256(b), len(b))
	}
	t.Logf("two builds, sha256 %x, %d bytes", sha256.Sum256(a), len(a))

	f, err := elf.Open(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	out, err := exec.Command(filepath.Join(dir, "a"), "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "pxewim repro-test" {
		t.Errorf("--version: %q, %v", out, err)
	}
}

// TestPackagingFiles keeps the Makefile, the .deb build and the systemd unit in line with the
// release flags and the hardening the README promises. (The package itself is built, inspected,
// installed and purged by packaging's TestDebPackage and TestDebInstall.)
func TestPackagingFiles(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	checks := map[string][]string{
		"Makefile":         {"-trimpath -buildvcs=false", "-s -w -buildid= -X main.version=", "CGO_ENABLED := 0"},
		"packaging/deb.go": {`"-trimpath", "-buildvcs=false"`, `"-s -w -buildid= -X main.version="+version`, `"CGO_ENABLED=0"`},
		"configs/pxewim.service": {"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only", "PrivateTmp=yes",
			"CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW", "SystemCallFilter=@system-service", "PrivateMounts=yes",
			"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET", "MemoryDenyWriteExecute=yes"},
	}
	for file, wants := range checks {
		s := read(file)
		for _, w := range wants {
			if !strings.Contains(s, w) {
				t.Errorf("%s lacks %q", file, w)
			}
		}
	}
}
