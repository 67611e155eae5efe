package dhcp

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// Raspberry Pi network boot.
//
// The Pi's boot ROM (Pi 3) and EEPROM bootloader (Pi 4, Pi 5) send a DISCOVER that looks like an
// x86 BIOS PXE ROM: vendor class "PXEClient:Arch:00000:UNDI:002001", option 93 = 0. They load
// nothing unless the offer carries a PXE boot menu in option 43 whose item reads "Raspberry Pi
// Boot" (the text dnsmasq's `pxe-service=0,"Raspberry Pi Boot"` produces), and they then fetch
// fixed file names over TFTP from siaddr or option 66 (an IP literal: the bootloader has no DNS
// resolver): bootcode.bin on a Pi 3, `<serial>/start4.elf` then `start4.elf` on a Pi 4. The
// boot file name in the offer is ignored, so a Pi gets no Policy decision: handing it an iPXE
// binary would be useless.

// raspberryPiOUIs are the MAC prefixes of Raspberry Pi boards (Raspberry Pi Foundation and
// Raspberry Pi Trading).
var raspberryPiOUIs = [][3]byte{
	{0xb8, 0x27, 0xeb},
	{0xdc, 0xa6, 0x32},
	{0xe4, 0x5f, 0x01},
	{0x28, 0xcd, 0xc1},
	{0xd8, 0x3a, 0xdd},
	{0x2c, 0xcf, 0x67},
}

// raspberryPiVendor is the vendor class the Pi bootloaders send. Real x86 BIOS PXE ROMs send
// the same string, so on its own it proves nothing.
const raspberryPiVendor = "PXEClient:Arch:00000:UNDI:002001"

// raspberryPiUUID is the option 97 value the Pi 3 boot ROM sends (type 0, then 16 bytes 0x44):
// it marks a Pi whatever its MAC.
var raspberryPiUUID = append([]byte{0}, bytes.Repeat([]byte{0x44}, 16)...)

// raspberryPiMenu is the option 43 a Pi needs: 43.6 discovery control = 3 (no broadcast or
// multicast boot-server discovery), 43.10 menu prompt (timeout 0, "PXE"), 43.9 boot menu with
// one item of type 0 described as "Raspberry Pi Boot" padded with three spaces to 20 bytes (the
// padded form is what the Pi documentation and most working dnsmasq and ISC configs use; early
// Pi 3 firmware compared 20 bytes), then the end marker.
var raspberryPiMenu = func() []byte {
	const item = "Raspberry Pi Boot   "
	b := []byte{6, 1, 3, 10, 4, 0, 'P', 'X', 'E', 9, byte(3 + len(item)), 0, 0, byte(len(item))}
	b = append(b, item...)
	return append(b, 255)
}()

// IsRaspberryPiMAC reports whether mac belongs to a Raspberry Pi board (by its OUI).
func IsRaspberryPiMAC(mac net.HardwareAddr) bool {
	if len(mac) != 6 {
		return false
	}
	for _, oui := range raspberryPiOUIs {
		if mac[0] == oui[0] && mac[1] == oui[1] && mac[2] == oui[2] {
			return true
		}
	}
	return false
}

// isRaspberryPi reports whether a classified netboot request comes from a Pi bootloader: arch 0,
// not iPXE, not HTTP Boot, and either a Pi MAC or the Pi 3 boot ROM's option 97.
func isRaspberryPi(pkt *dhcpv4.DHCPv4, c boot.Client) bool {
	if c.Arch != 0 || c.IPXE || c.HTTPBoot {
		return false
	}
	if IsRaspberryPiMAC(c.MAC) {
		return true
	}
	return string(pkt.Options.Get(dhcpv4.OptionClassIdentifier)) == raspberryPiVendor &&
		bytes.Equal(pkt.Options.Get(optClientUUID), raspberryPiUUID)
}

// setRaspberryPi puts the Pi boot menu in option 43 and names the TFTP server in siaddr and
// option 66 (dotted quad: the Pi resolves no names).
func setRaspberryPi(r *dhcpv4.DHCPv4, tftp netip.Addr) {
	r.Options.Update(dhcpv4.OptGeneric(optVendorSpecific, append([]byte(nil), raspberryPiMenu...)))
	setNextServer(r, tftp, true)
}

// setNextServer names the TFTP server clients must use: siaddr always, option 66 when asked
// (an advertised address, or a Raspberry Pi, whose bootloader prefers 66).
func setNextServer(r *dhcpv4.DHCPv4, tftp netip.Addr, opt66 bool) {
	if !tftp.Is4() || tftp.IsUnspecified() {
		return
	}
	r.ServerIPAddr = tftp.AsSlice()
	if opt66 {
		r.Options.Update(dhcpv4.OptTFTPServerName(tftp.String()))
	}
}
