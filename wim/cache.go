package wim

import (
	"container/list"
	"context"
	"errors"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Cache is the memory of decoding, shared by any number of archives and goroutines, and
// bounded as a whole (MaxBytes). It holds, and counts against that one bound:
//   - decoded chunks kept for later reads (idle: dropped least recently used first);
//   - decoded chunks readers are copying from right now (pinned: a reader holds a chunk only
//     for the length of one read call, never between calls);
//   - decodes in flight: the decoded bytes being produced and the stored bytes read for them,
//     and the pieces Verify has in flight;
//   - idle buffers kept for reuse by the next decode (dropped first when room is needed).
//
// When several goroutines want the same chunk at once it is decoded only once. A decode waits
// for room when the bound is taken by pinned chunks and other decodes. Progress is guaranteed
// even when one chunk is larger than the whole bound: when nothing pinned or in flight remains
// that will give memory back by itself, one waiter goes ahead beyond the bound (an overdraft;
// CacheStats.Overdrafts). So memory stays within the bound plus, at most, one chunk larger than
// what is free of it, plus the stored bytes of small chunks being read (see resource.chunk).
type Cache struct {
	max    atomic.Int64 // the bound; written under mu, read anywhere
	nextID atomic.Uint64

	mu        sync.Mutex
	cond      sync.Cond // waiters for room; broadcast whenever bytes are given back or the bound grows
	lru       list.List // idle entries (refs == 0), most recent first
	entries   map[chunkKey]*cacheEntry
	inflight  map[chunkKey]*chunkCall
	forgotten map[uint64]bool  // parts whose chunks Forget dropped: decodes in flight are not kept
	free      map[int][][]byte // idle buffers by capacity, for reuse
	idle      int64            // bytes of idle entries
	pinned    int64            // bytes of entries readers hold
	freeBytes int64            // bytes of idle buffers
	reserved  int64            // decodes in flight: given back without waiting for room
	forced    int64            // taken without waiting (may be held while waiting: see takeForced)
	peak      int64            // the most bytes accounted at once
	waiting   int              // goroutines waiting for room

	hits       int64
	misses     int64
	evictions  int64
	waits      int64
	overdrafts int64
	decodes    [len(decodeBounds) + 1]int64 // per bucket (not cumulative); last = above every bound
	decodeSum  time.Duration
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
	Bytes     int64 // decoded chunk bytes held now (idle and pinned)
	Entries   int   // chunks held now

	// Everything the bound (MaxBytes) covers: Bytes, plus decodes in flight and idle buffers.
	// PeakBytes is its high-water mark since NewCache: at most the bound, but for overdrafts.
	MaxBytes   int64
	UsedBytes  int64
	PeakBytes  int64
	Pinned     int64 // bytes of chunks readers are copying from now
	InFlight   int64 // bytes of decodes in flight (decoded and stored) and idle buffers
	Waits      int64 // decodes that waited for room
	Overdrafts int64 // decodes let past the bound so that one goes ahead (see Cache)

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

// cacheEntry is one decoded chunk. data, refs, el and listed are guarded by Cache.mu; data is
// set to nil when the entry leaves the cache (its buffer may then be reused).
type cacheEntry struct {
	key    chunkKey
	data   []byte
	refs   int           // readers holding it (pinned while > 0)
	el     *list.Element // in the LRU while idle
	listed bool          // in entries: later lookups find it
}

func (e *cacheEntry) size() int64 { return int64(cap(e.data)) }

type chunkCall struct {
	done     chan struct{}
	entry    *cacheEntry // with one reference per waiter, taken when the decode ended
	err      error
	waiters  int  // guarded by Cache.mu
	finished bool // guarded by Cache.mu
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

// NewCache returns a cache whose decoding memory is bounded by maxBytes (see Cache).
func NewCache(maxBytes int64) *Cache {
	c := &Cache{entries: map[chunkKey]*cacheEntry{}, inflight: map[chunkKey]*chunkCall{}, free: map[int][][]byte{}}
	c.cond.L = &c.mu
	c.max.Store(maxBytes)
	return c
}

// SetMaxBytes changes the bound (a config reload); idle chunks and buffers over the new bound
// are dropped at once, least recently used first. Pinned chunks and decodes in flight give
// their bytes back as they end.
func (c *Cache) SetMaxBytes(maxBytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max.Store(maxBytes)
	c.makeRoom(0)
	c.cond.Broadcast()
}

// MaxBytes returns the bound.
func (c *Cache) MaxBytes() int64 { return c.max.Load() }

// newID returns a fresh identifier for one opened WIM part.
func (c *Cache) newID() uint64 { return c.nextID.Add(1) }

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := CacheStats{Hits: c.hits, Misses: c.misses, Evictions: c.evictions, Bytes: c.idle + c.pinned, Entries: len(c.entries),
		MaxBytes: c.max.Load(), UsedBytes: c.used(), PeakBytes: c.peak, Pinned: c.pinned, InFlight: c.reserved + c.forced + c.freeBytes,
		Waits: c.waits, Overdrafts: c.overdrafts,
		DecodeSum: c.decodeSum, DecodeBuckets: make([]DecodeBucket, len(decodeBounds))}
	for i, b := range decodeBounds {
		st.DecodeCount += c.decodes[i]
		st.DecodeBuckets[i] = DecodeBucket{UpperBound: b, Count: st.DecodeCount}
	}
	st.DecodeCount += c.decodes[len(decodeBounds)]
	return st
}

// used is every byte the bound covers; c.mu must be held.
func (c *Cache) used() int64 { return c.idle + c.pinned + c.freeBytes + c.reserved + c.forced }

// notePeak records the high-water mark; c.mu must be held.
func (c *Cache) notePeak() { c.peak = max(c.peak, c.used()) }

// acquire returns chunk key, pinned: the caller reads entry.data (which must not be modified)
// and then calls release. decode, called at most once among concurrent callers, returns the
// decoded chunk in a buffer from take, whose reservation the cache then turns into the
// entry. ctx ends the wait for room or for another caller's decode.
func (c *Cache) acquire(ctx context.Context, key chunkKey, decode func(ctx context.Context) ([]byte, error)) (*cacheEntry, error) {
	c.mu.Lock()
	for {
		if e, ok := c.entries[key]; ok {
			c.hits++
			c.ref(e)
			c.mu.Unlock()
			return e, nil
		}
		call, ok := c.inflight[key]
		if !ok {
			break
		}
		c.hits++
		call.waiters++
		c.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			c.mu.Lock()
			if !call.finished {
				call.waiters--
				c.mu.Unlock()
				return nil, ctx.Err()
			}
			c.mu.Unlock()
			<-call.done // ends right after finished is set
			if call.entry != nil {
				c.release(call.entry)
			}
			return nil, ctx.Err()
		}
		if call.err == nil {
			return call.entry, nil
		}
		if !isContextErr(call.err) || ctx.Err() != nil {
			return nil, call.err
		}
		// The decoder's caller gave up, this one has not: decode it here.
		c.mu.Lock()
	}
	call := &chunkCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.misses++
	c.mu.Unlock()

	start := time.Now()
	data, err := decode(ctx)
	took := time.Since(start)

	c.mu.Lock()
	c.observeDecode(took)
	delete(c.inflight, key)
	call.finished = true
	if err != nil {
		call.err = err
	} else {
		e := &cacheEntry{key: key, data: data, refs: 1 + call.waiters}
		c.reserved -= e.size() // the decoded bytes' reservation (take) is now the entry's
		c.pinned += e.size()
		if !c.forgotten[key.part] {
			c.entries[key] = e
			e.listed = true
		}
		call.entry = e
	}
	c.mu.Unlock()
	close(call.done)
	return call.entry, err
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// lookup returns chunk key pinned when it is cached (a hit), without decoding.
func (c *Cache) lookup(key chunkKey) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.hits++
	c.ref(e)
	return e, true
}

// repin pins e again when it is still cached (a sequential reader's last chunk); false when it
// was dropped meanwhile.
func (c *Cache) repin(e *cacheEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !e.listed {
		return false
	}
	c.ref(e)
	return true
}

// ref pins e; c.mu must be held.
func (c *Cache) ref(e *cacheEntry) {
	if e.refs == 0 {
		c.lru.Remove(e.el)
		e.el = nil
		c.idle -= e.size()
		c.pinned += e.size()
	}
	e.refs++
}

// release unpins e. An entry nobody holds becomes idle (most recently used) and idle entries
// over the bound are dropped, least recently used first; the last one released stays when it
// alone is larger than the bound, so that a lone sequential reader of a chunk larger than
// the bound does not decode it again for every read.
func (c *Cache) release(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs > 0 {
		return
	}
	c.pinned -= e.size()
	if !e.listed {
		c.recycle(e.data) // forgotten while pinned
		e.data = nil
	} else {
		e.el = c.lru.PushFront(e)
		c.idle += e.size()
		for c.used() > c.max.Load() && c.lru.Len() > 0 {
			if c.lru.Len() == 1 && e.size() > c.max.Load() {
				break // e alone is larger than the bound: kept until room is wanted
			}
			c.evictOldest()
		}
	}
	c.cond.Broadcast()
}

// bufReq asks for a buffer of length n and capacity size.
type bufReq struct{ n, size int }

// exact asks for a buffer of capacity n (a chunk's decoded bytes); class for one of n rounded
// up to its size class (stored bytes, which vary from chunk to chunk).
func exact(n int) bufReq { return bufReq{n, n} }
func class(n int) bufReq { return bufReq{n, sizeClass(n)} }

// take returns the buffers asked for plus room for extra bytes the caller allocates itself,
// all counted against the bound as one reservation (never a part held while waiting for the
// rest) until the buffers become cache entries (acquire's decode returns one), are given back
// (putBuf) and the extra bytes are given back (unreserve). It waits for room: see Cache for
// the overdraft that lets one waiter past the bound. When ctx has ended it does not wait: it
// fails unless there is room (a canceled ctx asks only for room that is free).
func (c *Cache) take(ctx context.Context, extra int64, reqs ...bufReq) ([][]byte, error) {
	out := make([][]byte, len(reqs))
	c.mu.Lock()
	defer c.mu.Unlock()
	waited := false
	for {
		// Idle buffers and idle chunks of the very sizes wanted are taken over as they are
		// (they are counted already); what is missing is made room for.
		var mine, need int64
		for k, q := range reqs {
			if out[k] = c.fromFree(q.size); out[k] != nil {
				c.reserved += int64(cap(out[k]))
				mine += int64(cap(out[k]))
			} else {
				need += int64(q.size)
			}
		}
		if c.used()+need+extra > c.max.Load() {
			for k, q := range reqs {
				if out[k] == nil {
					if out[k] = c.reuseIdle(q.size); out[k] == nil {
						// An idle buffer too large to fit the size class would be dropped by
						// makeRoom below and a new one made: use it instead (its whole capacity
						// counts), which leaves no garbage for the collector to find later
						// (the last, shorter chunk of a solid resource after 64 MiB ones).
						out[k] = c.fromFreeLarger(q.size)
					}
					if out[k] != nil {
						c.reserved += int64(cap(out[k]))
						mine += int64(cap(out[k]))
						need -= int64(q.size)
					}
				}
			}
		}
		need += extra
		c.makeRoom(need)
		fits := c.used()+need <= c.max.Load()
		var err error
		if !fits {
			err = ctx.Err()
		}
		if err == nil && (fits || c.pinned+c.reserved-mine == 0) {
			if !fits {
				c.overdrafts++
			}
			for k, q := range reqs {
				if out[k] == nil {
					out[k] = makeLarge(q.n, q.size)
				}
				out[k] = out[k][:q.n]
			}
			c.reserved += need
			c.notePeak()
			return out, nil
		}
		// Hold nothing while waiting: what was taken over goes back as idle buffers.
		for k := range out {
			if out[k] != nil {
				c.reserved -= int64(cap(out[k]))
				c.free[cap(out[k])] = append(c.free[cap(out[k])], out[k][:0])
				c.freeBytes += int64(cap(out[k]))
				out[k] = nil
			}
		}
		if err != nil {
			return nil, err
		}
		if !waited {
			waited = true
			c.waits++
		}
		c.wait(ctx)
	}
}

// takeForced is take without waiting, for the stored bytes of a small chunk: taken before its
// decode reads them, because that read may itself decode chunks of other WIMs through this
// cache (a synthesised WIM over its sources) and so must not hold room another decode waits
// for. Its bytes count against the bound, but do not stop an overdraft. putForced gives it
// back.
func (c *Cache) takeForced(n int) []byte {
	size := sizeClass(n)
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.fromFree(size)
	if b == nil {
		c.makeRoom(int64(size))
		b = makeLarge(n, size)
	}
	c.forced += int64(cap(b))
	c.notePeak()
	return b[:n]
}

// putForced gives back a buffer from takeForced.
func (c *Cache) putForced(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forced -= int64(cap(b))
	c.recycle(b)
	c.cond.Broadcast()
}

// putBuf gives back a buffer from take (nil is ignored); it stays as an idle buffer for the
// next take of its size while the bound has room for it. Nobody may use it any more.
func (c *Cache) putBuf(b []byte) {
	if b == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved -= int64(cap(b))
	c.recycle(b)
	c.cond.Broadcast()
}

// unreserve gives back extra bytes from take.
func (c *Cache) unreserve(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved -= n
	c.cond.Broadcast()
}

// holdForced turns n reserved bytes into bytes held past the decode that reserved them (a
// prefix, which lives until the full decode of its chunk ends): they count, but do not stop
// an overdraft, since what gives them back may itself wait for room. unforce gives them back.
func (c *Cache) holdForced(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved -= n
	c.forced += n
}

func (c *Cache) unforce(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forced -= n
	c.cond.Broadcast()
}

// wait waits for bytes given back, or for ctx's end; c.mu must be held.
func (c *Cache) wait(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	c.waiting++
	c.cond.Wait()
	c.waiting--
	c.mu.Unlock()
	stop()
	c.mu.Lock()
}

// sizeClass rounds n up to a multiple of a sixteenth of the power of two at or above it (at
// least 4 KiB): at most an eighth more bytes, and buffers for stored chunks of similar sizes
// are interchangeable.
func sizeClass(n int) int {
	if n <= 4<<10 {
		return 4 << 10
	}
	step := 1 << max(12, bits.Len(uint(n-1))-4)
	return (n + step - 1) &^ (step - 1)
}

// fits reports whether a buffer of capacity have may serve for one of capacity want: not
// smaller, and at most an eighth larger (the last chunks of solid resources differ in size).
func fits(have, want int) bool { return have >= want && have-want <= want/8 }

// fromFree takes an idle buffer that fits size (the smallest), or nil; c.mu must be held.
func (c *Cache) fromFree(size int) []byte {
	best := 0
	if len(c.free[size]) > 0 {
		best = size
	} else {
		for have, l := range c.free {
			if len(l) > 0 && fits(have, size) && (best == 0 || have < best) {
				best = have
			}
		}
	}
	return c.popFree(best)
}

// fromFreeLarger takes the smallest idle buffer of at least size bytes, whatever its excess, or
// nil; c.mu must be held.
func (c *Cache) fromFreeLarger(size int) []byte {
	best := 0
	for have, l := range c.free {
		if len(l) > 0 && have >= size && (best == 0 || have < best) {
			best = have
		}
	}
	return c.popFree(best)
}

// popFree takes an idle buffer of capacity size, or nil if size is 0; c.mu must be held.
func (c *Cache) popFree(size int) []byte {
	if size == 0 {
		return nil
	}
	l := c.free[size]
	b := l[len(l)-1]
	l[len(l)-1] = nil
	if len(l) == 1 {
		delete(c.free, size)
	} else {
		c.free[size] = l[:len(l)-1]
	}
	c.freeBytes -= int64(size)
	return b
}

// recycle keeps b as an idle buffer if the bound has room for it; c.mu must be held and b
// must no longer be referenced by anyone.
func (c *Cache) recycle(b []byte) {
	if cap(b) == 0 || c.used()+int64(cap(b)) > c.max.Load() {
		return
	}
	c.free[cap(b)] = append(c.free[cap(b)], b[:0])
	c.freeBytes += int64(cap(b))
}

// makeRoom drops idle buffers, then idle entries least recently used first, until n more
// bytes fit within the bound or nothing idle is left; c.mu must be held.
func (c *Cache) makeRoom(n int64) {
	limit := c.max.Load()
	for size, l := range c.free {
		if c.used()+n <= limit {
			return
		}
		for len(l) > 0 && c.used()+n > limit {
			l[len(l)-1] = nil
			l = l[:len(l)-1]
			c.freeBytes -= int64(size)
		}
		if len(l) == 0 {
			delete(c.free, size)
		} else {
			c.free[size] = l
		}
	}
	for c.used()+n > limit && c.lru.Len() > 0 {
		c.evictOldest()
	}
}

// reuseIdle evicts one of the least recently used idle entries whose buffer has capacity
// size and returns that buffer for a new decode (no page faults, no garbage), or nil; c.mu
// must be held.
func (c *Cache) reuseIdle(size int) []byte {
	el := c.lru.Back()
	for range 16 {
		if el == nil {
			return nil
		}
		if e := el.Value.(*cacheEntry); fits(cap(e.data), size) {
			b := e.data
			c.evict(e) // its bytes leave idle; the caller counts them as reserved
			return b[:0]
		}
		el = el.Prev()
	}
	return nil
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

// evictOldest drops the least recently used idle chunk; c.mu is held.
func (c *Cache) evictOldest() { c.evict(c.lru.Back().Value.(*cacheEntry)) }

// evict drops idle entry e; its buffer is garbage (room was wanted); c.mu is held.
func (c *Cache) evict(e *cacheEntry) {
	c.lru.Remove(e.el)
	e.el = nil
	delete(c.entries, e.key)
	e.listed = false
	c.idle -= e.size()
	e.data = nil
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
	for key, e := range c.entries {
		if !ids[key.part] {
			continue
		}
		n++
		if e.refs > 0 {
			delete(c.entries, key)
			e.listed = false // dropped when its last reader releases it
			continue
		}
		c.evict(e)
		c.evictions-- // not an eviction for room
	}
	c.cond.Broadcast()
	return n
}
