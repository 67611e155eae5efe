// The item loop of decode.go (state.items) in amd64 assembly: itemsLoop decodes literals,
// LZ matches and delta matches with every stream state in a register and leaves to Go
// (state.itemsAsm) only code rebuilds and matches that fail a range check or end near
// dst's end. The range-decoder, refill and table-lookup blocks repeat once per use with
// the same instructions (only the labels differ); each is annotated with what it decodes.
//
// Safety on hostile input: table indexes are masked to their power-of-two tables; input
// words are read only below inLen (range decoder) or at byte index >= 0 (bit reader,
// which needs at least 8 bytes of input; Decompress pads); every output write is below
// dstLen (literal: pos < dstLen; matches: offset <= pos and pos+length <= dstLen, word
// moves only with 8 spare bytes past the match).

//go:build amd64 && !purego

#include "go_asm.h"
#include "textflag.h"

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
	MOVL	R10, AX
	ANDL	$15, AX
	SHLQ	$4, AX
	LEAQ	state_mainProbs(R8)(AX*1), AX
	CMPL	R11, $0xffff
	JA	nonorm0
	SHLL	$16, R11
	SHLL	$16, R12
	LEAQ	2(R13), CX
	CMPQ	CX, state_regs+loopRegs_inLen(R8)
	JA	noword0
	MOVWLZX	(SI)(R13*1), DX
	ORL	DX, R12
noword0:
	MOVQ	CX, R13
nonorm0:
	MOVL	8(AX), CX
	LEAL	-1(CX), DX
	SHRL	$31, DX
	ADDL	CX, DX
	SHRL	$6, CX
	SUBL	CX, DX
	MOVL	R11, CX
	SHRL	$6, CX
	IMULL	DX, CX
	CMPL	R12, CX
	JAE	one0
	MOVL	CX, R11
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$0, 8(AX)
	MOVQ	DX, (AX)
	JMP	literal
one0:
	SUBL	CX, R11
	SUBL	CX, R12
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$-1, 8(AX)
	ORQ	$1, DX
	MOVQ	DX, (AX)
	JMP	match
literal:
	SHLL	$1, R10
	CMPQ	R15, $16
	JAE	refilled1
	CMPQ	BX, $8
	JLT	refilllow1
	MOVQ	-8(SI)(BX*1), AX
refillor1:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled1
refilllow1:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor1
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor1
refilled1:
	MOVQ	R14, AX
	SHRQ	$54, AX
	MOVL	state_litTable(R8)(AX*4), AX
	BTL	$7, AX
	JCC	symgot2
	MOVL	AX, CX
	ANDL	$31, CX
	MOVQ	R14, DX
	SHLQ	CX, DX
	MOVL	AX, CX
	SHRL	$8, CX
	ANDL	$15, CX
	NEGL	CX
	ADDL	$64, CX
	SHRQ	CX, DX
	SHRL	$16, AX
	ADDL	DX, AX
	ANDL	$8191, AX
	MOVL	state_litTable(R8)(AX*4), AX
symgot2:
	MOVL	AX, CX
	ANDL	$31, CX
	SHLQ	CX, R14
	SUBQ	CX, R15
	SHRL	$16, AX
	ANDL	$255, AX
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
	MOVL	state_matchState(R8), AX
	ANDL	$31, AX
	SHLQ	$4, AX
	LEAQ	state_matchProbs(R8)(AX*1), AX
	CMPL	R11, $0xffff
	JA	nonorm3
	SHLL	$16, R11
	SHLL	$16, R12
	LEAQ	2(R13), CX
	CMPQ	CX, state_regs+loopRegs_inLen(R8)
	JA	noword3
	MOVWLZX	(SI)(R13*1), DX
	ORL	DX, R12
noword3:
	MOVQ	CX, R13
nonorm3:
	MOVL	8(AX), CX
	LEAL	-1(CX), DX
	SHRL	$31, DX
	ADDL	CX, DX
	SHRL	$6, CX
	SUBL	CX, DX
	MOVL	R11, CX
	SHRL	$6, CX
	IMULL	DX, CX
	CMPL	R12, CX
	JAE	one3
	MOVL	CX, R11
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$0, 8(AX)
	MOVQ	DX, (AX)
	JMP	lz
