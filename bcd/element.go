package bcd

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// GUIDs of the well-known BCD objects a ramdisk store uses.
const (
	// BootMgrGUID is {bootmgr}, the Windows Boot Manager object.
	BootMgrGUID = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
	// RamdiskOptionsGUID is the device options object Windows install and
	// WinPE media use for their ramdisk (bcdedit's {ramdiskoptions} is a
	// different GUID, {ae5534e0-...}; both work, this one is what the
	// media and WDS stores carry).
	RamdiskOptionsGUID = "{7619dcc8-fafe-11d9-b411-000476eba25f}"
	// WinPELoaderGUID is the OS loader object of Windows install media
	// ({default} in their BCD).
	WinPELoaderGUID = "{7619dcc9-fafe-11d9-b411-000476eba25f}"
)

// BCD object types (Objects\{GUID}\Description\Type).
const (
	ObjectBootMgr        uint32 = 0x10100002 // application, firmware image, boot manager
	ObjectOSLoader       uint32 = 0x10200003 // application, boot app image, OS loader
	ObjectDeviceSettings uint32 = 0x30000000 // device object (ramdisk options)
)

// BCD element types used by the ramdisk store. The top nibble is the
// class (1 library, 2 application, 3 device), the next the format (1
// device, 2 string, 3 object, 4 object list, 5 integer, 6 boolean, 7
// integer list), the low bits the element itself.
const (
	ElemApplicationDevice uint32 = 0x11000001 // device
	ElemApplicationPath   uint32 = 0x12000002 // path
	ElemDescription       uint32 = 0x12000004 // description
	ElemPreferredLocale   uint32 = 0x12000005 // locale
	ElemInheritedObjects  uint32 = 0x14000006 // inherit

	ElemDefaultObject   uint32 = 0x23000003 // bootmgr: default
	ElemDisplayOrder    uint32 = 0x24000001 // bootmgr: displayorder
	ElemTimeout         uint32 = 0x25000004 // bootmgr: timeout (seconds)
	ElemDisplayBootMenu uint32 = 0x26000020 // bootmgr: displaybootmenu

	ElemOSDevice   uint32 = 0x21000001 // osloader: osdevice
	ElemSystemRoot uint32 = 0x22000002 // osloader: systemroot
	ElemNX         uint32 = 0x25000020 // osloader: nx (0 OptIn, 1 OptOut, 2 AlwaysOff, 3 AlwaysOn)
	ElemDetectHAL  uint32 = 0x26000010 // osloader: detecthal
	ElemWinPE      uint32 = 0x26000022 // osloader: winpe

	ElemRamdiskTFTPClientPort uint32 = 0x35000002 // ramdisktftpclientport
	ElemRamdiskSDIDevice      uint32 = 0x31000003 // ramdisksdidevice
	ElemRamdiskSDIPath        uint32 = 0x32000004 // ramdisksdipath
	ElemRamdiskTFTPBlockSize  uint32 = 0x35000007 // ramdisktftpblocksize
	ElemRamdiskTFTPWindowSize uint32 = 0x35000008 // ramdisktftpwindowsize
	ElemRamdiskMCEnabled      uint32 = 0x36000009 // ramdiskmcenabled
	ElemRamdiskMCTFTPFallback uint32 = 0x3600000A // ramdiskmctftpfallback
	ElemRamdiskTFTPVarWindow  uint32 = 0x3600000B // ramdisktftpvarwindow
)

// Element formats (bits 24-27 of an element type).
const (
	FormatDevice      = 1
	FormatString      = 2
	FormatObject      = 3
	FormatObjectList  = 4
	FormatInteger     = 5
	FormatBoolean     = 6
	FormatIntegerList = 7
)

// Element is one BCD element: its type and the registry value that holds
// it (Objects\{GUID}\Elements\<type as 8 lower-case hex digits>\Element).
type Element struct {
	Type    uint32
	RegType uint32
	Data    []byte
}

func elementFormat(t uint32) uint32 { return (t >> 24) & 0xF }

