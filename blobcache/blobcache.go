// Package blobcache is a cache on disk of decoded blobs (the streams of files inside WIMs),
// named by their SHA-1, so that a file read often from inside a compressed WIM is decoded once
// and then served from a plain file: HTTP with sendfile, TFTP with preads.
//
// Every cached file holds exactly the bytes whose SHA-1 is its name. A fill hashes what it
// writes and keeps the file only when the SHA-1 and size match; it writes a temporary file in
// the cache folder, fsyncs it and renames it into place, so a crash leaves a temporary file
// (removed at the next start), never a wrong cached file. The folder is bounded by a budget in
// bytes: before a fill writes, least recently used blobs are removed until it fits. Use order
// lives in memory and is kept across restarts through the files' mtimes, which the cache moves
// forward when a blob is used (at most once a minute per blob); a restart rescans the folder,
// removes temporary files and files whose name or size is wrong, and orders the rest by mtime.
//
// A cached file is served only once this process knows its bytes are right: after it filled
// it, or, for the files found at start, after a background re-hash on first use (until then
// requests read the WIM). Each hit also compares the file's size, mtime and inode with what
// the cache recorded: a file written behind the cache's back (a changed mtime) or truncated is
// not served, re-hashed in the background, and refilled when wrong.
//
// Fills run in the background, one per blob at a time, on a bounded number of workers with a
// bounded queue and a 1 MiB buffer each: a blob is filled when it is first read in full
// (ReadInFull) or on its HotReads-th read (Used). Requests never wait for a fill: they read
// the WIM until the blob is in. Safe for concurrent use.
package blobcache

import (
	"container/list"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Key is a blob's SHA-1, the WIM blob hash.
type Key [sha1.Size]byte

func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Source reads a blob from the start: the cache calls it from a fill worker, reads to the
// end and closes it. A fill holds nothing of the blob's WIM until it calls its Source.
type Source func() (io.ReadCloser, error)

// Options configures a Cache.
type Options struct {
	// Dir is the cache's own folder; it is created when missing. A folder that holds files
	// but no marker file (MarkerName) is refused: the cache removes files it does not know.
	Dir string
	// Budget bounds the bytes of the cached files (temporary files of running fills
	// included). It must be positive; a blob larger than Budget is never cached.
	Budget int64
	// HotReads is the number of reads (Used: files of the blob opened and read while it was not
	// cached) after which a blob is filled; 0 means DefaultHotReads.
	HotReads int
	// Workers is the number of fills and re-hashes that run at once; 0 means 1.
	Workers int
	// MaxEntries bounds the number of cached files (and so the cache's memory, ~200 bytes
	// each); 0 means DefaultMaxEntries. Beyond it the least recently used go first.
	MaxEntries int
	// Logger receives fills, evictions and damaged files; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultHotReads is Options.HotReads's default: the second read of a blob fills it.
const DefaultHotReads = 2

// DefaultMaxEntries is Options.MaxEntries's default.
const DefaultMaxEntries = 1 << 16

// MarkerName is the file that marks a folder as a blob cache's.
const MarkerName = ".pxewim-blobcache"

const (
	tmpPrefix  = ".tmp-"
	bumpEvery  = time.Minute // least time between two mtime updates of one blob
	queueLen   = 256         // pending fills and re-hashes; more are dropped (asked again later)
	maxCounted = 1 << 16     // blobs whose reads are counted; the counts restart beyond
	bufSize    = 1 << 20
)

// Stats are the cache's counters.
type Stats struct {
	Hits       int64 // opens served from a cached file
	Misses     int64 // opens of blobs not (yet) servable from the cache
	Fills      int64 // blobs written and verified
	FillErrors int64 // fills dropped: the source failed or its bytes did not match the key
	Corrupt    int64 // cached files found damaged (wrong size, changed or wrong bytes) and removed
	Evictions  int64 // cached files removed to stay within the budget
	Dropped    int64 // fills or re-hashes not queued because the queue was full
	Bytes      int64 // bytes of cached files, plus fills in progress
	Entries    int64 // cached files
	Budget     int64
}

// Cache is a blob cache on disk; see the package doc.
type Cache struct {
	dir    string
	budget int64
	hot    int
	maxEnt int
	log    *slog.Logger
	jobs   chan job
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	entries map[Key]*entry
	lru     *list.List // of *entry, most recently used first
	used    int64      // sizes of the entries plus reservations of running fills
	busy    map[Key]bool
	reads   map[Key]int // reads of blobs not cached (Used)
	stats   Stats
	idle    *sync.Cond // signalled when busy empties
}

// entry is one cached file.
type entry struct {
	key      Key
	size     int64
	elem     *list.Element
	id       fileID    // what the file was when last checked or bumped
	prev     fileID    // what it was before the last bump (a hit may have looked at it just before)
	verified bool      // its bytes were hashed (filled or re-checked) by this process
	bumped   time.Time // when its mtime was last moved forward
}

// fileID is what a hit compares to notice a file changed behind the cache.
type fileID struct {
	size  int64
	mtime int64
	ino   uint64
}

type jobKind int

const (
	jobFill jobKind = iota
	jobRecheck
)

type job struct {
	kind jobKind
	key  Key
	size int64
	src  Source // fill: where the bytes come from; recheck: refill with it when damaged (may be nil)
}

// Open starts a cache over opts.Dir: it removes temporary files and files whose name or size is
// wrong, orders the others by mtime and trims them to the budget. Close stops it.
func Open(opts Options) (*Cache, error) {
	if opts.Dir == "" {
		return nil, errors.New("blobcache: no folder given")
	}
	if opts.Budget <= 0 {
		return nil, fmt.Errorf("blobcache: budget %d: must be positive", opts.Budget)
	}
	c := &Cache{dir: opts.Dir, budget: opts.Budget, hot: opts.HotReads, log: opts.Logger,
		jobs: make(chan job, queueLen), entries: map[Key]*entry{}, lru: list.New(),
		busy: map[Key]bool{}, reads: map[Key]int{}}
	c.idle = sync.NewCond(&c.mu)
	if c.hot <= 0 {
		c.hot = DefaultHotReads
	}
	if c.maxEnt = opts.MaxEntries; c.maxEnt <= 0 {
		c.maxEnt = DefaultMaxEntries
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "blobcache")
	if err := c.scan(); err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	workers := max(opts.Workers, 1)
	for range workers {
		c.wg.Go(c.work)
	}
	return c, nil
}

// Close stops the workers (a fill in progress is abandoned and its temporary file removed)
// and waits for them. Files opened from the cache stay readable.
func (c *Cache) Close() error {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	clear(c.busy) // queued jobs will not run: nothing to wait for
	c.idle.Broadcast()
	c.mu.Unlock()
	return nil
}

// Dir returns the cache's folder.
func (c *Cache) Dir() string { return c.dir }

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Bytes, s.Entries, s.Budget = c.used, int64(len(c.entries)), c.budget
	return s
}

// SetBudget changes the budget, removing least recently used blobs beyond it.
func (c *Cache) SetBudget(n int64) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.budget = n
	for c.used > c.budget && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back().Value.(*entry))
		c.stats.Evictions++
	}
}

