package bcd

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/pxewim/pxewim/firmware"
)

// Firmware selects the boot path a store is written for (package firmware has the one
// definition).
type Firmware = firmware.Path

// The boot paths: BIOS stores boot winload.exe, UEFI stores winload.efi.
const (
	BIOS = firmware.BIOS
	UEFI = firmware.UEFI
)

// RamdiskBoot describes a BCD store that boots Windows PE from a WIM
// loaded into a RAM disk over the boot device (TFTP in a PXE boot).
type RamdiskBoot struct {
	Firmware Firmware
	// WIMPath is the image path on the boot device, e.g.
	// `\sources\boot.wim` or `\Boot\x64\Images\{mac}.wim`.
	WIMPath string
	// SDIPath is the System Deployment Image that holds the RAM disk's
	// boot sector, e.g. `\Boot\boot.sdi`.
	SDIPath string
	// TFTPBlockSize and TFTPWindowSize set ramdisktftpblocksize and
	// ramdisktftpwindowsize (RFC 2348 / RFC 7440 option values the boot
	// manager asks for when it downloads the WIM); 0 leaves them out and
	// the boot manager uses its defaults (1432 bytes, window 1 on most
	// versions).
	TFTPBlockSize  uint32
	TFTPWindowSize uint32
	// VariableWindow sets ramdisktftpvarwindow: the client shrinks the
	// window on loss instead of restarting.
	VariableWindow bool
	// Description is the loader's menu entry ("Windows PE" if empty).
	Description string
	// Locale is the preferred locale, e.g. "en-US" (left out if empty).
	Locale string
	// DisplayBootMenu and Timeout control the boot manager's menu; the
	// timeout is stored in whole seconds.
	DisplayBootMenu bool
	Timeout         time.Duration
	// LoaderGUID names the OS loader object (WinPELoaderGUID if empty).
	LoaderGUID string
	// ExtraLoaderElements are added to the OS loader object (e.g. a
	// testsigning boolean); they replace generated elements of the same
	// type.
	ExtraLoaderElements []Element
}

// BCDKeyName is the name Windows records in \Description\KeyName of a
// store on boot media.
const BCDKeyName = "BCD00000001"

// NewRamdiskBCD returns the registry tree of a BCD store that boots the
// WIM in cfg through a RAM disk. See the package documentation for what
// each object and element is for.
func NewRamdiskBCD(cfg RamdiskBoot) (*Key, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	loaderGUID := WinPELoaderGUID
	if cfg.LoaderGUID != "" {
		loaderGUID, _ = canonicalGUID(cfg.LoaderGUID) // checked in validate
	}
	bootmgr, err := bootMgrElements(cfg, loaderGUID)
	if err != nil {
		return nil, err
	}
	loader, err := loaderElements(cfg)
	if err != nil {
		return nil, err
	}
	ramdisk, err := ramdiskElements(cfg)
	if err != nil {
		return nil, err
	}
	objects := &Key{Name: "Objects", Subkeys: []*Key{
		object(BootMgrGUID, ObjectBootMgr, bootmgr),
		object(loaderGUID, ObjectOSLoader, loader),
		object(RamdiskOptionsGUID, ObjectDeviceSettings, ramdisk),
	}}
	desc := &Key{Name: "Description", Values: []Value{String("KeyName", BCDKeyName)}}
	return &Key{Name: "NewStoreRoot", Subkeys: []*Key{desc, objects}}, nil
}

// WriteRamdiskBCD writes the store NewRamdiskBCD describes as a hive
// file. The bytes depend only on cfg (timestamps are fixed at zero), so
// they can be served with a stable ETag.
func WriteRamdiskBCD(w io.Writer, cfg RamdiskBoot) error {
	root, err := NewRamdiskBCD(cfg)
	if err != nil {
		return err
	}
	return WriteHive(w, root, HiveOptions{FileName: `\Boot\BCD`})
}

func (cfg RamdiskBoot) validate() error {
	if cfg.Firmware != BIOS && cfg.Firmware != UEFI {
		return fmt.Errorf("bcd: unknown firmware %v", cfg.Firmware)
	}
	if err := checkBootPath(cfg.WIMPath); err != nil {
		return fmt.Errorf("bcd: WIM path: %w", err)
	}
	if err := checkBootPath(cfg.SDIPath); err != nil {
		return fmt.Errorf("bcd: SDI path: %w", err)
	}
	if b := cfg.TFTPBlockSize; b != 0 && (b < 8 || b > 65464) {
		return fmt.Errorf("bcd: TFTP block size %d outside 8..65464 (RFC 2348)", b)
	}
	if w := cfg.TFTPWindowSize; w > 65535 {
		return fmt.Errorf("bcd: TFTP window size %d outside 1..65535 (RFC 7440)", w)
	}
	if cfg.Timeout < 0 || cfg.Timeout > 100*365*24*time.Hour {
		return fmt.Errorf("bcd: timeout %v out of range", cfg.Timeout)
	}
	if len(cfg.Description) > 256 || strings.ContainsRune(cfg.Description, 0) {
		return fmt.Errorf("bcd: description longer than 256 bytes or contains NUL")
	}
	if !validLocale(cfg.Locale) {
		return fmt.Errorf("bcd: locale %q is not a language tag like en-US", cfg.Locale)
	}
	if cfg.LoaderGUID != "" {
		if _, err := canonicalGUID(cfg.LoaderGUID); err != nil {
			return fmt.Errorf("bcd: loader GUID: %w", err)
		}
	}
	for _, e := range cfg.ExtraLoaderElements {
		if e.Type>>28 == 0 || e.Type>>28 > 4 || len(e.Data) > 4096 {
			return fmt.Errorf("bcd: extra element %08x: bad class or more than 4096 bytes", e.Type)
		}
	}
	return nil
}

