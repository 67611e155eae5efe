package imagestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pxewim/pxewim/sftpstore"
	"github.com/pxewim/pxewim/wim"
)

// isoWIMVerifier verifies the WIMs inside a remote store's ISOs (localstore.Options.CheckISOWIM)
// as verifiedFS does bare WIMs: every image's metadata and every blob's SHA-1 before any of
// its bytes is served, once per version of the ISO. The sftpstore pins each block it fetched
// by hash, so the bytes served later are the bytes verified. A WIM that failed stays refused
// until its ISO changes. The same verdicts serve ISOGuard (the Windows Setup share's view of
// the ISOs), split .swm sets included. Safe for concurrent use; the zero value is ready.
type isoWIMVerifier struct {
	cache *wim.Cache   // the daemon's chunk cache (Config.Local.Cache); nil: a private one per WIM
	log   *slog.Logger // failures are logged here, once per verdict; nil: discard
	// local: the ISOs are a local store's (localstore.Options.ISOWIMVerdict, background); every
	// verdict is about the bytes, kept until the ISO changes (no outage to retry after).
	local bool

	mu   sync.Mutex
	seen map[string]*isoVerdict // lower-case store path of the WIM (or split set) -> its last version's verdict
}

type isoVerdict struct {
	version string
	once    sync.Once
	done    chan struct{} // closed when err is final
	err     error
}

// isoVersion names one version of an ISO file (localstore's checkISOWIM uses the same form, so
// the HTTP path and the Setup share share their verdicts).
func isoVersion(size int64, mtime time.Time) string {
	return fmt.Sprintf("%d-%d", size, mtime.UnixNano())
}

func (v *isoWIMVerifier) check(name, version string, r io.ReaderAt, size int64) error {
	return v.verdict(context.Background(), name, version, func() error { return verifyWIMAt(v.kind(), r, size, nil, v.cache) })
}

