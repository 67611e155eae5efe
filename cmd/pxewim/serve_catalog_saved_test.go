package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestServeRestartReusesSavedCatalog: a daemon with a state folder saves its catalog; the next
// start reads no store file that did not change (the scan log says read=0), and one that
// changed is read again.
func TestServeRestartReusesSavedCatalog(t *testing.T) {
	fx := newServeFixture(t, false)
	state := filepath.Join(fx.dir, "state")
	fx.writeConfig(t, "Menu", "state_dir: "+state+"\n")
	scanned := regexp.MustCompile(`msg="catalog: store scanned".* files=(\d+) read=(\d+)`)
	run := func(want string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		_, _, log, done := startServe(t, ctx, "--config", fx.config)
		m := scanned.FindStringSubmatch(log.String())
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
		if m == nil {
			t.Fatalf("no catalog scan in the log:\n%s", log)
		}
		if m[2] != want {
			t.Errorf("catalog scan read %s store files (of %s), want %s", m[2], m[1], want)
		}
	}
	run("1")
	if _, err := os.Stat(filepath.Join(state, catalogFile)); err != nil {
		t.Fatalf("no saved catalog: %v", err)
	}
	run("0")
	// A changed file is read again.
	wim := filepath.Join(fx.store, "tools.wim")
	fi, err := os.Stat(wim)
	if err != nil {
		t.Fatal(err)
	}
	later := fi.ModTime().Add(3600e9)
	if err := os.Chtimes(wim, later, later); err != nil {
		t.Fatal(err)
	}
	run("1")
}
