package wim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"github.com/pxewim/pxewim/wim/wimtest"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseChunkTable(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name  string
		width int64
		offs  []int64 // chunk starts 1..n-1
		data  int64
	}{
		{"4-byte", 4, []int64{100, 250, 4000}, 5000},
		{"8-byte beyond 4 GiB", 8, []int64{1 << 31, 1 << 32, 5 << 30}, 6 << 30},
		{"single chunk", 4, nil, 77},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := make([]byte, int64(len(tt.offs))*tt.width)
			for i, o := range tt.offs {
				if tt.width == 8 {
					le.PutUint64(table[i*8:], uint64(o))
				} else {
					le.PutUint32(table[i*4:], uint32(o))
				}
			}
			n := int64(len(tt.offs) + 1)
			got, err := parseChunkTable(table, n, tt.width, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append([]int64{0}, tt.offs...), tt.data)
			if len(got) != len(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		})
	}
}

// synthWIM is a fake WIM file holding one compressed resource of more than 4 GiB whose chunks
// are all stored raw: its 8-byte chunk table and data are computed on the fly, not stored.
type synthWIM struct {
	chunk, usize, tableSize int64
}

const synthBase = HeaderSize

func (s synthWIM) dataByte(x int64) byte { return byte(x*7 + x>>13) }

func (s synthWIM) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		x := off + int64(i)
		switch {
		case x < synthBase:
			p[i] = 0
		case x < synthBase+s.tableSize:
			k := (x - synthBase) / 8 // entry k holds the start of chunk k+1
			var e [8]byte
			binary.LittleEndian.PutUint64(e[:], uint64((k+1)*s.chunk))
			p[i] = e[(x-synthBase)%8]
		case x < synthBase+s.tableSize+s.usize:
			p[i] = s.dataByte(x - synthBase - s.tableSize)
		default:
			return i, io.EOF
		}
	}
	return len(p), nil
}

func TestResourceBeyond4GiB(t *testing.T) {
	s := synthWIM{chunk: 32768, usize: 5<<30 + 12345}
	n := (s.usize + s.chunk - 1) / s.chunk
	s.tableSize = (n - 1) * 8
	a := &Archive{cache: NewCache(1 << 20)}
	p := &part{r: s, size: synthBase + s.tableSize + s.usize,
		hdr: Header{Compression: CompressionLZX, ChunkSize: uint32(s.chunk), Part: 1, TotalParts: 1}, id: 1}
	r, err := newResource(a, p, ResourceHeader{SizeInWIM: s.tableSize + s.usize, Flags: ResFlagCompressed, Offset: synthBase, Size: s.usize})
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1<<32 - 10, 1<<32 + 5, 5 << 30, s.usize - 100} {
		buf := make([]byte, 100)
		if _, err := r.readAt(buf, off, nil); err != nil {
			t.Fatalf("readAt(%d): %v", off, err)
		}
		for i, b := range buf {
			if want := s.dataByte(off + int64(i)); b != want {
				t.Fatalf("byte %d: got %#x, want %#x", off+int64(i), b, want)
			}
		}
	}
	// Chunks 0, 131071 and 131072 (the read crossing 4 GiB), 131072 again (cached), 163840 twice
	// (the last chunk holds both of the last reads): four decodes.
	if st := a.cache.Stats(); st.Misses != 4 || st.Hits != 2 {
		t.Errorf("cache stats %+v, want 4 misses and 2 hits", st)
	}
}

func TestCacheSingleflight(t *testing.T) {
	c := NewCache(1 << 20)
	var decodes atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := c.get(chunkKey{1, 2, 3}, func() ([]byte, error) {
				decodes.Add(1)
				<-release
				return []byte("chunk"), nil
			})
			if err != nil || string(data) != "chunk" {
				t.Errorf("get = %q, %v", data, err)
			}
		}()
	}
	for c.Stats().Hits+c.Stats().Misses < 32 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := decodes.Load(); n != 1 {
		t.Errorf("decoded %d times, want 1", n)
	}
	if st := c.Stats(); st.Misses != 1 || st.Hits != 31 || st.Entries != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestCacheEviction(t *testing.T) {
	c := NewCache(100)
	get := func(k int64, size int) {
		c.get(chunkKey{1, 0, k}, func() ([]byte, error) { return make([]byte, size), nil })
	}
	get(1, 40)
	get(2, 40)
	get(1, 40) // 1 is now most recent
	get(3, 40) // evicts 2
	if st := c.Stats(); st.Evictions != 1 || st.Bytes != 80 || st.Entries != 2 {
		t.Fatalf("stats %+v", st)
	}
	get(1, 40)
	if st := c.Stats(); st.Misses != 3 {
		t.Errorf("chunk 1 was evicted instead of 2: %+v", st)
	}
	get(9, 500) // larger than the whole cache: the others go, it is decoded past the bound and kept alone
	if st := c.Stats(); st.Bytes != 500 || st.Entries != 1 || st.Overdrafts != 1 || st.PeakBytes != 500 {
		t.Errorf("oversize chunk: %+v", st)
	}
	get(1, 40) // room wanted: the oversize chunk goes
	if st := c.Stats(); st.Bytes != 40 || st.Entries != 1 || st.UsedBytes != 40 {
		t.Errorf("after the oversize chunk: %+v", st)
	}
	// A failed decode is not cached.
	_, err := c.get(chunkKey{1, 0, 7}, func() ([]byte, error) { return nil, errors.New("bad") })
	if err == nil || c.Stats().Entries != 1 {
		t.Errorf("err %v, stats %+v", err, c.Stats())
	}
}

