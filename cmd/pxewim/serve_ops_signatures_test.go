package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/ops/web"
)

// TestDashboardSecureBootSignatures: the dashboard's catalog shows, per WindowsPE image, who
// signed its UEFI boot managers and whether the digest matches (throwaway CAs named like
// Microsoft's sign them), with the PCA 2011-only warning as a note; in the JSON and in the
// rendered table.
func TestDashboardSecureBootSignatures(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	for _, tool := range []string{"openssl", "sbsign", "wimlib-imagex"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (test.sh installs openssl, sbsigntool, wimtools)", tool)
		}
	}
	pe := filepath.Join(testenv.IPXEDir, "snponly.efi") // any unsigned PE/COFF image
	testenv.RequireFiles(t, "ipxe", pe)
	fx := startOpsServeWith(t, "", func(t *testing.T, store, scratch string) {
		signPCA := testenv.ThrowawayCA(t, scratch, "Microsoft Windows Production PCA 2011")
		sign2023 := testenv.ThrowawayCA(t, scratch, "Windows UEFI CA 2023")
		pcaEFI, exEFI := filepath.Join(scratch, "bootmgfw.efi"), filepath.Join(scratch, "bootmgfw_EX.efi")
		signPCA(pe, pcaEFI)
		sign2023(pe, exEFI)
		pca, _ := os.ReadFile(pcaEFI)
		ex, _ := os.ReadFile(exEFI)
		testenv.BuildWinPE(t, filepath.Join(store, "old.wim"), []testenv.WinPEImage{{Name: "Old PE",
			Omit: []string{"Windows/Boot/EFI_EX/bootmgfw_EX.efi"}, Files: map[string][]byte{"Windows/Boot/EFI/bootmgfw.efi": pca}}})
		testenv.BuildWinPE(t, filepath.Join(store, "new.wim"), []testenv.WinPEImage{{Name: "New PE",
			Files: map[string][]byte{"Windows/Boot/EFI/bootmgfw.efi": pca, "Windows/Boot/EFI_EX/bootmgfw_EX.efi": ex}}})
	})

	// The catalog is scanned in the background: wait for both images' rows.
	var rows []web.CatalogRow
	byFile := map[string]web.CatalogRow{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := get(t, fx.admin+"/api/catalog")
		rows = nil
		if err := json.Unmarshal(body, &rows); err != nil {
			t.Fatalf("/api/catalog: %v\n%s", err, body)
		}
		for _, r := range rows {
			byFile[r.File] = r
		}
		if len(byFile["old.wim"].Loaders) > 0 && len(byFile["new.wim"].Loaders) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the catalog never listed old.wim and new.wim with loaders: %+v\n%s", rows, fx.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const pcaWarn = "PCA 2011-only: will stop booting once the 2023 CA update is applied; use media with bootmgfw_EX.efi"
	check := func(file string, want map[string]string) {
		t.Helper()
		r := byFile[file]
		got := map[string]web.LoaderRow{}
		for _, l := range r.Loaders {
			got[l.Path] = l
		}
		if len(got) != len(want) {
			t.Errorf("%s: loaders %+v, want %v", file, r.Loaders, want)
		}
		for path, by := range want {
			l, ok := got[path]
			if !ok {
				t.Errorf("%s: no verdict on %s: %+v", file, path, r.Loaders)
				continue
			}
			if !l.Signed || !l.DigestOK || strings.Join(l.SignedBy, ",") != by || l.Summary != "signed by "+by+" (digest ok)" {
				t.Errorf("%s: %s: %+v, want signed by %s, digest ok", file, path, l, by)
			}
			pcaOnly := by == "Microsoft Windows Production PCA 2011"
			if pcaOnly != strings.Contains(l.Warning, pcaWarn) {
				t.Errorf("%s: %s: warning %q (PCA 2011-only: %v)", file, path, l.Warning, pcaOnly)
			}
			note := "Secure Boot: " + path + ": signed by " + by + " (digest ok): " + pcaWarn
			if pcaOnly != strings.Contains(strings.Join(r.Notes, "\n"), note) {
				t.Errorf("%s: notes %q; want the PCA 2011-only note for %s: %v", file, r.Notes, path, pcaOnly)
			}
		}
	}
	check("old.wim", map[string]string{"bootmgfw.efi": "Microsoft Windows Production PCA 2011"})
	check("new.wim", map[string]string{"bootmgfw.efi": "Microsoft Windows Production PCA 2011", "EFI_EX/bootmgfw_EX.efi": "Windows UEFI CA 2023"})
	if r := byFile["tools.wim"]; len(r.Loaders) != 0 {
		t.Errorf("a non-WindowsPE WIM has loader verdicts: %+v", r.Loaders)
	}

	br := testenv.StartBrowser(t, fx.admin+"/#/catalog", testenv.BrowserOptions{})
	row := func(file string) string {
		return `[...document.querySelectorAll("#catalog tbody tr")].find(r => r.cells[0].textContent === "` + file + `")`
	}
	br.WaitEval(t, 15*time.Second, row("new.wim")+` !== undefined && `+row("new.wim")+`.querySelectorAll("td.loaders .loader").length === 2`, "new.wim's loader verdicts in the table")
	var loaders, notes []string
	br.Eval(t, `[...`+row("new.wim")+`.querySelectorAll("td.loaders .loader")].map(d => d.className + "|" + d.innerText)`, &loaders)
	br.Eval(t, `[...`+row("new.wim")+`.querySelectorAll(".note")].map(d => d.innerText)`, &notes)
	t.Logf("new.wim: loaders %q, notes %q", loaders, notes)
	wantLoaders := []string{
		"loader sig-warn|bootmgfw.efi: signed by Microsoft Windows Production PCA 2011 (digest ok)",
		"loader sig-ok|EFI_EX/bootmgfw_EX.efi: signed by Windows UEFI CA 2023 (digest ok)",
	}
	if strings.Join(loaders, "\n") != strings.Join(wantLoaders, "\n") {
		t.Errorf("new.wim's loader cell:\n%s\nwant:\n%s", strings.Join(loaders, "\n"), strings.Join(wantLoaders, "\n"))
	}
	if !strings.Contains(strings.Join(notes, "\n"), "bootmgfw.efi: signed by Microsoft Windows Production PCA 2011 (digest ok): "+pcaWarn) {
		t.Errorf("new.wim's notes lack the PCA 2011-only warning: %q", notes)
	}
	var oldLoaders []string
	br.Eval(t, `[...`+row("old.wim")+`.querySelectorAll("td.loaders .loader")].map(d => d.innerText)`, &oldLoaders)
	if len(oldLoaders) != 1 || oldLoaders[0] != "bootmgfw.efi: signed by Microsoft Windows Production PCA 2011 (digest ok)" {
		t.Errorf("old.wim's loader cell: %q", oldLoaders)
	}
	br.Screenshot(t, testenv.ArtifactsDir(t), "dashboard-catalog-signatures.png")
}

