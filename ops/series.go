package ops

import "time"

// The server's traffic over the last hour, in fixed steps, for the dashboard's charts.
const (
	SeriesStep = 10 * time.Second
	SeriesLen  = 360 // one hour of steps
)

// SeriesView is the last hour of traffic, oldest step first: Bytes sent to clients (TFTP and
// HTTP payload, counted as it is sent), Requests started, and Clients active (distinct clients
// with any DHCP, TFTP or HTTP event) in each step of Step seconds ending at End.
type SeriesView struct {
	Step     int       `json:"step"` // seconds per point
	End      time.Time `json:"end"`  // end of the last (current) step
	Bytes    []int64   `json:"bytes"`
	Requests []int     `json:"requests"`
	Clients  []int     `json:"clients"`
}

// seriesBucket is one step; n is the step's number (Unix time / step) so a slot of the ring
// left from an hour ago is recognised as stale.
type seriesBucket struct {
	n        int64
	bytes    int64
	requests int
	clients  int
}

type series [SeriesLen]seriesBucket

func stepOf(t time.Time) int64 { return t.Unix() / int64(SeriesStep/time.Second) }

// at returns the bucket of time t, cleared if it held an older step.
func (s *series) at(t time.Time) *seriesBucket {
	n := stepOf(t)
	b := &s[((n%SeriesLen)+SeriesLen)%SeriesLen]
	if b.n != n {
		*b = seriesBucket{n: n}
	}
	return b
}

// touch counts c as active in the step of now (once per step). Called locked.
func (h *Hub) touch(c *client, now time.Time) *seriesBucket {
	b := h.series.at(now)
	if c != nil && c.step != b.n {
		c.step = b.n
		b.clients++
	}
	return b
}

// Series returns the last hour of traffic.
func (h *Hub) Series() SeriesView {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	last := stepOf(now)
	step := int64(SeriesStep / time.Second)
	v := SeriesView{Step: int(step), End: time.Unix((last+1)*step, 0).UTC(),
		Bytes: make([]int64, SeriesLen), Requests: make([]int, SeriesLen), Clients: make([]int, SeriesLen)}
	for i := 0; i < SeriesLen; i++ {
		n := last - SeriesLen + 1 + int64(i)
		b := h.series[((n%SeriesLen)+SeriesLen)%SeriesLen]
		if b.n != n {
			continue
		}
		v.Bytes[i], v.Requests[i], v.Clients[i] = b.bytes, b.requests, b.clients
	}
	return v
}

// Now is the hub's clock (Options.Now).
func (h *Hub) Now() time.Time { return h.opts.Now() }
