package ops

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/tftp"
)

// clock is a settable time source for expiry tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var (
	macA = net.HardwareAddr{0x00, 0x1b, 0x21, 1, 2, 3}
	ipA  = netip.MustParseAddr("10.0.0.5")
)

func newTestHub(c *clock, max int) *Hub {
	oui, _ := ParseOUI(strings.NewReader("00-1B-21   (hex)\t\tIntel Corporate\n"))
	return NewHub(Options{MaxClients: max, TTL: time.Hour, TraceLen: 4, Now: c.now, OUI: oui,
		Identify: func(ip netip.Addr) (boot.Client, bool) {
			if ip == ipA {
				return boot.Client{MAC: macA}, true
			}
			return boot.Client{}, false
		}})
}

// TestBootJourney follows one client through DHCP, TFTP and HTTP to the hand-off.
func TestBootJourney(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	h := newTestHub(c, 0)
	changes, cancel := h.Subscribe()
	defer cancel()
	bc := boot.Client{MAC: macA, Arch: 7, Firmware: boot.FirmwareEFI64}
	h.Exchange(bc, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "ipxe/snponly.efi"}, nil)
	select {
	case <-changes:
	default:
		t.Fatal("no change notification after a DHCP exchange")
	}
	step := func(want Stage) {
		t.Helper()
		v, _, ok := h.Client(macA.String())
		if !ok || v.Stage != want {
			t.Fatalf("stage = %q (found %v), want %q", v.Stage, ok, want)
		}
	}
	step(StageDHCP)

	tr := &tftp.Transfer{Remote: netip.AddrPortFrom(ipA, 2000), Path: "ipxe/snponly.efi", Size: 1000, Started: c.t}
	h.TransferStarted(tr)
	step(StageTFTP)
	h.Progress(tr, 500)
	v, _, _ := h.Client(macA.String())
	if len(v.Transfers) != 1 || v.Transfers[0].Bytes != 500 || v.Transfers[0].Size != 1000 {
		t.Fatalf("TFTP in flight: %+v", v.Transfers)
	}
	tr.Sent = 1000
	h.TransferEnded(tr, nil)

	ho := h.HTTPObserver()
	ev := httpboot.Event{ID: 1, Start: c.t, Method: "GET", Path: "/files/boot.wim", Kind: "file", Name: "boot.wim", Size: 4000,
		Client: httpboot.ClientInfo{Client: boot.Client{IP: ipA}}}
	ho.Started(ev)
	step(StageHTTP)
	ev.Bytes, ev.Status, ev.Duration = 4000, 200, 2*time.Second
	ho.Ended(ev)
	step(StageHandedOff)

	v, trace, _ := h.Client(macA.String())
	if v.Vendor != "Intel Corporate" || v.Firmware != "efi64" || v.BootFile != "ipxe/snponly.efi" || v.Entry != "boot.wim" {
		t.Errorf("client view: %+v", v)
	}
	if v.BytesSent != 5000 || v.Last == nil || v.Last.Rate != 2000 {
		t.Errorf("bytes %d, last %+v", v.BytesSent, v.Last)
	}
	if len(trace) != 3 || trace[0].Proto != "dhcp" || trace[1].What != "RRQ ipxe/snponly.efi" || trace[2].What != "GET /files/boot.wim" {
		t.Errorf("trace: %+v", trace)
	}
	if h.Len() != 1 {
		t.Errorf("%d clients, want 1 (TFTP and HTTP by IP joined the DHCP record)", h.Len())
	}
}