one3:
	SUBL	CX, R11
	SUBL	CX, R12
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$-1, 8(AX)
	ORQ	$1, DX
	MOVQ	DX, (AX)
	JMP	delta
delta:
	MOVL	state_matchState(R8), CX
	LEAL	1(CX)(CX*1), CX
	MOVL	CX, state_matchState(R8)
	// delta offset: explicit (0) or repeated (1)
	MOVL	state_deltaState(R8), AX
	ANDL	$63, AX
	SHLQ	$4, AX
	LEAQ	state_deltaProbs(R8)(AX*1), AX
	CMPL	R11, $0xffff
	JA	nonorm4
	SHLL	$16, R11
	SHLL	$16, R12
	LEAQ	2(R13), CX
	CMPQ	CX, state_regs+loopRegs_inLen(R8)
	JA	noword4
	MOVWLZX	(SI)(R13*1), DX
	ORL	DX, R12
noword4:
	MOVQ	CX, R13
nonorm4:
	MOVL	8(AX), CX
	LEAL	-1(CX), DX
	SHRL	$31, DX
	ADDL	CX, DX
	SHRL	$6, CX
	SUBL	CX, DX
	MOVL	R11, CX
	SHRL	$6, CX
	IMULL	DX, CX
	CMPL	R12, CX
	JAE	one4
	MOVL	CX, R11
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$0, 8(AX)
	MOVQ	DX, (AX)
	JMP	dexplicit
one4:
	SUBL	CX, R11
	SUBL	CX, R12
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$-1, 8(AX)
	ORQ	$1, DX
	MOVQ	DX, (AX)
	JMP	drep
dexplicit:
	SHLL	$1, state_deltaState(R8)
	CMPQ	BX, $8
	JLT	refilllow5
	MOVQ	-8(SI)(BX*1), AX
refillor5:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled5
refilllow5:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor5
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor5
refilled5:
	MOVQ	R14, AX
	SHRQ	$56, AX
	MOVL	state_powTable(R8)(AX*4), AX
	BTL	$7, AX
	JCC	symgot6
	MOVL	AX, CX
	ANDL	$31, CX
	MOVQ	R14, DX
	SHLQ	CX, DX
	MOVL	AX, CX
	SHRL	$8, CX
	ANDL	$15, CX
	NEGL	CX
	ADDL	$64, CX
	SHRQ	CX, DX
	SHRL	$16, AX
	ADDL	DX, AX
	ANDL	$1023, AX
	MOVL	state_powTable(R8)(AX*4), AX
symgot6:
	MOVL	AX, CX
	ANDL	$31, CX
	SHLQ	CX, R14
	SUBQ	CX, R15
	SHRL	$16, AX
	ANDL	$7, AX
	INCL	state_powFreqs(R8)(AX*4)
	DECQ	state_deltaPower+adaptiveCode_until(R8)
	MOVQ	AX, state_regs+loopRegs_offset(R8)
	MOVQ	R14, AX
	SHRQ	$54, AX
	MOVL	state_dofTable(R8)(AX*4), AX
	BTL	$7, AX
	JCC	symgot7
	MOVL	AX, CX
	ANDL	$31, CX
	MOVQ	R14, DX
	SHLQ	CX, DX
	MOVL	AX, CX
	SHRL	$8, CX
	ANDL	$15, CX
	NEGL	CX
	ADDL	$64, CX
	SHRQ	CX, DX
	SHRL	$16, AX
	ADDL	DX, AX
	ANDL	$16383, AX
	MOVL	state_dofTable(R8)(AX*4), AX
symgot7:
	MOVL	AX, CX
	ANDL	$31, CX
	SHLQ	CX, R14
	SUBQ	CX, R15
	SHRL	$16, AX
	ANDL	$1023, AX
	INCL	state_dofFreqs(R8)(AX*4)
	DECQ	state_deltaOffset+adaptiveCode_until(R8)
	LEAQ	·offBase(SB), CX
	MOVL	(CX)(AX*4), R10
	LEAQ	·offExtra(SB), CX
	MOVBLZX	(CX)(AX*1), DX
	CMPQ	BX, $8
	JLT	refilllow8
	MOVQ	-8(SI)(BX*1), AX
