package dhcp

import (
	"container/list"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// RateLimit bounds how many answers the server gives, per client MAC and per source, so that
// a flood (a broken NIC retrying in a loop, a fuzzer, 20,000 DISCOVERs from random MACs)
// costs bounded work and cannot push the clients that are booting out of the boot policy's
// client registry. Each limit is a token bucket: Burst answers at once, then PerSecond.
//
// The source of a packet is the relay that forwarded it (giaddr) or else its sender address.
// Clients on the server's own link all broadcast their DISCOVERs from one address (0.0.0.0,
// or the sending host's address in tests), so the per-source limit is also the limit for the
// whole link: its default lets a lab of 5,000 machines powering on at once through (2,000 at
// once, then 1,000 a second; PXE ROMs repeat their DISCOVER after 4, 8, 16 and 32 s).
//
// Only packets that would be answered count (netboot DISCOVERs and REQUESTs, port-4011
// requests; in full mode every DISCOVER, REQUEST and INFORM), and they are counted before
// the boot policy or the lease store sees them. A packet over a limit gets no answer, is
// logged at debug level, and is counted; a warning with the counts is logged at most every
// 10 seconds while it lasts.
//
// Each limit keeps one bucket per MAC or source in a table of at most Tracked entries; when
// it is full the least recently used entry is forgotten (a full bucket holds no information;
// a forgotten drained one gives that key a new burst, which the per-source limit still caps).
type RateLimit struct {
	// Off disables rate limiting.
	Off bool
	// PerMAC limits answers to one client hardware address (chaddr).
	PerMAC Rate
	// PerSource limits answers per relay (giaddr) or sender address.
	PerSource Rate
	// Tracked bounds each table (MACs, sources).
	Tracked int
}

// Rate is a token bucket: Burst answers at once, refilled at PerSecond.
type Rate struct {
	PerSecond float64
	Burst     int
}

// DefaultRateLimit is what a zero RateLimit means. A client's whole PXE boot (DISCOVER,
// REQUEST, port 4011, then iPXE's own DISCOVER and REQUEST, with retries) is well inside 16
// answers; a table entry costs about 100 bytes, so the tables stay under 2 MiB.
var DefaultRateLimit = RateLimit{
	PerMAC:    Rate{PerSecond: 2, Burst: 16},
	PerSource: Rate{PerSecond: 1000, Burst: 2000},
	Tracked:   8192,
}

// withDefaults fills the zero fields of l from DefaultRateLimit.
func (l RateLimit) withDefaults() RateLimit {
	d := DefaultRateLimit
	if l.PerMAC.PerSecond <= 0 {
		l.PerMAC.PerSecond = d.PerMAC.PerSecond
	}
	if l.PerMAC.Burst <= 0 {
		l.PerMAC.Burst = d.PerMAC.Burst
	}
	if l.PerSource.PerSecond <= 0 {
		l.PerSource.PerSecond = d.PerSource.PerSecond
	}
	if l.PerSource.Burst <= 0 {
		l.PerSource.Burst = d.PerSource.Burst
	}
	if l.Tracked <= 0 {
		l.Tracked = d.Tracked
	}
	return l
}

// errRateLimited marks a packet not answered because its MAC or source is over its limit.
var errRateLimited = fmt.Errorf("%w: rate limited", errIgnored)

// limiter applies a RateLimit. It lives as long as the Server (across reconfigurations).
type limiter struct {
	mu      sync.Mutex
	cfg     RateLimit
	now     func() time.Time
	log     *slog.Logger
	macs    bucketTable[string]
	sources bucketTable[netip.Addr]
	// dropped counts packets over a limit in all; sinceWarn those since the last warning.
	dropped, droppedMAC, droppedSource uint64
	sinceWarn                          uint64
	lastWarn                           time.Time
}

// limitWarnEvery spaces the warnings about dropped packets.
const limitWarnEvery = 10 * time.Second

func newLimiter(cfg RateLimit, log *slog.Logger) *limiter {
	l := &limiter{now: time.Now, log: log}
	l.set(cfg)
	return l
}

// set changes the limits; buckets already tracked keep their tokens (capped to the new burst).
func (l *limiter) set(cfg RateLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg.withDefaults()
	l.macs.max, l.sources.max = l.cfg.Tracked, l.cfg.Tracked
	l.macs.shrink()
	l.sources.shrink()
}

// allow reports whether the packet from src may be answered, taking a token from both its
// MAC's and its source's bucket when it may (none when it may not).
func (l *limiter) allow(pkt *dhcpv4.DHCPv4, src netip.AddrPort) error {
	if l == nil {
		return nil
	}
	source := src.Addr().Unmap()
	if gi := ip4(pkt.GatewayIPAddr); gi.IsValid() && !gi.IsUnspecified() {
		source = gi
	}
	mac := net.HardwareAddr(pkt.ClientHWAddr).String()
	return l.take(mac, mac, source, clientKind{proto: "dhcp", name: "mac", rate: "per_mac"})
}

// clientKind names the per-client bucket of a protocol in the limiter's warnings and errors:
// DHCPv4 counts per MAC, DHCPv6 per DUID.
type clientKind struct {
	proto string // "dhcp", "dhcp6": the warning's prefix
	name  string // "mac", "duid": the limit's name and the client's log key
	rate  string // the per-client limit's log key
}

// take spends a token from the client's bucket (key) and the source's, or counts a drop (with
// a warning at most every limitWarnEvery) and says which limit was hit.
func (l *limiter) take(key, client string, source netip.Addr, kind clientKind) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Off {
		return nil
	}
	now := l.now()
	mb := l.macs.get(key, now, l.cfg.PerMAC)
	sb := l.sources.get(source, now, l.cfg.PerSource)
	clientOK, srcOK := mb.tokens >= 1, sb.tokens >= 1
	if clientOK && srcOK {
		mb.tokens--
		sb.tokens--
		return nil
	}
	l.dropped++
	l.sinceWarn++
	which := "source"
	if !clientOK {
		l.droppedMAC++
		which = kind.name
	} else {
		l.droppedSource++
	}
	if now.Sub(l.lastWarn) >= limitWarnEvery {
		l.log.Warn(kind.proto+" rate limit: not answering a flood (see dhcp.RateLimit)", "limit", which, kind.name, client, "source", source,
			"dropped", l.sinceWarn, "dropped_total", l.dropped,
			kind.rate, fmt.Sprintf("%g/s burst %d", l.cfg.PerMAC.PerSecond, l.cfg.PerMAC.Burst),
			"per_source", fmt.Sprintf("%g/s burst %d", l.cfg.PerSource.PerSecond, l.cfg.PerSource.Burst))
		l.lastWarn, l.sinceWarn = now, 0
	}
	return fmt.Errorf("%w (per %s: %s %s, source %s)", errRateLimited, which, kind.name, client, source)
}

