package ops

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pxewim/pxewim/boot"
)

// Stage is how far a client got in its network boot.
type Stage string

const (
	StageDHCP      Stage = "dhcp"       // asked DHCP, nothing fetched yet
	StageTFTP      Stage = "tftp"       // fetching over TFTP (NBP, iPXE)
	StageHTTP      Stage = "http"       // fetching over HTTP (scripts, wimboot, boot files)
	StageHandedOff Stage = "handed-off" // fetched the final image (.wim, .iso, .img): the OS runs
	StageFailed    Stage = "failed"     // the last request failed
)

// Hub defaults.
const (
	DefaultMaxClients = 1024
	DefaultTTL        = 24 * time.Hour
	DefaultTraceLen   = 200
	maxLiveTransfers  = 16 // per client; more concurrent ones are counted but not tracked
	maxPathLen        = 256
)

// Options tune a Hub. Zero values take the defaults.
type Options struct {
	MaxClients int
	TTL        time.Duration // a client not seen for this long is forgotten
	TraceLen   int           // trace entries kept per client
	// Identify names the client behind an IP when a TFTP or HTTP request does not carry a MAC
	// (boot.Registry.LookupIP). Optional.
	Identify func(ip netip.Addr) (boot.Client, bool)
	OUI      *OUI // vendor names; nil shows none
	Now      func() time.Time
	// DHCPMode reports pxewim's DHCP mode now ("off", "proxy", "full"; it may change on a
	// reload), so that a hint about a client DHCP never saw can say why. Optional.
	DHCPMode func() string
}

// Hub collects boot events into per-client state. Safe for concurrent use; its observer
// methods only take a mutex and copy a few fields, so they are cheap on the data path.
type Hub struct {
	opts Options

	mu      sync.Mutex
	clients map[string]*client // by key: MAC, or "ip:" + IP when the MAC is unknown
	live    map[string]string  // transfer id -> client key
	subs    map[chan struct{}]struct{}
	version uint64 // bumped on every change
	series  series // the last hour of traffic (series.go)
}

// client is the mutable record behind a ClientView.
type client struct {
	view     ClientView
	live     map[string]*Transfer
	trace    []TraceEntry // ring: next write at traceNext once full
	next     int
	seq      uint64
	dhcpSeen bool  // pxewim's DHCP saw this client since it was remembered
	step     int64 // the last series step it was counted active in
}

// ClientView is one client as the dashboard shows it. Returned views are copies.
type ClientView struct {
	Key       string     `json:"key"`
	MAC       string     `json:"mac"`
	IP        string     `json:"ip"`
	Vendor    string     `json:"vendor"`
	Firmware  string     `json:"firmware"`
	Arch      int        `json:"arch"`
	IPXE      bool       `json:"ipxe"`
	HTTPBoot  bool       `json:"httpBoot"`
	UUID      string     `json:"uuid"`
	DHCP      bool       `json:"dhcp"`     // pxewim's DHCP saw it (else TFTP/HTTP only)
	BootFile  string     `json:"bootFile"` // what DHCP told it to load
	Entry     string     `json:"entry"`    // the last script or image it fetched
	Stage     Stage      `json:"stage"`
	FirstSeen time.Time  `json:"firstSeen"`
	LastSeen  time.Time  `json:"lastSeen"`
	Transfers []Transfer `json:"transfers"` // in flight
	Last      *Transfer  `json:"last"`      // the most recent finished one
	BytesSent int64      `json:"bytesSent"` // over all transfers
	LastError string     `json:"lastError"`
	Hint      string     `json:"hint"`
}

// Transfer is one file request in flight or finished.
type Transfer struct {
	ID       string        `json:"id"`
	Proto    string        `json:"proto"` // "tftp" or "http"
	Path     string        `json:"path"`
	Range    string        `json:"range,omitempty"`
	Size     int64         `json:"size"` // the file's full size, -1 unknown
	Bytes    int64         `json:"bytes"`
	Status   int           `json:"status,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Rate     float64       `json:"rate"` // bytes per second
	Done     bool          `json:"done"`
	Err      string        `json:"err,omitempty"`
}

// TraceEntry is one line of a client's boot trace.
type TraceEntry struct {
	Seq      uint64        `json:"seq"`
	Time     time.Time     `json:"time"`
	Proto    string        `json:"proto"` // dhcp, tftp, http
	What     string        `json:"what"`  // DISCOVER -> bootfile, GET path, RRQ path
	Range    string        `json:"range,omitempty"`
	Status   string        `json:"status"`
	Size     int64         `json:"size"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration"`
	Err      string        `json:"err,omitempty"`
}

