package catalog

import (
	"bytes"
	"context"
	"encoding/gob"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestPersistedCatalog: a first scan in a new process takes unchanged files from the saved
// catalog without reading them, reads what changed, and ignores a saved catalog that is
// damaged, of another store or of another format (then the store is read).
func TestPersistedCatalog(t *testing.T) {
	store := buildStore(t)
	saved := filepath.Join(t.TempDir(), "state", "catalog.gob")
	var logs bytes.Buffer
	opts := func() *Options {
		return &Options{Persist: saved, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	}
	ctx := context.Background()
	first, err := Scan(ctx, store, opts())
	if err != nil {
		t.Fatal(err)
	}
	if first.Read != 5 {
		t.Fatalf("first scan read %d files, want 5", first.Read)
	}
	if _, err := os.Stat(saved); err != nil {
		t.Fatalf("no saved catalog after the scan: %v", err)
	}
	// A restart: nothing changed, nothing is read, the snapshot is the same.
	again, err := Scan(ctx, store, opts())
	if err != nil {
		t.Fatal(err)
	}
	if again.Read != 0 || !reflect.DeepEqual(again.Files, first.Files) {
		t.Fatalf("restart: read %d files (want 0), same files %v", again.Read, reflect.DeepEqual(again.Files, first.Files))
	}
	// One file changed: only it is read.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(store, "nouefi.wim"), later, later); err != nil {
		t.Fatal(err)
	}
	changed, err := Scan(ctx, store, opts())
	if err != nil {
		t.Fatal(err)
	}
	if changed.Read != 1 {
		t.Errorf("after touching one file: read %d, want 1", changed.Read)
	}
	if f, _ := changed.File("nouefi.wim"); f == nil || !f.ModTime.Equal(later.Truncate(time.Second)) && !f.ModTime.Equal(later) {
		t.Errorf("nouefi.wim's new mtime not in the snapshot: %+v", f)
	}
	// Another store's catalog (the label differs) is not used.
	other := t.TempDir()
	if err := os.Link(filepath.Join(store, "setup.wim"), filepath.Join(other, "setup.wim")); err != nil {
		t.Fatal(err)
	}
	snap, err := Scan(ctx, other, opts())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Read != 1 || !strings.Contains(logs.String(), "describes store") {
		t.Errorf("another store: read %d (want 1); log:\n%s", snap.Read, logs.String())
	}
	// A damaged file: ignored, the store is read, and a good catalog replaces it.
	logs.Reset()
	if err := os.WriteFile(saved, []byte("\x12garbage that is not gob"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err = Scan(ctx, store, opts())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Read != 5 || !strings.Contains(logs.String(), "cannot be decoded") {
		t.Errorf("damaged catalog: read %d (want 5); log:\n%s", snap.Read, logs.String())
	}
	if snap, err = Scan(ctx, store, opts()); err != nil || snap.Read != 0 {
		t.Errorf("after the damaged catalog was replaced: read %d, %v", snap.Read, err)
	}
	// Another format (or build) is not trusted.
	for _, p := range []persisted{{Format: persistFormat + 1, Scanner: scannerID(), Label: store}, {Format: persistFormat, Scanner: "another build", Label: store}} {
		var b bytes.Buffer
		gob.NewEncoder(&b).Encode(&p)
		os.WriteFile(saved, b.Bytes(), 0o644)
		if snap, err = Scan(ctx, store, opts()); err != nil || snap.Read != 5 {
			t.Errorf("catalog of format %d by %q: read %d (want 5), %v", p.Format, p.Scanner, snap.Read, err)
		}
	}
}

// TestPersistedWatcherSaves: the watcher saves each changed snapshot, so a restart after a
// change made while the daemon ran reads nothing.
func TestPersistedWatcherSaves(t *testing.T) {
	store := buildStore(t)
	saved := filepath.Join(t.TempDir(), "catalog.gob")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := NewWatcher(ctx, store, &Options{Persist: saved}, time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(store, "broken.wim"))
	snap, err := w.Rescan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restart, err := Scan(ctx, store, &Options{Persist: saved})
	if err != nil {
		t.Fatal(err)
	}
	if restart.Read != 0 || !reflect.DeepEqual(restart.Files, snap.Files) {
		t.Errorf("restart after a watched change: read %d (want 0), same files %v", restart.Read, reflect.DeepEqual(restart.Files, snap.Files))
	}
}

// FuzzLoadPersisted: whatever the saved file holds, loading it gives a snapshot or an error,
// never a panic.
func FuzzLoadPersisted(f *testing.F) {
	var b bytes.Buffer
	gob.NewEncoder(&b).Encode(&persisted{Format: persistFormat, Scanner: scannerID(), Label: "s",
		Files: []File{{Path: "a.wim", Size: 1, Images: []Image{{Index: 1, Boot: map[Firmware]BootFiles{BIOS: {Files: map[Role]string{}}}}}}}})
	f.Add(b.Bytes())
	f.Add([]byte{})
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "c.gob")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		snap, err := loadPersisted(p, "s")
		if err == nil && snap == nil {
			t.Fatal("no snapshot and no error for an existing file")
		}
	})
}
