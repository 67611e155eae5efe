package boot

import "net/netip"

// Decision is what the DHCP server tells one client to boot: Policy.Decide makes it, package
// dhcp puts it on the wire (dhcp.Decision is this type). It is defined here, not in dhcp, because
// deciding is policy and dhcp is an edge that already depends on boot (Client, reservations,
// DHCP options); one type means no copy field by field between the two.
type Decision struct {
	// BootFile is a TFTP path (relative to the TFTP root) or an absolute http(s) URL (iPXE
	// scripts, UEFI HTTP Boot: a URL with an IP-literal host).
	BootFile string
	// BCDPath, when set, is DHCP option 252: the BCD path Windows Boot Manager loaded natively
	// over PXE (wdsnbp.com, pxeboot.n12, bootmgfw.efi) reads over TFTP (native WinPE).
	BCDPath string
	// NoBoot means: do not netboot this client. Proxy mode ignores the client; full mode still
	// gives it an address, without boot information.
	NoBoot bool
	Reason string // why, for logs
	// NextServer, when valid, is the TFTP server the client must use (listen.tftp_advertise:
	// a NAT address, or one of several): siaddr, option 66 and, on port 4011, sname. Zero means
	// the address the client reached the server at. Option 54 always stays that address:
	// clients address their REQUESTs to it. The DHCP handler fills it from its config.
	NextServer netip.Addr
	// RaspberryPi answers a Raspberry Pi bootloader: the Pi boot menu in option 43 and the TFTP
	// server in siaddr and option 66, no boot file (the Pi fetches fixed names). The DHCP
	// handler sets it for Pi clients itself; a Policy never needs to.
	RaspberryPi bool
}

// String is the mode's name in the config ("off" for the zero value). DHCPMode is the one
// definition of the DHCP mode: dhcp.Mode is this type.
func (m DHCPMode) String() string {
	if m == "" {
		return string(DHCPOff)
	}
	return string(m)
}
