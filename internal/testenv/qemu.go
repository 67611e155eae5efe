package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Firmware is the VM's platform firmware.
type Firmware int

const (
	SeaBIOS Firmware = iota // legacy BIOS: machine "pc", `-boot n`, the NIC's iPXE option ROM
	OVMF                    // UEFI: machine "q35", OVMF_CODE_4M.fd + a fresh copy of its VARS
	AAVMF                   // arm64 UEFI: qemu-system-aarch64 -M virt, AAVMF_CODE.fd + a copy of its VARS (arm64.go)
)

func (f Firmware) String() string {
	if f == OVMF {
		return "ovmf"
	}
	if f == AAVMF {
		return "aavmf"
	}
	return "seabios"
}

// FwCfg is one `-fw_cfg name=NAME,string=VALUE` item.
type FwCfg struct{ Name, Value string }

// HTTPBootOnly turns off OVMF's PXEv4 and PXEv6 boot options, so the NIC boots UEFI HTTPv4
// first instead of after two ~60 s PXE timeouts (works with Debian 12's OVMF 2022.11).
func HTTPBootOnly() []FwCfg {
	return []FwCfg{
		{"opt/org.tianocore/IPv4PXESupport", "n"},
		{"opt/org.tianocore/IPv6PXESupport", "n"},
	}
}

// NoROM is the ROMFile value that removes the NIC's option ROM (`romfile=`): with
// virtio-net-pci under OVMF this gives OVMF's own PxeBcDxe/HttpBootDxe instead of iPXE.
func NoROM() *string { s := ""; return &s }

// VMSpec describes one QEMU network-boot VM (TCG, no KVM needed).
type VMSpec struct {
	Name     string   // label for logs and files
	Firmware Firmware // SeaBIOS or OVMF
	NIC      string   // QEMU NIC model: "e1000" (iPXE ROM), "virtio-net-pci" (with NoROM: OVMF's PXE)
	ROMFile  *string  // nil: QEMU's default ROM for NIC; NoROM(): none; else a ROM file path
	MAC      string   // e.g. "52:54:00:77:00:0a"
	Tap      string   // tap device in the namespace QEMU runs in, default "tap0"
	// BootIndex is the NIC's bootindex under OVMF (default 1). SeaBIOS boots with `-boot n`.
	BootIndex int
	FwCfg     []FwCfg  // extra -fw_cfg items, e.g. HTTPBootOnly()
	UUID      string   // -uuid (DHCP option 97); empty: QEMU's all-zero default
	MemoryMB  int      // default 512
	Dir       string   // folder for serial.log, qemu.cmd and the OVMF VARS copy (required)
	Extra     []string // more QEMU arguments
	// FailOn are serial console strings that end the run at once as a failure, instead of
	// waiting for the timeout (e.g. FatalConsoleLines).
	FailOn []string
	// SecureBoot, for OVMF, runs Debian's Secure Boot OVMF with keys enrolled (secureboot.go).
	SecureBoot *SecureBootFirmware
}

// FatalConsoleLines are console messages after which no network boot will reach the marker:
// iPXE and SeaBIOS giving up, OVMF failing its boot option, a kernel panic, and a damaged
// initramfs (the kernel checks its gzip CRC only after unpacking, then says so and carries on:
// an /init unpacked before the damage would still run).
func FatalConsoleLines() []string {
	return []string{"No more network devices", "No bootable device", "BdsDxe: failed to load", "Kernel panic",
		"Initramfs unpacking failed"}
}

// SerialPath is the file QEMU writes the first serial port to.
func (s *VMSpec) SerialPath() string { return filepath.Join(s.Dir, s.stem()+"-serial.log") }

func (s *VMSpec) stem() string {
	if s.Name == "" {
		return "vm"
	}
	return s.Name
}

// Args returns the qemu-system-x86_64 command line. For OVMF it copies the VARS template into
// Dir first (each run starts with empty NVRAM).
func (s *VMSpec) Args() ([]string, error) {
	if s.Dir == "" {
		return nil, fmt.Errorf("vm %s: VMSpec.Dir is required", s.stem())
	}
	if s.Firmware == AAVMF {
		return s.aavmfArgs() // arm64.go
	}
	tap, mem := s.Tap, s.MemoryMB
	if tap == "" {
		tap = "tap0"
	}
	if mem == 0 {
		mem = 512
	}
	args := []string{"qemu-system-x86_64", "-accel", "tcg", "-m", fmt.Sprint(mem), "-smp", "1",
		"-no-reboot", "-nographic", "-monitor", "none", "-serial", "file:" + s.SerialPath(),
		"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no"}
	nic := s.NIC + ",netdev=n0"
	if s.MAC != "" {
		nic += ",mac=" + s.MAC
	}
	if s.ROMFile != nil {
		nic += ",romfile=" + *s.ROMFile
	}
	switch s.Firmware {
	case OVMF:
		code, varsTmpl, machine, fwArgs := s.ovmfFiles() // secureboot.go
		vars := filepath.Join(s.Dir, s.stem()+"-OVMF_VARS.fd")
		if err := copyFile(varsTmpl, vars); err != nil {
			return nil, fmt.Errorf("vm %s: OVMF vars: %w", s.stem(), err)
		}
		bi := s.BootIndex
		if bi == 0 {
			bi = 1
		}
		args = append(args, fwArgs...)
		args = append(args, "-machine", machine,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars,
			"-device", fmt.Sprintf("%s,bootindex=%d", nic, bi))
	default:
		args = append(args, "-machine", "pc", "-boot", "n", "-device", nic)
	}
	for _, f := range s.FwCfg {
		args = append(args, "-fw_cfg", "name="+f.Name+",string="+f.Value)
	}
	if s.UUID != "" {
		args = append(args, "-uuid", s.UUID)
	}
	return append(args, s.Extra...), nil
}

