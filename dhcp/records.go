package dhcp

import (
	"encoding/json"
	"fmt"
	"net/netip"

	bolt "go.etcd.io/bbolt"
)

// records is one bbolt bucket of JSON LeaseRecords keyed by address: records4 (leaseBucket,
// the 4 bytes of an IPv4 address) or records6 (lease6Bucket, the 16 of an IPv6 address).
type records struct {
	bucket string
	v6     bool
}

var (
	records4 = records{bucket: leaseBucket}
	records6 = records{bucket: lease6Bucket, v6: true}
)

// kind qualifies the bucket in messages: "" for IPv4, "DHCPv6 ".
func (rs records) kind() string {
	if rs.v6 {
		return "DHCPv6 "
	}
	return ""
}

// ours tells whether ip is of the bucket's family.
func (rs records) ours(ip netip.Addr) bool {
	if rs.v6 {
		return ip.Is6()
	}
	return ip.Is4()
}

func (rs records) key(ip netip.Addr) []byte {
	if rs.v6 {
		return ip.AsSlice()
	}
	b := ip.As4()
	return b[:]
}

// get returns the record for ip in b, or nil (none, or ip of the other family).
func (rs records) get(b *bolt.Bucket, ip netip.Addr) (*LeaseRecord, error) {
	if !rs.ours(ip) {
		return nil, nil
	}
	k := rs.key(ip)
	v := b.Get(k)
	if v == nil {
		return nil, nil
	}
	return rs.decode(k, v)
}

func (rs records) put(b *bolt.Bucket, ip netip.Addr, r *LeaseRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put(rs.key(ip), v)
}

func (rs records) decode(k, v []byte) (*LeaseRecord, error) {
	ip, ok := netip.AddrFromSlice(k)
	if !ok || !rs.ours(ip) {
		return nil, fmt.Errorf("lease database: bad %skey %x", rs.kind(), k)
	}
	var r LeaseRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("lease database: record for %v: %w", ip, err)
	}
	r.IP = ip
	return &r, nil
}

// all returns every record in the bucket.
func (rs records) all(db *bolt.DB) ([]LeaseRecord, error) {
	var out []LeaseRecord
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(rs.bucket)).ForEach(func(k, v []byte) error {
			r, err := rs.decode(k, v)
			if err != nil {
				return err
			}
			out = append(out, *r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list %sleases: %w", rs.kind(), err)
	}
	return out, nil
}
