package lzms

import "encoding/binary"

// prob is an adaptive probability entry: the last 64 bits coded with it and how many of
// them were zeros (the chance of a zero, in 64ths, before clamping to 1..63).
type prob struct {
	recent uint64
	zeros  uint32
}

// Initial history 0x0000000055555555: 48 zeros of 64.
var initialProb = prob{recent: 0x0000000055555555, zeros: 48}

// rangeDecoder is the forward bitstream: range, code and the byte index of the next word.
// It is passed and returned by value so that the compiler keeps it in registers.
type rangeDecoder struct {
	rng, code uint32
	pos       int
}

// normalize shifts in the next word once the range has dropped to 16 bits. Past the end
// of src it shifts in zeros (as wimlib does) but still counts the word, so that the
// overlap check at the end sees the overrun.
func (r rangeDecoder) normalize(src []byte) rangeDecoder {
	if r.rng <= 0xffff {
		r.rng <<= 16
		r.code <<= 16
		if p := r.pos; p+2 <= len(src) {
			r.code |= uint32(src[p]) | uint32(src[p+1])<<8
		}
		r.pos += 2
	}
	return r
}

// bit decodes one bit with entry p (range normalised) and updates p.
func (r rangeDecoder) bit(p *prob) (rangeDecoder, uint32) {
	// The coder never uses 0 or 64 (of 64): clamp to 1..63 with arithmetic, not a table
	// load, since the next decision often uses the same entry.
	z := p.zeros
	bound := (r.rng >> 6) * (z - z>>6 + (z-1)>>31)
	var bit uint32
	if r.code >= bound {
		r.rng -= bound
		r.code -= bound
		bit = 1
	} else {
		r.rng = bound
	}
	h := p.recent
	p.recent = h<<1 | uint64(bit)
	p.zeros = z + uint32(h>>63) - bit
	return r, bit
}

// bitReader is the backward bitstream: buf holds n valid bits at its top; pos is the
// byte index just past the next word to read (going down).
type bitReader struct {
	buf uint64
	n   uint
	pos int
}

// refill tops the buffer up to at least 48 bits by OR-ing in the eight bytes below pos:
// bits below the valid ones are either zero or already the right stream bits, so this
// is exact; only whole words are counted as loaded. Below the start of src the stream
// reads as zeros (as in wimlib), still counted for the overlap check. src must hold at
// least 8 bytes (Decompress pads shorter chunks).
func (b bitReader) refill(src []byte) bitReader {
	var v uint64
	if b.pos >= 8 {
		v = binary.LittleEndian.Uint64(src[b.pos-8 : b.pos])
	} else {
		v = binary.LittleEndian.Uint64(src[:8]) << uint((8-b.pos)*8) // 0 once pos <= 0
	}
	b.buf |= v >> (b.n & 63)
	k := (63 - b.n) >> 4
	b.n += k * 16
	b.pos -= int(k) * 2
	return b
}

// bits returns the next n (<= 31, buffered) bits.
func (b bitReader) bits(n uint) (bitReader, uint32) {
	v := uint32(b.buf >> 32 >> ((32 - n) & 63)) // n may be 0
	b.buf <<= n
	b.n -= n
	return b, v
}

// symbol decodes one Huffman symbol (at least 15 bits buffered).
func (b bitReader) symbol(table []uint32, tb uint) (bitReader, uint32) {
	e := table[b.buf>>(64-tb)]
	if e&entrySubFlag != 0 {
		e = table[e>>16+uint32((b.buf<<(e&entryLenMask))>>((64-(e>>8&15))&63))]
	}
	l := uint(e & entryLenMask)
	b.buf <<= l
	b.n -= l
	return b, e >> 16
}

// literal decodes a literal with the array-backed literal table (buffer refilled).
func (b bitReader) literal(t *[litTableSize]uint32) (bitReader, uint32) {
	e := t[b.buf>>(64-literalTableBits)]
	if e&entrySubFlag != 0 {
		e = t[(e>>16+uint32((b.buf<<(e&entryLenMask))>>((64-(e>>8&15))&63)))&(litTableSize-1)]
	}
	l := uint(e & entryLenMask)
	b.buf <<= l
	b.n -= l
	return b, e >> 16 & 0xff
}

