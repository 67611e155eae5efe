package huffman

import (
	"math/rand/v2"
	"testing"
)

// kraft returns the Kraft sum of lens in units of 2^-maxLen, and the longest length.
func kraft(lens []uint8, maxLen uint) (sum int, longest uint8) {
	for _, l := range lens {
		if l != 0 {
			sum += 1 << (maxLen - uint(l))
			longest = max(longest, l)
		}
	}
	return sum, longest
}

func TestLengths(t *testing.T) {
	fib := make([]uint32, 40) // Fibonacci frequencies make the deepest Huffman trees
	fib[0], fib[1] = 1, 1
	for i := 2; i < len(fib); i++ {
		fib[i] = fib[i-1] + fib[i-2]
	}
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]uint32, 512)
	for i := range random {
		if rng.IntN(3) > 0 {
			random[i] = uint32(rng.IntN(5000))
		}
	}
	skewed := make([]uint32, 512)
	for i := range skewed {
		skewed[i] = 1 << (i % 24)
	}
	for _, tc := range []struct {
		name   string
		freqs  []uint32
		maxLen uint
		want   []uint8 // nil: check only completeness and the limit
	}{
		{"two symbols", []uint32{5, 9}, 15, []uint8{1, 1}},
		{"classic", []uint32{1, 1, 2, 4}, 15, []uint8{3, 3, 2, 1}},
		{"one used (not 0)", []uint32{0, 0, 7, 0}, 15, []uint8{1, 0, 1, 0}},
		{"one used (0)", []uint32{7, 0, 0}, 15, []uint8{1, 1, 0}},
		{"none used", []uint32{0, 0, 0}, 15, []uint8{0, 0, 0}},
		{"fibonacci limited", fib, 15, nil},
		{"fibonacci limited to 7", fib, 7, nil},
		{"random 512", random, 15, nil},
		{"skewed 512", skewed, 15, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Builder
			lens := make([]uint8, len(tc.freqs))
			if err := b.Lengths(lens, tc.freqs, tc.maxLen); err != nil {
				t.Fatal(err)
			}
			if tc.want != nil {
				for i := range lens {
					if lens[i] != tc.want[i] {
						t.Fatalf("lengths %v; want %v", lens, tc.want)
					}
				}
			}
			sum, longest := kraft(lens, tc.maxLen)
			if sum != 1<<tc.maxLen && sum != 0 {
				t.Fatalf("Kraft sum %d/%d: code not complete (lengths %v)", sum, 1<<tc.maxLen, lens)
			}
			if uint(longest) > tc.maxLen {
				t.Fatalf("longest codeword %d > limit %d", longest, tc.maxLen)
			}
			for s, f := range tc.freqs {
				if f != 0 && lens[s] == 0 {
					t.Fatalf("used symbol %d has no codeword", s)
				}
			}
			// The decode tables accept what the builder makes, and every codeword decodes
			// to its symbol.
			codes := make([]uint16, len(lens))
			Codewords(codes, lens)
			table := make([]uint32, TableSize(len(lens), 9, tc.maxLen))
			if err := BuildTable(table, lens, 9, tc.maxLen, make([]uint16, len(lens))); err != nil {
				t.Fatalf("BuildTable: %v", err)
			}
			if sum == 0 {
				return
			}
			for s, l := range lens {
				if l == 0 {
					continue
				}
				code := uint32(codes[s]) << (16 - uint(l))
				if sym, n := decode(table, 9, code, 16); sym != uint32(s) || n != uint32(l) {
					t.Fatalf("codeword of symbol %d (len %d) decodes to %d (len %d)", s, l, sym, n)
				}
			}
		})
	}
}

