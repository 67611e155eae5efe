package main

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/ops/metrics"
	"github.com/pxewim/pxewim/verdicts"
)

// verdictsFile is the name of the WIM verdicts file in the daemon's state folder.
const verdictsFile = "verdicts.db"

// stateDir is the daemon's state folder: state_dir, else the lease database's folder
// (dhcp.full.leases, else its default /var/lib/pxewim).
func stateDir(cfg *boot.Config) string {
	if cfg.StateDir != "" {
		return cfg.StateDir
	}
	p := boot.DefaultLeasesPath
	if cfg.DHCP.Full != nil && cfg.DHCP.Full.Leases != "" {
		p = cfg.DHCP.Full.Leases
	}
	return filepath.Dir(p)
}

// wimVerifier returns the daemon's WIM verifier, made on first use with its verdicts file in
// the state folder of cfg (a reload keeps the verifier and its file). Without a writable
// state folder verdicts are kept in memory: every start verifies the store again.
func (d *daemon) wimVerifier(cfg *boot.Config) *localstore.Verifier {
	if v := d.verifier.Load(); v != nil {
		return v // loads run one at a time (reloadMu)
	}
	dir := stateDir(cfg)
	path := filepath.Join(dir, verdictsFile)
	if cfg.StateDir == "" {
		// The default folder is used only where it exists (the package's systemd unit makes
		// it): a daemon run by hand, or by a test, creates nothing outside what it was given.
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			d.log.Info("WIM verdicts are kept in memory: the default state folder does not exist (set state_dir to keep them across restarts)", "dir", dir)
			v := localstore.NewVerifier(localstore.VerifierOptions{Logger: d.log, Cache: d.cache, Pace: verifyPace()})
			d.verifier.Store(v)
			return v
		}
	}
	db, err := verdicts.Open(path)
	if err != nil {
		d.log.Warn("WIM verdicts are kept in memory only: every start verifies the store's WIMs again", "file", path, "error", err)
		db = nil
	}
	v := localstore.NewVerifier(localstore.VerifierOptions{DB: db, Logger: d.log, Cache: d.cache, Pace: verifyPace()})
	d.verifier.Store(v)
	return v
}

// verifyPace is the background verification's pace (localstore.VerifierOptions.Pace): the
// default, unless PXEWIM_VERIFY_PACE says otherwise (bench/verify-pace.sh compares with -1,
// no rests).
func verifyPace() float64 {
	p, err := strconv.ParseFloat(os.Getenv("PXEWIM_VERIFY_PACE"), 64)
	if err != nil {
		return 0
	}
	return p
}

// verifyWIMs queues the store's WIM files the catalog lists for background verification
// (those already verified in this version are skipped).
func verifyWIMs(store *localstore.Store, snap *catalog.Snapshot) {
	if store == nil || snap == nil {
		return
	}
	var names []string
	for _, f := range snap.Files {
		if f.In == "" {
			names = append(names, f.Path)
		}
	}
	store.VerifyInBackground(names)
}

// verifyStats are the verifier's counters for /metrics (zero for a remote store).
func (d *daemon) verifyStats() metrics.VerifyStats {
	v := d.verifier.Load()
	if v == nil {
		return metrics.VerifyStats{}
	}
	st := v.Stats()
	ms := metrics.VerifyStats{Good: st.Verified, Bad: st.Failed, Remembered: st.Remembered, Pending: int64(st.Queued)}
	if st.Running != "" {
		ms.Pending++
		ms.Done, ms.Total = st.RunDone, st.RunTotal
	}
	return ms
}
