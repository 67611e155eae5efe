package testenv

import (
	"embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The wimboot stand-in: a Linux boot-protocol bzImage (standin/bios/setup.asm + standin/bios/standin.c)
// that iPXE's `kernel` accepts like wimboot and that consumes the initrd iPXE hands it the way
// wimboot does: it walks the cpio stream with wimboot's rules (wimboot src/cpio.c) and prints
// every file's size, SHA-1 and name on COM1, plus the kernel command line (index=N). Where
// wimboot would stop it prints wimboot's words: "Bad CPIO magic" and "FATAL: could not extract
// initrd files". With "standin=raw" on its command line it stands for a Linux kernel instead
// and reports the SHA-1 of the whole initrd region (StandInReport.Ramdisk). It is built from
// source at test time (nasm, gcc -m32, ld); no binary is kept.
//
//go:embed standin/bios/setup.asm standin/bios/standin.c standin/bios/standin.ld
var standinSrc embed.FS

// Serial console lines of the wimboot stand-in.
const (
	StandInPrefix = "wimboot-standin: "
	// StandInDone is the start of the last line of a run that extracted every file.
	StandInDone = StandInPrefix + "done "
	// StandInFatal starts the line printed where wimboot would die (wimboot's own text).
	StandInFatal = "FATAL: could not extract initrd files"
	// StandInBadMagic is printed when an entry does not start with "070701" (a nameless
	// initrd: iPXE put its bytes in the stream without a cpio header).
	StandInBadMagic = "Bad CPIO magic"
)

// Setup-header offsets of the Linux x86 boot protocol (Documentation/arch/x86/boot.rst).
const (
	bzSetupSects   = 0x1f1
	bzSyssize      = 0x1f4
	bzBootFlag     = 0x1fe
	bzHeader       = 0x202
	bzVersion      = 0x206
	bzLoadflags    = 0x211
	bzCode32Start  = 0x214
	bzInitrdAddrMx = 0x22c
)

// BzImageHeader is the part of a bzImage's setup header a boot loader reads.
type BzImageHeader struct {
	SetupSects    int
	Syssize       uint32 // protected-mode part, 16-byte units
	BootFlag      uint16 // 0xaa55
	Magic         string // "HdrS"
	Version       uint16 // boot protocol, e.g. 0x0203
	Loadflags     uint8  // bit 0: LOADED_HIGH
	Code32Start   uint32
	InitrdAddrMax uint32
}

// ParseBzImageHeader reads the setup header of a bzImage.
func ParseBzImageHeader(b []byte) (BzImageHeader, error) {
	if len(b) < 0x230 {
		return BzImageHeader{}, fmt.Errorf("bzImage: %d bytes, too short for a setup header", len(b))
	}
	le := binary.LittleEndian
	return BzImageHeader{
		SetupSects:    int(b[bzSetupSects]),
		Syssize:       le.Uint32(b[bzSyssize:]),
		BootFlag:      le.Uint16(b[bzBootFlag:]),
		Magic:         string(b[bzHeader : bzHeader+4]),
		Version:       le.Uint16(b[bzVersion:]),
		Loadflags:     b[bzLoadflags],
		Code32Start:   le.Uint32(b[bzCode32Start:]),
		InitrdAddrMax: le.Uint32(b[bzInitrdAddrMx:]),
	}, nil
}

// BuildWimbootStandIn assembles, compiles and links the stand-in in dir and returns the
// bzImage's bytes. It needs nasm, gcc (with -m32 support for freestanding code) and ld.
func BuildWimbootStandIn(dir string) ([]byte, error) {
	for _, n := range []string{"setup.asm", "standin.c", "standin.ld"} {
		b, err := standinSrc.ReadFile("standin/bios/" + n)
		if err != nil {
			return nil, fmt.Errorf("wimboot stand-in: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			return nil, fmt.Errorf("wimboot stand-in: %w", err)
		}
	}
	steps := [][]string{
		{"gcc", "-m32", "-march=i686", "-ffreestanding", "-fno-pic", "-fno-pie", "-fno-stack-protector",
			"-fno-asynchronous-unwind-tables", "-mgeneral-regs-only", "-fno-builtin", "-nostdlib",
			"-O2", "-Wall", "-Werror", "-c", "standin.c", "-o", "standin.o"},
		{"ld", "-m", "elf_i386", "-nostdlib", "-static", "-T", "standin.ld", "standin.o", "-o", "standin.elf"},
		{"objcopy", "-O", "binary", "standin.elf", "pm.bin"},
		{"nasm", "-f", "bin", `-DPM_BIN="pm.bin"`, "setup.asm", "-o", "wimboot"},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("wimboot stand-in: %s: %w\n%s", strings.Join(s, " "), err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "wimboot"))
	if err != nil {
		return nil, fmt.Errorf("wimboot stand-in: %w", err)
	}
	return b, nil
}

// WimbootStandIn builds the stand-in in a temporary folder of t, or skips t when a build tool
// is missing.
func WimbootStandIn(t testing.TB) []byte {
	t.Helper()
	RequireTools(t, "nasm", "gcc", "ld", "objcopy")
	b, err := BuildWimbootStandIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StandInFile is one file the stand-in found in the initrd.
type StandInFile struct {
	Name string // as in the cpio entry
	Size int64
	SHA1 string // hex
}

// StandInReport is what the stand-in printed on the serial console.
type StandInReport struct {
	Cmdline  string        // the kernel command line iPXE gave it
	Initrd   string        // "0xADDR LEN" as it read them from the setup header
	Files    []StandInFile // in stream order
	Ramdisk  *StandInFile  // with "standin=raw" on the command line: the whole initrd region
	Done     bool          // the final line came, with a count equal to len(Files)
	Failures []string      // "Bad CPIO magic", "FATAL: ..." and other failure lines
}

// ParseStandInReport reads the stand-in's lines out of a serial console (other output, e.g.
// iPXE's, is ignored). It fails on a malformed stand-in line.
func ParseStandInReport(console string) (*StandInReport, error) {
	r := &StandInReport{}
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, StandInBadMagic), strings.HasPrefix(line, "FATAL:"),
			strings.HasPrefix(line, "Truncated CPIO"):
			r.Failures = append(r.Failures, line)
			continue
		case !strings.HasPrefix(line, StandInPrefix):
			continue
		}
		rest := strings.TrimPrefix(line, StandInPrefix)
		word, rest, _ := strings.Cut(rest, " ")
		switch word {
		case "cmdline":
			if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
				return nil, fmt.Errorf("stand-in line %q: command line not in quotes", line)
			}
			var err error
			if r.Cmdline, err = unescapeStandIn(rest[1 : len(rest)-1]); err != nil {
				return nil, fmt.Errorf("stand-in line %q: %w", line, err)
			}
		case "initrd":
			r.Initrd = rest
		case "ramdisk":
			f := strings.Fields(rest)
			if len(f) != 2 {
				return nil, fmt.Errorf("stand-in line %q: want SIZE SHA1", line)
			}
			size, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || len(f[1]) != 40 {
				return nil, fmt.Errorf("stand-in line %q: bad size or SHA-1", line)
			}
			r.Ramdisk = &StandInFile{Size: size, SHA1: f[1]}
		case "file":
			f := strings.SplitN(rest, " ", 3)
			if len(f) != 3 {
				return nil, fmt.Errorf("stand-in line %q: want SIZE SHA1 NAME", line)
			}
			size, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("stand-in line %q: size: %w", line, err)
			}
			if _, err := hex.DecodeString(f[1]); err != nil || len(f[1]) != 40 {
				return nil, fmt.Errorf("stand-in line %q: bad SHA-1", line)
			}
			name, err := unescapeStandIn(f[2])
			if err != nil {
				return nil, fmt.Errorf("stand-in line %q: %w", line, err)
			}
			r.Files = append(r.Files, StandInFile{Name: name, Size: size, SHA1: f[1]})
		case "done":
			n, err := strconv.Atoi(strings.TrimSuffix(rest, " files"))
			if err != nil {
				return nil, fmt.Errorf("stand-in line %q: %w", line, err)
			}
			if n != len(r.Files) {
				return nil, fmt.Errorf("stand-in says %d files but printed %d file lines", n, len(r.Files))
			}
			r.Done = true
		default:
			return nil, fmt.Errorf("stand-in line %q: unknown", line)
		}
	}
	return r, nil
}

// unescapeStandIn undoes the stand-in's \xNN escapes.
func unescapeStandIn(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) || s[i+1] != 'x' {
			return "", fmt.Errorf("bad escape at %d in %q", i, s)
		}
		v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape at %d in %q", i, s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// ByName returns the file named name (exactly) and whether there is one.
func (r *StandInReport) ByName(name string) (StandInFile, bool) {
	for _, f := range r.Files {
		if f.Name == name {
			return f, true
		}
	}
	return StandInFile{}, false
}
