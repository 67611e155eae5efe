package iso

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf16"
)

// ISO 9660 (ECMA-119) facts used here.
const (
	sector9660     = 2048 // volume descriptors and directory records sit in 2048-byte sectors
	firstVD        = 16   // system area precedes the descriptors
	maxVDs         = 64   // descriptors scanned before giving up on a terminator
	vdPrimary      = 1
	vdSupplement   = 2
	vdTerminator   = 255
	flagDir        = 0x02
	flagAssociated = 0x04
	flagMultiExt   = 0x80
	maxCE          = 32 // Rock Ridge continuation areas followed per record
)

// tree9660 reads one ISO 9660 directory hierarchy (primary or Joliet).
type tree9660 struct {
	fsys      *FS
	blockSize int64
	joliet    bool
	rrSkip    int  // SUSP bytes to skip in each system use area
	rr        bool // Rock Ridge entries present
	visited   map[int64]bool
	budget    budget
}

// open9660 reads the volume descriptors and the Joliet or primary tree.
func (fsys *FS) open9660() error {
	pvd, svd, err := fsys.volumeDescriptors()
	if err != nil {
		return err
	}
	vd, format, joliet := pvd, "iso9660", false
	if svd != nil && !fsys.primaryHasRockRidge(pvd) {
		vd, format, joliet = svd, "joliet", true
	}
	t := &tree9660{fsys: fsys, joliet: joliet, visited: map[int64]bool{}, budget: newBudget(fsys.size)}
	t.blockSize = int64(binary.LittleEndian.Uint16(vd[128:]))
	if t.blockSize != 512 && t.blockSize != 1024 && t.blockSize != 2048 {
		return fmt.Errorf("%s: logical block size %d is not 512, 1024 or 2048", format, t.blockSize)
	}
	root, err := t.readRoot(vd[156 : 156+34])
	if err != nil {
		return fmt.Errorf("%s: %w", format, err)
	}
	fsys.root, fsys.format = root, format
	fsys.label = strings.TrimRight(t.decodeName(vd[40:72], false), " \x00")
	return nil
}

// primaryHasRockRidge reports whether the primary tree's root carries the SUSP "SP" entry
// that announces Rock Ridge.
func (fsys *FS) primaryHasRockRidge(pvd []byte) bool {
	t := &tree9660{fsys: fsys, blockSize: int64(binary.LittleEndian.Uint16(pvd[128:]))}
	if t.blockSize != 512 && t.blockSize != 1024 && t.blockSize != 2048 {
		return false
	}
	r, err := parseRecord(pvd[156 : 156+34])
	if err != nil {
		return false
	}
	t.detectRockRidge(r)
	return t.rr
}

// volumeDescriptors returns the primary descriptor and, if present, the Joliet one.
func (fsys *FS) volumeDescriptors() (pvd, joliet []byte, err error) {
	for i := int64(0); i < maxVDs; i++ {
		off := (firstVD + i) * sector9660
		if off+sector9660 > fsys.size {
			break
		}
		vd, err := fsys.readAt(off, sector9660)
		if err != nil {
			return nil, nil, fmt.Errorf("volume descriptor %d: %w", i, err)
		}
		if string(vd[1:6]) != "CD001" {
			break
		}
		switch vd[0] {
		case vdPrimary:
			if pvd == nil {
				pvd = vd
			}
		case vdSupplement:
			if joliet == nil && vd[6] == 1 && isJolietEscape(vd[88:91]) {
				joliet = vd
			}
		}
		if vd[0] == vdTerminator {
			break
		}
	}
	if pvd == nil {
		return nil, nil, ErrNotImage
	}
	return pvd, joliet, nil
}

// isJolietEscape recognises the UCS-2 level 1, 2 and 3 escape sequences.
func isJolietEscape(b []byte) bool {
	return b[0] == '%' && b[1] == '/' && (b[2] == '@' || b[2] == 'C' || b[2] == 'E')
}

// dirRecord is one parsed directory record.
type dirRecord struct {
	loc, length uint32
	flags       byte
	name        []byte
	sysUse      []byte
	mtime       time.Time
}

// parseRecord parses the record at the start of b.
func parseRecord(b []byte) (dirRecord, error) {
	if len(b) < 34 || int(b[0]) > len(b) || b[0] < 34 {
		return dirRecord{}, fmt.Errorf("directory record length %d is invalid", b[0])
	}
	b = b[:b[0]]
	nameLen := int(b[32])
	if 33+nameLen > len(b) {
		return dirRecord{}, fmt.Errorf("directory record name of %d bytes overruns its record of %d", nameLen, len(b))
	}
	sys := 33 + nameLen
	if nameLen%2 == 0 {
		sys++ // padding byte after an even-length name
	}
	r := dirRecord{
		loc:    binary.LittleEndian.Uint32(b[2:]),
		length: binary.LittleEndian.Uint32(b[10:]),
		flags:  b[25],
		name:   b[33 : 33+nameLen],
		mtime:  recordTime(b[18:25]),
	}
	if sys < len(b) {
		r.sysUse = b[sys:]
	}
	return r, nil
}