// SetHotReads changes Options.HotReads (0: the default) for the blobs read from now on.
func (c *Cache) SetHotReads(n int) {
	if n <= 0 {
		n = DefaultHotReads
	}
	c.mu.Lock()
	c.hot = n
	c.mu.Unlock()
}

// Has reports whether blob key is in the cache and known good (for tests and checks).
func (c *Cache) Has(key Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	return e != nil && e.verified
}

// Path is where blob key of size bytes is (or would be) cached.
func (c *Cache) Path(key Key, size int64) string {
	return filepath.Join(c.dir, fileName(key, size))
}

func fileName(key Key, size int64) string { return key.String() + "-" + strconv.FormatInt(size, 10) }

// parseName reads a cached file's name: 40 lower-case hex digits, '-', the size in decimal.
func parseName(name string) (Key, int64, bool) {
	var k Key
	h, sz, ok := strings.Cut(name, "-")
	if !ok || len(h) != 2*sha1.Size || strings.ToLower(h) != h {
		return k, 0, false
	}
	if _, err := hex.Decode(k[:], []byte(h)); err != nil {
		return k, 0, false
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size <= 0 || strconv.FormatInt(size, 10) != sz {
		return k, 0, false
	}
	return k, size, true
}

// Open returns the cached file of blob key (size bytes) opened for reading, or nil when the
// cache cannot serve it now (a caller that then reads the blob elsewhere calls Used). A cached file not yet known good in this process (found at start, or changed
// since) is re-hashed in the background, and refilled from src when wrong. Open never waits
// for a fill or a re-hash.
func (c *Cache) Open(key Key, size int64, src Source) *os.File {
	if size <= 0 {
		return nil
	}
	c.mu.Lock()
	if size > c.budget {
		c.mu.Unlock()
		return nil
	}
	e := c.entries[key]
	if e == nil || !e.verified || e.size != size {
		c.stats.Misses++
		switch {
		case e != nil && e.size != size:
			// Cannot happen for a SHA-1 key unless the caller's size is wrong: serve the WIM.
		case e != nil:
			c.queueLocked(job{kind: jobRecheck, key: key, size: size, src: src})
		}
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(e.elem)
	path := c.Path(key, size)
	c.mu.Unlock()

	f, id, err := openFile(path) // identity_*.go
	if err != nil {
		c.mu.Lock()
		c.stats.Misses++
		if c.entries[key] == e && errors.Is(err, fs.ErrNotExist) {
			c.removeLocked(e) // removed behind the cache's back
			c.stats.Corrupt++
			c.log.Warn("cached blob file vanished", "blob", key.String(), "file", path)
		}
		c.mu.Unlock()
		return nil
	}
	c.mu.Lock()
	if id != e.id && id != e.prev {
		f.Close()
		c.stats.Misses++
		if c.entries[key] == e && e.verified {
			e.verified = false
			c.log.Warn("cached blob file changed behind the cache: checking it again", "blob", key.String(), "file", path)
			c.queueLocked(job{kind: jobRecheck, key: key, size: size, src: src})
		}
		c.mu.Unlock()
		return nil
	}
	c.stats.Hits++
	if c.entries[key] == e && time.Since(e.bumped) >= bumpEvery {
		c.bumpLocked(e, f)
	}
	c.mu.Unlock()
	return f
}

// ReadInFull tells the cache that blob key was read from its first to its last byte: it is
// filled from src now (in the background) unless it is cached or being filled.
func (c *Cache) ReadInFull(key Key, size int64, src Source) {
	if size <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[key] == nil && size <= c.budget {
		c.queueLocked(job{kind: jobFill, key: key, size: size, src: src})
	}
}

// WaitIdle waits until no fill or re-hash is queued or running, or ctx ends (for tests and
// benchmarks that want a warm cache).
func (c *Cache) WaitIdle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.idle.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.busy) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.idle.Wait()
	}
	return nil
}

