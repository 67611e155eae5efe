package sftpstore

import (
	"container/list"
	"crypto/sha256"
	"fmt"
	"sync"
)

// maxPins bounds the block checksums kept (32 bytes each plus the key): beyond it new blocks
// are served unpinned. A million 1 MiB blocks is a terabyte of images.
const maxPins = 1 << 20

// blockKey names one block of one version of a remote file. Size and modification time are in
// the key so a file replaced on the server never serves blocks of its old content.
type blockKey struct {
	path  string
	size  int64
	mtime int64 // Unix nanoseconds
	index int64
}

// blockCache is an LRU of remote file blocks bounded by total bytes, with one fetch in flight
// per block (singleflight): many clients booting the same image cost one remote read.
type blockCache struct {
	max int64

	mu       sync.Mutex
	used     int64
	lru      *list.List // of *cacheEntry, front = most recent
	entries  map[blockKey]*list.Element
	inflight map[blockKey]*fetch
	pins     map[blockKey][sha256.Size]byte // checksum of each block's first fetch
	stats    Stats
}

type cacheEntry struct {
	key  blockKey
	data []byte
}

// fetch is one remote read of a block that other readers of the same block wait for.
type fetch struct {
	done chan struct{}
	data []byte
	err  error
}

func newBlockCache(max int64) *blockCache {
	return &blockCache{max: max, lru: list.New(), entries: map[blockKey]*list.Element{},
		inflight: map[blockKey]*fetch{}, pins: map[blockKey][sha256.Size]byte{}}
}

// get returns the block for k, calling load (once for all concurrent callers) on a miss.
// The returned slice is shared: callers must not modify it.
func (c *blockCache) get(k blockKey, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.entries[k]; ok {
		c.lru.MoveToFront(el)
		c.stats.Hits++
		data := el.Value.(*cacheEntry).data
		c.mu.Unlock()
		return data, nil
	}
	if f, ok := c.inflight[k]; ok {
		c.stats.Shared++
		c.mu.Unlock()
		<-f.done
		return f.data, f.err
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[k] = f
	c.stats.Misses++
	c.mu.Unlock()

	f.data, f.err = load()
	var sum [sha256.Size]byte
	if f.err == nil {
		sum = sha256.Sum256(f.data)
	}

	c.mu.Lock()
	delete(c.inflight, k)
	if f.err == nil {
		f.err = c.pin(k, sum)
	}
	if f.err == nil {
		c.stats.BytesFetched += int64(len(f.data))
		c.add(k, f.data)
	}
	c.mu.Unlock()
	close(f.done)
	return f.data, f.err
}

// pin records the checksum of a block's first fetch and checks refetches (after eviction or a
// reconnect) against it: once read, a block of a file version never changes, even if the
// server rewrites the file in place keeping its size and modification time. Called locked.
func (c *blockCache) pin(k blockKey, sum [sha256.Size]byte) error {
	old, ok := c.pins[k]
	if !ok {
		if len(c.pins) < maxPins {
			c.pins[k] = sum
		}
		return nil
	}
	if old != sum {
		c.stats.PinMismatches++
		return fmt.Errorf("block %d of %s differs from when it was first read (rewritten in place?): %w",
			k.index, k.path, ErrChanged)
	}
	return nil
}

// add stores a block and evicts least recently used ones beyond the bound. Called locked.
func (c *blockCache) add(k blockKey, data []byte) {
	if int64(len(data)) > c.max {
		return // larger than the whole cache: serve it, keep nothing
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, data: data})
	c.used += int64(len(data))
	for c.used > c.max {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.entries, e.key)
		c.used -= int64(len(e.data))
		c.stats.Evictions++
	}
}

func (c *blockCache) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.CachedBytes = c.used
	s.MaxBytes = c.max
	return s
}

// Stats counts the block cache's work; see Store.Stats.
type Stats struct {
	Hits         int64 // block reads served from the cache
	Misses       int64 // block reads that went to the server
	Shared       int64 // block reads that waited for another reader's fetch of the same block
	Evictions    int64
	BytesFetched int64 // bytes read from the server into the cache
	CachedBytes  int64 // bytes held now; never above MaxBytes
	MaxBytes     int64
	Reconnects   int64 // SSH connections re-established after a drop
	Retries      int64 // remote operations retried
	// PinMismatches counts refetched blocks whose bytes differed from their first fetch
	// (refused with ErrChanged).
	PinMismatches int64
}