// offsetSym decodes an LZ offset slot with the array-backed table (buffer refilled).
func (b bitReader) offsetSym(t *[offTableSize]uint32) (bitReader, uint32) {
	e := t[b.buf>>(64-offsetTableBits)]
	if e&entrySubFlag != 0 {
		e = t[(e>>16+uint32((b.buf<<(e&entryLenMask))>>((64-(e>>8&15))&63)))&(offTableSize-1)]
	}
	l := uint(e & entryLenMask)
	b.buf <<= l
	b.n -= l
	return b, e >> 16 & 1023
}

// lengthSym decodes a length slot with the array-backed table (buffer refilled).
func (b bitReader) lengthSym(t *[lenTableSize]uint32) (bitReader, uint32) {
	e := t[b.buf>>(64-lengthTableBits)]
	if e&entrySubFlag != 0 {
		e = t[(e>>16+uint32((b.buf<<(e&entryLenMask))>>((64-(e>>8&15))&63)))&(lenTableSize-1)]
	}
	l := uint(e & entryLenMask)
	b.buf <<= l
	b.n -= l
	return b, e >> 16 & 63
}

// state is everything a decoder keeps between chunks (reset at each chunk start). The
// literal loop keeps only the two bitstreams, the position and the main state in
// registers; everything the rarer match path needs lives here.
type state struct {
	mainProbs     [16]prob
	matchProbs    [32]prob
	lzProbs       [64]prob
	deltaProbs    [64]prob
	lzRepProbs    [2][64]prob
	deltaRepProbs [2][64]prob

	matchState, lzState, deltaState uint32
	lzRepState, deltaRepState       [2]uint32

	// Recent-offset queues: three usable entries plus the overflow slot, and the value
	// waiting for front insertion one item later.
	recentLZ     [4]uint32 // front insertion at once; see lzEnd in items
	recentDelta  [4]uint64 // power<<32 | raw offset
	pendingDelta uint64
	deltaStill   int

	literal, lzOffset, length, deltaOffset, deltaPower adaptiveCode

	// The literal code's table and counts as arrays (the code's slices point into
	// them), so that the literal loop indexes them without bounds checks.
	litTable [litTableSize]uint32
	litFreqs [numLiteralSyms]uint32
	offTable [offTableSize]uint32 // the LZ offset code's
	offFreqs [1024]uint32
	lenTable [lenTableSize]uint32
	lenFreqs [64]uint32
	dofTable [offTableSize]uint32 // the delta offset code's
	dofFreqs [1024]uint32
	powTable [powTableSize]uint32
	powFreqs [8]uint32
	scratch  huffScratch
	x86      x86Undo

	dst, in []byte
	size    int // the whole chunk's size: len(dst), or more when decoding a prefix
	regs    loopRegs
	pad     [8]byte
	err     error
}

// Direct-table index bits per code: a trade between lookup hit rate and rebuild cost.
const (
	literalTableBits = 10
	offsetTableBits  = 10
	lengthTableBits  = 10
	powerTableBits   = 8

	// litTableSize is a power of two that holds the direct table and the largest
	// possible subtables (see newAdaptiveCode), so masked indexes stay inside.
	litTableSize = 8192
	offTableSize = 16384 // >= 1<<offsetTableBits + (maxOffsetSyms/2+1)<<(15-offsetTableBits)
	lenTableSize = 2048  // >= 1<<lengthTableBits + (numLengthSyms/2+1)<<(15-lengthTableBits)
	powTableSize = 1024  // >= 1<<powerTableBits + (numDeltaPowerSyms/2+1)<<(15-powerTableBits)
)

