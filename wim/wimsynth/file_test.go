package wimsynth

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestReadAtSegments checks the segment mapping without any WIM: reads inside one segment,
// across several, at the end, past the end, and from a reader that comes up short.
func TestReadAtSegments(t *testing.T) {
	var l layout
	l.add(segment{data: []byte("head")})
	l.add(segment{data: []byte{}}) // empty segments take no entry
	l.add(segment{r: bytes.NewReader([]byte("0123456789")), roff: 2, size: 5, what: "reader"})
	l.add(segment{data: []byte("tail")})
	f := &File{segs: l.segs, size: l.pos, name: "test.wim"}
	all := "head23456tail"
	if f.Size() != int64(len(all)) || len(f.segs) != 3 {
		t.Fatalf("size %d, %d segments; want %d, 3", f.Size(), len(f.segs), len(all))
	}
	tests := []struct {
		off  int64
		n    int
		want string
		err  error
	}{
		{0, 4, "head", nil},
		{2, 5, "ad234", nil},
		{5, 8, "3456tail", nil},
		{0, 13, all, nil},
		{10, 10, "ail", io.EOF},
		{13, 1, "", io.EOF},
		{13, 0, "", nil},
		{99, 4, "", io.EOF},
	}
	for _, tt := range tests {
		p := make([]byte, tt.n)
		n, err := f.ReadAt(p, tt.off)
		if string(p[:n]) != tt.want || !errors.Is(err, tt.err) && err != tt.err {
			t.Errorf("ReadAt(%d, %d) = %q, %v; want %q, %v", tt.off, tt.n, p[:n], err, tt.want, tt.err)
		}
	}
	if _, err := f.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
	short := &File{segs: []segment{{r: bytes.NewReader([]byte("ab")), size: 5, what: "short reader"}}, size: 5, name: "x"}
	if n, err := short.ReadAt(make([]byte, 5), 0); n != 2 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short source: %d, %v; want 2, ErrUnexpectedEOF", n, err)
	}
}

// TestSegmentName: a source blob's segment, stored without a name of its own, is named in
// errors by the blob's hash, whether its bytes are fed (hashed as they pass) or verified.
func TestSegmentName(t *testing.T) {
	h := sha1.Sum([]byte("blob"))
	want := fmt.Sprintf("blob %x", h)
	for _, s := range []segment{{feed: h}, {verify: newVerdict(h)}} {
		if got := s.name(); got != want {
			t.Errorf("segment %+v is named %q, want %q", s, got, want)
		}
	}
	if got := (&segment{what: "header", feed: h}).name(); got != "header" {
		t.Errorf("a named segment is called %q", got)
	}
}
