package dhcp

import (
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
)

func TestClassify(t *testing.T) {
	// QEMU -uuid 8c8e3f2a-4b1d-4c5e-9f00-0123456789ab as OVMF and iPXE put it on the wire: the
	// first three fields little-endian (EFI GUID layout).
	uuid := []byte{0, 0x2a, 0x3f, 0x8e, 0x8c, 0x1d, 0x4b, 0x5e, 0x4c, 0x9f, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab}
	tests := []struct {
		name     string
		pkt      rawPkt
		ok       bool
		reason   string // substring when !ok
		arch     uint16
		fw       boot.Firmware
		httpBoot bool
		ipxe     bool
		uuid     string
		ip       string
	}{
		{name: "iPXE BIOS", pkt: ipxeBIOSDiscover(), ok: true, arch: 0, fw: boot.FirmwareBIOS, ipxe: true},
		{name: "iPXE EFI", pkt: ipxeEFIDiscover(), ok: true, arch: 7, fw: boot.FirmwareEFI64, ipxe: true},
		{name: "OVMF PXE", pkt: ovmfPXEDiscover(), ok: true, arch: 7, fw: boot.FirmwareEFI64},
		{name: "OVMF PXE 4011", pkt: ovmfPXERequest4011(), ok: true, arch: 7, fw: boot.FirmwareEFI64, ip: "10.77.0.143"},
		{name: "OVMF HTTP Boot", pkt: ovmfHTTPDiscover(), ok: true, arch: 16, fw: boot.FirmwareEFI64, httpBoot: true},
		{name: "iPXE PXEBS xid 0", pkt: ipxePXEBSRequest(), ok: true, arch: 0, fw: boot.FirmwareBIOS, ipxe: true, ip: "10.77.0.142"},
		{name: "relayed", pkt: relayedDiscover(), ok: true, fw: boot.FirmwareBIOS, ipxe: true},
		{name: "iPXE by 77 only", pkt: ipxeBIOSDiscover().with(without(175)), ok: true, fw: boot.FirmwareBIOS, ipxe: true},
		{name: "iPXE by 175 only", pkt: ipxeBIOSDiscover().with(without(77)), ok: true, fw: boot.FirmwareBIOS, ipxe: true},
		{name: "RFC 3004 framed iPXE", pkt: ovmfPXEDiscover().with(rawOpt{77, []byte("\x04iPXE")}), ok: true, arch: 7, fw: boot.FirmwareEFI64, ipxe: true},
		{name: "other user class", pkt: ovmfPXEDiscover().with(rawOpt{77, []byte("gPXE")}), ok: true, arch: 7, fw: boot.FirmwareEFI64},
		{name: "no option 97 (some ROMs)", pkt: ovmfPXEDiscover().with(without(97)), ok: true, arch: 7, fw: boot.FirmwareEFI64},
		{name: "real UUID", pkt: ovmfPXEDiscover().with(rawOpt{97, uuid}), ok: true, arch: 7, fw: boot.FirmwareEFI64,
			uuid: "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab"},
		{name: "ARM64 HTTP", pkt: ovmfHTTPDiscover().with(rawOpt{93, u16(19)}), ok: true, arch: 19, fw: boot.FirmwareEFIARM64, httpBoot: true},
		{name: "unknown arch still netboot", pkt: ovmfPXEDiscover().with(rawOpt{93, u16(0x99)}), ok: true, arch: 0x99, fw: boot.FirmwareUnknown},
		{name: "plain client", pkt: plainDiscover(), reason: "vendor class"},
		{name: "PXEClient without 93", pkt: ovmfPXEDiscover().with(without(93)), reason: "option 93"},
		{name: "93 odd length", pkt: ovmfPXEDiscover().with(rawOpt{93, []byte{7}}), reason: "option 93"},
		{name: "97 too short", pkt: ovmfPXEDiscover().with(rawOpt{97, make([]byte, 16)}), reason: "option 97"},
		{name: "97 type 1", pkt: ovmfPXEDiscover().with(rawOpt{97, append([]byte{1}, make([]byte, 16)...)}), reason: "option 97"},
		{name: "no vendor class", pkt: ovmfPXEDiscover().with(without(60)), reason: "vendor class"},
		{name: "vendor class not a prefix", pkt: ovmfPXEDiscover().with(rawOpt{60, []byte("MSFT 5.0 PXEClient")}), reason: "vendor class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok, reason := Classify(tt.pkt.parse(t))
			if ok != tt.ok {
				t.Fatalf("ok = %v (%s), want %v", ok, reason, tt.ok)
			}
			if !ok {
				if !strings.Contains(reason, tt.reason) {
					t.Errorf("reason %q does not mention %q", reason, tt.reason)
				}
				return
			}
			if c.Arch != tt.arch || c.Firmware != tt.fw || c.HTTPBoot != tt.httpBoot || c.IPXE != tt.ipxe || c.UUID != tt.uuid {
				t.Errorf("got arch=%d fw=%s http=%v ipxe=%v uuid=%q, want arch=%d fw=%s http=%v ipxe=%v uuid=%q",
					c.Arch, c.Firmware, c.HTTPBoot, c.IPXE, c.UUID, tt.arch, tt.fw, tt.httpBoot, tt.ipxe, tt.uuid)
			}
			if c.MAC.String() != tt.pkt.mac.String() {
				t.Errorf("MAC = %s, want %s", c.MAC, tt.pkt.mac)
			}
			if got := c.IP.String(); tt.ip != "" && got != tt.ip || tt.ip == "" && c.IP.IsValid() {
				t.Errorf("IP = %v, want %q", c.IP, tt.ip)
			}
		})
	}
}

func TestClassifyRejectsReplies(t *testing.T) {
	pkt := ovmfPXEDiscover().parse(t)
	pkt.OpCode = 2 // BOOTREPLY
	if _, ok, reason := Classify(pkt); ok || !strings.Contains(reason, "BOOTREQUEST") {
		t.Fatalf("reply classified ok=%v reason=%q", ok, reason)
	}
}
