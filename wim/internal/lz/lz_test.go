package lz

import (
	"bytes"
	"testing"
)

// TestCopyMatch compares CopyMatch with the byte-serial definition of an LZ77 match for every
// short offset and length, with and without the 8 bytes of room the word copies need.
func TestCopyMatch(t *testing.T) {
	for off := 1; off <= 20; off++ {
		for length := 1; length <= 40; length++ {
			for _, room := range []int{0, 3, 8, 16} {
				n := off + length + room
				want := make([]byte, n)
				for i := 0; i < off; i++ {
					want[i] = byte(i*7 + 1)
				}
				got := bytes.Clone(want)
				for i := off; i < off+length; i++ {
					want[i] = want[i-off]
				}
				CopyMatch(got, off, off, length)
				if !bytes.Equal(got[:off+length], want[:off+length]) {
					t.Fatalf("off %d length %d room %d: got %v want %v", off, length, room, got[:off+length], want[:off+length])
				}
			}
		}
	}
}

func TestWords(t *testing.T) {
	b := make([]byte, 16)
	Store64(b, 3, 0x0102030405060708)
	if Load64(b, 3) != 0x0102030405060708 {
		t.Fatal("Load64/Store64 round trip")
	}
	Store8(b, 0, 0xAA)
	b[1], b[2] = 0xBB, 0xCC
	if got := Load32LE(b, 0); got != 0x08CCBBAA {
		t.Fatalf("Load32LE = %#x", got)
	}
}
