// Package imagestore is the image store a configuration names, a local folder or an sftp:// URL,
// behind one type. It composes localstore (store paths such as tools.wim:1/boot/vmlinuz, WIM and
// ISO opening, the daemon's shared chunk cache), sftpstore (the SFTP connection and its block
// cache) and verification: no byte of a remote WIM, bare or inside an ISO, is served before
// every blob's SHA-1 passed.
//
// The daemon opens one Store per accepted configuration. A reload to the same URL shares the
// SFTP connection; a reload to another URL retires the old one, which closes once the last file
// opened through it is closed, so transfers in progress finish on the bytes they started with.
package imagestore

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/sftpstore"
	"github.com/pxewim/pxewim/wim"
)

// Config says which store to open and how.
type Config struct {
	Location string // a folder, or sftp://user@host[:port]/path
	SFTP     SFTP   // credentials for an sftp:// Location
	// Local configures the store's view; Local.Cache is the chunk cache every WIM the store
	// opens decodes through, the remote store's verification included (the daemon passes its
	// one shared cache; nil: the store makes one of its own).
	Local localstore.Options
	Log   *slog.Logger // nil: discard
}

// SFTP holds what an sftp:// store needs: the host key is always checked.
type SFTP struct {
	Keys       []string // private key files
	KnownHosts []string // OpenSSH known_hosts files holding the server's host key
	CacheBytes int64    // bound of the cache of remote bytes; 0 = sftpstore's default
}

// localCacheBytes is the chunk cache a remote store makes when Config.Local.Cache is nil (as
// localstore does for a folder).
const localCacheBytes = 64 << 20

// IsRemote reports whether location is an sftp:// URL.
func IsRemote(location string) bool { return strings.HasPrefix(strings.ToLower(location), "sftp://") }

// Store is an opened store: its fs.FS (through the embedded localstore.Store) serves every
// file TFTP and HTTP hand out.
type Store struct {
	*localstore.Store
	location string
	conn     *conn // the SFTP connection; nil for a local folder
	// localISOWIMs verifies the WIMs inside a local store's ISOs (iso.go); nil for a remote
	// store (conn.isoWIMs) or a local one without Config.Local.Verifier.
	localISOWIMs *isoWIMVerifier
}

// localVerifier is s's verifier of local ISOs' WIMs, shared by the next local store.
func (s *Store) localVerifier() *isoWIMVerifier {
	if s == nil {
		return nil
	}
	return s.localISOWIMs
}

