package wim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// maxChunkTableEntries bounds the chunk count of one resource (a 64 TiB resource in 32 KiB
// chunks); larger claims are treated as corrupt rather than allocated.
const maxChunkTableEntries = 1 << 31

// resource is one stored resource: the data of a single blob, or a solid resource holding many.
// It maps offsets in its uncompressed data to chunks and decodes them through the cache.
type resource struct {
	a    *Archive
	part *part
	hdr  ResourceHeader

	// Set at open.
	chunked   bool        // data is split into chunks (compressed or solid); else stored as is
	solid     bool        // solid resource (own header, sizes table, format)
	codec     Compression // chunk format
	chunkSize int64
	size      int64 // uncompressed size

	once    sync.Once
	loadErr error
	offs    []int64 // file offset of each chunk's stored data; len = chunks+1

	// The decoded first bytes of one large chunk whose full decode is under way (see
	// chunkUpTo), guarded by pmu, which also serialises prefix decodes.
	pmu      sync.Mutex
	prefix   chunkPrefix
	prefixes atomic.Int64 // prefix decodes done (tests)
}

// smallChunk: a chunk of at most this many decoded bytes reads its stored bytes before it waits
// for room in the cache (Cache.takeForced), so that a decode whose stored bytes come from
// decoding other WIMs' chunks through the same cache (a WIM that wimsynth builds over its
// sources, in 32 KiB chunks, read back with wim.Open) never holds room while that inner decode
// waits for some. Larger chunks (LZX up to 2 MiB, solid LZMS up to 64 MiB and more) reserve
// room for their stored and decoded bytes at once, then read and decode without waiting.
const smallChunk = 64 << 10

// chunkPrefix is the longest decoded prefix of chunk i so far (final bytes only), and the
// bytes it holds in the cache's account.
type chunkPrefix struct {
	i    int64
	data []byte
	held int64
}

// Prefix decoding: a cold LZMS chunk of at least prefixMinChunk bytes (solid resources:
// 64 MiB by default, about a second of one core) is first decoded only as far as a read
// needs, while its full decode runs in the background, as long as the read ends in the
// chunk's first sixteenth. Prefixes grow at least twofold (from prefixMinLen), so a reader
// streaming from the chunk's start costs at most an eighth of a chunk of extra decoding
// before it waits for the full decode (longer prefixes only compete with it for the CPU).
// This is what makes the first byte of a transcoded solid image quick.
const (
	prefixMinChunk = 4 << 20
	prefixMinLen   = 256 << 10
)

func (r *resource) String() string {
	return fmt.Sprintf("resource at offset %#x (part %d)", r.hdr.Offset, r.part.hdr.Part)
}

// newResource describes a non-solid resource from its header.
func newResource(a *Archive, p *part, h ResourceHeader) (*resource, error) {
	r := &resource{a: a, part: p, hdr: h, size: h.Size}
	if h.Offset > p.size || h.SizeInWIM > p.size-h.Offset {
		return nil, fmt.Errorf("%v: size %d extends past end of file (%d bytes)", r, h.SizeInWIM, p.size)
	}
	if h.Flags&ResFlagCompressed != 0 && p.hdr.Compression != CompressionNone {
		r.chunked = true
		r.codec = p.hdr.Compression
		r.chunkSize = int64(p.hdr.ChunkSize)
		return r, nil
	}
	if h.SizeInWIM != h.Size {
		return nil, fmt.Errorf("%v: uncompressed resource stores %d bytes for %d", r, h.SizeInWIM, h.Size)
	}
	return r, nil
}

// solidHeaderSize is the size of the header at the start of a solid resource.
const solidHeaderSize = 16

// newSolidResource reads a solid resource's own header (size, chunk size, format).
func newSolidResource(a *Archive, p *part, h ResourceHeader) (*resource, error) {
	r := &resource{a: a, part: p, hdr: h, chunked: true, solid: true}
	if h.Offset > p.size || h.SizeInWIM > p.size-h.Offset || h.SizeInWIM < solidHeaderSize {
		return nil, fmt.Errorf("solid %v: size %d does not fit the file (%d bytes)", r, h.SizeInWIM, p.size)
	}
	var b [solidHeaderSize]byte
	if _, err := p.r.ReadAt(b[:], h.Offset); err != nil {
		return nil, fmt.Errorf("solid %v: reading header: %w", r, err)
	}
	r.size = int64(binary.LittleEndian.Uint64(b[0:]) & (1<<63 - 1))
	r.chunkSize = int64(binary.LittleEndian.Uint32(b[8:]))
	r.codec = Compression(binary.LittleEndian.Uint32(b[12:]))
	if err := checkChunkSize(r.codec, r.chunkSize); err != nil {
		return nil, fmt.Errorf("solid %v: %w", r, err)
	}
	if r.chunks() > (h.SizeInWIM-solidHeaderSize)/4 {
		return nil, fmt.Errorf("solid %v: %d chunks of %d bytes cannot fit in %d stored bytes",
			r, r.chunks(), r.chunkSize, h.SizeInWIM)
	}
	return r, nil
}

