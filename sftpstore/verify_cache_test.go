package sftpstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
)

// TestVerifierUsesCache: Verifier.Check decodes the WIM's metadata through Verifier.Cache (the
// daemon's one shared cache; before, every verification made a private 256 MiB one). Any fs.FS
// with io.ReaderAt files does for the check, so a folder stands in for the remote store.
func TestVerifierUsesCache(t *testing.T) {
	dir := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(dir, "pe.wim"), []testenv.WinPEImage{{Name: "PE"}}, "--compress=LZX")
	shared := wim.NewCache(16 << 20)
	v := &Verifier{Cache: shared}
	if err := v.Check(context.Background(), os.DirFS(dir), "pe.wim"); err != nil {
		t.Fatal(err)
	}
	if st := shared.Stats(); st.Misses == 0 {
		t.Fatal("verification decoded nothing through Verifier.Cache")
	}
}