func checkFormat(t uint32, want uint32) error {
	if got := elementFormat(t); got != want {
		return fmt.Errorf("bcd: element %08x has format %d, not %d", t, got, want)
	}
	return nil
}

// StringElement encodes a string element (REG_SZ with its NUL).
func StringElement(t uint32, s string) (Element, error) {
	if err := checkFormat(t, FormatString); err != nil {
		return Element{}, err
	}
	if strings.ContainsRune(s, 0) {
		return Element{}, fmt.Errorf("bcd: element %08x: string contains NUL", t)
	}
	return Element{t, RegSZ, utf16z(s)}, nil
}

// IntegerElement encodes an integer element: REG_BINARY, 8 bytes little-endian.
func IntegerElement(t uint32, v uint64) (Element, error) {
	if err := checkFormat(t, FormatInteger); err != nil {
		return Element{}, err
	}
	return Element{t, RegBinary, binary.LittleEndian.AppendUint64(nil, v)}, nil
}

// BooleanElement encodes a boolean element: REG_BINARY, one byte 0 or 1
// (the boot library rejects any other length).
func BooleanElement(t uint32, v bool) (Element, error) {
	if err := checkFormat(t, FormatBoolean); err != nil {
		return Element{}, err
	}
	b := byte(0)
	if v {
		b = 1
	}
	return Element{t, RegBinary, []byte{b}}, nil
}

// ObjectElement encodes an object reference: REG_SZ holding "{guid}".
func ObjectElement(t uint32, guid string) (Element, error) {
	if err := checkFormat(t, FormatObject); err != nil {
		return Element{}, err
	}
	g, err := canonicalGUID(guid)
	if err != nil {
		return Element{}, fmt.Errorf("bcd: element %08x: %w", t, err)
	}
	return Element{t, RegSZ, utf16z(g)}, nil
}

// ObjectListElement encodes an object list: REG_MULTI_SZ of "{guid}"s.
func ObjectListElement(t uint32, guids ...string) (Element, error) {
	if err := checkFormat(t, FormatObjectList); err != nil {
		return Element{}, err
	}
	list := make([]string, len(guids))
	for i, g := range guids {
		c, err := canonicalGUID(g)
		if err != nil {
			return Element{}, fmt.Errorf("bcd: element %08x: %w", t, err)
		}
		list[i] = c
	}
	return Element{t, RegMultiSZ, MultiString("", list).Data}, nil
}

// DeviceElement wraps an encoded device (see BootDevice, RamdiskDevice).
func DeviceElement(t uint32, device []byte) (Element, error) {
	if err := checkFormat(t, FormatDevice); err != nil {
		return Element{}, err
	}
	return Element{t, RegBinary, append([]byte{}, device...)}, nil
}

// canonicalGUID checks a "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" string
// and returns it in lower case, the form BCD stores use for key names
// and references.
func canonicalGUID(s string) (string, error) {
	if len(s) != 38 || s[0] != '{' || s[37] != '}' {
		return "", fmt.Errorf("GUID %q is not of the form {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}", s)
	}
	for i := 1; i < 37; i++ {
		c := s[i]
		switch i {
		case 9, 14, 19, 24:
			if c != '-' {
				return "", fmt.Errorf("GUID %q: want '-' at position %d", s, i)
			}
		default:
			if !isHex(c) {
				return "", fmt.Errorf("GUID %q: %q is not a hex digit", s, c)
			}
		}
	}
	return strings.ToLower(s), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// guidBytes returns the 16-byte in-memory (mixed-endian) form of a
// canonical GUID string: the first three groups little-endian, the last
// two as written.
func guidBytes(g string) []byte {
	hex := strings.ReplaceAll(g[1:37], "-", "")
	var raw [16]byte
	for i := range raw {
		raw[i] = unhex(hex[2*i])<<4 | unhex(hex[2*i+1])
	}
	out := make([]byte, 16)
	out[0], out[1], out[2], out[3] = raw[3], raw[2], raw[1], raw[0]
	out[4], out[5] = raw[5], raw[4]
	out[6], out[7] = raw[7], raw[6]
	copy(out[8:], raw[8:])
	return out
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
