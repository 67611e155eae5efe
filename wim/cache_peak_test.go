package wim

import (
	"sync"
	"testing"
)

// TestCachePeakBytes: PeakBytes is the high-water mark of the bytes held, never above the
// bound, even with many goroutines adding chunks at once.
func TestCachePeakBytes(t *testing.T) {
	const bound = 10 << 10
	c := NewCache(bound)
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := range 50 {
				key := chunkKey{part: uint64(g), chunk: int64(i)}
				if _, err := c.get(key, func() ([]byte, error) { return make([]byte, 1<<10), nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := c.Stats()
	if st.PeakBytes != bound || st.Bytes > st.PeakBytes {
		t.Fatalf("peak %d, held %d; want a peak of exactly the bound %d", st.PeakBytes, st.Bytes, bound)
	}
	c.SetMaxBytes(2 << 10)
	if st := c.Stats(); st.Bytes != 2<<10 || st.PeakBytes != bound {
		t.Fatalf("after shrinking: held %d, peak %d", st.Bytes, st.PeakBytes)
	}
}
