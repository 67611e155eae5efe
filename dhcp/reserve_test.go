package dhcp

import (
	"bytes"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// labConfig is newFullHandler's pool (10.77.0.100-110) with mutations.
func labConfig(db string, mut func(*FullConfig)) FullConfig {
	fc := FullConfig{
		PoolStart: netip.MustParseAddr("10.77.0.100"), PoolEnd: netip.MustParseAddr("10.77.0.110"),
		Netmask: netip.MustParseAddr("255.255.255.0"), Router: server,
		DNS: []netip.Addr{server}, Domain: "lab.test", LeaseTime: time.Hour, LeaseDB: db,
	}
	if mut != nil {
		mut(&fc)
	}
	return fc
}

// fullHandlerWith is newFullHandler with cfg; prev (may be nil) is the state a reload replaces.
func fullHandlerWith(t *testing.T, fc FullConfig, prev *handler) *handler {
	t.Helper()
	var p *fullState
	if prev != nil {
		p = prev.full
	}
	fs, err := newFullState(fc, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.close() })
	return &handler{mode: ModeFull, policy: testPolicy{}, log: quietLog(), full: fs}
}

func opt(code uint8, v ...byte) boot.DHCPOption { return boot.DHCPOption{Code: code, Value: v} }

var macPlain = "02:00:00:00:00:09" // plainDiscover's chaddr

func TestReservationAddressAndName(t *testing.T) {
	fc := labConfig(filepath.Join(t.TempDir(), "l.db"), func(fc *FullConfig) {
		fc.Reservations = []boot.Reservation{
			{MAC: macPlain, IP: netip.MustParseAddr("10.77.0.50"), Name: "bench50"}, // outside the pool
			{MAC: macOVMF.String(), IP: netip.MustParseAddr("10.77.0.105")},         // inside, no name
		}
	})
	h := fullHandlerWith(t, fc, nil)

	ack := h.dora(t, plainDiscover())
	if got := ip4(ack.YourIPAddr); got.String() != "10.77.0.50" {
		t.Fatalf("reserved client got %v, want 10.77.0.50", got)
	}
	if ack.HostName() != "bench50" {
		t.Errorf("option 12 = %q, want bench50", ack.HostName())
	}
	rec, err := h.full.leases.Get(netip.MustParseAddr("10.77.0.50"))
	if err != nil || rec == nil || rec.State != LeaseBound || rec.MAC != macPlain {
		t.Errorf("lease file record for the reservation outside the pool: %+v %v", rec, err)
	}
	ack = h.dora(t, ovmfPXEDiscover())
	if got := ip4(ack.YourIPAddr); got.String() != "10.77.0.105" || ack.Options.Has(dhcpv4.OptionHostName) {
		t.Errorf("second reservation: %v, 12=%q", got, ack.HostName())
	}
	// The others get pool addresses, never a reserved one: the pool scan starts at .100 and
	// .105 is skipped on the way.
	seen := map[string]bool{}
	for i := range 8 {
		p := plainDiscover()
		p.mac = net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}
		p = p.with(rawOpt{61, append([]byte{1}, p.mac...)})
		got := ip4(h.dora(t, p).YourIPAddr)
		if got.String() == "10.77.0.105" || got.String() == "10.77.0.50" || !h.full.leases.InPool(got) || seen[got.String()] {
			t.Fatalf("client %d got %v", i, got)
		}
		seen[got.String()] = true
	}
	// A reserved client asking for another address (its old pool lease) gets a NAK.
	r := h.do(t, plainDiscover().with(msg(dhcpv4.MessageTypeRequest), rawOpt{50, ipb("10.77.0.101")}))
	if r.pkt.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("reserved client's request for another address: %v", r.pkt.MessageType())
	}
}

// TestReservationWinsOverLease: a reservation added on reload for an address another client
// holds: the reserved MAC gets it at once; the old holder's renewal gets a NAK, and its new
// DISCOVER a pool address.
func TestReservationWinsOverLease(t *testing.T) {
	db := filepath.Join(t.TempDir(), "l.db")
	h := fullHandlerWith(t, labConfig(db, nil), nil)
	old := h.dora(t, plainDiscover())
	held := ip4(old.YourIPAddr)

	h2 := fullHandlerWith(t, labConfig(db, func(fc *FullConfig) {
		fc.Reservations = []boot.Reservation{{MAC: macOVMF.String(), IP: held, Name: "pc1"}}
	}), h)
	ack := h2.dora(t, ovmfPXEDiscover())
	if got := ip4(ack.YourIPAddr); got != held || ack.HostName() != "pc1" {
		t.Fatalf("reserved client got %v (12=%q), want %v", got, ack.HostName(), held)
	}
	renew := plainDiscover().with(msg(dhcpv4.MessageTypeRequest))
	renew.ciaddr = held.String()
	if r := h2.do(t, renew); r.pkt.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("old holder's renewal: %v, want NAK", r.pkt.MessageType())
	}
	// Asking for the address again in DISCOVER does not get it either.
	got := ip4(h2.dora(t, plainDiscover().with(rawOpt{50, held.AsSlice()})).YourIPAddr)
	if got == held || !h2.full.leases.InPool(got) {
		t.Fatalf("old holder got %v after the reservation", got)
	}
	all, _ := h2.full.leases.All()
	for _, r := range all {
		if r.IP == held && r.MAC != macOVMF.String() {
			t.Errorf("lease file still gives %v to %s", held, r.MAC)
		}
	}
}

