// Package testenv builds throw-away network labs for end-to-end tests: Linux network namespaces
// joined by a bridge, veth pairs and tap devices, the processes that run inside them (dnsmasq,
// tcpdump, QEMU with SeaBIOS or OVMF), and the boot assets a test VM loads (a Debian cloud
// kernel, a busybox initramfs that prints a marker on the serial console, and an LZX WIM holding
// both).
//
// Everything it starts is tracked by PID and stopped by PID; everything it creates lives inside
// namespaces it created itself, under names that carry the test process's PID, and is removed in
// t.Cleanup. Nothing is bound to, or sends to, the machine's real interfaces.
//
// Tests call the Require* helpers first: they skip, with a message naming what to install, when
// the machine lacks root, /dev/net/tun, QEMU, OVMF or a tool.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Paths of the firmware and iPXE binaries shipped by Debian's ovmf, ipxe and ipxe-qemu packages.
const (
	OVMFCode     = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars     = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	IPXEDir      = "/usr/lib/ipxe"
	IPXEQEMUROMs = "/usr/lib/ipxe/qemu"
)

// Marker is what the test initramfs prints on the VM's first serial port once it runs.
const Marker = "PXEWIM-E2E-BOOT-OK"

// RequireRoot skips the test unless it runs as root (namespaces, tap devices, ports below 1024).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, tap devices): run as root, e.g. via ./test.sh in CI")
	}
}

// RequireTun skips the test unless /dev/net/tun exists (QEMU's tap backend needs it).
func RequireTun(t testing.TB) {
	t.Helper()
	if fi, err := os.Stat("/dev/net/tun"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Skip("needs /dev/net/tun for QEMU tap networking: modprobe tun")
	}
}

// RequireTools skips the test unless every named program is on PATH. The package that provides
// each one is named in the message.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: apt-get install %s", tool, packageOf(tool))
		}
	}
}

// RequireFiles skips the test unless every named file exists; pkg names the Debian package.
func RequireFiles(t testing.TB, pkg string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s: apt-get install %s", p, pkg)
		}
	}
}

// RequireOVMF skips the test unless Debian's OVMF firmware images are installed.
func RequireOVMF(t testing.TB) {
	t.Helper()
	RequireFiles(t, "ovmf", OVMFCode, OVMFVars)
}

// RequireVMLab skips unless everything a QEMU network-boot test needs is here: root, tun, ip,
// qemu-system-x86_64 with the iPXE ROMs, wimlib-imagex and busybox-static for the assets.
func RequireVMLab(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	RequireTun(t)
	RequireTools(t, "ip", "qemu-system-x86_64", "wimlib-imagex", "apt-get", "dpkg-deb")
	RequireFiles(t, "ipxe-qemu", IPXEQEMUROMs+"/efi-e1000.rom")
	RequireFiles(t, "busybox-static", busyboxPath)
}

func packageOf(tool string) string {
	switch tool {
	case "qemu-system-x86_64":
		return "qemu-system-x86"
	case "wimlib-imagex":
		return "wimtools"
	case "dnsmasq":
		return "dnsmasq-base"
	case "ip", "ss":
		return "iproute2"
	case "dpkg-deb":
		return "dpkg"
	case "apt-get":
		return "apt"
	}
	return tool
}
