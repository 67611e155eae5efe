package wim

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
)

// maxReparseSize is the largest reparse data Windows allows (16 KiB).
const maxReparseSize = 16 * 1024

// ReparseFlagNotFixed marks a reparse point whose absolute target was not rewritten relative
// to the capture root (wimlib's WIM_RP_FLAG_NOT_FIXED).
const ReparseFlagNotFixed = 0x0001

// ReparseData returns an entry's full reparse buffer, with the 8-byte header (tag, data length,
// reserved) rebuilt from the dentry as Windows expects it.
func (img *Image) ReparseData(e *Entry) ([]byte, error) {
	if e.Attributes&AttrReparsePoint == 0 {
		return nil, fmt.Errorf("wim: %s is not a reparse point", e.Path())
	}
	var data []byte
	if e.ReparseHash != ([20]byte{}) {
		b, ok := img.a.blobs[e.ReparseHash]
		if !ok {
			return nil, fmt.Errorf("wim: %s: reparse data %x is not in the WIM", e.Path(), e.ReparseHash)
		}
		if b.size > maxReparseSize {
			return nil, fmt.Errorf("wim: %s: reparse data of %d bytes exceeds %d", e.Path(), b.size, maxReparseSize)
		}
		var err error
		if data, err = b.readAll(); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 8+len(data))
	binary.LittleEndian.PutUint32(out, e.ReparseTag)
	binary.LittleEndian.PutUint16(out[4:], uint16(len(data)))
	copy(out[8:], data)
	return out, nil
}

// symlinkRelative is the SYMLINK_FLAG_RELATIVE bit of a symlink reparse buffer.
const symlinkRelative = 0x1

// linkTarget decodes a symlink or junction reparse buffer into its substitute name and whether
// it is relative.
func linkTarget(rp []byte) (string, bool, error) {
	le := binary.LittleEndian
	if len(rp) < 16 {
		return "", false, fmt.Errorf("reparse data of %d bytes is too short", len(rp))
	}
	tag := le.Uint32(rp)
	subOff, subLen := int(le.Uint16(rp[8:])), int(le.Uint16(rp[10:]))
	body := rp[16:]
	relative := false
	if tag == ReparseTagSymlink {
		if len(rp) < 20 {
			return "", false, fmt.Errorf("symlink reparse data of %d bytes is too short", len(rp))
		}
		relative = le.Uint32(rp[16:])&symlinkRelative != 0
		body = rp[20:]
	}
	if subOff+subLen > len(body) || subLen%2 != 0 {
		return "", false, fmt.Errorf("reparse substitute name (%d bytes at %d) overflows the data", subLen, subOff)
	}
	return utf16String(body[subOff : subOff+subLen]), relative, nil
}

// ReadLink returns the target of a symbolic link or junction as wimlib presents it on UNIX:
// backslashes become slashes; absolute Windows targets lose their "\??\" and drive letter
// prefixes, so a target that wimlib fixed at capture time ("rpfix") starts with "/" and is
// relative to the image root.
func (img *Image) ReadLink(name string) (string, error) {
	e, err := img.lookup("readlink", name)
	if err != nil {
		return "", fixPathErr(err, name)
	}
	t, err := img.LinkTarget(e)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}

// LinkTarget is ReadLink for an entry.
func (img *Image) LinkTarget(e *Entry) (string, error) {
	if !e.IsSymlink() {
		return "", fmt.Errorf("wim: %s is not a symbolic link", e.Path())
	}
	rp, err := img.ReparseData(e)
	if err != nil {
		return "", err
	}
	t, relative, err := linkTarget(rp)
	if err != nil {
		return "", fmt.Errorf("wim: %s: %w", e.Path(), err)
	}
	if !relative {
		t = strings.TrimPrefix(t, `\??\`)
		if len(t) >= 2 && t[1] == ':' {
			t = t[2:]
		}
	}
	return strings.ReplaceAll(t, `\`, "/"), nil
}

// LinkFixed reports whether an absolute link target was rewritten at capture time to be
// relative to the image root (wimlib's rpfix), so applying it should prefix the target directory.
func (e *Entry) LinkFixed() bool { return e.ReparseFlags&ReparseFlagNotFixed == 0 }
