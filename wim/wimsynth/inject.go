package wimsynth

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrConflict is returned (wrapped) when an overlay path collides with the image's tree: a
// directory where a file should go, a file where a directory is needed, or a reparse point.
var ErrConflict = errors.New("overlay conflicts with the image")

// applyOverlay edits the parsed tree: new directories and files are appended to their parent's
// children, replaced files get the new data hash. It records the new blobs and XML deltas.
func (b *builder) applyOverlay() error {
	o := b.opts.Overlay
	var fixed []byte
	if !o.ModTime.IsZero() {
		fixed = make([]byte, 24)
		ft := fileTime(o.ModTime)
		for i := 0; i < 3; i++ {
			le.PutUint64(fixed[8*i:], ft)
		}
	}
	times := func(parent *dentry) []byte {
		if fixed != nil {
			return fixed
		}
		return parent.raw[offTimes : offTimes+24]
	}
	groups := map[uint64]int{}
	b.meta.walk(func(d *dentry) {
		if g := le.Uint64(d.raw[offLinkGroup:]); g != 0 && d.attrs()&attrReparse == 0 {
			groups[g]++
		}
	})
	for _, f := range o.sorted() {
		dir := b.meta.root
		last := len(f.elems) - 1
		for i, name := range f.elems[:last] {
			c := dir.child(name)
			switch {
			case c == nil:
				c = newDentry(name, attrDirectory, securityID(dir), times(dir), [sha1.Size]byte{})
				dir.children = append(dir.children, c)
				b.counts.dirs++
			case !c.isDir():
				return fmt.Errorf("wimsynth: overlay %q: %w: %s is not a directory", f.path, ErrConflict,
					strings.Join(f.elems[:i+1], "/"))
			}
			dir = c
		}
		c := dir.child(f.elems[last])
		switch {
		case c == nil:
			dir.children = append(dir.children, newDentry(f.elems[last], attrArchive, securityID(dir), times(dir), f.hash))
			b.counts.files++
			b.counts.bytes += f.size
		case c.attrs()&attrReparse != 0:
			return fmt.Errorf("wimsynth: overlay %q: %w: the image has a reparse point (link) there", f.path, ErrConflict)
		case c.attrs()&attrDirectory != 0:
			return fmt.Errorf("wimsynth: overlay %q: %w: the image has a directory there", f.path, ErrConflict)
		default:
			g := le.Uint64(c.raw[offLinkGroup:])
			old := c.setData(f.hash)
			oldSize := int64(0)
			if bi, ok := b.src.Blob(old); ok {
				oldSize = bi.Size
			}
			b.counts.bytes += f.size - oldSize
			if g != 0 {
				if groups[g] >= 2 {
					b.counts.hardLinkBytes -= oldSize
				}
				groups[g]--
			}
			if fixed != nil {
				copy(c.raw[offTimes+16:offTimes+24], fixed)
			}
		}
		if _, inSource := b.src.Blob(f.hash); f.size > 0 && !inSource && b.newBlob[f.hash] == nil {
			b.newBlob[f.hash] = f
			b.order = append(b.order, f.hash)
		}
	}
	return nil
}

func securityID(d *dentry) int32 { return int32(le.Uint32(d.raw[offSecurityID:])) }

// fileTime converts t to a Windows FILETIME (100 ns ticks since 1601).
func fileTime(t time.Time) uint64 {
	const epochDiff = 116444736000000000
	return uint64(t.UnixNano()/100 + epochDiff)
}
