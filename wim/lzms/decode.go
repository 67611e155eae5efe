package lzms

import "encoding/binary"

// prob is an adaptive probability entry: the last 64 bits coded with it and how many
// of them were zeros (the chance of a zero, in 64ths).
type prob struct {
	recent uint64
	zeros  uint32
}

// Initial history 0x0000000055555555: 48 zeros of 64.
var initialProb = prob{recent: 0x0000000055555555, zeros: 48}

// clampedProb maps a zero count to the probability the coder uses (never 0 or 64/64).
// Indexed by count&127 so that the lookup needs no bounds check. Read-only.
var clampedProb = func() (t [128]uint32) {
	for z := range 65 {
		t[z] = uint32(min(max(z, 1), 63))
	}
	return t
}()

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
		if r.pos+2 <= len(src) {
			r.code |= uint32(binary.LittleEndian.Uint16(src[r.pos:]))
		}
		r.pos += 2
	}
	return r
}

// bit decodes one bit with entry p (range normalised) and updates p. It is branch-free:
// the bit is data, and a mispredicted branch costs more than the few extra operations.
func (r rangeDecoder) bit(p *prob) (rangeDecoder, uint32) {
	h, z := p.recent, p.zeros
	bound := (r.rng >> 6) * clampedProb[z&127]
	bit := uint32((uint64(r.code)-uint64(bound))>>63) ^ 1 // 1 when code >= bound
	mask := -bit
	p.recent = h<<1 | uint64(bit)
	p.zeros = z + uint32(h>>63) - bit
	r.rng = bound&^mask | (r.rng-bound)&mask
	r.code -= bound & mask
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
		v = binary.LittleEndian.Uint64(src[b.pos-8:])
	} else {
		v = binary.LittleEndian.Uint64(src[:8]) << uint((8-b.pos)*8) // 0 once pos <= 0
	}
	b.buf |= v >> (b.n & 63)
	k := (63 - b.n) >> 4
	b.n += k * 16
	b.pos -= int(k) * 2
	return b
}

// bits returns the next n (<= 32, buffered) bits.
func (b bitReader) bits(n uint) (bitReader, uint32) {
	v := uint32(b.buf >> (64 - n) & (1<<n - 1)) // n may be 0
	b.buf <<= n
	b.n -= n
	return b, v
}

// symbol decodes one Huffman symbol (at least 15 bits buffered).
func (b bitReader) symbol(table []uint32, tb uint) (bitReader, uint32) {
	e := table[b.buf>>(64-tb)]
	if e&entrySubFlag != 0 {
		e = table[e>>16+uint32((b.buf<<(e&entryLenMask))>>(64-(e>>8&15)))]
	}
	l := uint(e & entryLenMask)
	b.buf <<= l
	b.n -= l
	return b, e >> 16
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
	recentLZ     [4]uint32
	recentDelta  [4]uint64 // power<<32 | raw offset
	pendingLZ    uint32
	pendingDelta uint64
	lzStill      int // position after the match that made pendingLZ
	deltaStill   int

	literal, lzOffset, length, deltaOffset, deltaPower adaptiveCode
	scratch                                            huffScratch
	x86                                                x86Undo

	dst, src, back []byte
	pad            [8]byte
	err            error
}

// Direct-table index bits per code: a trade between lookup hit rate and rebuild cost.
const (
	literalTableBits = 10
	offsetTableBits  = 10
	lengthTableBits  = 10
	powerTableBits   = 8
)

func (s *state) init(maxOffsetSlots int) {
	s.literal = newAdaptiveCode(numLiteralSyms, literalTableBits, literalRebuild)
	s.lzOffset = newAdaptiveCode(maxOffsetSlots, offsetTableBits, lzOffsetRebuild)
	s.length = newAdaptiveCode(numLengthSyms, lengthTableBits, lengthRebuild)
	s.deltaOffset = newAdaptiveCode(maxOffsetSlots, offsetTableBits, deltaOffsetRebuild)
	s.deltaPower = newAdaptiveCode(numDeltaPowerSyms, powerTableBits, deltaPowerRebuild)
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
	s.pendingLZ, s.pendingDelta = 0, 0
	s.lzStill, s.deltaStill = -1, -1

	// Chunks of 1 or 2 bytes have 0 or 1 offset slots; two keep the code well formed,
	// and any offset decoded there fails the position check anyway.
	nOff := max(2, numOffsetSlots(outSize))
	s.literal.reset(numLiteralSyms, &s.scratch)
	s.lzOffset.reset(nOff, &s.scratch)
	s.length.reset(numLengthSyms, &s.scratch)
	s.deltaOffset.reset(nOff, &s.scratch)
	s.deltaPower.reset(numDeltaPowerSyms, &s.scratch)
}