// TestLengthsOptimal compares the cost of codes the limit does not touch (frequencies within
// a factor of 10 keep the tree shallow) with the exact Huffman cost computed by repeated
// merging of the two smallest weights.
func TestLengthsOptimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var b Builder
	for iter := 0; iter < 200; iter++ {
		n := 2 + rng.IntN(300)
		freqs := make([]uint32, n)
		for i := range freqs {
			if rng.IntN(4) > 0 {
				freqs[i] = uint32(100 + rng.IntN(900))
			}
		}
		freqs[0], freqs[1] = 100+freqs[0], 100+freqs[1]
		lens := make([]uint8, n)
		if err := b.Lengths(lens, freqs, 16); err != nil {
			t.Fatal(err)
		}
		got := 0
		for i, f := range freqs {
			got += int(f) * int(lens[i])
		}
		if want := huffmanCost(freqs); got != want {
			t.Fatalf("iteration %d: cost %d; optimal %d", iter, got, want)
		}
	}
}

func huffmanCost(freqs []uint32) int {
	var w []int
	for _, f := range freqs {
		if f != 0 {
			w = append(w, int(f))
		}
	}
	cost := 0
	for len(w) > 1 {
		// Extract the two smallest.
		for k := 0; k < 2; k++ {
			m := k
			for i := k; i < len(w); i++ {
				if w[i] < w[m] {
					m = i
				}
			}
			w[k], w[m] = w[m], w[k]
		}
		s := w[0] + w[1]
		cost += s
		w = append(w[2:], s)
	}
	return cost
}

func TestLengthsErrors(t *testing.T) {
	var b Builder
	if err := b.Lengths(make([]uint8, 3), make([]uint32, 4), 15); err == nil {
		t.Error("mismatched slices accepted")
	}
	if err := b.Lengths(make([]uint8, 4), make([]uint32, 4), 0); err == nil {
		t.Error("limit 0 accepted")
	}
	many := make([]uint32, 300)
	for i := range many {
		many[i] = 1
	}
	if err := b.Lengths(make([]uint8, 300), many, 8); err == nil {
		t.Error("300 used symbols under an 8-bit limit accepted")
	}
}

func TestCodewordsCanonical(t *testing.T) {
	lens := []uint8{2, 1, 3, 3}
	codes := make([]uint16, 4)
	Codewords(codes, lens)
	if want := []uint16{0b10, 0b0, 0b110, 0b111}; codes[0] != want[0] || codes[1] != want[1] || codes[2] != want[2] || codes[3] != want[3] {
		t.Fatalf("codes %b; want %b", codes, want)
	}
}

func BenchmarkLengths(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	freqs := make([]uint32, 512)
	for i := range freqs {
		freqs[i] = uint32(rng.IntN(3000))
	}
	lens := make([]uint8, 512)
	var bl Builder
	b.ReportAllocs()
	for b.Loop() {
		if err := bl.Lengths(lens, freqs, 15); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzLengths builds codes for arbitrary frequencies (two bytes per symbol, 2 to 600
// symbols) under limits 9 to 16: always complete (or all zero) and within the limit, or an
// error when the used symbols cannot fit.
func FuzzLengths(f *testing.F) {
	f.Add([]byte{1, 0, 2, 0, 3, 0}, uint8(15))
	f.Add(make([]byte, 1024), uint8(9))
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		n := min(len(data)/2, 600)
		if n < 2 {
			return
		}
		maxLen := 9 + uint(limit%8)
		freqs := make([]uint32, n)
		for i := range freqs {
			freqs[i] = uint32(data[2*i]) | uint32(data[2*i+1])<<8
			if data[2*i+1] == 0xFF {
				freqs[i] <<= 15 // huge, skewed weights
			}
		}
		var b Builder
		lens := make([]uint8, n)
		if err := b.Lengths(lens, freqs, maxLen); err != nil {
			if fitsUsed(freqs, maxLen) {
				t.Fatalf("refused a code that fits: %v", err)
			}
			return
		}
		sum, longest := kraft(lens, maxLen)
		if (sum != 1<<maxLen && sum != 0) || uint(longest) > maxLen {
			t.Fatalf("Kraft sum %d/%d, longest %d, limit %d", sum, 1<<maxLen, longest, maxLen)
		}
	})
}
