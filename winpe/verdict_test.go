package winpe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// verdictReader is a store file with a verdict (as localstore's guarded WIM files are).
type verdictReader struct {
	*bytes.Reader
	ok  bool
	err error
}

func (v *verdictReader) Verified() bool                     { return v.ok }
func (v *verdictReader) WaitVerified(context.Context) error { return v.err }
func (v *verdictReader) FullReadChecked() bool              { return false }

// TestServedWIMPassesVerdictOn: the WIM served as is (boot.wim) carries its store file's
// verdict to the HTTP server; generated files carry none and count as verified.
func TestServedWIMPassesVerdictOn(t *testing.T) {
	bad := errors.New("damaged")
	src := &verdictReader{Reader: bytes.NewReader([]byte("wim bytes")), err: bad}
	f := &raFile{name: "boot.wim", r: io.NewSectionReader(src, 0, 9)}
	if f.Verified() || f.FullReadChecked() || !errors.Is(f.WaitVerified(context.Background()), bad) {
		t.Errorf("served WIM: Verified %v, FullReadChecked %v", f.Verified(), f.FullReadChecked())
	}
	src.ok, src.err = true, nil
	if !f.Verified() || f.WaitVerified(context.Background()) != nil {
		t.Error("served WIM after a good verdict")
	}
	m := newMemFile("BCD", []byte("regf"), time.Time{})
	if !m.Verified() || m.WaitVerified(context.Background()) != nil {
		t.Error("a generated file must count as verified")
	}
}
