package wimsynth

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// xpressRes is one blob stored as a non-solid XPRESS resource with BootChunkSize chunks: the
// chunk table, generated when the blob was sized, then every chunk compressed on demand from
// the blob's decoded bytes (or copied raw from them when it does not shrink).
type xpressRes struct {
	key   blobKey
	src   io.ReaderAt // the blob's decoded bytes
	table []byte      // chunk table: offsets of chunks 1.. from the end of the table
	ends  []int64     // ends[k]: end of chunk k's data, from the end of the table
	cache *ChunkCache
	what  string
}

// Size is the resource's size in the WIM (table and chunks).
func (x *xpressRes) Size() int64 { return int64(len(x.table)) + x.ends[len(x.ends)-1] }

func (x *xpressRes) start(k int) int64 {
	if k == 0 {
		return 0
	}
	return x.ends[k-1]
}

func (x *xpressRes) usize(k int) int {
	return int(min(BootChunkSize, x.key.size-int64(k)*BootChunkSize))
}

// ReadAt serves the resource's bytes; only the chunks the range covers are read from the
// source and compressed (or taken from the cache).
func (x *xpressRes) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= x.Size() {
		return 0, io.EOF
	}
	n := 0
	if off < int64(len(x.table)) {
		n = copy(p, x.table[off:])
	}
	pos := off + int64(n) - int64(len(x.table)) // in the chunk data
	k := sort.Search(len(x.ends), func(i int) bool { return x.ends[i] > pos })
	for ; n < len(p) && k < len(x.ends); k++ {
		start := x.start(k)
		size, at := x.ends[k]-start, pos-start
		part := p[n:min(int64(len(p)), int64(n)+size-at)]
		if int(size) == x.usize(k) { // stored raw: the decoded bytes themselves
			if m, err := x.src.ReadAt(part, int64(k)*BootChunkSize+at); m < len(part) {
				return n + m, fmt.Errorf("wimsynth: %s: reading chunk %d: %w", x.what, k, orUnexpectedEOF(err))
			}
		} else {
			data, err := x.cache.get(chunkKey{x.key, int64(k)}, true, x.usize(k), func() ([]byte, error) { return x.compress(k) })
			if err != nil {
				return n, err
			}
			if int64(len(data)) != size { // cannot happen (compress checks): never serve wrong bytes
				return n, fmt.Errorf("wimsynth: %s: chunk %d: %d bytes in the cache, %d in the table", x.what, k, len(data), size)
			}
			copy(part, data[at:])
		}
		n += len(part)
		pos += int64(len(part))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// compress recompresses chunk k; the encoder is deterministic, so the size must be the one
// the table holds. A difference means the source changed under the File.
func (x *xpressRes) compress(k int) ([]byte, error) {
	data, err := x.cache.compressChunk(x.src, int64(k), x.usize(k), x.what)
	if err != nil {
		return nil, err
	}
	if want := x.ends[k] - x.start(k); int64(len(data)) != want {
		return nil, fmt.Errorf("wimsynth: %s: chunk %d compresses to %d bytes now, %d when the WIM was laid out (the source changed)",
			x.what, k, len(data), want)
	}
	return data, nil
}

// maxXPRESSBlob bounds the blobs stored XPRESS-compressed (larger ones, absurd in a boot
// image and possibly a hostile blob table's claim, are stored uncompressed): the sizing pass
// keeps 4 bytes per chunk, 512 KiB for this size.
const maxXPRESSBlob = 4 << 30

// sizeXPRESS compresses every chunk of a blob once (unless the cache remembers their sizes)
// to build its chunk table, keeping what fits in the cache for the first readers. It returns
// nil when the compressed resource would not be smaller than the blob, which is then stored
// uncompressed, as wimlib does.
func sizeXPRESS(ctx context.Context, cache *ChunkCache, src io.ReaderAt, key blobKey, what string) (*xpressRes, error) {
	if key.size <= 0 || key.size > maxXPRESSBlob {
		return nil, nil
	}
	sizes, ok := cache.sizes(key)
	if !ok {
		var err error
		if sizes, err = cache.sizeChunks(ctx, src, key, what); err != nil {
			return nil, err
		}
		cache.remember(key, sizes)
	}
	x := &xpressRes{key: key, src: src, ends: make([]int64, len(sizes)), cache: cache, what: what}
	var end int64
	for k, s := range sizes {
		end += int64(s)
		x.ends[k] = end
	}
	width := 4
	if key.size > 0xFFFFFFFF {
		width = 8
	}
	x.table = make([]byte, width*(len(sizes)-1))
	for k := range len(sizes) - 1 {
		if width == 4 {
			binary.LittleEndian.PutUint32(x.table[4*k:], uint32(x.ends[k]))
		} else {
			binary.LittleEndian.PutUint64(x.table[8*k:], uint64(x.ends[k]))
		}
	}
	if x.Size() >= key.size {
		return nil, nil
	}
	return x, nil
}

// sizeChunks compresses every chunk of a blob, spread over the CPUs, and returns their sizes.
func (c *ChunkCache) sizeChunks(ctx context.Context, src io.ReaderAt, key blobKey, what string) ([]uint32, error) {
	n := (key.size + BootChunkSize - 1) / BootChunkSize
	sizes := make([]uint32, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	work := func() {
		for {
			k := next.Add(1) - 1
			if k >= n {
				return
			}
			usize := int(min(BootChunkSize, key.size-k*BootChunkSize))
			data, err := c.get(chunkKey{key, k}, false, usize, func() ([]byte, error) { return c.compressChunk(src, k, usize, what) })
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				once.Do(func() { firstErr = err })
				next.Store(n) // stop the others
				return
			}
			sizes[k] = uint32(len(data))
		}
	}
	workers := int(min(int64(runtime.GOMAXPROCS(0)), n))
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return sizes, nil
}