func TestFailureHints(t *testing.T) {
	tests := []struct {
		name   string
		status int
		path   string
		err    error
		want   string
	}{
		{"missing BCD", 404, "Boot/BCD", fmt.Errorf("open: %w", fs.ErrNotExist), "no BCD"},
		{"missing file", 404, "x.efi", fmt.Errorf("open: %w", fs.ErrNotExist), "does not have"},
		{"permission", 403, "a", fs.ErrPermission, "readable"},
		{"range", 416, "a", errors.New("bad range"), "byte range"},
		{"client left", 200, "boot.wim", errors.New("write: broken pipe"), "ended the transfer early"},
		{"damaged WIM", 200, "sources/boot.wim", fmt.Errorf("reading body: %w", damaged{}), "does not match its SHA-1"},
		{"being verified", 503, "sources/boot.wim", errors.New("this file is being verified: retry in a few seconds"), "still verifying"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1000, 0)}
			h := newTestHub(c, 0)
			ev := httpboot.Event{ID: 9, Start: c.t, Method: "GET", Path: "/files/" + tc.path, Kind: "file", Name: tc.path,
				Status: tc.status, Err: tc.err, Client: httpboot.ClientInfo{Client: boot.Client{MAC: macA, IP: ipA}}}
			h.HTTPObserver().Ended(ev)
			v, _, _ := h.Client(macA.String())
			if v.Stage != StageFailed || !strings.Contains(v.Hint, tc.want) || v.LastError == "" {
				t.Errorf("stage %q, error %q, hint %q; want hint with %q", v.Stage, v.LastError, v.Hint, tc.want)
			}
		})
	}
}

// damaged is a read error like wim.ChecksumError (ops does not import wim).
type damaged struct{}

func (damaged) Error() string { return "wim: boot.wim: image 1: bootmgr.exe: SHA-1 mismatch" }
func (damaged) Corrupt() bool { return true }

// TestChecksumFailureShownFailed: a TFTP transfer aborted on a checksum mismatch leaves the
// client failed, with the error, the hint, and the transfer marked done with its error (the
// dashboard shows it "(failed)", not "(done)").
func TestChecksumFailureShownFailed(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	h := newTestHub(c, 0)
	tr := &tftp.Transfer{Remote: netip.AddrPortFrom(ipA, 2000), RawPath: "boot/bootmgr.exe", Path: "boot/bootmgr.exe", Size: 700000, Started: c.t}
	h.TransferStarted(tr)
	h.Progress(tr, 655360)
	h.TransferEnded(tr, fmt.Errorf("boot/bootmgr.exe: transfer aborted before its last block: %w", damaged{}))
	v, trace, _ := h.Client(macA.String())
	if v.Stage != StageFailed || !strings.Contains(v.LastError, "SHA-1 mismatch") || !strings.Contains(v.Hint, "pxewim wim verify") {
		t.Fatalf("stage %q, error %q, hint %q", v.Stage, v.LastError, v.Hint)
	}
	if v.Last == nil || !v.Last.Done || v.Last.Err == "" || len(trace) == 0 || trace[len(trace)-1].Status != "error" {
		t.Fatalf("last transfer %+v, trace %+v: want done with its error", v.Last, trace)
	}
}

// TestBounds: the client cap drops the least recently seen, the TTL expires idle clients, and
// the trace is a ring.
func TestBounds(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	h := newTestHub(c, 3)
	for i := range 5 {
		c.t = c.t.Add(time.Second)
		h.Exchange(boot.Client{MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}}, dhcpv4.MessageTypeDiscover, dhcp.Decision{}, nil)
	}
	if h.Len() != 3 {
		t.Fatalf("%d clients, want the cap 3", h.Len())
	}
	if _, _, ok := h.Client("02:00:00:00:00:00"); ok {
		t.Error("the oldest client was kept")
	}
	if v, _, _ := h.Client("02:00:00:00:00:04"); v.Vendor != "(locally administered)" {
		t.Errorf("vendor of a local MAC = %q", v.Vendor)
	}
	for range 10 {
		h.Exchange(boot.Client{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 4}}, dhcpv4.MessageTypeRequest, dhcp.Decision{BootFile: "f"}, nil)
	}
	_, trace, _ := h.Client("02:00:00:00:00:04")
	if len(trace) != 4 || trace[0].Seq != 8 || trace[3].Seq != 11 {
		t.Errorf("trace ring: %d entries, seq %d..%d; want 4 entries 8..11", len(trace), trace[0].Seq, trace[len(trace)-1].Seq)
	}
	if n := h.Active(time.Minute); n != 3 {
		t.Errorf("active = %d, want 3", n)
	}
	c.t = c.t.Add(2 * time.Hour)
	if n := len(h.Clients()); n != 0 {
		t.Errorf("%d clients after the TTL, want 0", n)
	}
}

