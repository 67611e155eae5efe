package main

import (
	"os"
	"path/filepath"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
)

// catalogFile is the saved catalog in the state folder: a restart reuses the entries of every
// store file whose size and mtime did not change instead of reading it again (catalog.Options
// Persist; bench/bigstore.sh measures it).
const catalogFile = "catalog.gob"

// catalogOpts are the daemon's catalog options: catalogOptions with the daemon's logger and,
// when the state folder exists (the same rule as the WIM verdicts: the default folder is used
// only where the package made it), the saved catalog. The watcher keeps the options of the
// first load; a reload that moves state_dir moves the saved catalog at the next start.
func (d *daemon) catalogOpts(cfg *boot.Config) *catalog.Options {
	o := catalogOptions(d.cache)
	o.Log = d.log
	dir := stateDir(cfg)
	if fi, err := os.Stat(dir); cfg.StateDir == "" && (err != nil || !fi.IsDir()) {
		return o
	}
	o.Persist = filepath.Join(dir, catalogFile)
	return o
}