// chunks returns the number of chunks.
func (r *resource) chunks() int64 {
	if !r.chunked || r.size == 0 {
		return 0
	}
	return (r.size + r.chunkSize - 1) / r.chunkSize
}

// chunkLen returns the uncompressed size of chunk i.
func (r *resource) chunkLen(i int64) int64 {
	return min(r.chunkSize, r.size-i*r.chunkSize)
}

// loadTable reads and checks the chunk table once.
func (r *resource) loadTable() error {
	r.once.Do(func() {
		switch {
		case r.solid:
			r.loadErr = r.loadSolidTable()
		case r.part.hdr.Pipable:
			r.loadErr = r.loadPipableTable()
		default:
			r.loadErr = r.loadChunkTable()
		}
	})
	return r.loadErr
}

// loadChunkTable reads a non-solid chunk table: chunks-1 entries of 4 or 8 bytes at the
// resource start, each the offset of the next chunk from the end of the table.
func (r *resource) loadChunkTable() error {
	n := r.chunks()
	width := int64(4)
	if r.size > 0xFFFFFFFF {
		width = 8
	}
	if n == 0 {
		return fmt.Errorf("%v: compressed resource of size 0", r)
	}
	tableSize := (n - 1) * width
	if n > maxChunkTableEntries || tableSize > r.hdr.SizeInWIM {
		return fmt.Errorf("%v: chunk table for %d chunks does not fit in %d stored bytes", r, n, r.hdr.SizeInWIM)
	}
	table := make([]byte, tableSize)
	if _, err := r.part.r.ReadAt(table, r.hdr.Offset); err != nil {
		return fmt.Errorf("%v: reading chunk table: %w", r, err)
	}
	offs, err := parseChunkTable(table, n, width, r.hdr.SizeInWIM-tableSize)
	if err != nil {
		return fmt.Errorf("%v: %w", r, err)
	}
	base := r.hdr.Offset + tableSize
	for i := range offs {
		offs[i] += base
	}
	r.offs = offs
	return r.checkOffsets()
}

// parseChunkTable turns raw chunk table entries into n+1 chunk start offsets relative to the
// end of the table; dataSize is the stored size of all chunks.
func parseChunkTable(table []byte, n, width, dataSize int64) ([]int64, error) {
	offs := make([]int64, n+1)
	for k := int64(1); k < n; k++ {
		if width == 8 {
			offs[k] = int64(binary.LittleEndian.Uint64(table[(k-1)*8:]) & (1<<63 - 1))
		} else {
			offs[k] = int64(binary.LittleEndian.Uint32(table[(k-1)*4:]))
		}
	}
	offs[n] = dataSize
	return offs, nil
}

// loadSolidTable reads a solid resource's table of compressed chunk sizes.
func (r *resource) loadSolidTable() error {
	n := r.chunks()
	tableSize := n * 4
	table := make([]byte, tableSize)
	if _, err := r.part.r.ReadAt(table, r.hdr.Offset+solidHeaderSize); err != nil {
		return fmt.Errorf("solid %v: reading chunk sizes: %w", r, err)
	}
	r.offs = make([]int64, n+1)
	pos := r.hdr.Offset + solidHeaderSize + tableSize
	for i := int64(0); i < n; i++ {
		r.offs[i] = pos
		pos += int64(binary.LittleEndian.Uint32(table[i*4:]))
	}
	r.offs[n] = pos
	if pos > r.hdr.Offset+r.hdr.SizeInWIM {
		return fmt.Errorf("solid %v: chunk sizes add up to %d, past the stored size %d", r, pos-r.hdr.Offset, r.hdr.SizeInWIM)
	}
	return r.checkOffsets()
}

