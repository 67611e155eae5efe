// The item loop of decode.go (state.items) in amd64 assembly: itemsLoop decodes literals,
// LZ matches and delta matches with every stream state in a register and leaves to Go
// (state.itemsAsm) only code rebuilds and matches that fail a range check or end near
// dst's end. The range-decoder, refill and table-lookup blocks are written once each as
// the macros below and expanded once per use (only the labels, which the assembler
// scopes per function, differ: each use passes its own); each use is annotated with
// what it decodes.
//
// Safety on hostile input: table indexes are masked to their power-of-two tables; input
// words are read only below inLen (range decoder) or at byte index >= 0 (bit reader,
// which needs at least 8 bytes of input; Decompress pads); every output write is below
// dstLen (literal: pos < dstLen; matches: offset <= pos and pos+length <= dstLen, word
// moves only with 8 spare bytes past the match).
//
// Macros (all clobber AX, CX, DX; none touches DI, R8, R9 or R10 unless said):
//
//	PROBS(st, mask, probs)   AX = &probs[st & mask]: the 16-byte adaptive bit model,
//	                         (AX) the history of its last 64 bits, 8(AX) the number of
//	                         zeros among them. mask+1 entries is the array's length, so
//	                         the index is in bounds whatever st holds.
//	RANGEBIT(nonorm, noword, one, zero_to, one_to)
//	                         decodes one bit with the model at AX and jumps to zero_to
//	                         or one_to. Normalization reads the 16-bit word at R13 only
//	                         if R13+2 <= inLen (past the end it shifts in zeros, as
//	                         decode.go does); R13 advances either way.
//	SHIFT1(st)               st = st<<1 | 1 (the zero case is a plain SHLL $1, st).
//	REFILL(low, or, done)    tops the bit buffer R14/R15 up to at least 48 bits by
//	                         reading backwards from BX: a word at BX-8 when BX >= 8, else
//	                         the first BX bytes of the input (none when BX <= 0), so no
//	                         read before the input's start.
//	HUFF(table, shift, mask, got, symmask)
//	                         AX = next Huffman symbol (masked to symmask) from the
//	                         direct table (top 64-shift bits of R14) with one level of
//	                         subtables; the subtable index is masked to the table's
//	                         length mask+1. Consumes the symbol's bits.
//	BASEEXTRA(base, extra)   R10 = base[AX], DX = extra[AX] (AX < the tables' length by
//	                         HUFF's symmask).
//	EXTRABITS                R10 += the next DX bits (DX <= 30, after a REFILL).
//	DELTA4(off), DELTA8(off) one 4/8-byte step of a delta match:
//	                         out[CX+off+i] = out[BX+off+i] + out[CX+DX+off+i] - out[BX+DX+off+i].
//	REPPICK(MOV, slot, scale, end)
//	                         R10 = recent[slot + (pos == end)], that entry replaced by
//	                         recent[0]: a match of the same kind that ended at pos has
//	                         its offset pending in slot 0, shifting the queue by one.
//	SLIDE(MOV, from, to)     recent queue move: to = from (via AX).

//go:build amd64 && !purego

#include "go_asm.h"
#include "textflag.h"

#define PROBS(st, mask, probs) \
	MOVL	st, AX; \
	ANDL	$mask, AX; \
	SHLQ	$4, AX; \
	LEAQ	probs(R8)(AX*1), AX

#define RANGEBIT(nonorm, noword, one, zero_to, one_to) \
	CMPL	R11, $0xffff; \
	JA	nonorm; \
	SHLL	$16, R11; \
	SHLL	$16, R12; \
	LEAQ	2(R13), CX; \
	CMPQ	CX, state_regs+loopRegs_inLen(R8); \
	JA	noword; \
	MOVWLZX	(SI)(R13*1), DX; \
	ORL	DX, R12; \
noword: \
	MOVQ	CX, R13; \