// NewHub returns an empty hub.
func NewHub(opts Options) *Hub {
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.TraceLen <= 0 {
		opts.TraceLen = DefaultTraceLen
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Hub{opts: opts, clients: map[string]*client{}, live: map[string]string{}, subs: map[chan struct{}]struct{}{}}
}

// Subscribe returns a channel that receives a value (coalesced) after any change, and a
// function that ends the subscription.
func (h *Hub) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// changed wakes subscribers. Called locked.
func (h *Hub) changed() {
	h.version++
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// Clients returns every client, most recently seen first.
func (h *Hub) Clients() []ClientView {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire(h.opts.Now())
	out := make([]ClientView, 0, len(h.clients))
	for _, c := range h.clients {
		out = append(out, c.snapshot())
	}
	slices.SortFunc(out, func(a, b ClientView) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return compareStrings(a.Key, b.Key)
	})
	return out
}

// Client returns one client and its trace, oldest entry first.
func (h *Hub) Client(key string) (ClientView, []TraceEntry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.clients[key]
	if !ok {
		return ClientView{}, nil, false
	}
	tr := make([]TraceEntry, 0, len(c.trace))
	tr = append(tr, c.trace[c.next:]...)
	tr = append(tr, c.trace[:c.next]...)
	return c.snapshot(), tr, true
}

// Active counts the clients seen within window or with a transfer in flight.
func (h *Hub) Active(window time.Duration) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	now, n := h.opts.Now(), 0
	for _, c := range h.clients {
		if len(c.live) > 0 || now.Sub(c.view.LastSeen) <= window {
			n++
		}
	}
	return n
}

// Len reports how many clients are remembered.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (c *client) snapshot() ClientView {
	v := c.view
	v.Transfers = make([]Transfer, 0, len(c.live))
	for _, t := range c.live {
		v.Transfers = append(v.Transfers, *t)
	}
	slices.SortFunc(v.Transfers, func(a, b Transfer) int { return a.Started.Compare(b.Started) })
	if c.view.Last != nil {
		last := *c.view.Last
		v.Last = &last
	}
	return v
}

// lookup finds or makes the record for a client. mac may be nil (then ip names it). Called
// locked.
func (h *Hub) lookup(mac net.HardwareAddr, ip netip.Addr, now time.Time) *client {
	key := clientKey(mac, ip)
	if key == "" {
		return nil
	}
	if len(mac) > 0 && ip.IsValid() {
		// A client first known by IP (TFTP before we knew its MAC) joins its MAC record.
		if old, ok := h.clients["ip:"+ip.String()]; ok {
			delete(h.clients, "ip:"+ip.String())
			if _, exists := h.clients[key]; !exists {
				old.view.Key, old.view.MAC = key, mac.String()
				old.view.Vendor = h.opts.OUI.Vendor(mac)
				h.clients[key] = old
				for id, k := range h.live {
					if k == "ip:"+ip.String() {
						h.live[id] = key
					}
				}
			}
		}
	}
	c, ok := h.clients[key]
	if !ok {
		h.makeRoom(now)
		c = &client{live: map[string]*Transfer{}, view: ClientView{Key: key, FirstSeen: now, Stage: StageDHCP, Arch: -1}}
		if len(mac) > 0 {
			c.view.MAC = mac.String()
			c.view.Vendor = h.opts.OUI.Vendor(mac)
		}
		h.clients[key] = c
	}
	if ip.IsValid() {
		c.view.IP = ip.String()
	}
	c.view.LastSeen = now
	return c
}

func clientKey(mac net.HardwareAddr, ip netip.Addr) string {
	if len(mac) > 0 {
		return mac.String()
	}
	if ip.IsValid() {
		return "ip:" + ip.String()
	}
	return ""
}

// makeRoom drops expired clients, then the least recently seen idle one, until one more fits.
// Called locked.
func (h *Hub) makeRoom(now time.Time) {
	h.expire(now)
	for len(h.clients) >= h.opts.MaxClients {
		var oldest string
		for k, c := range h.clients {
			if oldest == "" || c.view.LastSeen.Before(h.clients[oldest].view.LastSeen) {
				oldest = k
			}
		}
		h.drop(oldest)
	}
}

// expire forgets clients idle for longer than the TTL. Called locked.
func (h *Hub) expire(now time.Time) {
	for k, c := range h.clients {
		if len(c.live) == 0 && now.Sub(c.view.LastSeen) > h.opts.TTL {
			h.drop(k)
		}
	}
}

func (h *Hub) drop(key string) {
	for id, k := range h.live {
		if k == key {
			delete(h.live, id)
		}
	}
	delete(h.clients, key)
}

// addTrace appends to the client's ring.
func (h *Hub) addTrace(c *client, e TraceEntry) {
	c.seq++
	e.Seq = c.seq
	e.What = truncate(e.What, maxPathLen)
	if len(c.trace) < h.opts.TraceLen {
		c.trace = append(c.trace, e)
		return
	}
	c.trace[c.next] = e
	c.next = (c.next + 1) % len(c.trace)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
