package testenv

import (
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The UEFI stand-in for wimboot.efi: a small x86_64 EFI application (standin/efi/
// efi_standin.c) that finds the files iPXE hands it exactly as wimboot.efi does (iPXE
// installs a virtual EFI_SIMPLE_FILE_SYSTEM_PROTOCOL on the loaded image's DeviceHandle; wimboot
// src/efifile.c efi_extract() opens it, reads the root directory and opens each file by name),
// reads every file completely with SetPosition + Read, and prints each file's SHA-1, size and
// name, its LoadOptions (the command line: index=N) and a final marker on the console, which
// OVMF mirrors to the serial port. Then it powers the VM off.
//
// Why not a GRUB standalone image (as issue 11 first suggested): GRUB reads only disks, through
// EFI_BLOCK_IO_PROTOCOL (grub-core/disk/efi/efidisk.c); it has no driver for a file system that
// exists only as EFI_SIMPLE_FILE_SYSTEM_PROTOCOL, which is all iPXE's virtual volume is. In
// Debian 12's grub-efi-amd64-bin the SimpleFileSystem GUID occurs only in lsefi.mod (which
// prints protocol names), so GRUB could list the handle but never open a file of it.
//
// It is built at test time with gcc, ld and objcopy against Debian's gnu-efi (headers, crt0,
// linker script and libefi for Print); no binary is kept.
//
//go:embed standin/efi/efi_standin.c
var wimbootEFISource []byte

// Console lines of the UEFI stand-in (see standin/efi/efi_standin.c).
const (
	EFIStandInCmdline = "PXEWIM-EFI-CMDLINE "
	EFIStandInFileTag = "PXEWIM-EFI-FILE "
	EFIStandInError   = "PXEWIM-EFI-ERROR "
	// EFIStandInDone starts the last line the stand-in prints, before it powers off.
	EFIStandInDone = "PXEWIM-EFI-STANDIN-DONE "
)

// gnu-efi's files that the build uses (Debian package gnu-efi).
var gnuEFIFiles = []string{
	"/usr/include/efi/efi.h",
	"/usr/include/efi/x86_64/efibind.h",
	"/usr/lib/crt0-efi-x86_64.o",
	"/usr/lib/elf_x86_64_efi.lds",
	"/usr/lib/libefi.a",
	"/usr/lib/libgnuefi.a",
}

// RequireGnuEFI skips unless gcc, ld, objcopy and Debian's gnu-efi are installed.
func RequireGnuEFI(t testing.TB) {
	t.Helper()
	RequireTools(t, "gcc", "ld", "objcopy")
	RequireFiles(t, "gnu-efi", gnuEFIFiles...)
}

// BuildWimbootEFIStandIn compiles the stand-in in dir and returns the path of the EFI
// application (dir/wimboot.efi).
func BuildWimbootEFIStandIn(dir string) (string, error) {
	if err := os.WriteFile(filepath.Join(dir, "efi_standin.c"), wimbootEFISource, 0o644); err != nil {
		return "", fmt.Errorf("wimboot.efi stand-in: %w", err)
	}
	// The usual gnu-efi recipe: position-independent code with the MS calling convention for
	// firmware calls, linked as a shared object with gnu-efi's crt0 (which applies the ELF
	// relocations itself) and copied into a PE32+ EFI application (subsystem 10).
	steps := [][]string{
		{"gcc", "-c", "-O2", "-Wall", "-Wextra", "-Werror",
			"-I/usr/include/efi", "-I/usr/include/efi/x86_64", "-DGNU_EFI_USE_MS_ABI",
			"-fpic", "-fshort-wchar", "-ffreestanding", "-fno-stack-protector", "-fno-stack-check",
			"-fno-strict-aliasing", "-mno-red-zone", "-maccumulate-outgoing-args",
			"efi_standin.c", "-o", "efi_standin.o"},
		{"ld", "-nostdlib", "-znocombreloc", "-shared", "-Bsymbolic", "-T", "/usr/lib/elf_x86_64_efi.lds",
			"/usr/lib/crt0-efi-x86_64.o", "efi_standin.o", "-o", "efi_standin.so",
			"-L/usr/lib", "-lefi", "-lgnuefi"},
		{"objcopy", "-j", ".text", "-j", ".sdata", "-j", ".data", "-j", ".dynamic", "-j", ".dynsym",
			"-j", ".rel", "-j", ".rela", "-j", ".rel.*", "-j", ".rela.*", "-j", ".reloc",
			"--target", "efi-app-x86_64", "--subsystem=10", "efi_standin.so", "wimboot.efi"},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("wimboot.efi stand-in: %s: %w\n%s", strings.Join(s, " "), err, out)
		}
	}
	return filepath.Join(dir, "wimboot.efi"), nil
}

// WimbootEFIStandIn builds the stand-in in a temporary folder of t and returns its bytes, or
// skips t when gcc or gnu-efi is missing.
func WimbootEFIStandIn(t testing.TB) []byte {
	t.Helper()
	RequireGnuEFI(t)
	p, err := BuildWimbootEFIStandIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// EFIStandInFile is one file the stand-in read from the volume.
type EFIStandInFile struct {
	Name string // as the directory entry names it
	Size int64  // bytes read
	SHA1 string // hex, of the bytes read
}

// EFIStandInReport is what the stand-in printed.
type EFIStandInReport struct {
	Cmdline string           // LoadOptions as text (iPXE: "IMAGE-NAME ARGS...")
	Files   []EFIStandInFile // in directory order
	Errors  []string         // PXEWIM-EFI-ERROR lines, without the tag
	Done    bool             // the final line came, with counts that match the lines above
}

// ParseEFIStandIn reads the stand-in's lines out of a cleaned serial console (CleanConsole);
// other output (iPXE's, OVMF's) is ignored. It fails on a malformed stand-in line.
func ParseEFIStandIn(console string) (*EFIStandInReport, error) {
	r := &EFIStandInReport{}
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, EFIStandInCmdline):
			v := strings.TrimPrefix(line, EFIStandInCmdline)
			if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
				return nil, fmt.Errorf("stand-in line %q: command line not in brackets", line)
			}
			r.Cmdline = v[1 : len(v)-1]
		case strings.HasPrefix(line, EFIStandInFileTag):
			f := strings.SplitN(strings.TrimPrefix(line, EFIStandInFileTag), " ", 3)
			if len(f) != 3 || f[2] == "" {
				return nil, fmt.Errorf("stand-in line %q: want SHA1 SIZE NAME", line)
			}
			if _, err := hex.DecodeString(f[0]); err != nil || len(f[0]) != 40 {
				return nil, fmt.Errorf("stand-in line %q: bad SHA-1", line)
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || size < 0 {
				return nil, fmt.Errorf("stand-in line %q: bad size", line)
			}
			r.Files = append(r.Files, EFIStandInFile{Name: f[2], Size: size, SHA1: f[0]})
		case strings.HasPrefix(line, EFIStandInError):
			r.Errors = append(r.Errors, strings.TrimPrefix(line, EFIStandInError))
		case strings.HasPrefix(line, EFIStandInDone):
			var files, errs int
			if _, err := fmt.Sscanf(strings.TrimPrefix(line, EFIStandInDone), "files=%d errors=%d", &files, &errs); err != nil {
				return nil, fmt.Errorf("stand-in line %q: %w", line, err)
			}
			if files != len(r.Files) || errs != len(r.Errors) {
				return nil, fmt.Errorf("stand-in says files=%d errors=%d but printed %d file and %d error lines",
					files, errs, len(r.Files), len(r.Errors))
			}
			r.Done = true
		}
	}
	return r, nil
}

// ByName returns the file named name (ASCII case-insensitively, as iPXE and wimboot match
// names) and whether there is one.
func (r *EFIStandInReport) ByName(name string) (EFIStandInFile, bool) {
	for _, f := range r.Files {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return EFIStandInFile{}, false
}
