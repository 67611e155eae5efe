package localstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pxewim/pxewim/verdicts"
	"github.com/pxewim/pxewim/wim"
)

// Background verification of the store's WIMs (issue 11, point 3).
//
// With Options.Verifier set, every WIM or ESD file of the store (not those inside ISOs) is
// verified once per file version, as `pxewim wim verify` does: every image's metadata, every
// blob against its SHA-1, the integrity table if any. A version is its device, inode, size,
// mtime, ctime and WIM GUID; the verdict is kept in the Verifier's state file
// (package verdicts), so a restart does not verify an unchanged store again. Verification
// starts when the catalog sees a WIM (Store.VerifyInBackground) or when a WIM is first
// opened, one WIM at a time.
//
// Every WIM file the store opens (served whole as "x.wim", or read for "x.wim:N/...") reads
// through a guard that, after each read, checks the open file's identity: a file written in
// place (dd conv=notrunc, a copy over it) changes its mtime and ctime before the new bytes
// can be read, so the read that could return them fails instead (a ChangedError, which
// servers treat as damage: the HTTP body or TFTP transfer is cut before it completes). The
// WIM is then closed for new requests, its decoded chunks are dropped from the shared cache
// (wim.Cache.Forget), and the next open sees a new version, which is verified again. A file
// replaced by a rename is another inode: readers of the old one keep reading the old bytes,
// which did not change. Touching a file (mtime only) also counts as a change: it costs a
// verification, never a wrong byte.
//
// What is served while a version is not verified yet: see Verdict on the files (the guard
// and wim.File implement it) and package httpboot: files inside the WIM read in full are
// served at once (the wim package checks their SHA-1 before their last bytes leave), without
// immutable cache headers; range requests and the WIM file itself wait for the verdict.
// A WIM that failed keeps that verdict until the file changes: the WIM file itself is refused
// (VerifyError), ranges and waits inside it get the VerifyError, and files inside it read in
// full are still served, each checked against its SHA-1 (an undamaged bootmgr still boots; the
// damaged file never completes).

// fileID identifies one version of a file (verdicts.Identity without the GUID).
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
	full         bool // dev, ino and ctime are known (a local file on Linux)
}

// sameBytes reports whether o may be the same bytes as id: same device, inode, size and mtime.
// The ctime is left out: unlinking a file (a rename over it, which must not disturb its
// readers) or renaming it aside moves the ctime but not the bytes.
func (id fileID) sameBytes(o fileID) bool {
	return id.dev == o.dev && id.ino == o.ino && id.size == o.size && id.mtime == o.mtime
}

func (id fileID) identity(guid [16]byte) verdicts.Identity {
	return verdicts.Identity{Dev: id.dev, Ino: id.ino, Size: id.size, Mtime: id.mtime, Ctime: id.ctime, GUID: guid}
}

// VerifyError says that a WIM failed verification: it is not served until the file changes.
// Corrupt() marks it as damage for the servers (logged at ERROR level, never a full body).
type VerifyError struct {
	Path    string
	Checked time.Time
	Err     error
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("WIM %s failed verification (checked %s): %v; it is not served until the file changes (pxewim wim verify shows the same)",
		e.Path, e.Checked.UTC().Format(time.RFC3339), e.Err)
}
func (e *VerifyError) Unwrap() error { return e.Err }
func (e *VerifyError) Corrupt() bool { return true }

// ChangedError says that a WIM file was written in place after it was opened: what a read
// returns now may not be what was verified (or what the rest of a transfer was made of).
type ChangedError struct{ Path string }

func (e *ChangedError) Error() string {
	return fmt.Sprintf("WIM %s was changed in place while being read: the transfer is stopped, its cached chunks are dropped, and the new version is verified before it is served", e.Path)
}
func (e *ChangedError) Corrupt() bool { return true }

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// DB keeps verdicts across restarts; nil keeps them in memory only.
	DB *verdicts.DB
	// Logger receives one record per verdict; nil means slog.Default().
	Logger *slog.Logger
	// Cache is the chunk cache verification decodes WIM metadata through (the daemon's one
	// shared cache; blobs are checked without it); nil gives each verification a private
	// 32 MiB cache.
	Cache *wim.Cache
	// Pace is how long verification rests per unit of time it works while no request waits
	// for a verdict: 3 (DefaultVerifyPace, what 0 means) lets it use at most a quarter of
	// the time, so that after a mass change (many WIMs replaced at once) requests are not
	// slowed by a queue of verifications on every core. A negative Pace never rests. As
	// soon as a request waits for a verdict (WaitVerified), verification runs at full speed
	// and that WIM goes to the front of the queue.
	Pace float64
}

