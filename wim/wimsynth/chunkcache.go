package wimsynth

import (
	"container/list"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/pxewim/pxewim/wim/xpress"
)

// DefaultCacheBytes is the budget of the private ChunkCache a File gets when Options.Cache is
// nil.
const DefaultCacheBytes = 32 << 20

// maxMemoChunks bounds the chunk size tables a ChunkCache remembers (4 bytes per 32 KiB
// chunk: 16 MiB of tables describe 128 GiB of blobs). Past it the memo starts over.
const maxMemoChunks = 4 << 20

// ChunkCache holds XPRESS-compressed chunks of transcoded blobs, most recently used first,
// within a byte budget, and remembers each blob's compressed chunk sizes. Share one between
// the Builds of one store (Options.Cache): blobs are keyed by SHA-1 and size, so the injected
// variants of an image (which differ only in a few blobs) reuse each other's chunks and
// sizing passes. It is safe for concurrent use; a chunk wanted by several readers at once is
// compressed once.
type ChunkCache struct {
	max int64

	mu       sync.Mutex
	used     int64
	lru      *list.List // of *cached, front = most recent
	chunks   map[chunkKey]*list.Element
	inflight map[chunkKey]*inflight
	memo     map[blobKey][]uint32 // compressed size of every chunk of a blob
	memoLen  int

	encoders sync.Pool // *xpress.Encoder
	buffers  sync.Pool // *[]byte of BootChunkSize

	compressed atomic.Int64 // chunks compressed, for tests and benchmarks
	hits       atomic.Int64
}

type blobKey struct {
	hash [sha1.Size]byte
	size int64
}

type chunkKey struct {
	blob  blobKey
	chunk int64
}

type cached struct {
	key  chunkKey
	data []byte
}

type inflight struct {
	done chan struct{}
	data []byte
	err  error
}

// NewChunkCache returns a cache that keeps at most maxBytes of compressed chunks (0 keeps
// none: every read compresses the chunks it covers).
func NewChunkCache(maxBytes int64) *ChunkCache {
	c := &ChunkCache{
		max:      max(maxBytes, 0),
		lru:      list.New(),
		chunks:   map[chunkKey]*list.Element{},
		inflight: map[chunkKey]*inflight{},
		memo:     map[blobKey][]uint32{},
	}
	c.encoders.New = func() any {
		e, err := xpress.NewEncoder(BootChunkSize)
		if err != nil {
			panic(err) // BootChunkSize is a valid XPRESS chunk size
		}
		return e
	}
	c.buffers.New = func() any {
		b := make([]byte, BootChunkSize)
		return &b
	}
	return c
}

// CacheStats counts the cache's work since it was made.
type CacheStats struct {
	Compressed int64 // chunks compressed (sizing passes and reads)
	Hits       int64 // chunk reads served from the cache
	Bytes      int64 // compressed bytes held now
}

// Stats returns the cache's counters.
func (c *ChunkCache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Compressed: c.compressed.Load(), Hits: c.hits.Load(), Bytes: c.used}
}

// get returns chunk k's compressed bytes, from the cache or made by compress (at most one
// compress per key at a time; the others wait for it). evict says whether room may be made
// by dropping older chunks: sizing passes do not evict, so they fill the cache with the first
// bytes of a file and leave what readers use alone. Chunks of rawSize bytes (stored raw,
// read from the source when served) are not kept.
func (c *ChunkCache) get(key chunkKey, evict bool, rawSize int, compress func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.chunks[key]; ok {
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		c.hits.Add(1)
		return el.Value.(*cached).data, nil
	}
	if f, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.data, f.err
	}
	f := &inflight{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()

	f.data, f.err = compress()
	c.compressed.Add(1)

	c.mu.Lock()
	delete(c.inflight, key)
	if f.err == nil && len(f.data) != rawSize {
		c.put(key, f.data, evict)
	}
	c.mu.Unlock()
	close(f.done)
	return f.data, f.err
}

// put stores data under key if it fits the budget; c.mu is held.
func (c *ChunkCache) put(key chunkKey, data []byte, evict bool) {
	n := int64(len(data))
	if n > c.max {
		return
	}
	for c.used+n > c.max {
		if !evict {
			return
		}
		old := c.lru.Back()
		ent := old.Value.(*cached)
		c.lru.Remove(old)
		delete(c.chunks, ent.key)
		c.used -= int64(len(ent.data))
	}
	c.chunks[key] = c.lru.PushFront(&cached{key: key, data: data})
	c.used += n
}

// sizes returns the remembered chunk sizes of a blob.
func (c *ChunkCache) sizes(k blobKey) ([]uint32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.memo[k]
	return s, ok
}

// remember stores a blob's chunk sizes, starting the memo over when it is full.
func (c *ChunkCache) remember(k blobKey, s []uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.memoLen+len(s) > maxMemoChunks {
		clear(c.memo)
		c.memoLen = 0
	}
	if _, ok := c.memo[k]; !ok {
		c.memo[k] = s
		c.memoLen += len(s)
	}
}

// compressChunk reads chunk k (usize bytes) of src and compresses it, returning the bytes a
// WIM stores: compressed, or a copy of the raw chunk when it does not shrink.
func (c *ChunkCache) compressChunk(src io.ReaderAt, k int64, usize int, what string) ([]byte, error) {
	bp := c.buffers.Get().(*[]byte)
	defer c.buffers.Put(bp)
	in := (*bp)[:usize]
	if n, err := src.ReadAt(in, k*BootChunkSize); n < usize {
		return nil, fmt.Errorf("wimsynth: %s: reading chunk %d: %w", what, k, orUnexpectedEOF(err))
	}
	op := c.buffers.Get().(*[]byte)
	defer c.buffers.Put(op)
	e := c.encoders.Get().(*xpress.Encoder)
	defer c.encoders.Put(e)
	n, _, err := e.Compress(*op, in)
	if err != nil {
		return nil, fmt.Errorf("wimsynth: %s: chunk %d: %w", what, k, err)
	}
	return append([]byte(nil), (*op)[:n]...), nil // exact size: the cache counts len
}

// orUnexpectedEOF turns a short read without a real error into io.ErrUnexpectedEOF.
func orUnexpectedEOF(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
