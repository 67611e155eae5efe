package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// UDF file entry facts.
const (
	fileTypeDir     = 4
	fileTypeSymlink = 12
	adShort         = 0
	adLong          = 1
	adExtended      = 2
	adEmbedded      = 3
	extRecorded     = 0
	extNextAD       = 3
	fidDeleted      = 0x04
	fidParent       = 0x08
	maxADHops       = 4096    // allocation extent descriptors followed for one file
	maxExtents      = 4 << 20 // data extents in all files of one image
	maxFileSize     = 1 << 52 // sizes above this are taken as corrupt, not as sparse files
	maxIndirect     = 16      // indirect entries followed to reach a file entry
)

// lb is a logical block address: a block in the partition with the given map index.
type lb struct {
	block uint32
	part  uint16
}

func (a lb) String() string { return fmt.Sprintf("block %d of partition %d", a.block, a.part) }

// mapExtent turns n bytes from a logical block into image extents. In a metadata partition
// one logical extent may span several extents of the metadata file.
func (v *udfVol) mapExtent(a lb, n int64) ([]extent, error) {
	if int(a.part) >= len(v.parts) {
		return nil, fmt.Errorf("%v: no such partition (%d maps)", a, len(v.parts))
	}
	p := v.parts[a.part]
	blocks := (n + v.bs - 1) / v.bs
	if int64(a.block)+blocks > p.length {
		return nil, fmt.Errorf("%v: extent of %d bytes runs past the partition's %d blocks", a, n, p.length)
	}
	if !p.isMeta {
		e := extent{off: (p.start + int64(a.block)) * v.bs, n: n}
		if err := v.fsys.checkExtent(e); err != nil {
			return nil, fmt.Errorf("%v: %w", a, err)
		}
		return []extent{e}, nil
	}
	var out []extent
	lo, start := int64(a.block)*v.bs, int64(0)
	for _, m := range p.meta {
		if n == 0 {
			break
		}
		if lo >= start+m.n {
			start += m.n
			continue
		}
		if m.off < 0 {
			return nil, fmt.Errorf("%v: falls in a hole of the metadata file", a)
		}
		take := min(n, start+m.n-lo)
		out = append(out, extent{off: m.off + lo - start, n: take})
		lo, n, start = lo+take, n-take, start+m.n
	}
	if n > 0 {
		return nil, fmt.Errorf("%v: runs past the end of the metadata file", a)
	}
	return out, nil
}

// blockOffset returns the image offset of one logical block.
func (v *udfVol) blockOffset(a lb) (int64, error) {
	ext, err := v.mapExtent(a, v.bs)
	if err != nil {
		return 0, err
	}
	if len(ext) != 1 {
		return 0, fmt.Errorf("%v: block split across metadata extents", a)
	}
	return ext[0].off, nil
}

// readFileSet reads the file set descriptor the logical volume points to and the tree
// under its root directory.
func (v *udfVol) readFileSet(lvd []byte) (*node, error) {
	fsdAt := longAD(lvd[248:])
	off, err := v.blockOffset(fsdAt)
	if err != nil {
		return nil, fmt.Errorf("file set descriptor: %w", err)
	}
	fsd, err := v.block(off, tagFSD, int64(fsdAt.block))
	if err != nil {
		return nil, fmt.Errorf("file set descriptor at %v: %w", fsdAt, err)
	}
	root, rootOff, err := v.readEntryAt(longAD(fsd[400:]), "root directory")
	if err != nil {
		return nil, err
	}
	if !root.dir {
		return nil, errors.New("root directory entry is not a directory")
	}
	root.name = ""
	if err := v.readDir(root, rootOff, 0); err != nil {
		return nil, err
	}
	return root, nil
}

// longAD decodes the location of a long_ad.
func longAD(b []byte) lb {
	return lb{block: binary.LittleEndian.Uint32(b[4:]), part: binary.LittleEndian.Uint16(b[8:])}
}

// readEntry reads a file entry or extended file entry into a node (without children).
func (v *udfVol) readEntry(a lb, what string) (*node, error) {
	n, _, err := v.readEntryAt(a, what)
	return n, err
}

