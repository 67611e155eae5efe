package iso

import (
	"encoding/binary"
	"fmt"
)

// Hand-built ISO 9660 images, for what genisoimage and xorriso will not write on demand:
// multi-extent files over 4 GiB, directory loops and absurd nesting.

// record9660 builds one directory record (both-endian fields, as ECMA-119 9.1 lays out).
func record9660(name string, loc, length uint32, flags byte) []byte {
	n := 33 + len(name)
	if len(name)%2 == 0 {
		n++
	}
	b := make([]byte, n)
	b[0] = byte(n)
	binary.LittleEndian.PutUint32(b[2:], loc)
	binary.BigEndian.PutUint32(b[6:], loc)
	binary.LittleEndian.PutUint32(b[10:], length)
	binary.BigEndian.PutUint32(b[14:], length)
	copy(b[18:], []byte{124, 1, 2, 3, 4, 5, 0})
	b[25] = flags
	binary.LittleEndian.PutUint16(b[28:], 1)
	binary.BigEndian.PutUint16(b[30:], 1)
	b[32] = byte(len(name))
	copy(b[33:], name)
	return b
}

// dirSector is a directory of one sector at loc with "." and ".." and the given records.
func dirSector(loc, parent uint32, recs ...[]byte) []byte {
	b := append(record9660("\x00", loc, 2048, flagDir), record9660("\x01", parent, 2048, flagDir)...)
	for _, r := range recs {
		b = append(b, r...)
	}
	return append(b, make([]byte, 2048-len(b))...)
}

// new9660 lays out a primary volume descriptor (root directory at sector 18), a terminator
// and the given sectors from 18 on; size is the volume size it records.
func new9660(size int64, sectors ...[]byte) []byte {
	img := make([]byte, (18+len(sectors))*2048)
	pvd := img[16*2048:]
	pvd[0], pvd[6] = vdPrimary, 1
	copy(pvd[1:], "CD001")
	copy(pvd[40:72], fmt.Sprintf("%-32s", "HAND_9660"))
	binary.LittleEndian.PutUint32(pvd[80:], uint32(size/2048))
	binary.LittleEndian.PutUint16(pvd[128:], 2048)
	copy(pvd[156:], record9660("\x00", 18, 2048, flagDir))
	term := img[17*2048:]
	term[0], term[6] = vdTerminator, 1
	copy(term[1:], "CD001")
	for i, s := range sectors {
		copy(img[(18+i)*2048:], s)
	}
	return img
}

// bigImage is an image whose first bytes are head and whose rest is a pattern computed from
// the offset, so a multi-gigabyte image costs no memory.
type bigImage struct {
	head []byte
	size int64
}

func patternByte(off int64) byte { return byte(off ^ off>>11 ^ off>>23) }

func (b bigImage) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		o := off + int64(i)
		if o >= b.size {
			return i, fmt.Errorf("read past the end")
		}
		if o < int64(len(b.head)) {
			p[i] = b.head[o]
		} else {
			p[i] = patternByte(o)
		}
	}
	return len(p), nil
}

// Multi-extent layout: BIG.BIN = 0xFFFFF800 bytes at sector 20, then 1 GiB at bigSecond.
const (
	bigFirst     = 0xFFFFF800
	bigSecond    = 20 + bigFirst/2048 + 100 // not contiguous with the first extent
	bigSecondLen = 1 << 30
)

func multiExtentImage() bigImage {
	root := dirSector(18, 18,
		record9660("BIG.BIN;1", 20, bigFirst, flagMultiExt),
		record9660("BIG.BIN;1", bigSecond, bigSecondLen, 0),
		record9660("SMALL.TXT;1", 19, 5, 0))
	small := append([]byte("small"), make([]byte, 2043)...)
	size := int64(bigSecond)*2048 + bigSecondLen
	return bigImage{head: new9660(size, root, small), size: size}
}

// deepImage nests a directory in a directory depth times.
func deepImage(depth int) []byte {
	secs := [][]byte{}
	for i := 0; i < depth; i++ {
		loc := uint32(18 + i)
		parent := max(loc-1, 18)
		secs = append(secs, dirSector(loc, parent, record9660("D", loc+1, 2048, flagDir)))
	}
	secs = append(secs, dirSector(uint32(18+depth), uint32(17+depth)))
	return new9660(int64(18+len(secs))*2048, secs...)
}

// loopImage has a subdirectory whose extent is the root's.
func loopImage() []byte {
	return new9660(19*2048, dirSector(18, 18, record9660("LOOP", 18, 2048, flagDir)))
}
