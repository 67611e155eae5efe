package bcd

import (
	"encoding/binary"
	"fmt"
	"strings"
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
