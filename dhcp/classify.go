package dhcp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// Vendor class prefixes (option 60) of netboot clients.
const (
	vendorPXE  = "PXEClient"
	vendorHTTP = "HTTPClient"
)

// DHCP option codes used here that the dhcpv4 package names awkwardly or not at all.
const (
	optVendorSpecific = dhcpv4.GenericOptionCode(43)
	optClientArch     = dhcpv4.GenericOptionCode(93)
	optClientUUID     = dhcpv4.GenericOptionCode(97)
	optUserClass      = dhcpv4.GenericOptionCode(77)
	optIPXEEncap      = dhcpv4.GenericOptionCode(175)
	optBCDPath        = dhcpv4.GenericOptionCode(252) // Windows Boot Manager's BCD path
)

// Classify decides whether pkt comes from a network-booting client and, if so, what the
// client is. ok is false for anything that is not a netboot DHCP request; reason then says why
// (for debug logs). The returned Client has no Interface; the caller fills it in. IP is the
// client's ciaddr when it has one.
func Classify(pkt *dhcpv4.DHCPv4) (c boot.Client, ok bool, reason string) {
	if pkt.OpCode != dhcpv4.OpcodeBootRequest {
		return c, false, "not a BOOTREQUEST"
	}
	c.MAC = cloneMAC(pkt.ClientHWAddr)
	if ip, ok := netip.AddrFromSlice(pkt.ClientIPAddr.To4()); ok && !ip.IsUnspecified() {
		c.IP = ip
	}
	vendor := string(pkt.Options.Get(dhcpv4.OptionClassIdentifier))
	switch {
	case strings.HasPrefix(vendor, vendorHTTP):
		c.HTTPBoot = true
	case strings.HasPrefix(vendor, vendorPXE):
	default:
		return c, false, fmt.Sprintf("vendor class %q is not PXEClient or HTTPClient", vendor)
	}
	arch, err := clientArch(pkt.Options.Get(optClientArch))
	if err != nil {
		return c, false, err.Error()
	}
	c.Arch = arch
	c.Firmware, _ = boot.FirmwareFromArch(arch)
	if len(c.MAC) == 0 {
		return c, false, "no client hardware address"
	}
	uuid, err := clientUUID(pkt.Options)
	if err != nil {
		return c, false, err.Error()
	}
	c.UUID = uuid
	c.IPXE = isIPXE(pkt.Options)
	return c, true, ""
}

// clientArch reads option 93. The option may list several architectures (RFC 4578); the first
// is the one the firmware runs.
func clientArch(v []byte) (uint16, error) {
	switch {
	case v == nil:
		return 0, fmt.Errorf("option 93 (client architecture) missing")
	case len(v) < 2 || len(v)%2 != 0:
		return 0, fmt.Errorf("option 93 (client architecture) has %d bytes, want a multiple of 2", len(v))
	}
	return binary.BigEndian.Uint16(v), nil
}

// clientUUID reads option 97: type byte 0 then a 16-byte GUID (RFC 4578). Some ROMs omit it,
// which is fine; a malformed one means a broken or hostile client. An all-zero GUID (QEMU
// without -uuid) counts as absent.
//
// The GUID is in EFI byte order on the wire: the first three fields little-endian. EDK2 copies
// the SMBIOS type 1 UUID bytes as they are, and iPXE (dhcp_create_request) converts to the same
// order because RFC 4578 points at the EFI spec. Decoding it that way gives the form that
// dmidecode, firmware setup screens and QEMU's -uuid show, which is what admins write in rules.
func clientUUID(o dhcpv4.Options) (string, error) {
	if !o.Has(optClientUUID) {
		return "", nil
	}
	v := o.Get(optClientUUID)
	if len(v) != 17 || v[0] != 0 {
		return "", fmt.Errorf("option 97 (client UUID) malformed: %d bytes, want 17 starting with 0", len(v))
	}
	g := v[1:]
	if bytes.Equal(g, make([]byte, 16)) {
		return "", nil
	}
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8:10], g[10:16]), nil
}

// isIPXE reports whether the request comes from iPXE: option 77 is the raw string "iPXE" (iPXE
// does not use RFC 3004 framing; the framed form is accepted too) or option 175 (iPXE's
// encapsulated options) is present.
func isIPXE(o dhcpv4.Options) bool {
	if o.Has(optIPXEEncap) {
		return true
	}
	uc := o.Get(optUserClass)
	return string(uc) == "iPXE" || string(uc) == "\x04iPXE"
}

func cloneMAC(hw net.HardwareAddr) net.HardwareAddr {
	if len(hw) == 0 {
		return nil
	}
	return append(net.HardwareAddr(nil), hw...)
}
