package catalog

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPollInterval is how often a Watcher looks at a local store when none is given.
const DefaultPollInterval = 2 * time.Second

// RemotePollInterval is a sensible interval for a remote (SFTP) store: each poll lists every
// folder of the store, one round trip each, and a remote store has no change notification.
const RemotePollInterval = 30 * time.Second

// Watcher keeps a Snapshot of a store up to date. It polls (size and mtime of every image file,
// every interval) rather than using inotify: that also works on NFS and SMB mounts, which is
// where admins keep shared image stores, and on remote SFTP stores, and costs one directory
// walk per interval. Only files whose size or mtime changed are read again.
type Watcher struct {
	opts *Options
	bg   *Options // opts for polls and rescans: a background scan (catalog.go, background)
	log  *slog.Logger

	scanMu sync.Mutex // one scan at a time; held while the target changes
	target atomic.Pointer[target]

	cur  atomic.Pointer[Snapshot]
	mu   sync.Mutex
	subs map[int]chan *Snapshot
	next int
	kick chan struct{} // wakes Run when the interval changed
}

// target is the store a Watcher watches.
type target struct {
	fsys     fs.FS
	label    string
	interval time.Duration
}

// NewWatcher scans the local folder root once and returns a watcher holding the result; Run
// keeps it current. interval <= 0 means DefaultPollInterval; log nil means slog.Default().
func NewWatcher(ctx context.Context, root string, opts *Options, interval time.Duration, log *slog.Logger) (*Watcher, error) {
	if _, err := os.Stat(root); err != nil {
		return nil, err
	}
	return NewFSWatcher(ctx, os.DirFS(root), root, opts, interval, log)
}

// NewFSWatcher is NewWatcher for any store whose files are io.ReaderAt (a remote SFTP store:
// use RemotePollInterval). label names the store in logs.
func NewFSWatcher(ctx context.Context, fsys fs.FS, label string, opts *Options, interval time.Duration, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.Default()
	}
	snap, err := ScanFS(ctx, fsys, label, opts)
	if err != nil {
		return nil, err
	}
	w := New(opts, log)
	w.target.Store(newTarget(fsys, label, interval))
	w.cur.Store(snap)
	return w, nil
}

// New returns a watcher of no store yet: Follow or Retarget gives it one, and Run polls it
// from then on. log nil means slog.Default().
func New(opts *Options, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.Default()
	}
	bg := &Options{}
	if opts != nil {
		c := *opts
		bg = &c
	}
	bg.paced = true
	w := &Watcher{opts: opts, bg: bg, log: log, subs: map[int]chan *Snapshot{}, kick: make(chan struct{}, 1)}
	w.cur.Store(&Snapshot{})
	return w
}

func newTarget(fsys fs.FS, label string, interval time.Duration) *target {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	return &target{fsys: fsys, label: label, interval: interval}
}

// Snapshot returns the current catalog.
func (w *Watcher) Snapshot() *Snapshot { return w.cur.Load() }

// Label names the store being watched ("" before New's watcher has one).
func (w *Watcher) Label() string {
	if tg := w.target.Load(); tg != nil {
		return tg.label
	}
	return ""
}

// interval is how long Run waits for the next poll (an hour while there is no store: a
// Follow or Retarget wakes it).
func (w *Watcher) interval() time.Duration {
	if tg := w.target.Load(); tg != nil {
		return tg.interval
	}
	return time.Hour
}

// Subscribe returns a channel that receives each new snapshot after a change (only the latest
// when the reader is slow: the channel holds one), and a function that ends the subscription.
func (w *Watcher) Subscribe() (<-chan *Snapshot, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := w.next
	w.next++
	ch := make(chan *Snapshot, 1)
	w.subs[id] = ch
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.subs, id)
	}
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTimer(w.interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-t.C:
			w.poll(ctx)
		}
		t.Reset(w.interval())
	}
}

// Retarget makes the watcher watch another store (a config reload named another folder or
// URL): the new store is scanned now, its snapshot replaces the old one and goes to
// subscribers, and polls read the new store from then on; the old one is no longer touched.
// When the new store cannot be scanned the watcher still moves to it, with an empty snapshot
// (nothing of the old store may be offered from the new one), and the error is returned;
// polls retry it.
func (w *Watcher) Retarget(ctx context.Context, fsys fs.FS, label string, interval time.Duration) (*Snapshot, error) {
	snap, err := ScanFS(ctx, fsys, label, w.opts)
	if err != nil {
		snap = &Snapshot{}
	}
	w.Follow(fsys, label, interval, snap)
	return snap, err
}

// Follow is Retarget with the scan already done: snap is what the caller found in fsys (with
// the watcher's options), so a reload can build its menu from the new store first and move
// the watcher only once the new configuration is accepted.
func (w *Watcher) Follow(fsys fs.FS, label string, interval time.Duration, snap *Snapshot) {
	w.scanMu.Lock()
	defer w.scanMu.Unlock()
	w.target.Store(newTarget(fsys, label, interval))
	select {
	case w.kick <- struct{}{}:
	default:
	}
	w.publish(snap, "catalog: watching the store", label)
}

// Rescan scans the store now (files whose size and mtime are unchanged are not read again),
// publishes the result and returns it.
func (w *Watcher) Rescan(ctx context.Context) (*Snapshot, error) {
	w.scanMu.Lock()
	defer w.scanMu.Unlock()
	tg := w.target.Load()
	if tg == nil {
		return w.cur.Load(), nil
	}
	snap, err := scanWith(ctx, tg.fsys, tg.label, w.bg, w.cur.Load())
	if err != nil {
		return nil, err
	}
	w.publish(snap, "catalog: store rescanned", tg.label)
	return snap, nil
}

// poll rescans when the list of files, a size or an mtime differs, and tells subscribers.
func (w *Watcher) poll(ctx context.Context) {
	w.scanMu.Lock()
	defer w.scanMu.Unlock()
	tg := w.target.Load()
	if tg == nil {
		return
	}
	old := w.cur.Load()
	files, err := list(ctx, tg.fsys, tg.label, w.opts)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("catalog: store scan failed", "store", tg.label, "error", err)
		}
		return
	}
	if sameStamps(old.storeFiles(), files) && !old.needsRetry() {
		return
	}
	w.log.Info("catalog: store files changed: scanning", "store", tg.label, "files", len(files))
	snap, err := scanListed(ctx, tg.fsys, w.bg, files, old)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("catalog: store scan failed", "store", tg.label, "error", err)
		}
		return
	}
	w.opts.persist(tg.label, snap)
	if reflect.DeepEqual(snap.Files, old.Files) {
		return // a retried file failed the same way again: nothing to tell
	}
	w.publish(snap, "catalog: store changed", tg.label)
}

// publish makes snap current, logs it and hands it to every subscriber. Called with scanMu.
func (w *Watcher) publish(snap *Snapshot, msg, label string) {
	w.cur.Store(snap)
	w.log.Info(msg, "store", label, "files", len(snap.Files), "read", snap.Read, "windowspe_images", len(snap.WindowsPE()))
	for _, p := range snap.Problems() {
		w.log.Warn("catalog: "+p.What, "file", p.File, "index", p.Index, "fix", p.Fix)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.subs {
		select {
		case <-ch: // drop the stale one: only the latest matters
		default:
		}
		ch <- snap
	}
}

func sameStamps(a, b []File) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || a[i].Size != b[i].Size || !a[i].ModTime.Equal(b[i].ModTime) {
			return false
		}
	}
	return true
}
