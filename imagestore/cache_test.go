package imagestore

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
)

// TestRemoteStoreSharesChunkCache: a remote store decodes every WIM it opens through
// Config.Local.Cache, the daemon's one shared cache: the verification of a bare WIM before its
// first byte is served (sftpstore.Verifier), the verification of a WIM inside an ISO
// (isoWIMVerifier), and the serving of files inside the WIM. Before, both verifications made a
// private 256 MiB cache per WIM. Each step is shown by the shared cache's counters moving.
func TestRemoteStoreSharesChunkCache(t *testing.T) {
	s := testenv.StartSSHD(t)
	root := t.TempDir()
	wimPath := filepath.Join(root, "pe.wim")
	testenv.BuildWinPE(t, wimPath, []testenv.WinPEImage{{Name: "PE"}}, "--compress=LZX")
	shared := wim.NewCache(64 << 20)
	cfg := remoteConfig(s, root)
	cfg.Local.Cache = shared
	ctx := context.Background()
	st, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	misses := func() int64 { return shared.Stats().Misses }
	if err := st.conn.verifier.Check(ctx, st.conn.sftp, "pe.wim"); err != nil {
		t.Fatal(err)
	}
	afterVerify := misses()
	if afterVerify == 0 {
		t.Fatal("verifying the remote WIM decoded nothing through the shared cache")
	}

	f, err := os.Open(wimPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if err := st.conn.isoWIMs.check("x.iso/sources/boot.wim", "v1", f, fi.Size()); err != nil {
		t.Fatal(err)
	}
	afterISO := misses()
	if afterISO == afterVerify {
		t.Fatal("verifying a WIM inside an ISO decoded nothing through the shared cache")
	}

	bf, err := st.Open("pe.wim:1/Windows/Boot/PXE/bootmgr.exe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(bf); err != nil {
		t.Fatal(err)
	}
	bf.Close()
	if misses() == afterISO {
		t.Fatal("serving a file inside the remote WIM decoded nothing through the shared cache")
	}
	t.Logf("shared cache: %+v", shared.Stats())
}
