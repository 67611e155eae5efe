package dhcp

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func openTestStore(t *testing.T, path, start, end string) (*LeaseStore, *fakeClock) {
	t.Helper()
	s, err := OpenLeaseStore(path, netip.MustParseAddr(start), netip.MustParseAddr(end))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.now = clk.now
	return s, clk
}

func mustReserve(t *testing.T, s *LeaseStore, client string, req string) netip.Addr {
	t.Helper()
	var r netip.Addr
	if req != "" {
		r = netip.MustParseAddr(req)
	}
	ip, err := s.Reserve(client, "", r, time.Minute)
	if err != nil {
		t.Fatalf("reserve for %s: %v", client, err)
	}
	return ip
}

func TestLeasesPersistAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases.db")
	s, _ := openTestStore(t, path, "10.0.0.10", "10.0.0.20")
	ip := mustReserve(t, s, "hw:a", "")
	if err := s.Bind("hw:a", "aa", ip, time.Hour); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := OpenLeaseStore(path, netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.0.20"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	rec, err := s2.Get(ip)
	if err != nil || rec == nil || rec.Client != "hw:a" || rec.State != LeaseBound {
		t.Fatalf("after reopen: %+v %v", rec, err)
	}
	if got, _ := s2.Reserve("hw:a", "aa", netip.Addr{}, time.Minute); got != ip {
		t.Errorf("client got %v after restart, want its lease %v", got, ip)
	}
	if got, _ := s2.Reserve("hw:b", "bb", ip, time.Minute); got == ip {
		t.Errorf("another client was offered the bound address %v", ip)
	}
}

func TestLeasesReserveAndRequested(t *testing.T) {
	s, clk := openTestStore(t, filepath.Join(t.TempDir(), "l.db"), "10.0.0.10", "10.0.0.20")
	if ip := mustReserve(t, s, "a", ""); ip.String() != "10.0.0.10" {
		t.Errorf("first = %v", ip)
	}
	if ip := mustReserve(t, s, "b", "10.0.0.15"); ip.String() != "10.0.0.15" {
		t.Errorf("requested free address not honoured: %v", ip)
	}
	if ip := mustReserve(t, s, "c", "10.0.0.15"); ip.String() == "10.0.0.15" {
		t.Errorf("requested address held for b given to c")
	}
	if ip := mustReserve(t, s, "d", "192.168.1.5"); !s.InPool(ip) {
		t.Errorf("foreign requested address handed out: %v", ip)
	}
	// The offer hold runs out: the address goes back to the pool.
	clk.advance(2 * time.Minute)
	if ip := mustReserve(t, s, "e", "10.0.0.15"); ip.String() != "10.0.0.15" {
		t.Errorf("expired offer not reusable: %v", ip)
	}
}

func TestLeasesExpiry(t *testing.T) {
	s, clk := openTestStore(t, filepath.Join(t.TempDir(), "l.db"), "10.0.0.10", "10.0.0.10")
	ip := mustReserve(t, s, "a", "")
	if err := s.Bind("a", "", ip, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve("b", "", netip.Addr{}, time.Minute); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("err = %v, want exhausted while a holds the lease", err)
	}
	clk.advance(59 * time.Minute)
	if err := s.Bind("a", "", ip, time.Hour); err != nil { // renewal
		t.Fatal(err)
	}
	clk.advance(59 * time.Minute)
	if _, err := s.Reserve("b", "", netip.Addr{}, time.Minute); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("renewed lease expired early: %v", err)
	}
	clk.advance(2 * time.Minute)
	if got := mustReserve(t, s, "b", ""); got != ip {
		t.Errorf("expired lease not reused: %v", got)
	}
}

