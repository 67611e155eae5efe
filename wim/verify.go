package wim

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sort"
	"sync"
)

// Verify checks the whole WIM like wimlib-imagex verify: every image's metadata parses and
// refers only to blobs present in the WIM, every blob decodes and matches its SHA-1, and the
// integrity table (if any) matches the file. Chunks are decoded on all cores. progress, if not
// nil, is called (from one goroutine at a time) with bytes verified so far and the total.
func (a *Archive) Verify(ctx context.Context, progress func(done, total int64)) error {
	// The integrity check runs to the end even when a blob fails, so both problems are reported.
	integrity := make(chan error, 1)
	go func(ctx context.Context) { integrity <- a.checkIntegrity(ctx) }(ctx)
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.verifyImages(); err != nil {
		return errors.Join(err, <-integrity)
	}
	v := &verifier{a: a, ctx: ctx, progress: progress, sem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		mem: newByteBudget(verifyMemMax)}
	jobs := a.verifyJobs(&v.total)

	work := make(chan resourceJob)
	errs := make(chan error, cap(v.sem))
	var wg sync.WaitGroup
	for range cap(v.sem) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if err := v.resource(j); err != nil {
					if ctx.Err() != nil {
						// Stopped by another worker's failure (or the caller): that error, not
						// this one's "context canceled" or half-read resource, is the report.
						return
					}
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case work <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) == 0 {
		if err := parent.Err(); err != nil {
			all = append(all, err)
		}
	}
	if err := <-integrity; err != nil {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// verifyImages parses every image and checks that the streams it names are present.
func (a *Archive) verifyImages() error {
	for i := 1; i <= len(a.metadata); i++ {
		img, err := a.Image(i)
		if err != nil {
			return err
		}
		var missing error
		img.Walk(func(_ string, e *Entry) error {
			for _, h := range e.hashes() {
				if _, ok := a.blobs[h]; !ok {
					missing = a.missingBlob(i, e, h)
					return missing
				}
			}
			return nil
		})
		if missing != nil {
			return missing
		}
	}
	return nil
}

// hashes lists the nonzero stream hashes of an entry.
func (e *Entry) hashes() [][sha1.Size]byte {
	var out [][sha1.Size]byte
	for _, h := range [][sha1.Size]byte{e.Hash, e.ReparseHash} {
		if h != ([sha1.Size]byte{}) {
			out = append(out, h)
		}
	}
	for _, s := range e.Streams {
		if s.Hash != ([sha1.Size]byte{}) {
			out = append(out, s.Hash)
		}
	}
	return out
}

// resourceJob is one resource and the blobs stored in it, by offset.
type resourceJob struct {
	r     *resource
	blobs []*blob
}

// verifyJobs groups all blobs (metadata included) by resource, in file order.
func (a *Archive) verifyJobs(total *int64) []resourceJob {
	byRes := map[*resource][]*blob{}
	var order []*resource
	add := func(b *blob) {
		if _, ok := byRes[b.res]; !ok {
			order = append(order, b.res)
		}
		byRes[b.res] = append(byRes[b.res], b)
		*total += b.size
	}
	for _, b := range a.metadata {
		add(b)
	}
	for _, b := range a.blobOrder {
		add(b)
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].part.hdr.Part != order[j].part.hdr.Part {
			return order[i].part.hdr.Part < order[j].part.hdr.Part
		}
		return order[i].hdr.Offset < order[j].hdr.Offset
	})
	jobs := make([]resourceJob, len(order))
	for i, r := range order {
		bs := byRes[r]
		sort.SliceStable(bs, func(i, j int) bool { return bs[i].off < bs[j].off })
		jobs[i] = resourceJob{r, bs}
	}
	return jobs
}

type verifier struct {
	a        *Archive
	ctx      context.Context
	sem      chan struct{} // bounds concurrent chunk decodes to the number of cores
	progress func(done, total int64)
	mu       sync.Mutex
	done     int64
	total    int64
	mem      *byteBudget // bytes of pieces decoded or being decoded, not yet hashed
}

// verifyMemMax bounds the memory of the pieces in flight (decoded bytes plus their stored
// bytes, from the start of a decode until the piece is hashed). Pieces of 32 KiB to 2 MiB
// still keep every core busy; a 64 MiB solid chunk (with its ~20-30 MiB of stored bytes)
// is decoded alone, which holds `wim verify` of a solid WIM near wimlib's peak memory (one
// chunk and its input) instead of one chunk per core plus the queue. The same bytes (and the
// stored bytes of a small resource read at once) also count against the archive's Cache,
// whose buffers verify uses and gives back: a verification leaves readers of the same cache
// room within its one bound, and its buffers are reused from one WIM to the next.
const verifyMemMax = 96 << 20

