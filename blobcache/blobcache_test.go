package blobcache

import (
	"bytes"
	"context"
	"crypto/sha1"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blob is test content with a Source that counts its calls.
type blob struct {
	data  []byte
	key   Key
	calls atomic.Int64
	gate  chan struct{} // when set, the source's reads wait for it to close
}

func newBlob(size int, seed uint64) *blob {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d := make([]byte, size)
	for i := range d {
		d[i] = byte(r.Uint32())
	}
	return &blob{data: d, key: sha1.Sum(d)}
}

// readAtCloser is a source that is also an io.ReaderAt (as a file inside a WIM is): filled
// by pieces in parallel.
type readAtCloser struct{ *bytes.Reader }

func (readAtCloser) Close() error { return nil }

func (b *blob) srcAt() (io.ReadCloser, error) {
	b.calls.Add(1)
	return readAtCloser{bytes.NewReader(b.data)}, nil
}

func (b *blob) src() (io.ReadCloser, error) {
	b.calls.Add(1)
	var r io.Reader = bytes.NewReader(b.data)
	if b.gate != nil {
		r = &gated{r: r, gate: b.gate}
	}
	return io.NopCloser(r), nil
}

type gated struct {
	r    io.Reader
	gate chan struct{}
}

func (g *gated) Read(p []byte) (int, error) { <-g.gate; return g.r.Read(p) }

func (b *blob) size() int64 { return int64(len(b.data)) }

func open(t *testing.T, dir string, budget int64) *Cache {
	t.Helper()
	c, err := Open(Options{Dir: dir, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func idle(t *testing.T, c *Cache) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// fill makes b hot (HotReads reads after missed opens) and waits for the fill.
func fill(t *testing.T, c *Cache, b *blob) {
	t.Helper()
	for range DefaultHotReads {
		if f := c.Open(b.key, b.size(), b.src); f != nil {
			f.Close()
			return
		}
		c.Used(b.key, b.size(), b.src)
	}
	idle(t, c)
	if !c.Has(b.key) {
		t.Fatalf("blob %s not cached after %d opens (stats %+v)", b.key, DefaultHotReads, c.Stats())
	}
}

// mustHit opens b from the cache and checks every byte.
func mustHit(t *testing.T, c *Cache, b *blob) {
	t.Helper()
	f := c.Open(b.key, b.size(), b.src)
	if f == nil {
		t.Fatalf("blob %s: miss, want a hit (stats %+v)", b.key, c.Stats())
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.data) {
		t.Fatalf("blob %s: cached bytes differ (%d bytes, want %d)", b.key, len(got), len(b.data))
	}
}

// onDisk sums the sizes of the files in dir (the marker aside) and lists their names.
func onDisk(t *testing.T, dir string) (int64, []string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	var names []string
	for _, de := range des {
		if de.Name() == MarkerName {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
		names = append(names, de.Name())
	}
	return n, names
}

func TestHotBlobFilledAndServed(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	b := newBlob(100_000, 1)
	for range DefaultHotReads + 1 {
		if f := c.Open(b.key, b.size(), b.src); f != nil {
			t.Fatal("an open of an unknown blob hit")
		}
	}
	c.Used(b.key, b.size(), b.src)
	idle(t, c)
	if b.calls.Load() != 0 || c.Has(b.key) {
		t.Fatalf("opens without reads, or one read, filled the blob (HotReads %d)", DefaultHotReads)
	}
	fill(t, c, b)
	mustHit(t, c, b)
	st := c.Stats()
	if st.Fills != 1 || st.Hits != 1 || st.Bytes != b.size() || st.Entries != 1 || b.calls.Load() != 1 {
		t.Fatalf("stats %+v, source calls %d", st, b.calls.Load())
	}
	if _, err := os.Stat(c.Path(b.key, b.size())); err != nil {
		t.Fatal(err)
	}
}

func TestReadInFullFillsAtOnce(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	b := newBlob(5000, 2)
	c.ReadInFull(b.key, b.size(), b.src)
	idle(t, c)
	mustHit(t, c, b)
}

// A source that is an io.ReaderAt is copied by pieces in parallel and checked the same way.
func TestParallelFill(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 64<<20)
	b := newBlob(5<<20+4321, 8)
	c.ReadInFull(b.key, b.size(), b.srcAt)
	bad := newBlob(5<<20+4321, 9)
	c.ReadInFull(bad.key, bad.size(), b.srcAt) // b's bytes under bad's key
	short := newBlob(3<<20, 10)
	c.ReadInFull(short.key, short.size()+1, short.srcAt) // one byte missing
	idle(t, c)
	mustHit(t, c, b)
	if c.Has(bad.key) || c.Has(short.key) {
		t.Fatal("a parallel fill with wrong or missing bytes was cached")
	}
	if st := c.Stats(); st.Fills != 1 || st.FillErrors != 2 || st.Bytes != b.size() {
		t.Fatalf("stats %+v", st)
	}
	if _, names := onDisk(t, dir); len(names) != 1 {
		t.Fatalf("files left: %v", names)
	}
}

// A source whose bytes do not match the key (a damaged WIM, a wrong size) leaves nothing.
func TestWrongBytesNotCached(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	b := newBlob(5000, 3)
	bad := newBlob(5000, 4)
	c.ReadInFull(b.key, b.size(), bad.src)
	short := newBlob(4999, 3)
	c.ReadInFull(newBlob(6000, 5).key, 6000, short.src)
	idle(t, c)
	if c.Has(b.key) {
		t.Fatal("a blob was cached under a key its bytes do not have")
	}
	if n, names := onDisk(t, dir); n != 0 || len(names) != 0 {
		t.Fatalf("files left: %v", names)
	}
	if st := c.Stats(); st.FillErrors != 2 || st.Fills != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// The files in the folder never add up to more than the budget, whatever is filled.
func TestBudgetHolds(t *testing.T) {
	dir := t.TempDir()
	const budget = 64 << 10
	c := open(t, dir, budget)
	for i := range 40 {
		b := newBlob(1000+int(uint64(i)*7919%30000), uint64(100+i))
		c.ReadInFull(b.key, b.size(), b.src)
		idle(t, c)
		if !c.Has(b.key) {
			t.Fatalf("blob %d (%d bytes) not cached", i, b.size())
		}
		n, names := onDisk(t, dir)
		if n > budget {
			t.Fatalf("after fill %d: %d bytes on disk (%d files) > budget %d", i, n, len(names), budget)
		}
		if st := c.Stats(); st.Bytes != n || st.Bytes > budget {
			t.Fatalf("after fill %d: stats say %d bytes, disk %d", i, st.Bytes, n)
		}
	}
	big := newBlob(budget+1, 7)
	c.ReadInFull(big.key, big.size(), big.src)
	idle(t, c)
	if c.Has(big.key) || big.calls.Load() != 0 {
		t.Fatal("a blob larger than the budget was cached")
	}
	if st := c.Stats(); st.Evictions == 0 {
		t.Fatalf("no evictions: %+v", st)
	}
	c.SetBudget(budget / 4)
	if n, _ := onDisk(t, dir); n > budget/4 {
		t.Fatalf("after SetBudget(%d): %d bytes on disk", budget/4, n)
	}
}

// The least recently used blob goes first; a hit counts as a use.
func TestLRUEvictionOrder(t *testing.T) {
	c := open(t, t.TempDir(), 3000)
	a, b, cc, d := newBlob(1000, 11), newBlob(1000, 12), newBlob(1000, 13), newBlob(1000, 14)
	for _, x := range []*blob{a, b, cc} {
		fill(t, c, x)
	}
	mustHit(t, c, a) // order, most recent first: a c b
	fill(t, c, d)    // evicts b
	if c.Has(b.key) || !c.Has(a.key) || !c.Has(cc.key) || !c.Has(d.key) {
		t.Fatalf("after a hit on a and a fill of d: a %v b %v c %v d %v, want b evicted", c.Has(a.key), c.Has(b.key), c.Has(cc.key), c.Has(d.key))
	}
	e := newBlob(1000, 15)
	fill(t, c, e) // evicts c (order was d a c)
	if c.Has(cc.key) || !c.Has(a.key) || !c.Has(d.key) {
		t.Fatalf("after a fill of e: a %v c %v d %v, want c evicted", c.Has(a.key), c.Has(cc.key), c.Has(d.key))
	}
	if st := c.Stats(); st.Evictions != 2 {
		t.Fatalf("evictions %d, want 2", st.Evictions)
	}
}

// The number of cached files is bounded too (MaxEntries), least recently used first.
func TestMaxEntries(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(Options{Dir: dir, Budget: 1 << 20, MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var bs []*blob
	for i := range 5 {
		b := newBlob(100+i, uint64(60+i))
		bs = append(bs, b)
		fill(t, c, b)
	}
	if _, names := onDisk(t, dir); len(names) != 3 || c.Has(bs[0].key) || c.Has(bs[1].key) || !c.Has(bs[4].key) {
		t.Fatalf("files %v: want the 3 most recent of 5", names)
	}
}

// Use order survives a restart through the files' mtimes.
func TestLRUOrderAfterRestart(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 3000)
	a, b, cc := newBlob(1000, 21), newBlob(1000, 22), newBlob(1000, 23)
	for _, x := range []*blob{a, b, cc} {
		fill(t, c, x)
	}
	c.Close()
	base := time.Now().Add(-time.Hour)
	for i, x := range []*blob{b, cc, a} { // b used longest ago, a last
		if err := os.Chtimes(c.Path(x.key, x.size()), time.Time{}, base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	c2 := open(t, dir, 3000)
	d := newBlob(1000, 24)
	c2.ReadInFull(d.key, d.size(), d.src)
	idle(t, c2)
	if _, err := os.Stat(c.Path(b.key, b.size())); err == nil {
		t.Fatal("b (oldest mtime) was not the one evicted")
	}
	for _, x := range []*blob{a, cc, d} {
		if _, err := os.Stat(c.Path(x.key, x.size())); err != nil {
			t.Fatalf("%s evicted instead of b: %v", x.key, err)
		}
	}
}

// fileHolds checks that the file at path holds want (a damaged file was replaced).
func fileHolds(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s still differs from the blob: the damaged file was not replaced", path)
	}
}

func flipByte(t *testing.T, path string, off int64, keepMtime bool) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if keepMtime { // a sneaky writer (rsync -t --inplace) or bit rot: the mtime says nothing
		if err := os.Chtimes(path, time.Time{}, fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
}

// A cached file written behind the cache's back is not served, checked again and refilled.
func TestCorruptFileDetectedAndRefilled(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	b := newBlob(200_000, 31)
	fill(t, c, b)
	path := c.Path(b.key, b.size())
	flipByte(t, path, 123_456, false)
	if f := c.Open(b.key, b.size(), b.src); f != nil {
		f.Close()
		t.Fatal("a cached file changed behind the cache was served")
	}
	idle(t, c)
	st := c.Stats()
	if st.Corrupt != 1 || st.Fills != 2 || b.calls.Load() != 2 {
		t.Fatalf("stats %+v, source calls %d: want the file found damaged and filled again", st, b.calls.Load())
	}
	fileHolds(t, path, b.data)
	mustHit(t, c, b)
}

// Damage that keeps size and mtime (found at start) is caught by the re-hash of first use.
func TestCorruptFileFoundAtStartRefilled(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	b := newBlob(100_000, 32)
	fill(t, c, b)
	c.Close()
	path := c.Path(b.key, b.size())
	flipByte(t, path, 5, true)

	c2 := open(t, dir, 1<<20)
	if f := c2.Open(b.key, b.size(), b.src); f != nil {
		f.Close()
		t.Fatal("a cached file found at start was served before it was checked")
	}
	idle(t, c2)
	if st := c2.Stats(); st.Corrupt != 1 || st.Fills != 1 {
		t.Fatalf("stats %+v: want the file found damaged and refilled", st)
	}
	fileHolds(t, path, b.data)
	mustHit(t, c2, b)
}

// A restart keeps the blobs: after the re-hash of first use they are hits, never refilled.
// Temporary files and files that are not cached blobs are removed; so is a truncated blob.
func TestRestartKeepsBlobs(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	a, b := newBlob(50_000, 41), newBlob(60_000, 42)
	fill(t, c, a)
	fill(t, c, b)
	c.Close()
	for _, junk := range []string{tmpPrefix + "123", "notablob", strings.Repeat("A", 40) + "-10"} {
		if err := os.WriteFile(filepath.Join(dir, junk), []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Truncate(c.Path(b.key, b.size()), 100); err != nil {
		t.Fatal(err)
	}
	c2 := open(t, dir, 1<<20)
	if n, names := onDisk(t, dir); n != a.size() || len(names) != 1 {
		t.Fatalf("after restart the folder holds %v (%d bytes), want only a's file", names, n)
	}
	if st := c2.Stats(); st.Entries != 1 || st.Bytes != a.size() {
		t.Fatalf("stats %+v", st)
	}
	calls := a.calls.Load()
	c2.Open(a.key, a.size(), a.src) // queues the check of first use
	idle(t, c2)
	mustHit(t, c2, a)
	if st := c2.Stats(); st.Fills != 0 || a.calls.Load() != calls {
		t.Fatalf("a was refilled after the restart: stats %+v", st)
	}
}

func TestForeignFolderRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "boot.wim"), []byte("x"), 0o644)
	if _, err := Open(Options{Dir: dir, Budget: 1 << 20}); err == nil || !strings.Contains(err.Error(), MarkerName) {
		t.Fatalf("a folder with other files: err %v, want a refusal naming %s", err, MarkerName)
	}
	if _, err := os.Stat(filepath.Join(dir, "boot.wim")); err != nil {
		t.Fatal("the folder's file was touched")
	}
	if _, err := Open(Options{Dir: t.TempDir(), Budget: 0}); err == nil {
		t.Fatal("budget 0 accepted")
	}
}

// Many readers of one blob at once: one fill, and every reader gets the right bytes, from the
// source while the fill runs (never waiting for it) or from the cache after.
func TestConcurrentReadersOneFill(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	b := newBlob(300_000, 51)
	b.gate = make(chan struct{}) // the fill cannot finish until every reader has been served
	var wg sync.WaitGroup
	var hits, fromSource atomic.Int64
	const readers = 64
	for range readers {
		wg.Go(func() {
			var got []byte
			var err error
			if f := c.Open(b.key, b.size(), b.src); f != nil {
				hits.Add(1)
				got, err = io.ReadAll(f)
				f.Close()
			} else {
				c.Used(b.key, b.size(), b.src)
				fromSource.Add(1)
				got = bytes.Clone(b.data) // what the WIM gives a request that missed
			}
			if err != nil || !bytes.Equal(got, b.data) {
				t.Errorf("reader got %d bytes, err %v", len(got), err)
			}
		})
	}
	wg.Wait()
	close(b.gate)
	idle(t, c)
	if hits.Load() != 0 || fromSource.Load() != readers {
		t.Fatalf("hits %d before the fill could finish", hits.Load())
	}
	if n := b.calls.Load(); n != 1 {
		t.Fatalf("%d fills of one blob, want 1", n)
	}
	var wg2 sync.WaitGroup
	for range readers {
		wg2.Go(func() { mustHit(t, c, b) })
	}
	wg2.Wait()
	if st := c.Stats(); st.Fills != 1 || st.Hits != readers {
		t.Fatalf("stats %+v", st)
	}
}

func TestParseName(t *testing.T) {
	k := Key(sha1.Sum([]byte("x")))
	for name, ok := range map[string]bool{
		fileName(k, 12):                      true,
		fileName(k, 0):                       false,
		k.String() + "-012":                  false,
		k.String() + "-":                     false,
		strings.ToUpper(k.String()) + "-12":  false,
		k.String()[:39] + "-12":              false,
		k.String() + "-12-3":                 false,
		k.String() + "-99999999999999999999": false,
		k.String()[:39] + "g-12":             false,
		tmpPrefix + k.String():               false,
		"../" + k.String()[3:] + "-12":       false,
	} {
		if _, _, got := parseName(name); got != ok {
			t.Errorf("parseName(%q) = %v, want %v", name, got, ok)
		}
	}
}

func TestSetHotReads(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	c.SetHotReads(1)
	b := newBlob(3000, 71)
	c.Used(b.key, b.size(), b.src)
	idle(t, c)
	mustHit(t, c, b)
	c.SetHotReads(3)
	d := newBlob(3000, 72)
	for range 2 {
		c.Used(d.key, d.size(), d.src)
	}
	idle(t, c)
	if c.Has(d.key) {
		t.Fatal("two reads filled a blob with hot_reads 3")
	}
	c.Used(d.key, d.size(), d.src)
	idle(t, c)
	mustHit(t, c, d)
}