nonorm: \
	MOVL	8(AX), CX; \
	LEAL	-1(CX), DX; \
	SHRL	$31, DX; \
	ADDL	CX, DX; \
	SHRL	$6, CX; \
	SUBL	CX, DX; \
	MOVL	R11, CX; \
	SHRL	$6, CX; \
	IMULL	DX, CX; \
	CMPL	R12, CX; \
	JAE	one; \
	MOVL	CX, R11; \
	MOVQ	(AX), DX; \
	SHLQ	$1, DX; \
	ADCL	$0, 8(AX); \
	MOVQ	DX, (AX); \
	JMP	zero_to; \
one: \
	SUBL	CX, R11; \
	SUBL	CX, R12; \
	MOVQ	(AX), DX; \
	SHLQ	$1, DX; \
	ADCL	$-1, 8(AX); \
	ORQ	$1, DX; \
	MOVQ	DX, (AX); \
	JMP	one_to

#define SHIFT1(st) \
	MOVL	st, CX; \
	LEAL	1(CX)(CX*1), CX; \
	MOVL	CX, st

#define REFILL(low, or, done) \
	CMPQ	BX, $8; \
	JLT	low; \
	MOVQ	-8(SI)(BX*1), AX; \
or: \
	MOVQ	R15, CX; \
	SHRQ	CX, AX; \
	ORQ	AX, R14; \
	MOVQ	$63, CX; \
	SUBQ	R15, CX; \
	SHRQ	$4, CX; \
	MOVQ	CX, AX; \
	SHLQ	$4, AX; \
	ADDQ	AX, R15; \
	SHLQ	$1, CX; \
	SUBQ	CX, BX; \
	JMP	done; \
low: \
	XORL	AX, AX; \
	CMPQ	BX, $0; \
	JLE	or; \
	MOVQ	(SI), AX; \
	MOVQ	$8, CX; \
	SUBQ	BX, CX; \
	SHLQ	$3, CX; \
	SHLQ	CX, AX; \
	JMP	or; \
done:

#define HUFF(table, shift, mask, got, symmask) \
	MOVQ	R14, AX; \
	SHRQ	$shift, AX; \
	MOVL	table(R8)(AX*4), AX; \
	BTL	$7, AX; \
	JCC	got; \
	MOVL	AX, CX; \
	ANDL	$31, CX; \
	MOVQ	R14, DX; \
	SHLQ	CX, DX; \
	MOVL	AX, CX; \
	SHRL	$8, CX; \
	ANDL	$15, CX; \
	NEGL	CX; \
	ADDL	$64, CX; \
	SHRQ	CX, DX; \
	SHRL	$16, AX; \
	ADDL	DX, AX; \
	ANDL	$mask, AX; \
	MOVL	table(R8)(AX*4), AX; \
got: \
	MOVL	AX, CX; \
	ANDL	$31, CX; \
	SHLQ	CX, R14; \
	SUBQ	CX, R15; \
	SHRL	$16, AX; \
	ANDL	$symmask, AX

#define BASEEXTRA(base, extra) \
	LEAQ	base(SB), CX; \
	MOVL	(CX)(AX*4), R10; \
	LEAQ	extra(SB), CX; \
	MOVBLZX	(CX)(AX*1), DX

#define EXTRABITS \
	MOVQ	R14, AX; \
	SHRQ	$1, AX; \
	MOVL	$63, CX; \
	SUBL	DX, CX; \
	SHRQ	CX, AX; \
	MOVL	DX, CX; \
	SHLQ	CX, R14; \
	SUBQ	DX, R15; \
	ADDL	AX, R10

#define DELTA4(off) \
	MOVL	off(BX), X0; \
	MOVL	off(CX)(DX*1), X1; \
	PADDB	X1, X0; \
	MOVL	off(BX)(DX*1), X1; \
	PSUBB	X1, X0; \
	MOVL	X0, off(CX)

#define DELTA8(off) \
	MOVQ	off(BX), X0; \
	MOVQ	off(CX)(DX*1), X1; \
	PADDB	X1, X0; \
	MOVQ	off(BX)(DX*1), X1; \
	PSUBB	X1, X0; \
	MOVQ	X0, off(CX)

#define REPPICK(MOV, slot, scale, end) \
	XORL	DX, DX; \
	CMPQ	R9, end; \
	SETEQ	DL; \
	MOV	slot(R8)(DX*scale), R10; \
	MOV	slot(R8), AX; \
	MOV	AX, slot(R8)(DX*scale)

