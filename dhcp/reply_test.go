package dhcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

var (
	bcast68 = netip.MustParseAddrPort("255.255.255.255:68")
	opt43   = dhcpv4.GenericOptionCode(43)
	opt60   = dhcpv4.GenericOptionCode(60)
	opt97   = dhcpv4.GenericOptionCode(97)
)

// checkProxyBasics asserts what every proxy reply must carry (pxe-protocol.md, proxy DHCP 4).
func checkProxyBasics(t *testing.T, req, r *dhcpv4.DHCPv4, mt dhcpv4.MessageType) {
	t.Helper()
	if r.OpCode != dhcpv4.OpcodeBootReply || r.MessageType() != mt {
		t.Errorf("op %v type %v, want BootReply %v", r.OpCode, r.MessageType(), mt)
	}
	if r.TransactionID != req.TransactionID || r.Flags != req.Flags || !bytes.Equal(r.ClientHWAddr, req.ClientHWAddr) {
		t.Errorf("xid/flags/chaddr not copied: %v %x %s", r.TransactionID, r.Flags, r.ClientHWAddr)
	}
	if !r.GatewayIPAddr.Equal(req.GatewayIPAddr) {
		t.Errorf("giaddr %v, want %v", r.GatewayIPAddr, req.GatewayIPAddr)
	}
	if !r.YourIPAddr.Equal(net.IPv4zero) {
		t.Errorf("yiaddr = %v in a proxy reply, want 0.0.0.0", r.YourIPAddr)
	}
	if !r.ServerIPAddr.Equal(server.AsSlice()) || !r.ServerIdentifier().Equal(server.AsSlice()) {
		t.Errorf("siaddr %v / option 54 %v, want %v", r.ServerIPAddr, r.ServerIdentifier(), server)
	}
	if req.Options.Has(opt97) && !bytes.Equal(r.Options.Get(opt97), req.Options.Get(opt97)) {
		t.Errorf("option 97 not echoed")
	}
	if n := len(r.ToBytes()); n >= MaxReplySize {
		t.Errorf("reply is %d bytes, want < %d", n, MaxReplySize)
	}
}

func TestProxyOffer(t *testing.T) {
	tests := []struct {
		name   string
		pkt    rawPkt
		vendor string
		opt43  []byte // nil: no option 43
		file   string
	}{
		{"iPXE BIOS gets 43.6=8 and the script URL", ipxeBIOSDiscover(), "PXEClient", []byte{6, 1, 8, 255}, "http://10.77.0.1:8080/boot.ipxe?mac=52:54:00:77:00:0d"},
		{"iPXE EFI: no option 43", ipxeEFIDiscover(), "PXEClient", nil, "http://10.77.0.1:8080/boot.ipxe?mac=52:54:00:77:00:0e"},
		{"OVMF PXE: no option 43 (edk2#6944)", ovmfPXEDiscover(), "PXEClient", nil, "snponly.efi"},
		{"OVMF HTTP Boot: HTTPClient + IP-literal URL", ovmfHTTPDiscover(), "HTTPClient", nil, "http://10.77.0.1/ipxe/snponly.efi"},
		{"stock BIOS PXE: 43.6=8, iPXE binary", ipxeBIOSDiscover().with(without(77), without(175)), "PXEClient", []byte{6, 1, 8, 255}, "undionly.kpxe"},
		{"relayed keeps giaddr", relayedDiscover(), "PXEClient", []byte{6, 1, 8, 255}, "http://10.77.0.1:8080/boot.ipxe?mac=52:54:00:77:00:0d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.pkt.parse(t)
			c, ok, why := Classify(req)
			if !ok {
				t.Fatal(why)
			}
			d, _ := testPolicy{}.Decide(context.Background(), c, server)
			r, err := ProxyOffer(req, c, server, d)
			if err != nil {
				t.Fatal(err)
			}
			checkProxyBasics(t, req, r, dhcpv4.MessageTypeOffer)
			if got := string(r.Options.Get(opt60)); got != tt.vendor {
				t.Errorf("option 60 = %q, want %q", got, tt.vendor)
			}
			if got := r.Options.Get(opt43); !bytes.Equal(got, tt.opt43) {
				t.Errorf("option 43 = %x, want %x", got, tt.opt43)
			}
			if r.BootFileNameOption() != tt.file || r.BootFileName != tt.file {
				t.Errorf("option 67 %q / file %q, want %q", r.BootFileNameOption(), r.BootFileName, tt.file)
			}
			// The wire form parses back to the same thing.
			back, err := dhcpv4.FromBytes(r.ToBytes())
			if err != nil || back.BootFileNameOption() != tt.file {
				t.Errorf("round trip: %v %q", err, back.BootFileNameOption())
			}
		})
	}
}

