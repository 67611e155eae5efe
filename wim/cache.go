package wim

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Cache is a size-bounded LRU cache of decoded chunks, shared by any number of archives and
// goroutines. When several goroutines want the same chunk at once it is decoded only once.
// A chunk larger than the whole cache is handed to its readers but not kept.
type Cache struct {
	max    atomic.Int64 // the bound; written under mu, read anywhere
	nextID atomic.Uint64

	mu        sync.Mutex
	lru       list.List // of *cacheEntry, most recent first
	entries   map[chunkKey]*list.Element
	inflight  map[chunkKey]*chunkCall
	forgotten map[uint64]bool // parts whose chunks Forget dropped: decodes in flight are not kept
	bytes     int64
	peak      int64 // the most bytes held at once
	hits      int64
	misses    int64
	evictions int64
	decodes   [len(decodeBounds) + 1]int64 // per bucket (not cumulative); last = above every bound
	decodeSum time.Duration
}

// decodeBounds are the upper bounds of the decode-time histogram: from a small XPRESS chunk on a
// fast core (tens of µs) to a 64 MiB solid LZMS chunk on a busy one (seconds).
var decodeBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
}

// DecodeBucket is one bucket of the decode-time histogram: how many cache misses took at most
// UpperBound (cumulative, as Prometheus histograms count).
type DecodeBucket struct {
	UpperBound time.Duration
	Count      int64
}

// CacheStats is a snapshot of a Cache's counters.
type CacheStats struct {
	Hits      int64 // lookups served from the cache (including waits on an in-flight decode)
	Misses    int64 // lookups that decoded a chunk
	Evictions int64
	Bytes     int64 // decoded bytes held now
	PeakBytes int64 // the most decoded bytes held at once since NewCache (never above the bound)
	Entries   int   // chunks held now

	// Decode time of cache misses: reading the chunk's stored bytes plus decompressing them.
	DecodeCount   int64
	DecodeSum     time.Duration
	DecodeBuckets []DecodeBucket // cumulative counts, by increasing UpperBound
}

// chunkKey names a chunk: the archive part, the resource's file offset and the chunk index.
type chunkKey struct {
	part   uint64
	offset int64
	chunk  int64
}

type cacheEntry struct {
	key  chunkKey
	data []byte
}

type chunkCall struct {
	done chan struct{}
	data []byte
	err  error
}

// DefaultCacheSize is the size of the private cache an archive makes when none is given: four
// of the largest (64 MiB) solid chunks.
const DefaultCacheSize = 256 << 20

// privateCaches counts the caches Open made because it was given none (PrivateCaches).
var privateCaches atomic.Int64

// PrivateCaches returns how many archives this process opened without a Cache, each making a
// private one of DefaultCacheSize bytes. A program that shares one cache among all the WIMs it
// opens (pxewim's daemon) keeps this at zero.
func PrivateCaches() int64 { return privateCaches.Load() }

// NewCache returns a cache holding at most maxBytes of decoded chunk data.
func NewCache(maxBytes int64) *Cache {
	c := &Cache{entries: map[chunkKey]*list.Element{}, inflight: map[chunkKey]*chunkCall{}}
	c.max.Store(maxBytes)
	return c
}

// SetMaxBytes changes the bound (a config reload); chunks over the new bound are evicted at
// once, least recently used first.
func (c *Cache) SetMaxBytes(maxBytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max.Store(maxBytes)
	for c.bytes > maxBytes && c.lru.Len() > 0 {
		c.evictOldest()
	}
}

// MaxBytes returns the bound.
func (c *Cache) MaxBytes() int64 { return c.max.Load() }

// newID returns a fresh identifier for one opened WIM part.
func (c *Cache) newID() uint64 { return c.nextID.Add(1) }

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := CacheStats{Hits: c.hits, Misses: c.misses, Evictions: c.evictions, Bytes: c.bytes, PeakBytes: c.peak, Entries: c.lru.Len(),
		DecodeSum: c.decodeSum, DecodeBuckets: make([]DecodeBucket, len(decodeBounds))}
	for i, b := range decodeBounds {
		st.DecodeCount += c.decodes[i]
		st.DecodeBuckets[i] = DecodeBucket{UpperBound: b, Count: st.DecodeCount}
	}
	st.DecodeCount += c.decodes[len(decodeBounds)]
	return st
}

// get returns the chunk for key, calling decode at most once per key among concurrent callers.
// The returned slice is shared: callers must not modify it.
func (c *Cache) get(key chunkKey, decode func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		c.hits++
		data := el.Value.(*cacheEntry).data
		c.mu.Unlock()
		return data, nil
	}
	if call, ok := c.inflight[key]; ok {
		c.hits++
		c.mu.Unlock()
		<-call.done
		return call.data, call.err
	}
	call := &chunkCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.misses++
	c.mu.Unlock()

	start := time.Now()
	call.data, call.err = decode()
	took := time.Since(start)

	c.mu.Lock()
	c.observeDecode(took)
	delete(c.inflight, key)
	if call.err == nil {
		c.add(key, call.data)
	}
	c.mu.Unlock()
	close(call.done)
	return call.data, call.err
}

// peek returns the chunk for key when it is cached (a hit), without decoding.
func (c *Cache) peek(key chunkKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	c.hits++
	return el.Value.(*cacheEntry).data, true
}

// isForgotten reports whether Forget dropped the chunks of part id (its file changed).
func (c *Cache) isForgotten(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forgotten[id]
}

// observeDecode counts one decode in the histogram; c.mu must be held.
func (c *Cache) observeDecode(d time.Duration) {
	i := 0
	for i < len(decodeBounds) && d > decodeBounds[i] {
		i++
	}
	c.decodes[i]++
	c.decodeSum += d
}

// add stores a chunk and evicts the least recently used ones; c.mu must be held.
func (c *Cache) add(key chunkKey, data []byte) {
	size := int64(cap(data))
	if size > c.max.Load() {
		return
	}
	for c.bytes+size > c.max.Load() && c.lru.Len() > 0 {
		c.evictOldest()
	}
	if c.forgotten[key.part] {
		return
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, data: data})
	c.bytes += size
	c.peak = max(c.peak, c.bytes)
}

// evictOldest drops the least recently used chunk; c.mu is held.
func (c *Cache) evictOldest() {
	el := c.lru.Back()
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.bytes -= int64(cap(e.data))
	c.evictions++
}

// Forget drops every decoded chunk of a's parts and keeps none of them from now on: the WIM
// file changed on disk (written in place), so chunks decoded from it may no longer be what it
// holds. a must use c (Options.Cache). Readers of a keep working and decode again from the file (whose owner decides what
// that read returns). Returns how many chunks were dropped.
func (c *Cache) Forget(a *Archive) int {
	if a.cache != c {
		return 0 // its chunks live elsewhere (part ids are numbered per cache)
	}
	ids := map[uint64]bool{}
	for _, p := range a.parts {
		ids[p.id] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgotten == nil {
		c.forgotten = map[uint64]bool{}
	}
	for id := range ids {
		c.forgotten[id] = true // 8 bytes per forgotten WIM version: ids are never reused
	}
	n := 0
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*cacheEntry); ids[e.key.part] {
			c.lru.Remove(el)
			delete(c.entries, e.key)
			c.bytes -= int64(cap(e.data))
			n++
		}
		el = next
	}
	return n
}
