package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/imagestore"
	"github.com/pxewim/pxewim/winpe"
)

// withCatalog builds the state of cfg over store: the catalog's WindowsPE images become menu
// entries (winpe.auto), and entries learn where the store is. The catalog follows the store
// to a new folder or URL once the new state is built (serve_catalog.go).
func (d *daemon) withCatalog(cfg *boot.Config, st *imagestore.Store) (*state, error) {
	snap, follow := d.catalogFor(cfg, st)
	// Start and reload: logProblems reports the policy's RuleWarnings.
	ns, err := d.buildState(cfg, st, snap, false)
	if err != nil {
		return nil, err
	}
	follow()
	return ns, nil
}

// buildState is the one place a serving state is made, from the config as loaded (base), the
// store and a catalog snapshot: the catalog's entries are added (winpe.auto, images), the
// policy is made, and its winpe entries are bound to the daemon's WinPE library (sources the
// previous state opened are shared when the snapshot says they did not change). warnRules logs
// rules naming entries that do not exist (start and reload log them with the other problems).
func (d *daemon) buildState(base *boot.Config, st *imagestore.Store, snap *catalog.Snapshot, warnRules bool) (*state, error) {
	facts := winpe.Facts(snap) // the catalog as the plain facts policy decides from
	eff := base.WithCatalog(facts).WithImages(facts)
	var vars *setupVariants
	if d.winpe != nil { // serving, not pxewim check
		eff, vars = d.withSetup(eff, st, snap) // serve_smb.go
	}
	pol, err := boot.NewPolicy(eff)
	if err != nil {
		return nil, err
	}
	if warnRules {
		for _, w := range pol.RuleWarnings() {
			d.log.Warn("rule names a missing entry", "rule", w)
		}
	}
	lib := d.winpe
	if lib == nil { // pxewim check: a library of its own on check's one cache, no background work
		lib = winpe.NewLibrary(winpe.Options{Chunks: d.cache})
	}
	set := lib.Bind(pol, st, base.Store, snap)
	if d.winpe != nil {
		set.PrepareTranscodes(d.transcodePrepared)
	}
	vars.bind(lib, st, base.Store, snap) // serve_smb_clients.go
	verifyWIMs(st.Store, snap)           // serve_verify.go
	return &state{cfg: eff, base: base, policy: set.Policy(), winpe: set, store: st, snap: snap, setupVars: vars}, nil
}

// install makes st the state new requests use, sizes the shared chunk cache by its config, and
// retires the state it replaces: its WinPE sources that st does not share close once the
// transfers reading them finish. (Its store is retired by reload, the only caller that changes
// the store.)
func (d *daemon) install(st *state) {
	d.cache.SetMaxBytes(st.base.ChunkCacheBytes())
	if old := d.cur.Swap(st); old != nil && old.winpe != st.winpe {
		old.winpe.Retire()
		old.setupVars.retire()
	}
}

