package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// UDF (ECMA-167 with the OSTA UDF 1.02-2.50 profiles) descriptor tag identifiers.
const (
	tagPVD      = 1
	tagAVDP     = 2
	tagVDP      = 3
	tagPD       = 5
	tagLVD      = 6
	tagTD       = 8
	tagFSD      = 256
	tagFID      = 257
	tagAED      = 258
	tagIE       = 259
	tagFE       = 261
	tagEFE      = 266
	anchorBlock = 256
	maxVDSHops  = 8    // volume descriptor pointers followed
	maxVDSBlock = 1024 // descriptors read from one sequence
)

// udfPart is one entry of the logical volume's partition map, resolved to image offsets.
type udfPart struct {
	start, length int64 // physical partition: first block and block count
	meta          []extent
	isMeta        bool // UDF 2.50 metadata partition: blocks are offsets in the metadata file
	num           uint16
}

// udfVol is an opened UDF logical volume.
type udfVol struct {
	fsys    *FS
	bs      int64
	parts   []udfPart
	pds     map[uint16][]byte // partition descriptors by partition number
	visited map[int64]bool
	budget  budget
}

// openUDF reads a UDF tree if the image has an anchor; found is false when it has none.
func (fsys *FS) openUDF() (found bool, err error) {
	bs, avdp := fsys.findAnchor()
	if avdp == nil {
		return false, nil
	}
	v := &udfVol{fsys: fsys, bs: bs, visited: map[int64]bool{}, budget: newBudget(fsys.size)}
	lvd, pvd, err := v.readVDS(avdp)
	if err != nil {
		return true, err
	}
	if err := v.readPartitionMaps(lvd); err != nil {
		return true, err
	}
	root, err := v.readFileSet(lvd)
	if err != nil {
		return true, err
	}
	rev := binary.LittleEndian.Uint16(lvd[216+24:])
	fsys.root, fsys.format = root, fmt.Sprintf("udf %x.%02x", rev>>8, rev&0xff)
	fsys.label = dstring(lvd[84 : 84+128])
	if fsys.label == "" && pvd != nil {
		fsys.label = dstring(pvd[24 : 24+32])
	}
	return true, nil
}

// findAnchor looks for an AVDP at block 256 for each plausible block size, once the volume
// recognition sequence has announced an NSR (UDF) descriptor: without that, block 256 is
// just data of an ISO 9660 image.
func (fsys *FS) findAnchor() (int64, []byte) {
	for _, bs := range []int64{2048, 512, 1024, 4096} {
		if !fsys.hasNSR(bs) {
			continue
		}
		off := anchorBlock * bs
		b, err := fsys.readAt(off, 512)
		if err != nil {
			continue
		}
		if checkTag(b, tagAVDP, anchorBlock) == nil {
			return bs, b
		}
	}
	return 0, nil
}

// hasNSR scans the volume recognition sequence (from byte 32768, one descriptor per 2048
// bytes or per block if larger) for NSR02 or NSR03.
func (fsys *FS) hasNSR(bs int64) bool {
	step := max(bs, 2048)
	for i := int64(0); i < maxVDs; i++ {
		b, err := fsys.readAt(32768+i*step, 7)
		if err != nil {
			return false
		}
		switch string(b[1:6]) {
		case "NSR02", "NSR03":
			return true
		case "CD001", "BEA01", "TEA01", "BOOT2", "CDW02":
		default:
			return false
		}
	}
	return false
}

// checkTag verifies a descriptor tag: identifier, checksum, location and the CRC of the body.
// A location of -1 is not checked.
func checkTag(b []byte, id uint16, loc int64) error {
	if len(b) < 16 {
		return fmt.Errorf("descriptor tag truncated to %d bytes", len(b))
	}
	if got := binary.LittleEndian.Uint16(b); got != id {
		return fmt.Errorf("descriptor tag %d where %d was expected", got, id)
	}
	var sum byte
	for i := 0; i < 16; i++ {
		if i != 4 {
			sum += b[i]
		}
	}
	if sum != b[4] {
		return fmt.Errorf("descriptor tag %d: checksum %#x, computed %#x", id, b[4], sum)
	}
	if got := int64(binary.LittleEndian.Uint32(b[12:])); loc >= 0 && got != loc {
		return fmt.Errorf("descriptor tag %d: records location %d but sits at block %d", id, got, loc)
	}
	crcLen := int(binary.LittleEndian.Uint16(b[10:]))
	if 16+crcLen > len(b) {
		return fmt.Errorf("descriptor tag %d: CRC length %d overruns the descriptor (%d bytes)", id, crcLen, len(b)-16)
	}
	if got, want := crcCCITT(b[16:16+crcLen]), binary.LittleEndian.Uint16(b[8:]); got != want {
		return fmt.Errorf("descriptor tag %d: CRC %#04x, computed %#04x", id, want, got)
	}
	return nil
}