// countingFS counts the opens of the files it serves.
type countingFS struct {
	fstest.MapFS
	opens *int
}

func (c *countingFS) Open(name string) (fs.File, error) {
	*c.opens++
	return c.MapFS.Open(name)
}

// TestLoaderSigCachePerSnapshot: the dashboard reads the boot managers' signatures once per
// catalog snapshot: another page load of the same snapshot opens nothing, a new snapshot reads
// them again; a non-PE boot manager is reported as such, not skipped.
func TestLoaderSigCachePerSnapshot(t *testing.T) {
	opens := 0
	store := &countingFS{MapFS: fstest.MapFS{
		"pe.wim:1/Windows/Boot/EFI/bootmgfw.efi": {Data: []byte("not a PE image")},
	}, opens: &opens}
	snap := &catalog.Snapshot{Files: []catalog.File{{Path: "pe.wim", Images: []catalog.Image{{Index: 1, InstallationType: "WindowsPE"}}}}}
	var c loaderSigCache
	first := c.rows(snap, store)
	lr := first[imageKey("pe.wim", 1)]
	if len(lr) != 1 || lr[0].Path != "bootmgfw.efi" || lr[0].Signed || lr[0].DigestOK || !strings.Contains(lr[0].Warning, "not a PE/COFF image") {
		t.Fatalf("verdicts %+v, want one on bootmgfw.efi saying it is not a PE image", lr)
	}
	n := opens
	if n == 0 {
		t.Fatal("the first read opened nothing")
	}
	c.rows(snap, store)
	if opens != n {
		t.Errorf("a second read of the same snapshot opened %d files", opens-n)
	}
	next := &catalog.Snapshot{Files: snap.Files}
	c.rows(next, store)
	if opens == n {
		t.Errorf("a new snapshot was not read")
	}
}
