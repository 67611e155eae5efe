package main

// Verification of the WIMs the Setup share hands out from a local or remote (sftp://) store.
// The share's view reads each ISO's tree itself (serve_smb.go), not through the store's Open,
// which verifies the WIMs inside an ISO (before their first byte on a remote store, in the
// background with the last byte held on a local one); so the view asks the store for a guard per
// ISO version (imagestore.ISOGuard; nil for a store that does not verify its WIMs). With a guard:
//   - when the view first shows the ISO, every .wim, .esd and split .swm set in it is verified
//     in the background, one after the other (every image's metadata, every blob's SHA-1), so
//     the verdict is in long before WinPE has booted and maps the share;
//   - every read of such a file waits for its verdict; a file that failed is never read: the
//     read fails (storefuse answers EIO, smbd passes an I/O error to the client), so Setup stops
//     with an error instead of installing from damaged bytes; a verification that could not
//     finish (the SFTP connection gave up) fails the reads waiting for it and runs again at the
//     next read (imagestore.IsDamage tells the two apart);
//   - the failure is logged once with the ISO, the share folder and the file, and
//     pxewim_setup_share_damaged_file{file="FOLDER/sources/install.wim"} is 1 on /metrics.
// The verdicts are the store's own (one per ISO version, shared with the HTTP path), and the
// bytes read after a pass are the bytes verified (sftpstore pins every block it fetched by hash;
// a local ISO written in place is not guarded against, as for the HTTP path).

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/pxewim/pxewim/imagestore"
	"github.com/pxewim/pxewim/iso"
)

// isoGuarder is the store that verifies the WIMs inside its ISOs (imagestore.Store).
type isoGuarder interface {
	GuardISO(isoPath string, fi fs.FileInfo, tree fs.FS) *imagestore.ISOGuard
}

// isoVerification is the guard of one open ISO of the view, and the files that failed.
type isoVerification struct {
	guard   *imagestore.ISOGuard
	stop    context.CancelFunc // ends the background verification when the ISO is retired
	damaged sync.Map           // path inside the ISO -> error
}

// newISOHandle opens a view handle on the ISO m of store (f and tree already opened) and, when
// the store guards its ISOs, starts verifying the ISO's WIMs in the background.
func newISOHandle(store fs.FS, m setupMedia, f fs.File, tree *iso.FS, log *slog.Logger) *isoHandle {
	h := &isoHandle{fs: tree, file: f}
	gs, ok := store.(isoGuarder)
	if !ok {
		return h
	}
	fi, err := f.Stat()
	if err != nil {
		return h
	}
	g := gs.GuardISO(m.ISO, fi, tree)
	if g == nil {
		return h
	}
	ctx, stop := context.WithCancel(context.Background())
	h.verify = &isoVerification{guard: g, stop: stop}
	if !h.acquire() { // the file stays open while it is verified
		return h
	}
	go func() {
		defer h.release()
		log.Info("setup: verifying the WIMs of an ISO before the share serves them", "iso", m.ISO, "folder", m.Folder)
		failed := g.VerifyAll(ctx)
		names := make([]string, 0, len(failed))
		for n := range failed {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if !imagestore.IsDamage(failed[n]) {
				log.Warn("setup: a WIM of the share could not be verified: reads of it fail, and it is verified again at the next read",
					"iso", m.ISO, "folder", m.Folder, "file", n, "error", failed[n])
				continue
			}
			h.verify.damaged.Store(n, failed[n])
			log.Error("setup: a WIM of the share failed verification: reads of it fail until the ISO changes",
				"iso", m.ISO, "folder", m.Folder, "file", n, "error", failed[n])
		}
		if len(failed) == 0 && ctx.Err() == nil {
			log.Info("setup: the WIMs of an ISO passed verification", "iso", m.ISO, "folder", m.Folder)
		}
	}()
	return h
}

// guarded wraps a file opened in the ISO so that its reads wait for its verdict.
func (v *isoVerification) guarded(name string, f *heldFile) fs.File {
	if v == nil || !v.guard.Covers(name) {
		return f
	}
	return &verifiedFile{heldFile: f, v: v, name: name}
}

func (v *isoVerification) retire() {
	if v != nil {
		v.stop()
	}
}

// damagedFiles lists the files of the ISO that failed verification.
func (v *isoVerification) damagedFiles() []string {
	if v == nil {
		return nil
	}
	var out []string
	v.damaged.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	sort.Strings(out)
	return out
}

// verifiedFile is a WIM file of a guarded ISO: reads wait for its verdict and fail if it is bad.
type verifiedFile struct {
	*heldFile
	v    *isoVerification
	name string
	ok   atomic.Bool
}

func (f *verifiedFile) check() error {
	if f.ok.Load() {
		return nil
	}
	if err := f.v.guard.Check(context.Background(), f.name); err != nil {
		if imagestore.IsDamage(err) {
			f.v.damaged.Store(f.name, err)
		}
		return err
	}
	f.ok.Store(true)
	return nil
}

func (f *verifiedFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.heldFile.ReadAt(p, off)
}

func (f *verifiedFile) Read(p []byte) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.heldFile.Read(p)
}

var _ io.ReaderAt = (*verifiedFile)(nil)

// damaged lists the share's files that failed verification, as FOLDER/path.
func (v *setupView) damaged() []string {
	var out []string
	if m := v.cur.Load(); m != nil {
		for _, vi := range m.byName {
			for _, n := range vi.h.verify.damagedFiles() {
				out = append(out, vi.media.Folder+"/"+n)
			}
		}
	}
	sort.Strings(out)
	return out
}
