package dhcp

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// fuzzSeeds are the captured-client packets (see packets_test.go).
func fuzzSeeds() map[string][]byte {
	return map[string][]byte{
		"ipxe-bios-discover": ipxeBIOSDiscover().bytes(),
		"ipxe-efi-discover":  ipxeEFIDiscover().bytes(),
		"ovmf-pxe-discover":  ovmfPXEDiscover().bytes(),
		"ovmf-pxe-4011":      ovmfPXERequest4011().bytes(),
		"ovmf-http-discover": ovmfHTTPDiscover().bytes(),
		"ipxe-pxebs-xid0":    ipxePXEBSRequest().bytes(),
		"relayed-discover":   relayedDiscover().bytes(),
		"plain-discover":     plainDiscover().bytes(),
		"ipxe-request-us":    ipxeBIOSDiscover().with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, server.AsSlice()}).bytes(),
		"init-reboot":        ovmfPXEDiscover().with(msg(dhcpv4.MessageTypeRequest), rawOpt{50, ipb("10.77.0.105")}).bytes(),
		"decline":            ovmfPXEDiscover().with(msg(dhcpv4.MessageTypeDecline), rawOpt{50, ipb("10.77.0.105")}).bytes(),
		"raspberry-pi4":      piDiscover(macPi4, nil).bytes(),
		"raspberry-pi3-uuid": piDiscover(macX86, append([]byte{0}, bytes.Repeat([]byte{0x44}, 16)...)).bytes(),
	}
}

// FuzzHandle feeds arbitrary bytes through parsing, classification and every reply path
// (proxy on 67 and 4011, full mode on 67): no panic, and every reply fits in 1472 bytes.
func FuzzHandle(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	full, err := newFullState(FullConfig{
		PoolStart: netip.MustParseAddr("10.77.0.100"), PoolEnd: netip.MustParseAddr("10.77.0.110"),
		Netmask: netip.MustParseAddr("255.255.255.0"), LeaseDB: filepath.Join(f.TempDir(), "fuzz.db"),
		// Reservations and extra options (reserve_test.go): more than fits in one reply.
		Reservations: []boot.Reservation{{MAC: macOVMF.String(), IP: netip.MustParseAddr("10.77.0.105"), Name: "ovmf"},
			{MAC: macPlain, IP: netip.MustParseAddr("10.77.0.50"), Name: "plain"}},
		Options: []boot.DHCPOption{opt(42, 10, 77, 0, 1), opt(224, bytes.Repeat([]byte{1}, 255)...),
			opt(225, bytes.Repeat([]byte{2}, 255)...), opt(226, bytes.Repeat([]byte{3}, 255)...)},
		RuleOptions: []RuleOptions{{Match: boot.Match{MAC: "*"}, Options: []boot.DHCPOption{opt(1, 255, 255, 0, 0),
			opt(227, bytes.Repeat([]byte{4}, 255)...), opt(228, bytes.Repeat([]byte{5}, 255)...)}}},
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { full.close() })
	proxy := &handler{mode: ModeProxy, policy: testPolicy{}, log: quietLog(), raspberryPi: true, nextServer: natTFTP}
	fullH := &handler{mode: ModeFull, policy: testPolicy{}, log: quietLog(), full: full, raspberryPi: true}
	src := netip.MustParseAddrPort("10.77.0.142:68")
	f.Fuzz(func(t *testing.T, b []byte) {
		pkt, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		Classify(pkt)
		for _, c := range []struct {
			h    *handler
			port int
		}{{proxy, 67}, {proxy, 4011}, {fullH, 67}} {
			resp, _ := c.h.handle(context.Background(), request{pkt: pkt, port: c.port, src: src, server: server, iface: "br0"})
			if resp == nil {
				continue
			}
			if c.h.mode == ModeProxy && !resp.pkt.YourIPAddr.IsUnspecified() {
				t.Fatalf("proxy reply offers an address: %v", resp.pkt.YourIPAddr)
			}
			if n := len(resp.pkt.ToBytes()); n > MaxReplySize {
				t.Fatalf("%s reply on port %d is %d bytes", resp.pkt.MessageType(), c.port, n)
			}
			if _, err := dhcpv4.FromBytes(resp.pkt.ToBytes()); err != nil {
				t.Fatalf("reply does not parse back: %v", err)
			}
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzHandle from fuzzSeeds when
// PXEWIM_WRITE_FUZZ_SEEDS=1 (the files are committed; this keeps them in step with the packets).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("PXEWIM_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set PXEWIM_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzHandle")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHandle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
