package lzms

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// Test inputs are generated or gathered from the machine (never stored in git): real
// x86-64 binaries exercise the x86 filter, text the literal coder, strided numeric data
// the delta matches.
var dataKinds = []string{"binary", "text", "random", "zeros", "int32ramp", "float32", "bitmap", "mixed"}

var (
	poolMu sync.Mutex
	pools  = map[string][]byte{}
)

// filePool concatenates the files matching the globs (sorted, deterministic) until
// limit bytes; it returns what it found.
func filePool(kind string, limit int, globs ...string) []byte {
	poolMu.Lock()
	defer poolMu.Unlock()
	if p, ok := pools[kind]; ok && len(p) >= limit {
		return p
	}
	var names []string
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		names = append(names, m...)
	}
	slices.Sort(names)
	var out []byte
	for _, n := range names {
		if len(out) >= limit {
			break
		}
		fi, err := os.Stat(n)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > 64<<20 {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			continue
		}
		out = append(out, b...)
	}
	pools[kind] = out
	return out
}

// sample returns n bytes of the given kind, or skips the test when the machine lacks
// the files to build it.
func sample(tb testing.TB, kind string, n int, seed uint64) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	switch kind {
	case "binary", "text":
		var pool []byte
		if kind == "binary" {
			pool = filePool(kind, max(n, 8<<20)+1, "/usr/bin/*", "/usr/lib/x86_64-linux-gnu/*.so*")
		} else {
			pool = filePool(kind, max(n, 4<<20)+1, "/usr/share/doc/*/copyright", "/usr/share/common-licenses/*")
		}
		if len(pool) < n {
			tb.Skipf("only %d bytes of %s files on this machine, need %d", len(pool), kind, n)
		}
		start := 0
		if len(pool) > n {
			start = rng.IntN(len(pool) - n)
		}
		copy(b, pool[start:])
	case "random":
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	case "zeros":
	case "int32ramp": // slowly changing 32-bit counters with noise: delta-match food
		v := rng.Int32()
		for i := 0; i+4 <= n; i += 4 {
			v += 3 + int32(rng.IntN(3))
			binary.LittleEndian.PutUint32(b[i:], uint32(v))
		}
	case "float32": // sampled sine waves like audio
		for i := 0; i+4 <= n; i += 4 {
			x := math.Sin(float64(i)/97) + 0.3*math.Sin(float64(i)/13)
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(x)))
		}
	case "bitmap": // 24-bit gradient image rows with some noise
		const width = 317
		for i := 0; i+3 <= n; i += 3 {
			px := i / 3
			x, y := px%width, px/width
			b[i] = byte(x + y)
			b[i+1] = byte(2*x - y)
			b[i+2] = byte(x*y/64 + rng.IntN(2))
		}
	case "mixed": // alternating stretches of the other kinds
		for off := 0; off < n; {
			k := dataKinds[rng.IntN(len(dataKinds)-1)]
			m := min(n-off, 1+rng.IntN(64<<10))
			copy(b[off:], sample(tb, k, m, rng.Uint64()))
			off += m
		}
	default:
		tb.Fatalf("unknown data kind %q", kind)
	}
	return b
}
