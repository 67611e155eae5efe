package bcd

import (
	"bytes"
	"strings"
	"testing"
)

// mediaLikeStore is a store shaped like an install medium's: a ramdisk
// loader on the {ramdiskoptions} GUID (upper case, as some tools write
// it), a memory tester on the plain boot device, and settings that a
// retarget must keep.
func mediaLikeStore(t *testing.T) *Key {
	t.Helper()
	const opts = "{AE5534E0-A924-466C-B836-758539A3EE3A}"
	dev, err := RamdiskDevice(`\sources\boot.wim`, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := func(el Element, err error) Element {
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	loader := object(WinPELoaderGUID, ObjectOSLoader, []Element{
		e(DeviceElement(ElemApplicationDevice, dev)),
		e(DeviceElement(ElemOSDevice, dev)),
		e(IntegerElement(0x250000C2, 1)),    // bootmenupolicy Standard
		e(BooleanElement(0x16000060, true)), // isolatedcontext
	})
	memdiag := object("{b2721d73-1db4-4c62-bf78-c548a880142d}", 0x10200005, []Element{
		e(DeviceElement(ElemApplicationDevice, BootDevice())),
		e(StringElement(ElemApplicationPath, `\boot\memtest.exe`)),
	})
	options := object(opts, ObjectDeviceSettings, []Element{
		e(DeviceElement(ElemRamdiskSDIDevice, BootDevice())),
		e(StringElement(ElemRamdiskSDIPath, `\boot\boot.sdi`)),
		e(IntegerElement(ElemRamdiskTFTPBlockSize, 1432)),
	})
	return &Key{Name: "NewStoreRoot", Subkeys: []*Key{{Name: "OBJECTS", Subkeys: []*Key{loader, memdiag, options}}}}
}

func TestRetargetRamdisk(t *testing.T) {
	var file bytes.Buffer
	if err := WriteHive(&file, mediaLikeStore(t), HiveOptions{}); err != nil {
		t.Fatal(err)
	}
	root, err := ReadHive(file.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	const path = `\Boot\x64\Images\52-54-00-aa-bb-cc.wim`
	n, err := RetargetRamdisk(root, RamdiskTarget{WIMPath: path, TFTPBlockSize: 16384, TFTPWindowSize: 8, VariableWindow: true})
	if err != nil || n != 2 {
		t.Fatalf("RetargetRamdisk: %d changed, %v; want 2", n, err)
	}
	out := writeTemp(t, "BCD", writeHiveBytes(t, root, HiveOptions{}))
	d := dumpTree(root)
	if hivexAvailable() { // read what was written, not the tree in memory
		d = hivexExport(t, out)
	}
	get := func(obj, id string) []byte {
		return d[`OBJECTS\`+obj+`\Elements\`+id]["Element"].Data
	}
	const opts = "{AE5534E0-A924-466C-B836-758539A3EE3A}"
	for _, id := range []string{"11000001", "21000001"} {
		s, err := DescribeDevice(get(WinPELoaderGUID, id))
		if want := `ramdisk=[boot]` + path + `,{ae5534e0-a924-466c-b836-758539a3ee3a}`; err != nil || s != want {
			t.Errorf("loader %s = %q, %v; want %q", id, s, err, want)
		}
	}
	if s, _ := DescribeDevice(get("{b2721d73-1db4-4c62-bf78-c548a880142d}", "11000001")); s != "boot" {
		t.Errorf("memdiag device changed to %q", s)
	}
	for id, want := range map[string][]byte{
		"35000007": qword(16384), "35000008": qword(8), "3600000b": {1},
		"32000004": u16z(`\boot\boot.sdi`),
	} {
		if got := get(opts, id); !bytes.Equal(got, want) {
			t.Errorf("options %s = %x, want %x", id, got, want)
		}
	}
	for id, want := range map[string][]byte{"250000c2": qword(1), "16000060": {1}} {
		if got := get(WinPELoaderGUID, id); !bytes.Equal(got, want) {
			t.Errorf("loader %s = %x, want it kept as %x", id, got, want)
		}
	}
}

func hivexAvailable() bool {
	_, err := lookPath("hivexregedit")
	return err == nil
}

func TestRetargetRamdiskErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		root *Key
		tgt  RamdiskTarget
		want string
	}{
		{"nil store", nil, RamdiskTarget{WIMPath: `\a.wim`}, "nil store"},
		{"no Objects", &Key{}, RamdiskTarget{WIMPath: `\a.wim`}, "no Objects"},
		{"relative path", mediaLikeStore(t), RamdiskTarget{WIMPath: `a.wim`}, "WIM path"},
		{"bad block size", mediaLikeStore(t), RamdiskTarget{WIMPath: `\a.wim`, TFTPBlockSize: 70000}, "block size"},
		{"bad window", mediaLikeStore(t), RamdiskTarget{WIMPath: `\a.wim`, TFTPWindowSize: 70000}, "window size"},
	} {
		if _, err := RetargetRamdisk(tc.root, tc.tgt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	n, err := RetargetRamdisk(&Key{Subkeys: []*Key{{Name: "Objects"}}}, RamdiskTarget{WIMPath: `\a.wim`})
	if n != 0 || err != nil {
		t.Errorf("empty store: %d, %v", n, err)
	}
}