// crcTable drives crcCCITT a byte at a time (read-only after package initialisation).
var crcTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// crcCCITT is the CRC of ECMA-167 7.2.6: polynomial x^16+x^12+x^5+1, initial value 0.
func crcCCITT(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^c]
	}
	return crc
}

// block reads one block and checks its tag (loc: the tag's expected location, -1 for any).
func (v *udfVol) block(off int64, id uint16, loc int64) ([]byte, error) {
	b, err := v.fsys.readAt(off, v.bs)
	if err != nil {
		return nil, err
	}
	if err := checkTag(b, id, loc); err != nil {
		return nil, err
	}
	return b, nil
}

// readVDS reads the main volume descriptor sequence (the reserve one if the main fails) and
// returns the logical volume and primary volume descriptors.
func (v *udfVol) readVDS(avdp []byte) (lvd, pvd []byte, err error) {
	lvd, pvd, err = v.readSequence(avdp[16:24])
	if err != nil {
		var err2 error
		if lvd, pvd, err2 = v.readSequence(avdp[24:32]); err2 != nil {
			return nil, nil, fmt.Errorf("main volume descriptor sequence: %w (reserve: %v)", err, err2)
		}
	}
	return lvd, pvd, nil
}

// readSequence walks one descriptor sequence given by its extent_ad (length, location).
func (v *udfVol) readSequence(ext []byte) (lvd, pvd []byte, err error) {
	length := int64(binary.LittleEndian.Uint32(ext))
	loc := int64(binary.LittleEndian.Uint32(ext[4:]))
	parts := map[uint16][]byte{}
	hops, read := 0, 0
	for n := int64(0); n*v.bs < length; n++ {
		if read++; read > maxVDSBlock {
			return nil, nil, fmt.Errorf("more than %d volume descriptors", maxVDSBlock)
		}
		b, err := v.fsys.readAt((loc+n)*v.bs, v.bs)
		if err != nil {
			return nil, nil, fmt.Errorf("descriptor at block %d: %w", loc+n, err)
		}
		id := binary.LittleEndian.Uint16(b)
		if err := checkTag(b, id, loc+n); err != nil {
			return nil, nil, fmt.Errorf("descriptor at block %d: %w", loc+n, err)
		}
		switch id {
		case tagPVD:
			pvd = b
		case tagLVD:
			lvd = b
		case tagPD:
			parts[binary.LittleEndian.Uint16(b[22:])] = b
		case tagVDP:
			if hops++; hops > maxVDSHops {
				return nil, nil, fmt.Errorf("more than %d volume descriptor pointers", maxVDSHops)
			}
			length = int64(binary.LittleEndian.Uint32(b[20:]))
			loc, n = int64(binary.LittleEndian.Uint32(b[24:])), -1
		}
		if id == tagTD {
			break
		}
	}
	if lvd == nil {
		return nil, nil, errors.New("no logical volume descriptor")
	}
	if bs := int64(binary.LittleEndian.Uint32(lvd[212:])); bs != v.bs {
		return nil, nil, fmt.Errorf("logical block size %d differs from the anchor's block size %d", bs, v.bs)
	}
	v.pds = parts
	return lvd, pvd, nil
}

