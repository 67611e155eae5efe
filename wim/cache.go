package wim

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// Cache is a size-bounded LRU cache of decoded chunks, shared by any number of archives and
// goroutines. When several goroutines want the same chunk at once it is decoded only once.
// A chunk larger than the whole cache is handed to its readers but not kept.
type Cache struct {
	max    int64
	nextID atomic.Uint64

	mu        sync.Mutex
	lru       list.List // of *cacheEntry, most recent first
	entries   map[chunkKey]*list.Element
	inflight  map[chunkKey]*chunkCall
	bytes     int64
	hits      int64
	misses    int64
	evictions int64
}

// CacheStats is a snapshot of a Cache's counters.
type CacheStats struct {
	Hits      int64 // lookups served from the cache (including waits on an in-flight decode)
	Misses    int64 // lookups that decoded a chunk
	Evictions int64
	Bytes     int64 // decoded bytes held now
	Entries   int   // chunks held now
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

// NewCache returns a cache holding at most maxBytes of decoded chunk data.
func NewCache(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, entries: map[chunkKey]*list.Element{}, inflight: map[chunkKey]*chunkCall{}}
}

// newID returns a fresh identifier for one opened WIM part.
func (c *Cache) newID() uint64 { return c.nextID.Add(1) }

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Evictions: c.evictions, Bytes: c.bytes, Entries: c.lru.Len()}
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

	call.data, call.err = decode()

	c.mu.Lock()
	delete(c.inflight, key)
	if call.err == nil {
		c.add(key, call.data)
	}
	c.mu.Unlock()
	close(call.done)
	return call.data, call.err
}

// add stores a chunk and evicts the least recently used ones; c.mu must be held.
func (c *Cache) add(key chunkKey, data []byte) {
	size := int64(cap(data))
	if size > c.max {
		return
	}
	for c.bytes+size > c.max && c.lru.Len() > 0 {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.entries, e.key)
		c.bytes -= int64(cap(e.data))
		c.evictions++
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, data: data})
	c.bytes += size
}