// recordTime decodes the 7-byte recording date of a directory record.
func recordTime(b []byte) time.Time {
	if b[0] == 0 && b[1] == 0 {
		return time.Time{}
	}
	zone := time.FixedZone("", int(int8(b[6]))*15*60)
	return time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, zone)
}

// readRoot reads the root record's directory and everything under it.
func (t *tree9660) readRoot(rec []byte) (*node, error) {
	r, err := parseRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("root directory record: %w", err)
	}
	root := &node{dir: true, mode: fs.ModeDir | 0o555, mtime: r.mtime}
	if !t.joliet {
		t.detectRockRidge(r)
	}
	if err := t.readDir(root, r, 0); err != nil {
		return nil, err
	}
	return root, nil
}

// detectRockRidge looks for the SUSP "SP" entry in the root's "." record.
func (t *tree9660) detectRockRidge(root dirRecord) {
	data, err := t.fsys.readAt(int64(root.loc)*t.blockSize, min(int64(root.length), sector9660))
	if err != nil || len(data) < 34 {
		return
	}
	dot, err := parseRecord(data)
	if err != nil {
		return
	}
	su := dot.sysUse
	if len(su) >= 7 && su[0] == 'S' && su[1] == 'P' && su[4] == 0xBE && su[5] == 0xEF {
		t.rr, t.rrSkip = true, int(su[6])
	}
}

// readDir reads the directory described by rec into n, recursively.
func (t *tree9660) readDir(n *node, rec dirRecord, depth int) error {
	where := dirName(n)
	if depth > maxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d", where, maxDepth)
	}
	off := int64(rec.loc) * t.blockSize
	if t.visited[off] {
		return fmt.Errorf("%s: directory loop (extent at offset %d is read twice)", where, off)
	}
	t.visited[off] = true
	if err := t.budget.addDir(int64(rec.length)); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	data, err := t.fsys.readAt(off, int64(rec.length))
	if err != nil {
		return fmt.Errorf("%s: directory extent: %w", where, err)
	}
	var pending *node // a multi-extent file whose last record is still to come
	var subdirs []subdir
	for pos := 0; pos < len(data); {
		if data[pos] == 0 { // records never cross a sector: skip to the next one
			pos = (pos/sector9660 + 1) * sector9660
			continue
		}
		end := min((pos/sector9660+1)*sector9660, len(data))
		r, err := parseRecord(data[pos:end])
		if err != nil {
			return fmt.Errorf("%s: at byte %d: %w", where, pos, err)
		}
		pos += int(data[pos])
		if len(r.name) == 1 && r.name[0] <= 1 { // "." and ".."
			continue
		}
		c, sub, err := t.entry(r, pending)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if c == nil {
			continue
		}
		if pending != nil && c != pending {
			return fmt.Errorf("%s: multi-extent file %q has no final record", where, pending.name)
		}
		if sub != nil {
			subdirs = append(subdirs, subdir{c, *sub})
		}
		if r.flags&flagMultiExt != 0 && r.flags&flagDir == 0 {
			pending = c
			continue
		}
		pending = nil
		if err := t.finish(n, c); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if pending != nil {
		return fmt.Errorf("%s: multi-extent file %q has no final record", where, pending.name)
	}
	n.sortKids()
	for _, s := range subdirs {
		if err := t.readDir(s.n, s.rec, depth+1); err != nil {
			return err
		}
	}
	if depth == 0 {
		dropRelocationDir(n)
	}
	return nil
}

// subdir is a directory whose records are read after its parent's.
type subdir struct {
	n   *node
	rec dirRecord
}

// finish checks a file's extents and adds it to its directory.
func (t *tree9660) finish(dir, c *node) error {
	if err := t.budget.addEntry(); err != nil {
		return err
	}
	var total int64
	for _, e := range c.ext {
		if err := t.fsys.checkExtent(e); err != nil {
			return fmt.Errorf("%q: %w", c.name, err)
		}
		total += e.n
	}
	c.size = total
	dir.addChild(c)
	return nil
}

