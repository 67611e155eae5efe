// Package boot decides what a network-booting client boots: it holds the client's identity as
// learned from DHCP, the store catalog, and the policy that maps a client to boot files.
package boot

import (
	"net"
	"net/netip"

	"github.com/pxewim/pxewim/firmware"
)

// Firmware is the kind of firmware a client runs (package firmware has the one definition).
type Firmware = firmware.Kind

// The firmware kinds, by their names in this package.
const (
	FirmwareUnknown  = firmware.Unknown
	FirmwareBIOS     = firmware.PCBIOS
	FirmwareEFI32    = firmware.EFI32
	FirmwareEFI64    = firmware.EFI64
	FirmwareEFIARM32 = firmware.EFIARM32
	FirmwareEFIARM64 = firmware.EFIARM64
)

// FirmwareFromArch maps a DHCP option 93 value to a Firmware (firmware.FromArch).
func FirmwareFromArch(arch uint16) (fw Firmware, httpBoot bool) { return firmware.FromArch(arch) }

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
