package dhcp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Lease store errors.
var (
	ErrPoolExhausted = errors.New("dhcp: address pool exhausted")
	ErrAddrTaken     = errors.New("dhcp: address leased to another client")
	ErrNotInPool     = errors.New("dhcp: address not in the pool")
)

// maxPoolSize bounds the pool so that a scan of it stays cheap (a /16).
const maxPoolSize = 1 << 16

// leaseBucket names the bbolt bucket: 4-byte IPv4 key -> JSON LeaseRecord.
const leaseBucket = "leases"

// LeaseState is the state of one pool address.
type LeaseState string

const (
	LeaseOffered  LeaseState = "offered"  // held for a client between OFFER and REQUEST
	LeaseBound    LeaseState = "bound"    // ACKed to a client
	LeaseDeclined LeaseState = "declined" // a client saw it in use (DECLINE); parked
)

// LeaseRecord is one pool address in the store.
type LeaseRecord struct {
	IP      netip.Addr `json:"-"`
	Client  string     `json:"client,omitempty"` // client identifier (option 61, else MAC)
	MAC     string     `json:"mac,omitempty"`
	State   LeaseState `json:"state"`
	Expires time.Time  `json:"expires"`
}

func (r *LeaseRecord) active(now time.Time) bool { return r != nil && now.Before(r.Expires) }

// LeaseStore keeps full-mode leases in a bbolt file. Every change is its own committed (and
// fsynced) transaction, so a restart or kill -9 loses nothing that was answered.
type LeaseStore struct {
	db         *bolt.DB
	start, end netip.Addr
	now        func() time.Time
	// reserved maps a reserved address to its MAC, byMAC the other way (reserve.go). Set
	// before the store is used, never changed after.
	reserved map[netip.Addr]string
	byMAC    map[string]netip.Addr
}

// OpenLeaseStore opens (creating if needed) the lease file at path for the pool start..end.
func OpenLeaseStore(path string, start, end netip.Addr) (*LeaseStore, error) {
	if err := checkPool(start, end); err != nil {
		return nil, err
	}
	db, err := openSharedDB(path, "v4") // shared with the DHCPv6 leases (leases_v6.go)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open lease database %s: locked by another process", path)
		}
		return nil, fmt.Errorf("open lease database %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(leaseBucket))
		return err
	})
	if err != nil {
		closeSharedDB(db, "v4")
		return nil, fmt.Errorf("init lease database %s: %w", path, err)
	}
	return &LeaseStore{db: db, start: start, end: end, now: time.Now}, nil
}

func checkPool(start, end netip.Addr) error {
	if !start.Is4() || !end.Is4() {
		return fmt.Errorf("dhcp pool %v-%v: both ends must be IPv4 addresses", start, end)
	}
	if end.Less(start) {
		return fmt.Errorf("dhcp pool %v-%v: end is before start", start, end)
	}
	if n := u32(end) - u32(start); n >= maxPoolSize {
		return fmt.Errorf("dhcp pool %v-%v: %d addresses, at most %d allowed", start, end, n+1, maxPoolSize)
	}
	return nil
}

// Close closes the database file.
func (s *LeaseStore) Close() error { return closeSharedDB(s.db, "v4") }

// withPool returns a store over the same open database with another pool: a reload that
// changes the range keeps every lease (the file stays open, so no second open blocks on its
// lock). Leases outside the new pool stay in the file; requests for them get a NAK.
func (s *LeaseStore) withPool(start, end netip.Addr) (*LeaseStore, error) {
	if err := checkPool(start, end); err != nil {
		return nil, err
	}
	return &LeaseStore{db: s.db, start: start, end: end, now: s.now, reserved: s.reserved, byMAC: s.byMAC}, nil
}

// InPool reports whether ip belongs to the pool.
func (s *LeaseStore) InPool(ip netip.Addr) bool {
	return ip.Is4() && !ip.Less(s.start) && !s.end.Less(ip)
}

// Reserve picks an address for client and holds it for hold: the client's current address if
// it has one, else the requested address if it is free, else the first free pool address.
func (s *LeaseStore) Reserve(client, mac string, requested netip.Addr, hold time.Duration) (netip.Addr, error) {
	var got netip.Addr
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(leaseBucket))
		now := s.now()
		if rip, ok := s.byMAC[mac]; ok {
			// A reserved MAC gets its address, whoever held it (reserve.go).
			got = rip
			rec, err := records4.get(b, rip)
			if err != nil {
				return err
			}
			if rec != nil && rec.MAC == mac && rec.State == LeaseBound && rec.active(now) {
				return nil
			}
			return records4.put(b, rip, &LeaseRecord{Client: client, MAC: mac, State: LeaseOffered, Expires: now.Add(hold)})
		}
		ip, rec, err := s.pick(b, client, requested, now)
		if err != nil {
			return err
		}
		got = ip
		if rec != nil && rec.Client == client && rec.State == LeaseBound && rec.active(now) {
			return nil // already bound: an offer does not shorten the lease
		}
		return records4.put(b, ip, &LeaseRecord{Client: client, MAC: mac, State: LeaseOffered, Expires: now.Add(hold)})
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("reserve address for %s: %w", client, err)
	}
	return got, nil
}