refillor8:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled8
refilllow8:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor8
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor8
refilled8:
	MOVQ	R14, AX
	SHRQ	$1, AX
	MOVL	$63, CX
	SUBL	DX, CX
	SHRQ	CX, AX
	MOVL	DX, CX
	SHLQ	CX, R14
	SUBQ	DX, R15
	ADDL	AX, R10
	MOVQ	state_regs+loopRegs_offset(R8), AX
	SHLQ	$32, AX
	ORQ	AX, R10
	MOVQ	state_recentDelta+16(R8), AX
	MOVQ	AX, state_recentDelta+24(R8)
	MOVQ	state_recentDelta+8(R8), AX
	MOVQ	AX, state_recentDelta+16(R8)
	MOVQ	state_recentDelta+0(R8), AX
	MOVQ	AX, state_recentDelta+8(R8)
	JMP	dhavepair

drep:
	MOVL	state_deltaState(R8), CX
	LEAL	1(CX)(CX*1), CX
	MOVL	CX, state_deltaState(R8)
	// first delta repeat decision
	MOVL	state_deltaRepState+0(R8), AX
	ANDL	$63, AX
	SHLQ	$4, AX
	LEAQ	state_deltaRepProbs(R8)(AX*1), AX
	CMPL	R11, $0xffff
	JA	nonorm9
	SHLL	$16, R11
	SHLL	$16, R12
	LEAQ	2(R13), CX
	CMPQ	CX, state_regs+loopRegs_inLen(R8)
	JA	noword9
	MOVWLZX	(SI)(R13*1), DX
	ORL	DX, R12
noword9:
	MOVQ	CX, R13
nonorm9:
	MOVL	8(AX), CX
	LEAL	-1(CX), DX
	SHRL	$31, DX
	ADDL	CX, DX
	SHRL	$6, CX
	SUBL	CX, DX
	MOVL	R11, CX
	SHRL	$6, CX
	IMULL	DX, CX
	CMPL	R12, CX
	JAE	one9
	MOVL	CX, R11
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$0, 8(AX)
	MOVQ	DX, (AX)
	JMP	drep0
one9:
	SUBL	CX, R11
	SUBL	CX, R12
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$-1, 8(AX)
	ORQ	$1, DX
	MOVQ	DX, (AX)
	JMP	drep12
drep0:
	SHLL	$1, state_deltaRepState+0(R8)
	XORL	DX, DX
	CMPQ	R9, state_regs+loopRegs_deltaEnd(R8)
	SETEQ	DL
	MOVQ	state_recentDelta(R8)(DX*8), R10
	MOVQ	state_recentDelta(R8), AX
	MOVQ	AX, state_recentDelta(R8)(DX*8)
	JMP	dhavepair

drep12:
	MOVL	state_deltaRepState+0(R8), CX
	LEAL	1(CX)(CX*1), CX
	MOVL	CX, state_deltaRepState+0(R8)
	// second delta repeat decision
	MOVL	state_deltaRepState+4(R8), AX
	ANDL	$63, AX
	SHLQ	$4, AX
	LEAQ	state_deltaRepProbs+1024(R8)(AX*1), AX
	CMPL	R11, $0xffff
	JA	nonorm10
	SHLL	$16, R11
	SHLL	$16, R12
	LEAQ	2(R13), CX
	CMPQ	CX, state_regs+loopRegs_inLen(R8)
	JA	noword10
	MOVWLZX	(SI)(R13*1), DX
	ORL	DX, R12
noword10:
	MOVQ	CX, R13
nonorm10:
	MOVL	8(AX), CX
	LEAL	-1(CX), DX
	SHRL	$31, DX
	ADDL	CX, DX
	SHRL	$6, CX
	SUBL	CX, DX
	MOVL	R11, CX
	SHRL	$6, CX
	IMULL	DX, CX
	CMPL	R12, CX
	JAE	one10
	MOVL	CX, R11
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$0, 8(AX)
	MOVQ	DX, (AX)
	JMP	drep1
