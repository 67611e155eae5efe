package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// fzSeed is one FuzzDaemon input: a DHCP packet, a TFTP request and an HTTP request that a
// client of one kind sends in one boot (or an attacker sends instead).
type fzSeed struct {
	name             string
	dhcp, tftp, http []byte
}

// fzSeeds are real boots of each client kind against the fuzz config, and escapes.
func fzSeeds() []fzSeed {
	peBIOS, _ := net.ParseMAC("52:54:00:cc:dd:01")
	peEFI, _ := net.ParseMAC("52:54:00:cc:dd:02")
	rescue, _ := net.ParseMAC("52:54:00:aa:bb:01")
	other, _ := net.ParseMAC("02:00:00:00:00:07")
	get := func(target string, hdrs ...string) []byte {
		s := "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\n"
		for _, h := range hdrs {
			s += h + "\r\n"
		}
		return []byte(s + "\r\n")
	}
	return []fzSeed{
		{"bios-pxe-native-winpe", fzDHCP(peBIOS, dhcpv4.MessageTypeDiscover, 0, false, "PXEClient:Arch:00000:UNDI:002001"),
			fzRRQ(`\Boot\BCD`, "blksize", "1456", "tsize", "0"), get("/files/boot.wim")},
		{"bios-pxe-4011", fzDHCP(peBIOS, dhcpv4.MessageTypeRequest, 0, false, "PXEClient", dhcpv4.WithClientIP(net.IPv4(127, 0, 0, 1))),
			fzRRQ(`boot\pxeboot.n12`, "blksize", "1468", "windowsize", "8"), get("/boot.ipxe?mac=52:54:00:cc:dd:01")},
		{"ovmf-pxe-winpe", fzDHCP(peEFI, dhcpv4.MessageTypeDiscover, iana.EFI_X86_64, false, "PXEClient:Arch:00007:UNDI:003000"),
			fzRRQ(`\EFI\Microsoft\Boot\BCD`, "msftwindow", "31416", "blksize", "1468"), get("/files/Boot/BCD")},
		{"ipxe-rescue-script", fzDHCP(rescue, dhcpv4.MessageTypeDiscover, 0, true, "PXEClient:Arch:00000:UNDI:002001"),
			fzRRQ("tools.wim:1/boot/vmlinuz", "blksize", "1468", "windowsize", "16", "tsize", "0"),
			get("/boot.ipxe?mac=52:54:00:aa:bb:01&arch=0")},
		{"ipxe-efi-menu", fzDHCP(other, dhcpv4.MessageTypeRequest, iana.EFI_X86_64, true, "PXEClient:Arch:00007:UNDI:003010"),
			fzRRQ("ipxe/snponly.efi", "blksize", "1468"), get("/files/tools.wim:1/boot/vmlinuz", "Range: bytes=0-99,70000-70099")},
		{"uefi-httpboot", fzDHCP(other, dhcpv4.MessageTypeDiscover, iana.EFI_X86_64_HTTP, false, "HTTPClient:Arch:00016:UNDI:003000"),
			fzRRQ("boot/readme.txt"), []byte("HEAD /files/ipxe/snponly.efi HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: UefiHttpBoot/1.0\r\n\r\n")},
		{"inform-4011", fzDHCP(other, dhcpv4.MessageTypeInform, 0, false, "PXEClient"),
			fzRRQ("ipxe/undionly.kpxe", "tsize", "0", "blksize", "1432"), get("/files/ipxe/undionly.kpxe", "Range: bytes=-100")},
		{"escape-dotdot", nil, fzRRQ("../secret.txt"), get("/files/../secret.txt")},
		{"escape-encoded", nil, fzRRQ("ipxe/../../secret.txt"), get("/files/%2e%2e/secret.txt")},
		{"escape-backslash", nil, fzRRQ(`..\..\secret.txt`), get(`/files/ipxe/..%5c..%5csecret.txt`)},
		{"escape-absolute", nil, fzRRQ("/etc/passwd"), get("/files//etc/passwd")},
		{"escape-wim", nil, fzRRQ("tools.wim:1/../../secret.txt"), get("/files/tools.wim:1/../../../secret.txt")},
		{"wim-symlinks", nil, fzRRQ("tools.wim:1/boot/rel"), get("/files/tools.wim:1/boot/abs")},
		{"wim-symlink-etc", nil, fzRRQ("tools.wim:1/boot/etc"), get("/files/tools.wim:1/boot/rel")},
		{"blob-and-write", nil, append([]byte{0, 2}, "new.bin\x00octet\x00"...),
			get("/blob/0000000000000000000000000000000000000000/../../secret.txt")},
		{"ranges-overflow", nil, fzRRQ("boot/readme.txt", "blksize", "99999999", "windowsize", "0"),
			get("/files/boot/readme.txt", "Range: bytes=18446744073709551615-,0-1,0-1,0-1")},
		{"junk", []byte{1, 1, 6, 0, 0xde, 0xad}, []byte{0, 1, 'x'}, []byte("GET /\x00 HTTP/1.1\r\n\r\n")},
	}
}

// fzDHCP is a BOOTREQUEST of type mt from mac with PXE options: arch (93), vendor class (60),
// option 77 "iPXE" when ipxe.
func fzDHCP(mac net.HardwareAddr, mt dhcpv4.MessageType, arch iana.Arch, ipxe bool, class string, mods ...dhcpv4.Modifier) []byte {
	ms := []dhcpv4.Modifier{
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(class)),
		dhcpv4.WithOption(dhcpv4.OptClientArch(arch)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 3, 16}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, make([]byte, 17)),
	}
	if ipxe {
		ms = append(ms, dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")),
			dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(175), []byte{19, 1, 1, 21, 1, 1}))
	}
	if mt == dhcpv4.MessageTypeRequest {
		ms = append(ms, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(127, 0, 0, 1))))
	}
	p, err := dhcpv4.New(append(ms, mods...)...)
	if err != nil {
		panic(err)
	}
	return p.ToBytes()
}

// TestWriteDaemonFuzzSeeds rewrites testdata/fuzz/FuzzDaemon from fzSeeds when
// PXEWIM_WRITE_FUZZ_SEEDS=1 (the files are committed; this keeps them in step).
func TestWriteDaemonFuzzSeeds(t *testing.T) {
	if os.Getenv("PXEWIM_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set PXEWIM_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzDaemon")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDaemon")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range fzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n[]byte(%s)\n[]byte(%s)\n",
			strconv.Quote(string(s.dhcp)), strconv.Quote(string(s.tftp)), strconv.Quote(string(s.http)))
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
