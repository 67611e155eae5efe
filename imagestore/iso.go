package imagestore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pxewim/pxewim/wim"
)

// isoWIMVerifier verifies the WIMs inside a remote store's ISOs (localstore.Options.CheckISOWIM)
// as verifiedFS does bare WIMs: every image's metadata and every blob's SHA-1 before any of
// its bytes is served, once per version of the ISO. The sftpstore pins each block it fetched
// by hash, so the bytes served later are the bytes verified. A WIM that failed stays refused
// until its ISO changes. Safe for concurrent use; the zero value is ready.
type isoWIMVerifier struct {
	cache *wim.Cache // the daemon's chunk cache (Config.Local.Cache); nil: a private one per WIM

	mu   sync.Mutex
	seen map[string]*isoVerdict // lower-case store path of the WIM -> its last version's verdict
}

type isoVerdict struct {
	version string
	once    sync.Once
	err     error
}

func (v *isoWIMVerifier) check(name, version string, r io.ReaderAt, size int64) error {
	key := strings.ToLower(name)
	v.mu.Lock()
	if v.seen == nil {
		v.seen = map[string]*isoVerdict{}
	}
	vd := v.seen[key]
	if vd == nil || vd.version != version {
		vd = &isoVerdict{version: version} // one entry per WIM: an older version's is dropped
		v.seen[key] = vd
	}
	v.mu.Unlock()
	vd.once.Do(func() { vd.err = verifyWIMAt(r, size, v.cache) })
	return vd.err
}

func verifyWIMAt(r io.ReaderAt, size int64, cache *wim.Cache) error {
	a, err := wim.Open(r, size, &wim.Options{Cache: cache})
	if err == nil {
		err = a.Verify(context.Background(), nil)
	}
	if err != nil {
		return fmt.Errorf("remote WIM failed verification: %w", err)
	}
	return nil
}
