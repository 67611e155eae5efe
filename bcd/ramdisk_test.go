package bcd

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// sourcesBootWIMDevice is a ramdisk device element for
// "ramdisk=[boot]\sources\boot.wim,{7619dcc8-fafe-11d9-b411-000476eba25f}"
// as bcdedit writes it (layout of public dumps of Windows media BCDs:
// options GUID, block I/O descriptor of size 0xa0 with flags 1, ramdisk
// type 3, file path descriptor version 1 length 0x78 type 5 holding a
// 0x48-byte boot device and the path).
const sourcesBootWIMDevice = "" +
	"c8dc1976fefad911b411000476eba25f" +
	"0000000001000000a000000000000000" +
	"03000000000000000000000000000000" +
	"00000000000000000100000078000000" +
	"05000000050000000000000048000000" +
	"00000000000000000000000000000000" +
	"00000000000000000000000000000000" +
	"00000000000000000000000000000000" +
	"000000000000000000000000" + "5c007300" +
	"6f0075007200630065007300" + "5c006200" +
	"6f006f0074002e00770069006d000000"

// bootDeviceHex is "boot" as a device element: no options GUID, device
// type 5, descriptor size 0x48, no data.
const bootDeviceHex = "00000000000000000000000000000000" +
	"05000000" + "00000000" + "48000000" + "00000000" +
	"00000000000000000000000000000000" + "00000000000000000000000000000000" +
	"00000000000000000000000000000000" + "0000000000000000"

