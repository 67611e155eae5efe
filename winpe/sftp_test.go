package winpe_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/sftpstore"
	"github.com/pxewim/pxewim/winpe"
)

// total is every store operation counted so far: opens (ReadDir goes through Open) and stats.
func (c *countingFS) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.opens {
		n += v
	}
	for _, v := range c.stats {
		n += v
	}
	return n
}

// TestNoSFTPRoundTripsPerRequest: over an sftp:// store that has not changed since the catalog's
// snapshot, serving a winpe entry (with an injection and a MAC rule) costs no SFTP operation
// per request once its source is open: DHCP decisions, script renders, trees and the files
// read from them (boot.wim in full, BCD, bootmgr) look nothing up and fetch no block again, and
// neither does a reload over the same snapshot. Every store operation is counted: metadata
// (open, stat, list) by a counting layer over the SFTP store, data by the store's block fetches.
func TestNoSFTPRoundTripsPerRequest(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sources"), 0o755)
	testenv.BuildWinPE(t, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{
		{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"},
	}, "--compress=LZX", "--boot")
	os.MkdirAll(filepath.Join(root, "tools"), 0o755)
	os.WriteFile(filepath.Join(root, "tools", "wimboot"), []byte("stand-in for wimboot"), 0o644)
	remote, err := sftpstore.Open(t.Context(), sftpstore.Config{URL: sshd.URL(root),
		KeyFiles: []string{sshd.ClientKey}, KnownHostsFiles: []string{sshd.KnownHosts}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remote.Close() })
	snap, err := catalog.ScanFS(t.Context(), remote, sshd.URL(root), nil)
	if err != nil {
		t.Fatal(err)
	}
	store := newCountingFS(remote)
	cfg, err := boot.ParseConfig("c.yaml", []byte(lifeConfig))
	if err != nil {
		t.Fatal(err)
	}
	lib := winpe.NewLibrary(winpe.Options{})
	bindNew := func() *winpe.Set {
		p, err := boot.NewPolicy(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return lib.Bind(p, store, sshd.URL(root), snap)
	}
	set := bindNew()
	native := client("52:54:00:00:00:01", boot.FirmwareBIOS, false)
	ipxe := client("52:54:00:00:00:01", boot.FirmwareBIOS, true)
	url := func(r boot.Ref) (string, error) { return "http://10.0.0.1:8080/files/" + r.String(), nil }
	request := func() {
		t.Helper()
		if d := set.Policy().Decide(native, server); d.BootFile != `boot\pxeboot.n12` {
			t.Fatalf("native decision %+v", d)
		}
		if _, err := set.Policy().Script(ipxe, boot.ScriptBoot, url, nil); err != nil {
			t.Fatal(err)
		}
		for _, c := range []boot.Client{native, ipxe} {
			tree, err := set.Tree(c)
			if err != nil {
				t.Fatal(err)
			}
			names := []string{"winpe/pe/boot.wim", "winpe/pe/bios/BCD", "winpe/pe/image/Windows/Boot/PXE/bootmgr.exe"}
			if !c.IPXE {
				names = append(names, "sources/boot.wim", "Boot/BCD", "boot/bootmgr.exe", "boot/pxeboot.n12")
			}
			for _, name := range names {
				f, err := tree.Open(name)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if _, err := io.Copy(io.Discard, f.(io.Reader)); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				f.Close()
			}
		}
	}
	request() // opens the source and fills the caches
	ops0, fetched0 := store.total(), remote.Stats().Misses
	if ops0 == 0 || fetched0 == 0 {
		t.Fatalf("opening the source cost %d store operations and %d block fetches: the counting sees nothing", ops0, fetched0)
	}
	for range 20 {
		request()
	}
	// A reload over the same snapshot: the next state shares the open source.
	next := bindNew()
	set.Retire()
	set = next
	for range 5 {
		request()
	}
	ops, fetched := store.total(), remote.Stats().Misses
	if ops != ops0 || fetched != fetched0 {
		t.Errorf("25 requests and a reload cost %d SFTP opens/stats/lists and %d block fetches, want 0 and 0", ops-ops0, fetched-fetched0)
	}
	if opens, _, _ := store.counts("sources/boot.wim"); opens != 1 {
		t.Errorf("the image was opened %d times, want 1", opens)
	}
	set.Retire()
	if _, _, open := store.counts(""); open != 0 {
		t.Errorf("%d remote files open after the last state retired", open)
	}
}
