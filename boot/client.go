// Package boot decides what a network-booting client boots. It holds the config (YAML for
// every subsystem, validated with line numbers), the client's identity as DHCP learned it and
// the registry of clients, the entry kinds (linux, ipxe, winpe, memdisk, iso) and the Policy:
// the DHCP decision (Decision), which entry's file tree a client gets (TreeEntry) and the iPXE
// scripts, written by an iPXE-safe script writer.
//
// boot is pure policy: it decides from specs and facts and does no I/O. The store's catalog
// reaches it as plain values (StoreImages, filled by winpe.Facts); a winpe entry is a plain
// spec (WinPEBoot) whose served image it knows only through the facts the daemon's WinPE
// library gives (WinPEServed, through WinPEImages). Package winpe opens, builds and serves the
// images. So boot imports no WIM, BCD, catalog or store package (go list -deps ./boot), and its
// tests write their facts by hand.
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
