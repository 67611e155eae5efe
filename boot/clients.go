package boot

import (
	"bufio"
	"container/list"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// Registry remembers the clients seen recently, so that TFTP and HTTP, which see only an IP
// address, can tell who is asking (MAC, firmware, iPXE or not). DHCP feeds it by MAC; the IP
// comes from port-4011 requests, full-mode leases or an HTTP ?mac= parameter, and as a last
// resort from the kernel's neighbour table. Safe for concurrent use.
//
// # Bounds and eviction
//
// It holds at most Max records (a hard cap), each until TTL has passed since the client was
// last seen by DHCP or served. A client counts as served from the moment TFTP or HTTP looks
// it up (LookupIP, LookupMAC: every transfer start does, and the dashboard at each transfer's
// end): a client with live or recent transfers is in the middle of a boot, and a native
// WinPE client's whole TFTP tree hangs on its record. So when the registry is full, a
// newcomer takes the place of, in this order:
//
//  1. a record whose TTL has run out (served or not);
//  2. the least recently seen client that was never served (a DISCOVER and nothing since:
//     what a flood of random MACs consists of);
//  3. nobody: the newcomer is not recorded (Stats.Refused counts it). Clients served within
//     the TTL are never evicted by newcomers; TFTP and HTTP treat an unrecorded client as
//     unknown (it gets the default tree and menu) until room frees up.
//
// Every operation is O(1) (two LRU lists and two maps): a flood costs no scan. One record
// costs about 430 bytes of heap (measured by TestRegistryMemoryPerEntry), so the default
// 16384 records are about 7 MiB: room for a lab of 5,000 clients inside the TTL, 5,000 more
// booting, and the strangers of a rate-limited flood (see the dhcp package's RateLimit).
type Registry struct {
	max     int
	ttl     time.Duration
	now     func() time.Time
	arpPath string // kernel neighbour table; "" disables the fallback

	mu    sync.Mutex
	byMAC map[string]*clientRecord
	byIP  map[netip.Addr]*clientRecord
	idle  list.List // never-served records, least recently seen first (values: *clientRecord)
	busy  list.List // served records, least recently active first
	// evicted and refused count newcomers that pushed a live record out, or found no room.
	evicted, refused uint64
	log              *slog.Logger // optional: warns (at most every refusedWarnEvery) of refusals
	lastWarn         time.Time
	refusedSinceWarn uint64
}

// refusedWarnEvery spaces the warnings about newcomers the registry had no room for.
const refusedWarnEvery = time.Minute

type clientRecord struct {
	key    string // MAC text, the byMAC key
	c      Client
	seen   time.Time  // last DHCP exchange or learned address
	served time.Time  // last TFTP/HTTP lookup; zero: never served
	ip     netip.Addr // the address byIP maps to this record (zero: none)
	elem   *list.Element
}

// last is when the client last did anything.
func (rec *clientRecord) last() time.Time {
	if rec.served.After(rec.seen) {
		return rec.served
	}
	return rec.seen
}

// Registry defaults.
const (
	DefaultRegistrySize = 16384
	DefaultRegistryTTL  = time.Hour
	procNetARP          = "/proc/net/arp"
)

// RegistryStats describes the registry's occupancy, for logs and metrics.
type RegistryStats struct {
	Clients int    // records held
	Served  int    // of which served within the TTL (protected from eviction)
	Max     int    // the hard cap
	Evicted uint64 // never-served records dropped to make room for a newcomer
	Refused uint64 // newcomers not recorded: every record was served within the TTL
}

// NewRegistry returns a registry of at most max clients kept for ttl (0 = the defaults).
func NewRegistry(max int, ttl time.Duration) *Registry {
	if max <= 0 {
		max = DefaultRegistrySize
	}
	if ttl <= 0 {
		ttl = DefaultRegistryTTL
	}
	return &Registry{max: max, ttl: ttl, now: time.Now, arpPath: procNetARP,
		byMAC: map[string]*clientRecord{}, byIP: map[netip.Addr]*clientRecord{}}
}

// SetLogger makes the registry warn when it has to refuse newcomers (at most once a minute).
func (r *Registry) SetLogger(l *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = l
}

// Observe records what DHCP learned about a client. Fields the new record lacks (an IP, a
// UUID) keep their earlier values: a DISCOVER carries no IP, but the client still has one.
func (r *Registry) Observe(c Client) {
	if len(c.MAC) == 0 {
		return
	}
	key := c.MAC.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	rec := r.record(key, now)
	if rec == nil {
		return
	}
	old := rec.c
	rec.c = cloneClient(c)
	if !c.IP.IsValid() {
		rec.c.IP = old.IP
	}
	if c.UUID == "" {
		rec.c.UUID = old.UUID
	}
	if c.Interface == "" {
		rec.c.Interface = old.Interface
	}
	r.setIP(rec)
}

// LearnIP records that the client with this MAC uses ip (seen in an HTTP request naming its
// MAC, or a lease). An unknown MAC becomes a record of its own.
func (r *Registry) LearnIP(mac net.HardwareAddr, ip netip.Addr) {
	if len(mac) == 0 || !ip.IsValid() {
		return
	}
	key := mac.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(key, r.now())
	if rec == nil {
		return
	}
	if len(rec.c.MAC) == 0 {
		rec.c.MAC = append(net.HardwareAddr(nil), mac...)
	}
	rec.c.IP = ip.Unmap()
	r.setIP(rec)
}

// record returns key's record marked seen now, making one (and room for it) when there is
// none; nil when the registry is full of clients served within the TTL. Called locked.
func (r *Registry) record(key string, now time.Time) *clientRecord {
	if rec, ok := r.byMAC[key]; ok {
		if now.Sub(rec.last()) > r.ttl {
			r.remove(rec) // expired: start afresh, as a never-served newcomer
		} else {
			rec.seen = now
			r.listOf(rec).MoveToBack(rec.elem)
			return rec
		}
	}
	if !r.makeRoom(now) {
		r.refused++
		r.refusedSinceWarn++
		if r.log != nil && now.Sub(r.lastWarn) >= refusedWarnEvery {
			r.log.Warn("client registry full of clients served within the TTL: new clients are not remembered (they get the default tree and menu) until one expires",
				"mac", key, "clients", len(r.byMAC), "max", r.max, "ttl", r.ttl, "refused", r.refusedSinceWarn, "refused_total", r.refused)
			r.lastWarn, r.refusedSinceWarn = now, 0
		}
		return nil
	}
	rec := &clientRecord{key: key, seen: now}
	rec.elem = r.idle.PushBack(rec)
	r.byMAC[key] = rec
	return rec
}

func (r *Registry) listOf(rec *clientRecord) *list.List {
	if rec.served.IsZero() {
		return &r.idle
	}
	return &r.busy
}

// setIP points the IP index at rec's address, dropping the entry of its earlier address and
// taking the address from a record that had it before (the address moved to another machine).
func (r *Registry) setIP(rec *clientRecord) {
	ip := rec.c.IP
	if rec.ip == ip {
		if ip.IsValid() {
			r.byIP[ip] = rec
		}
		return
	}
	if rec.ip.IsValid() && r.byIP[rec.ip] == rec {
		delete(r.byIP, rec.ip)
	}
	rec.ip = netip.Addr{}
	if !ip.IsValid() {
		return
	}
	if prev, ok := r.byIP[ip]; ok && prev != rec {
		prev.c.IP, prev.ip = netip.Addr{}, netip.Addr{}
	}
	r.byIP[ip] = rec
	rec.ip = ip
}

// makeRoom makes room for one more record; false when every record was served within the TTL.
// Called locked.
func (r *Registry) makeRoom(now time.Time) bool {
	if len(r.byMAC) < r.max {
		return true
	}
	for _, l := range []*list.List{&r.busy, &r.idle} {
		for e := l.Front(); e != nil; e = l.Front() {
			rec := e.Value.(*clientRecord)
			if now.Sub(rec.last()) <= r.ttl {
				break
			}
			r.remove(rec)
		}
	}
	if len(r.byMAC) < r.max {
		return true
	}
	if e := r.idle.Front(); e != nil {
		r.remove(e.Value.(*clientRecord))
		r.evicted++
		return true
	}
	return false
}

func (r *Registry) remove(rec *clientRecord) {
	if rec.ip.IsValid() && r.byIP[rec.ip] == rec {
		delete(r.byIP, rec.ip)
	}
	r.listOf(rec).Remove(rec.elem)
	delete(r.byMAC, rec.key)
}

// LookupMAC returns the client with this MAC, if seen within the TTL. The lookup marks the
// client served (TFTP and HTTP look clients up when a transfer starts).
func (r *Registry) LookupMAC(mac net.HardwareAddr) (Client, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookup(r.byMAC[mac.String()])
}

// lookup returns rec's client when it has not expired, and marks it served. Called locked.
func (r *Registry) lookup(rec *clientRecord) (Client, bool) {
	if rec == nil {
		return Client{}, false
	}
	now := r.now()
	if now.Sub(rec.last()) > r.ttl {
		r.remove(rec)
		return Client{}, false
	}
	if rec.served.IsZero() {
		r.idle.Remove(rec.elem)
		rec.served = now
		rec.elem = r.busy.PushBack(rec)
	} else {
		rec.served = now
		r.busy.MoveToBack(rec.elem)
	}
	return cloneClient(rec.c), true
}

// LookupIP returns the client using ip. When no DHCP exchange or request told us, the
// kernel's neighbour table gives the MAC behind the address (the client just talked to us,
// so the entry is fresh), and the client is whatever DHCP knew about that MAC, if anything.
// Like LookupMAC, it marks the client served.
func (r *Registry) LookupIP(ip netip.Addr) (Client, bool) {
	ip = ip.Unmap()
	r.mu.Lock()
	c, ok := r.lookup(r.byIP[ip])
	r.mu.Unlock()
	if ok {
		return c, true
	}
	mac, ok := r.neighbour(ip)
	if !ok {
		return Client{}, false
	}
	r.LearnIP(mac, ip)
	return r.LookupMAC(mac)
}

// neighbour looks ip up in the kernel's ARP table.
func (r *Registry) neighbour(ip netip.Addr) (net.HardwareAddr, bool) {
	if r.arpPath == "" || !ip.Is4() {
		return nil, false
	}
	f, err := os.Open(r.arpPath)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	mac, err := findARP(f, ip)
	return mac, err == nil && mac != nil
}

// findARP parses /proc/net/arp ("IP address  HW type  Flags  HW address  Mask  Device") and
// returns the MAC of a complete entry for ip. The read is bounded: the table is small, and a
// hostile or broken file must not make us read forever.
func findARP(rd io.Reader, ip netip.Addr) (net.HardwareAddr, error) {
	sc := bufio.NewScanner(io.LimitReader(rd, 4<<20))
	first := true
	for sc.Scan() {
		if first {
			first = false // header line
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] != ip.String() {
			continue
		}
		if f[2] == "0x0" { // incomplete: no answer to the kernel's ARP request yet
			continue
		}
		mac, err := net.ParseMAC(f[3])
		if err != nil {
			return nil, fmt.Errorf("arp table: %w", err)
		}
		if isZeroMAC(mac) {
			continue
		}
		return mac, nil
	}
	return nil, sc.Err()
}

func isZeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}

// Len reports how many clients are remembered.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byMAC)
}

// Stats reports the registry's occupancy. Served counts the records served within the TTL.
func (r *Registry) Stats() RegistryStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	st := RegistryStats{Clients: len(r.byMAC), Max: r.max, Evicted: r.evicted, Refused: r.refused}
	for e := r.busy.Back(); e != nil; e = e.Prev() {
		if now.Sub(e.Value.(*clientRecord).last()) > r.ttl {
			break
		}
		st.Served++
	}
	return st
}

func cloneClient(c Client) Client {
	c.MAC = append(net.HardwareAddr(nil), c.MAC...)
	return c
}