func (s *state) init(maxOffsetSlots int) {
	s.literal = adaptiveCode{
		tableBits:   literalTableBits,
		rebuildFreq: literalRebuild,
		freqs:       s.litFreqs[:],
		lens:        make([]uint8, numLiteralSyms),
		table:       s.litTable[:],
	}
	s.lzOffset = adaptiveCode{
		tableBits:   offsetTableBits,
		rebuildFreq: lzOffsetRebuild,
		freqs:       s.offFreqs[:maxOffsetSlots],
		lens:        make([]uint8, maxOffsetSlots),
		table:       s.offTable[:],
	}
	s.length = adaptiveCode{
		tableBits:   lengthTableBits,
		rebuildFreq: lengthRebuild,
		freqs:       s.lenFreqs[:numLengthSyms],
		lens:        make([]uint8, numLengthSyms),
		table:       s.lenTable[:],
	}
	s.deltaOffset = adaptiveCode{
		tableBits:   offsetTableBits,
		rebuildFreq: deltaOffsetRebuild,
		freqs:       s.dofFreqs[:maxOffsetSlots],
		lens:        make([]uint8, maxOffsetSlots),
		table:       s.dofTable[:],
	}
	s.deltaPower = adaptiveCode{
		tableBits:   powerTableBits,
		rebuildFreq: deltaPowerRebuild,
		freqs:       s.powFreqs[:],
		lens:        make([]uint8, numDeltaPowerSyms),
		table:       s.powTable[:],
	}
	s.x86 = newX86Undo()
}

func (s *state) reset(outSize int) {
	for _, t := range [][]prob{s.mainProbs[:], s.matchProbs[:], s.lzProbs[:], s.deltaProbs[:],
		s.lzRepProbs[0][:], s.lzRepProbs[1][:], s.deltaRepProbs[0][:], s.deltaRepProbs[1][:]} {
		for i := range t {
			t[i] = initialProb
		}
	}
	s.matchState, s.lzState, s.deltaState = 0, 0, 0
	s.lzRepState, s.deltaRepState = [2]uint32{}, [2]uint32{}
	s.recentLZ = [4]uint32{1, 2, 3, 4}
	s.recentDelta = [4]uint64{1, 2, 3, 4}
	s.pendingDelta = 0
	s.deltaStill = -1

	// Chunks of 1 or 2 bytes have 0 or 1 offset slots; two keep the code well formed,
	// and any offset decoded there fails the position check anyway.
	nOff := max(2, numOffsetSlots(outSize))
	s.literal.reset(numLiteralSyms, &s.scratch)
	s.lzOffset.reset(nOff, &s.scratch)
	s.length.reset(numLengthSyms, &s.scratch)
	s.deltaOffset.reset(nOff, &s.scratch)
	s.deltaPower.reset(numDeltaPowerSyms, &s.scratch)
}

// decode decodes the items of one chunk into dst (no x86 undo yet). The compressed
// data is in[start:]; start is 0 except for chunks under 8 bytes, which Decompress
// zero-pads in front to 8 bytes for the bit reader.
func (s *state) decode(dst, in []byte, start int) error {
	return s.decodePrefix(dst, in, start, len(dst))
}

// decodePrefix decodes the first len(dst) bytes of a chunk of size bytes: the items are
// checked against the whole chunk (a match may run past dst's end; it is cut there).
func (s *state) decodePrefix(dst, in []byte, start, size int) error {
	s.reset(size)
	s.dst, s.in, s.size = dst, in, size
	defer func() { s.dst, s.in, s.regs = nil, nil, loopRegs{} }()

	rd := rangeDecoder{
		rng:  0xffffffff,
		code: uint32(binary.LittleEndian.Uint16(in[start:]))<<16 | uint32(binary.LittleEndian.Uint16(in[start+2:])),
		pos:  start + 4,
	}
	br := bitReader{pos: len(in)}
	var ok bool
	if useAsm {
		rd, br, ok = s.itemsAsm(rd, br)
	} else {
		rd, br, ok = s.items(rd, br)
	}
	if !ok {
		return s.err
	}

	// The range coder reads two words ahead; everything else it read, and everything the
	// backward reader consumed, must fit in src without the two overlapping.
	backBits := (len(in)-br.pos)*8 - int(br.n)
	if rangeBytes, backBytes := rd.pos-start-4, (backBits+15)/16*2; rangeBytes+backBytes > len(in)-start {
		return corrupt("compressed data overrun: range coder read %d bytes and bitstream %d bytes of %d (truncated chunk?)", rd.pos-start, backBytes, len(in)-start)
	}
	return nil
}

