package wim

import "sync"

// bufPool recycles byte buffers by capacity class for one owner that knows when a buffer is no
// longer referenced (verify's pipeline, a decode's scratch space). Reuse matters for large
// chunks: a fresh 64 MiB buffer costs ~16k first-touch page faults (~200 ms, a third of an LZMS
// decode), and with sync.Pool a GC cycle can drop the buffers between two chunks. Buffers
// handed to the shared chunk cache are never put here: readers may still hold them.
type bufPool struct {
	mu    sync.Mutex
	free  map[int][][]byte // by cap
	bytes int64            // total cap of the buffers in free
	max   int64            // beyond this, returned buffers are left to the GC
}

// newBufPool returns a pool that keeps at most maxBytes of idle buffers.
func newBufPool(maxBytes int64) *bufPool {
	return &bufPool{free: map[int][][]byte{}, max: maxBytes}
}

// get returns a buffer of length n, recycled when possible; its capacity is n rounded up to a
// power of two (at least 4 KiB), so buffers of nearby sizes are interchangeable. The contents
// are arbitrary.
func (p *bufPool) get(n int) []byte {
	class := 4 << 10
	for class < n {
		class <<= 1
	}
	p.mu.Lock()
	if l := p.free[class]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[class] = l[:len(l)-1]
		p.bytes -= int64(cap(b))
		p.mu.Unlock()
		return b[:n]
	}
	p.mu.Unlock()
	return makeLarge(n, class)
}

// put returns a buffer that nobody references any more; nil is ignored.
func (p *bufPool) put(b []byte) {
	if cap(b) == 0 || cap(b)&(cap(b)-1) != 0 {
		return // not one of ours
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bytes+int64(cap(b)) > p.max {
		return
	}
	p.free[cap(b)] = append(p.free[cap(b)], b[:0])
	p.bytes += int64(cap(b))
}

// scratchPools recycles the buffers that hold a chunk's stored bytes while it is decoded for
// the chunk cache. They are private to one decode, so reuse is always safe; sync.Pool lets
// the GC release them when an archive sits idle (a server may hold many archives open).
type scratchPools struct {
	mu    sync.Mutex
	pools map[int]*sync.Pool // by capacity (a power of two)
}

// get returns a buffer of length n; give it back with put.
func (s *scratchPools) get(n int) []byte {
	class := 4 << 10
	for class < n {
		class <<= 1
	}
	if b, ok := s.pool(class).Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return makeLarge(n, class)
}

// put returns a buffer from get.
func (s *scratchPools) put(b []byte) {
	if cap(b) == 0 || cap(b)&(cap(b)-1) != 0 {
		return
	}
	b = b[:0]
	s.pool(cap(b)).Put(&b)
}

func (s *scratchPools) pool(class int) *sync.Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pools == nil {
		s.pools = map[int]*sync.Pool{}
	}
	p, ok := s.pools[class]
	if !ok {
		p = &sync.Pool{}
		s.pools[class] = p
	}
	return p
}