// Hashes of the stores TestRamdiskBCDBytesStable writes.
const (
	bcdGoldenBIOS = "95dc45efdadebfa4ab70a1ec03c42573cb2a020a5583fa615b6cc6f9074d14c2"
	bcdGoldenUEFI = "620a1e87ee141317364160949dbcdbf99bc9b962403a32a61f3aacf282d8e045"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// u16z is the test's own UTF-16LE+NUL encoder.
func u16z(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

// wantRamdiskDevice derives the device element for another path from the
// bcdedit layout above by patching its two length fields.
func wantRamdiskDevice(t testing.TB, path string) []byte {
	ref := mustHex(t, sourcesBootWIMDevice)
	if len(ref) != 176 {
		t.Fatalf("reference device is %d bytes, want 176", len(ref))
	}
	p := u16z(path)
	b := append(slices.Clone(ref[:0x8c]), p...)
	binary.LittleEndian.PutUint32(b[0x18:], uint32(len(b)-16))   // descriptor size
	binary.LittleEndian.PutUint32(b[0x3c:], uint32(len(b)-0x38)) // file path length
	return b
}

func qword(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// wantBCD is the store the test expects for cfg, written out element by
// element from the BCD conventions (not from the package's builders).
func wantBCD(t testing.TB, cfg RamdiskBoot, loader string) regDump {
	dev := wantRamdiskDevice(t, cfg.WIMPath)
	winload := `\windows\system32\boot\winload.exe`
	if cfg.Firmware == UEFI {
		winload = `\windows\system32\boot\winload.efi`
	}
	desc := cfg.Description
	if desc == "" {
		desc = "Windows PE"
	}
	d := regDump{
		"":            {},
		"Description": {"KeyName": {RegSZ, u16z("BCD00000001")}},
		"Objects":     {},
	}
	objects := map[string]struct {
		typ   uint32
		elems map[string]regValue
	}{
		"{9dea862c-5cdd-4e70-acc1-f32b344d4795}": {0x10100002, map[string]regValue{
			"12000004": {RegSZ, u16z("Windows Boot Manager")},
			"23000003": {RegSZ, u16z(loader)},
			"24000001": {RegMultiSZ, append(u16z(loader), 0, 0)},
			"25000004": {RegBinary, qword(uint64(cfg.Timeout / time.Second))},
		}},
		loader: {0x10200003, map[string]regValue{
			"11000001": {RegBinary, dev},
			"12000002": {RegSZ, u16z(winload)},
			"12000004": {RegSZ, u16z(desc)},
			"21000001": {RegBinary, dev},
			"22000002": {RegSZ, u16z(`\windows`)},
			"25000020": {RegBinary, qword(0)},
			"26000010": {RegBinary, []byte{1}},
			"26000022": {RegBinary, []byte{1}},
		}},
		"{7619dcc8-fafe-11d9-b411-000476eba25f}": {0x30000000, map[string]regValue{
			"12000004": {RegSZ, u16z("Ramdisk Options")},
			"31000003": {RegBinary, mustHex(t, bootDeviceHex)},
			"32000004": {RegSZ, u16z(cfg.SDIPath)},
		}},
	}
	bm, ld, rd := objects[BootMgrGUID].elems, objects[loader].elems, objects[RamdiskOptionsGUID].elems
	if cfg.Locale != "" {
		bm["12000005"] = regValue{RegSZ, u16z(cfg.Locale)}
		ld["12000005"] = regValue{RegSZ, u16z(cfg.Locale)}
	}
	if cfg.DisplayBootMenu {
		bm["26000020"] = regValue{RegBinary, []byte{1}}
	}
	if cfg.TFTPBlockSize != 0 {
		rd["35000007"] = regValue{RegBinary, qword(uint64(cfg.TFTPBlockSize))}
	}
	if cfg.TFTPWindowSize != 0 {
		rd["35000008"] = regValue{RegBinary, qword(uint64(cfg.TFTPWindowSize))}
	}
	if cfg.VariableWindow {
		rd["3600000b"] = regValue{RegBinary, []byte{1}}
	}
	for _, e := range cfg.ExtraLoaderElements {
		ld[fmt.Sprintf("%08x", e.Type)] = regValue{e.RegType, e.Data}
	}
	for guid, o := range objects {
		base := `Objects\` + guid
		d[base] = map[string]regValue{}
		d[base+`\Description`] = map[string]regValue{"Type": {RegDWORD, binary.LittleEndian.AppendUint32(nil, o.typ)}}
		d[base+`\Elements`] = map[string]regValue{}
		for id, v := range o.elems {
			d[base+`\Elements\`+id] = map[string]regValue{"Element": v}
		}
	}
	return d
}

func ramdiskCases(t testing.TB) []struct {
	name   string
	cfg    RamdiskBoot
	loader string
} {
	testsigning, err := BooleanElement(0x16000049, true)
	if err != nil {
		t.Fatal(err)
	}
	noHAL, err := BooleanElement(ElemDetectHAL, false)
	if err != nil {
		t.Fatal(err)
	}
	return []struct {
		name   string
		cfg    RamdiskBoot
		loader string
	}{
		{"BIOS media layout", RamdiskBoot{Firmware: BIOS, WIMPath: `\sources\boot.wim`, SDIPath: `\boot\boot.sdi`}, WinPELoaderGUID},
		{"UEFI big blocks and window", RamdiskBoot{Firmware: UEFI, WIMPath: `\sources\boot.wim`, SDIPath: `\Boot\boot.sdi`,
			TFTPBlockSize: 16384, TFTPWindowSize: 8, VariableWindow: true}, WinPELoaderGUID},
		{"BIOS per-client WIM", RamdiskBoot{Firmware: BIOS, WIMPath: `\Boot\x64\Images\52-54-00-12-34-56.wim`, SDIPath: `\Boot\boot.sdi`,
			TFTPBlockSize: 1456, TFTPWindowSize: 4, Description: "Lab WinPE (52:54:00:12:34:56)", Locale: "de-DE"}, WinPELoaderGUID},
		{"UEFI menu, timeout, own loader GUID, extra elements", RamdiskBoot{Firmware: UEFI, WIMPath: `\Boot\x64\Images\Ünïcode Ñame.wim`,
			SDIPath: `\Boot\boot.sdi`, TFTPBlockSize: 65464, TFTPWindowSize: 65535, DisplayBootMenu: true, Timeout: 30 * time.Second,
			LoaderGUID: "{4FA55A80-07C8-11E1-BB83-78DD08AEAE75}", ExtraLoaderElements: []Element{testsigning, noHAL}},
			"{4fa55a80-07c8-11e1-bb83-78dd08aeae75}"},
	}
}

func TestRamdiskDeviceMatchesBcdeditLayout(t *testing.T) {
	got, err := RamdiskDevice(`\sources\boot.wim`, RamdiskOptionsGUID)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, sourcesBootWIMDevice); !bytes.Equal(got, want) {
		t.Fatalf("ramdisk device:\n got %x\nwant %x", got, want)
	}
	if want := mustHex(t, bootDeviceHex); !bytes.Equal(BootDevice(), want) {
		t.Fatalf("boot device:\n got %x\nwant %x", BootDevice(), want)
	}
	// The boot library accepts a device only if its size field plus the
	// 16-byte GUID is the value's length.
	for _, p := range []string{`\a`, `\Boot\x64\Images\x.wim`, `\` + strings.Repeat("d", 1023)} {
		d, err := RamdiskDevice(p, RamdiskOptionsGUID)
		if err != nil {
			t.Fatal(err)
		}
		if size := binary.LittleEndian.Uint32(d[0x18:]); int(size)+16 != len(d) {
			t.Errorf("%s: size field %d, value %d bytes", p, size, len(d))
		}
		if fl := binary.LittleEndian.Uint32(d[0x3c:]); int(fl)+0x38 != len(d) {
			t.Errorf("%s: file path length %d, value %d bytes", p, fl, len(d))
		}
	}
}

func TestRamdiskBCDReadBackByHivex(t *testing.T) {
	requireTool(t, "hivexregedit")
	for _, tc := range ramdiskCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteRamdiskBCD(&buf, tc.cfg); err != nil {
				t.Fatal(err)
			}
			file := writeTemp(t, "BCD", buf.Bytes())
			compareDumps(t, wantBCD(t, tc.cfg, tc.loader), hivexExport(t, file))

			// The same facts through hivexget, which decodes values itself.
			obj := func(guid, rest string) string { return `\Objects\` + guid + rest }
			for _, c := range []struct{ key, value, want string }{
				{obj(BootMgrGUID, `\Elements\23000003`), "Element", tc.loader},
				{obj(BootMgrGUID, `\Elements\24000001`), "Element", tc.loader},
				{obj(BootMgrGUID, `\Description`), "Type", fmt.Sprint(0x10100002)},
				{obj(tc.loader, `\Description`), "Type", fmt.Sprint(0x10200003)},
				{obj(RamdiskOptionsGUID, `\Description`), "Type", fmt.Sprint(0x30000000)},
				{obj(RamdiskOptionsGUID, `\Elements\32000004`), "Element", tc.cfg.SDIPath},
				{obj(tc.loader, `\Elements\22000002`), "Element", `\windows`},
				{`\Description`, "KeyName", "BCD00000001"},
			} {
				if got := hivexget(t, file, c.key, c.value); got != c.want {
					t.Errorf("hivexget %s %s = %q, want %q", c.key, c.value, got, c.want)
				}
			}
			objs := strings.Fields(hivexsh(t, file, "cd \\Objects\nls\n"))
			want := []string{"{7619dcc8-fafe-11d9-b411-000476eba25f}", tc.loader, BootMgrGUID}
			slices.Sort(objs)
			slices.Sort(want)
			if !slices.Equal(objs, want) {
				t.Errorf("hivexsh ls \\Objects = %q, want %q", objs, want)
			}
		})
	}
}

func TestRamdiskBCDReadBackByOwnReader(t *testing.T) {
	for _, tc := range ramdiskCases(t) {
		var buf bytes.Buffer
		if err := WriteRamdiskBCD(&buf, tc.cfg); err != nil {
			t.Fatal(err)
		}
		got, err := ReadHive(buf.Bytes())
		if err != nil {
			t.Fatalf("%s: ReadHive: %v", tc.name, err)
		}
		if got.Name != "NewStoreRoot" {
			t.Errorf("%s: root key %q, want NewStoreRoot", tc.name, got.Name)
		}
		want := regDump{}
		for p, v := range wantBCD(t, tc.cfg, tc.loader) {
			want[p] = v
		}
		d := dumpTree(got)
		compareDumps(t, want, d)
		for _, id := range []string{"11000001", "21000001"} {
			dev := d[`Objects\`+tc.loader+`\Elements\`+id]["Element"].Data
			s, err := DescribeDevice(dev)
			if want := `ramdisk=[boot]` + tc.cfg.WIMPath + `,` + RamdiskOptionsGUID; err != nil || s != want {
				t.Errorf("%s: %s reads as %q, %v; want %q", tc.name, id, s, err, want)
			}
		}
		sdi, err := DescribeDevice(d[`Objects\`+RamdiskOptionsGUID+`\Elements\31000003`]["Element"].Data)
		if err != nil || sdi != "boot" {
			t.Errorf("%s: ramdisksdidevice reads as %q, %v", tc.name, sdi, err)
		}
	}
}

func TestRamdiskBCDDeterministic(t *testing.T) {
	write := func(cfg RamdiskBoot) []byte {
		var buf bytes.Buffer
		if err := WriteRamdiskBCD(&buf, cfg); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, tc := range ramdiskCases(t) {
		a, b := write(tc.cfg), write(tc.cfg)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two writes differ", tc.name)
		}
		other := tc.cfg
		other.WIMPath = `\Boot\x64\Images\other.wim`
		if bytes.Equal(a, write(other)) {
			t.Errorf("%s: another WIM path gave the same bytes", tc.name)
		}
	}
}

func TestRamdiskBCDRejectsBadConfig(t *testing.T) {
	good := RamdiskBoot{WIMPath: `\sources\boot.wim`, SDIPath: `\boot\boot.sdi`}
	for _, tc := range []struct {
		name string
		edit func(*RamdiskBoot)
		want string
	}{
		{"empty WIM path", func(c *RamdiskBoot) { c.WIMPath = "" }, "WIM path"},
		{"relative WIM path", func(c *RamdiskBoot) { c.WIMPath = `sources\boot.wim` }, "backslash"},
		{"forward slashes", func(c *RamdiskBoot) { c.WIMPath = `/sources/boot.wim` }, "backslash"},
		{"NUL in path", func(c *RamdiskBoot) { c.WIMPath = "\\a\x00b" }, "NUL"},
		{"path too long", func(c *RamdiskBoot) { c.WIMPath = `\` + strings.Repeat("a", 1024) }, "longer than"},
		{"empty SDI path", func(c *RamdiskBoot) { c.SDIPath = "" }, "SDI path"},
		{"block size too small", func(c *RamdiskBoot) { c.TFTPBlockSize = 4 }, "block size"},
		{"block size too big", func(c *RamdiskBoot) { c.TFTPBlockSize = 65465 }, "block size"},
		{"window too big", func(c *RamdiskBoot) { c.TFTPWindowSize = 65536 }, "window size"},
		{"unknown firmware", func(c *RamdiskBoot) { c.Firmware = 7 }, "firmware"},
		{"bad locale", func(c *RamdiskBoot) { c.Locale = "en US" }, "locale"},
		{"bad loader GUID", func(c *RamdiskBoot) { c.LoaderGUID = "{not-a-guid}" }, "loader GUID"},
		{"negative timeout", func(c *RamdiskBoot) { c.Timeout = -time.Second }, "timeout"},
		{"NUL in description", func(c *RamdiskBoot) { c.Description = "a\x00" }, "description"},
		{"extra element of class 0", func(c *RamdiskBoot) {
			c.ExtraLoaderElements = []Element{{Type: 0x06000001, RegType: RegBinary, Data: []byte{1}}}
		}, "extra element"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := NewRamdiskBCD(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			var buf bytes.Buffer
			if err := WriteRamdiskBCD(&buf, cfg); err == nil || buf.Len() != 0 {
				t.Fatalf("WriteRamdiskBCD: error %v, %d bytes", err, buf.Len())
			}
		})
	}
}

func TestElementConstructors(t *testing.T) {
	if g := guidBytes(RamdiskOptionsGUID); hex.EncodeToString(g) != "c8dc1976fefad911b411000476eba25f" {
		t.Errorf("GUID bytes %x", g)
	}
	e, err := ObjectElement(ElemDefaultObject, "{9DEA862C-5CDD-4E70-ACC1-F32B344D4795}")
	if err != nil || !bytes.Equal(e.Data, u16z(BootMgrGUID)) || e.RegType != RegSZ {
		t.Errorf("ObjectElement: %v %x", err, e.Data)
	}
	e, err = IntegerElement(ElemRamdiskTFTPBlockSize, 0x4000)
	if err != nil || !bytes.Equal(e.Data, []byte{0, 0x40, 0, 0, 0, 0, 0, 0}) || e.RegType != RegBinary {
		t.Errorf("IntegerElement: %v %x", err, e.Data)
	}
	for _, bad := range []func() (Element, error){
		func() (Element, error) { return StringElement(ElemTimeout, "x") },
		func() (Element, error) { return IntegerElement(ElemDescription, 1) },
		func() (Element, error) { return BooleanElement(ElemDisplayOrder, true) },
		func() (Element, error) { return ObjectElement(ElemDisplayOrder, BootMgrGUID) },
		func() (Element, error) { return ObjectListElement(ElemDefaultObject, BootMgrGUID) },
		func() (Element, error) { return DeviceElement(ElemSystemRoot, BootDevice()) },
		func() (Element, error) {
			return ObjectElement(ElemDefaultObject, "{9dea862c-5cdd-4e70-acc1-f32b344d479}")
		},
		func() (Element, error) {
			return ObjectListElement(ElemDisplayOrder, "9dea862c-5cdd-4e70-acc1-f32b344d4795")
		},
		func() (Element, error) { return StringElement(ElemDescription, "a\x00") },
	} {
		if _, err := bad(); err == nil {
			t.Error("constructor accepted a mismatched format or a bad value")
		}
	}
	if _, err := RamdiskDevice(`\x.wim`, "{bad}"); err == nil {
		t.Error("RamdiskDevice accepted a bad options GUID")
	}
}

func ExampleWriteRamdiskBCD() {
	var buf bytes.Buffer
	err := WriteRamdiskBCD(&buf, RamdiskBoot{
		Firmware:       UEFI,
		WIMPath:        `\Boot\x64\Images\boot.wim`,
		SDIPath:        `\Boot\boot.sdi`,
		TFTPBlockSize:  16384,
		TFTPWindowSize: 8,
	})
	fmt.Println(err, buf.Len()%4096 == 0, string(buf.Bytes()[:4]))
	// Output: <nil> true regf
}

func TestDescribeDevice(t *testing.T) {
	for _, tc := range []struct {
		name string
		dev  []byte
		want string
	}{
		{"bcdedit ramdisk", mustHex(t, sourcesBootWIMDevice), `ramdisk=[boot]\sources\boot.wim,` + RamdiskOptionsGUID},
		{"boot", mustHex(t, bootDeviceHex), "boot"},
		{"per-client ramdisk", wantRamdiskDevice(t, `\Boot\x64\Images\Ünï.wim`), `ramdisk=[boot]\Boot\x64\Images\Ünï.wim,` + RamdiskOptionsGUID},
	} {
		got, err := DescribeDevice(tc.dev)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	ref := mustHex(t, sourcesBootWIMDevice)
	for _, bad := range [][]byte{nil, ref[:31], ref[:100], append(slices.Clone(ref), 0)} {
		if s, err := DescribeDevice(bad); err == nil {
			t.Errorf("%d bytes: accepted as %q", len(bad), s)
		}
	}
}

func FuzzDescribeDevice(f *testing.F) {
	f.Add(mustHex(f, sourcesBootWIMDevice))
	f.Add(mustHex(f, bootDeviceHex))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DescribeDevice(b)
		if err == nil && s == "" {
			t.Fatal("empty description without an error")
		}
	})
}

// TestRamdiskBCDBytesStable pins the bytes of two stores: servers hand
// them out with an ETag, so a change of layout between versions must be
// a decision (update the hashes), not an accident. The content itself is
// checked by the hivex tests above.
func TestRamdiskBCDBytesStable(t *testing.T) {
	for _, tc := range []struct {
		cfg  RamdiskBoot
		want string
	}{
		{RamdiskBoot{Firmware: BIOS, WIMPath: `\sources\boot.wim`, SDIPath: `\boot\boot.sdi`}, bcdGoldenBIOS},
		{RamdiskBoot{Firmware: UEFI, WIMPath: `\Boot\x64\Images\boot.wim`, SDIPath: `\Boot\boot.sdi`, TFTPBlockSize: 16384, TFTPWindowSize: 8}, bcdGoldenUEFI},
	} {
		var buf bytes.Buffer
		if err := WriteRamdiskBCD(&buf, tc.cfg); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(buf.Bytes())); got != tc.want {
			t.Errorf("%v store: sha256 %s, want %s (layout changed: update the hash if intended)", tc.cfg.Firmware, got, tc.want)
		}
	}
}
