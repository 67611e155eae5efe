package iso

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"
)

// udfImage builds a minimal UDF 2.50 image by hand, for what the tools here cannot make
// (mkudffs writes UDF 2.50 only with a virtual allocation table, and a UDF volume cannot be
// populated without a kernel mount): a metadata partition whose metadata file is fragmented,
// extended and plain file entries, embedded data, long_ad, ext_ad and allocation extent
// descriptors, a sparse file over 4 GiB and 16-bit OSTA names. Layout, in 2048-byte blocks:
//
//	16-18 volume recognition, 32-35 PVD/PD/LVD/TD, 256 anchor, 300-499 partition 0, 500 anchor
//	partition 0: 0 metadata file entry, 1 mirror entry, 10-13 and 20-27 metadata file data,
//	             100- file data, 120 allocation extent descriptor
//	metadata partition: 0 FSD, 1 root entry, 2 root FIDs, 3 sub entry, 4 sub FIDs, 5- files
type udfImage struct {
	b      []byte
	simple bool
}

const (
	hbs        = 2048
	hPartStart = 300
	hPartLen   = 200
)

// hand-built file contents.
var (
	hHello  = []byte("hello from a UDF 2.50 metadata partition\n")
	hInline = []byte("embedded in the extended file entry")
	hTail   = bytes.Repeat([]byte("tail!"), 600) // 3000 bytes after 5 holes
	hFrag   = randBytes(9, 2048+4096+1000)
	hExt    = randBytes(10, 5000)
	hDeep   = []byte("in a subdirectory with a 16-bit name")
)

const hHole = 0x3FFFF800 // largest block-aligned extent length

func newUDFImage() *udfImage { return buildUDFImage(false) }

// buildUDFImage builds the image; with simple set it keeps to what 7-Zip's UDF reader
// accepts, so that an independent reader can check the builder: the metadata file in one
// extent (blocks 10-21), and short and long allocation descriptors only (no ext_ad, no
// allocation extent descriptor).
func buildUDFImage(simple bool) *udfImage {
	u := &udfImage{b: make([]byte, (hPartStart+hPartLen+1)*hbs), simple: simple}
	for i, id := range []string{"BEA01", "NSR03", "TEA01"} {
		blk := u.blk(16 + i)
		blk[0], blk[6] = 0, 1
		copy(blk[1:], id)
	}
	u.volumeDescriptors()
	u.metadataFiles()
	u.tree()
	return u
}

func (u *udfImage) blk(n int) []byte { return u.b[n*hbs : (n+1)*hbs] }

// pblk is a block of partition 0; mblk a block of the metadata partition (mapped through
// the metadata file's two extents: blocks 0-3 at 10-13, 4-11 at 20-27).
func (u *udfImage) pblk(n int) []byte { return u.blk(hPartStart + n) }
func (u *udfImage) mblk(n int) []byte {
	if n < 4 || u.simple {
		return u.pblk(10 + n)
	}
	return u.pblk(20 + n - 4)
}

// setTag fills a descriptor tag: CRC over body bytes after the tag, then the checksum.
func setTag(b []byte, id uint16, loc uint32, body int) {
	le := binary.LittleEndian
	le.PutUint16(b, id)
	le.PutUint16(b[2:], 3)
	le.PutUint16(b[6:], 1)
	le.PutUint16(b[8:], crcCCITT(b[16:16+body]))
	le.PutUint16(b[10:], uint16(body))
	le.PutUint32(b[12:], loc)
	b[4] = 0
	var sum byte
	for i := 0; i < 16; i++ {
		if i != 4 {
			sum += b[i]
		}
	}
	b[4] = sum
}

func putDString(b []byte, s string) {
	b[0] = 8
	n := copy(b[1:len(b)-1], s)
	b[len(b)-1] = byte(n + 1)
}