// Open opens cfg's store. prev is the store of the configuration in effect (nil at start): its
// SFTP connection is shared when the URL is the same, so a reload opens no second connection.
// A store opened for a configuration that is then refused is given back with Discard.
func Open(ctx context.Context, cfg Config, prev *Store) (*Store, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := cfg.Local
	if opts.Cache == nil {
		opts.Cache = wim.NewCache(localCacheBytes)
	}
	if !IsRemote(cfg.Location) {
		// A local store that verifies its WIMs verifies those inside its ISOs too (iso.go),
		// with verdicts kept across reloads.
		var iv *isoWIMVerifier
		if opts.Verifier != nil {
			if iv = prev.localVerifier(); iv == nil {
				iv = &isoWIMVerifier{cache: opts.Cache, log: log, local: true}
			}
			opts.ISOWIMVerdict = iv.background
		}
		st, err := localstore.New(cfg.Location, opts)
		if err != nil {
			return nil, err
		}
		return &Store{Store: st, location: cfg.Location, localISOWIMs: iv}, nil
	}
	c := prev.sharedConn(cfg.Location)
	if c == nil {
		if len(cfg.SFTP.KnownHosts) == 0 || len(cfg.SFTP.Keys) == 0 {
			return nil, fmt.Errorf("store %s: the sftp section needs keys and known_hosts (the host key is always checked)", cfg.Location)
		}
		st, err := sftpstore.Open(ctx, sftpstore.Config{URL: cfg.Location, KeyFiles: cfg.SFTP.Keys,
			KnownHostsFiles: cfg.SFTP.KnownHosts, CacheBytes: cfg.SFTP.CacheBytes, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("remote store: %w", err)
		}
		if prev != nil && prev.conn != nil {
			log.Warn("store URL changed: new files come from the new store", "old", prev.location, "new", cfg.Location)
		}
		c = &conn{url: cfg.Location, sftp: st, verifier: &sftpstore.Verifier{Cache: opts.Cache},
			isoWIMs: &isoWIMVerifier{cache: opts.Cache, log: log}}
		log.Info("remote store connected", "url", cfg.Location)
	}
	opts.CheckISOWIM = c.isoWIMs.check
	return &Store{Store: localstore.NewFS(&verifiedFS{c: c}, cfg.Location, opts), location: cfg.Location, conn: c}, nil
}

// OverFS is a local store over any file system (a test's, or pxewim check's empty stand-in for
// a store it cannot open); location names it.
func OverFS(fsys fs.FS, location string, local localstore.Options) *Store {
	return &Store{Store: localstore.NewFS(fsys, location, local), location: location}
}

// sharedConn is s's connection when it serves url and is not retired.
func (s *Store) sharedConn(url string) *conn {
	if s == nil || s.conn == nil || s.conn.url != url || s.conn.retired.Load() {
		return nil
	}
	return s.conn
}

// Location is the folder or URL the store was opened from.
func (s *Store) Location() string { return s.location }

// Remote reports whether the store is an SFTP store.
func (s *Store) Remote() bool { return s.conn != nil }

// CatalogView is what the catalog scans: the file system (for a remote store the SFTP files
// under the verifying layer: a scan reads only headers, XML, image metadata and ISO folders,
// never whole WIMs, and every byte served still passes verification), a label naming the store
// (a change of label means another store) and how often to poll it (a remote poll lists every
// folder over the network).
func (s *Store) CatalogView() (fsys fs.FS, label string, interval time.Duration) {
	if s.conn != nil {
		return s.conn.sftp, s.location, catalog.RemotePollInterval
	}
	label = s.location
	if abs, err := filepath.Abs(label); err == nil {
		label = abs
	}
	return s.FS(), label, catalog.DefaultPollInterval
}

// Retire hands over to next, the store of the configuration now in effect: s's open WIMs and
// ISOs are released (files already opened keep working), and its SFTP connection, unless next
// shares it, closes once the last file opened through it is closed.
func (s *Store) Retire(next *Store) {
	s.Store.Close()
	if s.conn != nil && (next == nil || next.conn != s.conn) {
		s.conn.retire()
	}
}

// Discard gives back a store opened for a configuration that was refused: what it opened that
// prev (the store still in effect) does not share is closed.
func (s *Store) Discard(prev *Store) {
	s.Store.Close()
	if s.conn != nil && (prev == nil || prev.conn != s.conn) {
		s.conn.retire()
	}
}

// Close closes the store and its connection at once (a one-shot use such as pxewim check).
func (s *Store) Close() error {
	err := s.Store.Close()
	if s.conn != nil {
		s.conn.retire()
	}
	return err
}

// conn is one SFTP connection, shared by the stores of consecutive configurations with the same
// URL. Once retired it counts down the files opened through it and closes with the last one.
type conn struct {
	url      string
	sftp     *sftpstore.Store
	verifier *sftpstore.Verifier
	isoWIMs  *isoWIMVerifier // WIMs inside the store's ISOs (iso.go)

	open      atomic.Int64 // files opened through it and not closed yet
	retired   atomic.Bool  // no current store uses it
	closeOnce sync.Once
	closed    atomic.Bool
}

func (c *conn) retire() {
	c.retired.Store(true)
	c.maybeClose()
}

func (c *conn) maybeClose() {
	if c.retired.Load() && c.open.Load() == 0 {
		c.closeOnce.Do(func() { c.sftp.Close(); c.closed.Store(true) })
	}
}

// verifiedFS opens a WIM or ESD only after sftpstore.Verifier passed it (every blob's SHA-1,
// once per file version), so no byte of an unverified remote WIM is served or booted. It
// counts open files for conn.retire.
type verifiedFS struct {
	c *conn
}

func (f *verifiedFS) Open(name string) (fs.File, error) {
	if l := strings.ToLower(name); strings.HasSuffix(l, ".wim") || strings.HasSuffix(l, ".esd") {
		if err := f.c.verifier.Check(context.Background(), f.c.sftp, name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("remote WIM failed verification: %w", err)}
		}
	}
	file, err := f.c.sftp.Open(name)
	if err != nil {
		return nil, err
	}
	sf, ok := file.(*sftpstore.File)
	if !ok {
		return file, nil // a folder: holds nothing open on the server
	}
	f.c.open.Add(1)
	return &countedFile{File: sf, c: f.c}, nil
}

// Stat and ReadDir pass through: they serve no WIM bytes.
func (f *verifiedFS) Stat(name string) (fs.FileInfo, error)      { return f.c.sftp.Stat(name) }
func (f *verifiedFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.c.sftp.ReadDir(name) }

// countedFile is a remote file that tells its conn when it is closed.
type countedFile struct {
	*sftpstore.File
	c    *conn
	once sync.Once
}

func (cf *countedFile) Close() error {
	cf.once.Do(func() {
		cf.c.open.Add(-1)
		cf.c.maybeClose()
	})
	return nil
}
