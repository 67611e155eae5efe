package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// MaxReplySize is the largest reply sent. EDK2 ignores offers over 1472 bytes (the payload of
// a 1500-byte Ethernet frame minus IP and UDP headers); the builders refuse to exceed it.
const MaxReplySize = 1472

// fileFieldMax is how much of the boot file name the fixed BOOTP `file` field holds (128 bytes
// with a terminating NUL). dhcpv4 truncates longer names silently.
const fileFieldMax = 127

// Decision is the Policy's answer for one client (boot.Decision: one definition, made by the
// policy, put on the wire here).
type Decision = boot.Decision

// Policy chooses what a client boots. The integrator implements it: stock PXE firmware gets an
// iPXE binary over TFTP, iPXE gets an HTTP script URL, UEFI HTTP Boot gets the URL of an EFI
// binary. server is the address the client reaches this server at (use it to build URLs).
type Policy interface {
	Decide(ctx context.Context, c boot.Client, server netip.Addr) (Decision, error)
}

// PolicyFunc adapts a function to Policy.
type PolicyFunc func(ctx context.Context, c boot.Client, server netip.Addr) (Decision, error)

// Decide calls f.
func (f PolicyFunc) Decide(ctx context.Context, c boot.Client, server netip.Addr) (Decision, error) {
	return f(ctx, c, server)
}

// Observer sees every exchange with a netboot client (dashboard, metrics, per-client trace).
// msgType is the type of the client's message; err is non-nil when no reply could be sent.
// Exchange is called from the packet goroutines and must not block for long.
type Observer interface {
	Exchange(c boot.Client, msgType dhcpv4.MessageType, d Decision, err error)
}

// Lease is what a full-mode offer or ack hands out.
type Lease struct {
	IP        netip.Addr
	Netmask   netip.Addr
	Router    netip.Addr   // zero: no option 3
	DNS       []netip.Addr // empty: no option 6
	Domain    string       // empty: no option 15
	LeaseTime time.Duration
	HostName  string // empty: no option 12 (a reservation's name)
	// Extra are further options (dhcp.full.options, rules[].dhcp_options), set after the ones
	// above (so 6 and 15 given here replace DNS and Domain) and before the boot information.
	Extra []boot.DHCPOption
}

// ErrReplyTooLarge is returned when a reply would exceed MaxReplySize.
var ErrReplyTooLarge = errors.New("dhcp: reply larger than 1472 bytes")

// ProxyOffer builds the port-67 proxy DHCPOFFER for a netboot client: yiaddr 0, siaddr = the
// TFTP server (server), boot information only.
func ProxyOffer(req *dhcpv4.DHCPv4, c boot.Client, server netip.Addr, d Decision) (*dhcpv4.DHCPv4, error) {
	r, err := proxyReply(req, c, server, d, dhcpv4.MessageTypeOffer)
	if err != nil {
		return nil, fmt.Errorf("proxy offer for %s: %w", c.MAC, err)
	}
	return r, nil
}

// ProxyAck builds the port-67 DHCPACK to a REQUEST that named this proxy in option 54.
func ProxyAck(req *dhcpv4.DHCPv4, c boot.Client, server netip.Addr, d Decision) (*dhcpv4.DHCPv4, error) {
	r, err := proxyReply(req, c, server, d, dhcpv4.MessageTypeAck)
	if err != nil {
		return nil, fmt.Errorf("proxy ack for %s: %w", c.MAC, err)
	}
	return r, nil
}

// ProxyAck4011 builds the boot-server DHCPACK for a REQUEST or INFORM received on port 4011.
// It carries siaddr, sname (the server address), file/67, 54, 60 and 97, and echoes the
// client's 43.71 boot item: iPXE's boot-server discovery drops an ACK whose boot item type
// differs from the one it asked for.
func ProxyAck4011(req *dhcpv4.DHCPv4, c boot.Client, server netip.Addr, d Decision) (*dhcpv4.DHCPv4, error) {
	r, err := newReply(req, server, dhcpv4.MessageTypeAck)
	if err != nil {
		return nil, fmt.Errorf("port 4011 ack for %s: %w", c.MAC, err)
	}
	r.ClientIPAddr = append(net.IP(nil), req.ClientIPAddr.To4()...)
	r.ServerHostName = server.String()
	if d.NextServer.Is4() && !d.NextServer.IsUnspecified() {
		r.ServerHostName = d.NextServer.String()
	}
	setVendorClass(r, c)
	copyOption(r, req, optClientUUID)
	if item := bootItem(req.Options.Get(optVendorSpecific)); item != nil {
		r.Options.Update(dhcpv4.OptGeneric(optVendorSpecific, append(item, 255)))
	}
	if err := setBootFile(r, c, d); err != nil {
		return nil, fmt.Errorf("port 4011 ack for %s: %w", c.MAC, err)
	}
	setNextServer(r, d.NextServer, true)
	if err := checkSize(r); err != nil {
		return nil, fmt.Errorf("port 4011 ack for %s: %w", c.MAC, err)
	}
	return r, nil
}

