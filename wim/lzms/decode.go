package lzms

import "encoding/binary"

// prob is an adaptive probability entry: the last 64 bits coded with it and how many of
// them were zeros (the probability of a zero, in 64ths).
type prob struct {
	recent uint64
	zeros  uint32
}

// Initial history 0x0000000055555555: 48 zeros of 64.
var initialProb = prob{recent: 0x0000000055555555, zeros: 48}

// state is everything a decoder keeps between chunks (reset at each chunk start).
type state struct {
	mainProbs     [16]prob
	matchProbs    [32]prob
	lzProbs       [64]prob
	deltaProbs    [64]prob
	lzRepProbs    [2][64]prob
	deltaRepProbs [2][64]prob

	literal, lzOffset, length, deltaOffset, deltaPower adaptiveCode
	scratch                                            huffScratch
	x86                                                x86Undo
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
	// Chunks of 1 or 2 bytes have 0 or 1 offset slots; two keep the code well formed,
	// and any offset decoded there fails the position check anyway.
	nOff := max(2, numOffsetSlots(outSize))
	s.literal.reset(numLiteralSyms, &s.scratch)
	s.lzOffset.reset(nOff, &s.scratch)
	s.length.reset(numLengthSyms, &s.scratch)
	s.deltaOffset.reset(nOff, &s.scratch)
	s.deltaPower.reset(numDeltaPowerSyms, &s.scratch)
}

// rangeBit decodes one bit with entry p and updates p. The range must be normalised.
func rangeBit(p *prob, rng, code uint32) (bit, nrng, ncode uint32) {
	z := p.zeros
	if z == 0 {
		z = 1
	} else if z == 64 {
		z = 63
	}
	bound := (rng >> 6) * z
	if code < bound {
		rng = bound
	} else {
		rng -= bound
		code -= bound
		bit = 1
	}
	p.zeros += uint32(p.recent>>63) - bit
	p.recent = p.recent<<1 | uint64(bit)
	return bit, rng, code
}

// renorm shifts in the next forward word once the range has dropped to 16 bits. Past the
// end of src it shifts in zeros (as wimlib does) but still counts the word, so that the
// overlap check at the end sees the overrun.
func renorm(src []byte, rng, code uint32, rpos int) (uint32, uint32, int) {
	rng <<= 16
	code <<= 16
	if rpos+2 <= len(src) {
		code |= uint32(binary.LittleEndian.Uint16(src[rpos:]))
	}
	return rng, code, rpos + 2
}

// refill tops the backward bit buffer up to at least 48 bits. bb holds bn valid bits at
// its top; bpos is the byte index just past the next word to read (going down). Bits
// below the valid ones are either zero or already the right stream bits, so OR-ing the
// next eight bytes in is exact; only whole words are counted as loaded. Before the start
// of src the stream reads as zeros, again counted.
func refill(src []byte, bb uint64, bn uint, bpos int) (uint64, uint, int) {
	if bpos >= 8 && bpos <= len(src) {
		bb |= binary.LittleEndian.Uint64(src[bpos-8:]) >> (bn & 63)
		k := (63 - bn) >> 4
		return bb, bn + k*16, bpos - int(k)*2
	}
	for bn <= 48 {
		var w uint64
		if bpos >= 2 && bpos <= len(src) {
			w = uint64(binary.LittleEndian.Uint16(src[bpos-2:]))
		}
		bb |= w << (48 - bn)
		bn += 16
		bpos -= 2
	}
	return bb, bn, bpos
}

// lookup returns the decode-table entry for the next codeword at the top of bb.
func lookup(table []uint32, tb uint, bb uint64) uint32 {
	e := table[bb>>(64-tb)]
	if e&entrySubFlag != 0 {
		e = table[e>>16+uint32((bb<<(e&entryLenMask))>>(64-(e>>8&15)))]
	}
	return e
}

