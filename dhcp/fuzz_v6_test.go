package dhcp

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// fuzzSeeds6 are the client messages of v6_test.go as bytes.
func fuzzSeeds6() map[string][]byte {
	req := edk2Solicit6(false)
	req.MessageType = dhcpv6.MessageTypeRequest
	rapid := edk2Solicit6(true)
	rapid.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	return map[string][]byte{
		"edk2-pxe-solicit":   edk2Solicit6(false).ToBytes(),
		"edk2-http-solicit":  edk2Solicit6(true).ToBytes(),
		"edk2-request":       req.ToBytes(),
		"edk2-rapid-commit":  rapid.ToBytes(),
		"ipxe-solicit":       ipxeSolicit6(dhcpv6.MessageTypeSolicit).ToBytes(),
		"ipxe-info-request":  ipxeSolicit6(dhcpv6.MessageTypeInformationRequest).ToBytes(),
		"relay-forw-garbage": {12, 0, 0xfe, 0x80},
		"relay-forw-solicit": relayed(edk2Solicit6(false)),
	}
}

func relayed(m *dhcpv6.Message) []byte {
	fw := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, LinkAddr: net.ParseIP("fd00:77::"),
		PeerAddr: net.ParseIP("fe80::5054:ff:fe12:3456")}
	fw.Options.Add(dhcpv6.OptInterfaceID([]byte("eth7")))
	fw.Options.Add(dhcpv6.OptRelayMessage(m))
	return fw.ToBytes()
}

// FuzzHandle6 feeds arbitrary bytes through DHCPv6 parsing, classification and every reply
// path (proxy on 547 and 4011, full mode): no panic, and every reply fits in 1232 bytes.
func FuzzHandle6(f *testing.F) {
	for _, b := range fuzzSeeds6() {
		f.Add(b)
	}
	full, err := newFullState6(FullConfig6{PoolStart: netip.MustParseAddr("fd00:77::100"),
		PoolEnd: netip.MustParseAddr("fd00:77::104"), LeaseDB: filepath.Join(f.TempDir(), "fuzz.db")}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { full.close() })
	proxy := &handler6{mode: ModeProxy, policy: testPolicy6{}, log: quietLog(), serverID: serverDUID(nil)}
	fullH := &handler6{mode: ModeFull, policy: testPolicy6{}, log: quietLog(), serverID: serverDUID(nil), full: full}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, h := range []*handler6{proxy, fullH} {
			for _, pxe := range []bool{false, true} {
				m, relay, err := parse6(b, pxe)
				if err != nil {
					continue
				}
				src := clientLL6
				if pxe {
					src = netip.MustParseAddrPort("[fd00:77::1:105]:4011")
				}
				rq := request6{msg: m, src: src, server: server6, iface: "br0", pxePort: pxe}
				if relay != nil {
					rq.relay = netip.MustParseAddrPort("[fd00:99::1]:547")
					rq.linkAddr, _ = netip.AddrFromSlice(relay.LinkAddr)
				}
				resp, err := h.handle(context.Background(), rq)
				if err != nil || resp == nil {
					continue
				}
				if n := len(resp.msg.ToBytes()); n > MaxReply6Size {
					t.Fatalf("reply of %d bytes", n)
				}
				if _, err := dhcpv6.MessageFromBytes(resp.msg.ToBytes()); err != nil {
					t.Fatalf("reply does not parse: %v", err)
				}
				if relay != nil {
					if _, err := dhcpv6.RelayMessageFromBytes(relayReply(relay, resp.msg).ToBytes()); err != nil {
						t.Fatalf("relay reply does not parse: %v", err)
					}
				}
			}
		}
	})
}