// Used counts one read of blob key while it is not cached (a file of it opened, missed by
// Open, and read: merely opening a file, to learn its hash for a URL, does not count); the
// HotReads-th queues a fill from src.
func (c *Cache) Used(key Key, size int64, src Source) {
	if size <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy[key] || c.entries[key] != nil || size > c.budget {
		return
	}
	if len(c.reads) >= maxCounted {
		clear(c.reads)
	}
	c.reads[key]++
	if c.reads[key] >= c.hot {
		c.queueLocked(job{kind: jobFill, key: key, size: size, src: src})
	}
}

// queueLocked queues j unless its blob already has a job queued or running.
func (c *Cache) queueLocked(j job) {
	if c.busy[j.key] || (j.kind == jobFill && j.src == nil) || c.ctx.Err() != nil {
		return // already queued, nothing to fill from, or closed
	}
	select {
	case c.jobs <- j:
		c.busy[j.key] = true
		delete(c.reads, j.key)
	default:
		c.stats.Dropped++
	}
}

func (c *Cache) done(key Key) {
	c.mu.Lock()
	delete(c.busy, key)
	if len(c.busy) == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

func (c *Cache) work() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case j := <-c.jobs:
			switch j.kind {
			case jobFill:
				c.fill(j)
			case jobRecheck:
				c.recheck(j)
			}
			c.done(j.key)
		}
	}
}

// fill reads j's blob from its source into a temporary file, and puts it in place when its
// size and SHA-1 match the key.
func (c *Cache) fill(j job) {
	if !c.reserve(j.key, j.size) {
		return
	}
	t0 := time.Now()
	path, err := c.write(j)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.used -= j.size
		if c.ctx.Err() == nil {
			c.stats.FillErrors++
			c.log.Warn("blob not cached", "blob", j.key.String(), "size", j.size, "error", err)
		}
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		c.used -= j.size
		c.stats.FillErrors++
		os.Remove(path)
		return
	}
	e := &entry{key: j.key, size: j.size, id: identity(fi), prev: identity(fi), verified: true, bumped: time.Now()}
	e.elem = c.lru.PushFront(e)
	c.entries[j.key] = e
	c.stats.Fills++
	c.log.Info("blob cached", "blob", j.key.String(), "size", j.size, "duration", time.Since(t0).Round(time.Millisecond))
}