one10:
	SUBL	CX, R11
	SUBL	CX, R12
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$-1, 8(AX)
	ORQ	$1, DX
	MOVQ	DX, (AX)
	JMP	drep2
drep1:
	SHLL	$1, state_deltaRepState+4(R8)
	XORL	DX, DX
	CMPQ	R9, state_regs+loopRegs_deltaEnd(R8)
	SETEQ	DL
	MOVQ	state_recentDelta+8(R8)(DX*8), R10
	MOVQ	state_recentDelta+8(R8), AX
	MOVQ	AX, state_recentDelta+8(R8)(DX*8)
	MOVQ	state_recentDelta+0(R8), AX
	MOVQ	AX, state_recentDelta+8(R8)
	JMP	dhavepair

drep2:
	MOVL	state_deltaRepState+4(R8), CX
	LEAL	1(CX)(CX*1), CX
	MOVL	CX, state_deltaRepState+4(R8)
	XORL	DX, DX
	CMPQ	R9, state_regs+loopRegs_deltaEnd(R8)
	SETEQ	DL
	MOVQ	state_recentDelta+16(R8)(DX*8), R10
	MOVQ	state_recentDelta+16(R8), AX
	MOVQ	AX, state_recentDelta+16(R8)(DX*8)
	MOVQ	state_recentDelta+8(R8), AX
	MOVQ	AX, state_recentDelta+16(R8)
	MOVQ	state_recentDelta+0(R8), AX
	MOVQ	AX, state_recentDelta+8(R8)

dhavepair:
	MOVQ	R10, state_recentDelta+0(R8)
	MOVQ	R10, state_regs+loopRegs_offset(R8)
	CMPQ	BX, $8
	JLT	refilllow11
	MOVQ	-8(SI)(BX*1), AX
refillor11:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled11
refilllow11:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor11
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor11
refilled11:
	MOVQ	R14, AX
	SHRQ	$54, AX
	MOVL	state_lenTable(R8)(AX*4), AX
	BTL	$7, AX
	JCC	symgot12
	MOVL	AX, CX
	ANDL	$31, CX
	MOVQ	R14, DX
	SHLQ	CX, DX
	MOVL	AX, CX
	SHRL	$8, CX
	ANDL	$15, CX
	NEGL	CX
	ADDL	$64, CX
	SHRQ	CX, DX
	SHRL	$16, AX
	ADDL	DX, AX
	ANDL	$2047, AX
	MOVL	state_lenTable(R8)(AX*4), AX
symgot12:
	MOVL	AX, CX
	ANDL	$31, CX
	SHLQ	CX, R14
	SUBQ	CX, R15
	SHRL	$16, AX
	ANDL	$63, AX
	INCL	state_lenFreqs(R8)(AX*4)
	DECQ	state_length+adaptiveCode_until(R8)
	LEAQ	·lenBase(SB), CX
	MOVL	(CX)(AX*4), R10
	LEAQ	·lenExtra(SB), CX
	MOVBLZX	(CX)(AX*1), DX
	TESTL	DX, DX
	JEQ	dhavelength
	CMPQ	BX, $8
	JLT	refilllow13
	MOVQ	-8(SI)(BX*1), AX
refillor13:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled13
refilllow13:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor13
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor13
refilled13:
	MOVQ	R14, AX
	SHRQ	$1, AX
	MOVL	$63, CX
	SUBL	DX, CX
	SHRQ	CX, AX
	MOVL	DX, CX
	SHLQ	CX, R14
	SUBQ	DX, R15
	ADDL	AX, R10

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
	MOVL	0(BX), X0
	MOVL	0(CX)(DX*1), X1
	PADDB	X1, X0
	MOVL	0(BX)(DX*1), X1
	PSUBB	X1, X0
	MOVL	X0, 0(CX)
	MOVL	4(BX), X0
	MOVL	4(CX)(DX*1), X1
	PADDB	X1, X0
	MOVL	4(BX)(DX*1), X1
	PSUBB	X1, X0
	MOVL	X0, 4(CX)
	MOVL	8(BX), X0
	MOVL	8(CX)(DX*1), X1
	PADDB	X1, X0
	MOVL	8(BX)(DX*1), X1
	PSUBB	X1, X0
	MOVL	X0, 8(CX)
	MOVL	12(BX), X0
	MOVL	12(CX)(DX*1), X1
	PADDB	X1, X0
	MOVL	12(BX)(DX*1), X1
	PSUBB	X1, X0
	MOVL	X0, 12(CX)
	JMP	ddone