#define SLIDE(MOV, from, to) \
	MOV	from(R8), AX; \
	MOV	AX, to(R8)

// Registers:
//	R8  s (*state)            DI  dst base      R9  pos
//	SI  src base              R11 range         R12 code         R13 range decoder pos
//	R14 bit buffer            R15 bits buffered BX  bit reader pos
//	R10 main state (spilled to loopRegs on the match path)
//	AX CX DX scratch

// func itemsLoop(s *state) int
TEXT ·itemsLoop(SB), NOSPLIT, $0-16
	MOVQ	s+0(FP), R8
	MOVQ	state_regs+loopRegs_dst(R8), DI
	MOVQ	state_regs+loopRegs_pos(R8), R9
	MOVQ	state_regs+loopRegs_in(R8), SI
	MOVL	state_regs+loopRegs_rng(R8), R11
	MOVL	state_regs+loopRegs_code(R8), R12
	MOVQ	state_regs+loopRegs_rpos(R8), R13
	MOVQ	state_regs+loopRegs_buf(R8), R14
	MOVQ	state_regs+loopRegs_n(R8), R15
	MOVQ	state_regs+loopRegs_bpos(R8), BX
	MOVL	state_regs+loopRegs_mainState(R8), R10

loop:
	CMPQ	R9, state_regs+loopRegs_dstLen(R8)
	JGE	exitdone
	// main decision: literal (0) or match (1)
	PROBS(R10, 15, state_mainProbs)
	RANGEBIT(nonorm0, noword0, one0, literal, match)
literal:
	SHLL	$1, R10
	CMPQ	R15, $16
	JAE	refilled1
	REFILL(refilllow1, refillor1, refilled1)
	// literal byte (8192-entry table)
	HUFF(state_litTable, 54, 8191, symgot2, 255)
	MOVB	AL, (DI)(R9*1)
	INCQ	R9
	INCL	state_litFreqs(R8)(AX*4)
	DECQ	state_literal+adaptiveCode_until(R8)
	JNE	loop
	MOVQ	$const_exitRebuild, AX
	JMP	exit

match:
	LEAL	1(R10)(R10*1), R10
	MOVL	R10, state_regs+loopRegs_mainState(R8)
	// match kind: LZ (0) or delta (1)
	PROBS(state_matchState(R8), 31, state_matchProbs)
	RANGEBIT(nonorm3, noword3, one3, lz, delta)
delta:
	SHIFT1(state_matchState(R8))
	// delta offset: explicit (0) or repeated (1)
	PROBS(state_deltaState(R8), 63, state_deltaProbs)
	RANGEBIT(nonorm4, noword4, one4, dexplicit, drep)
dexplicit:
	SHLL	$1, state_deltaState(R8)
	REFILL(refilllow5, refillor5, refilled5)
	// delta power (1024-entry table, 8 symbols)
	HUFF(state_powTable, 56, 1023, symgot6, 7)
	INCL	state_powFreqs(R8)(AX*4)
	DECQ	state_deltaPower+adaptiveCode_until(R8)
	MOVQ	AX, state_regs+loopRegs_offset(R8)
	// delta offset slot (16384-entry table, 1024 symbols)
	HUFF(state_dofTable, 54, 16383, symgot7, 1023)
	INCL	state_dofFreqs(R8)(AX*4)
	DECQ	state_deltaOffset+adaptiveCode_until(R8)
	BASEEXTRA(·offBase, ·offExtra)
	REFILL(refilllow8, refillor8, refilled8)
	EXTRABITS
	// R10 = power<<32 | raw offset; push it onto the recent delta pairs
	MOVQ	state_regs+loopRegs_offset(R8), AX
	SHLQ	$32, AX
	ORQ	AX, R10
	SLIDE(MOVQ, state_recentDelta+16, state_recentDelta+24)
	SLIDE(MOVQ, state_recentDelta+8, state_recentDelta+16)
	SLIDE(MOVQ, state_recentDelta+0, state_recentDelta+8)
	JMP	dhavepair

