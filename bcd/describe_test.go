package bcd

import "unicode/utf16"

import "encoding/binary"

import "fmt"

// DescribeDevice renders a device element's value the way bcdedit shows
// it: "boot", "ramdisk=[boot]\sources\boot.wim,{guid}", or "device type
// N" for the kinds this package does not write (partitions, locate...).
// It checks the lengths the boot library checks and never reads past b.
func DescribeDevice(b []byte) (string, error) {
	if len(b) < 16+16 {
		return "", fmt.Errorf("bcd: device element of %d bytes, too short", len(b))
	}
	desc := b[16:]
	if size := binary.LittleEndian.Uint32(desc[8:]); uint64(size) != uint64(len(desc)) {
		return "", fmt.Errorf("bcd: device descriptor size %d, but %d bytes follow the GUID", size, len(desc))
	}
	s, err := describeDescriptor(desc)
	if err != nil {
		return "", err
	}
	if g := b[:16]; !allZero(g) {
		s += "," + guidString(g)
	}
	return s, nil
}

// describeDescriptor renders one descriptor whose size is len(d).
func describeDescriptor(d []byte) (string, error) {
	typ := binary.LittleEndian.Uint32(d)
	switch {
	case typ == deviceTypeBoot:
		return "boot", nil
	case typ == deviceTypeBlockIO && len(d) >= 16+4 && binary.LittleEndian.Uint32(d[16:]) == blockIOTypeRamdisk:
		return describeRamdisk(d)
	}
	return fmt.Sprintf("device type %d", typ), nil
}

// describeRamdisk renders a file-backed ramdisk: its file path
// descriptor holds the parent device's descriptor, then the path.
func describeRamdisk(d []byte) (string, error) {
	const fileAt = 16 + 4 + 8 + 8 + 4
	if len(d) < fileAt+12+16 {
		return "", fmt.Errorf("bcd: ramdisk descriptor of %d bytes has no file path", len(d))
	}
	fp := d[fileAt:]
	if n := binary.LittleEndian.Uint32(fp[4:]); uint64(n) != uint64(len(fp)) {
		return "", fmt.Errorf("bcd: ramdisk file path length %d, but %d bytes remain", n, len(fp))
	}
	parent := fp[12:]
	psize := binary.LittleEndian.Uint32(parent[8:])
	if psize < 16 || uint64(psize) > uint64(len(parent)) {
		return "", fmt.Errorf("bcd: ramdisk parent device size %d does not fit in %d bytes", psize, len(parent))
	}
	ps, err := describeDescriptor(parent[:psize])
	if err != nil {
		return "", err
	}
	return "ramdisk=[" + ps + "]" + decodeUTF16Z(parent[psize:]), nil
}

// decodeUTF16Z decodes UTF-16LE up to the first NUL or the end.
func decodeUTF16Z(b []byte) string {
	var u []uint16
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// guidString formats 16 in-memory GUID bytes as "{xxxxxxxx-...}".
func guidString(g []byte) string {
	return fmt.Sprintf("{%08x-%04x-%04x-%x-%x}", binary.LittleEndian.Uint32(g), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:16])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
