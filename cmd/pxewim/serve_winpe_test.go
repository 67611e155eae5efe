package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestServeCatalogMenu runs pxewim serve with winpe.auto on a store, drops a WinPE WIM into it
// and removes it again: the menu gains and loses the entry within seconds, without a restart,
// and the entry's files are served while it is there.
func TestServeCatalogMenu(t *testing.T) {
	store := t.TempDir()
	os.WriteFile(filepath.Join(store, "wimboot"), []byte("stand-in"), 0o644)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("store: "+store+"\nwinpe: {auto: true, wimboot: wimboot}\nmenu: {timeout: 5s}\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, log, done := startServe(t, ctx, "--config", cfg)
	defer func() { cancel(); <-done }()

	menu := func() string { return serveHTTPGet(t, base+"/ipxe/menu.ipxe?mac=52-54-00-00-00-09&platform=pcbios") }
	if strings.Contains(menu(), "pe-") {
		t.Fatalf("empty store, but the menu has a WinPE entry:\n%s", menu())
	}
	tmp := filepath.Join(t.TempDir(), "x.wim")
	testenv.BuildWinPE(t, tmp, []testenv.WinPEImage{{Name: "Lab PE"}}, "--compress=LZMS")
	if err := os.Rename(tmp, filepath.Join(store, "lab.wim")); err != nil {
		t.Fatal(err)
	}
	serveWaitFor(t, 10*time.Second, func() bool { return strings.Contains(menu(), "item pe-lab-1 Lab PE (lab.wim:1, x86_64)") }, "the new WIM in the menu", log)
	// The LZMS WIM is served transcoded; wimboot's files are all there.
	resp, err := http.Get(base + "/files/winpe/pe-lab-1/boot.wim")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		t.Errorf("boot.wim of the auto entry: %s, %d bytes", resp.Status, resp.ContentLength)
	}
	os.Remove(filepath.Join(store, "lab.wim"))
	serveWaitFor(t, 10*time.Second, func() bool { return !strings.Contains(menu(), "pe-lab-1") }, "the removed WIM to leave the menu", log)
	if !strings.Contains(log.String(), "catalog changed: menu rebuilt") {
		t.Errorf("log lacks the catalog change")
	}
}