// transcodePrepared logs the background build of an XPRESS transcode (winpe.Set.PrepareTranscodes).
func (d *daemon) transcodePrepared(entry string, err error, took time.Duration) {
	if err != nil {
		d.log.Error("winpe: preparing the XPRESS transcode failed", "entry", entry, "error", err)
		return
	}
	d.log.Info("winpe: XPRESS transcode ready", "entry", entry, "took", took.Round(time.Millisecond))
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// watchCatalog rebuilds the policy when the store's images change, so a WIM dropped into the
// store shows up in the menu (and a removed one leaves it) without a restart.
//
// On the catalog's poll period it also asks the WinPE library whether an injected store file
// changed (Set.Stale: one look-up per injected file per period, none per request) and rebuilds
// the state when one did, so an edited startnet.cmd is served without a reload.
func (d *daemon) watchCatalog(ctx context.Context) {
	ch, stop := d.catalog.Subscribe()
	defer stop()
	_, _, every := d.cur.Load().store.CatalogView()
	if every <= 0 {
		every = time.Minute
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if cur := d.cur.Load(); !cur.winpe.Stale() && !cur.setupVars.stale() {
				continue
			}
			d.reloadMu.Lock()
			cur := d.cur.Load()
			st, err := d.buildState(cur.base, cur.store, cur.snap, false)
			if err == nil {
				d.install(st)
				d.log.Info("winpe: an injected store file changed: served WIMs rebuilt")
			}
			d.reloadMu.Unlock()
			if err != nil {
				d.log.Error("winpe: an injected store file changed but the state could not be rebuilt", "error", err)
			}
		case snap := <-ch:
			d.reloadMu.Lock()
			if snap != d.catalog.Snapshot() {
				d.reloadMu.Unlock() // superseded (a reload moved to another store meanwhile)
				continue
			}
			cur := d.cur.Load()
			st, err := d.buildState(cur.base, cur.store, snap, true)
			if err == nil {
				d.install(st)
				d.log.Info("catalog changed: menu rebuilt", "entries", len(st.cfg.Entries), "windowspe_images", len(snap.WindowsPE()))
			}
			d.reloadMu.Unlock()
			if err != nil {
				d.log.Error("catalog changed but the menu could not be rebuilt", "error", err)
			}
		}
	}
}

// checkWinPE lists what keeps winpe entries and store images from booting: the catalog's
// problems (unreadable WIMs, missing boot files, codecs boot loaders refuse, files over 4 GiB),
// image names used twice (the menu could not tell them apart), and each winpe entry opened as
// a client would open it.
func checkWinPE(st *state) []problem {
	var ps []problem
	if st.winpe == nil { // pxewim check of a config buildState refused: bind its entries anyway
		pol, _ := boot.NewPolicy(st.cfg)
		st.winpe = winpe.NewLibrary(winpe.Options{}).Bind(pol, st.store, st.base.Store, st.snap)
		defer st.winpe.Retire()
	}
	booted := map[string]bool{} // "file:index" an entry boots: the entry reports its problems
	for _, e := range st.cfg.Entries {
		if w, ok := e.Boot.(*boot.WinPEBoot); ok {
			if idx, err := st.winpe.ImageIndex(e.Name); err == nil {
				booted[strings.ToLower(fmt.Sprintf("%s:%d", w.Image, idx))] = true
			}
		}
	}
	if st.snap != nil {
		for _, p := range st.snap.Problems() {
			if p.Index > 0 && booted[strings.ToLower(fmt.Sprintf("%s:%d", p.File, p.Index))] {
				continue
			}
			loc := p.File
			if p.Index > 0 {
				loc = fmt.Sprintf("%s:%d", p.File, p.Index)
			}
			ps = append(ps, problem{what: "store " + loc + ": " + p.What, fix: p.Fix, info: p.Info})
		}
		seen := map[string]string{}
		for _, r := range st.snap.WindowsPE() {
			key := strings.ToLower(r.Image.Name)
			here := fmt.Sprintf("%s:%d", r.File.Path, r.Image.Index)
			if first, dup := seen[key]; dup && key != "" {
				// A note, not a problem: menu titles name the file and index, so both boot
				// (the same WIM bare and inside an ISO is common).
				ps = append(ps, problem{info: true, what: fmt.Sprintf("store %s: image name %q is also the name of %s", here, r.Image.Name, first),
					fix: "the menu tells them apart by file and index; for clearer titles rename one (wimlib-imagex info FILE INDEX \"New name\")"})
				continue
			}
			seen[key] = here
		}
	}
	for _, e := range st.cfg.Entries {
		w, ok := e.Boot.(*boot.WinPEBoot)
		if !ok {
			continue
		}
		where := fmt.Sprintf("entry %q (%s:%d)", e.Name, st.cfg.Source, e.Line)
		if w.Auto {
			where = fmt.Sprintf("entry %q (from the catalog)", e.Name)
		}
		for _, f := range st.winpe.Check(e.Name) {
			ps = append(ps, problem{what: where + ": " + f.What, fix: f.Fix, info: f.Info})
		}
	}
	return ps
}