// verdict returns the verdict on key's version, running verify (once for all callers, in its
// own goroutine so that a caller whose ctx ends does not cut it) if there is none yet. Only
// what the bytes say is kept: a pass, a SHA-1 mismatch (wim.ErrChecksum) or a file that changed
// under its pinned blocks (sftpstore.ErrChanged). Any other failure (the connection gave up, a
// context ended, a header that did not parse) goes to the callers waiting for it, and the next
// caller verifies again: a network outage during a long verification does not refuse an intact
// WIM until its ISO changes.
func (v *isoWIMVerifier) verdict(ctx context.Context, name, version string, verify func() error) error {
	key := strings.ToLower(name)
	v.mu.Lock()
	if v.seen == nil {
		v.seen = map[string]*isoVerdict{}
	}
	vd := v.seen[key]
	if vd == nil || vd.version != version {
		vd = &isoVerdict{version: version, done: make(chan struct{})} // one entry per WIM: an older version's is dropped
		v.seen[key] = vd
	}
	v.mu.Unlock()
	vd.once.Do(func() {
		go func() {
			err := verify()
			vd.err = err
			switch {
			case err == nil:
			case v.local || IsDamage(err):
				if v.log != nil {
					v.log.Error(v.kind()+" WIM inside an ISO failed verification: its bytes are not served until the ISO changes", "wim", name, "error", err)
				}
			default:
				v.mu.Lock()
				if v.seen[key] == vd {
					delete(v.seen, key)
				}
				v.mu.Unlock()
				if v.log != nil {
					v.log.Warn("remote WIM inside an ISO could not be verified: refused for now, verified again at its next use", "wim", name, "error", err)
				}
			}
			close(vd.done)
		}()
	})
	select {
	case <-vd.done:
		return vd.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *isoWIMVerifier) kind() string {
	if v.local {
		return "local"
	}
	return "remote"
}

// known returns the verdict on key's version if it is in (done), without starting one.
func (v *isoWIMVerifier) known(name, version string) (done bool, err error) {
	v.mu.Lock()
	vd := v.seen[strings.ToLower(name)]
	v.mu.Unlock()
	if vd == nil || vd.version != version {
		return false, nil
	}
	select {
	case <-vd.done:
		return true, vd.err
	default:
		return false, nil
	}
}

// background is localstore.Options.ISOWIMVerdict for a local store: it starts verifying the
// WIM (every image's metadata and every blob's SHA-1, once per version of its ISO, the verdict
// shared with ISOGuard) and returns its verdict at once; the first byte does not wait for it,
// the servers hold the last one until it is in.
func (v *isoWIMVerifier) background(name, version string, open func() (io.ReaderAt, int64, func(), error)) wim.Verdict {
	d := &isoWIMVerdict{v: v, name: name, version: version, verify: func() error {
		r, size, done, err := open()
		if err != nil {
			return err
		}
		defer done()
		return verifyWIMAt(v.kind(), r, size, nil, v.cache)
	}}
	if ok, _ := v.known(name, version); !ok {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		v.verdict(ctx, name, version, d.verify) // starts it, waits for nothing
	}
	return d
}

// isoWIMVerdict is one WIM's verdict (wim.Verdict) as isoWIMVerifier.background hands it out.
type isoWIMVerdict struct {
	v             *isoWIMVerifier
	name, version string
	verify        func() error
}

func (d *isoWIMVerdict) Verified() bool {
	done, err := d.v.known(d.name, d.version)
	return done && err == nil
}

func (d *isoWIMVerdict) WaitVerified(ctx context.Context) error {
	if done, err := d.v.known(d.name, d.version); done {
		return err
	}
	return d.v.verdict(ctx, d.name, d.version, d.verify)
}

// IsDamage reports whether a verification error is about the bytes (a SHA-1 mismatch, or a
// remote file that changed under the blocks already read), a verdict kept until the ISO changes,
// rather than a failure to verify (an outage), after which the next use verifies again.
func IsDamage(err error) bool {
	return errors.Is(err, wim.ErrChecksum) || errors.Is(err, sftpstore.ErrChanged)
}

func verifyWIMAt(kind string, r io.ReaderAt, size int64, parts []wim.Part, cache *wim.Cache) error {
	a, err := wim.Open(r, size, &wim.Options{Cache: cache, Parts: parts})
	if err == nil && a.MissingParts() > 0 {
		err = fmt.Errorf("%d parts of the split set are missing", a.MissingParts())
	}
	if err == nil {
		err = a.Verify(context.Background(), nil)
	}
	if err != nil {
		return fmt.Errorf("%s WIM failed verification: %w", kind, err)
	}
	return nil
}

// ISOGuard verifies the WIM files inside one version of an ISO of a remote store for a reader
// that reads the ISO's tree itself instead of going through Store.Open: the Windows Setup
// share's view, which hands install.wim to smbd byte for byte. A .wim or .esd is verified as
// Store.Open verifies it (every image's metadata and every blob's SHA-1, with the same
// verdicts: a WIM verified for HTTP is not verified again for the share); a split .swm part
// is verified with its whole set (the .swm files of its folder with the same stem, install.swm,
// install2.swm, ...). The bytes served after a pass are the bytes verified (sftpstore pins
// every block it fetched by hash). A local store that verifies its WIMs (Config.Local.Verifier)
// guards its ISOs the same way, with the verdicts its Open uses; without a Verifier it has no
// guard (nil).
type ISOGuard struct {
	v       *isoWIMVerifier
	isoPath string
	version string
	tree    fs.FS // the ISO's files; regular files are io.ReaderAt
}

// GuardISO returns the guard for the ISO at store path isoPath, of which fi is the stat and
// tree the opened file tree (package iso over the store's file); nil for a local store that
// does not verify its WIMs.
func (s *Store) GuardISO(isoPath string, fi fs.FileInfo, tree fs.FS) *ISOGuard {
	if s == nil || fi == nil || tree == nil {
		return nil
	}
	v := s.localISOWIMs
	if s.conn != nil {
		v = s.conn.isoWIMs
	}
	if v == nil {
		return nil
	}
	return &ISOGuard{v: v, isoPath: isoPath, version: isoVersion(fi.Size(), fi.ModTime()), tree: tree}
}

// Covers reports whether the file at inner (a path inside the ISO) needs a verdict before its
// bytes are served: a .wim, .esd or .swm file.
func (g *ISOGuard) Covers(inner string) bool {
	if g == nil {
		return false
	}
	l := strings.ToLower(inner)
	return strings.HasSuffix(l, ".wim") || strings.HasSuffix(l, ".esd") || strings.HasSuffix(l, ".swm")
}

// Check returns the verdict on the file at inner (nil when it passed or is not covered),
// verifying it first if no reader asked for it yet; it waits at most until ctx ends. The error
// names the file.
func (g *ISOGuard) Check(ctx context.Context, inner string) error {
	if !g.Covers(inner) {
		return nil
	}
	name := g.isoPath + "/" + inner
	if strings.HasSuffix(strings.ToLower(inner), ".swm") {
		parts, err := g.splitSet(inner)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		setName := g.isoPath + "/" + parts[0] + " (split set)"
		err = g.v.verdict(ctx, setName, g.version, func() error { return g.verifySet(parts) })
		if err != nil {
			return fmt.Errorf("%s, split set of %d parts: %w", name, len(parts), err)
		}
		return nil
	}
	err := g.v.verdict(ctx, name, g.version, func() error {
		f, r, size, err := g.open(inner)
		if err != nil {
			return err
		}
		defer f.Close()
		return verifyWIMAt(g.v.kind(), r, size, nil, g.v.cache)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// VerifyAll checks every covered file of the ISO, one after the other, until ctx ends, and
// returns the paths (inside the ISO) that failed with their errors. The Setup share runs it
// when it first shows an ISO, so that by the time a client reads install.wim its verdict is in.
func (g *ISOGuard) VerifyAll(ctx context.Context) map[string]error {
	if g == nil {
		return nil
	}
	var names []string
	fs.WalkDir(g.tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && g.Covers(p) {
			names = append(names, p)
		}
		return nil
	})
	failed := map[string]error{}
	for _, n := range names {
		if ctx.Err() != nil {
			break
		}
		if err := g.Check(ctx, n); err != nil && ctx.Err() == nil {
			failed[n] = err
		}
	}
	return failed
}

func (g *ISOGuard) open(inner string) (fs.File, io.ReaderAt, int64, error) {
	f, err := g.tree.Open(inner)
	if err != nil {
		return nil, nil, 0, err
	}
	fi, err := f.Stat()
	r, ok := f.(io.ReaderAt)
	if err != nil || !ok || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, 0, fmt.Errorf("%s: not a regular file readable at offsets", inner)
	}
	return f, r, fi.Size(), nil
}

// splitSet lists the parts of the split set inner belongs to: the .swm files of its folder
// whose name is its stem followed by digits, the part without digits first.
func (g *ISOGuard) splitSet(inner string) ([]string, error) {
	dir, base := path.Split(inner)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	stem := swmStem(base)
	ents, err := fs.ReadDir(g.tree, dir)
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(strings.ToLower(e.Name()), ".swm") && swmStem(e.Name()) == stem {
			parts = append(parts, path.Join(dir, e.Name()))
		}
	}
	if len(parts) == 0 {
		return nil, fs.ErrNotExist
	}
	sort.Slice(parts, func(i, j int) bool {
		if len(parts[i]) != len(parts[j]) {
			return len(parts[i]) < len(parts[j])
		}
		return parts[i] < parts[j]
	})
	return parts, nil
}

// swmStem is a part's name without .swm and its part number, lower case.
func swmStem(name string) string {
	s := strings.ToLower(strings.TrimSuffix(strings.ToLower(name), ".swm"))
	return strings.TrimRight(s, "0123456789")
}

func (g *ISOGuard) verifySet(parts []string) error {
	var first io.ReaderAt
	var firstSize int64
	var more []wim.Part
	for i, p := range parts {
		f, r, size, err := g.open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if i == 0 {
			first, firstSize = r, size
		} else {
			more = append(more, wim.Part{R: r, Size: size})
		}
	}
	return verifyWIMAt(g.v.kind(), first, firstSize, more, g.v.cache)
}
