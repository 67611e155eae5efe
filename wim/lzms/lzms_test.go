package lzms

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
	"github.com/pxewim/pxewim/wim/internal/codectest"
)

func needWimlib(tb testing.TB) {
	tb.Helper()
	if !wimlibc.Available() {
		tb.Skip("wimlib reference not built: install libwim-dev and run go test -tags libwim ./wim/lzms")
	}
}

// compressed returns wimlib's LZMS compression of data at chunkSize, or skips/false when
// wimlib would store the chunk raw. Results are cached: wimlib's LZMS compressor is slow.
var (
	compMu    sync.Mutex
	compCache = map[string][]byte{}
)

func compressed(tb testing.TB, chunkSize int, data []byte, key string) ([]byte, bool) {
	tb.Helper()
	compMu.Lock()
	defer compMu.Unlock()
	if key != "" {
		if c, ok := compCache[key]; ok {
			return c, c != nil
		}
	}
	// PXEWIM_LZMS_CACHE names a directory that keeps keyed compressions across runs
	// (profiling runs then measure the decoder, not wimlib's compressor). The key covers
	// the data's origin; a SHA-256 of the data guards against stale files.
	var file string
	if dir := os.Getenv("PXEWIM_LZMS_CACHE"); dir != "" && key != "" {
		sum := sha256.Sum256(data)
		file = filepath.Join(dir, fmt.Sprintf("%x-%x", sha256.Sum256([]byte(key)), sum[:8]))
		if c, err := os.ReadFile(file); err == nil {
			if len(c) == 0 {
				c = nil
			}
			compCache[key] = c
			return c, c != nil
		}
	}
	c, ok, err := wimlibc.Compress(wimlibc.LZMS, chunkSize, data)
	if err != nil {
		tb.Fatalf("wimlib compress: %v", err)
	}
	if !ok {
		c = nil
	}
	if key != "" {
		compCache[key] = c
	}
	if file != "" {
		_ = os.MkdirAll(filepath.Dir(file), 0o755)
		_ = os.WriteFile(file, c, 0o644)
	}
	return c, ok
}

func checkRoundTrip(t *testing.T, d *Decoder, chunkSize int, data []byte, key string) {
	t.Helper()
	c, ok := compressed(t, chunkSize, data, key)
	if !ok {
		t.Skipf("wimlib stores %d bytes raw", len(data))
	}
	got := make([]byte, len(data))
	if err := d.Decompress(got, c); err != nil {
		t.Fatalf("decompress %d -> %d bytes: %v", len(c), len(data), err)
	}
	if i := firstDiff(got, data); i >= 0 {
		t.Fatalf("output differs from the original at byte %d of %d (compressed %d bytes)", i, len(data), len(c))
	}
}

var firstDiff = codectest.FirstDiff

// TestAgainstWimlib decodes wimlib-compressed chunks of every data kind and several
// chunk sizes, full and partial (a resource's last chunk is shorter).
func TestAgainstWimlib(t *testing.T) {
	needWimlib(t)
	type tc struct {
		chunk, size int
		kind        string
	}
	var cases []tc
	for _, chunk := range []int{32 << 10, 64 << 10, 1 << 20} {
		for _, kind := range dataKinds {
			cases = append(cases, tc{chunk, chunk, kind}, tc{chunk, chunk*3/4 + 123, kind})
		}
	}
	cases = append(cases,
		tc{2 << 20, 2 << 20, "binary"}, tc{2 << 20, 2 << 20, "mixed"},
		tc{8 << 20, 8<<20 - 5, "text"}, tc{8 << 20, 8 << 20, "int32ramp"},
	)
	if !testing.Short() {
		cases = append(cases, tc{64 << 20, 64 << 20, "mixed"}, tc{64 << 20, 24<<20 + 7, "binary"})
	}
	decoders := map[int]*Decoder{}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/chunk%dK/%d", c.kind, c.chunk>>10, c.size), func(t *testing.T) {
			d := decoders[c.chunk]
			if d == nil {
				var err error
				if d, err = NewDecoder(c.chunk); err != nil {
					t.Fatal(err)
				}
				decoders[c.chunk] = d // reused: state must not leak between chunks
			}
			data := sample(t, c.kind, c.size, 1)
			checkRoundTrip(t, d, c.chunk, data, "")
		})
	}
}

// TestPortableLoop runs the Go item loop (the one platforms without the assembly loop
// use) over wimlib-compressed chunks of every data kind.
func TestPortableLoop(t *testing.T) {
	needWimlib(t)
	if !haveAsm {
		t.Skip("the Go item loop is the only one here; TestAgainstWimlib covers it")
	}
	useAsm = false
	defer func() { useAsm = haveAsm }()
	for _, chunk := range []int{32 << 10, 1 << 20} {
		d, err := NewDecoder(chunk)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range dataKinds {
			t.Run(fmt.Sprintf("%s/chunk%dK", kind, chunk>>10), func(t *testing.T) {
				checkRoundTrip(t, d, chunk, sample(t, kind, chunk*3/4+123, 1), "")
			})
		}
	}
}