// TestConcurrentObservers runs the observers from many goroutines (go test -race).
func TestConcurrentObservers(t *testing.T) {
	h := NewHub(Options{MaxClients: 8})
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				ip := netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i % 16)})
				tr := &tftp.Transfer{Remote: netip.AddrPortFrom(ip, uint16(i)), Path: "f", Size: 10, Started: time.Now()}
				h.TransferStarted(tr)
				h.Progress(tr, 5)
				h.TransferEnded(tr, nil)
				h.Clients()
			}
		}()
	}
	for range 8 {
		<-done
	}
	if h.Len() > 8 {
		t.Errorf("%d clients, cap 8", h.Len())
	}
}

// TestTFTPMissHintDependsOnDHCP: a TFTP miss is explained by what pxewim knows about the client.
// A client its DHCP answered gets the "image has no BCD" hint; one DHCP never saw is told so
// (with its MAC when the neighbour table gave one, or as an unknown address), and with DHCP off
// the hint says that pxewim's DHCP is off. The image is not blamed in those cases.
func TestTFTPMissHintDependsOnDHCP(t *testing.T) {
	miss := fmt.Errorf("open Boot/BCD: %w", fs.ErrNotExist)
	ipB := netip.MustParseAddr("10.0.0.77") // no MAC known behind it
	tests := []struct {
		name     string
		mode     string
		dhcp     bool // the client's DHCP exchange reached the hub first
		ip       netip.Addr
		key      string
		want     []string
		mustNot  string
		wantDHCP bool
	}{
		{"dhcp saw it", "proxy", true, ipA, macA.String(), []string{"no BCD for this firmware"}, "never saw", true},
		{"mac known, no dhcp", "proxy", false, ipA, macA.String(), []string{"never saw the client " + macA.String(), "another server", "BCD"}, "image has no BCD", false},
		{"unknown address", "full", false, ipB, "ip:" + ipB.String(), []string{"never saw a client at 10.0.0.77", "address changed", "DHCP went to another server"}, "image has no BCD", false},
		{"dhcp off", "off", false, ipA, macA.String(), []string{"DHCP is off", "--dhcp proxy"}, "image has no BCD", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1000, 0)}
			h := newTestHub(c, 0)
			h.opts.DHCPMode = func() string { return tc.mode }
			if tc.dhcp {
				h.Exchange(boot.Client{MAC: macA, Arch: 0}, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "boot/pxeboot.n12"}, nil)
			}
			tr := &tftp.Transfer{Remote: netip.AddrPortFrom(tc.ip, 2001), RawPath: `\Boot\BCD`, Path: "Boot/BCD", Started: c.t}
			h.TransferEnded(tr, miss) // refused before it started, as a miss is
			v, _, ok := h.Client(tc.key)
			if !ok {
				t.Fatalf("no client %q; have %+v", tc.key, h.Clients())
			}
			for _, w := range tc.want {
				if !strings.Contains(v.Hint, w) {
					t.Errorf("hint %q lacks %q", v.Hint, w)
				}
			}
			if strings.Contains(v.Hint, tc.mustNot) {
				t.Errorf("hint %q says %q", v.Hint, tc.mustNot)
			}
			if v.Stage != StageFailed || v.DHCP != tc.wantDHCP {
				t.Errorf("stage %q, dhcp %v; want failed, %v", v.Stage, v.DHCP, tc.wantDHCP)
			}
		})
	}
	// An HTTP miss keeps the image's hint: iPXE's requests name the client.
	c := &clock{t: time.Unix(1000, 0)}
	h := newTestHub(c, 0)
	h.HTTPObserver().Ended(httpboot.Event{ID: 1, Start: c.t, Method: "GET", Path: "/files/Boot/BCD", Name: "Boot/BCD", Status: 404,
		Err: miss, Client: httpboot.ClientInfo{Client: boot.Client{MAC: macA, IP: ipA}}})
	if v, _, _ := h.Client(macA.String()); !strings.Contains(v.Hint, "no BCD") {
		t.Errorf("HTTP miss hint %q", v.Hint)
	}
}