// Offer builds a full-mode DHCPOFFER handing out l; netboot clients (c non-nil and d not NoBoot)
// also get the boot information.
func Offer(req *dhcpv4.DHCPv4, c *boot.Client, server netip.Addr, d Decision, l Lease) (*dhcpv4.DHCPv4, error) {
	return fullReply(req, c, server, d, l, dhcpv4.MessageTypeOffer)
}

// Ack builds a full-mode DHCPACK for l. For an INFORM pass a Lease with only Netmask, Router and
// DNS set: yiaddr stays 0 and no lease time is sent (RFC 2131 4.3.5).
func Ack(req *dhcpv4.DHCPv4, c *boot.Client, server netip.Addr, d Decision, l Lease) (*dhcpv4.DHCPv4, error) {
	return fullReply(req, c, server, d, l, dhcpv4.MessageTypeAck)
}

// Nak builds a DHCPNAK: the client must restart from DISCOVER. msg goes in option 56.
func Nak(req *dhcpv4.DHCPv4, server netip.Addr, msg string) (*dhcpv4.DHCPv4, error) {
	r, err := newReply(req, server, dhcpv4.MessageTypeNak)
	if err != nil {
		return nil, fmt.Errorf("nak: %w", err)
	}
	r.ServerIPAddr = net.IPv4zero.To4()
	if msg != "" {
		r.Options.Update(dhcpv4.OptMessage(msg))
	}
	return r, nil
}

func proxyReply(req *dhcpv4.DHCPv4, c boot.Client, server netip.Addr, d Decision, mt dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	r, err := newReply(req, server, mt)
	if err != nil {
		return nil, err
	}
	if err := setBootInfo(r, req, c, d); err != nil {
		return nil, err
	}
	return r, checkSize(r)
}

// setBootInfo adds what a netboot client needs to an offer or ack: vendor class, option 97,
// option 43 where the firmware wants it, the boot file and the TFTP server.
func setBootInfo(r, req *dhcpv4.DHCPv4, c boot.Client, d Decision) error {
	setVendorClass(r, c)
	copyOption(r, req, optClientUUID)
	if d.RaspberryPi {
		next := d.NextServer
		if !next.Is4() || next.IsUnspecified() {
			next, _ = netip.AddrFromSlice(r.ServerIPAddr.To4())
		}
		setRaspberryPi(r, next)
		return nil
	}
	if wantsDiscoveryControl(c) {
		// 43.6 = 0x08: use the boot file in this offer, skip boot-server discovery.
		r.Options.Update(dhcpv4.OptGeneric(optVendorSpecific, []byte{6, 1, 8, 255}))
	}
	if err := setBootFile(r, c, d); err != nil {
		return err
	}
	setNextServer(r, d.NextServer, true)
	return nil
}

func fullReply(req *dhcpv4.DHCPv4, c *boot.Client, server netip.Addr, d Decision, l Lease, mt dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	r, err := newReply(req, server, mt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mt, err)
	}
	if l.IP.Is4() {
		r.YourIPAddr = l.IP.AsSlice()
	}
	if req.MessageType() == dhcpv4.MessageTypeInform {
		r.ClientIPAddr = append(net.IP(nil), req.ClientIPAddr.To4()...)
	}
	setLeaseOptions(r, l)
	if c != nil && !d.NoBoot {
		if err := setBootInfo(r, req, *c, d); err != nil {
			return nil, fmt.Errorf("%s for %s: %w", mt, c.MAC, err)
		}
	}
	if err := checkSize(r); err != nil {
		return nil, fmt.Errorf("%s: %w", mt, err)
	}
	return r, nil
}

func setLeaseOptions(r *dhcpv4.DHCPv4, l Lease) {
	if l.Netmask.Is4() {
		r.Options.Update(dhcpv4.OptSubnetMask(net.IPMask(l.Netmask.AsSlice())))
	}
	if l.Router.Is4() {
		r.Options.Update(dhcpv4.OptRouter(l.Router.AsSlice()))
	}
	if len(l.DNS) > 0 {
		ips := make([]net.IP, 0, len(l.DNS))
		for _, a := range l.DNS {
			ips = append(ips, a.AsSlice())
		}
		r.Options.Update(dhcpv4.OptDNS(ips...))
	}
	if l.Domain != "" {
		r.Options.Update(dhcpv4.OptDomainName(l.Domain))
	}
	if l.HostName != "" {
		r.Options.Update(dhcpv4.OptHostName(l.HostName))
	}
	for _, o := range l.Extra {
		r.Options.Update(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(o.Code), append([]byte(nil), o.Value...)))
	}
	if l.LeaseTime > 0 {
		r.Options.Update(dhcpv4.OptIPAddressLeaseTime(l.LeaseTime))
		r.Options.Update(dhcpv4.OptRenewTimeValue(l.LeaseTime / 2))
		r.Options.Update(dhcpv4.OptRebindingTimeValue(l.LeaseTime * 7 / 8))
	}
}

