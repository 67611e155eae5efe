package main

import (
	"context"
	"io/fs"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/localstore"
)

// catalogTarget is the store the catalog scans for one configuration.
type catalogTarget struct {
	fsys     fs.FS
	label    string // absolute folder or sftp:// URL: a change means another store
	interval time.Duration
}

// catalogTargetOf is the store folder, or for a remote store the SFTP file system under the
// verifying layer: a scan reads only headers, XML, image metadata and ISO directories (never
// whole WIMs), and every byte served still passes verification. A remote store is polled
// less often: each poll lists every folder over the network.
func catalogTargetOf(cfg *boot.Config, store *localstore.Store) catalogTarget {
	if v, ok := store.FS().(*verifiedFS); ok {
		return catalogTarget{fsys: v.r.sftp, label: cfg.Store, interval: catalog.RemotePollInterval}
	}
	return catalogTarget{fsys: store.FS(), label: absPath(cfg.Store), interval: catalog.DefaultPollInterval}
}

// catalogScanBudget bounds the scan a start or reload waits for: a large remote store over a
// slow link is left to the watcher's polls instead (the menu gains its images then).
const catalogScanBudget = 20 * time.Second

func catalogOptions() *catalog.Options {
	return &catalog.Options{Scanners: boot.CatalogScanners()}
}

// catalogFor returns the catalog of cfg's store: the watcher's snapshot when it already watches
// that store, else a fresh scan. The returned function makes the watcher follow the new store;
// the caller calls it once the state built from the snapshot is accepted, so a reload that
// fails leaves the old store watched, and one that names another folder or URL moves the
// watcher there (the old store is no longer polled).
func (d *daemon) catalogFor(cfg *boot.Config, store *localstore.Store) (*catalog.Snapshot, func()) {
	if d.catalog == nil {
		d.catalog = catalog.New(catalogOptions(), d.log)
	}
	tg := catalogTargetOf(cfg, store)
	if d.catalog.Label() == tg.label {
		return d.catalog.Snapshot(), func() {}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), catalogScanBudget)
	defer cancel()
	snap, err := catalog.ScanFS(ctx, tg.fsys, tg.label, catalogOptions())
	if err != nil {
		d.log.Warn("catalog: cannot scan the store now; its images join the menu once a poll has read it",
			"store", tg.label, "error", err, "next_poll", tg.interval)
		snap = &catalog.Snapshot{}
	} else {
		d.log.Info("catalog: store scanned", "store", tg.label, "files", len(snap.Files),
			"windowspe_images", len(snap.WindowsPE()), "took", time.Since(start).Round(time.Millisecond))
	}
	return snap, func() {
		if old := d.catalog.Label(); old != "" {
			d.log.Info("catalog: the store changed: watching the new one", "old", old, "new", tg.label)
		}
		d.catalog.Follow(tg.fsys, tg.label, tg.interval, snap)
	}
}

// scanCatalog scans cfg's store once (pxewim check).
func scanCatalog(cfg *boot.Config, store *localstore.Store) (*catalog.Snapshot, error) {
	tg := catalogTargetOf(cfg, store)
	return catalog.ScanFS(context.Background(), tg.fsys, tg.label, catalogOptions())
}