// byteBudget is a counting semaphore in bytes. A request larger than the whole budget
// waits until nothing else is held, then runs alone.
type byteBudget struct {
	mu   sync.Mutex
	cond sync.Cond
	max  int64
	used int64
}

func newByteBudget(max int64) *byteBudget {
	b := &byteBudget{max: max}
	b.cond.L = &b.mu
	return b
}

// acquire waits for n bytes (clamped to the budget) or ctx's end; it returns the amount to
// release, 0 when ctx ended first.
func (b *byteBudget) acquire(ctx context.Context, n int64) int64 {
	n = max(1, min(n, b.max))
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used+n > b.max {
		if ctx.Err() != nil {
			return 0
		}
		b.cond.Wait()
	}
	b.used += n
	return n
}

func (b *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.cond.Broadcast()
	b.mu.Unlock()
}

// take gets piece i's memory: verify's own budget, then the buffers for its decoded bytes
// and (when read on its own) its stored bytes from the archive's cache, which counts them
// against its bound and recycles them. Pieces take memory in order: a piece gives it back
// once hashed, which needs no room, so a later piece waiting for room never starves an
// earlier one.
func (v *verifier) take(ctx context.Context, r *resource, i, span int64, stored []byte) (piece, error) {
	held := v.mem.acquire(ctx, pieceCost(r, i, span, stored))
	if held == 0 {
		return piece{}, ctx.Err()
	}
	reqs := []bufReq{class(int(min(span, r.size-i*span)))}
	if r.chunked && stored == nil {
		start, end := r.chunkSpan(i)
		reqs = append(reqs, class(int(end-start)))
	}
	bufs, err := r.a.cache.take(ctx, 0, reqs...)
	if err != nil {
		v.mem.release(held)
		return piece{}, err
	}
	return piece{bufs: bufs, held: held}, nil
}

// give returns what take got.
func (v *verifier) give(p piece) {
	for _, b := range p.bufs {
		v.a.cache.putBuf(b)
	}
	if p.held > 0 {
		v.mem.release(p.held)
	}
}

// pieceCost is what a piece holds while in flight: its decoded bytes and, when it is read
// from the file on its own, its stored bytes.
func pieceCost(r *resource, i, span int64, stored []byte) int64 {
	n := min(span, r.size-i*span)
	if r.chunked && stored == nil {
		start, end := r.chunkSpan(i)
		n += end - start
	}
	return n
}

func (v *verifier) report(n int64) {
	if v.progress == nil {
		return
	}
	v.mu.Lock()
	v.done += n
	v.progress(v.done, v.total)
	v.mu.Unlock()
}

// piece is one decoded span of a resource, in order: bufs[0] holds its bytes (bufs[1], if
// any, was for its stored bytes).
type piece struct {
	bufs [][]byte
	err  error
	held int64 // bytes of verify's own budget it holds
}

func (p piece) data() []byte {
	if len(p.bufs) == 0 {
		return nil
	}
	return p.bufs[0]
}

// preloadMax bounds the stored bytes of a resource that verify reads with one ReadAt.
const preloadMax = 8 << 20

// resource verifies every blob of one resource: pieces (chunks, or 4 MiB spans of stored
// data) are hashed in order. Small resources are decoded inline (the other workers keep the
// cores busy); large ones by up to `window` concurrent decoders.
func (v *verifier) resource(j resourceJob) error {
	r := j.r
	var n, span int64
	var stored []byte // whole stored resource, when small enough to read at once
	if r.chunked {
		if err := r.loadTable(); err != nil {
			return err
		}
		n, span = r.chunks(), r.chunkSize
		if first, last := r.offs[0], r.offs[n]; n > 0 && last-first <= preloadMax && !r.part.hdr.Pipable {
			// Counted in the cache, without waiting: this worker goes on to wait for room
			// for its pieces while it holds them.
			stored = r.a.cache.takeForced(int(last - first))
			defer r.a.cache.putForced(stored)
			if _, err := r.part.r.ReadAt(stored, first); err != nil {
				return fmt.Errorf("%v: reading %d stored bytes: %w", r, len(stored), noEOF(err))
			}
		}
	} else {
		span = 4 << 20
		n = (r.size + span - 1) / span
	}
	h := newBlobHasher(j.blobs)
	// Inline when pipelining cannot pay: one piece, or little data (a solid resource of two
	// 64 MiB chunks still wants both cores).
	if n <= 1 || n*span <= 1<<20 {
		if err := v.inline(r, n, span, stored, h); err != nil {
			return err
		}
		return h.finish()
	}
	return v.pipelined(r, n, span, stored, h)
}