// TestInterruptedTransfersShownFailed: a transfer that stops part way (the TFTP client stops
// acknowledging, the HTTP client hangs up, a checksum abort) ends done with its error and the
// bytes it really sent, and the client is failed; a complete one ends without an error.
func TestInterruptedTransfersShownFailed(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	h := newTestHub(c, 0)
	tr := &tftp.Transfer{Remote: netip.AddrPortFrom(ipA, 2002), Path: "boot/pxeboot.n12", RawPath: "boot/pxeboot.n12", Size: 80000, Started: c.t}
	h.TransferStarted(tr)
	tr.Sent = 40960
	h.Progress(tr, tr.Sent)
	h.TransferEnded(tr, errors.New("tftp: timeout waiting for ACK of block 81"))
	v, _, _ := h.Client(macA.String())
	if v.Stage != StageFailed || v.Last == nil || !v.Last.Done || v.Last.Err == "" || v.Last.Bytes != 40960 || len(v.Transfers) != 0 {
		t.Fatalf("TFTP client gone: stage %q, last %+v, live %d", v.Stage, v.Last, len(v.Transfers))
	}
	if !strings.Contains(v.Hint, "stopped acknowledging") {
		t.Errorf("TFTP timeout hint %q", v.Hint)
	}

	ev := httpboot.Event{ID: 5, Start: c.t, Method: "GET", Path: "/files/sources/boot.wim", Name: "sources/boot.wim", Size: 1 << 30,
		Client: httpboot.ClientInfo{Client: boot.Client{MAC: macA, IP: ipA}}}
	o := h.HTTPObserver()
	o.Started(ev)
	ev.Bytes = 1 << 29
	o.Progress(ev)
	ev.Status, ev.Err = 200, errors.New("write tcp 10.0.0.1:80->10.0.0.5:4000: write: connection reset by peer")
	o.Ended(ev)
	v, _, _ = h.Client(macA.String())
	if v.Stage != StageFailed || v.Last == nil || v.Last.Err == "" || v.Last.Bytes != 1<<29 {
		t.Fatalf("HTTP client gone: stage %q (want failed, not handed-off), last %+v", v.Stage, v.Last)
	}
	if !strings.Contains(v.Hint, "ended the transfer early") {
		t.Errorf("HTTP hang-up hint %q", v.Hint)
	}

	ev2 := httpboot.Event{ID: 6, Start: c.t, Method: "GET", Path: "/files/sources/boot.wim", Name: "sources/boot.wim", Size: 1 << 20,
		Status: 200, Bytes: 1 << 19, Err: fmt.Errorf("body: %w", damaged{}), Client: ev.Client}
	o.Started(ev2)
	o.Ended(ev2)
	v, _, _ = h.Client(macA.String())
	if v.Stage != StageFailed || v.Last == nil || v.Last.Err == "" || !strings.Contains(v.Hint, "pxewim wim verify") {
		t.Fatalf("HTTP checksum abort: stage %q, last %+v, hint %q", v.Stage, v.Last, v.Hint)
	}

	ev3 := httpboot.Event{ID: 7, Start: c.t, Method: "GET", Path: "/files/sources/boot.wim", Name: "sources/boot.wim", Size: 100,
		Status: 200, Bytes: 100, Client: ev.Client}
	o.Started(ev3)
	o.Ended(ev3)
	v, _, _ = h.Client(macA.String())
	if v.Stage != StageHandedOff || v.Last == nil || v.Last.Err != "" || !v.Last.Done {
		t.Fatalf("complete transfer: stage %q, last %+v", v.Stage, v.Last)
	}
}
