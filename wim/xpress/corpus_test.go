package xpress

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// corpus returns about n bytes of one kind of test data, built from files on this machine
// (sorted, so runs are reproducible on one machine) or generated:
//
//	x86     ELF executables and shared libraries (exercises E8 translation, aligned offsets)
//	text    licenses and documentation
//	random  pseudo-random bytes (wimlib stores such chunks raw)
//	zeros   all zero (long offset-1 matches)
//	mixed   64-byte runs of text, code and random bytes interleaved
func corpus(t testing.TB, kind string, n int) []byte {
	t.Helper()
	switch kind {
	case "random":
		b := make([]byte, n)
		r := rand.New(rand.NewPCG(1, uint64(n)))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	case "zeros":
		return make([]byte, n)
	case "x86":
		return readFiles(t, n, "/usr/bin/*", "/usr/lib/x86_64-linux-gnu/*.so*")
	case "text":
		return readFiles(t, n, "/usr/share/common-licenses/*", "/usr/share/doc/*/copyright", "/usr/share/doc/*/*.txt")
	case "mixed":
		x, txt, rnd := corpus(t, "x86", n), corpus(t, "text", n), corpus(t, "random", n)
		var b []byte
		for i := 0; len(b) < n; i += 64 {
			src := [][]byte{x, txt, rnd}[(i/64)%3]
			b = append(b, src[i%(len(src)-64):][:64]...)
		}
		return b[:n]
	}
	t.Fatalf("unknown corpus kind %q", kind)
	return nil
}

func readFiles(t testing.TB, n int, globs ...string) []byte {
	var names []string
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		names = append(names, m...)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, name := range names {
		if buf.Len() >= n {
			break
		}
		fi, err := os.Stat(name)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > 4<<20 {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		buf.Write(b)
	}
	if buf.Len() < n {
		t.Skipf("only %d bytes of test data found for %v (want %d)", buf.Len(), globs, n)
	}
	return buf.Bytes()[:n]
}
