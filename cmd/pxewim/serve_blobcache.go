package main

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/pxewim/pxewim/blobcache"
	"github.com/pxewim/pxewim/boot"
)

// blobState is the daemon's decoded-blob cache (blob_cache:), kept across reloads.
type blobState struct {
	mu    sync.Mutex
	cache *blobcache.Cache // nil when off
}

// blobCache returns the blob cache that stores made for cfg serve from (nil: off), opening it
// on first use, following a reload's budget, and moving to a new folder (or off) when the
// config says so. Without blob_cache.dir the folder is STATE_DIR/blobcache, used only where the
// state folder exists when state_dir is not set (as for the verdicts file): a daemon run by
// hand writes nothing outside what it was given.
func (d *daemon) blobCache(cfg *boot.Config) *blobcache.Cache {
	bs := &d.blobs
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bc := cfg.BlobCache
	dir := bc.Dir
	if !bc.Off && dir == "" {
		state := stateDir(cfg)
		if fi, err := os.Stat(state); cfg.StateDir == "" && (err != nil || !fi.IsDir()) {
			d.log.Info("blob cache off: the default state folder does not exist (set state_dir or blob_cache.dir to cache decoded files on disk)", "dir", state)
			bc.Off = true
		}
		dir = filepath.Join(state, "blobcache")
	}
	if bs.cache != nil && (bc.Off || bs.cache.Dir() != dir) {
		bs.cache.Close() // stores still holding it keep serving its files; no more fills
		bs.cache = nil
	}
	if bc.Off {
		return nil
	}
	if bs.cache != nil {
		bs.cache.SetBudget(bc.BudgetBytes())
		bs.cache.SetHotReads(bc.HotReads)
		return bs.cache
	}
	c, err := blobcache.Open(blobcache.Options{Dir: dir, Budget: bc.BudgetBytes(), HotReads: bc.HotReads, Logger: d.log})
	if err != nil {
		d.log.Warn("blob cache off: files inside WIMs are decoded for every read", "error", err)
		return nil
	}
	d.log.Info("blob cache on: files read often from inside WIMs are served from decoded copies", "dir", dir, "budget", bc.BudgetBytes())
	bs.cache = c
	return c
}

// blobStats are the blob cache's counters for /metrics (zero when it is off).
func (d *daemon) blobStats() blobcache.Stats {
	d.blobs.mu.Lock()
	c := d.blobs.cache
	d.blobs.mu.Unlock()
	if c == nil {
		return blobcache.Stats{}
	}
	return c.Stats()
}
