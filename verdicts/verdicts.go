// Package verdicts keeps what pxewim learned when it verified a WIM (every blob against its
// SHA-1, as `pxewim wim verify` does) in a small bbolt file, so that a restart does not verify
// an unchanged store again.
//
// A verdict is keyed by the identity of the file version it was reached on: device, inode,
// size, modification and change times, and the WIM's GUID. Any write to the file changes its
// mtime and ctime (even one that sets the mtime back, as rsync -t does, moves the ctime), and a
// file replaced by a rename has another inode, so a verdict is never applied to other bytes
// than the ones that were verified. One record is kept per device and inode: a new version of
// a file replaces the verdict of the old one, and the file holds at most MaxRecords records
// (the least recently checked go first).
//
// The file is opened for each lookup or update and closed at once, so several daemons (tests,
// a second instance by mistake) can share it: a locked file is waited on for up to two
// seconds, then the caller gets an error and carries on without the persistent state.
package verdicts

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// MaxRecords bounds the verdicts kept in the file.
const MaxRecords = 4096

var maxRecords = MaxRecords // tests lower it

const bucket = "wim-verdicts"

// Identity names one version of one file.
type Identity struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // Unix nanoseconds
	GUID         [16]byte
}

// Verdict is the outcome of one verification.
type Verdict struct {
	Identity
	Path    string        `json:"path"` // store-relative, for people reading the file
	Good    bool          `json:"good"`
	Problem string        `json:"problem,omitempty"` // why it failed
	Checked time.Time     `json:"checked"`
	Took    time.Duration `json:"took"`
}

// DB is the verdict file. Safe for concurrent use.
type DB struct {
	path string
	mu   sync.Mutex // one open at a time from this process (bbolt's lock is per process)
}

// Open returns the verdict file at path, creating its folder and the file if needed, and
// checks that it can be opened.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("verdicts: %w", err)
	}
	d := &DB{path: path}
	if err := d.with(true, func(*bolt.Bucket) error { return nil }); err != nil {
		return nil, err
	}
	return d, nil
}

// Path returns the file's path.
func (d *DB) Path() string { return d.path }

func (d *DB) with(write bool, fn func(b *bolt.Bucket) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	db, err := bolt.Open(d.path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("verdicts: %s is locked by another process", d.path)
		}
		return fmt.Errorf("verdicts: opening %s: %w", d.path, err)
	}
	defer db.Close()
	if !write {
		return db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucket))
			if b == nil {
				return nil
			}
			return fn(b)
		})
	}
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return fn(b)
	})
}

func key(id Identity) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, id.Dev)
	binary.BigEndian.PutUint64(k[8:], id.Ino)
	return k
}

// Lookup returns the verdict reached on exactly this identity, if any.
func (d *DB) Lookup(id Identity) (Verdict, bool, error) {
	var v Verdict
	found := false
	err := d.with(false, func(b *bolt.Bucket) error {
		raw := b.Get(key(id))
		if raw == nil {
			return nil
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil // a damaged record counts as none: the file is verified again
		}
		found = v.Identity == id
		return nil
	})
	if err != nil {
		return Verdict{}, false, err
	}
	return v, found, nil
}

// Put records v, replacing any verdict on another version of the same file.
func (d *DB) Put(v Verdict) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("verdicts: %w", err)
	}
	return d.with(true, func(b *bolt.Bucket) error {
		if err := b.Put(key(v.Identity), raw); err != nil {
			return err
		}
		return trim(b)
	})
}

// trim drops the least recently checked records beyond MaxRecords. Records are decoded only when
// there are too many: a put into a file below the bound (every put of a mass change in a store of
// fewer than MaxRecords WIMs) costs a count of the keys, not a decode of every record.
func trim(b *bolt.Bucket) error {
	n := 0
	if err := b.ForEach(func(_, _ []byte) error { n++; return nil }); err != nil || n <= maxRecords {
		return err
	}
	type rec struct {
		k    []byte
		when time.Time
	}
	var all []rec
	err := b.ForEach(func(k, raw []byte) error {
		var v Verdict
		_ = json.Unmarshal(raw, &v) // a damaged record sorts first and goes
		all = append(all, rec{append([]byte(nil), k...), v.Checked})
		return nil
	})
	if err != nil || len(all) <= maxRecords {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].when.Before(all[j].when) })
	for _, r := range all[:len(all)-maxRecords] {
		if err := b.Delete(r.k); err != nil {
			return err
		}
	}
	return nil
}

// Len returns how many verdicts the file holds.
func (d *DB) Len() (int, error) {
	n := 0
	err := d.with(false, func(b *bolt.Bucket) error {
		return b.ForEach(func(_, _ []byte) error { n++; return nil })
	})
	return n, err
}