// readPartitionMaps resolves the logical volume's partition maps (type 1, and type 2 for
// sparable and metadata partitions).
func (v *udfVol) readPartitionMaps(lvd []byte) error {
	tableLen := int(binary.LittleEndian.Uint32(lvd[264:]))
	count := int(binary.LittleEndian.Uint32(lvd[268:]))
	if 440+tableLen > len(lvd) {
		return fmt.Errorf("partition map table of %d bytes overruns the logical volume descriptor", tableLen)
	}
	maps := lvd[440 : 440+tableLen]
	type pending struct {
		index int
		m     []byte
	}
	var metas []pending
	for i := 0; i < count; i++ {
		if len(maps) < 2 || maps[1] < 6 || int(maps[1]) > len(maps) {
			return fmt.Errorf("partition map %d: truncated or invalid length", i)
		}
		m := maps[:maps[1]]
		maps = maps[maps[1]:]
		var num uint16
		switch {
		case m[0] == 1:
			num = binary.LittleEndian.Uint16(m[4:])
		case m[0] == 2 && len(m) >= 64:
			num = binary.LittleEndian.Uint16(m[38:])
			switch kind := strings.TrimRight(string(m[5:28]), "\x00"); kind {
			case "*UDF Metadata Partition":
				metas = append(metas, pending{i, m})
			case "*UDF Sparable Partition":
				// Read as a physical partition: a pristine image has no remapped packets.
			default:
				return fmt.Errorf("partition map %d: %q partitions are not supported", i, kind)
			}
		default:
			return fmt.Errorf("partition map %d: unknown type %d", i, m[0])
		}
		pd, ok := v.pds[num]
		if !ok {
			return fmt.Errorf("partition map %d: no partition descriptor numbered %d", i, num)
		}
		v.parts = append(v.parts, udfPart{
			start:  int64(binary.LittleEndian.Uint32(pd[188:])),
			length: int64(binary.LittleEndian.Uint32(pd[192:])),
			num:    num,
		})
	}
	for _, p := range metas {
		if err := v.readMetadataFile(p.index, p.m); err != nil {
			return fmt.Errorf("partition map %d: %w", p.index, err)
		}
	}
	return nil
}

// readMetadataFile maps a UDF 2.50 metadata partition through its metadata file (or, if that
// is unreadable, the mirror file), whose file entry lies in the underlying physical partition.
func (v *udfVol) readMetadataFile(index int, m []byte) error {
	phys := -1
	num := binary.LittleEndian.Uint16(m[38:])
	for i, pm := range v.parts {
		if i != index && pm.num == num && !pm.isMeta {
			phys = i
			break
		}
	}
	if phys < 0 {
		return fmt.Errorf("metadata partition: no physical partition map for partition %d", num)
	}
	var errs []error
	for _, at := range []int{40, 44} { // metadata file, then its mirror
		lbn := binary.LittleEndian.Uint32(m[at:])
		n, err := v.readEntry(lb{block: lbn, part: uint16(phys)}, "metadata file")
		if err == nil && n.inline != nil {
			err = errors.New("metadata file data is embedded in its entry")
		}
		if err == nil {
			v.parts[index] = udfPart{isMeta: true, meta: n.ext, length: n.size / v.bs, num: num}
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("metadata partition: %w", errors.Join(errs...))
}

// dstring decodes a fixed-size dstring: OSTA compressed unicode whose last byte is its length.
func dstring(b []byte) string {
	n := int(b[len(b)-1])
	if n == 0 || n > len(b)-1 {
		return ""
	}
	s, err := osta(b[:n])
	if err != nil {
		return ""
	}
	return strings.TrimRight(s, " \x00")
}

// osta decodes OSTA compressed unicode: a compression id (8 or 16; 254 and 255 as used by
// UDF 2.50 for the same) followed by 8- or 16-bit big-endian characters.
func osta(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	switch b[0] {
	case 8, 254:
		r := make([]rune, len(b)-1)
		for i, c := range b[1:] {
			r[i] = rune(c)
		}
		return string(r), nil
	case 16, 255:
		if len(b)%2 != 1 {
			return "", fmt.Errorf("16-bit OSTA name has an odd byte count %d", len(b)-1)
		}
		u := make([]uint16, (len(b)-1)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[1+2*i:])
		}
		return string(utf16.Decode(u)), nil
	}
	return "", fmt.Errorf("unknown OSTA compression id %d", b[0])
}