drep:
	SHIFT1(state_deltaState(R8))
	// first delta repeat decision
	PROBS(state_deltaRepState+0(R8), 63, state_deltaRepProbs)
	RANGEBIT(nonorm9, noword9, one9, drep0, drep12)
drep0:
	SHLL	$1, state_deltaRepState+0(R8)
	REPPICK(MOVQ, state_recentDelta, 8, state_regs+loopRegs_deltaEnd(R8))
	JMP	dhavepair

drep12:
	SHIFT1(state_deltaRepState+0(R8))
	// second delta repeat decision
	PROBS(state_deltaRepState+4(R8), 63, state_deltaRepProbs+1024)
	RANGEBIT(nonorm10, noword10, one10, drep1, drep2)
drep1:
	SHLL	$1, state_deltaRepState+4(R8)
	REPPICK(MOVQ, state_recentDelta+8, 8, state_regs+loopRegs_deltaEnd(R8))
	SLIDE(MOVQ, state_recentDelta+0, state_recentDelta+8)
	JMP	dhavepair

drep2:
	SHIFT1(state_deltaRepState+4(R8))
	REPPICK(MOVQ, state_recentDelta+16, 8, state_regs+loopRegs_deltaEnd(R8))
	SLIDE(MOVQ, state_recentDelta+8, state_recentDelta+16)
	SLIDE(MOVQ, state_recentDelta+0, state_recentDelta+8)

dhavepair:
	MOVQ	R10, state_recentDelta+0(R8)
	MOVQ	R10, state_regs+loopRegs_offset(R8)
	REFILL(refilllow11, refillor11, refilled11)
	// delta length slot (2048-entry table, 64 symbols)
	HUFF(state_lenTable, 54, 2047, symgot12, 63)
	INCL	state_lenFreqs(R8)(AX*4)
	DECQ	state_length+adaptiveCode_until(R8)
	BASEEXTRA(·lenBase, ·lenExtra)
	TESTL	DX, DX
	JEQ	dhavelength
	REFILL(refilllow13, refillor13, refilled13)
	EXTRABITS

dhavelength:
	// R10 = length, the (power, raw offset) pair in loopRegs. Checks as for LZ
	// matches: offset + span <= pos and the match inside dst, else Go takes over.
	MOVQ	R10, state_regs+loopRegs_length(R8)
	MOVQ	state_regs+loopRegs_offset(R8), AX
	MOVQ	AX, CX
	SHRQ	$32, CX
	ANDL	$7, CX
	MOVL	AX, AX
	SHLQ	CX, AX
	MOVL	$1, DX
	SHLQ	CX, DX
	LEAQ	(AX)(DX*1), CX
	CMPQ	CX, R9
	JA	exitdeltacopy
	MOVQ	state_regs+loopRegs_dstLen(R8), CX
	SUBQ	R9, CX
	CMPQ	R10, CX
	JA	exitdeltacopy
	// out[i] = out[i-offset] + out[i-span] - out[i-offset-span], bytewise. BX and R13
	// are borrowed: CX = &out[i], BX = &out[i-offset], DX = -span (span <= offset).
	MOVQ	BX, state_regs+loopRegs_bpos(R8)
	MOVQ	R13, state_regs+loopRegs_rpos(R8)
	LEAQ	(DI)(R9*1), CX
	ADDQ	R10, R9
	MOVQ	CX, BX
	SUBQ	AX, BX
	NEGQ	DX
	CMPQ	DX, $-4
	JGT	dtail
	// Spans of 4 or more and up to 16 bytes (most delta matches): fixed steps, no loop
	// whose exit would be mispredicted. Bytes past the match end (up to the old pos + 16,
	// inside dst) are overwritten by later items.
	CMPQ	R10, $16
	JGT	dlong
	MOVQ	state_regs+loopRegs_dstLen(R8), AX
	SUBQ	R9, AX
	ADDQ	R10, AX
	CMPQ	AX, $16
	JLT	dlong
	CMPQ	DX, $-8
	JLE	dshort8
	DELTA4(0)
	DELTA4(4)
	DELTA4(8)
	DELTA4(12)
	JMP	ddone
