// Package boot decides what a network-booting client boots: it holds the client's identity as
// learned from DHCP, the store catalog, and the policy that maps a client to boot files.
package boot

import (
	"net"
	"net/netip"
)

// Firmware is the kind of firmware a client runs, derived from DHCP option 93.
type Firmware int

const (
	FirmwareUnknown  Firmware = iota
	FirmwareBIOS              // arch 0: legacy PXE (x86 BIOS)
	FirmwareEFI32             // arch 6: IA32 UEFI
	FirmwareEFI64             // arch 7 or 9: x64 UEFI
	FirmwareEFIARM32          // arch 10
	FirmwareEFIARM64          // arch 11
)

func (f Firmware) String() string {
	switch f {
	case FirmwareBIOS:
		return "bios"
	case FirmwareEFI32:
		return "efi32"
	case FirmwareEFI64:
		return "efi64"
	case FirmwareEFIARM32:
		return "efi-arm32"
	case FirmwareEFIARM64:
		return "efi-arm64"
	}
	return "unknown"
}

// IsEFI reports whether the firmware is any UEFI flavour.
func (f Firmware) IsEFI() bool { return f >= FirmwareEFI32 }

// FirmwareFromArch maps a DHCP option 93 client system architecture to a Firmware and reports
// whether the value means UEFI HTTP Boot (15, 16, 19 and the other HTTP variants).
func FirmwareFromArch(arch uint16) (fw Firmware, httpBoot bool) {
	switch arch {
	case 0:
		return FirmwareBIOS, false
	case 6:
		return FirmwareEFI32, false
	case 7, 9:
		return FirmwareEFI64, false
	case 10:
		return FirmwareEFIARM32, false
	case 11:
		return FirmwareEFIARM64, false
	case 15:
		return FirmwareEFI32, true
	case 16:
		return FirmwareEFI64, true
	case 18:
		return FirmwareEFIARM32, true
	case 19:
		return FirmwareEFIARM64, true
	}
	return FirmwareUnknown, false
}

// Client is what the boot services know about one booting machine. DHCP fills it in; TFTP and
// HTTP look it up by IP address to pick the client's virtual tree and to label logs.
type Client struct {
	MAC       net.HardwareAddr
	IP        netip.Addr // the address the client uses (zero until known)
	Arch      uint16     // DHCP option 93 value
	Firmware  Firmware
	HTTPBoot  bool   // UEFI HTTP Boot client (vendor class HTTPClient)
	IPXE      bool   // the request came from iPXE (option 77 "iPXE" or option 175)
	UUID      string // option 97 machine UUID, canonical text form, "" when absent or all zero
	Interface string // the server interface the request arrived on
}
