package wim

import (
	"testing"
	"unsafe"
)

func TestBufPool(t *testing.T) {
	tests := []struct {
		n, wantCap int
	}{
		{1, 4 << 10},
		{4 << 10, 4 << 10},
		{32<<10 + 1, 64 << 10},
		{45 << 20, 64 << 20}, // the short last chunk of a 64 MiB-chunk solid resource
	}
	for _, tt := range tests {
		p := newBufPool(128 << 20)
		b := p.get(tt.n)
		if len(b) != tt.n || cap(b) != tt.wantCap {
			t.Fatalf("get(%d): len %d cap %d, want cap %d", tt.n, len(b), cap(b), tt.wantCap)
		}
		p.put(b)
		again := p.get(tt.wantCap/2 + 1)
		if unsafe.SliceData(again) != unsafe.SliceData(b) {
			t.Errorf("get(%d) after put: fresh buffer, want the recycled one", tt.wantCap/2+1)
		}
	}

	p := newBufPool(64 << 10)
	a, b := p.get(64<<10), p.get(64<<10)
	p.put(a)
	p.put(b)                       // over the 64 KiB bound: left to the GC
	p.put(make([]byte, 100, 3000)) // not from the pool: ignored
	if p.bytes != 64<<10 || len(p.free[64<<10]) != 1 || len(p.free[3000]) != 0 {
		t.Errorf("pool holds %d bytes in %v classes, want one 64 KiB buffer", p.bytes, len(p.free))
	}
}

func TestScratchPools(t *testing.T) {
	var s scratchPools
	b := s.get(5000)
	if len(b) != 5000 || cap(b) != 8<<10 {
		t.Fatalf("get(5000): len %d cap %d, want 5000 and 8 KiB", len(b), cap(b))
	}
	s.put(b)
	s.put(make([]byte, 10, 1000)) // not a power-of-two class: ignored, must not poison get
	if c := s.get(8 << 10); len(c) != 8<<10 || cap(c) != 8<<10 {
		t.Fatalf("get(8 KiB): len %d cap %d", len(c), cap(c))
	}
}