dshort8:
	DELTA8(0)
	DELTA8(8)
	JMP	ddone
dlong:
	CMPQ	DX, $-8
	JGT	dsmall
dwide:
	CMPQ	R10, $8
	JLT	dtail
	DELTA8(0)
	ADDQ	$8, BX
	ADDQ	$8, CX
	SUBQ	$8, R10
	JMP	dwide
dsmall:
	CMPQ	DX, $-4
	JGT	dtail
dfour:
	CMPQ	R10, $4
	JLT	dtail
	DELTA4(0)
	ADDQ	$4, BX
	ADDQ	$4, CX
	SUBQ	$4, R10
	JMP	dfour
dtail:
	TESTQ	R10, R10
	JEQ	ddone
dbyte:
	MOVB	(BX), AX
	ADDB	(CX)(DX*1), AX
	SUBB	(BX)(DX*1), AX
	MOVB	AX, (CX)
	INCQ	BX
	INCQ	CX
	DECQ	R10
	JNE	dbyte
ddone:
	MOVQ	state_regs+loopRegs_bpos(R8), BX
	MOVQ	state_regs+loopRegs_rpos(R8), R13
	MOVQ	R9, state_regs+loopRegs_deltaEnd(R8)
	MOVL	state_regs+loopRegs_mainState(R8), R10
	CMPQ	state_deltaOffset+adaptiveCode_until(R8), $0
	JEQ	rebuild
	CMPQ	state_deltaPower+adaptiveCode_until(R8), $0
	JEQ	rebuild
	CMPQ	state_length+adaptiveCode_until(R8), $0
	JNE	loop
	JMP	rebuild

exitdeltacopy:
	MOVQ	$const_exitDeltaCopy, AX
	JMP	exitmatch

lz:
	SHLL	$1, state_matchState(R8)
	// LZ offset: explicit (0) or repeated (1)
	PROBS(state_lzState(R8), 63, state_lzProbs)
	RANGEBIT(nonorm14, noword14, one14, explicit, rep)
explicit:
	SHLL	$1, state_lzState(R8)
	REFILL(refilllow15, refillor15, refilled15)
	// LZ offset slot (16384-entry table, 1024 symbols)
	HUFF(state_offTable, 54, 16383, symgot16, 1023)
	INCL	state_offFreqs(R8)(AX*4)
	DECQ	state_lzOffset+adaptiveCode_until(R8)
	BASEEXTRA(·offBase, ·offExtra)
	REFILL(refilllow17, refillor17, refilled17)
	EXTRABITS
	SLIDE(MOVL, state_recentLZ+8, state_recentLZ+12)
	SLIDE(MOVL, state_recentLZ+4, state_recentLZ+8)
	SLIDE(MOVL, state_recentLZ+0, state_recentLZ+4)
	JMP	haveoffset

rep:
	SHIFT1(state_lzState(R8))
	// first repeat decision
	PROBS(state_lzRepState+0(R8), 63, state_lzRepProbs)
	RANGEBIT(nonorm18, noword18, one18, rep0, rep12)
rep0:
	SHLL	$1, state_lzRepState+0(R8)
	REPPICK(MOVL, state_recentLZ, 4, state_regs+loopRegs_lzEnd(R8))
	JMP	haveoffset

rep12:
	SHIFT1(state_lzRepState+0(R8))
	// second repeat decision
	PROBS(state_lzRepState+4(R8), 63, state_lzRepProbs+1024)
	RANGEBIT(nonorm19, noword19, one19, rep1, rep2)
rep1:
	SHLL	$1, state_lzRepState+4(R8)
	REPPICK(MOVL, state_recentLZ+4, 4, state_regs+loopRegs_lzEnd(R8))
	SLIDE(MOVL, state_recentLZ+0, state_recentLZ+4)
	JMP	haveoffset

rep2:
	SHIFT1(state_lzRepState+4(R8))
	REPPICK(MOVL, state_recentLZ+8, 4, state_regs+loopRegs_lzEnd(R8))
	SLIDE(MOVL, state_recentLZ+4, state_recentLZ+8)
	SLIDE(MOVL, state_recentLZ+0, state_recentLZ+4)