// TestReservationByMACAcrossClientIDs: firmware without option 61, then the OS with one: the
// reserved address goes by MAC.
func TestReservationByMACAcrossClientIDs(t *testing.T) {
	h := fullHandlerWith(t, labConfig(filepath.Join(t.TempDir(), "l.db"), func(fc *FullConfig) {
		fc.Reservations = []boot.Reservation{{MAC: macPlain, IP: netip.MustParseAddr("10.77.0.60")}}
	}), nil)
	a := ip4(h.dora(t, plainDiscover().with(without(61))).YourIPAddr)
	b := ip4(h.dora(t, plainDiscover()).YourIPAddr)
	if a.String() != "10.77.0.60" || b != a {
		t.Fatalf("without 61: %v, with 61: %v; want 10.77.0.60 both times", a, b)
	}
}

func TestExtraOptionsInReply(t *testing.T) {
	tftp := []byte{10, 77, 0, 5, 10, 77, 0, 6}
	fc := labConfig(filepath.Join(t.TempDir(), "l.db"), func(fc *FullConfig) {
		fc.Options = []boot.DHCPOption{opt(42, 10, 77, 0, 1), opt(150, tftp...), opt(224, 1, 2, 0xab),
			opt(6, 9, 9, 9, 9)}
		fc.RuleOptions = []RuleOptions{
			{Match: boot.Match{MAC: "52:54:00:77:*"}, Options: []boot.DHCPOption{opt(42, 10, 77, 0, 9)}},
			{Match: boot.Match{MAC: "*"}, Options: []boot.DHCPOption{opt(42, 1, 1, 1, 1), opt(225, 7)}},
			{Match: boot.Match{MAC: "ff:*"}, Options: []boot.DHCPOption{opt(226, 7)}},
		}
		fc.Reservations = []boot.Reservation{{MAC: macPlain, IP: netip.MustParseAddr("10.77.0.50"), Name: "n1"}}
	})
	h := fullHandlerWith(t, fc, nil)
	for _, tt := range []struct {
		name string
		pkt  rawPkt
		ntp  []byte
		file string
	}{
		{"plain client: pool 42 loses to the catch-all rule", plainDiscover(), []byte{1, 1, 1, 1}, ""},
		{"PXE client: first matching rule wins, boot file kept", ovmfPXEDiscover(), []byte{10, 77, 0, 9}, "snponly.efi"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			offer := h.do(t, tt.pkt)
			ack := h.dora(t, tt.pkt)
			for _, r := range []*dhcpv4.DHCPv4{offer.pkt, ack} {
				o := r.Options
				if !bytes.Equal(o.Get(dhcpv4.GenericOptionCode(42)), tt.ntp) || !bytes.Equal(o.Get(dhcpv4.GenericOptionCode(150)), tftp) ||
					!bytes.Equal(o.Get(dhcpv4.GenericOptionCode(224)), []byte{1, 2, 0xab}) || !bytes.Equal(o.Get(dhcpv4.GenericOptionCode(225)), []byte{7}) ||
					o.Has(dhcpv4.GenericOptionCode(226)) {
					t.Errorf("%s: extra options: %s", r.MessageType(), r.Summary())
				}
				// Option 6 given as an extra option replaces dhcp.full.dns; the rest stays.
				if dns := r.DNS(); len(dns) != 1 || dns[0].String() != "9.9.9.9" || r.DomainName() != "lab.test" ||
					net.IP(r.SubnetMask()).String() != "255.255.255.0" || r.BootFileNameOption() != tt.file {
					t.Errorf("%s: %s", r.MessageType(), r.Summary())
				}
			}
		})
	}
}