dshort8:
	MOVQ	0(BX), X0
	MOVQ	0(CX)(DX*1), X1
	PADDB	X1, X0
	MOVQ	0(BX)(DX*1), X1
	PSUBB	X1, X0
	MOVQ	X0, 0(CX)
	MOVQ	8(BX), X0
	MOVQ	8(CX)(DX*1), X1
	PADDB	X1, X0
	MOVQ	8(BX)(DX*1), X1
	PSUBB	X1, X0
	MOVQ	X0, 8(CX)
	JMP	ddone
dlong:
	CMPQ	DX, $-8
	JGT	dsmall
dwide:
	CMPQ	R10, $8
	JLT	dtail
	MOVQ	(BX), X0
	MOVQ	(CX)(DX*1), X1
	PADDB	X1, X0
	MOVQ	(BX)(DX*1), X1
	PSUBB	X1, X0
	MOVQ	X0, (CX)
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
	MOVL	(BX), X0
	MOVL	(CX)(DX*1), X1
	PADDB	X1, X0
	MOVL	(BX)(DX*1), X1
	PSUBB	X1, X0
	MOVL	X0, (CX)
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
	MOVL	state_lzState(R8), AX
	ANDL	$63, AX
	SHLQ	$4, AX
	LEAQ	state_lzProbs(R8)(AX*1), AX
	CMPL	R11, $0xffff
	JA	nonorm14
	SHLL	$16, R11
	SHLL	$16, R12
	LEAQ	2(R13), CX
	CMPQ	CX, state_regs+loopRegs_inLen(R8)
	JA	noword14
	MOVWLZX	(SI)(R13*1), DX
	ORL	DX, R12
noword14:
	MOVQ	CX, R13
nonorm14:
	MOVL	8(AX), CX
	LEAL	-1(CX), DX
	SHRL	$31, DX
	ADDL	CX, DX
	SHRL	$6, CX
	SUBL	CX, DX
	MOVL	R11, CX
	SHRL	$6, CX
	IMULL	DX, CX
	CMPL	R12, CX
	JAE	one14
	MOVL	CX, R11
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$0, 8(AX)
	MOVQ	DX, (AX)
	JMP	explicit
one14:
	SUBL	CX, R11
	SUBL	CX, R12
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$-1, 8(AX)
	ORQ	$1, DX
	MOVQ	DX, (AX)
	JMP	rep
explicit:
	SHLL	$1, state_lzState(R8)
	CMPQ	BX, $8
	JLT	refilllow15
	MOVQ	-8(SI)(BX*1), AX
refillor15:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled15
refilllow15:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor15
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor15
refilled15:
	MOVQ	R14, AX
	SHRQ	$54, AX
	MOVL	state_offTable(R8)(AX*4), AX
	BTL	$7, AX
	JCC	symgot16
	MOVL	AX, CX
	ANDL	$31, CX
	MOVQ	R14, DX
	SHLQ	CX, DX
	MOVL	AX, CX
	SHRL	$8, CX
	ANDL	$15, CX
	NEGL	CX
	ADDL	$64, CX
	SHRQ	CX, DX
	SHRL	$16, AX
	ADDL	DX, AX
	ANDL	$16383, AX
	MOVL	state_offTable(R8)(AX*4), AX
symgot16:
	MOVL	AX, CX
	ANDL	$31, CX
	SHLQ	CX, R14
	SUBQ	CX, R15
	SHRL	$16, AX
	ANDL	$1023, AX
	INCL	state_offFreqs(R8)(AX*4)
	DECQ	state_lzOffset+adaptiveCode_until(R8)
	LEAQ	·offBase(SB), CX
	MOVL	(CX)(AX*4), R10
	LEAQ	·offExtra(SB), CX
	MOVBLZX	(CX)(AX*1), DX
	CMPQ	BX, $8
	JLT	refilllow17
	MOVQ	-8(SI)(BX*1), AX
