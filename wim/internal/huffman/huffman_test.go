package huffman

import (
	"errors"
	"testing"
)

// decode looks a codeword up the way the codecs do: code holds the next bits MSB-first in its
// low `width` bits.
func decode(table []uint32, tableBits uint, code uint32, width uint) (sym, length uint32) {
	e := table[code>>(width-tableBits)]
	if e&EntryPtr != 0 {
		sub := (e >> 8) & 31
		idx := (code >> (width - tableBits - uint(sub))) & (1<<sub - 1)
		e = table[(e>>16)+idx]
	}
	return e >> 16, e & EntryLenMask
}

func TestBuildTable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lens      []uint8
		tableBits uint
		maxLen    uint
		err       error
	}{
		{"complete short", []uint8{1, 2, 3, 3}, 4, 16, nil},
		{"complete long (subtables)", []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15}, 4, 16, nil},
		{"all zero", []uint8{0, 0, 0}, 4, 16, nil},
		{"over-subscribed", []uint8{1, 1, 1}, 4, 16, ErrOversubscribed},
		{"incomplete", []uint8{1, 2}, 4, 16, ErrIncomplete},
		{"length beyond max", []uint8{1, 17}, 4, 16, ErrOversubscribed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := make([]uint32, TableSize(len(tc.lens), tc.tableBits, tc.maxLen))
			err := BuildTable(table, tc.lens, tc.tableBits, tc.maxLen, make([]uint16, len(tc.lens)))
			if !errors.Is(err, tc.err) {
				t.Fatalf("BuildTable = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			// Assign canonical codes as a reference and check every symbol decodes back.
			var count [MaxCodeLen + 1]uint32
			for _, l := range tc.lens {
				count[l]++
			}
			count[0] = 0
			var next [MaxCodeLen + 2]uint32
			for l := 1; l <= MaxCodeLen; l++ {
				next[l+1] = (next[l] + count[l]) << 1
			}
			const width = 20
			for s, l := range tc.lens {
				if l == 0 {
					continue
				}
				code := next[l]
				next[l]++
				sym, n := decode(table, tc.tableBits, code<<(width-uint(l)), width)
				if sym != uint32(s) || n != uint32(l) {
					t.Errorf("symbol %d (len %d, code %b) decodes as %d len %d", s, l, code, sym, n)
				}
			}
		})
	}
}
