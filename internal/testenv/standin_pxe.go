package testenv

import (
	"embed"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The PXE loader stand-in (standin/pxe/pxe_standin.asm): a PXE network bootstrap program that
// stands for pxeboot.n12 when iPXE chains it over TFTP. Loaded at 0000:7C00 with the PXE API
// (PXENV+ in ES:BX, !PXE on the stack), it hashes its own image as loaded (CRC-32), reads the
// DHCP ACK and the cached reply the PXE stack hands it (boot file field, option 252, siaddr),
// fetches option 252's BCD path (else \Boot\BCD) from the cached reply's siaddr (the server it
// was loaded from) through TFTP_OPEN/TFTP_READ/TFTP_CLOSE as pxeboot and bootmgr do, hashes it,
// and prints all that on COM1. It is assembled with nasm at
// test time; no binary is kept.
//
//go:embed standin/pxe/pxe_standin.asm
var pxeStandinSrc embed.FS

// Serial console lines of the PXE loader stand-in.
const (
	PXEStandInPrefix = "pxe-standin: "
	// PXEStandInDone is the last line of a run that fetched its file.
	PXEStandInDone = PXEStandInPrefix + "done"
	// PXEStandInFail starts the line printed where it stopped.
	PXEStandInFail = PXEStandInPrefix + "fail "
)

// BuildPXEStandIn assembles the stand-in in dir and returns the NBP's bytes (needs nasm).
func BuildPXEStandIn(dir string) ([]byte, error) {
	src, err := pxeStandinSrc.ReadFile("standin/pxe/pxe_standin.asm")
	if err != nil {
		return nil, fmt.Errorf("pxe stand-in: %w", err)
	}
	asm := filepath.Join(dir, "pxe_standin.asm")
	if err := os.WriteFile(asm, src, 0o644); err != nil {
		return nil, fmt.Errorf("pxe stand-in: %w", err)
	}
	out := filepath.Join(dir, "pxeboot.n12")
	cmd := exec.Command("nasm", "-f", "bin", "-o", out, asm)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pxe stand-in: nasm: %w\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("pxe stand-in: %w", err)
	}
	return b, nil
}

// PXEStandIn builds the stand-in in a temporary folder of t, or skips t without nasm.
func PXEStandIn(t testing.TB) []byte {
	t.Helper()
	RequireTools(t, "nasm")
	b, err := BuildPXEStandIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// PXEStandInFile is a size and CRC-32 (IEEE) the stand-in printed.
type PXEStandInFile struct {
	Name  string
	Size  int64
	CRC32 uint32
}

// PXEStandInPacket is what the stand-in read in one DHCP packet the PXE stack handed it.
type PXEStandInPacket struct {
	BootFile  string     // the boot file field
	Option252 string     // DHCP option 252, the BCD path ("" when absent)
	HasOpt252 bool       // the packet had option 252
	SIAddr    netip.Addr // siaddr (next-server)
}

// PXEStandInReport is what the PXE loader stand-in printed on the serial console.
type PXEStandInReport struct {
	Self  *PXEStandInFile   // its own image as loaded at 0x7C00
	ACK   *PXEStandInPacket // GET_CACHED_INFO DHCP_ACK
	Reply *PXEStandInPacket // GET_CACHED_INFO CACHED_REPLY (the server it was loaded from)
	TFTP  *PXEStandInFile   // the file it fetched through the PXE TFTP API, from Reply.SIAddr
	Done  bool
	// Failures are the "fail WHAT STATUS" lines.
	Failures []string
}

// CRC32 is the checksum the stand-in prints (IEEE, as zlib's crc32).
func CRC32(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// ParsePXEStandInReport reads the stand-in's lines out of a serial console (other output is
// ignored); a malformed stand-in line is an error.
func ParsePXEStandInReport(console string) (*PXEStandInReport, error) {
	r := &PXEStandInReport{}
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimSpace(line)
		i := strings.Index(line, PXEStandInPrefix)
		if i < 0 {
			continue
		}
		line = line[i:]
		f := strings.Fields(strings.TrimPrefix(line, PXEStandInPrefix))
		if len(f) == 0 {
			return nil, fmt.Errorf("pxe stand-in line %q: empty", line)
		}
		bad := func(err error) error { return fmt.Errorf("pxe stand-in line %q: %w", line, err) }
		switch f[0] {
		case "self":
			if len(f) != 3 {
				return nil, bad(fmt.Errorf("want SIZE CRC32"))
			}
			sf, err := parseSizeCRC("", f[1], f[2])
			if err != nil {
				return nil, bad(err)
			}
			r.Self = sf
		case "dhcp", "reply":
			if len(f) != 4 {
				return nil, bad(fmt.Errorf("want FILE BCD SIADDR"))
			}
			p := &PXEStandInPacket{}
			var err error
			if p.BootFile, err = unescapeStandIn(f[1]); err != nil {
				return nil, bad(err)
			}
			if f[2] != "-" {
				p.HasOpt252 = true
				if p.Option252, err = unescapeStandIn(f[2]); err != nil {
					return nil, bad(err)
				}
			}
			ip, err := hex.DecodeString(f[3])
			if err != nil || len(ip) != 4 {
				return nil, bad(fmt.Errorf("siaddr %q: want 8 hex digits", f[3]))
			}
			p.SIAddr = netip.AddrFrom4([4]byte(ip))
			if f[0] == "dhcp" {
				r.ACK = p
			} else {
				r.Reply = p
			}
		case "tftp":
			if len(f) != 4 {
				return nil, bad(fmt.Errorf("want NAME SIZE CRC32"))
			}
			name, err := unescapeStandIn(f[1])
			if err != nil {
				return nil, bad(err)
			}
			if r.TFTP, err = parseSizeCRC(name, f[2], f[3]); err != nil {
				return nil, bad(err)
			}
		case "done":
			r.Done = true
		case "fail":
			r.Failures = append(r.Failures, line)
		default:
			return nil, bad(fmt.Errorf("unknown"))
		}
	}
	return r, nil
}

func parseSizeCRC(name, size, crc string) (*PXEStandInFile, error) {
	if len(size) != 8 || len(crc) != 8 {
		return nil, fmt.Errorf("size and CRC-32 are 8 hex digits each")
	}
	n, err := strconv.ParseUint(size, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("size: %w", err)
	}
	c, err := strconv.ParseUint(crc, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("CRC-32: %w", err)
	}
	return &PXEStandInFile{Name: name, Size: int64(n), CRC32: uint32(c)}, nil
}