refillor17:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled17
refilllow17:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor17
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor17
refilled17:
	MOVQ	R14, AX
	SHRQ	$1, AX
	MOVL	$63, CX
	SUBL	DX, CX
	SHRQ	CX, AX
	MOVL	DX, CX
	SHLQ	CX, R14
	SUBQ	DX, R15
	ADDL	AX, R10
	MOVL	state_recentLZ+8(R8), AX
	MOVL	AX, state_recentLZ+12(R8)
	MOVL	state_recentLZ+4(R8), AX
	MOVL	AX, state_recentLZ+8(R8)
	MOVL	state_recentLZ+0(R8), AX
	MOVL	AX, state_recentLZ+4(R8)
	JMP	haveoffset

rep:
	MOVL	state_lzState(R8), CX
	LEAL	1(CX)(CX*1), CX
	MOVL	CX, state_lzState(R8)
	// first repeat decision
	MOVL	state_lzRepState+0(R8), AX
	ANDL	$63, AX
	SHLQ	$4, AX
	LEAQ	state_lzRepProbs(R8)(AX*1), AX
	CMPL	R11, $0xffff
	JA	nonorm18
	SHLL	$16, R11
	SHLL	$16, R12
	LEAQ	2(R13), CX
	CMPQ	CX, state_regs+loopRegs_inLen(R8)
	JA	noword18
	MOVWLZX	(SI)(R13*1), DX
	ORL	DX, R12
noword18:
	MOVQ	CX, R13
nonorm18:
	MOVL	8(AX), CX
	LEAL	-1(CX), DX
	SHRL	$31, DX
	ADDL	CX, DX
	SHRL	$6, CX
	SUBL	CX, DX
	MOVL	R11, CX
	SHRL	$6, CX
	IMULL	DX, CX
	CMPL	R12, CX
	JAE	one18
	MOVL	CX, R11
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$0, 8(AX)
	MOVQ	DX, (AX)
	JMP	rep0
one18:
	SUBL	CX, R11
	SUBL	CX, R12
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$-1, 8(AX)
	ORQ	$1, DX
	MOVQ	DX, (AX)
	JMP	rep12
rep0:
	SHLL	$1, state_lzRepState+0(R8)
	XORL	DX, DX
	CMPQ	R9, state_regs+loopRegs_lzEnd(R8)
	SETEQ	DL
	MOVL	state_recentLZ(R8)(DX*4), R10
	MOVL	state_recentLZ(R8), AX
	MOVL	AX, state_recentLZ(R8)(DX*4)
	JMP	haveoffset

rep12:
	MOVL	state_lzRepState+0(R8), CX
	LEAL	1(CX)(CX*1), CX
	MOVL	CX, state_lzRepState+0(R8)
	// second repeat decision
	MOVL	state_lzRepState+4(R8), AX
	ANDL	$63, AX
	SHLQ	$4, AX
	LEAQ	state_lzRepProbs+1024(R8)(AX*1), AX
	CMPL	R11, $0xffff
	JA	nonorm19
	SHLL	$16, R11
	SHLL	$16, R12
	LEAQ	2(R13), CX
	CMPQ	CX, state_regs+loopRegs_inLen(R8)
	JA	noword19
	MOVWLZX	(SI)(R13*1), DX
	ORL	DX, R12
noword19:
	MOVQ	CX, R13
nonorm19:
	MOVL	8(AX), CX
	LEAL	-1(CX), DX
	SHRL	$31, DX
	ADDL	CX, DX
	SHRL	$6, CX
	SUBL	CX, DX
	MOVL	R11, CX
	SHRL	$6, CX
	IMULL	DX, CX
	CMPL	R12, CX
	JAE	one19
	MOVL	CX, R11
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$0, 8(AX)
	MOVQ	DX, (AX)
	JMP	rep1
