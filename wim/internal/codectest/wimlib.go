package codectest

import (
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

// NeedWimlib skips the test when the cgo binding to wimlib's codecs is not built.
func NeedWimlib(t testing.TB) {
	t.Helper()
	if !wimlibc.Available() {
		t.Skip("wimlib binding not built: run go test -tags libwim with libwim-dev installed (./test.sh does)")
	}
}

// RoundTrip compresses data with wimlib's codec at chunkSize and checks that decompress
// restores it. It reports whether wimlib compressed the chunk at all (it stores incompressible
// chunks raw, which a decoder never sees).
func RoundTrip(t *testing.T, codec wimlibc.Codec, chunkSize int, data []byte, decompress func(dst, src []byte) error) bool {
	t.Helper()
	comp, ok, err := wimlibc.Compress(codec, chunkSize, data)
	if err != nil {
		t.Fatalf("wimlib compress: %v", err)
	}
	if !ok {
		return false
	}
	out := make([]byte, len(data))
	if err := decompress(out, comp); err != nil {
		t.Fatalf("chunk size %d, %d bytes: %v", chunkSize, len(data), err)
	}
	if i := FirstDiff(out, data); i >= 0 {
		t.Fatalf("chunk size %d, %d bytes: output differs from the input at byte %d", chunkSize, len(data), i)
	}
	return true
}

// FirstDiff is the first index where a and b differ, the shorter length if one is a prefix of
// the other, or -1 when they are equal.
func FirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