// checkOffsets rejects chunk tables out of order and chunks stored larger than they decode.
func (r *resource) checkOffsets() error {
	for i := int64(0); i+1 < int64(len(r.offs)); i++ {
		stored := r.offs[i+1] - r.offs[i]
		if stored <= 0 || stored > r.chunkLen(i) {
			return fmt.Errorf("%v: chunk %d stores %d bytes for %d (chunk table corrupt or out of order)",
				r, i, stored, r.chunkLen(i))
		}
	}
	return nil
}

// chunk returns decoded chunk i, from the cache when possible, pinned: read e.data (which
// must not be modified), then r.a.cache.release(e).
func (r *resource) chunk(ctx context.Context, i int64) (*cacheEntry, error) {
	if err := r.loadTable(); err != nil {
		return nil, err
	}
	key := chunkKey{part: r.part.id, offset: r.hdr.Offset, chunk: i}
	return r.a.cache.acquire(ctx, key, func(ctx context.Context) ([]byte, error) {
		// dst becomes the cache entry; the stored bytes' buffer goes back to the cache for
		// the next decode.
		c := r.a.cache
		start, end := r.chunkSpan(i)
		size := r.chunkLen(i)
		if size <= smallChunk {
			src := c.takeForced(int(end - start))
			defer c.putForced(src)
			if err := r.readStored(i, src); err != nil {
				return nil, err
			}
			bufs, err := c.take(ctx, 0, exact(int(size)))
			if err != nil {
				return nil, err
			}
			if err := r.decodeStored(i, bufs[0], src); err != nil {
				c.putBuf(bufs[0])
				return nil, err
			}
			return bufs[0], nil
		}
		bufs, err := c.take(ctx, 0, exact(int(size)), class(int(end-start)))
		if err != nil {
			return nil, err
		}
		dst, src := bufs[0], bufs[1]
		defer c.putBuf(src)
		err = r.readStored(i, src)
		if err == nil {
			err = r.decodeStored(i, dst, src)
		}
		if err != nil {
			c.putBuf(dst)
			return nil, err
		}
		return dst, nil
	})
}

// warm decodes chunk i into the cache (a read ahead), or does nothing.
func (r *resource) warm(ctx context.Context, i int64) {
	if e, err := r.chunk(ctx, i); err == nil {
		r.a.cache.release(e)
	}
}

// readStored reads chunk i's stored bytes into src (len = its stored size).
func (r *resource) readStored(i int64, src []byte) error {
	start, _ := r.chunkSpan(i)
	if _, err := r.part.r.ReadAt(src, start); err != nil {
		return fmt.Errorf("%v: reading chunk %d at %#x: %w", r, i, start, noEOF(err))
	}
	return nil
}

// decodeChunk decodes chunk i into dst (len = chunkLen(i)); buf is optional scratch space for the
// stored bytes. The chunk table must be loaded.
func (r *resource) decodeChunk(i int64, dst, buf []byte) error {
	start, end := r.chunkSpan(i)
	stored := end - start
	if int64(cap(buf)) < stored {
		buf = make([]byte, stored)
	}
	src := buf[:stored]
	if _, err := r.part.r.ReadAt(src, start); err != nil {
		return fmt.Errorf("%v: reading chunk %d at %#x: %w", r, i, start, noEOF(err))
	}
	return r.decodeStored(i, dst, src)
}

// chunkSpan returns the file offsets of chunk i's stored bytes.
func (r *resource) chunkSpan(i int64) (start, end int64) {
	start, end = r.offs[i], r.offs[i+1]
	if r.part.hdr.Pipable {
		// Each stored chunk is preceded by its own size header; the table does not count them.
		shift := pipableChunkHeaderSize * (i + 1)
		start, end = start+shift, end+shift
	}
	return start, end
}

// decodeStored decodes chunk i from its stored bytes src into dst (len = chunkLen(i)).
func (r *resource) decodeStored(i int64, dst, src []byte) error {
	if len(src) == len(dst) {
		copy(dst, src) // stored raw: compressing did not help
		return nil
	}
	if r.codec == CompressionNone {
		return fmt.Errorf("%v: chunk %d of an uncompressed resource stores %d bytes for %d", r, i, len(src), len(dst))
	}
	if err := r.a.decoders.decompress(r.codec, int(r.chunkSize), dst, src); err != nil {
		start, _ := r.chunkSpan(i)
		return fmt.Errorf("%v: %v chunk %d at %#x: %w", r, r.codec, i, start, err)
	}
	return nil
}