one19:
	SUBL	CX, R11
	SUBL	CX, R12
	MOVQ	(AX), DX
	SHLQ	$1, DX
	ADCL	$-1, 8(AX)
	ORQ	$1, DX
	MOVQ	DX, (AX)
	JMP	rep2
rep1:
	SHLL	$1, state_lzRepState+4(R8)
	XORL	DX, DX
	CMPQ	R9, state_regs+loopRegs_lzEnd(R8)
	SETEQ	DL
	MOVL	state_recentLZ+4(R8)(DX*4), R10
	MOVL	state_recentLZ+4(R8), AX
	MOVL	AX, state_recentLZ+4(R8)(DX*4)
	MOVL	state_recentLZ+0(R8), AX
	MOVL	AX, state_recentLZ+4(R8)
	JMP	haveoffset

rep2:
	MOVL	state_lzRepState+4(R8), CX
	LEAL	1(CX)(CX*1), CX
	MOVL	CX, state_lzRepState+4(R8)
	XORL	DX, DX
	CMPQ	R9, state_regs+loopRegs_lzEnd(R8)
	SETEQ	DL
	MOVL	state_recentLZ+8(R8)(DX*4), R10
	MOVL	state_recentLZ+8(R8), AX
	MOVL	AX, state_recentLZ+8(R8)(DX*4)
	MOVL	state_recentLZ+4(R8), AX
	MOVL	AX, state_recentLZ+8(R8)
	MOVL	state_recentLZ+0(R8), AX
	MOVL	AX, state_recentLZ+4(R8)

haveoffset:
	MOVL	R10, state_recentLZ+0(R8)
	MOVQ	R10, state_regs+loopRegs_offset(R8)
	CMPQ	BX, $8
	JLT	refilllow20
	MOVQ	-8(SI)(BX*1), AX
refillor20:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled20
refilllow20:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor20
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor20
refilled20:
	MOVQ	R14, AX
	SHRQ	$54, AX
	MOVL	state_lenTable(R8)(AX*4), AX
	BTL	$7, AX
	JCC	symgot21
	MOVL	AX, CX
	ANDL	$31, CX
	MOVQ	R14, DX
	SHLQ	CX, DX
	MOVL	AX, CX
	SHRL	$8, CX
	ANDL	$15, CX
	NEGL	CX
	ADDL	$64, CX
	SHRQ	CX, DX
	SHRL	$16, AX
	ADDL	DX, AX
	ANDL	$2047, AX
	MOVL	state_lenTable(R8)(AX*4), AX
symgot21:
	MOVL	AX, CX
	ANDL	$31, CX
	SHLQ	CX, R14
	SUBQ	CX, R15
	SHRL	$16, AX
	ANDL	$63, AX
	INCL	state_lenFreqs(R8)(AX*4)
	DECQ	state_length+adaptiveCode_until(R8)
	LEAQ	·lenBase(SB), CX
	MOVL	(CX)(AX*4), R10
	LEAQ	·lenExtra(SB), CX
	MOVBLZX	(CX)(AX*1), DX
	TESTL	DX, DX
	JEQ	havelength
	CMPQ	BX, $8
	JLT	refilllow22
	MOVQ	-8(SI)(BX*1), AX
refillor22:
	MOVQ	R15, CX
	SHRQ	CX, AX
	ORQ	AX, R14
	MOVQ	$63, CX
	SUBQ	R15, CX
	SHRQ	$4, CX
	MOVQ	CX, AX
	SHLQ	$4, AX
	ADDQ	AX, R15
	SHLQ	$1, CX
	SUBQ	CX, BX
	JMP	refilled22
refilllow22:
	XORL	AX, AX
	CMPQ	BX, $0
	JLE	refillor22
	MOVQ	(SI), AX
	MOVQ	$8, CX
	SUBQ	BX, CX
	SHLQ	$3, CX
	SHLQ	CX, AX
	JMP	refillor22
refilled22:
	MOVQ	R14, AX
	SHRQ	$1, AX
	MOVL	$63, CX
	SUBL	DX, CX
	SHRQ	CX, AX
	MOVL	DX, CX
	SHLQ	CX, R14
	SUBQ	DX, R15
	ADDL	AX, R10

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