// VMResult is what one VM run showed.
type VMResult struct {
	TimeToMarker time.Duration // from QEMU start to the marker on the serial console
	Wall         time.Duration // from QEMU start to its exit (or our stop)
	Started      time.Time     // when QEMU was started, to put captured packets on a timeline
	MarkerLine   string        // the serial line holding the marker
	Serial       string        // the serial console, ANSI escapes and CRs removed
}

// RunVM starts QEMU inside ns, waits up to timeout for marker on the serial console, then gives
// the guest a few seconds to power off before stopping QEMU by its PID. It returns an error,
// with the tail of the serial console, when the marker never came or QEMU died first.
func RunVM(ctx context.Context, ns *Netns, spec VMSpec, marker string, timeout time.Duration) (*VMResult, error) {
	args, err := spec.Args()
	if err != nil {
		return nil, err
	}
	_ = os.WriteFile(filepath.Join(spec.Dir, spec.stem()+"-qemu.cmd"),
		[]byte("ip netns exec "+ns.Name+" "+strings.Join(args, " ")+"\n"), 0o644)
	if err := os.WriteFile(spec.SerialPath(), nil, 0o644); err != nil {
		return nil, fmt.Errorf("vm %s: serial file: %w", spec.stem(), err)
	}
	start := time.Now()
	p, err := ns.Start("qemu-"+spec.stem(), filepath.Join(spec.Dir, spec.stem()+"-qemu.out"), args...)
	if err != nil {
		return nil, err
	}
	res := &VMResult{Started: start}
	runErr := waitMarker(ctx, p, &spec, marker, timeout, start, res)
	if runErr == nil {
		_ = p.Wait(15 * time.Second) // the initramfs powers off; QEMU exits with -no-reboot
	}
	_ = p.Stop(2 * time.Second)
	res.Wall = time.Since(start)
	raw, _ := os.ReadFile(spec.SerialPath())
	res.Serial = CleanConsole(raw)
	for _, line := range strings.Split(res.Serial, "\n") {
		if strings.Contains(line, marker) {
			res.MarkerLine = strings.TrimSpace(line)
			break
		}
	}
	if runErr != nil {
		qout, _ := os.ReadFile(p.LogPath)
		return res, fmt.Errorf("vm %s: %w\nqemu output: %s\nserial console (last 40 lines):\n%s",
			spec.stem(), runErr, bytes.TrimSpace(qout), Tail(res.Serial, 40))
	}
	return res, nil
}

func waitMarker(ctx context.Context, p *Proc, spec *VMSpec, marker string, timeout time.Duration, start time.Time, res *VMResult) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	want := []byte(marker)
	for {
		b, _ := os.ReadFile(spec.SerialPath())
		if bytes.Contains(b, want) {
			res.TimeToMarker = time.Since(start)
			return nil
		}
		for _, f := range spec.FailOn {
			if bytes.Contains(b, []byte(f)) {
				return fmt.Errorf("%q on the serial console after %v", f, time.Since(start).Round(time.Millisecond))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("no %q on the serial console within %v", marker, timeout)
		case <-p.Done():
			if b, _ := os.ReadFile(spec.SerialPath()); bytes.Contains(b, want) {
				res.TimeToMarker = time.Since(start)
				return nil
			}
			_, err := p.Exited()
			return fmt.Errorf("qemu exited after %v without %q (exit: %v)", time.Since(start).Round(time.Millisecond), marker, err)
		case <-tick.C:
		}
	}
}

var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?=]*[a-zA-Z]|c)`)

// CleanConsole turns raw serial output into plain lines: ANSI escapes and CRs removed, blank
// lines dropped.
func CleanConsole(raw []byte) string {
	s := ansiEscape.ReplaceAllString(string(raw), "")
	s = strings.ReplaceAll(s, "\r", "\n")
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
