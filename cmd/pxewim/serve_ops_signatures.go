package main

import (
	"fmt"
	"io/fs"
	"sync"

	"github.com/pxewim/pxewim/authenticode"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/ops/web"
)

// loaderSigCache holds the Authenticode verdicts on the UEFI boot managers of every WindowsPE
// image of one catalog snapshot: they are read (each loader streamed out of its WIM and
// hashed) once per snapshot and store, not per dashboard page load.
type loaderSigCache struct {
	mu      sync.Mutex
	snap    *catalog.Snapshot
	store   fs.FS
	byImage map[string][]web.LoaderRow // "file:index" -> verdicts
}

// rows returns the verdicts of snap's WindowsPE images read through store, reading them when
// snap or store is not the one cached. store must be comparable (a pointer: the daemon passes
// its *imagestore.Store).
func (c *loaderSigCache) rows(snap *catalog.Snapshot, store fs.FS) map[string][]web.LoaderRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byImage != nil && c.snap == snap && c.store == store {
		return c.byImage
	}
	m := map[string][]web.LoaderRow{}
	for _, ref := range snap.WindowsPE() {
		var lr []web.LoaderRow
		for _, s := range catalog.ImageLoaderSignatures(store, ref.File.Path, ref.Image.Index) {
			lr = append(lr, loaderRow(s))
		}
		m[imageKey(ref.File.Path, ref.Image.Index)] = lr
	}
	c.snap, c.store, c.byImage = snap, store, m
	return m
}

func imageKey(file string, index int) string { return fmt.Sprintf("%s:%d", file, index) }

// loaderRow is the dashboard's view of one verdict.
func loaderRow(s catalog.LoaderSignature) web.LoaderRow {
	r := web.LoaderRow{Path: s.Path, Summary: s.Summary(), Warning: s.Warning(), SignedBy: []string{}}
	if s.Report == nil {
		return r
	}
	r.Signed = s.Report.Signed
	r.DigestOK = s.Report.AllGood()
	for i := range s.Report.Signatures {
		sig := &s.Report.Signatures[i]
		name := sig.CAName
		if name == "" {
			name = "unknown CA"
		}
		if sig.CA != authenticode.CAOther {
			name = sig.CA.String()
		}
		r.SignedBy = append(r.SignedBy, name)
	}
	return r
}

// loaderRows adds the boot manager verdicts of the current snapshot to the WindowsPE rows, and
// each verdict's warning (unsigned, digest mismatch, PCA 2011-only) as a note: clients without
// Secure Boot boot regardless.
func (d *daemon) loaderRows(c *loaderSigCache, rows []web.CatalogRow) []web.CatalogRow {
	st := d.cur.Load()
	if st == nil || st.snap == nil || st.store == nil {
		return rows
	}
	byImage := c.rows(st.snap, st.store)
	for i := range rows {
		r := &rows[i]
		if !r.WindowsPE {
			continue
		}
		lr, ok := byImage[imageKey(r.File, r.Index)]
		if !ok {
			continue
		}
		r.Loaders = lr
		for _, l := range lr {
			if l.Warning != "" {
				r.Notes = append(r.Notes, "Secure Boot: "+l.Path+": "+l.Warning)
			}
		}
	}
	return rows
}
