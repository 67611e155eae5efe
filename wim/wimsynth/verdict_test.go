package wimsynth_test

import (
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// verdictReader is a store file with a verdict (wim.Verdict) that the test controls.
type verdictReader struct {
	io.ReaderAt
	good atomic.Bool
}

func (v *verdictReader) Verified() bool { return v.good.Load() }
func (v *verdictReader) WaitVerified(ctx context.Context) error {
	if v.good.Load() {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestReaderPassesVerdictOn: a Reader tells servers the source's store verdict (ranges wait
// for it) and that its full reads are checked; once the store vouches for the source, the
// compressed resources are not decoded again (VerifyBlob trusts the verdict), and a full read
// still completes.
func TestReaderPassesVerdictOn(t *testing.T) {
	d := wimtest.MakeDamagedWIM(t, "LZX", 60)
	f, err := os.Open(d.Good)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	vr := &verdictReader{ReaderAt: f}
	a, err := wim.Open(vr, st.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := wimsynth.Build(a, wimsynth.Options{Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := sf.NewReader()
	if r.Verified() || !r.FullReadChecked() {
		t.Fatalf("before the store's verdict: Verified %v FullReadChecked %v", r.Verified(), r.FullReadChecked())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.WaitVerified(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitVerified before the verdict: %v", err)
	}
	vr.good.Store(true)
	if !r.Verified() || r.WaitVerified(context.Background()) != nil {
		t.Fatal("the store's good verdict is not passed on")
	}
	if _, err := io.ReadAll(io.NewSectionReader(r, 0, sf.Size())); err != nil {
		t.Fatalf("full read of a verified source: %v", err)
	}
}