// items decodes the items of a chunk into s.dst. Literals and LZ matches, the common
// items, are decoded inline; delta matches and code rebuilds are calls on their own
// (rarer) paths, so that the streams, the position and the main state stay in registers
// on the literal path. It returns ok=false with s.err set on corrupt data.
func (s *state) items(rd rangeDecoder, br bitReader) (rangeDecoder, bitReader, bool) {
	dst, in := s.dst, s.in
	in = in[:len(in):len(in)] // cap == len: one register less in the loop
	until := s.literal.until  // in a register, not decremented in memory per literal
	var mainState uint32
	// lzEnd is the position just after the last LZ match. An LZ match that starts there
	// finds the previous match's offset at the queue's front although the format has
	// not inserted it yet (insertion is delayed by one item): its repeat index then
	// refers to the entry one further back (wimlib decodes it the same way).
	lzEnd := -1
	for pos := 0; pos < len(dst); {
		var bit uint32
		rd, bit = rd.normalize(in).bit(&s.mainProbs[mainState&15])
		mainState = mainState<<1 | bit
		if bit == 0 {
			if br.n < 16 {
				br = br.refill(in)
			}
			var sym uint32
			br, sym = br.literal(&s.litTable)
			dst[pos] = byte(sym)
			pos++
			s.litFreqs[sym]++
			if until--; until == 0 {
				s.literal.rebuild(&s.scratch)
				until = literalRebuild
			}
			continue
		}

		rd, bit = rd.normalize(in).bit(&s.matchProbs[s.matchState&31])
		s.matchState = s.matchState<<1 | bit
		if bit != 0 {
			var ok bool
			if rd, br, pos, ok = s.deltaMatch(pos, rd, br); !ok {
				return rd, br, false
			}
			continue
		}

		// LZ match: explicit or repeated offset, then the length.
		rd, bit = rd.normalize(in).bit(&s.lzProbs[s.lzState&63])
		s.lzState = s.lzState<<1 | bit
		q := &s.recentLZ
		var offset uint32
		if bit == 0 {
			br = br.refill(in)
			var slot, extra uint32
			br, slot = br.offsetSym(&s.offTable)
			s.offFreqs[slot]++
			if s.lzOffset.until--; s.lzOffset.until == 0 {
				s.lzOffset.rebuild(&s.scratch)
			}
			br = br.refill(in)
			br, extra = br.bits(uint(offExtra[slot]))
			offset = offBase[slot] + extra
			q[3], q[2], q[1] = q[2], q[1], q[0]
		} else {
			k := 0
			if pos == lzEnd {
				k = 1
			}
			rd, bit = rd.normalize(in).bit(&s.lzRepProbs[0][s.lzRepState[0]&63])
			s.lzRepState[0] = s.lzRepState[0]<<1 | bit
			if bit == 0 {
				offset = q[k&1]
				q[k&1] = q[0]
			} else {
				rd, bit = rd.normalize(in).bit(&s.lzRepProbs[1][s.lzRepState[1]&63])
				s.lzRepState[1] = s.lzRepState[1]<<1 | bit
				if bit == 0 {
					offset = q[(1+k)&3]
					q[(1+k)&3] = q[1]
				} else {
					offset = q[(2+k)&3]
					q[(2+k)&3] = q[2]
					q[2] = q[1]
				}
				q[1] = q[0]
			}
		}
		q[0] = offset

		br = br.refill(in)
		var lslot uint32
		br, lslot = br.lengthSym(&s.lenTable)
		s.lenFreqs[lslot]++
		if s.length.until--; s.length.until == 0 {
			s.length.rebuild(&s.scratch)
		}
		length := int(lenBase[lslot])
		if x := lenExtra[lslot]; x != 0 {
			var lextra uint32
			br = br.refill(in)
			br, lextra = br.bits(uint(x))
			length += int(lextra)
		}
		if length > len(dst)-pos {
			if length > s.size-pos {
				s.err = corrupt("match length %d at position %d exceeds the chunk size %d", length, pos, s.size)
				return rd, br, false
			}
			length = len(dst) - pos // a prefix ends inside this match
		}
		if int(offset) > pos {
			s.err = corrupt("match offset %d exceeds position %d", offset, pos)
			return rd, br, false
		}
		if from := pos - int(offset); offset >= 8 && length <= 32 && pos+40 <= len(dst) {
			// The common case: 8-byte moves, as in copyMatch, without the call.
			for n := 0; n < length; n += 8 {
				binary.LittleEndian.PutUint64(dst[pos+n:], binary.LittleEndian.Uint64(dst[from+n:]))
			}
		} else {
			copyMatch(dst, pos, int(offset), length)
		}
		pos += length
		lzEnd = pos
	}
	s.literal.until = until
	return rd, br, true
}

