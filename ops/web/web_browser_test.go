package web

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/ops"
	"github.com/pxewim/pxewim/tftp"
)

// fakeClock is the hub's time: the test decides when each event happened.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestDashboardPictures drives the page in headless Chromium with 500 clients and one client
// mid-boot: the client list stays usable (count, text filter, stage filter, sort by a column),
// the throughput and active-client charts show the hour, and the mid-boot client's timeline
// draws each request as a bar whose width is its duration, DHCP as a marker, the transfer still
// in flight up to the server's now, and the 4 s the client waited as a labelled gap.
func TestDashboardPictures(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	clk := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)}
	byIP := map[netip.Addr]net.HardwareAddr{} // what the daemon's client registry does
	hub := ops.NewHub(ops.Options{Now: clk.now, Identify: func(ip netip.Addr) (boot.Client, bool) {
		m, ok := byIP[ip]
		return boot.Client{MAC: m, IP: ip}, ok
	}})
	srv := httptest.NewServer(Handler(Options{Hub: hub, EventInterval: 50 * time.Millisecond}))
	t.Cleanup(srv.Close)

	// 500 clients spread over the last hour: every seventh failed a TFTP read.
	var macs []string
	failed := 0
	start := clk.t
	for i := 0; i < 500; i++ {
		clk.t = start.Add(time.Duration(i) * 7 * time.Second)
		mac := net.HardwareAddr{0x52, 0x54, 0, 0, byte(i >> 8), byte(i)}
		ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		macs = append(macs, mac.String())
		byIP[ip] = mac
		hub.Exchange(boot.Client{MAC: mac, IP: ip, Firmware: boot.FirmwareBIOS}, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "undionly.kpxe"}, nil)
		tr := &tftp.Transfer{Remote: netip.AddrPortFrom(ip, 2000), Path: "undionly.kpxe", Size: 70000, Started: clk.t}
		hub.TransferStarted(tr)
		var err error
		if i%7 == 0 {
			err, failed = errors.New("client aborted the transfer"), failed+1
			tr.Sent = 512
		} else {
			tr.Sent = 70000
		}
		hub.TransferEnded(tr, err)
	}

	// One client mid-boot, on a known schedule after t0.
	t0 := start.Add(500*7*time.Second + time.Minute)
	mac := net.HardwareAddr{0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc}
	ip := netip.MustParseAddr("10.9.9.9")
	byIP[ip] = mac
	at := func(d time.Duration) time.Time { clk.t = t0.Add(d); return clk.t }
	at(0)
	hub.Exchange(boot.Client{MAC: mac, IP: ip, Firmware: boot.FirmwareEFI64, Arch: 7}, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "ipxe/snponly.efi"}, nil)
	tr := &tftp.Transfer{Remote: netip.AddrPortFrom(ip, 3000), Path: "ipxe/snponly.efi", Size: 200000, Started: at(200 * time.Millisecond)}
	hub.TransferStarted(tr)
	at(700 * time.Millisecond)
	tr.Sent = 200000
	hub.TransferEnded(tr, nil) // 500 ms
	ho := hub.HTTPObserver()
	menu := httpboot.Event{ID: 1, Start: at(4700 * time.Millisecond), Method: "GET", Path: "/boot.ipxe", Name: "boot.ipxe", Size: 900,
		Client: httpboot.ClientInfo{Client: boot.Client{MAC: mac, IP: ip}}}
	ho.Started(menu)
	at(4800 * time.Millisecond)
	menu.Bytes, menu.Status, menu.Duration = 900, 200, 100*time.Millisecond
	ho.Ended(menu) // 100 ms, after a 4 s wait (the menu's timeout)
	wim := httpboot.Event{ID: 2, Start: at(5 * time.Second), Method: "GET", Path: "/winpe/boot.wim", Name: "boot.wim", Size: 300 << 20,
		Client: httpboot.ClientInfo{Client: boot.Client{MAC: mac, IP: ip}}}
	ho.Started(wim)
	wim.Bytes, wim.Duration = 120<<20, 2*time.Second
	at(7 * time.Second)
	ho.Progress(wim) // in flight for 2 s at "now"

	br := testenv.StartBrowser(t, srv.URL+"/#/clients", testenv.BrowserOptions{})
	dir := testenv.ArtifactsDir(t)
	br.WaitEval(t, 30*time.Second, `document.querySelectorAll("#clients tbody tr.client").length === 501`, "the 501 client rows")
	if got := br.String(t, `document.querySelector("#client-count").textContent`); got != "(501)" {
		t.Errorf("client count = %q, want (501)", got)
	}

	// Charts: an hour of points, traffic in them.
	br.WaitEval(t, 15*time.Second, `document.querySelector("#chart-bytes path.area") !== null && document.querySelector("#chart-clients path.area") !== null`, "the charts")
	var points, peakClients float64
	br.Eval(t, `+document.querySelector("#chart-bytes path.area").dataset.points`, &points)
	br.Eval(t, `+document.querySelector("#chart-clients path.area").dataset.max`, &peakClients)
	if points != ops.SeriesLen {
		t.Errorf("throughput chart has %v points, want %d (an hour of 10 s steps)", points, ops.SeriesLen)
	}
	// The hour ending now covers clients 0-499 only from the last hour: at one client per 7 s
	// and steps of 10 s, a step holds at most 2 of them; the mid-boot client adds one.
	if peakClients < 1 || peakClients > 3 {
		t.Errorf("active clients chart peaks at %v, want 1..3", peakClients)
	}
	br.Screenshot(t, dir, "dashboard-500-clients.png")

	// Text filter: one MAC.
	br.Eval(t, `(() => { const f = document.querySelector("#filter"); f.value = "`+macs[123]+`"; f.dispatchEvent(new Event("input")); return true })()`, nil)
	br.WaitEval(t, 10*time.Second, `document.querySelectorAll("#clients tbody tr.client").length === 1`, "the MAC filter")
	if key := br.String(t, `document.querySelector("#clients tbody tr.client").dataset.key`); key != macs[123] {
		t.Errorf("filtered row = %q, want %s", key, macs[123])
	}
	// Stage filter: the failed ones.
	br.Eval(t, `(() => { const f = document.querySelector("#filter"); f.value = ""; f.dispatchEvent(new Event("input"));
		const s = document.querySelector("#stage-filter"); s.value = "failed"; s.dispatchEvent(new Event("change")); return true })()`, nil)
	br.WaitEval(t, 10*time.Second, fmt.Sprintf(`document.querySelectorAll("#clients tbody tr.client").length === %d`, failed), "the stage filter")
	var stages []string
	br.Eval(t, `[...document.querySelectorAll("#clients tbody tr.client .stage")].map(s => s.textContent)`, &stages)
	for _, s := range stages {
		if s != "failed" {
			t.Fatalf("stage filter 'failed' shows a %q row", s)
		}
	}
	if got := br.String(t, `document.querySelector("#shown-count").textContent`); got != fmt.Sprintf("showing %d of 501", failed) {
		t.Errorf("shown count = %q", got)
	}
	// Sort by MAC, ascending, then descending.
	br.Eval(t, `(() => { const s = document.querySelector("#stage-filter"); s.value = ""; s.dispatchEvent(new Event("change"));
		document.querySelector('th[data-sort="mac"]').click(); return true })()`, nil)
	all := append([]string{mac.String()}, macs...)
	sort.Strings(all)
	br.WaitEval(t, 10*time.Second, `document.querySelector("#clients tbody tr.client").dataset.key === "`+all[0]+`"`, "sorting by MAC")
	var order []string
	br.Eval(t, `[...document.querySelectorAll("#clients tbody tr.client")].map(r => r.dataset.key)`, &order)
	if strings.Join(order, ",") != strings.Join(all, ",") {
		t.Errorf("sorted by MAC: rows not in MAC order (first %v)", order[:3])
	}
	br.Eval(t, `document.querySelector('th[data-sort="mac"]').click()`, nil)
	br.WaitEval(t, 10*time.Second, `document.querySelector("#clients tbody tr.client").dataset.key === "`+all[len(all)-1]+`"`, "sorting by MAC, descending")
	if got := br.String(t, `document.querySelector('th[data-sort="mac"]').getAttribute("aria-sort")`); got != "descending" {
		t.Errorf("MAC header aria-sort = %q", got)
	}

	// The mid-boot client's timeline.
	br.Eval(t, `location.hash = "#/client/`+mac.String()+`"`, nil)
	br.WaitEval(t, 15*time.Second, `document.querySelectorAll("#timeline rect.tl-bar").length === 3`, "the timeline's three bars")
	var bars []struct {
		Proto string  `json:"proto"`
		MS    float64 `json:"ms"`
		Width float64 `json:"width"`
		Live  bool    `json:"live"`
	}
	br.Eval(t, `[...document.querySelectorAll("#timeline rect.tl-bar")].map(r => ({proto: r.dataset.proto, ms: +r.dataset.ms,
		width: +r.getAttribute("width"), live: r.classList.contains("tl-live")}))`, &bars)
	t.Logf("timeline bars: %+v", bars)
	if len(bars) != 3 || bars[0].Proto != "tftp" || bars[0].MS != 500 || bars[1].MS != 100 || bars[2].MS != 2000 || !bars[2].Live || bars[0].Live {
		t.Fatalf("timeline bars = %+v, want tftp 500 ms, http 100 ms, http 2000 ms in flight", bars)
	}
	// Widths are proportional to durations: 2000 ms is four times 500 ms.
	if r := bars[2].Width / bars[0].Width; math.Abs(r-4) > 0.05 {
		t.Errorf("bar widths %v and %v: ratio %.3f, want 4 (2000 ms / 500 ms)", bars[2].Width, bars[0].Width, r)
	}
	var dhcpMarks float64
	br.Eval(t, `document.querySelectorAll("#timeline .tl-dhcp").length`, &dhcpMarks)
	if dhcpMarks != 1 {
		t.Errorf("%v DHCP markers, want 1", dhcpMarks)
	}
	var gaps []float64
	br.Eval(t, `[...document.querySelectorAll("#timeline rect.tl-gap")].map(r => +r.dataset.ms)`, &gaps)
	if len(gaps) != 1 || gaps[0] != 4000 {
		t.Errorf("timeline gaps = %v ms, want one of 4000 (between the iPXE download's end and the menu request)", gaps)
	}
	if lbl := br.String(t, `document.querySelector("#timeline .tl-gap-label").textContent`); lbl != "waited 4.0 s" {
		t.Errorf("gap label = %q", lbl)
	}
	var labels []string
	br.Eval(t, `[...document.querySelectorAll("#timeline .tl-label")].map(t => t.textContent)`, &labels)
	joined := strings.Join(labels, "\n")
	for _, want := range []string{"RRQ ipxe/snponly.efi · 195.3 KiB · 500 ms", "GET /boot.ipxe", "GET boot.wim · 120.0 MiB · 2.0 s (in flight)"} {
		if !strings.Contains(joined, want) {
			t.Errorf("timeline labels lack %q:\n%s", want, joined)
		}
	}
	br.Screenshot(t, dir, "dashboard-timeline.png")
}