// decode decodes the items of one chunk into dst (no x86 undo yet).
func (s *state) decode(dst, src []byte) error {
	s.reset(len(dst))

	rng := uint32(0xffffffff)
	code := uint32(binary.LittleEndian.Uint16(src[0:]))<<16 | uint32(binary.LittleEndian.Uint16(src[2:]))
	rpos := 4
	var bb uint64
	var bn uint
	bpos := len(src)

	var mainState, matchState, lzState, deltaState uint32
	var lzRepState, deltaRepState [2]uint32
	recentLZ := [4]uint32{1, 2, 3, 4}
	recentDelta := [4]uint64{1, 2, 3, 4} // power<<32 | raw offset
	var pendingLZ uint32
	var pendingDelta uint64
	lzStill, deltaStill := -1, -1

	litUntil := literalRebuild
	offUntil := lzOffsetRebuild
	lenUntil := lengthRebuild
	dOffUntil := deltaOffsetRebuild
	powUntil := deltaPowerRebuild

	var bit uint32
	pos := 0
	for pos < len(dst) {
		if rng <= 0xffff {
			rng, code, rpos = renorm(src, rng, code, rpos)
		}
		bit, rng, code = rangeBit(&s.mainProbs[mainState], rng, code)
		mainState = (mainState<<1 | bit) & 15
		if bit == 0 {
			// Literal.
			if bn < 16 {
				bb, bn, bpos = refill(src, bb, bn, bpos)
			}
			e := lookup(s.literal.table, literalTableBits, bb)
			l := uint(e & entryLenMask)
			bb <<= l
			bn -= l
			sym := e >> 16
			dst[pos] = byte(sym)
			pos++
			s.literal.freqs[sym]++
			if litUntil--; litUntil == 0 {
				s.literal.rebuild(&s.scratch)
				litUntil = literalRebuild
			}
			continue
		}

		if rng <= 0xffff {
			rng, code, rpos = renorm(src, rng, code, rpos)
		}
		bit, rng, code = rangeBit(&s.matchProbs[matchState], rng, code)
		matchState = (matchState<<1 | bit) & 31
		if bit == 0 {
			// LZ match.
			if pendingLZ != 0 && pos != lzStill {
				recentLZ[3], recentLZ[2], recentLZ[1] = recentLZ[2], recentLZ[1], recentLZ[0]
				recentLZ[0] = pendingLZ
				pendingLZ = 0
			}
			if rng <= 0xffff {
				rng, code, rpos = renorm(src, rng, code, rpos)
			}
			bit, rng, code = rangeBit(&s.lzProbs[lzState], rng, code)
			lzState = (lzState<<1 | bit) & 63
			var offset uint32
			if bit == 0 {
				if bn < 32 {
					bb, bn, bpos = refill(src, bb, bn, bpos)
				}
				e := lookup(s.lzOffset.table, offsetTableBits, bb)
				l := uint(e & entryLenMask)
				bb <<= l
				bn -= l
				slot := e >> 16
				s.lzOffset.freqs[slot]++
				if offUntil--; offUntil == 0 {
					s.lzOffset.rebuild(&s.scratch)
					offUntil = lzOffsetRebuild
				}
				if bn < 32 {
					bb, bn, bpos = refill(src, bb, bn, bpos)
				}
				x := uint(offsetSlots.extra[slot])
				offset = offsetSlots.base[slot] + uint32(bb>>(64-x))
				bb <<= x
				bn -= x
			} else {
				rep := 0
				for ; rep < 2; rep++ {
					if rng <= 0xffff {
						rng, code, rpos = renorm(src, rng, code, rpos)
					}
					bit, rng, code = rangeBit(&s.lzRepProbs[rep][lzRepState[rep]], rng, code)
					lzRepState[rep] = (lzRepState[rep]<<1 | bit) & 63
					if bit == 0 {
						break
					}
				}
				offset = recentLZ[rep]
				copy(recentLZ[rep:], recentLZ[rep+1:])
			}
			if pendingLZ != 0 {
				recentLZ[3], recentLZ[2], recentLZ[1] = recentLZ[2], recentLZ[1], recentLZ[0]
				recentLZ[0] = pendingLZ
			}
			pendingLZ = offset

			var length uint32
			length, bb, bn, bpos = s.decodeLength(src, bb, bn, bpos, &lenUntil)
			if int(length) > len(dst)-pos {
				return corrupt("match length %d at position %d exceeds the chunk size %d", length, pos, len(dst))
			}
			if int(offset) > pos {
				return corrupt("match offset %d exceeds position %d", offset, pos)
			}
			copyMatch(dst, pos, int(offset), int(length))
			pos += int(length)
			lzStill = pos
			continue
		}

		// Delta match.
		if pendingDelta != 0 && pos != deltaStill {
			recentDelta[3], recentDelta[2], recentDelta[1] = recentDelta[2], recentDelta[1], recentDelta[0]
			recentDelta[0] = pendingDelta
			pendingDelta = 0
		}
		if rng <= 0xffff {
			rng, code, rpos = renorm(src, rng, code, rpos)
		}
		bit, rng, code = rangeBit(&s.deltaProbs[deltaState], rng, code)
		deltaState = (deltaState<<1 | bit) & 63
		var pair uint64
		if bit == 0 {
			if bn < 32 {
				bb, bn, bpos = refill(src, bb, bn, bpos)
			}
			e := lookup(s.deltaPower.table, powerTableBits, bb)
			l := uint(e & entryLenMask)
			bb <<= l
			bn -= l
			power := e >> 16
			s.deltaPower.freqs[power]++
			if powUntil--; powUntil == 0 {
				s.deltaPower.rebuild(&s.scratch)
				powUntil = deltaPowerRebuild
			}
			if bn < 32 {
				bb, bn, bpos = refill(src, bb, bn, bpos)
			}
			e = lookup(s.deltaOffset.table, offsetTableBits, bb)
			l = uint(e & entryLenMask)
			bb <<= l
			bn -= l
			slot := e >> 16
			s.deltaOffset.freqs[slot]++
			if dOffUntil--; dOffUntil == 0 {
				s.deltaOffset.rebuild(&s.scratch)
				dOffUntil = deltaOffsetRebuild
			}
			if bn < 32 {
				bb, bn, bpos = refill(src, bb, bn, bpos)
			}
			x := uint(offsetSlots.extra[slot])
			raw := offsetSlots.base[slot] + uint32(bb>>(64-x))
			bb <<= x
			bn -= x
			pair = uint64(power)<<32 | uint64(raw)
		} else {
			rep := 0
			for ; rep < 2; rep++ {
				if rng <= 0xffff {
					rng, code, rpos = renorm(src, rng, code, rpos)
				}
				bit, rng, code = rangeBit(&s.deltaRepProbs[rep][deltaRepState[rep]], rng, code)
				deltaRepState[rep] = (deltaRepState[rep]<<1 | bit) & 63
				if bit == 0 {
					break
				}
			}
			pair = recentDelta[rep]
			copy(recentDelta[rep:], recentDelta[rep+1:])
		}
		if pendingDelta != 0 {
			recentDelta[3], recentDelta[2], recentDelta[1] = recentDelta[2], recentDelta[1], recentDelta[0]
			recentDelta[0] = pendingDelta
		}
		pendingDelta = pair

		var length uint32
		length, bb, bn, bpos = s.decodeLength(src, bb, bn, bpos, &lenUntil)
		power := uint(pair >> 32)
		span := 1 << power
		offset := int(uint32(pair)) << power
		if offset+span > pos {
			return corrupt("delta match offset %d + span %d exceeds position %d", offset, span, pos)
		}
		if int(length) > len(dst)-pos {
			return corrupt("delta match length %d at position %d exceeds the chunk size %d", length, pos, len(dst))
		}
		copyDelta(dst, pos, offset, span, int(length))
		pos += int(length)
		deltaStill = pos
	}

	// The range coder reads two words ahead; everything else it read, and everything the
	// backward reader consumed, must fit in src without the two overlapping.
	backBits := (len(src)-bpos)*8 - int(bn)
	if rangeBytes, backBytes := rpos-4, (backBits+15)/16*2; rangeBytes+backBytes > len(src) {
		return corrupt("compressed data overrun: range coder read %d bytes and bitstream %d bytes of %d (truncated chunk?)", rpos, backBytes, len(src))
	}
	return nil
}

// decodeLength decodes a length slot and its extra bits.
func (s *state) decodeLength(src []byte, bb uint64, bn uint, bpos int, until *int) (uint32, uint64, uint, int) {
	if bn < 32 {
		bb, bn, bpos = refill(src, bb, bn, bpos)
	}
	e := lookup(s.length.table, lengthTableBits, bb)
	l := uint(e & entryLenMask)
	bb <<= l
	bn -= l
	slot := e >> 16
	s.length.freqs[slot]++
	if *until--; *until == 0 {
		s.length.rebuild(&s.scratch)
		*until = lengthRebuild
	}
	if bn < 32 {
		bb, bn, bpos = refill(src, bb, bn, bpos)
	}
	x := uint(lengthSlots.extra[slot])
	length := lengthSlots.base[slot] + uint32(bb>>(64-x))
	bb <<= x
	bn -= x
	return length, bb, bn, bpos
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
