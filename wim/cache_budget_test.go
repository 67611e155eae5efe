package wim

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// fill returns a decode for acquire that makes a chunk of n bytes of b through the cache's
// accounting, as resource.chunk does.
func fill(c *Cache, n int, b byte) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		bufs, err := c.take(ctx, 0, exact(n))
		if err != nil {
			return nil, err
		}
		for i := range bufs[0] {
			bufs[0][i] = b
		}
		return bufs[0], nil
	}
}

// waitFor polls cond (an event another goroutine causes) for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCacheBudgetPinnedWait: a pinned chunk counts against the bound, so a decode that does not
// fit waits for it to be released (no overdraft: a pin is given back without waiting for
// room), then goes ahead; the bound is never passed.
func TestCacheBudgetPinnedWait(t *testing.T) {
	c := NewCache(100)
	a, err := c.acquire(context.Background(), chunkKey{1, 0, 1}, fill(c, 60, 'a'))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		b, err := c.acquire(context.Background(), chunkKey{1, 0, 2}, fill(c, 60, 'b'))
		if err == nil {
			if !bytes.Equal(b.data, bytes.Repeat([]byte("b"), 60)) {
				err = fmt.Errorf("chunk 2 holds %q", b.data)
			}
			c.release(b)
		}
		got <- err
	}()
	waitFor(t, "the second decode to wait for room", func() bool { return c.Stats().Waits == 1 })
	if st := c.Stats(); st.Pinned != 60 || st.UsedBytes != 60 || st.Entries != 1 {
		t.Fatalf("while chunk 1 is pinned: %+v", st)
	}
	c.release(a) // chunk 1 becomes idle and is evicted for chunk 2
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.PeakBytes > 100 || st.Overdrafts != 0 || st.Evictions != 1 || st.Pinned != 0 || st.UsedBytes != 60 {
		t.Fatalf("after: %+v", st)
	}
}

// TestCacheBudgetCancel: a decode waiting for room, and a caller waiting for another caller's
// decode, both return when their context ends, leaving the account as it was; the cache
// works on afterwards.
func TestCacheBudgetCancel(t *testing.T) {
	c := NewCache(100)
	a, err := c.acquire(context.Background(), chunkKey{1, 0, 1}, fill(c, 60, 'a'))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() {
		_, err := c.acquire(ctx, chunkKey{1, 0, 2}, fill(c, 60, 'b'))
		waiting <- err
	}()
	waitFor(t, "the decode to wait for room", func() bool { return c.Stats().Waits == 1 })

	// A second caller of chunk 2 waits for that decode, with its own context.
	ctx2, cancel2 := context.WithCancel(context.Background())
	joined := make(chan error, 1)
	go func() {
		_, err := c.acquire(ctx2, chunkKey{1, 0, 2}, func(context.Context) ([]byte, error) {
			return nil, errors.New("decoded twice")
		})
		joined <- err
	}()
	waitFor(t, "the second caller to join the decode", func() bool { return c.Stats().Hits == 1 })
	cancel2()
	if err := <-joined; !errors.Is(err, context.Canceled) {
		t.Fatalf("joined caller: %v, want context.Canceled", err)
	}
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting decode: %v, want context.Canceled", err)
	}
	if st := c.Stats(); st.UsedBytes != 60 || st.Pinned != 60 || st.Entries != 1 || st.InFlight != 0 {
		t.Fatalf("after the cancellations: %+v", st)
	}
	c.mu.Lock()
	waiters, inflight := c.waiting, len(c.inflight)
	c.mu.Unlock()
	if waiters != 0 || inflight != 0 {
		t.Fatalf("%d waiters and %d decodes left behind", waiters, inflight)
	}
	c.release(a)
	b, err := c.acquire(context.Background(), chunkKey{1, 0, 2}, fill(c, 60, 'b'))
	if err != nil {
		t.Fatal(err)
	}
	c.release(b)
	if st := c.Stats(); st.UsedBytes != 60 || st.PeakBytes > 100 {
		t.Fatalf("after: %+v", st)
	}
}

