package dhcp

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The DHCPv4 and DHCPv6 servers keep their leases in the same bbolt file (dhcp.full.leases), in
// two buckets. bbolt locks a file for one open handle, so both stores share one *bolt.DB,
// counted here and closed with the last store.
var sharedDBs = struct {
	sync.Mutex
	byPath map[string]*sharedDB
}{byPath: map[string]*sharedDB{}}

type sharedDB struct {
	db    *bolt.DB
	kinds map[string]bool // which stores ("v4", "v6") hold it: one of each at most
}

// openSharedDB opens path for a store of kind ("v4" or "v6"), or shares the handle a store of
// the other kind in this process has open. A second store of the same kind is refused as if
// another process held the file (bbolt's lock): a lease file has one owner per protocol.
func openSharedDB(path, kind string) (*bolt.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	sharedDBs.Lock()
	defer sharedDBs.Unlock()
	if s, ok := sharedDBs.byPath[abs]; ok {
		if s.kinds[kind] {
			return nil, berrors.ErrTimeout
		}
		s.kinds[kind] = true
		return s.db, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	sharedDBs.byPath[abs] = &sharedDB{db: db, kinds: map[string]bool{kind: true}}
	return db, nil
}

// closeSharedDB drops kind's hold on db and closes it with the last.
func closeSharedDB(db *bolt.DB, kind string) error {
	sharedDBs.Lock()
	defer sharedDBs.Unlock()
	for k, s := range sharedDBs.byPath {
		if s.db != db {
			continue
		}
		delete(s.kinds, kind)
		if len(s.kinds) > 0 {
			return nil
		}
		delete(sharedDBs.byPath, k)
		return db.Close()
	}
	return db.Close() // not in the table (never happens): close it anyway
}

// lease6Bucket holds DHCPv6 leases: 16-byte address -> JSON LeaseRecord (Client is the DUID
// and IAID of the IA_NA).
const lease6Bucket = "leases6"

// LeaseStore6 keeps full-mode DHCPv6 leases (IA_NA addresses) in the lease file's leases6
// bucket. A binding is its own committed (fsynced) transaction, as in LeaseStore; an offer
// (the address an Advertise names, held for OfferHold) lives in memory only, so a flood of
// Solicits from new DUIDs costs no disk write, and a restart forgets only offers. Bindings are
// indexed by client in memory (loaded at open), so no request scans the file.
type LeaseStore6 struct {
	db         *bolt.DB
	start, end netip.Addr
	now        func() time.Time
	mem        *mem6 // shared by the stores withPool makes
}

type mem6 struct {
	mu      sync.Mutex
	bound   map[string]netip.Addr // client -> address bound in the file
	offers  map[netip.Addr]offer6 // address -> offer held in memory
	offerBy map[string]netip.Addr // client -> offered address
	next    netip.Addr            // where the next free-address scan starts
}

type offer6 struct {
	client, mac string
	until       time.Time
}

// OpenLeaseStore6 opens (creating if needed) the lease file at path for the pool start..end.
func OpenLeaseStore6(path string, start, end netip.Addr) (*LeaseStore6, error) {
	if err := checkPool6(start, end); err != nil {
		return nil, err
	}
	db, err := openSharedDB(path, "v6")
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open lease database %s: locked by another process", path)
		}
		return nil, fmt.Errorf("open lease database %s: %w", path, err)
	}
	m := &mem6{bound: map[string]netip.Addr{}, offers: map[netip.Addr]offer6{}, offerBy: map[string]netip.Addr{}}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(lease6Bucket))
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if r, err := records6.decode(k, v); err == nil && r.State == LeaseBound && r.Client != "" {
				m.bound[r.Client] = r.IP
			}
			return nil
		})
	})
	if err != nil {
		closeSharedDB(db, "v6")
		return nil, fmt.Errorf("init lease database %s: %w", path, err)
	}
	return &LeaseStore6{db: db, start: start, end: end, now: time.Now, mem: m}, nil
}