func (u *udfImage) volumeDescriptors() {
	le := binary.LittleEndian
	pvd := u.blk(32)
	putDString(pvd[24:56], "HAND_PVD")
	setTag(pvd, tagPVD, 32, 512-16)

	pd := u.blk(33)
	le.PutUint16(pd[22:], 0)
	copy(pd[25:], "+NSR03")
	le.PutUint32(pd[184:], 1) // read-only
	le.PutUint32(pd[188:], hPartStart)
	le.PutUint32(pd[192:], hPartLen)
	setTag(pd, tagPD, 33, 512-16)

	lvd := u.blk(34)
	putDString(lvd[84:84+128], "HAND_UDF250")
	le.PutUint32(lvd[212:], hbs)
	copy(lvd[217:], "*OSTA UDF Compliant")
	le.PutUint16(lvd[240:], 0x0250)
	le.PutUint32(lvd[248:], hbs) // FSD long_ad: metadata partition block 0
	le.PutUint32(lvd[252:], 0)
	le.PutUint16(lvd[256:], 1)
	le.PutUint32(lvd[264:], 6+64)
	le.PutUint32(lvd[268:], 2)
	m := lvd[440:]
	m[0], m[1] = 1, 6
	le.PutUint16(m[2:], 1)
	le.PutUint16(m[4:], 0)
	m = lvd[446:]
	m[0], m[1] = 2, 64
	copy(m[5:], "*UDF Metadata Partition")
	le.PutUint16(m[36:], 1)
	le.PutUint16(m[38:], 0)
	le.PutUint32(m[40:], 0) // metadata file
	le.PutUint32(m[44:], 1) // mirror
	le.PutUint32(m[48:], 0xFFFFFFFF)
	le.PutUint32(m[52:], 32)
	le.PutUint16(m[56:], 1)
	setTag(lvd, tagLVD, 34, 440+70-16)

	setTag(u.blk(35), tagTD, 35, 512-16)

	avdp := u.blk(anchorBlock)
	for _, at := range []int{16, 24} {
		le.PutUint32(avdp[at:], 4*hbs)
		le.PutUint32(avdp[at+4:], 32)
	}
	setTag(avdp, tagAVDP, anchorBlock, 512-16)
	last := hPartStart + hPartLen // UDF wants a second anchor; the last block is one place
	copy(u.blk(last), avdp)
	setTag(u.blk(last), tagAVDP, uint32(last), 512-16)
}

// entry writes a file entry (or extended one) with the given allocation descriptors.
func entry(b []byte, loc uint32, extended bool, fileType byte, adKind uint16, size uint64, ads []byte) {
	le := binary.LittleEndian
	le.PutUint16(b[20:], 4)
	le.PutUint16(b[24:], 1)
	b[27] = fileType
	le.PutUint16(b[34:], adKind)
	le.PutUint16(b[48:], 1)
	le.PutUint64(b[56:], size)
	id, ts, lEA := uint16(tagFE), 84, 168
	if extended {
		id, ts, lEA = tagEFE, 92, 208
		le.PutUint64(b[64:], size)
	}
	le.PutUint16(b[ts:], 0x1000) // local time, UTC
	le.PutUint16(b[ts+2:], 2024)
	b[ts+4], b[ts+5], b[ts+6] = 5, 17, 12
	le.PutUint32(b[lEA+4:], uint32(len(ads)))
	copy(b[lEA+8:], ads)
	setTag(b, id, loc, lEA+8+len(ads)-16)
}

func shortAD(n, lbn uint32) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, n)
	binary.LittleEndian.PutUint32(b[4:], lbn)
	return b
}

func longADBytes(typ, n, lbn uint32, part uint16) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b, typ<<30|n)
	binary.LittleEndian.PutUint32(b[4:], lbn)
	binary.LittleEndian.PutUint16(b[8:], part)
	return b
}

func extADBytes(n, lbn uint32, part uint16) []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, n)
	binary.LittleEndian.PutUint32(b[4:], n)
	binary.LittleEndian.PutUint32(b[8:], n)
	binary.LittleEndian.PutUint32(b[12:], lbn)
	binary.LittleEndian.PutUint16(b[16:], part)
	return b
}

// metadataFiles writes the metadata file and its mirror: 12 blocks in two extents.
func (u *udfImage) metadataFiles() {
	ads := append(shortAD(4*hbs, 10), shortAD(8*hbs, 20)...)
	if u.simple {
		ads = shortAD(12*hbs, 10)
	}
	entry(u.pblk(0), 0, true, 250, adShort, 12*hbs, ads)
	entry(u.pblk(1), 1, true, 251, adShort, 12*hbs, ads)
}