// pick chooses the address Reserve hands out and returns its current record (nil if none).
func (s *LeaseStore) pick(b *bolt.Bucket, client string, requested netip.Addr, now time.Time) (netip.Addr, *LeaseRecord, error) {
	if ip, rec, ok := s.findClient(b, client); ok && !s.isReserved(ip) {
		return ip, rec, nil
	}
	if s.InPool(requested) && !s.isReserved(requested) {
		rec, err := records4.get(b, requested)
		if err != nil {
			return netip.Addr{}, nil, err
		}
		if !rec.active(now) {
			return requested, rec, nil
		}
	}
	// Never-used addresses first, then expired ones, so that a returning client whose lease
	// ran out is less likely to find its old address taken.
	var expired netip.Addr
	var expiredRec *LeaseRecord
	for ip := s.start; ; ip = ip.Next() {
		rec, err := records4.get(b, ip)
		if err != nil {
			return netip.Addr{}, nil, err
		}
		if s.isReserved(ip) {
			// never handed to anyone but its MAC
		} else if rec == nil {
			return ip, nil, nil
		} else if !expired.IsValid() && !rec.active(now) {
			expired, expiredRec = ip, rec
		}
		if ip == s.end {
			break
		}
	}
	if expired.IsValid() {
		return expired, expiredRec, nil
	}
	return netip.Addr{}, nil, ErrPoolExhausted
}

// findClient returns the pool address recorded for client (any non-declined state, even
// expired: nobody else has taken it).
func (s *LeaseStore) findClient(b *bolt.Bucket, client string) (netip.Addr, *LeaseRecord, bool) {
	var found netip.Addr
	var rec *LeaseRecord
	_ = b.ForEach(func(k, v []byte) error {
		r, err := records4.decode(k, v)
		if err != nil || r.Client != client || r.State == LeaseDeclined || !s.Serves(r.IP) {
			return nil
		}
		found, rec = r.IP, r
		return errStop
	})
	return found, rec, found.IsValid()
}

var errStop = errors.New("stop")

// clientAddrs lists every address recorded for client that findClient would consider (a
// reserved client may hold an offer on its reservation and an old pool lease at once).
func (s *LeaseStore) clientAddrs(b *bolt.Bucket, client string) []netip.Addr {
	var out []netip.Addr
	_ = b.ForEach(func(k, v []byte) error {
		if r, err := records4.decode(k, v); err == nil && r.Client == client && r.State != LeaseDeclined && s.Serves(r.IP) {
			out = append(out, r.IP)
		}
		return nil
	})
	return out
}

// Bind leases ip to client for leaseTime (a REQUEST or a renewal). It fails with ErrAddrTaken
// when another client holds ip and ErrNotInPool when ip is not ours. Any other address the
// client held is freed: one lease per client.
func (s *LeaseStore) Bind(client, mac string, ip netip.Addr, leaseTime time.Duration) error {
	if !s.Serves(ip) {
		return fmt.Errorf("bind %v for %s: %w", ip, client, ErrNotInPool)
	}
	if err := s.checkReservation(mac, ip); err != nil {
		return fmt.Errorf("bind %v for %s: %w", ip, client, err)
	}
	_, ownReserved := s.byMAC[mac]
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(leaseBucket))
		now := s.now()
		rec, err := records4.get(b, ip)
		if err != nil {
			return err
		}
		if rec.active(now) && rec.Client != client && !ownReserved {
			return ErrAddrTaken
		}
		for _, old := range s.clientAddrs(b, client) {
			if old == ip {
				continue
			}
			if err := b.Delete(records4.key(old)); err != nil {
				return err
			}
		}
		return records4.put(b, ip, &LeaseRecord{Client: client, MAC: mac, State: LeaseBound, Expires: now.Add(leaseTime)})
	})
	if err != nil {
		return fmt.Errorf("bind %v for %s: %w", ip, client, err)
	}
	return nil
}

// Decline parks ip for hold after client reported it in use. Only the client that was offered
// the address (or nobody) can park it, so a hostile client cannot take others' leases away.
func (s *LeaseStore) Decline(client string, ip netip.Addr, hold time.Duration) error {
	if !s.Serves(ip) {
		return fmt.Errorf("decline %v from %s: %w", ip, client, ErrNotInPool)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(leaseBucket))
		rec, err := records4.get(b, ip)
		if err != nil {
			return err
		}
		if rec.active(s.now()) && rec.Client != client {
			return ErrAddrTaken
		}
		return records4.put(b, ip, &LeaseRecord{State: LeaseDeclined, Expires: s.now().Add(hold)})
	})
	if err != nil {
		return fmt.Errorf("decline %v from %s: %w", ip, client, err)
	}
	return nil
}

// Release frees ip if client holds it (RELEASE, or a client that chose another server's offer).
// onlyOffered limits it to a pending offer, leaving a bound lease alone.
func (s *LeaseStore) Release(client string, ip netip.Addr, onlyOffered bool) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(leaseBucket))
		if !ip.IsValid() {
			found, _, ok := s.findClient(b, client)
			if !ok {
				return nil
			}
			ip = found
		}
		rec, err := records4.get(b, ip)
		if err != nil || rec == nil || rec.Client != client {
			return err
		}
		if onlyOffered && rec.State != LeaseOffered {
			return nil
		}
		return b.Delete(records4.key(ip))
	})
	if err != nil {
		return fmt.Errorf("release %v from %s: %w", ip, client, err)
	}
	return nil
}

// Get returns the record for ip, or nil.
func (s *LeaseStore) Get(ip netip.Addr) (*LeaseRecord, error) {
	var rec *LeaseRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = records4.get(tx.Bucket([]byte(leaseBucket)), ip)
		return err
	})
	return rec, err
}

// All returns every record (for dashboards and tests).
func (s *LeaseStore) All() ([]LeaseRecord, error) { return records4.all(s.db) }

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