// LimitStats counts the packets the rate limit left unanswered.
type LimitStats struct {
	Dropped, ByMAC, BySource uint64
	MACs, Sources            int // table sizes
}

func (l *limiter) stats() LimitStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LimitStats{Dropped: l.dropped, ByMAC: l.droppedMAC, BySource: l.droppedSource,
		MACs: len(l.macs.m), Sources: len(l.sources.m)}
}

// bucket is one key's tokens.
type bucket[K comparable] struct {
	key    K
	tokens float64
	at     time.Time // when tokens was last brought up to date
	elem   *list.Element
}

// bucketTable holds at most max buckets, least recently used first in lru.
type bucketTable[K comparable] struct {
	max int
	m   map[K]*bucket[K]
	lru list.List
}

// get returns key's bucket refilled to now, making a full one (and room for it) if needed.
func (t *bucketTable[K]) get(key K, now time.Time, r Rate) *bucket[K] {
	if t.m == nil {
		t.m = map[K]*bucket[K]{}
	}
	b, ok := t.m[key]
	if !ok {
		for len(t.m) >= t.max && t.lru.Len() > 0 {
			t.drop(t.lru.Front().Value.(*bucket[K]))
		}
		b = &bucket[K]{key: key, tokens: float64(r.Burst), at: now}
		b.elem = t.lru.PushBack(b)
		t.m[key] = b
		return b
	}
	if dt := now.Sub(b.at); dt > 0 {
		b.tokens += dt.Seconds() * r.PerSecond
	}
	b.tokens = min(b.tokens, float64(r.Burst))
	b.at = now
	t.lru.MoveToBack(b.elem)
	return b
}

func (t *bucketTable[K]) drop(b *bucket[K]) {
	t.lru.Remove(b.elem)
	delete(t.m, b.key)
}

// shrink drops the least recently used buckets above max.
func (t *bucketTable[K]) shrink() {
	for len(t.m) > t.max && t.lru.Len() > 0 {
		t.drop(t.lru.Front().Value.(*bucket[K]))
	}
}
