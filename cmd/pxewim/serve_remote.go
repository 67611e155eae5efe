package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/sftpstore"
)

// remoteStore is the SFTP store (store: sftp://...), opened once and shared by reloads while
// the URL stays the same.
type remoteStore struct {
	url      string
	sftp     *sftpstore.Store
	verifier *sftpstore.Verifier
	isoWIMs  *isoWIMVerifier // WIMs inside the store's ISOs (serve_remote_iso.go)
}

// openRemoteStore returns the store for an sftp:// URL: sftpstore's remote files seen
// through localstore (WIM and ISO paths, WIM cache), every WIM verified before it is served.
func (d *daemon) openRemoteStore(cfg *boot.Config, opts localstore.Options) (*localstore.Store, error) {
	if d.remote == nil || d.remote.url != cfg.Store {
		if len(cfg.SFTP.KnownHosts) == 0 || len(cfg.SFTP.Keys) == 0 {
			return nil, fmt.Errorf("store %s: the sftp section needs keys and known_hosts (the host key is always checked)", cfg.Store)
		}
		st, err := sftpstore.Open(context.Background(), sftpstore.Config{URL: cfg.Store, KeyFiles: cfg.SFTP.Keys,
			KnownHostsFiles: cfg.SFTP.KnownHosts, CacheBytes: cfg.SFTP.CacheBytes, Logger: d.log})
		if err != nil {
			return nil, fmt.Errorf("remote store: %w", err)
		}
		if d.remote != nil {
			d.log.Warn("store URL changed: new files come from the new store", "old", d.remote.url, "new", cfg.Store)
		}
		d.remote = &remoteStore{url: cfg.Store, sftp: st, verifier: &sftpstore.Verifier{}, isoWIMs: &isoWIMVerifier{}}
		d.log.Info("remote store connected", "url", cfg.Store)
	}
	vfs := &verifiedFS{fsys: d.remote.sftp, v: d.remote.verifier}
	opts.CheckISOWIM = d.remote.isoWIMs.check
	return localstore.NewFS(vfs, cfg.Store, opts), nil
}

// verifiedFS opens a WIM or ESD only after sftpstore.Verifier passed it (every blob's SHA-1,
// once per file version), so no byte of an unverified remote WIM is served or booted.
type verifiedFS struct {
	fsys *sftpstore.Store
	v    *sftpstore.Verifier
}

func (f *verifiedFS) Open(name string) (fs.File, error) {
	if l := strings.ToLower(name); strings.HasSuffix(l, ".wim") || strings.HasSuffix(l, ".esd") {
		if err := f.v.Check(context.Background(), f.fsys, name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("remote WIM failed verification: %w", err)}
		}
	}
	return f.fsys.Open(name)
}

// Stat and ReadDir pass through: they serve no WIM bytes.
func (f *verifiedFS) Stat(name string) (fs.FileInfo, error)      { return f.fsys.Stat(name) }
func (f *verifiedFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.fsys.ReadDir(name) }

// checkRemoteStore opens the remote store for pxewim check: it connects, so a wrong key or
// host key shows now. The connection of the one-shot check ends with the process.
func checkRemoteStore(cfg *boot.Config, opts localstore.Options) (*localstore.Store, error) {
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return d.openRemoteStore(cfg, opts)
}