func validLocale(s string) bool {
	if len(s) > 85 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// elementBuilder collects elements and keeps the first error, so the
// object builders read as lists.
type elementBuilder struct {
	elems []Element
	err   error
}

func (b *elementBuilder) add(e Element, err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
	b.elems = append(b.elems, e)
}

// bootMgrElements: the boot manager needs to know what to start (default)
// and what to list (displayorder); timeout and displaybootmenu say
// whether a menu is shown at all.
func bootMgrElements(cfg RamdiskBoot, loaderGUID string) ([]Element, error) {
	var b elementBuilder
	b.add(StringElement(ElemDescription, "Windows Boot Manager"))
	if cfg.Locale != "" {
		b.add(StringElement(ElemPreferredLocale, cfg.Locale))
	}
	b.add(ObjectElement(ElemDefaultObject, loaderGUID))
	b.add(ObjectListElement(ElemDisplayOrder, loaderGUID))
	b.add(IntegerElement(ElemTimeout, uint64(cfg.Timeout/time.Second)))
	if cfg.DisplayBootMenu {
		b.add(BooleanElement(ElemDisplayBootMenu, true))
	}
	return b.elems, b.err
}

// loaderElements: winload is loaded from the RAM disk (device), the
// kernel finds its system there too (osdevice, systemroot); detecthal
// makes winload pick the HAL at run time, winpe tells it this is a
// Windows PE boot (RAM disk root, no page file); nx OptIn is the media
// default.
func loaderElements(cfg RamdiskBoot) ([]Element, error) {
	dev, err := RamdiskDevice(cfg.WIMPath, RamdiskOptionsGUID)
	if err != nil {
		return nil, err
	}
	winload := `\windows\system32\boot\winload.exe`
	if cfg.Firmware == UEFI {
		winload = `\windows\system32\boot\winload.efi`
	}
	desc := cfg.Description
	if desc == "" {
		desc = "Windows PE"
	}
	var b elementBuilder
	b.add(DeviceElement(ElemApplicationDevice, dev))
	b.add(StringElement(ElemApplicationPath, winload))
	b.add(StringElement(ElemDescription, desc))
	if cfg.Locale != "" {
		b.add(StringElement(ElemPreferredLocale, cfg.Locale))
	}
	b.add(DeviceElement(ElemOSDevice, dev))
	b.add(StringElement(ElemSystemRoot, `\windows`))
	b.add(IntegerElement(ElemNX, 0))
	b.add(BooleanElement(ElemDetectHAL, true))
	b.add(BooleanElement(ElemWinPE, true))
	if b.err != nil {
		return nil, b.err
	}
	return mergeElements(b.elems, cfg.ExtraLoaderElements), nil
}

// ramdiskElements: the options object tells the boot manager where the
// SDI file is (it holds the RAM disk's boot sector and partition table)
// and how to download the image over TFTP.
func ramdiskElements(cfg RamdiskBoot) ([]Element, error) {
	var b elementBuilder
	b.add(StringElement(ElemDescription, "Ramdisk Options"))
	b.add(DeviceElement(ElemRamdiskSDIDevice, BootDevice()))
	b.add(StringElement(ElemRamdiskSDIPath, cfg.SDIPath))
	if cfg.TFTPBlockSize != 0 {
		b.add(IntegerElement(ElemRamdiskTFTPBlockSize, uint64(cfg.TFTPBlockSize)))
	}
	if cfg.TFTPWindowSize != 0 {
		b.add(IntegerElement(ElemRamdiskTFTPWindowSize, uint64(cfg.TFTPWindowSize)))
	}
	if cfg.VariableWindow {
		b.add(BooleanElement(ElemRamdiskTFTPVarWindow, true))
	}
	return b.elems, b.err
}

// mergeElements returns base with extra appended, an extra element
// replacing a base element of the same type.
func mergeElements(base, extra []Element) []Element {
	out := make([]Element, 0, len(base)+len(extra))
	replaced := make(map[uint32]bool, len(extra))
	for _, e := range extra {
		replaced[e.Type] = true
	}
	for _, e := range base {
		if !replaced[e.Type] {
			out = append(out, e)
		}
	}
	seen := make(map[uint32]bool, len(extra))
	for _, e := range extra {
		if !seen[e.Type] {
			out = append(out, e)
			seen[e.Type] = true
		}
	}
	return out
}

// object builds Objects\{guid} with Description\Type and one
// Elements\<type>\Element key per element, in element-type order.
func object(guid string, typ uint32, elems []Element) *Key {
	sorted := append([]Element{}, elems...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Type < sorted[j].Type })
	elements := &Key{Name: "Elements"}
	for _, e := range sorted {
		elements.Subkeys = append(elements.Subkeys, &Key{
			Name:   fmt.Sprintf("%08x", e.Type),
			Values: []Value{{Name: "Element", Type: e.RegType, Data: e.Data}},
		})
	}
	return &Key{Name: guid, Subkeys: []*Key{
		{Name: "Description", Values: []Value{DWORD("Type", typ)}},
		elements,
	}}
}
