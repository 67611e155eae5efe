package bcd

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// RamdiskTarget says where a retargeted store's RAM disk comes from and
// how it is downloaded; zero TFTP fields leave the store's values alone.
type RamdiskTarget struct {
	WIMPath        string
	TFTPBlockSize  uint32
	TFTPWindowSize uint32
	VariableWindow bool
}

// RetargetRamdisk rewrites, in place, a BCD store read with ReadHive
// (for instance the Windows\Boot\DVD\{PCAT,EFI}\BCD of an image) so it
// boots the WIM at t.WIMPath: every device element that is a RAM disk
// loaded from the boot device ("ramdisk=[boot]<path>,{options}") gets
// the new path and keeps its options object, and every options object
// so named gets t's TFTP settings. Everything else in the store (fonts,
// menu policy, inherited settings) is kept, which is why an admin may
// prefer this to NewRamdiskBCD. It returns how many device elements
// changed; 0 means the store has no such RAM disk.
func RetargetRamdisk(root *Key, t RamdiskTarget) (int, error) {
	if err := checkBootPath(t.WIMPath); err != nil {
		return 0, fmt.Errorf("bcd: WIM path: %w", err)
	}
	if root == nil {
		return 0, fmt.Errorf("bcd: nil store")
	}
	if b := t.TFTPBlockSize; b != 0 && (b < 8 || b > 65464) {
		return 0, fmt.Errorf("bcd: TFTP block size %d outside 8..65464 (RFC 2348)", b)
	}
	if t.TFTPWindowSize > 65535 {
		return 0, fmt.Errorf("bcd: TFTP window size %d outside 1..65535 (RFC 7440)", t.TFTPWindowSize)
	}
	objects := subkey(root, "Objects")
	if objects == nil {
		return 0, fmt.Errorf("bcd: store has no Objects key")
	}
	changed := 0
	options := map[string]bool{}
	for _, obj := range objects.Subkeys {
		elems := subkey(obj, "Elements")
		if elems == nil {
			continue
		}
		for _, el := range elems.Subkeys {
			typ, err := strconv.ParseUint(el.Name, 16, 32)
			if err != nil || elementFormat(uint32(typ)) != FormatDevice {
				continue
			}
			v := value(el, "Element")
			if v == nil {
				continue
			}
			guid, ok := bootRamdiskOptions(v.Data)
			if !ok {
				continue
			}
			v.Data = ramdiskDevice(t.WIMPath, guid)
			changed++
			if !allZero(guid) {
				options[guidString(guid)] = true
			}
		}
	}
	for _, obj := range objects.Subkeys {
		g, err := canonicalGUID(obj.Name)
		if err != nil || !options[g] {
			continue
		}
		if err := setTFTPOptions(obj, t); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// bootRamdiskOptions reports whether a device value is a RAM disk whose
// image comes from the boot device, and returns its options GUID bytes.
func bootRamdiskOptions(b []byte) ([]byte, bool) {
	if len(b) < 16+16+4 {
		return nil, false
	}
	d := b[16:]
	if binary.LittleEndian.Uint32(d) != deviceTypeBlockIO || binary.LittleEndian.Uint32(d[16:]) != blockIOTypeRamdisk {
		return nil, false
	}
	s, err := DescribeDevice(b)
	if err != nil || len(s) < len("ramdisk=[boot]") || s[:len("ramdisk=[boot]")] != "ramdisk=[boot]" {
		return nil, false
	}
	return b[:16], true
}

// ramdiskDevice encodes "ramdisk=[boot]path" with raw options GUID
// bytes (possibly zero); path must already be checked.
func ramdiskDevice(path string, options []byte) []byte {
	b, _ := RamdiskDevice(path, "{00000000-0000-0000-0000-000000000000}") // path checked by the caller
	copy(b, options)
	return b
}

// setTFTPOptions sets the non-zero TFTP settings of t on an options object.
func setTFTPOptions(obj *Key, t RamdiskTarget) error {
	var elems []Element
	add := func(e Element, err error) {
		if err == nil {
			elems = append(elems, e)
		}
	}
	if t.TFTPBlockSize != 0 {
		add(IntegerElement(ElemRamdiskTFTPBlockSize, uint64(t.TFTPBlockSize)))
	}
	if t.TFTPWindowSize != 0 {
		add(IntegerElement(ElemRamdiskTFTPWindowSize, uint64(t.TFTPWindowSize)))
	}
	if t.VariableWindow {
		add(BooleanElement(ElemRamdiskTFTPVarWindow, true))
	}
	if len(elems) == 0 {
		return nil
	}
	ek := subkey(obj, "Elements")
	if ek == nil {
		ek = &Key{Name: "Elements"}
		obj.Subkeys = append(obj.Subkeys, ek)
	}
	for _, e := range elems {
		name := fmt.Sprintf("%08x", e.Type)
		k := subkey(ek, name)
		if k == nil {
			k = &Key{Name: name}
			ek.Subkeys = append(ek.Subkeys, k)
		}
		if v := value(k, "Element"); v != nil {
			v.Type, v.Data = e.RegType, e.Data
		} else {
			k.Values = append(k.Values, Value{Name: "Element", Type: e.RegType, Data: e.Data})
		}
	}
	return nil
}

// subkey finds a direct subkey by name, case-insensitively as Windows does.
func subkey(k *Key, name string) *Key {
	up := upcaseName(name)
	for _, s := range k.Subkeys {
		if s != nil && upcaseName(s.Name) == up {
			return s
		}
	}
	return nil
}

// value finds a value by name, case-insensitively, for in-place edits.
func value(k *Key, name string) *Value {
	up := upcaseName(name)
	for i := range k.Values {
		if upcaseName(k.Values[i].Name) == up {
			return &k.Values[i]
		}
	}
	return nil
}
