package winpe_test

import (
	"io/fs"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/winpe"
)

// bound is a policy whose winpe entries are bound to a store through a library, as the
// daemon's buildState makes it: Policy renders from the library's facts, Tree serves.
type bound struct {
	*boot.Policy
	set *winpe.Set
	lib *winpe.Library
}

// bindTo binds p's winpe entries to store through a new library (snap may be nil).
func bindTo(t testing.TB, p *boot.Policy, store fs.FS, snap *catalog.Snapshot, opts winpe.Options) *bound {
	t.Helper()
	lib := winpe.NewLibrary(opts)
	set := lib.Bind(p, store, "store", snap)
	return &bound{Policy: set.Policy(), set: set, lib: lib}
}

// Tree is the client's tree.
func (b *bound) Tree(c boot.Client) (fs.FS, error) { return b.set.Tree(c) }

// Retire retires the bound Set (the daemon installs a new state).
func (b *bound) Retire() { b.set.Retire() }

// mustBind parses cfg and binds its policy to store.
func mustBind(t testing.TB, cfg *boot.Config, store fs.FS, snap *catalog.Snapshot) *bound {
	t.Helper()
	p, err := boot.NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return bindTo(t, p, store, snap, winpe.Options{})
}
