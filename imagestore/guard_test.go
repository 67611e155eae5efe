package imagestore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/iso"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/wim"
)

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// flipByte damages one byte of file p at off.
func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// buildGuardISOs makes good.iso and bad.iso in store: each with sources/install.wim (3 MiB of
// random files, uncompressed) and a split set sources/install.swm, install2.swm, ... of the
// same image. In bad.iso one byte inside a file resource of install.wim and of install2.swm
// is flipped (the WIM headers and blob tables are intact: only the SHA-1s tell).
func buildGuardISOs(t *testing.T, store string) {
	for _, tool := range []string{"genisoimage", "wimlib-imagex"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: apt-get install genisoimage wimtools", tool)
		}
	}
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	os.MkdirAll(content, 0o755)
	for i := range 3 {
		b := make([]byte, 1<<20)
		rand.Read(b)
		os.WriteFile(filepath.Join(content, fmt.Sprintf("f%d.bin", i)), b, 0o644)
	}
	for _, name := range []string{"good", "bad"} {
		root := filepath.Join(dir, name)
		src := filepath.Join(root, "sources")
		os.MkdirAll(src, 0o755)
		runTool(t, "wimlib-imagex", "capture", content, filepath.Join(src, "install.wim"), "Windows", "--compress=none")
		whole := filepath.Join(dir, name+"-whole.wim")
		runTool(t, "wimlib-imagex", "capture", content, whole, "Windows", "--compress=none")
		runTool(t, "wimlib-imagex", "split", whole, filepath.Join(src, "install.swm"), "1")
		if _, err := os.Stat(filepath.Join(src, "install2.swm")); err != nil {
			t.Fatalf("split made no second part: %v", err)
		}
		if name == "bad" {
			flipByte(t, filepath.Join(src, "install.wim"), 4096)
			flipByte(t, filepath.Join(src, "install2.swm"), 4096)
		}
		runTool(t, "genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, name+".iso"), root)
	}
}