// patchedWIM builds a small LZX WIM with wimlib and returns its bytes and parsed blob table.
func patchedWIM(t *testing.T) ([]byte, Header, []BlobTableEntry) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "big.txt"), bytes.Repeat([]byte("compressible text 0123456789\n"), 10000), 0o644)
	w := filepath.Join(dir, "x.wim")
	wimtest.Wimlib(t, "capture", src, w, "x", "--compress=lzx")
	b, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(b, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := parseBlobTable(b[h.BlobTable.Offset : h.BlobTable.Offset+h.BlobTable.Size])
	if err != nil {
		t.Fatal(err)
	}
	return b, h, ents
}

func putResHdr(b []byte, rh ResourceHeader) {
	binary.LittleEndian.PutUint64(b, uint64(rh.SizeInWIM)|uint64(rh.Flags)<<56)
	binary.LittleEndian.PutUint64(b[8:], uint64(rh.Offset))
	binary.LittleEndian.PutUint64(b[16:], uint64(rh.Size))
}

// TestLyingSizes: sizes that the file cannot back give errors, not allocations.
func TestLyingSizes(t *testing.T) {
	orig, h, ents := patchedWIM(t)
	entryAt := func(i int) int64 { return h.BlobTable.Offset + int64(i)*blobEntrySize }
	var meta, data int = -1, -1
	for i, e := range ents {
		if e.Resource.Flags&ResFlagMetadata != 0 {
			meta = i
		} else if e.Resource.Size > 100000 {
			data = i
		}
	}
	if meta < 0 || data < 0 {
		t.Fatalf("blob table lacks metadata/data entries: %+v", ents)
	}
	tests := []struct {
		name    string
		patch   func(b []byte)
		wantErr string
	}{
		{"metadata claims 1 TiB", func(b []byte) {
			rh := ents[meta].Resource
			rh.Size = 1 << 40
			putResHdr(b[entryAt(meta):], rh)
		}, "metadata"},
		{"file claims 1 TiB", func(b []byte) {
			rh := ents[data].Resource
			rh.Size = 1 << 40
			putResHdr(b[entryAt(data):], rh)
		}, "does not fit"},
		{"file stored past EOF", func(b []byte) {
			rh := ents[data].Resource
			rh.SizeInWIM = 1 << 40
			putResHdr(b[entryAt(data):], rh)
		}, "past end of file"},
		{"blob table past EOF", func(b []byte) {
			rh := h.BlobTable
			rh.SizeInWIM, rh.Size = 1<<40, 1<<40
			putResHdr(b[0x30:], rh)
		}, "extends past end of file"},
		{"chunk table out of order", func(b []byte) {
			off := ents[data].Resource.Offset
			e0 := binary.LittleEndian.Uint32(b[off:])
			binary.LittleEndian.PutUint32(b[off:], binary.LittleEndian.Uint32(b[off+4:]))
			binary.LittleEndian.PutUint32(b[off+4:], e0)
		}, "out of order"},
		{"truncated file", nil, "past end of file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			if tt.patch != nil {
				tt.patch(b)
			} else {
				b = b[:len(b)-300]
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := openAndReadAll(b)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("allocated %d MiB for a %d-byte file", grew>>20, len(b))
			}
		})
	}
}

// openAndReadAll opens a WIM held in memory and reads everything in it.
func openAndReadAll(b []byte) error {
	a, err := Open(bytes.NewReader(b), int64(len(b)), nil)
	if err != nil {
		return err
	}
	for i := 1; i <= len(a.Images()); i++ {
		img, err := a.Image(i)
		if err != nil {
			return err
		}
		err = img.Walk(func(p string, e *Entry) error {
			if e.IsDir() || p == "." {
				return nil
			}
			_, err := img.ReadFile(p)
			return err
		})
		if err != nil {
			return err
		}
	}
	return a.Verify(context.Background(), nil)
}

// failingAt makes reads that touch [from, to) fail, to break chosen chunks.
type failingAt struct {
	io.ReaderAt
	from, to int64
}

var errInjected = errors.New("injected read error")

func (f failingAt) ReadAt(p []byte, off int64) (int, error) {
	if off < f.to && off+int64(len(p)) > f.from {
		return 0, errInjected
	}
	return f.ReaderAt.ReadAt(p, off)
}

