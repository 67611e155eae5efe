package ops

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
)

// TestExchange6: a DHCPv6 exchange shows the client (by the MAC its DUID or link-local address
// gave) as DHCP-seen with its firmware and boot file, and the trace names DHCPv6 and the DUID.
func TestExchange6(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	h := NewHub(Options{MaxClients: 8, TTL: time.Hour, TraceLen: 4, Now: func() time.Time { return now }})
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x77, 0x81, 0x6a}
	c := dhcp.Client6{Client: boot.Client{MAC: mac, Arch: 7, Firmware: boot.FirmwareEFI64}, DUID: "000400112233"}
	h.Exchange6(c, dhcpv6.MessageTypeSolicit, dhcp.Decision{BootFile: "ipxe/snponly.efi"}, nil)
	v, trace, ok := h.Client(mac.String())
	if !ok || !v.DHCP || v.Firmware != "efi64" || v.BootFile != "ipxe/snponly.efi" {
		t.Fatalf("client %+v ok=%v", v, ok)
	}
	if len(trace) != 1 || !strings.Contains(trace[0].What, "DHCPv6 SOLICIT (DUID 000400112233) -> ipxe/snponly.efi") {
		t.Errorf("trace %+v", trace)
	}
	h.Exchange6(c, dhcpv6.MessageTypeRequest, dhcp.Decision{}, errors.New("policy failed"))
	v, trace, _ = h.Client(mac.String())
	if v.LastError == "" || len(trace) != 2 || trace[1].Status != "no reply" {
		t.Errorf("error not shown: %+v %+v", v, trace)
	}
	// No MAC and no address: nothing to key the client by, nothing shown.
	h.Exchange6(dhcp.Client6{DUID: "0004ff"}, dhcpv6.MessageTypeSolicit, dhcp.Decision{}, nil)
	if n := len(h.Clients()); n != 1 {
		t.Errorf("%d clients, want 1", n)
	}
}
