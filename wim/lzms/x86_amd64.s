//go:build amd64 && !purego

#include "textflag.h"

// func x86Flags(masks *[64]uint64, data *byte, groups int)
//
// For each 16 bytes of data, a 16-bit mask of the bytes that may start a translated x86
// instruction (0x48, 0x4C, 0xE8, 0xE9, 0xF0, 0xFF), stored as consecutive uint16s.
// The caller (x86Candidates) checks that data holds groups*16 bytes and masks 2*groups.
TEXT ·x86Flags(SB), NOSPLIT, $0-24
	MOVQ	masks+0(FP), DI
	MOVQ	data+8(FP), SI
	MOVQ	groups+16(FP), CX
	TESTQ	CX, CX
	JLE	done
	MOVQ	$0xfbfbfbfbfbfbfbfb, AX
	MOVQ	AX, X8
	PUNPCKLQDQ	X8, X8
	MOVQ	$0x4848484848484848, AX
	MOVQ	AX, X9
	PUNPCKLQDQ	X9, X9
	MOVQ	$0xfefefefefefefefe, AX
	MOVQ	AX, X10
	PUNPCKLQDQ	X10, X10
	MOVQ	$0xe8e8e8e8e8e8e8e8, AX
	MOVQ	AX, X11
	PUNPCKLQDQ	X11, X11
	MOVQ	$0xf0f0f0f0f0f0f0f0, AX
	MOVQ	AX, X12
	PUNPCKLQDQ	X12, X12
	PCMPEQB	X13, X13
loop:
	MOVOU	(SI), X0
	MOVO	X0, X1
	PAND	X8, X1
	PCMPEQB	X9, X1
	MOVO	X0, X2
	PAND	X10, X2
	PCMPEQB	X11, X2
	MOVO	X0, X3
	PCMPEQB	X12, X3
	PCMPEQB	X13, X0
	POR	X1, X0
	POR	X2, X0
	POR	X3, X0
	PMOVMSKB	X0, AX
	MOVW	AX, (DI)
	ADDQ	$16, SI
	ADDQ	$2, DI
	DECQ	CX
	JNE	loop
done:
	RET