// readEntryAt is readEntry that also returns the entry's image offset (a directory's
// identity for loop detection).
func (v *udfVol) readEntryAt(a lb, what string) (*node, int64, error) {
	for hops := 0; ; hops++ {
		off, err := v.blockOffset(a)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", what, err)
		}
		b, err := v.fsys.readAt(off, v.bs)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", what, err)
		}
		if binary.LittleEndian.Uint16(b) != tagIE {
			n, err := v.parseEntry(a, b, what)
			return n, off, err
		}
		// Strategy 4096 ICBs may start with an indirect entry naming the next ICB.
		if err := checkTag(b, tagIE, int64(a.block)); err != nil {
			return nil, 0, fmt.Errorf("%s: indirect entry at %v: %w", what, a, err)
		}
		if hops >= maxIndirect {
			return nil, 0, fmt.Errorf("%s: more than %d indirect entries", what, maxIndirect)
		}
		a = longAD(b[36:])
	}
}

// parseEntry decodes the file entry in block b (at logical address a).
func (v *udfVol) parseEntry(a lb, b []byte, what string) (*node, error) {
	var err error
	id := binary.LittleEndian.Uint16(b)
	if id != tagEFE {
		id = tagFE
	}
	if err := checkTag(b, id, int64(a.block)); err != nil {
		return nil, fmt.Errorf("%s: file entry at %v: %w", what, a, err)
	}
	fields := [...]int{56, 84, 168, 176} // info length, modification time, L_EA, start of EAs
	if id == tagEFE {
		fields = [...]int{56, 92, 208, 216}
	}
	size := binary.LittleEndian.Uint64(b[fields[0]:])
	lEA := int64(binary.LittleEndian.Uint32(b[fields[2]:]))
	lAD := int64(binary.LittleEndian.Uint32(b[fields[2]+4:]))
	adStart := int64(fields[3]) + lEA
	if lEA > v.bs || lAD > v.bs || adStart+lAD > v.bs {
		return nil, fmt.Errorf("%s: file entry at %v: extended attributes (%d) and allocation descriptors (%d) overrun the block", what, a, lEA, lAD)
	}
	if size > maxFileSize {
		return nil, fmt.Errorf("%s: file entry at %v: absurd size %d", what, a, size)
	}
	n := &node{name: what, size: int64(size), mtime: udfTime(b[fields[1]:]), mode: 0o444}
	switch b[16+11] {
	case fileTypeDir:
		n.dir, n.mode = true, fs.ModeDir|0o555
	case fileTypeSymlink:
		n.mode = fs.ModeSymlink | 0o777
	}
	ad := b[adStart : adStart+lAD]
	if kind := binary.LittleEndian.Uint16(b[16+18:]) & 7; kind == adEmbedded {
		if n.size > lAD {
			return nil, fmt.Errorf("%s: file entry at %v: embedded data of %d bytes holds only %d", what, a, n.size, lAD)
		}
		n.inline = append([]byte{}, ad[:n.size]...)
	} else if n.ext, err = v.allocExtents(ad, kind, a.part, n.size); err != nil {
		return nil, fmt.Errorf("%s: file entry at %v: %w", what, a, err)
	}
	return n, nil
}

// allocExtents decodes allocation descriptors (following allocation extent descriptors)
// into data extents covering at least size bytes.
func (v *udfVol) allocExtents(ad []byte, kind, part uint16, size int64) ([]extent, error) {
	width := map[uint16]int{adShort: 8, adLong: 16, adExtended: 20}[kind]
	if width == 0 {
		return nil, fmt.Errorf("allocation descriptor type %d is invalid", kind)
	}
	var out []extent
	var total int64
	for hops := 0; len(ad) >= width && total < size; {
		raw := binary.LittleEndian.Uint32(ad)
		typ, n := raw>>30, int64(raw&0x3FFFFFFF)
		if n == 0 {
			break
		}
		at := lb{block: binary.LittleEndian.Uint32(ad[4:]), part: part}
		switch kind {
		case adLong:
			at.part = binary.LittleEndian.Uint16(ad[8:])
		case adExtended:
			at = lb{block: binary.LittleEndian.Uint32(ad[12:]), part: binary.LittleEndian.Uint16(ad[16:])}
		}
		ad = ad[width:]
		switch typ {
		case extNextAD:
			if hops++; hops > maxADHops {
				return nil, fmt.Errorf("more than %d allocation extent descriptors", maxADHops)
			}
			next, err := v.nextAD(at)
			if err != nil {
				return nil, err
			}
			ad = next
			continue
		case extRecorded:
			ext, err := v.mapExtent(at, n)
			if err != nil {
				return nil, err
			}
			out = append(out, ext...)
			v.budget.extents += len(ext)
		default: // allocated but not recorded, or not allocated: reads as zeros
			out = append(out, extent{off: -1, n: n})
			v.budget.extents++
		}
		total += n
		if v.budget.extents > maxExtents {
			return nil, fmt.Errorf("more than %d data extents", maxExtents)
		}
	}
	if total < size {
		return nil, fmt.Errorf("size %d exceeds its %d bytes of extents", size, total)
	}
	return out, nil
}

