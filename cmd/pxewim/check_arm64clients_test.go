package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
)

// tinyPE writes a minimal PE header (no sections) for machine m.
func tinyPE(t *testing.T, path string, m uint16) {
	t.Helper()
	b := make([]byte, 512)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x44:], m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkARM64Lines runs checkARM64 on the state of a config and returns its problems, a line each.
func checkARM64Lines(t *testing.T, yaml string) string {
	t.Helper()
	cfg, err := boot.ParseConfig("c.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := boot.NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, pr := range checkARM64(&state{cfg: cfg, policy: p}) {
		lines = append(lines, pr.String())
	}
	return strings.Join(lines, "\n")
}

func TestCheckARM64(t *testing.T) {
	dir := t.TempDir()
	arm, x64 := filepath.Join(dir, "grubaa64.efi"), filepath.Join(dir, "grubx64.efi")
	tinyPE(t, arm, 0xaa64)
	tinyPE(t, x64, 0x8664)
	check := func(yaml string) string { t.Helper(); return checkARM64Lines(t, yaml) }
	if got := check("arm64: {loader: grub, grub: " + arm + "}\n"); got != "" {
		t.Errorf("an arm64 GRUB in full/off mode: %q, want no problem", got)
	}
	if got := check("arm64: off\n"); got != "" {
		t.Errorf("arm64 off: %q", got)
	}
	for yaml, want := range map[string]string{
		"arm64: {loader: grub, grub: " + x64 + "}\n":                                        "not arm64 (0xaa64)",
		"arm64: {loader: grub, grub: " + filepath.Join(dir, "missing") + "}\n":              "UEFI ARM64 clients get no loader",
		"dhcp: {mode: proxy, interfaces: [lo]}\narm64: {loader: grub, grub: " + arm + "}\n": "next-server",
	} {
		if got := check(yaml); !strings.Contains(got, want) {
			t.Errorf("%q: %q, want %q", yaml, got, want)
		}
	}
}

// TestCheckARM64HTTP: arm64.grub_http must be an arm64 EFI program with the http module built
// in; with secure_boot on for anyone, check says the site's GRUB is unsigned and which clients
// get no boot file.
func TestCheckARM64HTTP(t *testing.T) {
	dir := t.TempDir()
	arm, withHTTP, x64 := filepath.Join(dir, "grubaa64.efi"), filepath.Join(dir, "grubaa64-http.efi"), filepath.Join(dir, "x64.efi")
	tinyPE(t, arm, 0xaa64)
	tinyPE(t, withHTTP, 0xaa64)
	tinyPE(t, x64, 0x8664)
	f, err := os.OpenFile(withHTTP, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("opening path %s on host %s\x00net/http.c\x00")
	f.Close()
	check := func(yaml string) string { t.Helper(); return checkARM64Lines(t, yaml) }
	conf := func(httpGRUB string) string {
		return "arm64: {loader: grub, grub: " + arm + ", grub_http: " + httpGRUB + "}\n"
	}
	if got := check(conf(withHTTP)); got != "" {
		t.Errorf("an arm64 GRUB with http: %q, want no problem", got)
	}
	for yaml, want := range map[string]string{
		conf(arm):                           "has no http module built in",
		conf(x64):                           "not arm64 (0xaa64)",
		conf(filepath.Join(dir, "missing")): "UEFI ARM64 HTTP Boot clients get no loader",
		conf(withHTTP) + "secure_boot: {mode: shim}\n": "is not signed: UEFI ARM64 HTTP Boot clients whose secure_boot is not off",
		conf(withHTTP) + "rules:\n  - {match: {mac: \"52:54:00:*\"}, entry: x, secure_boot: shim}\nentries:\n  - {name: x, ipxe: \"shell\"}\n": "get no boot file",
	} {
		got := check(yaml)
		if !strings.Contains(got, want) {
			t.Errorf("%q: %q, want %q", yaml, got, want)
		}
		if !strings.Contains(got, "grub-mkimage -O arm64-efi") && !strings.Contains(want, "secure_boot") && !strings.Contains(want, "no boot file") {
			t.Errorf("%q: the fix does not give the build command: %q", yaml, got)
		}
	}
}