// checkPool6 refuses pools that are not IPv6 unicast or hold more than maxPoolSize addresses.
func checkPool6(start, end netip.Addr) error {
	if !start.Is6() || !end.Is6() || start.Is4In6() || end.Is4In6() || start.Zone() != "" || end.Zone() != "" {
		return fmt.Errorf("dhcpv6 pool %v-%v: both ends must be IPv6 addresses", start, end)
	}
	if start.IsMulticast() || start.IsLinkLocalUnicast() || start.IsUnspecified() || start.IsLoopback() {
		return fmt.Errorf("dhcpv6 pool %v-%v: not a unicast range clients can use", start, end)
	}
	if end.Less(start) {
		return fmt.Errorf("dhcpv6 pool %v-%v: end is before start", start, end)
	}
	s, e := start.As16(), end.As16()
	for i := 0; i < 12; i++ {
		if s[i] != e[i] {
			return fmt.Errorf("dhcpv6 pool %v-%v: more than %d addresses", start, end, maxPoolSize)
		}
	}
	if n := u32low(end) - u32low(start); n >= maxPoolSize {
		return fmt.Errorf("dhcpv6 pool %v-%v: %d addresses, at most %d allowed", start, end, n+1, maxPoolSize)
	}
	return nil
}

func u32low(a netip.Addr) uint32 {
	b := a.As16()
	return uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15])
}

// Close releases the lease file (closed with the last store using it).
func (s *LeaseStore6) Close() error { return closeSharedDB(s.db, "v6") }

// withPool returns a store over the same open database and memory with another pool (a
// reload); like LeaseStore.withPool, the new store takes over the old one's reference.
func (s *LeaseStore6) withPool(start, end netip.Addr) (*LeaseStore6, error) {
	if err := checkPool6(start, end); err != nil {
		return nil, err
	}
	return &LeaseStore6{db: s.db, start: start, end: end, now: s.now, mem: s.mem}, nil
}

// InPool reports whether ip belongs to the pool.
func (s *LeaseStore6) InPool(ip netip.Addr) bool {
	return ip.Is6() && !ip.Less(s.start) && !s.end.Less(ip)
}

// Reserve picks an address for client (DUID+IAID) and holds it for hold: the address bound to
// the client, else the one offered to it, else the next address that is neither offered nor
// leased (never-used or expired), scanning round the pool from where the last scan stopped.
func (s *LeaseStore6) Reserve(client, mac string, hold time.Duration) (netip.Addr, error) {
	m := s.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	now := s.now()
	if ip, ok := m.bound[client]; ok && s.InPool(ip) {
		var mine bool
		_ = s.db.View(func(tx *bolt.Tx) error {
			rec, err := records6.get(tx.Bucket([]byte(lease6Bucket)), ip)
			mine = err == nil && rec != nil && rec.Client == client && rec.State == LeaseBound
			return nil
		})
		if mine {
			return ip, nil // an offer does not shorten a lease
		}
		delete(m.bound, client)
	}
	if ip, ok := m.offerBy[client]; ok && s.InPool(ip) && m.offers[ip].client == client {
		m.offers[ip] = offer6{client: client, mac: mac, until: now.Add(hold)}
		return ip, nil
	}
	var got netip.Addr
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(lease6Bucket))
		ip := m.next
		if !s.InPool(ip) {
			ip = s.start
		}
		n := int(u32low(s.end)-u32low(s.start)) + 1
		for range n {
			cand := ip
			if ip = ip.Next(); !s.InPool(ip) {
				ip = s.start
			}
			if o, ok := m.offers[cand]; ok && now.Before(o.until) {
				continue
			}
			if v := b.Get(cand.AsSlice()); v != nil {
				rec, err := records6.decode(cand.AsSlice(), v)
				if err != nil || rec.active(now) {
					continue
				}
			}
			got, m.next = cand, ip
			return nil
		}
		return ErrPoolExhausted
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("reserve address for %s: %w", client, err)
	}
	if old, ok := m.offers[got]; ok {
		delete(m.offerBy, old.client)
	}
	if prev, ok := m.offerBy[client]; ok {
		delete(m.offers, prev)
	}
	m.offers[got] = offer6{client: client, mac: mac, until: now.Add(hold)}
	m.offerBy[client] = got
	return got, nil
}

