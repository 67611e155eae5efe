package bcd

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Device elements are stored as REG_BINARY: a 16-byte GUID naming an
// options object (zero when there is none), then a boot-library device
// descriptor whose own Size field must make the whole value exactly
// Size+16 bytes long (the boot library rejects anything else).
//
// Descriptor header, all little-endian uint32:
//
//	+0  DeviceType  0 block I/O, 2 legacy partition, 3 serial, 4 UDP,
//	                5 boot (the device the boot manager came from), 6
//	                partition, 8 locate
//	+4  Flags
//	+8  Size        bytes from DeviceType to the end of the descriptor
//	+12 reserved
//	+16 type-specific data
//
// A boot device carries no data of its own; Windows pads its descriptor
// to 0x48 bytes (the size of the largest partition form), and so do we.
//
// A ramdisk backed by a file ("ramdisk=[boot]\sources\boot.wim,{guid}")
// is a block I/O device of block-I/O type 3 (ramdisk):
//
//	+16 BlockIoType   3
//	+20 ImageBase     uint64, 0 (filled in at load time)
//	+28 ImageSize     uint64, 0 (the file's size)
//	+36 ImageOffset   uint32, 0
//	+40 file path descriptor:
//	    +0 Version 1, +4 Length (of the whole file path descriptor),
//	    +8 PathType 5, +12 the parent device's descriptor (the boot
//	    device here), then the path in UTF-16LE with a NUL.
//
// Source of the layout: public dumps of ramdisk device elements written
// by bcdedit (a real "ramdisk=[boot]\sources\boot.wim" element is 176
// bytes with Size 0xa0, Flags 1, file path Length 0x78, PathType 5 and a
// 0x48-byte boot device inside), checked against the boot library's
// reader as reconstructed by ReactOS (boot/environ/lib/misc/bcd.c:
// BiConvertRegistryDataToElement, BL_DEVICE_DESCRIPTOR). Uncertain: the
// meaning of Flags 1 on the ramdisk descriptor and of PathType 5 (both
// copied from bcdedit's output, not from documentation).
const (
	deviceTypeBlockIO  = 0
	deviceTypeBoot     = 5
	blockIOTypeRamdisk = 3
	filePathVersion    = 1
	filePathTypeDevice = 5
	ramdiskFlags       = 1
	bootDescriptorSize = 0x48
	maxDevicePathLen   = 1024 // UTF-16 units; far above any real path
)

// descriptorHeader encodes the four header fields of a device descriptor.
func descriptorHeader(deviceType, flags, size uint32) []byte {
	b := make([]byte, 0, 16)
	b = binary.LittleEndian.AppendUint32(b, deviceType)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = binary.LittleEndian.AppendUint32(b, size)
	return binary.LittleEndian.AppendUint32(b, 0)
}

// bootDescriptor is the descriptor of "boot": the device the boot manager
// itself was loaded from (the PXE/TFTP server in a network boot).
func bootDescriptor() []byte {
	d := make([]byte, bootDescriptorSize)
	copy(d, descriptorHeader(deviceTypeBoot, 0, bootDescriptorSize))
	return d
}

// BootDevice returns the value of a device element that names the boot
// device ("boot" in bcdedit), with no options object.
func BootDevice() []byte {
	return append(make([]byte, 16), bootDescriptor()...)
}

// RamdiskDevice returns the value of a device element for
// "ramdisk=[boot]<path>,<options>": a RAM disk loaded from the file path
// on the boot device, configured by the options object (which holds the
// SDI file and TFTP settings).
func RamdiskDevice(path, options string) ([]byte, error) {
	opts, err := canonicalGUID(options)
	if err != nil {
		return nil, fmt.Errorf("bcd: ramdisk options: %w", err)
	}
	if err := checkBootPath(path); err != nil {
		return nil, fmt.Errorf("bcd: ramdisk image path: %w", err)
	}
	parent := bootDescriptor()
	pathData := utf16z(path)
	filePathLen := 12 + len(parent) + len(pathData)
	size := 16 + 4 + 8 + 8 + 4 + filePathLen

	b := guidBytes(opts)
	b = append(b, descriptorHeader(deviceTypeBlockIO, ramdiskFlags, uint32(size))...)
	b = binary.LittleEndian.AppendUint32(b, blockIOTypeRamdisk)
	b = binary.LittleEndian.AppendUint64(b, 0) // image base
	b = binary.LittleEndian.AppendUint64(b, 0) // image size
	b = binary.LittleEndian.AppendUint32(b, 0) // image offset
	b = binary.LittleEndian.AppendUint32(b, filePathVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(filePathLen))
	b = binary.LittleEndian.AppendUint32(b, filePathTypeDevice)
	b = append(b, parent...)
	return append(b, pathData...), nil
}

// checkBootPath accepts absolute backslash paths as the boot manager
// resolves them on the boot device: "\dir\file", no NUL, no forward
// slashes (TFTP servers differ on them), bounded length.
func checkBootPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case p[0] != '\\':
		return fmt.Errorf("%q does not start with a backslash", p)
	case strings.ContainsAny(p, "/\x00"):
		return fmt.Errorf("%q contains '/' or NUL", p)
	case utf16Len(p) > maxDevicePathLen:
		return fmt.Errorf("path is longer than %d characters", maxDevicePathLen)
	}
	return nil
}

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