// useAsm selects the assembly item loop where there is one (tests run both).
var useAsm = haveAsm

// loopRegs is what the assembly item loop (itemsLoop) starts from and stops with: the
// registers of items' loop, spelled out. The assembly addresses the fields by name
// (go_asm.h), so their order is free.
type loopRegs struct {
	dst       *byte // s.dst's data, dstLen bytes
	dstLen    int
	in        *byte // s.in's data (at least 8 bytes), inLen bytes
	inLen     int
	pos       int
	rng, code uint32 // range decoder
	rpos      int
	buf       uint64 // bit reader
	n         uint
	bpos      int
	mainState uint32
	lzEnd     int // as in items
	deltaEnd  int // the same for delta matches
	offset    int // the LZ match left to Go (exitCopy)
	length    int
}

// Reasons for which itemsLoop returns.
const (
	exitDone      = iota // pos reached dstLen
	exitRebuild          // a code's rebuild is due (its until is 0); the item is complete
	exitCopy             // an LZ match is decoded but not copied (offset, length): out of range or past dst's end
	exitDeltaCopy        // a delta match is decoded but not applied (offset = power<<32 | raw offset, length): out of range or past dst's end
)

// itemsAsm is items with the literal and LZ-match path in assembly: it runs itemsLoop
// and does what the loop leaves to Go (rebuilds, delta matches, LZ copies near the end of
// dst or out of range, which are errors or prefix cuts).
func (s *state) itemsAsm(rd rangeDecoder, br bitReader) (rangeDecoder, bitReader, bool) {
	r := &s.regs
	dst := s.dst
	*r = loopRegs{
		dst: &dst[0], dstLen: len(dst), in: &s.in[0], inLen: len(s.in),
		rng: rd.rng, code: rd.code, rpos: rd.pos,
		buf: br.buf, n: br.n, bpos: br.pos,
		mainState: 0, lzEnd: -1, deltaEnd: -1, // the chunk starts after no item
	}
	for {
		reason := itemsLoop(s)
		switch reason {
		case exitDone:
			rd = rangeDecoder{rng: r.rng, code: r.code, pos: r.rpos}
			br = bitReader{buf: r.buf, n: r.n, pos: r.bpos}
			return rd, br, true
		case exitRebuild:
			s.rebuildDue()
		case exitCopy:
			pos, offset, length := r.pos, r.offset, r.length
			if length > len(dst)-pos {
				if length > s.size-pos {
					s.err = corrupt("match length %d at position %d exceeds the chunk size %d", length, pos, s.size)
					return rd, br, false
				}
				length = len(dst) - pos // a prefix ends inside this match
			}
			if offset > pos {
				s.err = corrupt("match offset %d exceeds position %d", offset, pos)
				return rd, br, false
			}
			copyMatch(dst, pos, offset, length)
			r.pos = pos + length
			r.lzEnd = r.pos
			s.rebuildDue()
		case exitDeltaCopy:
			pos, pair, length := r.pos, uint64(r.offset), r.length
			power := uint(pair>>32) & 7
			span := 1 << power
			if off := uint64(uint32(pair)) << power; off+uint64(span) > uint64(pos) {
				s.err = corrupt("delta match offset %d + span %d exceeds position %d", off, span, pos)
				return rd, br, false
			}
			if length > len(dst)-pos {
				if length > s.size-pos {
					s.err = corrupt("delta match length %d at position %d exceeds the chunk size %d", length, pos, s.size)
					return rd, br, false
				}
				length = len(dst) - pos // a prefix ends inside this match
			}
			copyDelta(dst, pos, int(uint32(pair))<<power, span, length)
			r.pos = pos + length
			r.deltaEnd = r.pos
			s.rebuildDue()
		default:
			panic("lzms: unknown exit from the item loop")
		}
	}
}