// decode decodes the items of one chunk into dst (no x86 undo yet). The range decoder
// reads src; the bit reader reads back, which is src itself or, for chunks under 8
// bytes, src zero-padded in front to 8 bytes.
func (s *state) decode(dst, src, back []byte) error {
	s.reset(len(dst))
	s.dst, s.src, s.back = dst, src, back
	defer func() { s.dst, s.src, s.back = nil, nil, nil }()

	rd := rangeDecoder{
		rng:  0xffffffff,
		code: uint32(binary.LittleEndian.Uint16(src[0:]))<<16 | uint32(binary.LittleEndian.Uint16(src[2:])),
		pos:  4,
	}
	br := bitReader{pos: len(back)}
	var mainState uint32
	lit := &s.literal
	for pos := 0; pos < len(dst); {
		var bit uint32
		rd, bit = rd.normalize(src).bit(&s.mainProbs[mainState&15])
		mainState = mainState<<1 | bit
		if bit == 0 {
			if br.n < 16 {
				br = br.refill(back)
			}
			var sym uint32
			br, sym = br.symbol(lit.table, literalTableBits)
			dst[pos] = byte(sym)
			pos++
			lit.freqs[sym&0xff]++
			if lit.until--; lit.until == 0 {
				lit.rebuild(&s.scratch)
			}
			continue
		}
		var ok bool
		if rd, br, pos, ok = s.match(pos, rd, br); !ok {
			return s.err
		}
	}

	// The range coder reads two words ahead; everything else it read, and everything the
	// backward reader consumed, must fit in src without the two overlapping.
	backBits := (len(back)-br.pos)*8 - int(br.n)
	if rangeBytes, backBytes := rd.pos-4, (backBits+15)/16*2; rangeBytes+backBytes > len(src) {
		return corrupt("compressed data overrun: range coder read %d bytes and bitstream %d bytes of %d (truncated chunk?)", rd.pos, backBytes, len(src))
	}
	return nil
}

// match decodes one LZ or delta match at pos (the main decision already said "match")
// and returns the new stream states and position; on bad data it sets s.err and
// returns ok=false. It is a separate function so that the literal loop stays small
// enough for its state to live in registers; the streams travel in registers both ways.
func (s *state) match(pos int, rd rangeDecoder, br bitReader) (rangeDecoder, bitReader, int, bool) {
	dst, src, back := s.dst, s.src, s.back
	var bit uint32
	rd, bit = rd.normalize(src).bit(&s.matchProbs[s.matchState&31])
	s.matchState = s.matchState<<1 | bit
	if bit == 0 {
		return s.lzMatch(pos, rd, br)
	}

	// Delta match.
	if s.pendingDelta != 0 && pos != s.deltaStill {
		q := &s.recentDelta
		q[3], q[2], q[1], q[0] = q[2], q[1], q[0], s.pendingDelta
		s.pendingDelta = 0
	}
	rd, bit = rd.normalize(src).bit(&s.deltaProbs[s.deltaState&63])
	s.deltaState = s.deltaState<<1 | bit
	var pair uint64
	if bit == 0 {
		var power, slot, extra uint32
		br = br.refill(back)
		br, power = br.symbol(s.deltaPower.table, powerTableBits)
		s.deltaPower.count(power, &s.scratch)
		br, slot = br.symbol(s.deltaOffset.table, offsetTableBits)
		s.deltaOffset.count(slot, &s.scratch)
		br = br.refill(back)
		br, extra = br.bits(uint(offsetSlots.extra[slot]))
		pair = uint64(power)<<32 | uint64(offsetSlots.base[slot]+extra)
	} else {
		rep := 0
		for ; rep < 2; rep++ {
			rd, bit = rd.normalize(src).bit(&s.deltaRepProbs[rep][s.deltaRepState[rep]&63])
			s.deltaRepState[rep] = s.deltaRepState[rep]<<1 | bit
			if bit == 0 {
				break
			}
		}
		pair = s.recentDelta[rep]
		copy(s.recentDelta[rep:], s.recentDelta[rep+1:])
	}
	if s.pendingDelta != 0 {
		q := &s.recentDelta
		q[3], q[2], q[1], q[0] = q[2], q[1], q[0], s.pendingDelta
	}
	s.pendingDelta = pair

	var length uint32
	br, length = s.decodeLength(br)
	power := uint(pair >> 32)
	span := 1 << power
	offset := int(uint32(pair)) << power
	if offset+span > pos {
		s.err = corrupt("delta match offset %d + span %d exceeds position %d", offset, span, pos)
		return rd, br, pos, false
	}
	if int(length) > len(dst)-pos {
		s.err = corrupt("delta match length %d at position %d exceeds the chunk size %d", length, pos, len(dst))
		return rd, br, pos, false
	}
	copyDelta(dst, pos, offset, span, int(length))
	pos += int(length)
	s.deltaStill = pos
	return rd, br, pos, true
}