// TestShortChunks covers every length 1..100 (wimlib stores most of these raw).
func TestShortChunks(t *testing.T) {
	needWimlib(t)
	d, err := NewDecoder(32 << 10)
	if err != nil {
		t.Fatal(err)
	}
	decoded := 0
	for _, kind := range []string{"text", "zeros", "binary", "int32ramp"} {
		for n := 1; n <= 100; n++ {
			data := sample(t, kind, n, uint64(n))
			c, ok := compressed(t, 32<<10, data, "")
			if !ok {
				continue
			}
			got := make([]byte, n)
			if err := d.Decompress(got, c); err != nil {
				t.Fatalf("%s/%d: %v", kind, n, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s/%d: output differs at byte %d", kind, n, firstDiff(got, data))
			}
			decoded++
		}
	}
	if decoded == 0 {
		t.Fatal("wimlib compressed none of the short inputs; the test checked nothing")
	}
	t.Logf("%d short chunks compressed by wimlib and decoded", decoded)
}

// seedChunk reads a wimlib-made chunk from the committed fuzz corpus, so that hostile
// variants of real chunks can be tested without wimlib.
func seedChunk(t *testing.T, name string) (src []byte, size int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/fuzz/FuzzDecompress", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasPrefix(lines[2], "uint16(") {
		t.Fatalf("%s: not a fuzz corpus file", name)
	}
	q, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(lines[2], "uint16("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []byte(q), n + 1
}

// TestHostile feeds malformed chunks: each must give an error naming the problem.
func TestHostile(t *testing.T) {
	good, n := seedChunk(t, "wimlib-text-3000")
	zeros, nz := seedChunk(t, "wimlib-zeros-3000")
	d, err := NewDecoder(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, n)
	if err := d.Decompress(want, good); err != nil {
		t.Fatalf("seed chunk: %v", err)
	}
	cases := []struct {
		name string
		dst  int
		src  []byte
		want string
	}{
		{"empty", 100, nil, "less than 4"},
		{"tiny", 100, []byte{1, 2}, "less than 4"},
		{"odd", 100, []byte{1, 2, 3, 4, 5}, "odd"},
		{"empty output", 0, good, "empty output"},
		{"output beyond chunk size", 64<<10 + 1, good, "exceeds the decoder's chunk size"},
		{"truncated to half", n, good[:len(good)/2&^1], ""},
		{"truncated by 2", n, good[:len(good)-2], ""},
		{"tail only", n, good[len(good)/2&^1:], ""},
		{"all ones", 1000, bytes.Repeat([]byte{0xff}, 64), ""},
		{"all zeros", 60000, make([]byte, 64), ""},
		{"zeros chunk truncated", nz, zeros[:4], ""},
		{"more output than encoded", n + 1000, good, ""},
		{"six bytes", 5000, []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := make([]byte, c.dst)
			err := d.Decompress(dst, c.src)
			if err == nil {
				t.Fatalf("accepted a hostile chunk")
			}
			if !strings.HasPrefix(err.Error(), "lzms: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name the problem (want %q)", err, c.want)
			}
			t.Logf("%v", err)
		})
	}
	// A hostile chunk must not disturb the next good one.
	got := make([]byte, n)
	if err := d.Decompress(got, good); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("good chunk after hostile ones: err=%v", err)
	}
	if !errors.Is(d.Decompress(make([]byte, 10), []byte{1}), ErrCorrupt) {
		t.Fatal("corrupt-data errors must wrap ErrCorrupt")
	}
}

func TestNewDecoderSizes(t *testing.T) {
	for _, c := range []struct {
		size int
		ok   bool
	}{{0, false}, {-1, false}, {1, true}, {32 << 10, true}, {64 << 20, true}, {1 << 30, true}, {maxChunkSize + 1, false}} {
		_, err := NewDecoder(c.size)
		if (err == nil) != c.ok {
			t.Errorf("NewDecoder(%d): err=%v, want ok=%v", c.size, err, c.ok)
		}
	}
}