// inline decodes and hashes a resource's pieces one after another.
func (v *verifier) inline(r *resource, n, span int64, stored []byte, h *blobHasher) error {
	var pos int64
	for i := int64(0); i < n; i++ {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		p, err := v.take(v.ctx, r, i, span, stored)
		if err != nil {
			return err
		}
		if p.err = v.produce(r, i, span, stored, p.bufs); p.err == nil {
			p.err = h.write(pos, p.data())
			pos += int64(len(p.data()))
			v.report(int64(len(p.data())))
		}
		v.give(p)
		if err := p.err; err != nil {
			return err
		}
	}
	return nil
}

// pipelined decodes pieces on up to GOMAXPROCS goroutines and hashes them in order.
func (v *verifier) pipelined(r *resource, n, span int64, stored []byte, h *blobHasher) error {
	window := int64(cap(v.sem))
	window = max(1, min(window, (256<<20)/span/int64(cap(v.sem)), n))
	queue := make(chan chan piece, window)
	ctx, cancel := context.WithCancel(v.ctx)
	defer cancel()
	go func() {
		defer close(queue)
		for i := int64(0); i < n; i++ {
			ch := make(chan piece, 1)
			select {
			case queue <- ch:
			case <-ctx.Done():
				return
			}
			// Memory is taken in piece order, here, so that a later piece never holds the
			// budget an earlier one (which the hasher waits for) needs.
			p, err := v.take(ctx, r, i, span, stored)
			if err != nil {
				ch <- piece{err: err}
				return
			}
			go func(i int64) {
				select {
				case v.sem <- struct{}{}:
				case <-ctx.Done():
					p.err = ctx.Err()
					ch <- p
					return
				}
				p.err = v.produce(r, i, span, stored, p.bufs)
				<-v.sem
				ch <- p
			}(i)
		}
	}()
	var pos int64
	var err error
	for ch := range queue {
		p := <-ch
		if err == nil && p.err != nil {
			err = p.err
			cancel()
		}
		if err == nil {
			err = h.write(pos, p.data())
			pos += int64(len(p.data()))
			v.report(int64(len(p.data())))
		}
		v.give(p)
	}
	if err == nil {
		err = h.finish()
	}
	return err
}

// produce decodes (or reads) piece i of a resource into bufs[0]; stored, when not nil, holds
// the resource's stored chunks (from r.offs[0]), else bufs[1] is for the piece's stored bytes.
func (v *verifier) produce(r *resource, i, span int64, stored []byte, bufs [][]byte) error {
	buf := bufs[0]
	switch {
	case !r.chunked:
		if _, err := r.part.r.ReadAt(buf, r.rawDataOffset()+i*span); err != nil {
			return fmt.Errorf("%v: %w", r, noEOF(err))
		}
		return nil
	case stored != nil:
		start, end := r.chunkSpan(i)
		base := r.offs[0]
		return r.decodeStored(i, buf, stored[start-base:end-base])
	default:
		return r.decodeChunk(i, buf, bufs[1])
	}
}

// blobHasher feeds a resource's data, in order, to the SHA-1 of each blob it holds.
type blobHasher struct {
	blobs  []*blob // by offset
	next   int
	active []activeBlob
}

type activeBlob struct {
	b *blob
	h hash.Hash
}

func newBlobHasher(blobs []*blob) *blobHasher { return &blobHasher{blobs: blobs} }

// write hashes data found at resource offset pos.
func (bh *blobHasher) write(pos int64, data []byte) error {
	end := pos + int64(len(data))
	for bh.next < len(bh.blobs) && bh.blobs[bh.next].off < end {
		bh.active = append(bh.active, activeBlob{bh.blobs[bh.next], sha1.New()})
		bh.next++
	}
	kept := bh.active[:0]
	for _, ab := range bh.active {
		lo, hi := max(ab.b.off, pos), min(ab.b.off+ab.b.size, end)
		if lo < hi {
			ab.h.Write(data[lo-pos : hi-pos])
		}
		if ab.b.off+ab.b.size > end {
			kept = append(kept, ab)
			continue
		}
		if err := checkSum(ab); err != nil {
			return err
		}
	}
	bh.active = kept
	return nil
}

func checkSum(ab activeBlob) error {
	var sum [sha1.Size]byte
	ab.h.Sum(sum[:0])
	if sum != ab.b.hash {
		return fmt.Errorf("wim: %v: %w (data hashes to %x)", ab.b, ErrChecksum, sum)
	}
	return nil
}

// finish reports blobs whose data never arrived.
func (bh *blobHasher) finish() error {
	if len(bh.active) > 0 || bh.next < len(bh.blobs) {
		return fmt.Errorf("wim: resource ended before its blobs' data (%d blobs incomplete)",
			len(bh.active)+len(bh.blobs)-bh.next)
	}
	return nil
}