// TestExtraOptionsTooLarge: options that would push a reply past 1472 bytes are cut down to
// the ones the client asked for in option 55; the client still gets its address.
func TestExtraOptionsTooLarge(t *testing.T) {
	big := bytes.Repeat([]byte{0xee}, 250)
	fc := labConfig(filepath.Join(t.TempDir(), "l.db"), func(fc *FullConfig) {
		fc.Options = []boot.DHCPOption{opt(42, 10, 77, 0, 1)}
		for c := uint8(224); c < 230; c++ {
			fc.Options = append(fc.Options, opt(c, big...))
		}
	})
	h := fullHandlerWith(t, fc, nil)
	ack := h.dora(t, plainDiscover()) // asks for 1 3 6 12 15 28 42
	if !bytes.Equal(ack.Options.Get(dhcpv4.GenericOptionCode(42)), []byte{10, 77, 0, 1}) || ack.Options.Has(dhcpv4.GenericOptionCode(224)) {
		t.Errorf("reply: %s", ack.Summary())
	}
	if n := len(ack.ToBytes()); n > MaxReplySize {
		t.Errorf("reply is %d bytes", n)
	}
	// A client asking for all of them still gets its address, without the extras.
	greedy := plainDiscover().with(rawOpt{55, []byte{1, 3, 6, 42, 224, 225, 226, 227, 228, 229}})
	greedy.mac = net.HardwareAddr{2, 0, 0, 0, 0, 0x0b}
	greedy = greedy.with(without(61))
	ack = h.dora(t, greedy)
	if !h.full.leases.InPool(ip4(ack.YourIPAddr)) || ack.Options.Has(dhcpv4.GenericOptionCode(42)) || ack.Options.Has(dhcpv4.GenericOptionCode(224)) {
		t.Errorf("greedy client: %s", ack.Summary())
	}
}

func TestFullConfigReservationsAndOptionsValidation(t *testing.T) {
	a := netip.MustParseAddr("10.77.0.50")
	for _, tt := range []struct {
		name string
		mut  func(*FullConfig)
		want string
	}{
		{"outside the network", func(fc *FullConfig) {
			fc.Reservations = []boot.Reservation{{MAC: macPlain, IP: netip.MustParseAddr("10.78.0.5")}}
		}, "outside the pool's network"},
		{"broadcast", func(fc *FullConfig) {
			fc.Reservations = []boot.Reservation{{MAC: macPlain, IP: netip.MustParseAddr("10.77.0.255")}}
		}, "broadcast"},
		{"one address twice", func(fc *FullConfig) {
			fc.Reservations = []boot.Reservation{{MAC: macPlain, IP: a, Line: 7}, {MAC: "02:00:00:00:00:0a", IP: a, Line: 9}}
		}, "reservation 2 (02:00:00:00:00:0a -> 10.77.0.50) on line 9: address already reserved by reservation 1"},
		{"one MAC twice", func(fc *FullConfig) {
			fc.Reservations = []boot.Reservation{{MAC: macPlain, IP: a}, {MAC: macPlain, IP: a.Next()}}
		}, "MAC already reserved"},
		{"upper-case MAC", func(fc *FullConfig) {
			fc.Reservations = []boot.Reservation{{MAC: strings.ToUpper("02:00:00:00:00:0a"), IP: a}}
		}, "lower-case"},
		{"option 53", func(fc *FullConfig) { fc.Options = []boot.DHCPOption{opt(53, 1)} }, "option 53 is set by pxewim"},
		{"option 67 in a rule", func(fc *FullConfig) {
			fc.RuleOptions = []RuleOptions{{Line: 4, Options: []boot.DHCPOption{opt(67, 'x')}}}
		}, "rule 1 (line 4): option 67"},
		{"256 bytes", func(fc *FullConfig) { fc.Options = []boot.DHCPOption{opt(224, make([]byte, 256)...)} }, "256 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFullConfig(labConfig("x.db", tt.mut))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	if err := CheckFullConfig(labConfig("x.db", func(fc *FullConfig) {
		fc.Reservations = []boot.Reservation{{MAC: macPlain, IP: a, Name: "x"}}
		fc.Options = []boot.DHCPOption{opt(3, 10, 77, 0, 254), opt(150, 10, 77, 0, 5)}
	})); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

// TestReservationFreesOldPoolLease: a client with a pool lease that is then given a
// reservation below the pool keeps one lease only once it binds its reservation.
func TestReservationFreesOldPoolLease(t *testing.T) {
	db := filepath.Join(t.TempDir(), "l.db")
	h := fullHandlerWith(t, labConfig(db, nil), nil)
	old := ip4(h.dora(t, plainDiscover()).YourIPAddr)
	h2 := fullHandlerWith(t, labConfig(db, func(fc *FullConfig) {
		fc.Reservations = []boot.Reservation{{MAC: macPlain, IP: netip.MustParseAddr("10.77.0.20")}}
	}), h)
	if got := ip4(h2.dora(t, plainDiscover()).YourIPAddr); got.String() != "10.77.0.20" {
		t.Fatalf("got %v", got)
	}
	if rec, _ := h2.full.leases.Get(old); rec != nil {
		t.Errorf("old pool lease %v still recorded: %+v", old, rec)
	}
}
