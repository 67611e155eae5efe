package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// WinPEImage shapes one image of a WinPE-shaped test WIM. No Microsoft boot binaries exist
// here: each boot file holds recognisable test bytes (or the Files given), at the paths where
// a Windows ADK boot.wim keeps them.
type WinPEImage struct {
	Name string // XML NAME (default "Microsoft Windows PE (amd64)")
	// InstallationType is WINDOWS/INSTALLATIONTYPE; "" means WindowsPE.
	InstallationType string
	// Omit lists boot file paths (inside the image) to leave out, to shape broken images.
	Omit []string
	// Files adds or replaces files: path inside the image -> content.
	Files map[string][]byte
}

// WinPEBootPaths are the boot files a test WinPE image holds by default.
var WinPEBootPaths = []string{
	"Windows/Boot/PXE/pxeboot.n12",
	"Windows/Boot/PXE/pxeboot.com",
	"Windows/Boot/PXE/bootmgr.exe",
	"Windows/Boot/PXE/wdsnbp.com",
	"Windows/Boot/EFI/bootmgfw.efi",
	"Windows/Boot/EFI/boot.stl",
	"Windows/Boot/EFI_EX/bootmgfw_EX.efi",
	"Windows/Boot/DVD/PCAT/BCD",
	"Windows/Boot/DVD/PCAT/boot.sdi",
	"Windows/Boot/DVD/EFI/BCD",
	"Windows/Boot/DVD/EFI/boot.sdi",
	"Windows/Boot/Fonts/segmono_boot.ttf",
	"Windows/Boot/Fonts/wgl4_boot.ttf",
	"Windows/System32/startnet.cmd",
	"Windows/System32/winpeshl.ini",
}

// WinPEContent is the default test content of a boot file: its path repeated to a size that
// differs per file (a few KiB, boot.sdi larger so that TFTP needs many blocks).
func WinPEContent(image int, p string) []byte {
	line := fmt.Sprintf("pxewim test file %s (image %d)\n", p, image)
	n := 3000 + 97*len(p)
	if strings.HasSuffix(p, ".sdi") {
		n = 200_000
	}
	return []byte(strings.Repeat(line, n/len(line)+1)[:n])
}

// BuildWinPE writes a WIM at dst with one image per spec, captured and appended with
// wimlib-imagex using the given extra capture flags (e.g. "--compress=LZMS", "--solid").
// Every image gets WINDOWS/ARCH=9 and its installation type as XML image properties.
func BuildWinPE(t testing.TB, dst string, images []WinPEImage, flags ...string) {
	t.Helper()
	if _, err := exec.LookPath("wimlib-imagex"); err != nil {
		t.Skip("wimlib-imagex not found: install wimtools (./test.sh does)")
	}
	for i, spec := range images {
		dir := t.TempDir()
		omit := map[string]bool{}
		for _, p := range spec.Omit {
			omit[p] = true
		}
		files := map[string][]byte{}
		for _, p := range WinPEBootPaths {
			if !omit[p] {
				files[p] = WinPEContent(i+1, p)
			}
		}
		for p, b := range spec.Files {
			files[p] = b
		}
		for p, b := range files {
			fp := filepath.Join(dir, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fp, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		name := spec.Name
		if name == "" {
			name = "Microsoft Windows PE (amd64)"
		}
		itype := spec.InstallationType
		if itype == "" {
			itype = "WindowsPE"
		}
		cmd := "capture"
		if i > 0 {
			cmd = "append"
		}
		args := append([]string{cmd, dir, dst, name}, flags...)
		args = append(args, "--image-property", "WINDOWS/ARCH=9", "--image-property", "WINDOWS/INSTALLATIONTYPE="+itype)
		if i > 0 {
			args = filterCaptureOnly(args)
		}
		if out, err := exec.Command("wimlib-imagex", args...).CombinedOutput(); err != nil {
			t.Fatalf("wimlib-imagex %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// filterCaptureOnly drops flags "append" refuses (the compression type is the WIM's).
func filterCaptureOnly(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "--compress") || strings.HasPrefix(a, "--chunk-size") || strings.HasPrefix(a, "--solid-") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// WimExtract returns the bytes of path inside image index of the WIM at src, as
// wimlib-imagex extract gives them.
func WimExtract(t testing.TB, src string, index int, path string) []byte {
	t.Helper()
	dir := t.TempDir()
	args := []string{"extract", src, fmt.Sprint(index), "/" + path, "--dest-dir=" + dir, "--no-acls"}
	if out, err := exec.Command("wimlib-imagex", args...).CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.Base(path)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