// Bind leases ip to client for leaseTime (Request, Renew, Rebind). ErrAddrTaken: another
// client holds it (a lease, or an offer still held); ErrNotInPool: not ours. The client's
// other address, if any, is freed.
func (s *LeaseStore6) Bind(client, mac string, ip netip.Addr, leaseTime time.Duration) error {
	if !s.InPool(ip) {
		return fmt.Errorf("bind %v for %s: %w", ip, client, ErrNotInPool)
	}
	m := s.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	now := s.now()
	if o, ok := m.offers[ip]; ok && o.client != client && now.Before(o.until) {
		return fmt.Errorf("bind %v for %s: %w", ip, client, ErrAddrTaken)
	}
	old, hadOld := m.bound[client]
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(lease6Bucket))
		rec, err := records6.get(b, ip)
		if err != nil {
			return err
		}
		if rec.active(now) && rec.Client != client {
			return ErrAddrTaken
		}
		if rec != nil && rec.Client != client && m.bound[rec.Client] == ip {
			delete(m.bound, rec.Client) // its lease ran out: the address moves on
		}
		if hadOld && old != ip {
			if err := b.Delete(old.AsSlice()); err != nil {
				return err
			}
		}
		return records6.put(b, ip, &LeaseRecord{Client: client, MAC: mac, State: LeaseBound, Expires: now.Add(leaseTime)})
	})
	if err != nil {
		return fmt.Errorf("bind %v for %s: %w", ip, client, err)
	}
	m.bound[client] = ip
	if o, ok := m.offerBy[client]; ok {
		delete(m.offers, o)
		delete(m.offerBy, client)
	}
	return nil
}

// Release frees ip if client holds it (bound or offered).
func (s *LeaseStore6) Release(client string, ip netip.Addr) error {
	m := s.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.offers[ip]; ok && o.client == client {
		delete(m.offers, ip)
		delete(m.offerBy, client)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(lease6Bucket))
		rec, err := records6.get(b, ip)
		if err != nil || rec == nil || rec.Client != client {
			return err
		}
		if m.bound[client] == ip {
			delete(m.bound, client)
		}
		return b.Delete(ip.AsSlice())
	})
}

// DropOffer forgets the offer held for client (it took another server's).
func (s *LeaseStore6) DropOffer(client string) {
	m := s.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	if ip, ok := m.offerBy[client]; ok {
		delete(m.offers, ip)
		delete(m.offerBy, client)
	}
}

// Decline parks ip for hold when the client that holds it (or nobody) saw it in use.
func (s *LeaseStore6) Decline(client string, ip netip.Addr, hold time.Duration) error {
	if !s.InPool(ip) {
		return fmt.Errorf("decline %v from %s: %w", ip, client, ErrNotInPool)
	}
	m := s.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	now := s.now()
	if o, ok := m.offers[ip]; ok && o.client != client && now.Before(o.until) {
		return ErrAddrTaken
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(lease6Bucket))
		rec, err := records6.get(b, ip)
		if err != nil {
			return err
		}
		if rec.active(now) && rec.Client != client {
			return ErrAddrTaken
		}
		return records6.put(b, ip, &LeaseRecord{State: LeaseDeclined, Expires: now.Add(hold)})
	})
	if err != nil {
		return err
	}
	if m.bound[client] == ip {
		delete(m.bound, client)
	}
	if m.offerBy[client] == ip {
		delete(m.offerBy, client)
	}
	delete(m.offers, ip)
	return nil
}

// All returns every record in the file and every offer held in memory (dashboards, tests).
func (s *LeaseStore6) All() ([]LeaseRecord, error) {
	out, err := records6.all(s.db)
	if err != nil {
		return nil, err
	}
	s.mem.mu.Lock()
	for ip, o := range s.mem.offers {
		out = append(out, LeaseRecord{IP: ip, Client: o.client, MAC: o.mac, State: LeaseOffered, Expires: o.until})
	}
	s.mem.mu.Unlock()
	return out, nil
}