// TestReadChunksParallel checks ReadAts that span several chunks (fetched on all cores): the
// bytes, one decode per chunk with a cache that keeps nothing, concurrent callers, and the
// count of good bytes when a chunk in the middle fails.
func TestReadChunksParallel(t *testing.T) {
	s := synthWIM{chunk: 32768, usize: 5<<30 + 12345}
	n := (s.usize + s.chunk - 1) / s.chunk
	s.tableSize = (n - 1) * 8
	open := func(ra io.ReaderAt) (*Archive, *resource) {
		a := &Archive{cache: NewCache(0)}
		p := &part{r: ra, size: synthBase + s.tableSize + s.usize,
			hdr: Header{Compression: CompressionLZX, ChunkSize: uint32(s.chunk), Part: 1, TotalParts: 1}, id: 1}
		r, err := newResource(a, p, ResourceHeader{SizeInWIM: s.tableSize + s.usize, Flags: ResFlagCompressed, Offset: synthBase, Size: s.usize})
		if err != nil {
			t.Fatal(err)
		}
		return a, r
	}
	check := func(t *testing.T, buf []byte, off int64) {
		t.Helper()
		for i, b := range buf {
			if want := s.dataByte(off + int64(i)); b != want {
				t.Fatalf("byte %d: got %#x, want %#x", off+int64(i), b, want)
			}
		}
	}
	tests := []struct {
		name       string
		off, size  int64
		wantChunks int64
	}{
		{"aligned 64 KiB", 1 << 20, 64 << 10, 2},
		{"unaligned 64 KiB", 1<<20 + 100, 64 << 10, 3},
		{"one byte over a boundary", 32767, 2, 2},
		{"ten chunks", 5 << 20, 10 << 15, 10},
		{"short at the end", s.usize - 40000, 64 << 10, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := open(s)
			buf := make([]byte, tt.size)
			got, err := r.readAt(buf, tt.off, nil)
			want := min(tt.size, s.usize-tt.off)
			if got != int(want) || (want < tt.size) != (err == io.EOF) || (err != nil && err != io.EOF) {
				t.Fatalf("readAt = %d, %v; want %d bytes", got, err, want)
			}
			check(t, buf[:got], tt.off)
			if st := a.cache.Stats(); st.Misses != tt.wantChunks {
				t.Errorf("%d decodes, want %d", st.Misses, tt.wantChunks)
			}
		})
	}
	t.Run("concurrent callers", func(t *testing.T) {
		_, r := open(s)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				buf := make([]byte, 100<<10)
				off := int64(g)*12345 + 1<<20
				if _, err := r.readAt(buf, off, nil); err != nil {
					t.Error(err)
					return
				}
				check(t, buf, off)
			})
		}
		wg.Wait()
	})
	t.Run("failing chunk", func(t *testing.T) {
		base := synthBase + s.tableSize
		// Chunk 3 of the resource cannot be read; a read of chunks 1..6 returns chunks 1..2.
		_, r := open(failingAt{s, base + 3*s.chunk, base + 4*s.chunk})
		buf := make([]byte, 5*s.chunk)
		got, err := r.readAt(buf, s.chunk+10, nil)
		if !errors.Is(err, errInjected) || int64(got) != 2*s.chunk-10 {
			t.Fatalf("readAt = %d, %v; want %d bytes and the injected error", got, err, 2*s.chunk-10)
		}
		check(t, buf[:got], s.chunk+10)
	})
}

func TestCacheDecodeHistogram(t *testing.T) {
	c := NewCache(1 << 20)
	for i, d := range []time.Duration{0, 3 * time.Millisecond, 3 * time.Millisecond, 3 * time.Second} {
		_, err := c.get(chunkKey{1, 0, int64(i)}, func() ([]byte, error) { time.Sleep(d); return []byte("x"), nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	c.get(chunkKey{1, 0, 0}, func() ([]byte, error) { t.Error("a hit decoded"); return nil, nil }) // a hit: not timed
	st := c.Stats()
	if st.DecodeCount != 4 || st.DecodeSum < 3006*time.Millisecond {
		t.Fatalf("decode count %d sum %v, want 4 and >= 3.006s", st.DecodeCount, st.DecodeSum)
	}
	cum := func(bound time.Duration) int64 {
		for _, b := range st.DecodeBuckets {
			if b.UpperBound == bound {
				return b.Count
			}
		}
		t.Fatalf("no bucket %v", bound)
		return 0
	}
	// The sleeps last at least as long as asked (never shorter), so lower bounds are exact.
	if n := cum(time.Millisecond); n > 1 {
		t.Errorf("%d decodes <= 1ms, want at most the instant one", n)
	}
	if n := cum(2500 * time.Millisecond); n != 3 {
		t.Errorf("%d decodes <= 2.5s, want 3 (the 3 s one is above every bound)", n)
	}
	last := st.DecodeBuckets[len(st.DecodeBuckets)-1].Count
	if last != 3 {
		t.Errorf("last bucket counts %d, want 3", last)
	}
}