// TestSlotTables checks the generated tables against values stated by the format.
func TestSlotTables(t *testing.T) {
	for _, c := range []struct {
		name string
		got  int
		want int
	}{
		{"offset slots", len(offsetSlots.extra), 799},
		{"last offset base", int(offsetSlots.base[798]), 0x065BE4A5},
		{"offset end", int(offsetSlots.base[799]), 0x465BE4A5},
		{"length slots", len(lengthSlots.extra), 54},
		{"last length base", int(lengthSlots.base[53]), 0x000108AB},
		{"length end", int(lengthSlots.base[54]), 0x400108AB},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	for _, n := range []int{2, 3, 100, 32 << 10, 64 << 20, maxChunkSize} {
		s := numOffsetSlots(n)
		if b := offsetSlots.base[s-1]; b > uint32(n-1) || (s < 799 && offsetSlots.base[s] <= uint32(n-1)) {
			t.Errorf("numOffsetSlots(%d) = %d does not cover offset %d exactly", n, s, n-1)
		}
	}
}

// TestX86FilterExercised makes sure the binary test data really contains translated x86
// instructions, so the round-trip tests cover the filter.
func TestX86FilterExercised(t *testing.T) {
	needWimlib(t)
	data := sample(t, "binary", 1<<20, 3)
	c, ok := compressed(t, 1<<20, data, "")
	if !ok {
		t.Fatal("wimlib did not compress binaries")
	}
	d, err := NewDecoder(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, len(data))
	if err := d.s.decode(raw, c, 0); err != nil {
		t.Fatal(err)
	}
	diff := 0
	for i := range raw {
		if raw[i] != data[i] {
			diff++
		}
	}
	if diff == 0 {
		t.Fatal("no byte changed by the x86 filter: binary data does not exercise it")
	}
	d.s.x86.undo(raw)
	if !bytes.Equal(raw, data) {
		t.Fatalf("x86 undo differs at %d", firstDiff(raw, data))
	}
	t.Logf("x86 filter changed %d of %d bytes", diff, len(raw))
}

// TestNoAllocs checks that decoding allocates nothing once the decoder exists.
func TestNoAllocs(t *testing.T) {
	src, n := seedChunk(t, "wimlib-binary-3000")
	d, err := NewDecoder(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, n)
	allocs := testing.AllocsPerRun(20, func() {
		if err := d.Decompress(dst, src); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Decompress allocates %.1f times per call", allocs)
	}
}

// TestDecompressPrefix decodes the first bytes of real chunks: the bytes it calls final
// must be the chunk's, for every prefix length, and a hostile prefix gives an error.
func TestDecompressPrefix(t *testing.T) {
	d, err := NewDecoder(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	type chunk struct {
		name string
		src  []byte
		raw  []byte
	}
	var chunks []chunk
	for _, name := range []string{"wimlib-binary-3000", "wimlib-text-3000", "wimlib-zeros-3000"} {
		src, n := seedChunk(t, name)
		raw := make([]byte, n)
		if err := d.Decompress(raw, src); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		chunks = append(chunks, chunk{name, src, raw})
	}
	if wimlibc.Available() {
		for _, kind := range []string{"binary", "int32ramp", "mixed"} {
			raw := sample(t, kind, 1<<20, 21)
			if c, ok := compressed(t, 1<<20, raw, "prefix/"+kind); ok {
				chunks = append(chunks, chunk{kind + "-1MiB", c, raw})
			}
		}
	}
	for _, c := range chunks {
		n := len(c.raw)
		for _, k := range []int{0, 1, 16, 17, 100, n / 3, n / 2, n - 17, n - 16, n - 1, n} {
			if k < 0 || k > n {
				continue
			}
			dst := make([]byte, k)
			exact, err := d.DecompressPrefix(dst, c.src, n)
			if err != nil {
				t.Fatalf("%s: prefix %d of %d: %v", c.name, k, n, err)
			}
			if want := max(0, k-16); k == n && exact != n || k < n && exact != want {
				t.Fatalf("%s: prefix %d of %d: %d bytes final, want %d", c.name, k, n, exact, want)
			}
			if i := firstDiff(dst[:exact], c.raw[:exact]); i >= 0 {
				t.Fatalf("%s: prefix %d of %d differs at byte %d", c.name, k, n, i)
			}
		}
	}
	good, n := seedChunk(t, "wimlib-text-3000")
	for _, c := range []struct {
		name      string
		dst, size int
		src       []byte
		want      string
	}{
		{"longer than chunk", n + 1, n, good, "longer than the chunk"},
		{"chunk beyond decoder", 10, 2 << 20, good, "out of range"},
		{"truncated", n / 2, n, good[:64], ""},
		{"garbage", 500, 1000, bytes.Repeat([]byte{0xff}, 64), ""},
	} {
		_, err := d.DecompressPrefix(make([]byte, c.dst), c.src, c.size)
		if err == nil || !strings.HasPrefix(err.Error(), "lzms: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want an lzms error naming %q", c.name, err, c.want)
		}
	}
}
