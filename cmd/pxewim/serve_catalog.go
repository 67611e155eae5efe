package main

import (
	"context"
	"io/fs"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/imagestore"
	"github.com/pxewim/pxewim/wim"
)

// catalogScanBudget bounds the scan a start or reload waits for: a large remote store over a
// slow link is left to the watcher's polls instead (the menu gains its images then).
const catalogScanBudget = 20 * time.Second

// catalogOptions: every entry kind's scanner, decoding WIM metadata through cache (the
// daemon's one chunk cache, or pxewim check's).
func catalogOptions(cache *wim.Cache) *catalog.Options {
	return &catalog.Options{Scanners: catalogScanners(), Cache: cache}
}

// catalogScanners is the catalog's WIM and ISO scanners (an ISO's WIMs are listed like bare
// ones) plus the disk images, which are listed by name and size only (so a dropped .img
// changes the snapshot and the menu).
func catalogScanners() map[string]catalog.Scanner {
	disk := func(_ fs.FS, f *catalog.File) []catalog.File { f.Kind = boot.KindDiskImage; return nil }
	return map[string]catalog.Scanner{".wim": catalog.ScanWIM, ".img": disk, ".ima": disk, ".iso": catalog.ScanISO}
}

// catalogFor returns the catalog of cfg's store: the watcher's snapshot when it already watches
// that store, else a fresh scan. The returned function makes the watcher follow the new store;
// the caller calls it once the state built from the snapshot is accepted, so a reload that
// fails leaves the old store watched, and one that names another folder or URL moves the
// watcher there (the old store is no longer polled).
func (d *daemon) catalogFor(cfg *boot.Config, st *imagestore.Store) (*catalog.Snapshot, func()) {
	if d.catalog == nil {
		d.catalog = catalog.New(d.catalogOpts(cfg), d.log) // serve_catalog_saved.go
	}
	var tg struct {
		fsys     fs.FS
		label    string
		interval time.Duration
	}
	tg.fsys, tg.label, tg.interval = st.CatalogView()
	if d.catalog.Label() == tg.label {
		return d.catalog.Snapshot(), func() {}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), catalogScanBudget)
	defer cancel()
	snap, err := catalog.ScanFS(ctx, tg.fsys, tg.label, d.catalogOpts(cfg))
	if err != nil {
		d.log.Warn("catalog: cannot scan the store now; its images join the menu once a poll has read it",
			"store", tg.label, "error", err, "next_poll", tg.interval)
		snap = &catalog.Snapshot{}
	} else {
		d.log.Info("catalog: store scanned", "store", tg.label, "files", len(snap.Files), "read", snap.Read,
			"windowspe_images", len(snap.WindowsPE()), "took", time.Since(start).Round(time.Millisecond))
	}
	return snap, func() {
		if old := d.catalog.Label(); old != "" {
			d.log.Info("catalog: the store changed: watching the new one", "old", old, "new", tg.label)
		}
		d.catalog.Follow(tg.fsys, tg.label, tg.interval, snap)
	}
}

// scanCatalog scans cfg's store once (pxewim check), decoding WIM metadata through cache.
func scanCatalog(st *imagestore.Store, cache *wim.Cache) (*catalog.Snapshot, error) {
	fsys, label, _ := st.CatalogView()
	return catalog.ScanFS(context.Background(), fsys, label, catalogOptions(cache))
}
