package lzms

// Format constants (names follow the roles they play, values are LZMS's).
const (
	numLiteralSyms    = 256
	numLengthSyms     = 54
	numDeltaPowerSyms = 8
	maxOffsetSyms     = 799
	maxCodewordLen    = 15

	literalRebuild     = 1024
	lzOffsetRebuild    = 1024
	lengthRebuild      = 512
	deltaOffsetRebuild = 1024
	deltaPowerRebuild  = 512

	// maxChunkSize is the largest buffer LZMS can address: the largest representable match
	// offset plus one. wimlib refuses bigger chunk sizes too.
	maxChunkSize = 1180427428 + 1
)

// slotTable maps an offset or length slot to its base value and number of extra bits.
// The tables are built once from run-length descriptions and never written afterwards.
type slotTable struct {
	base  []uint32 // len = slots+1; the last entry is one past the largest value
	extra []uint8
}

// makeSlots expands (extraBits, count) runs: base[0] = 1, base[i+1] = base[i] + 1<<extra[i].
func makeSlots(runs [][2]int) slotTable {
	var t slotTable
	b := uint32(1)
	for _, r := range runs {
		for i := 0; i < r[1]; i++ {
			t.base = append(t.base, b)
			t.extra = append(t.extra, uint8(r[0]))
			b += 1 << r[0]
		}
	}
	t.base = append(t.base, b)
	return t
}

var (
	offsetSlots = makeSlots([][2]int{
		{0, 8}, {2, 9}, {3, 7}, {4, 10}, {5, 15}, {6, 15}, {7, 20}, {8, 20}, {9, 30},
		{10, 33}, {11, 40}, {12, 42}, {13, 45}, {14, 60}, {15, 73}, {16, 80}, {17, 85},
		{18, 95}, {19, 105}, {20, 6}, {30, 1},
	})
	lengthSlots = makeSlots([][2]int{
		{0, 26}, {1, 4}, {2, 6}, {3, 4}, {4, 5}, {5, 2},
		{6, 1}, {7, 1}, {8, 1}, {9, 1}, {10, 1}, {16, 1}, {30, 1},
	})
)

// numOffsetSlots is the number of offset symbols for a chunk of size n: enough slots to
// name every offset up to n-1 (wimlib's lzms_get_num_offset_slots).
func numOffsetSlots(n int) int {
	if n < 2 {
		return 0
	}
	v := uint32(n - 1)
	lo, hi := 0, maxOffsetSyms-1
	for lo < hi { // largest slot whose base is <= v
		mid := (lo + hi + 1) / 2
		if offsetSlots.base[mid] <= v {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1
}

// Power-of-two copies of the slot tables for the decode loop: indexed with a mask, they
// need no bounds checks. Entries past the last slot are zero and never used (a decoded
// slot is always below the code's symbol count).
var (
	offBase  [1024]uint32
	offExtra [1024]uint8
	lenBase  [64]uint32
	lenExtra [64]uint8
)

func init() {
	copy(offBase[:], offsetSlots.base)
	copy(offExtra[:], offsetSlots.extra)
	copy(lenBase[:], lengthSlots.base)
	copy(lenExtra[:], lengthSlots.extra)
}
