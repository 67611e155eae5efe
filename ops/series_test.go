package ops

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/tftp"
)

// TestSeriesCountsTraffic feeds known traffic on a fake clock and checks each step of the
// hour: bytes counted once (progress then end), requests, distinct active clients, steps
// older than an hour forgotten.
func TestSeriesCountsTraffic(t *testing.T) {
	c := &clock{t: time.Unix(100000, 0)} // step 10000
	h := newTestHub(c, 0)
	macB := net.HardwareAddr{0x00, 0x1b, 0x21, 9, 9, 9}
	ipB := netip.MustParseAddr("10.0.0.6")

	h.Exchange(boot.Client{MAC: macA}, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "x"}, nil)
	h.Exchange(boot.Client{MAC: macA}, dhcpv4.MessageTypeRequest, dhcp.Decision{BootFile: "x"}, nil)
	tr := &tftp.Transfer{Remote: netip.AddrPortFrom(ipA, 2000), Path: "ipxe.efi", Size: 1000, Started: c.t}
	h.TransferStarted(tr)
	h.Progress(tr, 400)

	c.t = c.t.Add(10 * time.Second) // next step
	h.Progress(tr, 900)
	tr.Sent = 1000
	h.TransferEnded(tr, nil)
	ho := h.HTTPObserver()
	ev := httpboot.Event{ID: 7, Start: c.t, Method: "GET", Path: "/files/a", Name: "a", Size: 5000,
		Client: httpboot.ClientInfo{Client: boot.Client{MAC: macB, IP: ipB}}}
	ho.Started(ev)
	ev.Bytes, ev.Status, ev.Duration = 5000, 200, time.Second
	ho.Ended(ev) // no Progress: all 5000 bytes are counted at the end

	s := h.Series()
	if s.Step != 10 || len(s.Bytes) != SeriesLen || !s.End.Equal(time.Unix(100020, 0)) {
		t.Fatalf("series shape: step %d, %d points, end %v", s.Step, len(s.Bytes), s.End)
	}
	last, prev := SeriesLen-1, SeriesLen-2
	if s.Bytes[prev] != 400 || s.Requests[prev] != 1 || s.Clients[prev] != 1 {
		t.Errorf("first step: bytes %d requests %d clients %d, want 400 1 1", s.Bytes[prev], s.Requests[prev], s.Clients[prev])
	}
	if s.Bytes[last] != 600+5000 || s.Requests[last] != 1 || s.Clients[last] != 2 {
		t.Errorf("second step: bytes %d requests %d clients %d, want 5600 1 2", s.Bytes[last], s.Requests[last], s.Clients[last])
	}
	var total int64
	for _, b := range s.Bytes {
		total += b
	}
	if total != 6000 {
		t.Errorf("bytes over the hour = %d, want 6000 (each byte once)", total)
	}

	// An hour and a step later, the old steps are gone, and a new event lands in the last slot
	// even where the ring reuses the old step's slot.
	c.t = c.t.Add(SeriesLen * SeriesStep)
	h.Exchange(boot.Client{MAC: macA}, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "x"}, nil)
	s = h.Series()
	total = 0
	for i, b := range s.Bytes {
		total += b + int64(s.Requests[i])
	}
	if total != 0 || s.Clients[last] != 1 {
		t.Errorf("an hour later: old traffic %d still shown, clients now %d", total, s.Clients[last])
	}
}
