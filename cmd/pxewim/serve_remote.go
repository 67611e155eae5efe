package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/sftpstore"
)

// remoteStore is the SFTP store (store: sftp://...), opened once and shared by reloads while
// the URL stays the same. When a reload moves to another URL it is retired: it counts the
// files opened through it and closes its connection when the last one is closed.
type remoteStore struct {
	url      string
	sftp     *sftpstore.Store
	verifier *sftpstore.Verifier
	isoWIMs  *isoWIMVerifier // WIMs inside the store's ISOs (serve_remote_iso.go)

	open      atomic.Int64 // files opened through it and not closed yet
	retired   atomic.Bool  // no current state uses it
	closeOnce sync.Once
}

// retire closes the connection now, or when the last open file is closed.
func (r *remoteStore) retire() {
	r.retired.Store(true)
	r.maybeClose()
}

func (r *remoteStore) maybeClose() {
	if r.retired.Load() && r.open.Load() == 0 {
		r.closeOnce.Do(func() { r.sftp.Close() })
	}
}

// openRemoteStore returns the store for an sftp:// URL: sftpstore's remote files seen
// through localstore (WIM and ISO paths, WIM cache), every WIM verified before it is served.
// It reuses the current connection while the URL is the same; a new one becomes current
// only when the caller's config is accepted (reload).
func (d *daemon) openRemoteStore(cfg *boot.Config, opts localstore.Options) (*localstore.Store, *remoteStore, error) {
	rs := d.remote
	if rs == nil || rs.url != cfg.Store {
		if len(cfg.SFTP.KnownHosts) == 0 || len(cfg.SFTP.Keys) == 0 {
			return nil, nil, fmt.Errorf("store %s: the sftp section needs keys and known_hosts (the host key is always checked)", cfg.Store)
		}
		st, err := sftpstore.Open(context.Background(), sftpstore.Config{URL: cfg.Store, KeyFiles: cfg.SFTP.Keys,
			KnownHostsFiles: cfg.SFTP.KnownHosts, CacheBytes: cfg.SFTP.CacheBytes, Logger: d.log})
		if err != nil {
			return nil, nil, fmt.Errorf("remote store: %w", err)
		}
		if rs != nil {
			d.log.Warn("store URL changed: new files come from the new store", "old", rs.url, "new", cfg.Store)
		}
		rs = &remoteStore{url: cfg.Store, sftp: st, verifier: &sftpstore.Verifier{}, isoWIMs: &isoWIMVerifier{}}
		d.log.Info("remote store connected", "url", cfg.Store)
	}
	vfs := &verifiedFS{r: rs}
	opts.CheckISOWIM = rs.isoWIMs.check
	return localstore.NewFS(vfs, cfg.Store, opts), rs, nil
}

// verifiedFS opens a WIM or ESD only after sftpstore.Verifier passed it (every blob's SHA-1,
// once per file version), so no byte of an unverified remote WIM is served or booted. It
// counts open files for remoteStore.retire.
type verifiedFS struct {
	r *remoteStore
}

func (f *verifiedFS) Open(name string) (fs.File, error) {
	if l := strings.ToLower(name); strings.HasSuffix(l, ".wim") || strings.HasSuffix(l, ".esd") {
		if err := f.r.verifier.Check(context.Background(), f.r.sftp, name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("remote WIM failed verification: %w", err)}
		}
	}
	file, err := f.r.sftp.Open(name)
	if err != nil {
		return nil, err
	}
	sf, ok := file.(*sftpstore.File)
	if !ok {
		return file, nil // a folder: holds nothing open on the server
	}
	f.r.open.Add(1)
	return &countedFile{File: sf, r: f.r}, nil
}

// countedFile is a remote file that tells its remoteStore when it is closed.
type countedFile struct {
	*sftpstore.File
	r    *remoteStore
	once sync.Once
}

func (c *countedFile) Close() error {
	c.once.Do(func() {
		c.r.open.Add(-1)
		c.r.maybeClose()
	})
	return nil
}

// Stat and ReadDir pass through: they serve no WIM bytes.
func (f *verifiedFS) Stat(name string) (fs.FileInfo, error)      { return f.r.sftp.Stat(name) }
func (f *verifiedFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.r.sftp.ReadDir(name) }

// checkRemoteStore opens the remote store for pxewim check: it connects, so a wrong key or
// host key shows now. The connection of the one-shot check ends with the process.
func checkRemoteStore(cfg *boot.Config, opts localstore.Options) (*localstore.Store, error) {
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st, _, err := d.openRemoteStore(cfg, opts)
	return st, err
}