// rebuildDue rebuilds the codes whose period is over (after itemsLoop deferred it to the
// end of an item: each code's symbols come only once per item).
func (s *state) rebuildDue() {
	for _, c := range [...]*adaptiveCode{&s.literal, &s.lzOffset, &s.length, &s.deltaOffset, &s.deltaPower} {
		if c.until == 0 {
			c.rebuild(&s.scratch)
		}
	}
}

// deltaMatch decodes a delta match at pos (explicit or repeated power and offset) and
// applies it; it returns the new stream states and position, or sets s.err and returns
// ok=false. Like lzMatch it is a separate function so that the literal loop stays small
// enough for its state to live in registers; the streams travel in registers both ways.
func (s *state) deltaMatch(pos int, rd rangeDecoder, br bitReader) (rangeDecoder, bitReader, int, bool) {
	dst, in := s.dst, s.in
	var bit uint32
	if s.pendingDelta != 0 && pos != s.deltaStill {
		q := &s.recentDelta
		q[3], q[2], q[1], q[0] = q[2], q[1], q[0], s.pendingDelta
		s.pendingDelta = 0
	}
	rd, bit = rd.normalize(in).bit(&s.deltaProbs[s.deltaState&63])
	s.deltaState = s.deltaState<<1 | bit
	var pair uint64
	if bit == 0 {
		var power, slot, extra uint32
		br = br.refill(in)
		br, power = br.symbol(s.deltaPower.table, powerTableBits)
		s.deltaPower.count(power, &s.scratch)
		br, slot = br.symbol(s.deltaOffset.table, offsetTableBits)
		s.deltaOffset.count(slot, &s.scratch)
		br = br.refill(in)
		br, extra = br.bits(uint(offsetSlots.extra[slot]))
		pair = uint64(power)<<32 | uint64(offsetSlots.base[slot]+extra)
	} else {
		rep := 0
		for ; rep < 2; rep++ {
			rd, bit = rd.normalize(in).bit(&s.deltaRepProbs[rep][s.deltaRepState[rep]&63])
			s.deltaRepState[rep] = s.deltaRepState[rep]<<1 | bit
			if bit == 0 {
				break
			}
		}
		q := &s.recentDelta
		pair = q[rep]
		switch rep { // remove the used entry, shifting the rest up
		case 0:
			q[0], q[1], q[2] = q[1], q[2], q[3]
		case 1:
			q[1], q[2] = q[2], q[3]
		default:
			q[2] = q[3]
		}
	}
	if s.pendingDelta != 0 {
		q := &s.recentDelta
		q[3], q[2], q[1], q[0] = q[2], q[1], q[0], s.pendingDelta
	}
	s.pendingDelta = pair

	br = br.refill(in)
	var lslot, lextra uint32
	br, lslot = br.symbol(s.length.table, lengthTableBits)
	s.length.count(lslot, &s.scratch)
	if x := lengthSlots.extra[lslot]; x != 0 {
		br = br.refill(in)
		br, lextra = br.bits(uint(x))
	}
	length := lengthSlots.base[lslot] + lextra
	power := uint(pair>>32) & 7
	span := 1 << power
	if off := uint64(uint32(pair)) << power; off+uint64(span) > uint64(pos) { // no overflow on 32-bit
		s.err = corrupt("delta match offset %d + span %d exceeds position %d", off, span, pos)
		return rd, br, pos, false
	}
	offset := int(uint32(pair)) << power
	if int(length) > len(dst)-pos {
		if int(length) > s.size-pos {
			s.err = corrupt("delta match length %d at position %d exceeds the chunk size %d", length, pos, s.size)
			return rd, br, pos, false
		}
		length = uint32(len(dst) - pos) // a prefix ends inside this match
	}
	copyDelta(dst, pos, offset, span, int(length))
	pos += int(length)
	s.deltaStill = pos
	return rd, br, pos, true
}