// fid appends one file identifier descriptor.
func fid(dir []byte, loc uint32, chars byte, name []byte, icb uint32) []byte {
	b := make([]byte, (38+len(name)+3)&^3)
	binary.LittleEndian.PutUint16(b[16:], 1)
	b[18], b[19] = chars, byte(len(name))
	copy(b[20:], longADBytes(0, hbs, icb, 1))
	copy(b[38:], name)
	setTag(b, tagFID, loc, len(b)-16)
	return append(dir, b...)
}

func name8(s string) []byte { return append([]byte{8}, s...) }

func name16(s string) []byte {
	b := []byte{16}
	for _, r := range utf16.Encode([]rune(s)) {
		b = binary.BigEndian.AppendUint16(b, r)
	}
	return b
}

// tree writes the file set, directories and files.
func (u *udfImage) tree() {
	le := binary.LittleEndian
	fsd := u.mblk(0)
	copy(fsd[400:], longADBytes(0, hbs, 1, 1))
	setTag(fsd, tagFSD, 0, 512-16)

	root := fid(nil, 2, fidParent, nil, 1)
	root = fid(root, 2, 0, name8("hello.txt"), 5)
	root = fid(root, 2, 0, name8("inline.txt"), 6)
	root = fid(root, 2, 0, name8("sparse.bin"), 7)
	root = fid(root, 2, 0, name8("frag.bin"), 8)
	root = fid(root, 2, 0, name8("ext.bin"), 9)
	root = fid(root, 2, fidDeleted, name8("deleted.txt"), 5)
	root = fid(root, 2, 0x02, name16("Sourcés_日本"), 3)
	copy(u.mblk(2), root)
	entry(u.mblk(1), 1, true, fileTypeDir, adShort, uint64(len(root)), shortAD(uint32(len(root)), 2))

	sub := fid(nil, 4, fidParent, nil, 1)
	sub = fid(sub, 4, 0, name16("Dëep_Ωmega.TXT"), 10)
	copy(u.mblk(4), sub)
	entry(u.mblk(3), 3, false, fileTypeDir, adShort, uint64(len(sub)), shortAD(uint32(len(sub)), 4))

	copy(u.pblk(100), hHello)
	entry(u.mblk(5), 5, false, 5, adLong, uint64(len(hHello)), longADBytes(0, uint32(len(hHello)), 100, 0))

	entry(u.mblk(6), 6, true, 5, adEmbedded, uint64(len(hInline)), hInline)

	var ads []byte
	for range 5 {
		ads = append(ads, longADBytes(2, hHole, 0, 0)...)
	}
	ads = append(ads, longADBytes(0, uint32(len(hTail)), 101, 0)...)
	copy(u.b[(hPartStart+101)*hbs:], hTail)
	entry(u.mblk(7), 7, true, 5, adLong, 5*hHole+uint64(len(hTail)), ads)

	// frag.bin: 2048 bytes at 110, then (through the AED at 120) 4096 at 115 and 1000 at 112.
	copy(u.pblk(110), hFrag[:2048])
	copy(u.b[(hPartStart+115)*hbs:], hFrag[2048:2048+4096])
	copy(u.pblk(112), hFrag[2048+4096:])
	aed := u.pblk(120)
	more := append(longADBytes(0, 4096, 115, 0), longADBytes(0, 1000, 112, 0)...)
	le.PutUint32(aed[20:], uint32(len(more)))
	copy(aed[24:], more)
	setTag(aed, tagAED, 120, 24+len(more)-16)
	ads = append(longADBytes(0, 2048, 110, 0), longADBytes(3, hbs, 120, 0)...)
	if u.simple {
		ads = append(longADBytes(0, 2048, 110, 0), more...)
	}
	entry(u.mblk(8), 8, false, 5, adLong, uint64(len(hFrag)), ads)

	copy(u.b[(hPartStart+130)*hbs:], hExt)
	if u.simple {
		entry(u.mblk(9), 9, true, 5, adLong, uint64(len(hExt)), longADBytes(0, uint32(len(hExt)), 130, 0))
	} else {
		entry(u.mblk(9), 9, true, 5, adExtended, uint64(len(hExt)), extADBytes(uint32(len(hExt)), 130, 0))
	}

	copy(u.pblk(140), hDeep)
	entry(u.mblk(10), 10, false, 5, adLong, uint64(len(hDeep)), longADBytes(0, uint32(len(hDeep)), 140, 0))
}
