package wim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestIntegrityTable: a WIM captured with --check verifies; flipping one byte of file data
// fails both the integrity table and the blob's SHA-1.
func TestIntegrityTable(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	data := bytes.Repeat([]byte("integrity "), 5000)
	os.WriteFile(filepath.Join(src, "f.txt"), data, 0o644)
	w := filepath.Join(dir, "x.wim")
	wimtest.Wimlib(t, "capture", src, w, "x", "--compress=none", "--check")
	b, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(bytes.NewReader(b), int64(len(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.HasIntegrity() {
		t.Fatal("no integrity table in a WIM captured with --check")
	}
	if err := a.Verify(context.Background(), nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	i := bytes.Index(b, data[:100])
	if i < 0 {
		t.Fatal("file data not found stored raw")
	}
	b[i+50] ^= 0xFF
	a, err = Open(bytes.NewReader(b), int64(len(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Verify(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "integrity table") || !strings.Contains(err.Error(), "SHA-1 mismatch") {
		t.Errorf("verify of a corrupted WIM: %v; want integrity and SHA-1 errors", err)
	}
}