// entry turns a record into a node (nil to skip it), or extends pending, a multi-extent file
// with the same name. For a directory it also returns the record of its own extent.
func (t *tree9660) entry(r dirRecord, pending *node) (*node, *dirRecord, error) {
	if r.flags&flagAssociated != 0 {
		return nil, nil, nil
	}
	name, rr := t.decodeName(r.name, r.flags&flagDir == 0), t.rockRidge(r)
	if rr.relocated {
		return nil, nil, nil // shown where its CL entry points
	}
	if rr.name != "" {
		name = rr.name
	}
	if rr.childLink != nil {
		return &node{name: name, dir: true, mode: fs.ModeDir | 0o555, mtime: r.mtime}, rr.childLink, nil
	}
	if r.flags&flagDir != 0 {
		return &node{name: name, dir: true, mode: fs.ModeDir | 0o555, mtime: r.mtime}, &r, nil
	}
	e := extent{off: int64(r.loc) * t.blockSize, n: int64(r.length)}
	if pending != nil && pending.name == name {
		pending.ext = append(pending.ext, e)
		return pending, nil, nil
	}
	if rr.symlink {
		n := &node{name: name, mode: fs.ModeSymlink | 0o777, mtime: r.mtime, linkSet: true}
		n.link, n.linkErr = rrLinkTarget(rr.sl)
		return n, nil, nil
	}
	return &node{name: name, mode: 0o444, mtime: r.mtime, ext: []extent{e}}, nil, nil
}

// decodeName turns a record's identifier into a name: UCS-2 for Joliet, and without the
// ";1" version (and a bare trailing dot) for files.
func (t *tree9660) decodeName(b []byte, file bool) string {
	var s string
	if t.joliet {
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		s = string(utf16.Decode(u))
	} else {
		r := make([]rune, len(b)) // d-characters; other bytes taken as Latin-1
		for i, c := range b {
			r[i] = rune(c)
		}
		s = string(r)
	}
	if !file {
		return s
	}
	if i := strings.LastIndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	if !t.joliet && strings.HasSuffix(s, ".") && len(s) > 1 {
		s = s[:len(s)-1]
	}
	return s
}

// rrInfo is what the Rock Ridge entries of one record say.
type rrInfo struct {
	name      string
	childLink *dirRecord // CL: a directory relocated elsewhere
	relocated bool       // RE: this directory is the relocated one
	symlink   bool       // SL: a symbolic link
	sl        []byte     // the component records of all its SL entries, in order
}

// rockRidge reads the NM, CL and RE entries of a record, following CE continuations.
func (t *tree9660) rockRidge(r dirRecord) rrInfo {
	var info rrInfo
	if !t.rr || len(r.sysUse) < t.rrSkip {
		return info
	}
	var name []byte
	area := r.sysUse[t.rrSkip:]
	for hops := 0; hops <= maxCE && area != nil; hops++ {
		var next []byte
		for len(area) >= 4 {
			l := int(area[2])
			if l < 4 || l > len(area) {
				break
			}
			e := area[:l]
			switch string(e[:2]) {
			case "NM":
				if l > 5 && e[4]&0x06 == 0 { // not "." or ".."
					name = append(name, e[5:]...)
				}
			case "RE":
				info.relocated = true
			case "SL":
				if l >= 5 {
					info.symlink = true
					info.sl = append(info.sl, e[5:]...)
				}
			case "CL":
				if l >= 12 {
					info.childLink = t.relocatedRecord(binary.LittleEndian.Uint32(e[4:]))
				}
			case "CE":
				if l >= 28 {
					next = t.continuation(e)
				}
			case "ST":
				l = len(area)
			}
			area = area[l:]
		}
		area = next
	}
	info.name = string(name)
	return info
}

// continuation reads the continuation area a CE entry names (nil if it is bad).
func (t *tree9660) continuation(e []byte) []byte {
	block := int64(binary.LittleEndian.Uint32(e[4:]))
	off := int64(binary.LittleEndian.Uint32(e[12:]))
	n := int64(binary.LittleEndian.Uint32(e[20:]))
	if off+n > t.blockSize {
		return nil
	}
	b, err := t.fsys.readAt(block*t.blockSize+off, n)
	if err != nil {
		return nil
	}
	return b
}

// relocatedRecord reads the "." record of the directory at block (the target of CL).
func (t *tree9660) relocatedRecord(block uint32) *dirRecord {
	b, err := t.fsys.readAt(int64(block)*t.blockSize, 34)
	if err != nil {
		return nil
	}
	if b, err = t.fsys.readAt(int64(block)*t.blockSize, int64(b[0])); err != nil {
		return nil
	}
	dot, err := parseRecord(b)
	if err != nil || dot.loc != block {
		return nil
	}
	return &dot
}

// dropRelocationDir hides the Rock Ridge relocation directory (rr_moved) once its entries,
// all shown where their CL entries point, have been skipped.
func dropRelocationDir(n *node) {
	kids := n.kids[:0]
	for _, c := range n.kids {
		lower := strings.ToLower(c.name)
		if c.dir && len(c.kids) == 0 && (lower == "rr_moved" || lower == ".rr_moved") {
			continue
		}
		kids = append(kids, c)
	}
	n.kids = kids
}
