package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/upload"
	"golang.org/x/crypto/ssh"
)

// syslinuxDir is the folder served as "syslinux/" (memdisk for memdisk and iso entries), or ""
// when it does not exist: the log then says what memdisk entries need.
func (d *daemon) syslinuxDir(cfg *boot.Config) string {
	dir := existingDir(cfg.Images.SyslinuxDir)
	if dir == "" && cfg.Images.SyslinuxDir != "" {
		d.log.Warn("syslinux folder missing: memdisk entries (DOS floppy and disk images) cannot boot; install Debian's syslinux-common or set images.syslinux",
			"dir", cfg.Images.SyslinuxDir)
	}
	return dir
}

// existingDir returns dir if it is a folder, else "".
func existingDir(dir string) string {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return ""
	}
	return dir
}

// serveUpload runs the embedded SFTP upload server (upload: section of the config loaded at
// start; changing it needs a restart) until ctx ends; with upload off it only waits for ctx. Each published image triggers a rescan,
// so it is in the iPXE menu as soon as the client's close returns.
func (d *daemon) serveUpload(ctx context.Context) error {
	st := d.cur.Load()
	u := st.base.Upload
	if u.Listen == "" {
		// run stops every server when any returns, so an unused one waits for the end too.
		<-ctx.Done()
		return nil
	}
	if st.base.RemoteStore() {
		return fmt.Errorf("upload server: the store is remote (%s); uploads go to a local store folder: run the upload server on the central image server", st.base.Store)
	}
	srv, err := upload.New(upload.Config{Addr: u.Listen, HostKeyPath: u.HostKey, AuthorizedKeysPath: u.AuthorizedKeys,
		StoreDir: st.base.Store, Logger: d.log, MaxBytes: u.MaxBytes, MinFreeBytes: u.UploadMinFree(), Cache: d.cache,
		OnPublish: func(name string) { d.rescan("upload published " + name) }})
	if err != nil {
		return fmt.Errorf("upload server: %w", err)
	}
	defer srv.Close()
	d.log.Info("upload server (SFTP) listening", "addr", u.Listen, "authorized_keys", u.AuthorizedKeys, "host_key", ssh.FingerprintSHA256(srv.HostKey()))
	if err := srv.ListenAndServe(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("upload server on %s: %w", u.Listen, err)
	}
	return nil
}

// rescan scans the store now (not at the catalog's next poll) and rebuilds the menu.
func (d *daemon) rescan(why string) {
	if d.catalog == nil {
		d.reload(why)
		return
	}
	if _, err := d.catalog.Rescan(context.Background()); err != nil {
		d.log.Error("store rescan failed", "why", why, "error", err)
		return
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	snap := d.catalog.Snapshot() // the newest: a reload may have moved the catalog meanwhile
	cur := d.cur.Load()
	st, err := d.buildState(cur.base, cur.store, snap, true)
	if err != nil {
		d.log.Error("store rescanned but the menu could not be rebuilt", "why", why, "error", err)
		return
	}
	d.install(st)
	d.log.Info("store rescanned: menu rebuilt", "why", why, "entries", len(st.cfg.Entries))
}
