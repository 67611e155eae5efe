package boot

import (
	"bufio"
	"fmt"
	"io"
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
// resort from the kernel's neighbour table. It holds at most Max clients, each for TTL after
// it was last seen. Safe for concurrent use.
type Registry struct {
	max     int
	ttl     time.Duration
	now     func() time.Time
	arpPath string // kernel neighbour table; "" disables the fallback

	mu    sync.Mutex
	byMAC map[string]*clientRecord
	byIP  map[netip.Addr]string // IP -> MAC key
}

type clientRecord struct {
	c    Client
	seen time.Time
}

// Registry defaults.
const (
	DefaultRegistrySize = 4096
	DefaultRegistryTTL  = time.Hour
	procNetARP          = "/proc/net/arp"
)

// NewRegistry returns a registry of at most max clients kept for ttl (0 = the defaults).
func NewRegistry(max int, ttl time.Duration) *Registry {
	if max <= 0 {
		max = DefaultRegistrySize
	}
	if ttl <= 0 {
		ttl = DefaultRegistryTTL
	}
	return &Registry{max: max, ttl: ttl, now: time.Now, arpPath: procNetARP,
		byMAC: map[string]*clientRecord{}, byIP: map[netip.Addr]string{}}
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
	rec, ok := r.byMAC[key]
	if !ok {
		r.makeRoom(now)
		rec = &clientRecord{}
		r.byMAC[key] = rec
	}
	old := rec.c
	rec.c, rec.seen = cloneClient(c), now
	if !c.IP.IsValid() {
		rec.c.IP = old.IP
	}
	if c.UUID == "" {
		rec.c.UUID = old.UUID
	}
	if c.Interface == "" {
		rec.c.Interface = old.Interface
	}
	r.setIP(key, rec)
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
	now := r.now()
	rec, ok := r.byMAC[key]
	if !ok {
		r.makeRoom(now)
		rec = &clientRecord{c: Client{MAC: append(net.HardwareAddr(nil), mac...)}}
		r.byMAC[key] = rec
	}
	rec.c.IP, rec.seen = ip.Unmap(), now
	r.setIP(key, rec)
}

// setIP points the IP index at key, dropping the stale entry of an earlier address or owner.
func (r *Registry) setIP(key string, rec *clientRecord) {
	for ip, k := range r.byIP {
		if k == key && ip != rec.c.IP {
			delete(r.byIP, ip)
		}
	}
	if rec.c.IP.IsValid() {
		if prev, ok := r.byIP[rec.c.IP]; ok && prev != key {
			if p := r.byMAC[prev]; p != nil {
				p.c.IP = netip.Addr{} // the address moved to another machine
			}
		}
		r.byIP[rec.c.IP] = key
	}
}

// makeRoom drops expired records, then the oldest one, until one more fits. Called locked.
func (r *Registry) makeRoom(now time.Time) {
	if len(r.byMAC) < r.max {
		return
	}
	var oldestKey string
	var oldest time.Time
	for k, rec := range r.byMAC {
		if now.Sub(rec.seen) > r.ttl {
			r.remove(k)
			continue
		}
		if oldestKey == "" || rec.seen.Before(oldest) {
			oldestKey, oldest = k, rec.seen
		}
	}
	if len(r.byMAC) >= r.max && oldestKey != "" {
		r.remove(oldestKey)
	}
}

func (r *Registry) remove(key string) {
	if rec, ok := r.byMAC[key]; ok && rec.c.IP.IsValid() && r.byIP[rec.c.IP] == key {
		delete(r.byIP, rec.c.IP)
	}
	delete(r.byMAC, key)
}

// LookupMAC returns the client with this MAC, if seen within the TTL.
func (r *Registry) LookupMAC(mac net.HardwareAddr) (Client, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookupKey(mac.String())
}

func (r *Registry) lookupKey(key string) (Client, bool) {
	rec, ok := r.byMAC[key]
	if !ok {
		return Client{}, false
	}
	if r.now().Sub(rec.seen) > r.ttl {
		r.remove(key)
		return Client{}, false
	}
	return cloneClient(rec.c), true
}

// LookupIP returns the client using ip. When no DHCP exchange or request told us, the
// kernel's neighbour table gives the MAC behind the address (the client just talked to us,
// so the entry is fresh), and the client is whatever DHCP knew about that MAC, if anything.
func (r *Registry) LookupIP(ip netip.Addr) (Client, bool) {
	ip = ip.Unmap()
	r.mu.Lock()
	if key, ok := r.byIP[ip]; ok {
		c, ok := r.lookupKey(key)
		r.mu.Unlock()
		if ok {
			return c, true
		}
	} else {
		r.mu.Unlock()
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

func cloneClient(c Client) Client {
	c.MAC = append(net.HardwareAddr(nil), c.MAC...)
	return c
}