// copyMatch copies length bytes from offset back; overlapping copies repeat the pattern.
func copyMatch(dst []byte, pos, offset, length int) {
	end := pos + length
	from := pos - offset
	if end+8 <= len(dst) {
		if offset >= 8 && length <= 64 {
			// Common case: 8-byte moves. With offset >= 8 each load reads bytes already
			// final (also when source and destination overlap); the last store may
			// spill up to 7 bytes past end, which are inside dst and rewritten later.
			for ; pos < end; pos, from = pos+8, from+8 {
				binary.LittleEndian.PutUint64(dst[pos:], binary.LittleEndian.Uint64(dst[from:]))
			}
			return
		}
		if length <= 16 { // short run of a short pattern
			for ; pos < end; pos, from = pos+1, from+1 {
				dst[pos] = dst[from]
			}
			return
		}
	}
	if offset >= length {
		copy(dst[pos:end], dst[from:])
		return
	}
	// Each copy doubles the available periodic source.
	for pos < end {
		pos += copy(dst[pos:end], dst[from:pos])
	}
}

// copyDelta applies a delta match: out[i] = out[i-off] + out[i-span] - out[i-off-span].
// The sources may overlap the output at distance span (offsets are multiples of the
// span, so at least span), so bytes can be computed span at a time: for spans of 4 and
// more, 4 or 8 bytes per step with bytewise (carry-free) SWAR arithmetic.
func copyDelta(dst []byte, pos, offset, span, length int) {
	end := pos + length
	i := pos
	switch {
	case span >= 8:
		for ; i+8 <= end; i += 8 {
			a := binary.LittleEndian.Uint64(dst[i-offset:])
			b := binary.LittleEndian.Uint64(dst[i-span:])
			c := binary.LittleEndian.Uint64(dst[i-offset-span:])
			binary.LittleEndian.PutUint64(dst[i:], subBytes64(addBytes64(a, b), c))
		}
	case span >= 4:
		for ; i+4 <= end; i += 4 {
			a := binary.LittleEndian.Uint32(dst[i-offset:])
			b := binary.LittleEndian.Uint32(dst[i-span:])
			c := binary.LittleEndian.Uint32(dst[i-offset-span:])
			binary.LittleEndian.PutUint32(dst[i:], uint32(subBytes64(addBytes64(uint64(a), uint64(b)), uint64(c))))
		}
	}
	if i == end {
		return
	}
	out := dst[i:end]
	a := dst[i-offset : end-offset][:len(out)]
	b := dst[i-span : end-span][:len(out)]
	c := dst[i-offset-span : end-offset-span][:len(out)]
	for j := range out {
		out[j] = a[j] + b[j] - c[j]
	}
}

const high = 0x8080808080808080

// addBytes64 adds x and y bytewise, each byte modulo 256.
func addBytes64(x, y uint64) uint64 { return (x&^high + y&^high) ^ (x^y)&high }

// subBytes64 subtracts y from x bytewise, each byte modulo 256.
func subBytes64(x, y uint64) uint64 { return (x | high - y&^high) ^ (x^^y)&high }
