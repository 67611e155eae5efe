package winpe_test

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/localstore"
)

// countingFS counts what the policy asks of the store: opens (and stats) per lower-case path,
// and the files still open.
type countingFS struct {
	fs.FS
	mu    sync.Mutex
	opens map[string]int
	stats map[string]int
	open  int
}

func newCountingFS(fsys fs.FS) *countingFS {
	return &countingFS{FS: fsys, opens: map[string]int{}, stats: map[string]int{}}
}

func (c *countingFS) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opens[strings.ToLower(name)]++
	if err != nil {
		return nil, err
	}
	c.open++
	return &countedFile{File: f, c: c}, nil
}

func (c *countingFS) Stat(name string) (fs.FileInfo, error) {
	c.mu.Lock()
	c.stats[strings.ToLower(name)]++
	c.mu.Unlock()
	return fs.Stat(c.FS, name)
}

func (c *countingFS) counts(name string) (opens, stats, open int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opens[name], c.stats[name], c.open
}

type countedFile struct {
	fs.File
	c    *countingFS
	once sync.Once
}

func (f *countedFile) ReadAt(p []byte, off int64) (int, error) {
	return f.File.(io.ReaderAt).ReadAt(p, off)
}

func (f *countedFile) Close() error {
	f.once.Do(func() { f.c.mu.Lock(); f.c.open--; f.c.mu.Unlock() })
	return f.File.Close()
}

// lifeStore is a store holding a Windows-Setup-shaped WIM at sources/boot.wim, behind a
// counting layer.
func lifeStore(t *testing.T) (string, *countingFS) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sources"), 0o755)
	testenv.BuildWinPE(t, filepath.Join(dir, "sources", "boot.wim"), []testenv.WinPEImage{
		{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"},
	}, "--compress=LZX", "--boot")
	os.MkdirAll(filepath.Join(dir, "tools"), 0o755)
	os.WriteFile(filepath.Join(dir, "tools", "wimboot"), []byte("stand-in for wimboot"), 0o644)
	st, err := localstore.New(dir, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return dir, newCountingFS(st)
}

const lifeConfig = `listen: {http: ":8080", tftp: ":69"}
winpe: {wimboot: tools/wimboot}
entries:
  - name: pe
    winpe:
      image: sources/boot.wim
      index: 1
      inject:
        - {path: Windows/System32/startnet.cmd, content: "wpeinit\r\n"}
rules:
  - {match: {mac: "52:54:00:00:00:01"}, entry: pe}
`

// TestWinPESourceOpenedFromStoreOnly: an entry serving sources/boot.wim with an injection and
// a rule. A client's own tree maps sources/boot.wim to the entry's served (synthesised)
// output; scripts, native trees and entry files must all be built from the store's file,
// opened once, not re-synthesised from the served output on every other round (the bug: a
// fresh source on each render and request, each reopening the WIM).
func TestWinPESourceOpenedFromStoreOnly(t *testing.T) {
	_, store := lifeStore(t)
	cfg, err := boot.ParseConfig("c.yaml", []byte(lifeConfig))
	if err != nil {
		t.Fatal(err)
	}
	p := mustBind(t, cfg, store, nil)
	for _, fw := range []boot.Firmware{boot.FirmwareBIOS, boot.FirmwareEFI64, boot.FirmwareBIOS} {
		for _, ipxe := range []bool{true, false} {
			c := client("52:54:00:00:00:01", fw, ipxe)
			tree, err := p.Tree(c)
			if err != nil {
				t.Fatal(err)
			}
			url := func(r boot.Ref) (string, error) { return "http://10.0.0.1:8080/files/" + r.String(), nil }
			if _, err := p.Script(c, boot.ScriptBoot, url, nil); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"sources/boot.wim", "winpe/pe/boot.wim", "winpe/pe/image/Windows/Boot/PXE/bootmgr.exe"} {
				f, err := tree.Open(name)
				if err != nil {
					continue // not every tree has every path (native paths only for native clients)
				}
				io.Copy(io.Discard, f.(io.Reader))
				f.Close()
			}
		}
	}
	if opens, _, _ := store.counts("sources/boot.wim"); opens != 1 {
		t.Errorf("sources/boot.wim opened %d times from the store over six rounds, want 1 (the source is re-synthesised)", opens)
	}
}

// TestWinPERetireClosesSource: the opened image stays open while a transfer reads it after
// the policy was replaced, and closes with that transfer's last file; a retired entry opens
// nothing new. (Before, the source's file was never closed: a retired SFTP store whose WIM
// any winpe entry had opened never closed its connection.)
func TestWinPERetireClosesSource(t *testing.T) {
	_, store := lifeStore(t)
	p := policyFor(t, lifeConfig, store)
	files, err := p.set.Files("pe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := files.Open("boot.wim")
	if err != nil {
		t.Fatal(err)
	}
	img, err := files.Open("image/Windows/Boot/PXE/bootmgr.exe")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, open := store.counts(""); open != 1 {
		t.Fatalf("%d store files open, want 1 (the WIM)", open)
	}
	p.Retire()
	buf := make([]byte, 4096)
	if _, err := f.(io.ReaderAt).ReadAt(buf, 0); err != nil {
		t.Fatalf("a transfer started before the retire cannot read: %v", err)
	}
	if _, _, open := store.counts(""); open != 1 {
		t.Fatalf("the WIM closed while two files from it were open")
	}
	f.Close()
	if _, err := io.Copy(io.Discard, img.(io.Reader)); err != nil {
		t.Fatalf("reading bootmgr.exe after the retire: %v", err)
	}
	img.Close()
	img.Close() // twice: released once
	if _, _, open := store.counts(""); open != 0 {
		t.Errorf("%d store files still open after the retired entry's last file closed", open)
	}
	if _, err := files.Open("boot.wim"); err == nil {
		t.Errorf("a retired, closed source opened a file")
	}
	if _, err := p.set.Files("pe"); err == nil {
		t.Errorf("a retired entry opened its image again")
	}
}

// TestWinPENoStatPerRequest: with the catalog's snapshot attached, serving an entry costs no
// store look-up per request while the image is unchanged (on an sftp:// store each is a round
// trip); a new snapshot (new policy) with other figures opens the new version.
func TestWinPENoStatPerRequest(t *testing.T) {
	dir, store := lifeStore(t)
	snap, err := catalog.Scan(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := boot.ParseConfig("c.yaml", []byte(lifeConfig))
	if err != nil {
		t.Fatal(err)
	}
	p := mustBind(t, cfg, store, snap)
	c := client("52:54:00:00:00:01", boot.FirmwareBIOS, true)
	url := func(r boot.Ref) (string, error) { return "http://10.0.0.1:8080/files/" + r.String(), nil }
	render := func() {
		tree, err := p.Tree(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Script(c, boot.ScriptBoot, url, nil); err != nil {
			t.Fatal(err)
		}
		f, err := tree.Open("winpe/pe/boot.wim")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	render() // opens the image once
	opens0, stats0, _ := store.counts("sources/boot.wim")
	for range 20 {
		render()
	}
	opens, stats, _ := store.counts("sources/boot.wim")
	if opens != opens0 || stats != stats0 {
		t.Errorf("20 requests cost %d opens and %d stats of the image, want 0 and 0", opens-opens0, stats-stats0)
	}
	if opens0 != 1 {
		t.Errorf("first request opened the image %d times, want 1", opens0)
	}
}
