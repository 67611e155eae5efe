package testenv

import (
	"fmt"
	"io"
	"strings"
)

// CpioEntry is one member of a newc ("070701") cpio archive, the format the Linux kernel
// unpacks as an initramfs. Device nodes need no mknod on the host: they are just headers.
type CpioEntry struct {
	Name         string // path without leading "/", e.g. "dev/console"
	Mode         uint32 // file type and permission bits, e.g. 0o100755, 0o040755, 0o020600
	RdevMajor    uint32 // for device nodes
	RdevMinor    uint32
	Data         []byte // regular files only
	Uid, Gid     uint32
	MtimeSeconds uint32 // fixed by callers that want reproducible archives
}

// Cpio mode bits for the entry types the test initramfs uses.
const (
	CpioDir     = 0o040000
	CpioRegular = 0o100000
	CpioCharDev = 0o020000
)

// WriteCpio writes entries and the trailer in newc format.
func WriteCpio(w io.Writer, entries []CpioEntry) error {
	ino := uint32(1)
	for _, e := range entries {
		if strings.HasPrefix(e.Name, "/") || e.Name == "" {
			return fmt.Errorf("cpio: bad member name %q", e.Name)
		}
		if err := writeCpioEntry(w, e, ino); err != nil {
			return fmt.Errorf("cpio: %s: %w", e.Name, err)
		}
		ino++
	}
	return writeCpioEntry(w, CpioEntry{Name: "TRAILER!!!"}, 0)
}

func writeCpioEntry(w io.Writer, e CpioEntry, ino uint32) error {
	nlink := uint32(1)
	if e.Mode&0o170000 == CpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, e.Mode, e.Uid, e.Gid, nlink, e.MtimeSeconds, len(e.Data),
		0, 0, e.RdevMajor, e.RdevMinor, len(e.Name)+1, 0)
	buf := append([]byte(hdr), e.Name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad4(len(buf)))...)
	buf = append(buf, e.Data...)
	buf = append(buf, make([]byte, pad4(len(e.Data)))...)
	_, err := w.Write(buf)
	return err
}

func pad4(n int) int { return (4 - n%4) % 4 }
