package catalog

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
)

// TestScanUsesOptionsCache: every kind of WIM a scan opens (a bare WIM, a WIM inside an ISO, a
// split set) decodes its metadata through Options.Cache, the daemon's one shared cache (before:
// each got a private 256 MiB cache); the cache does not leak into the snapshot's files, and
// with no cache given a scan still works (private caches) without touching the shared one.
func TestScanUsesOptionsCache(t *testing.T) {
	bare := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(bare, "pe.wim"), []testenv.WinPEImage{{Name: "PE"}}, "--compress=LZX")
	inISO := t.TempDir()
	buildISO(t, isoTools[0], filepath.Join(inISO, "win.iso"), winISORoot(t, "sources", "boot.wim"))
	split := t.TempDir()
	testenv.BuildSplitWinPE(t, split, "pe", 1)

	for _, tc := range []struct{ name, store, file string }{
		{"bare WIM", bare, "pe.wim"},
		{"WIM in an ISO", inISO, "win.iso/sources/boot.wim"},
		{"split set", split, "pe.swm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := wim.NewCache(64 << 20)
			snap, err := Scan(context.Background(), tc.store, &Options{Cache: shared})
			if err != nil {
				t.Fatal(err)
			}
			f, ok := snap.File(tc.file)
			if !ok || len(f.Images) == 0 {
				t.Fatalf("%s not scanned: %+v", tc.file, snap.Files)
			}
			st := shared.Stats()
			if st.Misses == 0 {
				t.Fatalf("scanning %s decoded nothing through the shared cache", tc.file)
			}
			t.Logf("%s: %d chunks decoded through the shared cache", tc.file, st.Misses)
			for _, f := range snap.Files {
				if f.cache != nil {
					t.Errorf("%s keeps the scan's cache in the snapshot", f.Path)
				}
			}
			if _, err := Scan(context.Background(), tc.store, nil); err != nil {
				t.Fatal(err)
			}
			if after := shared.Stats(); after.Misses != st.Misses || after.Hits != st.Hits {
				t.Errorf("a scan without the cache used it: %+v -> %+v", st, after)
			}
		})
	}
}
