package catalog

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPollInterval is how often a Watcher looks at the store when none is given.
const DefaultPollInterval = 2 * time.Second

// Watcher keeps a Snapshot of a store up to date. It polls (size and mtime of every image file,
// every interval) rather than using inotify: that also works on NFS and SMB mounts, which is
// where admins keep shared image stores, and costs one directory walk per interval. Only files
// whose size or mtime changed are read again.
type Watcher struct {
	root     string
	opts     *Options
	interval time.Duration
	log      *slog.Logger

	cur  atomic.Pointer[Snapshot]
	mu   sync.Mutex
	subs map[int]chan *Snapshot
	next int
}

// NewWatcher scans root once and returns a watcher holding the result; Run keeps it current.
// interval <= 0 means DefaultPollInterval; log nil means slog.Default().
func NewWatcher(ctx context.Context, root string, opts *Options, interval time.Duration, log *slog.Logger) (*Watcher, error) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	if log == nil {
		log = slog.Default()
	}
	snap, err := Scan(ctx, root, opts)
	if err != nil {
		return nil, err
	}
	w := &Watcher{root: root, opts: opts, interval: interval, log: log, subs: map[int]chan *Snapshot{}}
	w.cur.Store(snap)
	return w, nil
}

// Snapshot returns the current catalog.
func (w *Watcher) Snapshot() *Snapshot { return w.cur.Load() }

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
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll(ctx)
		}
	}
}

// poll rescans when the list of files, a size or an mtime differs, and tells subscribers.
func (w *Watcher) poll(ctx context.Context) {
	old := w.cur.Load()
	files, err := list(w.root, w.opts)
	if err != nil {
		w.log.Warn("catalog: store scan failed", "store", w.root, "error", err)
		return
	}
	if sameStamps(old.Files, files) {
		return
	}
	prev := map[string]File{}
	for _, f := range old.Files {
		prev[f.Path] = f
	}
	snap, err := scanWith(ctx, w.root, w.opts, prev)
	if err != nil {
		w.log.Warn("catalog: store scan failed", "store", w.root, "error", err)
		return
	}
	w.cur.Store(snap)
	w.log.Info("catalog: store changed", "store", w.root, "files", len(snap.Files), "windowspe_images", len(snap.WindowsPE()))
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