// TestCacheBudgetSmallerThanChunk: with every chunk larger than the whole bound and many
// readers holding chunks pinned, everyone still gets through: one decode at a time goes past
// the bound, and never more than that one chunk is held.
func TestCacheBudgetSmallerThanChunk(t *testing.T) {
	const bound, chunk = 1000, 1500
	c := NewCache(bound)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				k := int64((g*7 + i) % 10)
				e, err := c.acquire(context.Background(), chunkKey{1, 0, k}, fill(c, chunk, byte(k)))
				if err != nil {
					t.Error(err)
					return
				}
				if len(e.data) != chunk || e.data[0] != byte(k) || e.data[chunk-1] != byte(k) {
					t.Errorf("chunk %d holds the wrong bytes", k)
				}
				runtime.Gosched() // hold the pin a little
				c.release(e)
			}
		})
	}
	wg.Wait()
	st := c.Stats()
	if st.Overdrafts == 0 || st.PeakBytes != chunk || st.Pinned != 0 || st.UsedBytes > chunk {
		t.Fatalf("%+v; want overdrafts, a peak of one chunk (%d bytes), nothing pinned", st, chunk)
	}
}

// TestCacheBudgetNestedWIM reads a WIM stored inside a solid LZMS WIM, opened over the outer
// archive's file with the same cache, on many goroutines at once, with a bound smaller than one
// solid chunk: each decode of an inner chunk reads stored bytes that decode outer chunks
// through the same cache (as a synthesised WIM over its source does). Sequential readers
// stream the outer WIM's files at the same time. Everything must arrive intact (no deadlock),
// within the bound plus one solid chunk and its stored bytes plus the small chunks' stored
// bytes being read.
func TestCacheBudgetNestedWIM(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(12, 12))
	text := func(n int) []byte {
		b := make([]byte, 0, n)
		for len(b) < n {
			b = fmt.Appendf(b, "line %d of nested test data %x\n", rng.IntN(1000), rng.Uint64()%4096)
		}
		return b[:n]
	}
	want := map[string][sha1.Size]byte{} // inner files
	inner := filepath.Join(dir, "inner")
	for i := range 6 {
		b := text(200<<10 + i*7000)
		os.MkdirAll(filepath.Join(inner, "d"), 0o755)
		os.WriteFile(filepath.Join(inner, "d", fmt.Sprintf("f%d.txt", i)), b, 0o644)
		want[fmt.Sprintf("d/f%d.txt", i)] = sha1.Sum(b)
	}
	outer := filepath.Join(dir, "outer")
	os.MkdirAll(outer, 0o755)
	wimtest.Wimlib(t, "capture", inner, filepath.Join(outer, "inner.wim"), "inner", "--compress=xpress")
	outerWant := map[string][sha1.Size]byte{}
	for i := range 3 {
		b := text(300<<10 + i*1000)
		os.WriteFile(filepath.Join(outer, fmt.Sprintf("o%d.txt", i)), b, 0o644)
		outerWant[fmt.Sprintf("o%d.txt", i)] = sha1.Sum(b)
	}
	const solidChunk = 256 << 10
	ow := filepath.Join(dir, "outer.wim")
	wimtest.Wimlib(t, "capture", outer, ow, "outer", "--solid", fmt.Sprintf("--solid-chunk-size=%d", solidChunk))

	const bound = 128 << 10 // half a solid chunk
	c := NewCache(bound)
	oa, err := OpenFile(ow, &OpenFileOptions{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Close()
	oimg, err := oa.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := oimg.Open("inner.wim")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wf := f.(*File)
	ia, err := Open(wf, wf.Size(), &Options{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	iimg, err := ia.Image(1)
	if err != nil {
		t.Fatal(err)
	}

	readAll := func(fsys fs.FS, name string, sum [sha1.Size]byte, at bool) error {
		f, err := fsys.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		var got []byte
		if at { // random-access reads of 40 KiB (several chunks at once: readChunks)
			wf := f.(*File)
			got = make([]byte, wf.Size())
			for off := int64(0); off < wf.Size(); off += 40 << 10 {
				end := min(off+40<<10, wf.Size())
				if _, err := wf.ReadAt(got[off:end], off); err != nil && err != io.EOF {
					return fmt.Errorf("%s at %d: %w", name, off, err)
				}
			}
		} else if got, err = io.ReadAll(f); err != nil { // sequential (pinned) reads
			return fmt.Errorf("%s: %w", name, err)
		}
		if sha1.Sum(got) != sum {
			return fmt.Errorf("%s: wrong bytes", name)
		}
		return nil
	}
	const readers = 12
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range readers {
		wg.Go(func() {
			for round := range 2 {
				for name, sum := range want {
					if err := readAll(iimg, name, sum, (g+round)%2 == 0); err != nil {
						t.Error(err)
						return
					}
				}
				for name, sum := range outerWant {
					if err := readAll(oimg, name, sum, false); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute): // a deadlock, not slowness: the reads take seconds
		buf := make([]byte, 1<<20)
		t.Fatalf("readers stuck:\n%s", buf[:runtime.Stack(buf, true)])
	}
	st := c.Stats()
	limit := int64(bound + 2*solidChunk + readers*runtime.GOMAXPROCS(0)*64<<10)
	if st.PeakBytes > limit || st.Pinned != 0 || st.Overdrafts == 0 {
		t.Fatalf("%+v; want a peak within %d, nothing pinned, overdrafts", st, limit)
	}
	t.Logf("bound %d, peak %d, %d waits, %d overdrafts, %d misses", bound, st.PeakBytes, st.Waits, st.Overdrafts, st.Misses)
}

// TestCacheBudgetVerify: Verify's pieces in flight and the stored bytes it reads ahead count
// against the archive's cache, so a verification while readers stream the WIM stays within the
// one bound (plus one solid chunk and its stored bytes) and finishes even when that bound is
// smaller than one solid chunk; everything is given back when it returns.
func TestCacheBudgetVerify(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 4 {
		b := make([]byte, 0, 400<<10)
		for len(b) < 400<<10 {
			b = fmt.Appendf(b, "verify %d %x\n", i, rng.Uint64()%65536)
		}
		b = b[:400<<10]
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d.txt", i)), b, 0o644)
	}
	const solidChunk = 256 << 10
	w := filepath.Join(dir, "s.wim")
	wimtest.Wimlib(t, "capture", src, w, "s", "--solid", fmt.Sprintf("--solid-chunk-size=%d", solidChunk))
	const bound = 128 << 10
	c := NewCache(bound)
	a, err := OpenFile(w, &OpenFileOptions{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, err := a.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			b, err := fs.ReadFile(img, fmt.Sprintf("f%d.txt", g))
			if err != nil || len(b) != 400<<10 {
				t.Errorf("reading f%d.txt: %d bytes, %v", g, len(b), err)
			}
		})
	}
	if err := a.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	st := c.Stats()
	if st.Pinned != 0 || st.InFlight-c.idleBuffers() != 0 {
		t.Fatalf("after Verify: %+v; want nothing pinned or in flight", st)
	}
	if limit := int64(bound + 2*solidChunk + 1<<20); st.PeakBytes > limit || st.PeakBytes == 0 {
		t.Fatalf("peak %d, want within %d", st.PeakBytes, limit)
	}
	t.Logf("bound %d, peak %d, %d waits, %d overdrafts", bound, st.PeakBytes, st.Waits, st.Overdrafts)
}

func TestSizeClass(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{1, 4 << 10}, {4 << 10, 4 << 10}, {5000, 8 << 10}, {64 << 10, 64 << 10}, {65<<10 + 1, 72 << 10},
		{12_000_000, 12 << 20}, {16 << 20, 16 << 20},
	} {
		if got := sizeClass(tc.n); got != tc.want || got < tc.n || got > tc.n+tc.n/8+4096 {
			t.Errorf("sizeClass(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// TestCacheBufferReuse: buffers given back stay as idle buffers (counted) while the bound has
// room, and serve the next request of a size they fit (up to an eighth larger), as do the
// buffers of evicted chunks; a request that needs the room drops them.
func TestCacheBufferReuse(t *testing.T) {
	c := NewCache(1 << 20)
	ctx := context.Background()
	bufs, err := c.take(ctx, 0, class(100_000), exact(300_000))
	if err != nil {
		t.Fatal(err)
	}
	a, b := bufs[0], bufs[1]
	if len(a) != 100_000 || cap(a) != sizeClass(100_000) || len(b) != 300_000 || cap(b) != 300_000 {
		t.Fatalf("take: len/cap %d/%d and %d/%d", len(a), cap(a), len(b), cap(b))
	}
	c.putBuf(a)
	c.putBuf(b)
	if st := c.Stats(); st.UsedBytes != int64(cap(a)+cap(b)) || c.idleBuffers() != st.UsedBytes {
		t.Fatalf("after putBuf: %+v", st)
	}
	again, err := c.take(ctx, 0, exact(290_000)) // b fits (3% larger)
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(again[0]) != unsafe.SliceData(b) || len(again[0]) != 290_000 {
		t.Errorf("take(290000) after putBuf: a fresh buffer, want the idle one")
	}
	c.putBuf(again[0])
	// A chunk evicted for room lends its buffer to the decode that wanted the room.
	e, err := c.acquire(ctx, chunkKey{1, 0, 1}, fill(c, 600_000, 'x'))
	if err != nil {
		t.Fatal(err)
	}
	old := unsafe.SliceData(e.data)
	c.release(e)
	next, err := c.take(ctx, 0, exact(600_000), exact(400_000)) // needs room: chunk 1 goes
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(next[0]) != old {
		t.Errorf("the evicted chunk's buffer was not reused")
	}
	if st := c.Stats(); st.Entries != 0 || st.UsedBytes > 1<<20 || st.Evictions != 1 {
		t.Errorf("after: %+v", st)
	}
	c.putBuf(next[0])
	c.putBuf(next[1])
}

// TestCacheLargerIdleBufferReused: a request that would not fit beside an idle buffer too
// large for its size class (the last, shorter chunk of a solid resource after a 64 MiB one)
// takes that buffer instead of dropping it for a new one: nothing is left for the collector,
// so a process's peak holds one such buffer, not two.
func TestCacheLargerIdleBufferReused(t *testing.T) {
	c := NewCache(1 << 20)
	ctx := context.Background()
	bufs, err := c.take(ctx, 0, exact(900_000))
	if err != nil {
		t.Fatal(err)
	}
	big := unsafe.SliceData(bufs[0])
	c.putBuf(bufs[0])
	small, err := c.take(ctx, 0, exact(400_000)) // 400_000 + the idle 900_000 > 1 MiB
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(small[0]) != big || len(small[0]) != 400_000 {
		t.Errorf("take(400000) beside an idle 900000-byte buffer: a fresh buffer, want the idle one")
	}
	if st := c.Stats(); st.UsedBytes != 900_000 || st.UsedBytes > 1<<20 {
		t.Errorf("after: %+v (the reused buffer counts with its whole capacity)", st)
	}
	c.putBuf(small[0])
	// With room for both, the idle buffer stays for a request of its own size.
	roomy := NewCache(4 << 20)
	bufs, err = roomy.take(ctx, 0, exact(900_000))
	if err != nil {
		t.Fatal(err)
	}
	big = unsafe.SliceData(bufs[0])
	roomy.putBuf(bufs[0])
	small, err = roomy.take(ctx, 0, exact(400_000))
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(small[0]) == big {
		t.Errorf("a roomy cache lent its 900000-byte idle buffer to a 400000-byte request")
	}
	roomy.putBuf(small[0])
}

// failingDecoder fails every chunk after writing garbage into it.
type failingDecoder struct{}

var errBadChunk = errors.New("injected decode failure")

func (failingDecoder) Decompress(dst, src []byte) error {
	for i := range dst {
		dst[i] = 0xEE
	}
	return errBadChunk
}

// TestCacheDecodeFailure: a chunk whose decode fails, small (read before room is reserved)
// or large (room for stored and decoded bytes reserved at once), fails the read with the
// decoder's error, is not cached, and gives all its bytes back.
func TestCacheDecodeFailure(t *testing.T) {
	wimtest.NeedWimlib(t)
	for _, chunk := range []string{"32K", "256K"} {
		t.Run(chunk, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			os.MkdirAll(src, 0o755)
			os.WriteFile(filepath.Join(src, "f.txt"), bytes.Repeat([]byte("decode failure test 0123456789\n"), 40000), 0o644)
			w := filepath.Join(dir, "x.wim")
			wimtest.Wimlib(t, "capture", src, w, "x", "--compress=lzx", "--chunk-size="+chunk)
			b, err := os.ReadFile(w)
			if err != nil {
				t.Fatal(err)
			}
			c := NewCache(8 << 20)
			// The metadata decodes with the real codec; then every decoder fails.
			var fail atomic.Bool
			a, err := Open(bytes.NewReader(b), int64(len(b)), &Options{Cache: c, newDecoder: func(co Compression, n int) (decoder, error) {
				if fail.Load() {
					return failingDecoder{}, nil
				}
				return newCodecDecoder(co, n)
			}})
			if err != nil {
				t.Fatal(err)
			}
			img, err := a.Image(1)
			if err != nil {
				t.Fatal(err)
			}
			f, err := img.Open("f.txt")
			if err != nil {
				t.Fatal(err)
			}
			fail.Store(true)
			a.decoders = decoderPools{newDecoder: a.decoders.newDecoder} // drop pooled real decoders
			buf := make([]byte, 4096)
			if n, err := f.(*File).ReadAt(buf, 300_000); !errors.Is(err, errBadChunk) {
				t.Fatalf("ReadAt = %d, %v; want the decoder's error", n, err)
			}
			if st := c.Stats(); st.Pinned != 0 || st.UsedBytes != c.idleBuffers()+st.Bytes {
				t.Fatalf("after the failed decode: %+v (idle buffers %d)", st, c.idleBuffers())
			}
		})
	}
}
