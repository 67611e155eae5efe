package httpboot

import (
	"bytes"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/pxewim/pxewim/boot"
)

// IPXEQuery is the query string to append to a script URL handed to iPXE (for example in DHCP
// option 67: "http://10.0.0.1/boot.ipxe?" + IPXEQuery). iPXE expands the variables before it
// fetches the URL, so the handler learns the client's MAC, SMBIOS UUID, build architecture
// (i386, x86_64, arm32, arm64) and platform (pcbios, efi) even through NAT or a proxy.
const IPXEQuery = "mac=${mac:hexhyp}&uuid=${uuid}&arch=${buildarch}&platform=${platform}"

// Clients finds what DHCP learned about the client using an IP address. The dhcp package's
// client table implements it; ok is false when the address is unknown.
type Clients interface {
	LookupIP(ip netip.Addr) (c boot.Client, ok bool)
}

// MACClients is optionally implemented by a Clients (boot.Registry does): when the request
// names a MAC, DHCP's record is looked up by it, which also works when the client's HTTP source
// address is not the one DHCP saw.
type MACClients interface {
	LookupMAC(mac net.HardwareAddr) (c boot.Client, ok bool)
}

// ClientsFunc adapts a function to the Clients interface.
type ClientsFunc func(ip netip.Addr) (boot.Client, bool)

// LookupIP calls f.
func (f ClientsFunc) LookupIP(ip netip.Addr) (boot.Client, bool) { return f(ip) }

// ClientInfo is who sent an HTTP request, as far as the handler can tell.
type ClientInfo struct {
	// Client holds the identity: MAC from ?mac=, the /mac/ path prefix or DHCP (nil when
	// unknown); IP is the connection's remote address; UUID from ?uuid= or DHCP; Arch,
	// Firmware, HTTPBoot, IPXE and Interface from DHCP when it knows the client.
	boot.Client
	// FromDHCP reports that Clients knew the remote IP (and, if the request named a MAC, the
	// same MAC): the embedded Client's DHCP fields are then filled in.
	FromDHCP bool
	// BuildArch and Platform are iPXE's ${buildarch} and ${platform} from the query ("" when
	// absent): they say what iPXE binary runs now, which DHCP cannot tell after a chainload.
	BuildArch string
	Platform  string
	// Query is the whole query string, for policy rules on other iPXE variables.
	Query url.Values
	// UserAgent is the request's User-Agent (iPXE/..., UefiHttpBoot/1.0, curl/...).
	UserAgent string
}

// MACString is the client's MAC in colon form, or "" when unknown (for logs and maps).
func (c ClientInfo) MACString() string {
	if len(c.MAC) == 0 {
		return ""
	}
	return c.MAC.String()
}

// identify builds the ClientInfo of a request. pathMAC comes from a /mac/ prefix.
func identify(r *http.Request, pathMAC net.HardwareAddr, clients Clients) ClientInfo {
	q := r.URL.Query()
	ci := ClientInfo{
		BuildArch: q.Get("arch"),
		Platform:  q.Get("platform"),
		Query:     q,
		UserAgent: r.UserAgent(),
	}
	ci.IP = remoteIP(r)
	ci.UUID = canonicalUUID(q.Get("uuid"))
	ci.MAC = pathMAC
	if ci.MAC == nil {
		// A malformed ?mac= (for example an unexpanded or empty iPXE variable) is not an
		// error: the client can still be found by its IP address.
		ci.MAC, _ = ParseMAC(q.Get("mac"))
	}
	if clients == nil {
		return ci
	}
	known, ok := boot.Client{}, false
	if mc, canMAC := clients.(MACClients); canMAC && ci.MAC != nil {
		known, ok = mc.LookupMAC(ci.MAC)
	}
	if !ok {
		known, ok = clients.LookupIP(ci.IP)
	}
	if !ok || (ci.MAC != nil && known.MAC != nil && !bytes.Equal(ci.MAC, known.MAC)) {
		// A different MAC behind the same IP (NAT, a proxy, a re-used lease): DHCP's record
		// describes another machine, so do not mix it in.
		return ci
	}
	mac, uuid, ip := ci.MAC, ci.UUID, ci.IP
	ci.Client, ci.FromDHCP = known, true
	ci.IP = ip
	if mac != nil {
		ci.MAC = mac
	}
	if uuid != "" {
		ci.UUID = uuid
	}
	return ci
}

// remoteIP is the request's peer address, with IPv4-mapped IPv6 unmapped.
func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// canonicalUUID lower-cases a UUID from the query and drops the all-zero one, which firmware
// reports when the machine has none (QEMU without -uuid): it names no machine, as in DHCP.
func canonicalUUID(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if strings.Trim(s, "0-") == "" {
		return ""
	}
	return s
}