// openTree opens the ISO at name in st as the Setup share's view does: the store's file, read
// in place by package iso.
func openTree(t *testing.T, st *Store, name string) (*iso.FS, os.FileInfo) {
	t.Helper()
	f, err := st.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := iso.Open(f.(io.ReaderAt), fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return tree, fi
}

// TestISOGuardRemote: the guard of a remote ISO passes the intact install.wim and split set,
// and refuses the damaged ones with an error naming the file (a checksum error, not an I/O
// one); VerifyAll lists exactly the damaged files; the verdict on a WIM is shared with the
// store's own path (Store.Open of the WIM inside the ISO is refused too); the log names the
// file. A local store without a Verifier has no guard (TestISOGuardLocal: with one).
func TestISOGuardRemote(t *testing.T) {
	s := testenv.StartSSHD(t)
	store := t.TempDir()
	buildGuardISOs(t, store)
	cfg := remoteConfig(s, store)
	logBuf := &testenv.LogBuffer{}
	cfg.Log = slog.New(slog.NewTextHandler(logBuf, nil))
	ctx := context.Background()
	st, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	tree, fi := openTree(t, st, "good.iso")
	g := st.GuardISO("good.iso", fi, tree)
	if g == nil {
		t.Fatal("no guard for a remote ISO")
	}
	for _, inner := range []string{"sources/install.wim", "sources/install.swm", "sources/install2.swm"} {
		if err := g.Check(ctx, inner); err != nil {
			t.Errorf("good.iso %s: %v", inner, err)
		}
	}
	if !g.Covers("sources/INSTALL.ESD") || g.Covers("sources/setup.exe") {
		t.Error("Covers: .esd must be covered, setup.exe not")
	}
	if err := g.Check(ctx, "sources/setup.exe"); err != nil {
		t.Errorf("a file that is not a WIM: %v", err)
	}
	if failed := g.VerifyAll(ctx); len(failed) != 0 {
		t.Errorf("VerifyAll of good.iso: %v", failed)
	}

	tree, fi = openTree(t, st, "bad.iso")
	g = st.GuardISO("bad.iso", fi, tree)
	for _, inner := range []string{"sources/install.wim", "sources/install.swm", "sources/install2.swm"} {
		err := g.Check(ctx, inner)
		if err == nil {
			t.Errorf("damaged bad.iso %s passed", inner)
			continue
		}
		if !errors.Is(err, wim.ErrChecksum) || !strings.Contains(err.Error(), "bad.iso/sources/"+inner[len("sources/"):]) {
			t.Errorf("bad.iso %s: %v (want a checksum error naming the file)", inner, err)
		}
	}
	failed := g.VerifyAll(ctx) // every file of the ISO: install.wim and each part of the damaged set
	ents, _ := fs.ReadDir(tree, "sources")
	if len(failed) != len(ents) || len(ents) < 3 {
		t.Errorf("VerifyAll of bad.iso: %d failed of %d files: %v", len(failed), len(ents), failed)
	}
	for _, e := range ents {
		if failed["sources/"+e.Name()] == nil {
			t.Errorf("VerifyAll of bad.iso: %s not reported", e.Name())
		}
	}
	if f, err := st.Open("bad.iso/sources/install.wim"); err == nil {
		f.Close()
		t.Error("the store serves the damaged WIM inside the remote ISO")
	}
	if f, err := st.Open("good.iso/sources/install.wim"); err != nil {
		t.Errorf("the store refuses the intact WIM inside the remote ISO: %v", err)
	} else {
		f.Close()
	}
	if !strings.Contains(logBuf.String(), "bad.iso/sources/install.wim") || !strings.Contains(logBuf.String(), "bad.iso/sources/install.swm (split set)") {
		t.Errorf("the log does not name the damaged files:\n%s", logBuf.String())
	}

	local, err := Open(ctx, Config{Location: store, Local: localstore.Options{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	tree, fi = openTree(t, local, "bad.iso")
	if g := local.GuardISO("bad.iso", fi, tree); g != nil || g.Check(ctx, "sources/install.wim") != nil {
		t.Error("a local store without a Verifier has a guard")
	}
}

// TestISOGuardLocal: a local store that verifies its WIMs (Local.Verifier) verifies those
// inside its ISOs too. Store.Open of a WIM inside an ISO answers at once with a file that
// carries the verdict (FullReadChecked false, so servers hold its last bytes for it): the
// intact one is Verified and byte-exact, the damaged one's WaitVerified is a checksum error,
// and so is that of a file inside its image (ranges wait for it). The Setup share's guard
// shares those verdicts: it refuses the damaged install.wim and split set, passes the intact.
func TestISOGuardLocal(t *testing.T) {
	store := t.TempDir()
	buildGuardISOs(t, store)
	ver := localstore.NewVerifier(localstore.VerifierOptions{Logger: slog.New(slog.DiscardHandler)})
	defer ver.Close()
	logBuf := &testenv.LogBuffer{}
	cfg := Config{Location: store, Local: localstore.Options{Verifier: ver}, Log: slog.New(slog.NewTextHandler(logBuf, nil))}
	ctx := context.Background()
	st, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	type verdicter interface {
		Verified() bool
		WaitVerified(context.Context) error
		FullReadChecked() bool
	}
	for _, name := range []string{"good", "bad"} {
		p := name + ".iso/sources/install.wim"
		f, err := st.Open(p)
		if err != nil {
			t.Fatalf("%s: %v (the first byte must not wait for the verdict)", p, err)
		}
		v, ok := f.(verdicter)
		if !ok || v.FullReadChecked() {
			f.Close()
			t.Fatalf("%s: %T carries no verdict", p, f)
		}
		got, rerr := io.ReadAll(f)
		werr := v.WaitVerified(ctx)
		f.Close()
		if rerr != nil {
			t.Fatalf("%s: reading: %v", p, rerr)
		}
		if name == "good" {
			if werr != nil || !v.Verified() {
				t.Errorf("%s: verdict %v, Verified %v", p, werr, v.Verified())
			}
			tree, _ := openTree(t, st, "good.iso")
			orig, err := fs.ReadFile(tree, "sources/install.wim")
			if err != nil || string(orig) != string(got) {
				t.Errorf("%s: %d bytes read, not the ISO's %d (%v)", p, len(got), len(orig), err)
			}
			continue
		}
		if !errors.Is(werr, wim.ErrChecksum) || v.Verified() {
			t.Errorf("%s: verdict %v, Verified %v (want a checksum error)", p, werr, v.Verified())
		}
		in, err := st.Open(name + ".iso/sources/install.wim:1/f0.bin")
		if err != nil {
			t.Fatalf("file inside the damaged WIM: %v", err)
		}
		iv, ok := in.(verdicter)
		if !ok || !errors.Is(iv.WaitVerified(ctx), wim.ErrChecksum) {
			t.Errorf("a file inside the damaged WIM inside a local ISO does not carry its verdict (%T)", in)
		}
		in.Close()
	}
	if !strings.Contains(logBuf.String(), "local WIM inside an ISO failed verification") || !strings.Contains(logBuf.String(), "bad.iso/sources/install.wim") {
		t.Errorf("the log does not name the damaged WIM:\n%s", logBuf.String())
	}

	tree, fi := openTree(t, st, "good.iso")
	g := st.GuardISO("good.iso", fi, tree)
	if g == nil {
		t.Fatal("no guard for a local ISO of a store that verifies its WIMs")
	}
	if failed := g.VerifyAll(ctx); len(failed) != 0 {
		t.Errorf("VerifyAll of good.iso: %v", failed)
	}
	tree, fi = openTree(t, st, "bad.iso")
	g = st.GuardISO("bad.iso", fi, tree)
	for _, inner := range []string{"sources/install.wim", "sources/install.swm", "sources/install2.swm"} {
		if err := g.Check(ctx, inner); !errors.Is(err, wim.ErrChecksum) {
			t.Errorf("bad.iso %s through the guard: %v (want a checksum error)", inner, err)
		}
	}

	// A reload (the next store) keeps the verdicts: no second verification of the same ISO.
	next, err := Open(ctx, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if next.localISOWIMs != st.localISOWIMs {
		t.Error("a reload to a local store does not keep the verdicts on its ISOs' WIMs")
	}
}

// TestISOVerdictKeepsOnlyWhatTheBytesSay: a verification that failed for another reason than
// the bytes (here a stand-in for an SFTP connection that gave up) is not kept: the next caller
// verifies again and the WIM passes; a SHA-1 mismatch is kept (no second verification).
func TestISOVerdictKeepsOnlyWhatTheBytesSay(t *testing.T) {
	var v isoWIMVerifier
	ctx := context.Background()
	calls := 0
	outage := func() error {
		calls++
		return errors.New("sftpstore: read: giving up after 4 attempts: connection lost")
	}
	pass := func() error { calls++; return nil }
	if err := v.verdict(ctx, "a.iso/install.wim", "v1", outage); err == nil {
		t.Fatal("the outage passed")
	}
	if err := v.verdict(ctx, "a.iso/install.wim", "v1", pass); err != nil || calls != 2 {
		t.Fatalf("after an outage: %v, %d verifications (want a pass from a second one)", err, calls)
	}
	if err := v.verdict(ctx, "a.iso/install.wim", "v1", outage); err != nil || calls != 2 {
		t.Fatalf("a pass is kept: %v, %d verifications", err, calls)
	}
	damaged := func() error { calls++; return fmt.Errorf("blob x: %w", wim.ErrChecksum) }
	for range 2 {
		if err := v.verdict(ctx, "a.iso/b.wim", "v1", damaged); !errors.Is(err, wim.ErrChecksum) {
			t.Fatalf("damaged: %v", err)
		}
	}
	if calls != 3 {
		t.Fatalf("a checksum failure was verified %d times, want once", calls-2)
	}
	if err := v.verdict(ctx, "a.iso/b.wim", "v2", pass); err != nil {
		t.Fatalf("a new version of the ISO is verified again: %v", err)
	}
}