// reserve makes room for size bytes (evicting least recently used blobs) and counts them as
// used; false when the blob is cached already or cannot fit.
func (c *Cache) reserve(key Key, size int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[key] != nil || size > c.budget {
		return false
	}
	for c.used+size > c.budget || len(c.entries) >= c.maxEnt {
		back := c.lru.Back()
		if back == nil {
			return false // the rest is reserved by other fills
		}
		e := back.Value.(*entry)
		c.removeLocked(e)
		c.stats.Evictions++
		c.log.Debug("blob evicted", "blob", e.key.String(), "size", e.size)
	}
	c.used += size
	return true
}

// write copies the blob to a temporary file, checks it, syncs it and renames it into place.
func (c *Cache) write(j job) (string, error) {
	r, err := j.src()
	if err != nil {
		return "", fmt.Errorf("opening its source: %w", err)
	}
	defer r.Close()
	tmp, err := os.CreateTemp(c.dir, tmpPrefix+"*")
	if err != nil {
		return "", err
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if ra, ok := r.(io.ReaderAt); ok && j.size > bufSize {
		if err := c.copyParallel(ra, tmp, j.size); err != nil {
			return "", err
		}
		// The SHA-1 of what was written, read back (from the page cache).
		if _, err := hashFile(c.ctx, tmp.Name(), j.key, j.size); err != nil {
			return "", fmt.Errorf("source bytes: %w", err)
		}
	} else if err := c.copySequential(r, tmp, j.key, j.size); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	path := c.Path(j.key, j.size)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	keep = true
	syncDir(c.dir)
	return path, nil
}

// copySequential copies the blob from r into tmp, hashing it on the way.
func (c *Cache) copySequential(r io.Reader, tmp *os.File, key Key, size int64) error {
	h := sha1.New()
	buf := make([]byte, bufSize)
	var n int64
	for {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		k, rerr := r.Read(buf)
		if k > 0 {
			if n+int64(k) > size {
				return fmt.Errorf("source longer than the blob's %d bytes", size)
			}
			h.Write(buf[:k])
			if _, err := tmp.Write(buf[:k]); err != nil {
				return fmt.Errorf("writing %s: %w", tmp.Name(), err)
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("reading its source at %d: %w", n, rerr)
		}
	}
	if n != size {
		return fmt.Errorf("source gave %d bytes, the blob has %d", n, size)
	}
	if got := Key(h.Sum(nil)); got != key {
		return fmt.Errorf("source bytes have SHA-1 %s", got)
	}
	return nil
}

// fillReaders is how many pieces of one blob a fill reads at once from a source that is an
// io.ReaderAt (a file inside a WIM: each piece decodes its own chunks). A fill competes for
// the CPU with the requests it is meant to relieve, one goroutine among theirs: under a storm
// of 100 clients a single reader took most of the storm to finish. Memory: one bufSize buffer
// per reader.
const fillReaders = 8

// copyParallel copies size bytes of ra into tmp in bufSize pieces, fillReaders at a time.
func (c *Cache) copyParallel(ra io.ReaderAt, tmp *os.File, size int64) error {
	var next atomic.Int64
	errs := make(chan error, fillReaders)
	var wg sync.WaitGroup
	for range min(int64(fillReaders), (size+bufSize-1)/bufSize) {
		wg.Go(func() {
			buf := make([]byte, bufSize)
			for {
				off := next.Add(bufSize) - bufSize
				if off >= size {
					return
				}
				if err := c.ctx.Err(); err != nil {
					errs <- err
					return
				}
				p := buf[:min(bufSize, size-off)]
				k, err := ra.ReadAt(p, off)
				if k < len(p) {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					errs <- fmt.Errorf("reading its source at %d: %w", off+int64(k), err)
					next.Store(size) // the others stop at their next piece
					return
				}
				if _, err := tmp.WriteAt(p, off); err != nil {
					errs <- fmt.Errorf("writing %s: %w", tmp.Name(), err)
					next.Store(size)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when none
}

// syncDir makes a rename in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// recheck hashes a cached file that this process has not verified (found at start, or seen
// changed), and removes it when wrong, refilling it from j.src.
func (c *Cache) recheck(j job) {
	c.mu.Lock()
	e := c.entries[j.key]
	c.mu.Unlock()
	if e == nil || e.size != j.size {
		return
	}
	path := c.Path(j.key, j.size)
	id, err := hashFile(c.ctx, path, j.key, j.size)
	if c.ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	if c.entries[j.key] != e {
		c.mu.Unlock()
		return
	}
	if err == nil {
		e.id, e.prev, e.verified, e.bumped = id, id, true, time.Time{}
		c.mu.Unlock()
		return
	}
	c.removeLocked(e)
	c.stats.Corrupt++
	c.mu.Unlock()
	c.log.Warn("cached blob file damaged: removed, refilling it", "blob", j.key.String(), "file", path, "error", err)
	if j.src != nil {
		c.fill(job{kind: jobFill, key: j.key, size: j.size, src: j.src})
	}
}

// hashFile checks that the file at path has size bytes whose SHA-1 is key, and returns its
// identity from before the read (a write during the read fails the check).
func hashFile(ctx context.Context, path string, key Key, size int64) (fileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileID{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	if fi.Size() != size {
		return fileID{}, fmt.Errorf("size %d, want %d", fi.Size(), size)
	}
	h := sha1.New()
	buf := make([]byte, bufSize)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return fileID{}, err
		}
		k, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		h.Write(buf[:k])
		off += int64(k)
		if err != nil && !(err == io.EOF && off == size) {
			return fileID{}, err
		}
	}
	if got := Key(h.Sum(nil)); got != key {
		return fileID{}, fmt.Errorf("content has SHA-1 %s", got)
	}
	after, err := f.Stat()
	if err != nil || identity(after) != identity(fi) {
		return fileID{}, errors.New("changed while being checked")
	}
	return identity(fi), nil
}

// bumpLocked moves e's file mtime to now, which is how use order survives a restart.
func (c *Cache) bumpLocked(e *entry, f *os.File) {
	now := time.Now()
	e.bumped = now
	path := c.Path(e.key, e.size)
	if err := os.Chtimes(path, time.Time{}, now); err != nil {
		return
	}
	if fi, err := f.Stat(); err == nil && fi.Size() == e.size {
		e.prev, e.id = e.id, identity(fi)
	}
}

// removeLocked drops e and its file. Readers that opened it keep reading it.
func (c *Cache) removeLocked(e *entry) {
	c.lru.Remove(e.elem)
	delete(c.entries, e.key)
	c.used -= e.size
	if err := os.Remove(c.Path(e.key, e.size)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("removing cached blob file", "blob", e.key.String(), "error", err)
	}
}

// scan reads the folder at start (see Open).
func (c *Cache) scan() error {
	if err := os.MkdirAll(c.dir, 0o750); err != nil {
		return fmt.Errorf("blobcache: %w", err)
	}
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("blobcache: %w", err)
	}
	marker := filepath.Join(c.dir, MarkerName)
	if _, err := os.Stat(marker); err != nil {
		if len(des) > 0 {
			return fmt.Errorf("blobcache: %s holds files but no %s marker: give the cache a folder of its own (it removes files it does not know)", c.dir, MarkerName)
		}
		if err := os.WriteFile(marker, []byte("pxewim decoded-blob cache: files here are named by their SHA-1 and size\n"), 0o640); err != nil {
			return fmt.Errorf("blobcache: %w", err)
		}
	}
	type found struct {
		e     *entry
		mtime time.Time
	}
	var all []found
	for _, de := range des {
		name := de.Name()
		if name == MarkerName || de.IsDir() {
			continue
		}
		p := filepath.Join(c.dir, name)
		key, size, ok := parseName(name)
		var fi fs.FileInfo
		if ok && de.Type().IsRegular() {
			fi, err = de.Info()
			ok = err == nil && fi.Size() == size
		} else {
			ok = false
		}
		if !ok {
			if !strings.HasPrefix(name, tmpPrefix) {
				c.log.Warn("removing a file that is not a cached blob", "file", p)
			}
			os.Remove(p)
			continue
		}
		id := identity(fi)
		all = append(all, found{&entry{key: key, size: size, id: id, prev: id, bumped: fi.ModTime()}, fi.ModTime()})
	}
	slices.SortFunc(all, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	for _, f := range all { // oldest first: each push makes it the most recent
		f.e.elem = c.lru.PushFront(f.e)
		c.entries[f.e.key] = f.e
		c.used += f.e.size
	}
	for c.used > c.budget || len(c.entries) > c.maxEnt {
		c.removeLocked(c.lru.Back().Value.(*entry))
		c.stats.Evictions++
	}
	if len(c.entries) > 0 {
		c.log.Info("blob cache found", "dir", c.dir, "blobs", len(c.entries), "bytes", c.used, "budget", c.budget)
	}
	return nil
}