// nextAD reads an allocation extent descriptor and returns its descriptors.
func (v *udfVol) nextAD(a lb) ([]byte, error) {
	off, err := v.blockOffset(a)
	if err != nil {
		return nil, fmt.Errorf("allocation extent: %w", err)
	}
	b, err := v.block(off, tagAED, int64(a.block))
	if err != nil {
		return nil, fmt.Errorf("allocation extent at %v: %w", a, err)
	}
	l := int64(binary.LittleEndian.Uint32(b[20:]))
	if 24+l > v.bs {
		return nil, fmt.Errorf("allocation extent at %v: %d bytes of descriptors overrun the block", a, l)
	}
	return b[24 : 24+l], nil
}

// readData reads a directory's whole data stream.
func (v *udfVol) readData(n *node) ([]byte, error) {
	if err := v.budget.addDir(n.size); err != nil {
		return nil, err
	}
	if n.inline != nil {
		return n.inline, nil
	}
	data := make([]byte, 0, n.size)
	for _, e := range n.ext {
		want := min(e.n, n.size-int64(len(data)))
		if want <= 0 {
			break
		}
		if e.off < 0 {
			data = append(data, make([]byte, want)...)
			continue
		}
		b, err := v.fsys.readAt(e.off, want)
		if err != nil {
			return nil, err
		}
		data = append(data, b...)
	}
	return data, nil
}

// readDir reads the file identifier descriptors of directory n (whose entry sits at image
// offset entryOff) and the entries they name, recursively.
func (v *udfVol) readDir(n *node, entryOff int64, depth int) error {
	where := dirName(n)
	if depth > maxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d", where, maxDepth)
	}
	if v.visited[entryOff] {
		return fmt.Errorf("%s: directory loop (file entry at offset %d is reached twice)", where, entryOff)
	}
	v.visited[entryOff] = true
	data, err := v.readData(n)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	type sub struct {
		n   *node
		off int64
	}
	var subs []sub
	for next := 0; next+38 <= len(data); {
		pos, fid := next, data[next:]
		if err := checkTag(fid, tagFID, -1); err != nil {
			return fmt.Errorf("%s: identifier at byte %d: %w", where, pos, err)
		}
		lFI, lIU := int(fid[19]), int(binary.LittleEndian.Uint16(fid[36:]))
		end := 38 + lIU + lFI
		if end > len(fid) {
			return fmt.Errorf("%s: identifier at byte %d overruns the directory", where, pos)
		}
		next += (end + 3) &^ 3
		if fid[18]&(fidDeleted|fidParent) != 0 {
			continue
		}
		name, err := osta(fid[38+lIU : end])
		if err != nil {
			return fmt.Errorf("%s: identifier at byte %d: %w", where, pos, err)
		}
		if err := v.budget.addEntry(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		c, off, err := v.readEntryAt(longAD(fid[20:]), name)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		c.name = name
		n.addChild(c)
		if c.dir && c.parent != nil {
			subs = append(subs, sub{c, off})
		}
	}
	n.sortKids()
	for _, s := range subs {
		if err := v.readDir(s.n, s.off, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// udfTime decodes a 12-byte ECMA-167 timestamp.
func udfTime(b []byte) time.Time {
	tz := int(binary.LittleEndian.Uint16(b)) & 0xFFF
	year := int(int16(binary.LittleEndian.Uint16(b[2:])))
	if year == 0 && b[4] == 0 {
		return time.Time{}
	}
	loc := time.UTC
	if tz != 0x801 { // -2047: no time zone given
		if tz&0x800 != 0 {
			tz -= 0x1000
		}
		loc = time.FixedZone("", tz*60)
	}
	ns := int(b[9])*10_000_000 + int(b[10])*100_000 + int(b[11])*1000
	return time.Date(year, time.Month(b[4]), int(b[5]), int(b[6]), int(b[7]), int(b[8]), ns, loc)
}