func TestLeasesDecline(t *testing.T) {
	s, clk := openTestStore(t, filepath.Join(t.TempDir(), "l.db"), "10.0.0.10", "10.0.0.11")
	ip := mustReserve(t, s, "a", "")
	if err := s.Decline("a", ip, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := mustReserve(t, s, "a", ""); got == ip {
		t.Errorf("declined address %v offered again", got)
	}
	if _, err := s.Reserve("b", "", ip, time.Minute); !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("err = %v, want exhausted (one declined, one held)", err)
	}
	// A client cannot decline an address another client holds.
	other := netip.MustParseAddr("10.0.0.11")
	if err := s.Decline("b", other, time.Minute); !errors.Is(err, ErrAddrTaken) {
		t.Errorf("hostile decline: err = %v, want ErrAddrTaken", err)
	}
	if err := s.Decline("a", netip.MustParseAddr("10.9.9.9"), time.Minute); !errors.Is(err, ErrNotInPool) {
		t.Errorf("foreign decline: %v", err)
	}
	clk.advance(11 * time.Minute)
	if got := mustReserve(t, s, "c", ""); got != ip {
		t.Errorf("declined address not back after the hold: got %v", got)
	}
}

func TestLeasesConflictAndRelease(t *testing.T) {
	s, _ := openTestStore(t, filepath.Join(t.TempDir(), "l.db"), "10.0.0.10", "10.0.0.20")
	ip := mustReserve(t, s, "a", "")
	if err := s.Bind("a", "", ip, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Bind("b", "", ip, time.Hour); !errors.Is(err, ErrAddrTaken) {
		t.Fatalf("conflicting bind: err = %v", err)
	}
	if err := s.Bind("b", "", netip.MustParseAddr("10.0.1.1"), time.Hour); !errors.Is(err, ErrNotInPool) {
		t.Fatalf("foreign bind: err = %v", err)
	}
	// Moving a client frees its old address: one lease per client.
	if err := s.Bind("a", "", netip.MustParseAddr("10.0.0.12"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.Get(ip); rec != nil {
		t.Errorf("old lease kept: %+v", rec)
	}
	// Release by someone else is ignored; by the owner it frees the address.
	moved := netip.MustParseAddr("10.0.0.12")
	_ = s.Release("b", moved, false)
	if rec, _ := s.Get(moved); rec == nil {
		t.Fatal("release by another client freed the lease")
	}
	_ = s.Release("a", moved, true) // only pending offers: a bound lease stays
	if rec, _ := s.Get(moved); rec == nil {
		t.Fatal("onlyOffered release freed a bound lease")
	}
	if err := s.Release("a", moved, false); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.Get(moved); rec != nil {
		t.Errorf("released lease still there: %+v", rec)
	}
	all, err := s.All()
	if err != nil || len(all) != 0 {
		t.Errorf("All() = %v, %v", all, err)
	}
}

func TestLeasesExhaustion(t *testing.T) {
	s, _ := openTestStore(t, filepath.Join(t.TempDir(), "l.db"), "10.0.0.250", "10.0.0.255")
	seen := map[netip.Addr]bool{}
	for i := 0; i < 6; i++ {
		ip := mustReserve(t, s, string(rune('a'+i)), "")
		if seen[ip] {
			t.Fatalf("%v handed out twice", ip)
		}
		seen[ip] = true
	}
	if _, err := s.Reserve("z", "", netip.Addr{}, time.Minute); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("err = %v, want ErrPoolExhausted", err)
	}
}

func TestLeasePoolValidation(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range [][2]string{{"10.0.0.20", "10.0.0.10"}, {"10.0.0.0", "10.2.0.0"}, {"fd00::1", "fd00::9"}} {
		if _, err := OpenLeaseStore(filepath.Join(dir, "x.db"), netip.MustParseAddr(tt[0]), netip.MustParseAddr(tt[1])); err == nil {
			t.Errorf("pool %v accepted", tt)
		}
	}
	// The top of the address space does not loop forever.
	s, _ := openTestStore(t, filepath.Join(dir, "top.db"), "255.255.255.254", "255.255.255.255")
	mustReserve(t, s, "a", "")
	mustReserve(t, s, "b", "")
	if _, err := s.Reserve("c", "", netip.Addr{}, time.Minute); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("err = %v", err)
	}
}

func TestLeaseStoreLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	openTestStore(t, path, "10.0.0.1", "10.0.0.2")
	_, err := OpenLeaseStore(path, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"))
	if err == nil {
		t.Fatal("second open of a lease file in use succeeded")
	}
	t.Log(err)
}
