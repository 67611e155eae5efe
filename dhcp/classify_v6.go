package dhcp

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pxewim/pxewim/boot"
)

// enterprisePXE is the IANA enterprise number (Intel) under which PXE and UEFI HTTP Boot
// clients send their vendor class (option 16): "PXEClient:Arch:..." or "HTTPClient:Arch:...".
const enterprisePXE = 343

// Client6 is a DHCPv6 client as Classify6 sees it: the boot.Client the Policy gets, and the
// client's DUID (hex of option 1), which is what DHCPv6 clients are known by.
type Client6 struct {
	boot.Client
	DUID string
}

// Classify6 decides whether msg comes from a network-booting DHCPv6 client. PXE and HTTP Boot
// firmware (EDK2) send option 16 with enterprise 343 and "PXEClient"/"HTTPClient" and option 61
// (client architecture); iPXE sends user class (option 15) "iPXE" (Debian's build also sends
// option 16 "PXEClient", 61 and 62 and a DUID-UUID; older iPXE sources send only the user class
// and a DUID-LL, which is accepted too). ok is false for anything else (reason says why). src is
// the sender's address: the MAC comes from a DUID-LL/LLT, else option 79, else a modified
// EUI-64 link-local source address.
func Classify6(msg *dhcpv6.Message, src netip.Addr) (c Client6, ok bool, reason string) {
	duid := msg.Options.GetOne(dhcpv6.OptionClientID)
	if duid == nil {
		return c, false, "no client identifier (option 1)"
	}
	raw := duid.ToBytes()
	if len(raw) < 2 || len(raw) > 130 {
		return c, false, fmt.Sprintf("client identifier of %d bytes", len(raw))
	}
	c.DUID = hex.EncodeToString(raw)
	c.MAC = clientMAC6(msg, src)
	if src.IsValid() && !src.IsLinkLocalUnicast() && !src.IsUnspecified() {
		c.IP = src
	}
	vendor, found := vendorClass6(msg)
	switch {
	case strings.HasPrefix(vendor, vendorHTTP):
		c.HTTPBoot = true
	case strings.HasPrefix(vendor, vendorPXE):
	case found:
		return c, false, fmt.Sprintf("vendor class %q is not PXEClient or HTTPClient", vendor)
	}
	c.IPXE = isIPXE6(msg)
	if archs := msg.Options.ArchTypes(); len(archs) > 0 {
		c.Arch = uint16(archs[0])
		c.Firmware, _ = boot.FirmwareFromArch(c.Arch)
	} else if msg.Options.GetOne(dhcpv6.OptionClientArchType) != nil {
		return c, false, "option 61 (client architecture) is empty"
	}
	switch {
	case c.IPXE:
		// iPXE's own sources send no vendor class and no architecture over DHCPv6.
	case !found:
		return c, false, "no PXEClient/HTTPClient vendor class (option 16, enterprise 343)"
	case msg.Options.GetOne(dhcpv6.OptionClientArchType) == nil:
		return c, false, "option 61 (client architecture) missing"
	}
	if u, ok := msg.Options.ClientID().(*dhcpv6.DUIDUUID); ok {
		c.UUID = duidUUID(u.UUID[:], !c.IPXE)
	}
	return c, true, ""
}

// vendorClass6 returns the first class string under enterprise 343, and whether option 16
// with that enterprise number was there at all.
func vendorClass6(msg *dhcpv6.Message) (string, bool) {
	for _, vc := range msg.Options.VendorClasses() {
		if vc.EnterpriseNumber != enterprisePXE {
			continue
		}
		if len(vc.Data) == 0 {
			return "", true
		}
		return string(vc.Data[0]), true
	}
	return "", false
}

// isIPXE6 reports whether user class (option 15) holds "iPXE".
func isIPXE6(msg *dhcpv6.Message) bool {
	for _, uc := range msg.Options.UserClasses() {
		if string(uc) == "iPXE" {
			return true
		}
	}
	return false
}

// clientMAC6 finds the client's MAC: DUID-LL or DUID-LLT with an Ethernet address, option 79
// (client link-layer address, set by relays), or the EUI-64 interface identifier of a
// link-local source (what EDK2 and iPXE use; privacy addresses are never link-local).
func clientMAC6(msg *dhcpv6.Message, src netip.Addr) net.HardwareAddr {
	switch d := msg.Options.ClientID().(type) {
	case *dhcpv6.DUIDLL:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return cloneMAC(d.LinkLayerAddr)
		}
	case *dhcpv6.DUIDLLT:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return cloneMAC(d.LinkLayerAddr)
		}
	}
	if o := msg.Options.GetOne(dhcpv6.OptionClientLinkLayerAddr); o != nil {
		if b := o.ToBytes(); len(b) == 8 && b[0] == 0 && b[1] == 1 {
			return cloneMAC(b[2:])
		}
	}
	return eui64MAC(src)
}

// eui64MAC recovers the MAC from a link-local address with a modified EUI-64 identifier
// (fe80::XXYY:ZZff:feUU:VVWW), or returns nil.
func eui64MAC(a netip.Addr) net.HardwareAddr {
	if !a.Is6() || !a.IsLinkLocalUnicast() {
		return nil
	}
	b := a.As16()
	if b[11] != 0xff || b[12] != 0xfe {
		return nil
	}
	mac := net.HardwareAddr{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}
	if bytes.Equal(mac, make([]byte, 6)) {
		return nil
	}
	return mac
}

// duidUUID formats the 16 bytes of a DUID-UUID in the canonical text form (what QEMU's -uuid,
// dmidecode and rules show), or "" for an all-zero UUID. EDK2 copies the SMBIOS UUID in EFI
// byte order (the first three fields little-endian, as in DHCPv4 option 97); iPXE writes it in
// network byte order as RFC 6355 says. Both were checked against QEMU's -uuid in
// TestIPv6ProxyOVMFPXE.
func duidUUID(g []byte, efiOrder bool) string {
	if len(g) != 16 || bytes.Equal(g, make([]byte, 16)) {
		return ""
	}
	if efiOrder {
		return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x",
			g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8:10], g[10:16])
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}
