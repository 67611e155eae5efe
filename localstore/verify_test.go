package localstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/verdicts"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// verifyLab is a store folder holding pe.wim (an XPRESS WIM captured by wimlib-imagex,
// big.bin and other.bin in image 1), a verdicts file, and what the tests need to know.
type verifyLab struct {
	root, db string
	d        wimtest.DamagedWIM // d.Good is pe.wim's content, d.Path a damaged copy
	good     []byte
	log      *testenv.LogBuffer
}

func newVerifyLab(t *testing.T) *verifyLab {
	t.Helper()
	d := wimtest.MakeDamagedWIM(t, "XPRESS", 7) // random data: chunks stored raw, but cached
	good, err := os.ReadFile(d.Good)
	if err != nil {
		t.Fatal(err)
	}
	l := &verifyLab{root: t.TempDir(), db: filepath.Join(t.TempDir(), "state", "verdicts.db"), d: d, good: good, log: &testenv.LogBuffer{}}
	if err := os.WriteFile(filepath.Join(l.root, "pe.wim"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

// start is one daemon start: a Verifier over the lab's verdicts file and a Store using it.
func (l *verifyLab) start(t *testing.T) (*Store, *Verifier) {
	t.Helper()
	db, err := verdicts.Open(l.db)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(VerifierOptions{DB: db, Logger: slog.New(slog.NewTextHandler(l.log, nil))})
	s, err := New(l.root, Options{Verifier: v, Cache: wim.NewCache(16 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); v.Close() })
	return s, v
}

// verdictOf opens name and waits for its verdict.
func verdictOf(t *testing.T, s *Store, name string) error {
	t.Helper()
	f, err := s.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	v, ok := f.(interface {
		WaitVerified(context.Context) error
	})
	if !ok {
		t.Fatalf("%s (%T) carries no verdict", name, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return v.WaitVerified(ctx)
}

type verdicter interface {
	Verified() bool
	WaitVerified(context.Context) error
	FullReadChecked() bool
}

func TestVerifiedOnceAcrossRestarts(t *testing.T) {
	l := newVerifyLab(t)
	s, v := l.start(t)
	s.VerifyInBackground([]string{"pe.wim", "notes.txt"})
	if err := verdictOf(t, s, "pe.wim"); err != nil {
		t.Fatalf("first start: %v", err)
	}
	if st := v.Stats(); st.Verified != 1 || st.Remembered != 0 {
		t.Fatalf("first start: %+v, want one verification", st)
	}
	// Opening it again, through an image path too, verifies nothing more.
	if err := verdictOf(t, s, "pe.wim:1/big.bin"); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.Verified != 1 {
		t.Fatalf("second open verified again: %+v", st)
	}

	// A restart: a new verifier over the same state file knows the WIM at once.
	s2, v2 := l.start(t)
	f, err := s2.Open("pe.wim:1/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !f.(verdicter).Verified() {
		t.Error("after a restart the unchanged WIM is not known verified")
	}
	f.Close()
	if st := v2.Stats(); st.Verified != 0 || st.Remembered != 1 {
		t.Fatalf("after restart: %+v, want the verdict remembered and no verification", st)
	}

	// Touching the file is a new version: verified again (once).
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(l.root, "pe.wim"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := verdictOf(t, s2, "pe.wim"); err != nil {
		t.Fatal(err)
	}
	if st := v2.Stats(); st.Verified != 1 {
		t.Fatalf("after touch: %+v, want one verification", st)
	}
	if n, err := (&verdicts.DB{}).Len(); err == nil {
		t.Fatalf("a zero DB reads: %d", n)
	}
}

// ddZeros writes n zero bytes at off into path in place, as `dd conv=notrunc` does.
func ddZeros(t *testing.T, path string, off, n int64) {
	t.Helper()
	if dd, err := exec.LookPath("dd"); err == nil {
		out, err := exec.Command(dd, "if=/dev/zero", "of="+path, "bs=1", "seek="+strconv.FormatInt(off, 10),
			"count="+strconv.FormatInt(n, 10), "conv=notrunc", "status=none").CombinedOutput()
		if err != nil {
			t.Fatalf("dd: %v\n%s", err, out)
		}
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

func TestWrittenInPlaceIsNoticed(t *testing.T) {
	l := newVerifyLab(t)
	s, v := l.start(t)
	if err := verdictOf(t, s, "pe.wim"); err != nil {
		t.Fatal(err)
	}
	// A client is reading big.bin (its first chunk is in the cache now) and another the WIM
	// file itself.
	inner, err := s.Open("pe.wim:1/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	whole, err := s.Open("pe.wim")
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	buf := make([]byte, 1000)
	if _, err := inner.(io.ReaderAt).ReadAt(buf, 0); err != nil || !bytes.Equal(buf, l.d.Data[:1000]) {
		t.Fatalf("before: %v", err)
	}
	if !inner.(verdicter).Verified() || !whole.(verdicter).Verified() {
		t.Fatal("verified WIM's files say they are not")
	}
	if st := s.cache.Stats(); st.Entries == 0 {
		t.Fatal("nothing cached: the test needs a cached chunk")
	}

	// dd conv=notrunc: 10 KiB of zeros over big.bin's stored data.
	ddZeros(t, filepath.Join(l.root, "pe.wim"), l.d.Offset-1000, 10<<10)

	// The readers of the old version get no byte of the new one: the next read of the file
	// fails, marked as damage (servers cut the body before it completes).
	_, err = whole.(io.ReaderAt).ReadAt(buf, l.d.Offset-1000)
	var ce *ChangedError
	if !errors.As(err, &ce) || !ce.Corrupt() {
		t.Fatalf("reading the WIM file after dd: %v, want ChangedError", err)
	}
	if _, err := inner.(io.ReaderAt).ReadAt(buf, 2*32<<10); !errors.As(err, &ce) {
		t.Fatalf("reading big.bin after dd: %v, want ChangedError", err)
	}
	if inner.(verdicter).Verified() || whole.(verdicter).Verified() {
		t.Error("files of the changed WIM still say they are verified")
	}
	// Its decoded chunks are gone from the shared cache.
	if st := s.cache.Stats(); st.Entries != 0 {
		t.Errorf("%d chunks of the changed WIM still cached", st.Entries)
	}

	// The next request gets the new version, not verified: no immutable headers (Verified
	// false), a range waits and learns that it is damaged; a full read of big.bin fails its
	// SHA-1 check.
	f, err := s.Open("pe.wim:1/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if f.(verdicter).Verified() {
		t.Error("the changed WIM counts as verified before it was verified again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ve *VerifyError
	if err := f.(verdicter).WaitVerified(ctx); !errors.As(err, &ve) || !ve.Corrupt() {
		t.Fatalf("verdict on the changed WIM: %v, want VerifyError", err)
	}
	if _, err := io.ReadAll(f); !errors.Is(err, wim.ErrChecksum) {
		t.Errorf("full read of the damaged big.bin: %v, want a checksum error", err)
	}
	f.Close()
	// An undamaged file of it still reads whole (checked against its SHA-1).
	if got, err := readAll(t, s, "pe.wim:1/other.bin"); err != nil || !bytes.Equal(got, l.d.OData) {
		t.Errorf("undamaged file of the damaged WIM: %v", err)
	}
	if _, err := s.Open("pe.wim"); !errors.As(err, &ve) {
		t.Errorf("opening the damaged WIM: %v, want VerifyError", err)
	}
	if st := v.Stats(); st.Verified != 1 || st.Failed != 1 {
		t.Errorf("stats %+v, want one good and one failed verification", st)
	}
	if log := l.log.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "pe.wim") || !strings.Contains(log, "changed in place") {
		t.Errorf("log lacks the change and the failed verification:\n%s", log)
	}
}

func TestDamagedWIMStaysRefusedUntilChanged(t *testing.T) {
	l := newVerifyLab(t)
	damaged, err := os.ReadFile(l.d.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.root, "pe.wim"), damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	s, v := l.start(t)
	var ve *VerifyError
	if err := verdictOf(t, s, "pe.wim"); !errors.As(err, &ve) {
		t.Fatalf("verdict: %v, want VerifyError", err)
	}
	if !strings.Contains(ve.Error(), "pe.wim") || !strings.Contains(ve.Error(), "SHA-1 mismatch") {
		t.Errorf("the error does not say which WIM and what is wrong: %v", ve)
	}
	if log := l.log.String(); !strings.Contains(log, "level=ERROR msg=\"WIM failed verification") {
		t.Errorf("no ERROR record:\n%s", log)
	}
	// Inside it: no file counts as verified, a range (WaitVerified) learns why, a full read
	// of the damaged file fails its SHA-1 check.
	f, err := s.Open("pe.wim:1/other.bin")
	if err != nil {
		t.Fatal(err)
	}
	if fv := f.(verdicter); fv.Verified() || !errors.As(fv.WaitVerified(context.Background()), &ve) {
		t.Errorf("a file of the damaged WIM: Verified %v", fv.Verified())
	}
	f.Close()
	if _, err := readAll(t, s, "pe.wim:1/big.bin"); !errors.Is(err, wim.ErrChecksum) {
		t.Errorf("full read of the damaged file: %v", err)
	}

	// A restart: still refused, from the state file, without verifying again.
	s2, v2 := l.start(t)
	if _, err := s2.Open("pe.wim"); !errors.As(err, &ve) {
		t.Fatalf("after restart: %v, want VerifyError", err)
	}
	if st := v2.Stats(); st.Failed != 0 || st.Remembered != 1 {
		t.Errorf("after restart: %+v, want the bad verdict remembered", st)
	}
	// The admin repairs it in place: a new version, verified and served.
	if err := os.WriteFile(filepath.Join(l.root, "pe.wim"), l.good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := verdictOf(t, s2, "pe.wim"); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	got, err := readAll(t, s2, "pe.wim:1/big.bin")
	if err != nil || !bytes.Equal(got, l.d.Data) {
		t.Fatalf("after repair: %v", err)
	}
	if st := v.Stats(); st.Failed != 1 {
		t.Errorf("first start: %+v", st)
	}
}

func TestRenameReplaceKeepsOldReadersVerified(t *testing.T) {
	l := newVerifyLab(t)
	s, _ := l.start(t)
	if err := verdictOf(t, s, "pe.wim"); err != nil {
		t.Fatal(err)
	}
	whole, err := s.Open("pe.wim")
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	inner, err := s.Open("pe.wim:1/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	// The admin puts the damaged copy in place by rename (another inode).
	damaged, _ := os.ReadFile(l.d.Path)
	tmp := filepath.Join(l.root, "pe.wim.tmp")
	if err := os.WriteFile(tmp, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(l.root, "pe.wim")); err != nil {
		t.Fatal(err)
	}
	// Clients that opened the old file keep reading it, whole and verified.
	got, err := io.ReadAll(io.NewSectionReader(whole.(io.ReaderAt), 0, int64(len(l.good))))
	if err != nil || !bytes.Equal(got, l.good) {
		t.Errorf("old reader of the WIM file: %v (equal %v)", err, bytes.Equal(got, l.good))
	}
	got, err = io.ReadAll(inner)
	if err != nil || !bytes.Equal(got, l.d.Data) {
		t.Errorf("old reader of big.bin: %v", err)
	}
	if !whole.(verdicter).Verified() || !inner.(verdicter).Verified() {
		t.Error("old readers lost their verdict")
	}
	// New requests get the new file, which is verified on its own (and is damaged).
	var ve *VerifyError
	if err := verdictOf(t, s, "pe.wim:1/other.bin"); !errors.As(err, &ve) {
		t.Errorf("the new file's verdict: %v, want VerifyError", err)
	}
}

func TestUnverifiedMeanwhile(t *testing.T) {
	l := newVerifyLab(t)
	s, v := l.start(t)
	release := make(chan struct{})
	started := make(chan string, 1)
	v.beforeVerify = func(p string) { started <- p; <-release }
	f, err := s.Open("pe.wim:1/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := <-started; p != "pe.wim" {
		t.Fatalf("verifying %q", p)
	}
	fv := f.(verdicter)
	if fv.Verified() || !fv.FullReadChecked() {
		t.Fatalf("a file inside an unverified WIM: Verified %v, FullReadChecked %v", fv.Verified(), fv.FullReadChecked())
	}
	// A full read is served meanwhile (the wim package checks its SHA-1).
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, l.d.Data) {
		t.Fatalf("full read while verifying: %v", err)
	}
	whole, err := s.Open("PE.WIM") // any case
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if wv := whole.(verdicter); wv.Verified() || wv.FullReadChecked() {
		t.Fatalf("the WIM file while verifying: Verified %v, FullReadChecked %v", wv.Verified(), wv.FullReadChecked())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := whole.(verdicter).WaitVerified(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting while verification is held: %v", err)
	}
	if st := v.Stats(); st.Running != "pe.wim" {
		t.Errorf("stats while verifying: %+v", st)
	}
	close(release)
	if err := whole.(verdicter).WaitVerified(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !fv.Verified() {
		t.Error("after the verdict the file still says unverified")
	}
	if _, err := fs.Stat(s, "pe.wim"); err != nil {
		t.Fatal(err)
	}
}