// DefaultVerifyPace is VerifierOptions.Pace's default.
const DefaultVerifyPace = 3

// paceSlice is the least work between two rests of a paced verification: long enough that a
// rest costs nothing measurable, short enough that requests meanwhile see at most that much
// extra latency.
const paceSlice = 5 * time.Millisecond

// Verifier verifies WIM files in the background, one at a time, and remembers the verdicts
// (see the comment at the top of verify.go). One Verifier serves every Store a daemon makes
// (reloads), so a WIM is verified once whatever the number of stores. Safe for concurrent use.
type Verifier struct {
	db    *verdicts.DB
	log   *slog.Logger
	cache *wim.Cache // VerifierOptions.Cache

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	byID    map[fileID]*verdict
	queue   []*verdict
	wake    chan struct{}
	started bool
	running *verdict
	stats   VerifyStats

	pace    float64       // VerifierOptions.Pace, resolved (0: no rests)
	waiting atomic.Int32  // requests waiting for a verdict now (WaitVerified)
	hurry   chan struct{} // a request started waiting: cut the rest short
	slice   time.Duration // paceSlice (tests: 0)
	worked  time.Time     // start of the work since the last rest (see paced)
	rests   atomic.Int64  // rests taken (tests)

	beforeVerify func(path string) // tests: called before each verification starts
}

// VerifyStats are a Verifier's counters.
type VerifyStats struct {
	Verified   int64   // verifications that found a WIM good, by this process
	Failed     int64   // verifications that found a WIM damaged
	Remembered int64   // verdicts taken from the state file instead of verifying again
	Queued     int     // versions waiting for verification (not counting the running one)
	Running    string  // the WIM being verified ("" when none)
	RunDone    int64   // its bytes verified so far
	RunTotal   int64   // and in all
	Bytes      int64   // bytes (decoded) verified by finished verifications
	Seconds    float64 // time they took
}

// NewVerifier returns a Verifier; Close stops its work.
func NewVerifier(opts VerifierOptions) *Verifier {
	ctx, cancel := context.WithCancel(context.Background())
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	pace := opts.Pace
	switch {
	case pace == 0:
		pace = DefaultVerifyPace
	case pace < 0:
		pace = 0
	}
	return &Verifier{db: opts.DB, log: log, cache: opts.Cache, ctx: ctx, cancel: cancel, byID: map[fileID]*verdict{},
		wake: make(chan struct{}, 1), pace: pace, slice: paceSlice, hurry: make(chan struct{}, 1)}
}

// Close stops the verification in progress (it reaches no verdict) and any later one.
func (v *Verifier) Close() error {
	v.cancel()
	return nil
}

// Stats returns the counters.
func (v *Verifier) Stats() VerifyStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.stats
	st.Queued = len(v.queue)
	if r := v.running; r != nil {
		st.Running, st.RunDone, st.RunTotal = r.path, r.doneBytes.Load(), r.total.Load()
	}
	return st
}

// verdict is what is known of one file version. done is closed once good/err are set.
type verdict struct {
	id   fileID
	guid [16]byte
	path string                  // store-relative, for logs
	open func() (fs.File, error) // opens the file again for verification
	v    *Verifier

	done  chan struct{}
	good  bool
	err   error        // when !good: *VerifyError, or why no verdict was reached
	hooks []func(bool) // called with good once done (under Verifier.mu until done)
	kept  bool         // from the state file

	doneBytes, total atomic.Int64 // progress while running
}

// finished reports whether the verdict is known, and if so whether it is good.
func (vd *verdict) finished() (known, good bool) {
	select {
	case <-vd.done:
		return true, vd.good
	default:
		return false, false
	}
}