func TestProxyOfferLongBootFile(t *testing.T) {
	req := ipxeBIOSDiscover().parse(t)
	c, _, _ := Classify(req)
	long := "http://10.77.0.1:8080/" + strings.Repeat("a", 200) + ".ipxe"
	r, err := ProxyOffer(req, c, server, Decision{BootFile: long})
	if err != nil {
		t.Fatal(err)
	}
	if r.BootFileName != "" {
		t.Errorf("file field holds %d bytes of a %d-byte name; want it empty (127 max)", len(r.BootFileName), len(long))
	}
	back, _ := dhcpv4.FromBytes(r.ToBytes())
	if back.BootFileNameOption() != long {
		t.Errorf("option 67 lost the long name: %q", back.BootFileNameOption())
	}
	// A name of exactly 127 bytes still fits.
	exact := strings.Repeat("b", 127)
	r, _ = ProxyOffer(req, c, server, Decision{BootFile: exact})
	if back, _ := dhcpv4.FromBytes(r.ToBytes()); back.BootFileName != exact {
		t.Errorf("127-byte name not in file field")
	}
}

func TestProxyOfferRefusesOversize(t *testing.T) {
	req := ovmfPXEDiscover().parse(t)
	c, _, _ := Classify(req)
	_, err := ProxyOffer(req, c, server, Decision{BootFile: strings.Repeat("x", 1400)})
	if !errors.Is(err, ErrReplyTooLarge) {
		t.Fatalf("err = %v, want ErrReplyTooLarge", err)
	}
}

func TestHTTPBootURLRules(t *testing.T) {
	req := ovmfHTTPDiscover().parse(t)
	c, _, _ := Classify(req)
	for _, tt := range []struct {
		file string
		ok   bool
	}{
		{"http://10.77.0.1/ipxe.efi", true},
		{"http://[fd77::1]:8080/ipxe.efi", true},
		{"https://10.77.0.1/ipxe.efi", true},
		{"http://pxe.lab/ipxe.efi", false}, // host name: client has no DNS yet
		{"ipxe.efi", false},                // no URL: EDK2 drops the offer
		{"tftp://10.77.0.1/ipxe.efi", false},
		{"", false},
	} {
		_, err := ProxyOffer(req, c, server, Decision{BootFile: tt.file})
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v, want ok=%v", tt.file, err, tt.ok)
		}
	}
}

func TestProxyAck4011(t *testing.T) {
	tests := []struct {
		name  string
		pkt   rawPkt
		opt43 []byte
		file  string
	}{
		{"OVMF ProxyBinl request", ovmfPXERequest4011(), nil, "snponly.efi"},
		{"iPXE PXEBS: 43.71 echoed", ipxePXEBSRequest(), []byte{71, 4, 0x80, 0x02, 0, 0, 255}, "http://10.77.0.1:8080/boot.ipxe?mac=52:54:00:77:00:0d"},
		{"iPXE EFI ProxyDHCPREQUEST", ipxeEFIDiscover().with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, ipb("10.77.0.1")}), nil, "http://10.77.0.1:8080/boot.ipxe?mac=52:54:00:77:00:0e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.pkt.parse(t)
			c, ok, why := Classify(req)
			if !ok {
				t.Fatal(why)
			}
			d, _ := testPolicy{}.Decide(context.Background(), c, server)
			r, err := ProxyAck4011(req, c, server, d)
			if err != nil {
				t.Fatal(err)
			}
			checkProxyBasics(t, req, r, dhcpv4.MessageTypeAck)
			if got := r.Options.Get(opt43); !bytes.Equal(got, tt.opt43) {
				t.Errorf("option 43 = %x, want %x", got, tt.opt43)
			}
			if r.BootFileNameOption() != tt.file || r.ServerHostName != "10.77.0.1" {
				t.Errorf("67 %q sname %q", r.BootFileNameOption(), r.ServerHostName)
			}
			if !r.ClientIPAddr.Equal(req.ClientIPAddr) {
				t.Errorf("ciaddr %v, want %v", r.ClientIPAddr, req.ClientIPAddr)
			}
		})
	}
}