// newReply copies what every reply copies from the request (op, htype, xid, flags, giaddr,
// chaddr, option 82) and sets 53, 54 and siaddr. yiaddr and ciaddr start at 0.
func newReply(req *dhcpv4.DHCPv4, server netip.Addr, mt dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	if !server.Is4() || server.IsUnspecified() {
		return nil, fmt.Errorf("server address %v is not a usable IPv4 address", server)
	}
	r := &dhcpv4.DHCPv4{
		OpCode:         dhcpv4.OpcodeBootReply,
		HWType:         req.HWType,
		TransactionID:  req.TransactionID,
		Flags:          req.Flags,
		ClientIPAddr:   net.IPv4zero.To4(),
		YourIPAddr:     net.IPv4zero.To4(),
		ServerIPAddr:   server.AsSlice(),
		GatewayIPAddr:  ipv4OrZero(req.GatewayIPAddr),
		ClientHWAddr:   cloneMAC(req.ClientHWAddr),
		ServerHostName: "",
		Options:        dhcpv4.Options{},
	}
	r.Options.Update(dhcpv4.OptMessageType(mt))
	r.Options.Update(dhcpv4.OptServerIdentifier(server.AsSlice()))
	copyOption(r, req, dhcpv4.OptionRelayAgentInformation)
	return r, nil
}

// setVendorClass echoes the client's vendor class family: EDK2 HTTP Boot requires
// "HTTPClient" in the offer, PXE clients require "PXEClient".
func setVendorClass(r *dhcpv4.DHCPv4, c boot.Client) {
	v := vendorPXE
	if c.HTTPBoot {
		v = vendorHTTP
	}
	r.Options.Update(dhcpv4.OptClassIdentifier(v))
}

// wantsDiscoveryControl reports whether the reply gets 43.6: BIOS PXE clients only. EDK2 drops
// proxy offers with 43.6 (tianocore/edk2#6944) and HTTP Boot has no use for option 43.
func wantsDiscoveryControl(c boot.Client) bool {
	return !c.HTTPBoot && c.Firmware == boot.FirmwareBIOS
}

// setBootFile puts d.BootFile into option 67 and, when it fits, into `file`.
func setBootFile(r *dhcpv4.DHCPv4, c boot.Client, d Decision) error {
	if c.HTTPBoot {
		if err := checkHTTPBootURL(d.BootFile); err != nil {
			return err
		}
	}
	if d.BCDPath != "" && !c.HTTPBoot {
		r.Options.Update(dhcpv4.OptGeneric(optBCDPath, []byte(d.BCDPath)))
	}
	if d.BootFile == "" {
		return nil
	}
	r.Options.Update(dhcpv4.OptBootFileName(d.BootFile))
	if len(d.BootFile) <= fileFieldMax {
		r.BootFileName = d.BootFile
	}
	return nil
}

// checkHTTPBootURL enforces what EDK2 HTTP Boot accepts from a proxy offer: an absolute http(s)
// URL whose host is an IP literal (a host name would need DNS from the address offer).
func checkHTTPBootURL(s string) error {
	if s == "" {
		return errors.New("HTTP Boot client needs a boot URL, policy gave none")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("HTTP Boot URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("HTTP Boot URL %q: scheme must be http or https", s)
	}
	if _, err := netip.ParseAddr(u.Hostname()); err != nil {
		return fmt.Errorf("HTTP Boot URL %q: host must be an IP literal", s)
	}
	return nil
}

// bootItem returns sub-option 71 (PXE boot item: type and layer) of a client's option 43, with
// its code and length, or nil.
func bootItem(opt43 []byte) []byte {
	for i := 0; i+1 < len(opt43); {
		code, n := opt43[i], int(opt43[i+1])
		switch code {
		case 0:
			i++
			continue
		case 255:
			return nil
		}
		if i+2+n > len(opt43) {
			return nil
		}
		if code == 71 && n == 4 {
			return append([]byte(nil), opt43[i:i+2+n]...)
		}
		i += 2 + n
	}
	return nil
}

func copyOption(r, req *dhcpv4.DHCPv4, oc dhcpv4.OptionCode) {
	if req.Options.Has(oc) {
		r.Options.Update(dhcpv4.OptGeneric(oc, append([]byte(nil), req.Options.Get(oc)...)))
	}
}

func checkSize(r *dhcpv4.DHCPv4) error {
	if n := len(r.ToBytes()); n > MaxReplySize {
		return fmt.Errorf("%w (%d bytes)", ErrReplyTooLarge, n)
	}
	return nil
}

func ipv4OrZero(ip net.IP) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return append(net.IP(nil), v4...)
	}
	return net.IPv4zero.To4()
}