func (vd *verdict) wait(ctx context.Context) error {
	if known, _ := vd.finished(); !known && vd.v != nil {
		vd.v.waiting.Add(1)
		defer vd.v.waiting.Add(-1)
		vd.v.urge(vd)
	}
	select {
	case <-vd.done:
		if vd.good {
			return nil
		}
		return vd.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readGUID reads a WIM header's GUID (pipable WIMs repeat the header at the end; its GUID
// is the same). A file that is not a WIM has none: its verification will say why.
func readGUID(r io.ReaderAt) [16]byte {
	var b [0x28]byte
	var g [16]byte
	if _, err := r.ReadAt(b[:], 0); err == nil {
		copy(g[:], b[0x18:0x28])
	}
	return g
}

// track returns the verdict of the file version id (store path name, readable through r),
// from memory, from the state file, or a new pending one queued for verification.
func (v *Verifier) track(name string, id fileID, r io.ReaderAt, open func() (fs.File, error)) *verdict {
	v.mu.Lock()
	if vd, ok := v.byID[id]; ok {
		v.mu.Unlock()
		return vd
	}
	v.mu.Unlock()
	vd := &verdict{id: id, guid: readGUID(r), path: name, open: open, done: make(chan struct{}), v: v}
	var rec verdicts.Verdict
	var found bool
	if v.db != nil && id.full {
		var err error
		if rec, found, err = v.db.Lookup(id.identity(vd.guid)); err != nil {
			v.log.Warn("WIM verdicts: cannot read the state file; verifying again", "wim", name, "error", err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if old, ok := v.byID[id]; ok {
		return old // tracked meanwhile by another request
	}
	v.prune()
	v.byID[id] = vd
	if found {
		vd.good, vd.kept = rec.Good, true
		if !rec.Good {
			vd.err = &VerifyError{Path: name, Checked: rec.Checked, Err: errors.New(rec.Problem)}
		}
		close(vd.done)
		v.stats.Remembered++
		if !rec.Good {
			v.log.Error("WIM failed verification earlier and has not changed since: not served", "wim", name,
				"checked", rec.Checked.UTC().Format(time.RFC3339), "error", rec.Problem)
		}
		return vd
	}
	v.queue = append(v.queue, vd)
	if !v.started {
		v.started = true
		go v.run()
	}
	select {
	case v.wake <- struct{}{}:
	default:
	}
	return vd
}

// prune forgets finished verdicts when too many versions are tracked (they are in the state
// file). Called locked.
func (v *Verifier) prune() {
	if len(v.byID) < 4096 {
		return
	}
	for id, vd := range v.byID {
		if known, _ := vd.finished(); known {
			delete(v.byID, id)
		}
	}
}

// urge moves vd to the front of the queue (a request waits for it) and ends a rest.
func (v *Verifier) urge(vd *verdict) {
	v.mu.Lock()
	if i := slices.Index(v.queue, vd); i > 0 {
		copy(v.queue[1:i+1], v.queue[:i])
		v.queue[0] = vd
	}
	v.mu.Unlock()
	select {
	case v.hurry <- struct{}{}:
	default:
	}
}

// paced rests, when verification has worked paceSlice or more since its last rest and no
// request waits for a verdict, for Pace times as long as it worked. It runs on the run
// goroutine between verifications, and during one from its progress reports (the wim
// package makes them one at a time, so a rest holds the other decoding workers at their next
// report).
func (v *Verifier) paced() {
	if v.pace == 0 {
		return
	}
	work := time.Since(v.worked)
	if work < v.slice {
		return
	}
	if v.waiting.Load() == 0 {
		select {
		case <-v.hurry: // a wait that has ended since, or one still on: checked next
		default:
		}
		if v.waiting.Load() == 0 {
			v.rests.Add(1)
			t := time.NewTimer(time.Duration(float64(work) * v.pace))
			select {
			case <-t.C:
			case <-v.hurry:
			case <-v.ctx.Done():
			}
			t.Stop()
		}
	}
	v.worked = time.Now()
}

func (v *Verifier) run() {
	v.worked = time.Now()
	for {
		v.mu.Lock()
		var vd *verdict
		if len(v.queue) > 0 {
			vd = v.queue[0]
			v.queue = v.queue[1:]
		}
		v.running = vd
		v.mu.Unlock()
		if vd == nil {
			select {
			case <-v.wake:
				v.worked = time.Now() // idle time is no work
				continue
			case <-v.ctx.Done():
				return
			}
		}
		v.verify(vd)
		if v.ctx.Err() != nil {
			return
		}
		v.paced()
	}
}

// verify verifies one file version and records the verdict.
func (v *Verifier) verify(vd *verdict) {
	if v.beforeVerify != nil {
		v.beforeVerify(vd.path)
	}
	start := time.Now()
	good, err := v.check(vd)
	took := time.Since(start)
	if v.ctx.Err() != nil {
		return // shutting down: no verdict
	}
	var changed *ChangedError
	stale := errors.As(err, &changed)
	if !good && !stale {
		err = &VerifyError{Path: vd.path, Checked: time.Now(), Err: err}
	}
	if !stale && v.db != nil && vd.id.full {
		rec := verdicts.Verdict{Identity: vd.id.identity(vd.guid), Path: vd.path, Good: good, Checked: time.Now(), Took: took}
		if err != nil {
			rec.Problem = errors.Unwrap(err).Error()
		}
		if perr := v.db.Put(rec); perr != nil {
			v.log.Warn("WIM verdicts: cannot write the state file; the WIM is verified again after a restart", "wim", vd.path, "error", perr)
		}
	}
	mb := float64(vd.id.size) / (1 << 20)
	switch {
	case stale:
		v.log.Warn("WIM changed while it was verified: the new version is verified when next seen", "wim", vd.path)
	case good:
		v.log.Info("WIM verified", "wim", vd.path, "mib", int64(mb), "took", took.Round(time.Millisecond),
			"mib_per_s", int64(mb/max(took.Seconds(), 1e-3)))
	default:
		v.log.Error("WIM failed verification: it is not served until the file changes", "wim", vd.path, "error", errors.Unwrap(err), "took", took.Round(time.Millisecond))
	}
	v.mu.Lock()
	vd.good, vd.err = good, err
	hooks := vd.hooks
	vd.hooks = nil
	close(vd.done)
	switch {
	case stale:
		delete(v.byID, vd.id) // that version is gone
	case good:
		v.stats.Verified++
	default:
		v.stats.Failed++
	}
	if !stale {
		v.stats.Bytes += vd.total.Load()
		v.stats.Seconds += took.Seconds()
	}
	v.running = nil
	v.mu.Unlock()
	for _, fn := range hooks {
		fn(good)
	}
}

// check opens the file again, makes sure it is still the version vd names, verifies it, and
// makes sure it was still that version at the end.
func (v *Verifier) check(vd *verdict) (bool, error) {
	f, err := vd.open()
	if err != nil {
		return false, &ChangedError{Path: vd.path} // removed or replaced since
	}
	defer f.Close()
	osf, ok := f.(*os.File)
	if !ok {
		return false, fmt.Errorf("%s: not a local file", vd.path)
	}
	if id, err := fstatIdentity(osf); err != nil || id != vd.id {
		return false, &ChangedError{Path: vd.path}
	}
	cache := v.cache
	if cache == nil {
		cache = wim.NewCache(32 << 20)
	}
	a, err := wim.Open(osf, vd.id.size, &wim.Options{Cache: cache, Name: vd.path})
	if err == nil {
		err = a.Verify(v.ctx, func(done, total int64) {
			vd.doneBytes.Store(done)
			vd.total.Store(total)
			v.paced()
		})
	}
	if id, serr := fstatIdentity(osf); serr != nil || id != vd.id {
		return false, &ChangedError{Path: vd.path}
	}
	return err == nil, err
}

// guardedWIM is a WIM file of the store as the Store hands it out (served whole, or read by
// a wim.Archive): reads fail once the file was written in place or found damaged, and it
// tells servers what is known of its bytes (Verified, WaitVerified, FullReadChecked).
type guardedWIM struct {
	f    *os.File
	path string
	id   fileID
	vd   *verdict
	v    *Verifier

	changed  atomic.Bool
	mu       sync.Mutex
	onChange func() // called once, when a change is first seen
	fired    bool
}

func (g *guardedWIM) Stat() (fs.FileInfo, error) { return g.f.Stat() }
func (g *guardedWIM) Close() error               { return g.f.Close() }

func (g *guardedWIM) Seek(off int64, whence int) (int64, error) { return g.f.Seek(off, whence) }

func (g *guardedWIM) Read(p []byte) (int, error) {
	if err := g.usable(); err != nil {
		return 0, err
	}
	n, err := g.f.Read(p)
	if cerr := g.after(); cerr != nil {
		return 0, cerr
	}
	return n, err
}

func (g *guardedWIM) ReadAt(p []byte, off int64) (int, error) {
	if err := g.usable(); err != nil {
		return 0, err
	}
	n, err := g.f.ReadAt(p, off)
	if cerr := g.after(); cerr != nil {
		return 0, cerr
	}
	return n, err
}

// usable fails when a change was seen. A WIM found damaged is still read: its streams are
// checked against their SHA-1s whenever read whole (an undamaged file of it still boots);
// what needs the verdict (ranges, the WIM file served whole) asks WaitVerified.
func (g *guardedWIM) usable() error {
	if g.changed.Load() {
		return &ChangedError{Path: g.path}
	}
	return nil
}

// after checks, once a read returned, that the file still holds the bytes that were opened: a
// write moves the mtime before its bytes can be read, so a read that could have seen new bytes
// is caught here. (A writer that sets the mtime back afterwards, rsync -t --inplace, is caught
// by the next open instead, through the ctime.)
func (g *guardedWIM) after() error {
	id, err := fstatIdentity(g.f)
	if err == nil && id.sameBytes(g.id) {
		return nil
	}
	g.markChanged()
	return &ChangedError{Path: g.path}
}

func (g *guardedWIM) markChanged() {
	g.changed.Store(true)
	g.mu.Lock()
	fn := g.onChange
	first := !g.fired
	g.fired = true
	g.mu.Unlock()
	if first {
		g.v.log.Warn("WIM changed in place while open: transfers of it are stopped and it is verified again", "wim", g.path)
		if fn != nil {
			fn()
		}
	}
}

// setOnChange sets what to do when a change is seen (at once if one was seen already).
func (g *guardedWIM) setOnChange(fn func()) {
	g.mu.Lock()
	g.onChange = fn
	fired := g.fired
	g.mu.Unlock()
	if fired {
		fn()
	}
}

// Verified reports whether this version of the WIM was verified good and has not changed.
func (g *guardedWIM) Verified() bool {
	known, good := g.vd.finished()
	return known && good && !g.changed.Load()
}

// WaitVerified waits for the verdict on this version (see wim.Verdict).
func (g *guardedWIM) WaitVerified(ctx context.Context) error {
	if err := g.usable(); err != nil {
		return err
	}
	if err := g.vd.wait(ctx); err != nil {
		return err
	}
	return g.usable()
}

// FullReadChecked is false: nothing checks a read of the whole WIM file against a checksum.
func (g *guardedWIM) FullReadChecked() bool { return false }

// newOpenWIM makes the openWIM of a WIM the store opened; when its file is guarded, a change
// in place closes it for new requests and drops its decoded chunks from the cache (readers
// still holding it fail their next read of the file).
func (s *Store) newOpenWIM(key string, id fileID, arch *wim.Archive, closer io.Closer, st fs.FileInfo) *openWIM {
	ow := &openWIM{arch: arch, closer: closer, size: st.Size(), mtime: st.ModTime(), id: id}
	g, ok := closer.(*guardedWIM)
	if !ok {
		return ow
	}
	ow.guard = g
	g.setOnChange(func() { s.dropWIM(key, ow) })
	return ow
}

// current reports whether ow may serve the file version id: same version (size and mtime,
// and on Linux device, inode and ctime), not written in place since it was opened.
func (ow *openWIM) current(id fileID) bool {
	return ow.id == id && (ow.guard == nil || ow.guard.usable() == nil)
}

// dropWIM closes ow for new requests (when it is still the open version of key) and drops its
// decoded chunks from the cache.
func (s *Store) dropWIM(key string, ow *openWIM) {
	s.mu.Lock()
	if s.wims[key] == ow {
		s.evict(key)
	}
	s.mu.Unlock()
	s.cache.Forget(ow.arch)
}

// guard wraps a WIM file of the store in a guardedWIM (f is returned as is when it is not a
// local regular file). With refuseBad, a version known to be damaged is refused: the WIM file
// itself is never served once known damaged (nothing checks a whole-file read), while a
// damaged WIM is still opened for its images (their streams are checked when read whole).
func (s *Store) guard(name string, f fs.File, refuseBad bool) (fs.File, error) {
	osf, ok := f.(*os.File)
	if !ok || s.verifier == nil {
		return f, nil
	}
	fi, err := osf.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return f, nil
	}
	id := statIdentity(fi)
	rootFS := s.rootFS
	vd := s.verifier.track(name, id, osf, func() (fs.File, error) { return rootFS.Open(name) })
	if known, good := vd.finished(); known && !good && refuseBad {
		f.Close()
		return nil, vd.err
	}
	return &guardedWIM{f: osf, path: name, id: id, vd: vd, v: s.verifier}, nil
}

// VerifyInBackground queues the store's WIM files named (store-relative paths, as the catalog
// lists them; other names are ignored) for verification unless their current version has a
// verdict, and returns at once. A no-op without Options.Verifier.
func (s *Store) VerifyInBackground(names []string) {
	if s.verifier == nil {
		return
	}
	var wims []string
	for _, n := range names {
		if isWIMName(n) && fs.ValidPath(n) {
			wims = append(wims, n)
		}
	}
	if len(wims) == 0 {
		return
	}
	go func() {
		for _, n := range wims {
			f, err := s.rootFS.Open(n)
			if err != nil {
				continue
			}
			if g, err := s.guard(n, f, false); err == nil {
				g.Close()
			}
		}
	}()
}
