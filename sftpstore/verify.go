package sftpstore

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/pxewim/pxewim/wim"
)

// verifyWIM opens name in fsys as a WIM, decoding through cache (nil: a private one), and
// checks it like wimlib-imagex verify: every image's metadata, the SHA-1 of every blob, and
// the integrity table if present ((*wim.Archive).Verify). The file must implement io.ReaderAt
// (Store files do).
//
// What this guarantees for a Store: the first fetch of every block of a file version (path,
// size, modification time) is pinned by its SHA-256, and any later fetch of that block (after
// cache eviction or a reconnect) must match or the read fails with ErrChanged. So once a WIM
// verified, every byte verification read, which covers every blob, the blob table and the
// metadata, is served exactly as verified, even if the server rewrites the file in place; a
// file replaced with a new size or modification time is a new version, to be verified again
// (Verifier does that). Besides, the wim package checks a blob's SHA-1 whenever it reads the
// blob whole and in order. Pins are kept for up to a million blocks (1 TiB at 1 MiB blocks).
func verifyWIM(ctx context.Context, fsys fs.FS, name string, cache *wim.Cache) error {
	f, err := fsys.Open(name)
	if err != nil {
		return fmt.Errorf("verifying WIM: %w", err)
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return fmt.Errorf("verifying WIM %s: file is not an io.ReaderAt", name)
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("verifying WIM %s: %w", name, err)
	}
	a, err := wim.Open(ra, st.Size(), &wim.Options{Cache: cache})
	if err != nil {
		return fmt.Errorf("verifying WIM %s: %w", name, err)
	}
	if err := a.Verify(ctx, nil); err != nil {
		return fmt.Errorf("verifying WIM %s: %w", name, err)
	}
	return nil
}

// Verifier verifies WIMs (verifyWIM: metadata, every blob's SHA-1, the integrity table) and
// remembers which passed, by name, size and modification time, so a
// catalog can call Check every time it sees a WIM and pay for verification only when the
// WIM is new or changed. A WIM that failed is not retried until it changes. Safe for
// concurrent use; the zero value is ready.
type Verifier struct {
	// Cache is the chunk cache verification decodes metadata through (the daemon's shared
	// one); nil gives each verified WIM a private cache. Set it before the first Check.
	Cache *wim.Cache

	mu   sync.Mutex
	seen map[string]verdict
}

type verdict struct {
	size  int64
	mtime time.Time
	err   error
}

// Check returns nil when name (as it is now in fsys) verified, verifying it if needed.
func (v *Verifier) Check(ctx context.Context, fsys fs.FS, name string) error {
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return fmt.Errorf("verifying WIM: %w", err)
	}
	v.mu.Lock()
	old, ok := v.seen[name]
	v.mu.Unlock()
	if ok && old.size == st.Size() && old.mtime.Equal(st.ModTime()) {
		return old.err
	}
	err = verifyWIM(ctx, fsys, name, v.Cache)
	if ctx.Err() != nil {
		return err // cancelled: no verdict
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]verdict{}
	}
	v.seen[name] = verdict{size: st.Size(), mtime: st.ModTime(), err: err}
	return err
}