// lzMatch decodes an LZ match (explicit or repeated offset) and copies it.
func (s *state) lzMatch(pos int, rd rangeDecoder, br bitReader) (rangeDecoder, bitReader, int, bool) {
	dst, src, back := s.dst, s.src, s.back
	if s.pendingLZ != 0 && pos != s.lzStill {
		q := &s.recentLZ
		q[3], q[2], q[1], q[0] = q[2], q[1], q[0], s.pendingLZ
		s.pendingLZ = 0
	}
	var bit uint32
	rd, bit = rd.normalize(src).bit(&s.lzProbs[s.lzState&63])
	s.lzState = s.lzState<<1 | bit
	var offset uint32
	if bit == 0 {
		var slot, extra uint32
		br = br.refill(back)
		br, slot = br.symbol(s.lzOffset.table, offsetTableBits)
		s.lzOffset.count(slot, &s.scratch)
		br = br.refill(back)
		br, extra = br.bits(uint(offsetSlots.extra[slot]))
		offset = offsetSlots.base[slot] + extra
	} else {
		rep := 0
		for ; rep < 2; rep++ {
			rd, bit = rd.normalize(src).bit(&s.lzRepProbs[rep][s.lzRepState[rep]&63])
			s.lzRepState[rep] = s.lzRepState[rep]<<1 | bit
			if bit == 0 {
				break
			}
		}
		offset = s.recentLZ[rep]
		copy(s.recentLZ[rep:], s.recentLZ[rep+1:])
	}
	if s.pendingLZ != 0 {
		q := &s.recentLZ
		q[3], q[2], q[1], q[0] = q[2], q[1], q[0], s.pendingLZ
	}
	s.pendingLZ = offset

	var length uint32
	br, length = s.decodeLength(br)
	if int(length) > len(dst)-pos {
		s.err = corrupt("match length %d at position %d exceeds the chunk size %d", length, pos, len(dst))
		return rd, br, pos, false
	}
	if int(offset) > pos {
		s.err = corrupt("match offset %d exceeds position %d", offset, pos)
		return rd, br, pos, false
	}
	copyMatch(dst, pos, int(offset), int(length))
	pos += int(length)
	s.lzStill = pos
	return rd, br, pos, true
}

// decodeLength decodes a match length: a slot symbol and its extra bits.
func (s *state) decodeLength(br bitReader) (bitReader, uint32) {
	var slot, extra uint32
	br = br.refill(s.back)
	br, slot = br.symbol(s.length.table, lengthTableBits)
	s.length.count(slot, &s.scratch)
	if x := lengthSlots.extra[slot]; x != 0 {
		br = br.refill(s.back)
		br, extra = br.bits(uint(x))
	}
	return br, lengthSlots.base[slot] + extra
}

// copyMatch copies length bytes from offset back; overlapping copies repeat the pattern.
func copyMatch(dst []byte, pos, offset, length int) {
	end := pos + length
	from := pos - offset
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
func copyDelta(dst []byte, pos, offset, span, length int) {
	end := pos + length
	for i := pos; i < end; i++ {
		dst[i] = dst[i-offset] + dst[i-span] - dst[i-offset-span]
	}
}
