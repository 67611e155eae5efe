package lzx

import (
	"os"
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

var scratchKind = os.Getenv("KIND")

func BenchmarkScratch(b *testing.B) {
	s := compressChunks(b, wimlibc.LZX, 32768, corpus(b, scratchKind, 4<<20))
	d, _ := NewDecoder(32768)
	dst := make([]byte, 32768)
	b.SetBytes(s.n)
	b.ResetTimer()
	for range b.N {
		for i, c := range s.comp {
			d.Decompress(dst[:s.size[i]], c)
		}
	}
}