func TestBCDPath(t *testing.T) {
	d := Decision{BootFile: `boot\x64\wdsnbp.com`, BCDPath: `\Boot\BCD`}
	for _, p := range []rawPkt{ipxeBIOSDiscover().with(without(77), without(175)), ovmfPXEDiscover()} {
		req := p.parse(t)
		c, _, _ := Classify(req)
		offer, err := ProxyOffer(req, c, server, d)
		if err != nil {
			t.Fatal(err)
		}
		back, _ := dhcpv4.FromBytes(offer.ToBytes())
		if got := string(back.Options.Get(dhcpv4.GenericOptionCode(252))); got != `\Boot\BCD` {
			t.Errorf("option 252 = %q", got)
		}
		if back.BootFileName != d.BootFile {
			t.Errorf("file = %q", back.BootFileName)
		}
	}
	// Not without a BCD path.
	req := ovmfPXEDiscover().parse(t)
	c, _, _ := Classify(req)
	if r, _ := ProxyOffer(req, c, server, Decision{BootFile: "snponly.efi"}); r.Options.Has(dhcpv4.GenericOptionCode(252)) {
		t.Error("option 252 without a BCD path")
	}
}

func TestBootItem(t *testing.T) {
	for _, tt := range []struct {
		in, want []byte
	}{
		{[]byte{71, 4, 0x80, 2, 0, 0, 255}, []byte{71, 4, 0x80, 2, 0, 0}},
		{[]byte{0, 6, 1, 8, 71, 4, 1, 2, 3, 4}, []byte{71, 4, 1, 2, 3, 4}},
		{[]byte{71, 3, 1, 2, 3}, nil},         // wrong length
		{[]byte{71, 9, 1}, nil},               // truncated
		{[]byte{255, 71, 4, 1, 2, 3, 4}, nil}, // after end
		{nil, nil},
	} {
		if got := bootItem(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("bootItem(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
}

type recObserver struct {
	got []string
}

func (o *recObserver) Exchange(c boot.Client, mt dhcpv4.MessageType, d Decision, err error) {
	s := c.MAC.String() + " " + mt.String() + " " + d.BootFile
	if err != nil {
		s += " err"
	}
	o.got = append(o.got, s)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestHandleProxy(t *testing.T) {
	src68 := netip.MustParseAddrPort("10.77.0.142:68")
	tests := []struct {
		name     string
		pkt      rawPkt
		port     int
		src      netip.AddrPort
		wantType dhcpv4.MessageType // 0: no reply
		dst      netip.AddrPort
	}{
		{"iPXE DISCOVER -> broadcast offer", ipxeBIOSDiscover(), 67, netip.MustParseAddrPort("0.0.0.0:68"), dhcpv4.MessageTypeOffer, bcast68},
		{"OVMF DISCOVER -> broadcast offer", ovmfPXEDiscover(), 67, netip.MustParseAddrPort("0.0.0.0:68"), dhcpv4.MessageTypeOffer, bcast68},
		{"HTTP DISCOVER -> broadcast offer", ovmfHTTPDiscover(), 67, netip.MustParseAddrPort("0.0.0.0:68"), dhcpv4.MessageTypeOffer, bcast68},
		{"relayed -> giaddr:67", relayedDiscover(), 67, netip.MustParseAddrPort("10.78.0.1:67"), dhcpv4.MessageTypeOffer, netip.MustParseAddrPort("10.78.0.1:67")},
		{"REQUEST naming the site server: silent", ipxeBIOSDiscover().with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, site.AsSlice()}, rawOpt{50, ipb("10.77.0.142")}), 67, netip.MustParseAddrPort("0.0.0.0:68"), 0, netip.AddrPort{}},
		{"REQUEST without 54: silent", ipxeBIOSDiscover().with(msg(dhcpv4.MessageTypeRequest)), 67, netip.MustParseAddrPort("0.0.0.0:68"), 0, netip.AddrPort{}},
		{"REQUEST naming us -> ACK", ipxeBIOSDiscover().with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, server.AsSlice()}), 67, netip.MustParseAddrPort("0.0.0.0:68"), dhcpv4.MessageTypeAck, bcast68},
		{"plain client: silent", plainDiscover(), 67, netip.MustParseAddrPort("0.0.0.0:68"), 0, netip.AddrPort{}},
		{"INFORM on 67: silent", ovmfPXEDiscover().with(msg(dhcpv4.MessageTypeInform)), 67, src68, 0, netip.AddrPort{}},
		{"OVMF 4011 from 4011 -> ACK to src:4011", ovmfPXERequest4011(), 4011, netip.MustParseAddrPort("10.77.0.143:4011"), dhcpv4.MessageTypeAck, netip.MustParseAddrPort("10.77.0.143:4011")},
		{"PXEBS xid 0 -> ACK to src:68", ipxePXEBSRequest(), 4011, src68, dhcpv4.MessageTypeAck, src68},
		{"INFORM on 4011 -> ACK", ovmfPXERequest4011().with(msg(dhcpv4.MessageTypeInform)), 4011, netip.MustParseAddrPort("10.77.0.143:4011"), dhcpv4.MessageTypeAck, netip.MustParseAddrPort("10.77.0.143:4011")},
		{"4011 with no source address -> ciaddr", ovmfPXERequest4011(), 4011, netip.MustParseAddrPort("0.0.0.0:4011"), dhcpv4.MessageTypeAck, netip.MustParseAddrPort("10.77.0.143:4011")},
		{"DISCOVER on 4011: silent", ovmfPXEDiscover(), 4011, src68, 0, netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &recObserver{}
			h := &handler{mode: ModeProxy, policy: testPolicy{}, observer: obs, log: quietLog()}
			req := tt.pkt.parse(t)
			resp, err := h.handle(context.Background(), request{pkt: req, port: tt.port, src: tt.src, server: server, iface: "br0"})
			if tt.wantType == 0 {
				if resp != nil || !errors.Is(err, errIgnored) {
					t.Fatalf("got reply %v err %v, want ignored", resp, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.pkt.MessageType() != tt.wantType || resp.dst != tt.dst {
				t.Errorf("reply %v to %v, want %v to %v", resp.pkt.MessageType(), resp.dst, tt.wantType, tt.dst)
			}
			if resp.pkt.TransactionID != req.TransactionID {
				t.Errorf("xid %v, want %v", resp.pkt.TransactionID, req.TransactionID)
			}
			checkProxyBasics(t, req, resp.pkt, tt.wantType)
			if len(obs.got) != 1 || !strings.HasPrefix(obs.got[0], tt.pkt.mac.String()) {
				t.Errorf("observer saw %q", obs.got)
			}
		})
	}
}

func TestHandlePolicyError(t *testing.T) {
	obs := &recObserver{}
	fail := PolicyFunc(func(context.Context, boot.Client, netip.Addr) (Decision, error) {
		return Decision{}, errors.New("store offline")
	})
	h := &handler{mode: ModeProxy, policy: fail, observer: obs, log: quietLog()}
	resp, err := h.handle(context.Background(), request{pkt: ovmfPXEDiscover().parse(t), port: 67, server: server})
	if resp != nil || err == nil || !strings.Contains(err.Error(), "store offline") {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if len(obs.got) != 1 || !strings.HasSuffix(obs.got[0], "err") {
		t.Errorf("observer saw %q, want one failed exchange", obs.got)
	}
	// No boot file on 4011: no ACK (clients ignore it), an error for the log.
	h.policy = PolicyFunc(func(context.Context, boot.Client, netip.Addr) (Decision, error) { return Decision{}, nil })
	if resp, err := h.handle(context.Background(), request{pkt: ovmfPXERequest4011().parse(t), port: 4011, server: server,
		src: netip.MustParseAddrPort("10.77.0.143:4011")}); resp != nil || err == nil {
		t.Fatalf("empty boot file on 4011: resp %v err %v", resp, err)
	}
	// A hung policy is cut off.
	h.policy = PolicyFunc(func(ctx context.Context, _ boot.Client, _ netip.Addr) (Decision, error) {
		<-ctx.Done()
		return Decision{}, ctx.Err()
	})
	if _, err := h.handle(context.Background(), request{pkt: ovmfPXEDiscover().parse(t), port: 67, server: server}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung policy: err %v", err)
	}
	// NoBoot: silence, no error.
	h.policy = PolicyFunc(func(context.Context, boot.Client, netip.Addr) (Decision, error) { return Decision{NoBoot: true}, nil })
	if resp, err := h.handle(context.Background(), request{pkt: ovmfPXEDiscover().parse(t), port: 67, server: server}); resp != nil || err != nil {
		t.Fatalf("NoBoot: resp %v err %v", resp, err)
	}
}