haveoffset:
	MOVL	R10, state_recentLZ+0(R8)
	MOVQ	R10, state_regs+loopRegs_offset(R8)
	REFILL(refilllow20, refillor20, refilled20)
	// LZ length slot (2048-entry table, 64 symbols)
	HUFF(state_lenTable, 54, 2047, symgot21, 63)
	INCL	state_lenFreqs(R8)(AX*4)
	DECQ	state_length+adaptiveCode_until(R8)
	BASEEXTRA(·lenBase, ·lenExtra)
	TESTL	DX, DX
	JEQ	havelength
	REFILL(refilllow22, refillor22, refilled22)
	EXTRABITS

havelength:
	// R10 = length, offset in loopRegs. Fast copies need offset <= pos and the whole
	// match (plus 8 bytes of slack for word moves) inside dst; the rest goes to Go.
	MOVQ	R10, state_regs+loopRegs_length(R8)
	MOVQ	state_regs+loopRegs_offset(R8), AX
	CMPQ	AX, R9
	JA	exitcopy
	MOVQ	state_regs+loopRegs_dstLen(R8), DX
	SUBQ	R9, DX
	SUBQ	R10, DX
	JLT	exitcopy
	MOVQ	R9, CX
	SUBQ	AX, CX
	LEAQ	(DI)(CX*1), CX
	LEAQ	(DI)(R9*1), DX
	ADDQ	R10, R9
	CMPQ	AX, $8
	JLT	bytecopy
	MOVQ	state_regs+loopRegs_dstLen(R8), AX
	SUBQ	R9, AX
	CMPQ	R10, $24
	JGT	longcopy
	// Up to 24 bytes with 8 of offset or more (most matches): three word moves, no
	// loop whose exit would be mispredicted. They may write past the match end (up to
	// the old pos + 24, which must be inside dst); later items overwrite those bytes.
	ADDQ	R10, AX
	CMPQ	AX, $24
	JLT	bytecopy
	MOVQ	(CX), AX
	MOVQ	AX, (DX)
	MOVQ	8(CX), AX
	MOVQ	AX, 8(DX)
	MOVQ	16(CX), AX
	MOVQ	AX, 16(DX)
	JMP	copied
longcopy:
	CMPQ	AX, $8
	JLT	bytecopy
wordcopy:
	MOVQ	(CX), AX
	MOVQ	AX, (DX)
	ADDQ	$8, CX
	ADDQ	$8, DX
	SUBQ	$8, R10
	JGT	wordcopy
	JMP	copied
bytecopy:
	MOVB	(CX), AX
	MOVB	AX, (DX)
	INCQ	CX
	INCQ	DX
	DECQ	R10
	JGT	bytecopy
copied:
	MOVQ	R9, state_regs+loopRegs_lzEnd(R8)
	MOVL	state_regs+loopRegs_mainState(R8), R10
	CMPQ	state_lzOffset+adaptiveCode_until(R8), $0
	JEQ	rebuild
	CMPQ	state_length+adaptiveCode_until(R8), $0
	JNE	loop
rebuild:
	MOVQ	$const_exitRebuild, AX
	JMP	exit

exitcopy:
	MOVQ	$const_exitCopy, AX
exitmatch:
	MOVL	state_regs+loopRegs_mainState(R8), R10
	JMP	exit
exitdone:
	MOVQ	$const_exitDone, AX
exit:
	MOVQ	R9, state_regs+loopRegs_pos(R8)
	MOVL	R11, state_regs+loopRegs_rng(R8)
	MOVL	R12, state_regs+loopRegs_code(R8)
	MOVQ	R13, state_regs+loopRegs_rpos(R8)
	MOVQ	R14, state_regs+loopRegs_buf(R8)
	MOVQ	R15, state_regs+loopRegs_n(R8)
	MOVQ	BX, state_regs+loopRegs_bpos(R8)
	MOVL	R10, state_regs+loopRegs_mainState(R8)
	MOVQ	AX, ret+8(FP)
	RET