// noEOF reports a short read inside the file's declared data as unexpected.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readAt reads uncompressed bytes [off, off+len(p)) of the resource, decoding only the chunks
// that cover them. pin, when not nil, keeps the last chunk used so sequential readers need no
// cache lookup (and still work when a chunk is larger than the cache).
func (r *resource) readAt(p []byte, off int64, pin *chunkPin) (int, error) {
	if off < 0 {
		return 0, errors.New("wim: negative offset")
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > r.size-off {
		p = p[:r.size-off]
	}
	if !r.chunked {
		n, err := r.part.r.ReadAt(p, r.rawDataOffset()+off)
		if err != nil && n < len(p) {
			return n, fmt.Errorf("%v: %w", r, noEOF(err))
		}
	} else if first, last := off/r.chunkSize, (off+int64(len(p))-1)/r.chunkSize; pin == nil && last > first {
		if n, err := r.readChunks(p, off, first, last); err != nil {
			return n, err
		}
	} else {
		done := 0
		for done < len(p) {
			pos := off + int64(done)
			i := pos / r.chunkSize
			at := pos - i*r.chunkSize
			data, unpin, err := r.chunkPinned(i, min(at+int64(len(p)-done), r.chunkLen(i)), pin)
			if err != nil {
				return done, err
			}
			if at >= int64(len(data)) {
				unpin()
				return done, fmt.Errorf("%v: chunk %d decoded to %d bytes, short of offset %d", r, i, len(data), at)
			}
			done += copy(p[done:], data[at:])
			unpin()
		}
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readChunks fills p (uncompressed bytes from off, covering chunks first..last) by fetching the
// chunks on up to GOMAXPROCS goroutines, each copying its chunks straight into p: a cold
// 64 KiB ReadAt over two 32 KiB LZX chunks then costs one decode's time, not two. On error it
// returns the bytes before the lowest failed chunk.
func (r *resource) readChunks(p []byte, off, first, last int64) (int, error) {
	var next atomic.Int64
	next.Store(first)
	var mu sync.Mutex
	failed, failure := last+1, error(nil)
	work := func() {
		for {
			i := next.Add(1) - 1
			if i > last {
				return
			}
			err := r.copyChunk(p, off, i)
			if err != nil {
				mu.Lock()
				if i < failed {
					failed, failure = i, err
				}
				mu.Unlock()
				return
			}
		}
	}
	var wg sync.WaitGroup
	for range min(int64(runtime.GOMAXPROCS(0)), last-first+1) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	if failure != nil {
		return int(max(0, failed*r.chunkSize-off)), failure
	}
	return len(p), nil
}

// copyChunk copies the part of chunk i that falls in p (which holds bytes from off).
func (r *resource) copyChunk(p []byte, off, i int64) error {
	e, err := r.chunk(context.Background(), i)
	if err != nil {
		return err
	}
	defer r.a.cache.release(e)
	data := e.data
	lo, hi := max(off, i*r.chunkSize), min(off+int64(len(p)), (i+1)*r.chunkSize)
	if hi-i*r.chunkSize > int64(len(data)) {
		return fmt.Errorf("%v: chunk %d decoded to %d bytes, short of offset %d", r, i, len(data), hi-i*r.chunkSize)
	}
	copy(p[lo-off:hi-off], data[lo-i*r.chunkSize:])
	return nil
}

// chunkPin remembers a sequential reader's last chunk. It holds no memory between reads: the
// chunk stays in the cache like any other (repin finds it again without a lookup while it is
// there). When the reader moves on to a new chunk, the next one (up to end, the end of the
// reader's blob in the resource) is decoded in the background if the cache has room for it
// right away, so streaming a file keeps two cores busy.
type chunkPin struct {
	r   *resource
	i   int64
	e   *cacheEntry
	end int64
}

// chunkPinned returns chunk i, or at least its first need bytes (see chunkUpTo), and the
// function to call once the bytes are copied.
func (r *resource) chunkPinned(i, need int64, pin *chunkPin) ([]byte, func(), error) {
	c := r.a.cache
	if pin != nil && pin.r == r && pin.i == i && pin.e != nil && c.repin(pin.e) {
		e := pin.e
		return e.data, func() { c.release(e) }, nil
	}
	data, e, unpin, err := r.chunkUpTo(i, need)
	if err != nil {
		return nil, nil, err
	}
	if pin != nil {
		next := i + 1
		if e != nil && next*r.chunkSize < pin.end && (pin.r != r || pin.i != i) && c.max.Load() >= 3*r.chunkSize {
			go r.warm(noWait, next) // only with room to spare; errors resurface when the reader gets there
		}
		*pin = chunkPin{r: r, i: i, e: e, end: pin.end}
	}
	return data, unpin, nil
}

// noWait asks the cache only for room that is free (read-ahead).
var noWait = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// rawDataOffset is the file offset of an unchunked resource's data (in pipable WIMs too, the
// resource header points just past the blob header).
func (r *resource) rawDataOffset() int64 { return r.hdr.Offset }

// chunkUpTo returns chunk i, or a prefix of it holding at least its first need bytes: a
// cold large LZMS chunk (see prefixMinChunk) is decoded in the background while the read
// is served from a prefix decode. The slice is shared and must not be modified; unpin is to
// be called once it is copied. e is the cache entry when the whole chunk was returned.
func (r *resource) chunkUpTo(i, need int64) (data []byte, e *cacheEntry, unpin func(), err error) {
	c := r.a.cache
	whole := func(e *cacheEntry) ([]byte, *cacheEntry, func(), error) {
		return e.data, e, func() { c.release(e) }, nil
	}
	size := r.chunkLen(i)
	if err := r.loadTable(); err != nil {
		return nil, nil, nil, err
	}
	start, end := r.chunkSpan(i)
	if r.codec != CompressionLZMS || size < prefixMinChunk || need > size/16 || end-start == size || c.isForgotten(r.part.id) {
		e, err := r.chunk(context.Background(), i)
		if err != nil {
			return nil, nil, nil, err
		}
		return whole(e)
	}
	key := chunkKey{part: r.part.id, offset: r.hdr.Offset, chunk: i}
	if e, ok := c.lookup(key); ok {
		return whole(e)
	}
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if e, ok := c.lookup(key); ok {
		r.dropPrefix()
		return whole(e)
	}
	if r.prefix.data != nil && r.prefix.i == i && int64(len(r.prefix.data)) >= need {
		return r.prefix.data, nil, func() {}, nil
	}
	if r.prefix.data == nil || r.prefix.i != i {
		// The full decode; later reads find it in the cache (errors resurface there). The
		// prefix lives only until it ends, so it never outlasts the decode it stands in for.
		go func() {
			r.warm(context.Background(), i)
			r.pmu.Lock()
			if r.prefix.i == i {
				r.dropPrefix()
			}
			r.pmu.Unlock()
		}()
	}
	n := min(size, max(need+16, prefixMinLen, 2*int64(len(r.prefix.data))))
	if r.prefix.i != i {
		n = min(size, max(need+16, prefixMinLen))
	}
	bufs, err := c.take(context.Background(), n, class(int(end-start)))
	if err != nil {
		return nil, nil, nil, err
	}
	src := bufs[0]
	if err := r.readStored(i, src); err != nil {
		c.putBuf(src)
		c.unreserve(n)
		return nil, nil, nil, err
	}
	dst := make([]byte, n)
	exact, err := r.a.decoders.decompressPrefix(r.codec, int(r.chunkSize), dst, src, int(size))
	c.putBuf(src)
	if err != nil {
		c.unreserve(n)
		return nil, nil, nil, fmt.Errorf("%v: %v chunk %d at %#x: %w", r, r.codec, i, start, err)
	}
	if int64(exact) < need {
		c.unreserve(n)
		e, err := r.chunk(context.Background(), i) // cannot happen (n >= need+16); the full chunk is always right
		if err != nil {
			return nil, nil, nil, err
		}
		return whole(e)
	}
	c.holdForced(n)
	r.dropPrefix()
	r.prefix = chunkPrefix{i: i, data: dst[:exact], held: n}
	r.prefixes.Add(1)
	return r.prefix.data, nil, func() {}, nil
}

// dropPrefix forgets the prefix and gives its bytes back to the cache's account (readers
// still copying from it keep it alive until they are done); r.pmu must be held.
func (r *resource) dropPrefix() {
	if r.prefix.held > 0 {
		r.a.cache.unforce(r.prefix.held)
	}
	r.prefix = chunkPrefix{}
}
