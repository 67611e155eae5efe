package wim

import "context"

// get is acquire for tests: decode returns the chunk's bytes (any slice), which are copied
// into a buffer the cache accounts for; the returned slice is a copy (nothing stays pinned).
func (c *Cache) get(key chunkKey, decode func() ([]byte, error)) ([]byte, error) {
	e, err := c.acquire(context.Background(), key, func(ctx context.Context) ([]byte, error) {
		d, err := decode()
		if err != nil {
			return nil, err
		}
		bufs, err := c.take(ctx, 0, exact(len(d)))
		if err != nil {
			return nil, err
		}
		copy(bufs[0], d)
		return bufs[0], nil
	})
	if err != nil {
		return nil, err
	}
	defer c.release(e)
	return append([]byte(nil), e.data...), nil
}

// idleBuffers returns the bytes of the idle buffers kept for reuse (CacheStats.InFlight counts
// them with the decodes in flight).
func (c *Cache) idleBuffers() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.freeBytes
}
