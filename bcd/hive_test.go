package bcd

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// patterned returns n bytes that differ from any shifted copy of
// themselves, so a misplaced segment shows up as a data mismatch.
func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func chain(depth int) *Key {
	root := &Key{Name: "deep"}
	k := root
	for i := range depth {
		c := &Key{Name: fmt.Sprintf("level%03d", i), Values: []Value{DWORD("depth", uint32(i))}}
		k.Subkeys = []*Key{c}
		k = c
	}
	return root
}

func wide(n int) *Key {
	root := &Key{Name: "wide"}
	for i := range n {
		// Mixed case and a shuffled order: the writer must sort them.
		name := fmt.Sprintf("Key%05d", (i*7919)%n)
		if i%3 == 0 {
			name = strings.ToLower(name)
		}
		root.Subkeys = append(root.Subkeys, &Key{Name: name})
	}
	return root
}

func hiveShapes() []struct {
	name string
	root *Key
} {
	return []struct {
		name string
		root *Key
	}{
		{"empty root", &Key{}},
		{"named root only", &Key{Name: "ROOT"}},
		{"every value type", &Key{Name: "types", Values: []Value{
			{Name: "none", Type: RegNone},
			String("sz", "hello, world"),
			ExpandString("expand", `%SystemRoot%\system32`),
			Binary("binary", []byte{1, 2, 3, 4, 5, 6, 7}),
			DWORD("dword", 0xDEADBEEF),
			{Name: "dword be", Type: RegDWORDBigEndian, Data: []byte{1, 2, 3, 4}},
			{Name: "link", Type: RegLink, Data: utf16le(`\Registry\Machine\Software`)},
			MultiString("multi", []string{"one", "two", "three"}),
			{Name: "resource list", Type: RegResourceList, Data: patterned(40)},
			QWORD("qword", 0x0123456789ABCDEF),
			{Name: "odd type", Type: 0x12345678, Data: []byte("raw")},
			{Name: "", Type: RegSZ, Data: utf16z("default value")},
		}}},
		{"data size boundaries", &Key{Name: "sizes", Values: []Value{
			Binary("empty", nil),
			Binary("one", []byte{0xAB}),
			Binary("four", []byte{1, 2, 3, 4}),
			Binary("five", []byte{1, 2, 3, 4, 5}),
			Binary("4064", patterned(4064)),
			Binary("4065", patterned(4065)),
			Binary("16344", patterned(16344)),
			Binary("16345", patterned(16345)),
			Binary("two segments exactly", patterned(2*16344)),
			Binary("big 100000", patterned(100000)),
			String("empty string", ""),
			MultiString("empty multi", nil),
		}}},
		{"deep keys", chain(200)},
		{"many subkeys, ri index", wide(1234)},
		{"one full leaf", wide(500)},
		{"long names", &Key{Name: strings.Repeat("r", 255), Subkeys: []*Key{
			{Name: strings.Repeat("k", 255), Values: []Value{String(strings.Repeat("v", 16383), "long value name")}},
		}}},
		{"non-ASCII names", &Key{Name: "名前", Subkeys: []*Key{
			{Name: "Ünïcödé latin-1", Values: []Value{String("ÄÖÜ", "latin-1 value name")}},
			{Name: "日本語", Values: []Value{DWORD("値", 1)}},
			{Name: "emoji 😀 outside the BMP", Values: []Value{String("😀", "surrogate pair")}},
			{Name: "Ελληνικά", Class: "κλάση"},
			{Name: "ß"}, {Name: "straße"},
		}}},
		{"case-insensitive sort order", &Key{Name: "order", Subkeys: []*Key{
			{Name: "b"}, {Name: "A"}, {Name: "C"}, {Name: "a_"}, {Name: "_z"}, {Name: "B2"}, {Name: "é"}, {Name: "É1"},
		}}},
		{"class names and values everywhere", &Key{Name: "cls", Class: "root class", Values: []Value{DWORD("x", 1)},
			Subkeys: []*Key{{Name: "child", Class: strings.Repeat("c", 1000), Values: []Value{String("y", "z")}}}}},
	}
}

func shape(t testing.TB, name string) *Key {
	for _, s := range hiveShapes() {
		if s.name == name {
			return s.root
		}
	}
	t.Fatalf("no shape %q", name)
	return nil
}

func writeHiveBytes(t testing.TB, root *Key, opts HiveOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHive(&buf, root, opts); err != nil {
		t.Fatalf("WriteHive: %v", err)
	}
	return buf.Bytes()
}

// sortTree returns a copy of k with subkeys in the order a hive lists them.
func sortTree(k *Key) *Key {
	c := *k
	c.Subkeys = nil
	for _, sk := range sortedSubkeys(k.Subkeys) {
		c.Subkeys = append(c.Subkeys, sortTree(sk))
	}
	return &c
}

// equalTrees compares two trees exactly, including subkey order and value
// order, treating nil and empty data alike.
func equalTrees(a, b *Key) error {
	if a.Name != b.Name || a.Class != b.Class {
		return fmt.Errorf("key %q/%q: names or classes differ (%q, %q)", a.Name, b.Name, a.Class, b.Class)
	}
	if len(a.Values) != len(b.Values) {
		return fmt.Errorf("key %q: %d values, want %d", a.Name, len(b.Values), len(a.Values))
	}
	for i := range a.Values {
		va, vb := a.Values[i], b.Values[i]
		if va.Name != vb.Name || va.Type != vb.Type || !bytes.Equal(va.Data, vb.Data) {
			return fmt.Errorf("key %q: value %d differs: %q/%d/%d bytes vs %q/%d/%d bytes",
				a.Name, i, va.Name, va.Type, len(va.Data), vb.Name, vb.Type, len(vb.Data))
		}
	}
	if len(a.Subkeys) != len(b.Subkeys) {
		return fmt.Errorf("key %q: %d subkeys, want %d", a.Name, len(b.Subkeys), len(a.Subkeys))
	}
	for i := range a.Subkeys {
		if err := equalTrees(a.Subkeys[i], b.Subkeys[i]); err != nil {
			return err
		}
	}
	return nil
}

func TestWriteHiveReadBackByHivex(t *testing.T) {
	requireTool(t, "hivexregedit")
	for _, tc := range hiveShapes() {
		for _, minor := range []uint32{3, 5} {
			t.Run(fmt.Sprintf("%s/1.%d", tc.name, minor), func(t *testing.T) {
				data := writeHiveBytes(t, tc.root, HiveOptions{MinorVersion: minor})
				file := writeTemp(t, "hive", data)
				compareDumps(t, dumpTree(tc.root), hivexExport(t, file))
			})
		}
	}
}

func TestWriteHiveReadBackByOwnReader(t *testing.T) {
	for _, tc := range hiveShapes() {
		for _, minor := range []uint32{3, 4, 5, 6} {
			t.Run(fmt.Sprintf("%s/1.%d", tc.name, minor), func(t *testing.T) {
				data := writeHiveBytes(t, tc.root, HiveOptions{MinorVersion: minor})
				got, err := ReadHive(data)
				if err != nil {
					t.Fatalf("ReadHive: %v", err)
				}
				if err := equalTrees(sortTree(tc.root), got); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestHivexmlListsSubkeysSorted checks, through hivexml (which walks the
// index in stored order, unlike hivexsh's ls, which sorts), that subkeys
// are stored in Windows' order: by upper-cased UTF-16 units, so '_'
// sorts after 'Z', also across an ri index. hivexsh must see every name.
func TestHivexmlListsSubkeysSorted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		root  *Key
		minor uint32
	}{
		{"lf leaf", shape(t, "case-insensitive sort order"), 3},
		{"lh leaf", shape(t, "case-insensitive sort order"), 5},
		{"ri over lh", wide(1234), 5},
		{"ri over lf", wide(1234), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeTemp(t, "hive", writeHiveBytes(t, tc.root, HiveOptions{MinorVersion: tc.minor}))
			var want []string
			for _, k := range sortedSubkeys(tc.root.Subkeys) {
				want = append(want, k.Name)
			}
			got := hivexmlNodeNames(t, file)[1:] // after the root
			if !slices.Equal(got, want) {
				t.Fatalf("hivexml order: %d names, first %q; want %d, first %q", len(got), got[:min(3, len(got))], len(want), want[:3])
			}
			listed := strings.Split(strings.TrimRight(hivexsh(t, file, "ls\n"), "\n"), "\n")
			slices.Sort(listed)
			slices.Sort(want)
			if !slices.Equal(listed, want) {
				t.Fatalf("hivexsh ls lists %d names, want %d", len(listed), len(want))
			}
		})
	}
	if !slices.IsSortedFunc([]string{"A", "a_", "b", "B2", "C", "_z", "é", "É1"}, func(a, b string) int {
		return slices.Compare(upcaseUnits(a), upcaseUnits(b))
	}) {
		t.Fatal("upcaseUnits order is not Windows' order")
	}
}

func TestHivexgetReadsValues(t *testing.T) {
	root := &Key{Name: "r", Subkeys: []*Key{{Name: "Sub", Subkeys: []*Key{{Name: "Deeper", Values: []Value{
		String("greeting", "Grüße, 世界"),
		DWORD("answer", 42),
		MultiString("list", []string{"a", "bc"}),
	}}}}}}
	file := writeTemp(t, "hive", writeHiveBytes(t, root, HiveOptions{}))
	for _, tc := range []struct{ value, want string }{
		{"greeting", "Grüße, 世界"},
		{"answer", "42"},
		{"list", "a\nbc"},
	} {
		if got := hivexget(t, file, `\Sub\Deeper`, tc.value); got != tc.want {
			t.Errorf("hivexget %s = %q, want %q", tc.value, got, tc.want)
		}
	}
}

// TestHiveLayout checks format facts hivex does not verify: checksum,
// versions, hbin sizes and the chosen index and big-data records.
func TestHiveLayout(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	root := &Key{Name: "r", Values: []Value{Binary("big", patterned(40000))}, Subkeys: []*Key{{Name: "a"}, {Name: "b"}}}
	for _, tc := range []struct {
		minor    uint32
		index    string
		bigCells string
	}{{3, "lf", ""}, {4, "lf", "db"}, {5, "lh", "db"}, {6, "lh", "db"}} {
		data := writeHiveBytes(t, root, HiveOptions{MinorVersion: tc.minor, ModTime: ts, FileName: `\Boot\BCD`})
		if string(data[:4]) != "regf" || le.Uint32(data[0x18:]) != tc.minor || le.Uint32(data[0x14:]) != 1 {
			t.Fatalf("1.%d: bad signature or version", tc.minor)
		}
		var sum uint32
		for i := 0; i < 0x1FC; i += 4 {
			sum ^= le.Uint32(data[i:])
		}
		if sum != le.Uint32(data[0x1FC:]) {
			t.Errorf("1.%d: checksum %#x, computed %#x", tc.minor, le.Uint32(data[0x1FC:]), sum)
		}
		if want := filetime(ts); le.Uint64(data[0x0C:]) != want || want != 133594528890000000 {
			t.Errorf("1.%d: timestamp %d, want %d", tc.minor, le.Uint64(data[0x0C:]), want)
		}
		if got := decodeName(data[0x30:0x30+2*len(`\Boot\BCD`)], false); got != `\Boot\BCD` || data[0x30+18] != 0 {
			t.Errorf("1.%d: file name %q", tc.minor, got)
		}
		if len(data)%hbinUnit != 0 || int(le.Uint32(data[0x28:])) != len(data)-baseBlockSize {
			t.Errorf("1.%d: file size %d, hbins size %d", tc.minor, len(data), le.Uint32(data[0x28:]))
		}
		sigs := cellSignatures(t, data)
		if !sigs[tc.index] || sigs[map[string]string{"lf": "lh", "lh": "lf"}[tc.index]] {
			t.Errorf("1.%d: want %s index cells, found %v", tc.minor, tc.index, sigs)
		}
		if sigs["db"] != (tc.bigCells == "db") {
			t.Errorf("1.%d: db record present = %v", tc.minor, sigs["db"])
		}
		if !sigs["sk"] || !sigs["nk"] || !sigs["vk"] {
			t.Errorf("1.%d: missing sk/nk/vk cells: %v", tc.minor, sigs)
		}
	}
}

// cellSignatures walks every hbin and cell and returns the two-letter
// signatures of the allocated cells, failing on any broken bin or cell.
func cellSignatures(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	sigs := map[string]bool{}
	bins := data[baseBlockSize:]
	for off := 0; off < len(bins); {
		if string(bins[off:off+4]) != "hbin" || int(le.Uint32(bins[off+4:])) != off {
			t.Fatalf("hbin at %#x: bad header", off)
		}
		size := int(le.Uint32(bins[off+8:]))
		if size%hbinUnit != 0 || size == 0 {
			t.Fatalf("hbin at %#x: size %d", off, size)
		}
		for c := off + hbinHeaderSize; c < off+size; {
			n := int(int32(le.Uint32(bins[c:])))
			if n < 0 {
				n = -n
				sigs[string(bins[c+4:c+6])] = true
			}
			if n < 8 || n%8 != 0 || c+n > off+size {
				t.Fatalf("cell at %#x: size %d crosses its bin", c, n)
			}
			c += n
		}
		off += size
	}
	return sigs
}

func TestWriteHiveDeterministic(t *testing.T) {
	for _, tc := range hiveShapes() {
		a := writeHiveBytes(t, tc.root, HiveOptions{MinorVersion: 5})
		b := writeHiveBytes(t, tc.root, HiveOptions{MinorVersion: 5})
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two writes differ", tc.name)
		}
	}
	root := shape(t, "every value type")
	a := writeHiveBytes(t, root, HiveOptions{ModTime: time.Unix(1, 0)})
	b := writeHiveBytes(t, root, HiveOptions{ModTime: time.Unix(2, 0)})
	if bytes.Equal(a, b) {
		t.Error("different ModTime gave the same bytes: timestamps are not written")
	}
}

func TestWriteHiveRejectsBadTrees(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	deep := chain(MaxDepth + 1)
	for _, tc := range []struct {
		name string
		root *Key
		want string
	}{
		{"nil root", nil, "nil root"},
		{"nil subkey", &Key{Subkeys: []*Key{{Name: "a"}, nil}}, "subkey 1 is nil"},
		{"key name too long", &Key{Subkeys: []*Key{{Name: long(256)}}}, "limit 255"},
		{"root name too long", &Key{Name: long(300)}, "limit 255"},
		{"key name too long in UTF-16", &Key{Subkeys: []*Key{{Name: strings.Repeat("😀", 128)}}}, "256 UTF-16 units"},
		{"value name too long", &Key{Values: []Value{String(long(16384), "")}}, "limit 16383"},
		{"empty subkey name", &Key{Subkeys: []*Key{{}}}, "empty subkey name"},
		{"backslash in name", &Key{Subkeys: []*Key{{Name: `a\b`}}}, "backslash"},
		{"NUL in name", &Key{Subkeys: []*Key{{Name: "a\x00b"}}}, "NUL"},
		{"invalid UTF-8", &Key{Values: []Value{DWORD("\xff", 1)}}, "UTF-8"},
		{"duplicate subkeys differing in case", &Key{Subkeys: []*Key{{Name: "Objects"}, {Name: "OBJECTS"}}}, "duplicate subkey"},
		{"duplicate values", &Key{Values: []Value{DWORD("Type", 1), DWORD("type", 2)}}, "duplicate value"},
		{"value too big", &Key{Values: []Value{Binary("huge", make([]byte, MaxValueSize+1))}}, "limit"},
		{"too deep", deep, "deeper than"},
		{"class too long", &Key{Class: long(MaxClassLen)}, "class name"},
		{"hive too big", hugeTree(), "larger than"},
		{"value too big for format 1.3", &Key{Values: []Value{Binary("big", make([]byte, MaxValueSize13+1))}}, "limit 1048576"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteHive(&buf, tc.root, HiveOptions{MinorVersion: 3})
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidTree) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want ErrInvalidTree mentioning %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written despite the error", buf.Len())
			}
		})
	}
	big := &Key{Values: []Value{Binary("big", patterned(2<<20))}}
	if err := WriteHive(&bytes.Buffer{}, big, HiveOptions{MinorVersion: 3}); err == nil {
		t.Error("format 1.3 accepted a 2 MiB value")
	}
	data := writeHiveBytes(t, big, HiveOptions{MinorVersion: 5})
	if back, err := ReadHive(data); err != nil || !bytes.Equal(back.Values[0].Data, big.Values[0].Data) {
		t.Errorf("format 1.5, 2 MiB value: %v", err)
	}
	for _, minor := range []uint32{1, 2, 7} {
		if err := WriteHive(&bytes.Buffer{}, &Key{}, HiveOptions{MinorVersion: minor}); err == nil {
			t.Errorf("minor version %d accepted", minor)
		}
	}
}

// hugeTree shares one 4 MiB buffer among enough values to pass
// MaxHiveSize without allocating it.
func hugeTree() *Key {
	data := make([]byte, MaxValueSize)
	k := &Key{}
	for i := range MaxHiveSize/MaxValueSize + 1 {
		k.Values = append(k.Values, Value{Name: fmt.Sprint(i), Type: RegBinary, Data: data})
	}
	return k
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteHiveReportsWriteErrors(t *testing.T) {
	err := WriteHive(failingWriter{}, &Key{Name: "r"}, HiveOptions{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v, want the writer's error wrapped", err)
	}
}

// randomTree builds a tree from a seeded generator: names from a pool
// with case variants and non-ASCII characters, values of random types
// and sizes (sometimes past one big-data segment).
func randomTree(rng *rand.Rand, depth int) *Key {
	pool := []string{"a", "B", "Objects", "Elements", "Ünï", "日本", "😀x", "key with spaces", "12000004", "z"}
	k := &Key{Name: pool[rng.IntN(len(pool))] + fmt.Sprint(rng.IntN(1000))}
	for i := range rng.IntN(5) {
		n := rng.IntN(64)
		if rng.IntN(10) == 0 {
			n = rng.IntN(50000)
		}
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		k.Values = append(k.Values, Value{Name: fmt.Sprintf("%s%d", pool[rng.IntN(len(pool))], i), Type: uint32(rng.IntN(12)), Data: data})
	}
	if depth > 0 {
		seen := map[string]bool{}
		for range rng.IntN(6) {
			c := randomTree(rng, depth-1)
			if !seen[upcaseName(c.Name)] {
				seen[upcaseName(c.Name)] = true
				k.Subkeys = append(k.Subkeys, c)
			}
		}
	}
	return k
}

// TestRandomTreesThroughHivex is the seeded subset of the fuzz target
// that goes through the independent reader.
func TestRandomTreesThroughHivex(t *testing.T) {
	requireTool(t, "hivexregedit")
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 42))
		root := randomTree(rng, 3)
		minor := []uint32{3, 5}[seed%2]
		data := writeHiveBytes(t, root, HiveOptions{MinorVersion: minor})
		file := writeTemp(t, "hive", data)
		compareDumps(t, dumpTree(root), hivexExport(t, file))
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
}

func ExampleWriteHive() {
	root := &Key{Name: "ROOT", Subkeys: []*Key{{
		Name:   "Settings",
		Values: []Value{String("Name", "pxewim"), DWORD("Port", 69), MultiString("Paths", []string{`\Boot`, `\EFI`})},
	}}}
	var buf bytes.Buffer
	if err := WriteHive(&buf, root, HiveOptions{ModTime: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		fmt.Println(err)
		return
	}
	back, err := ReadHive(buf.Bytes())
	fmt.Println(err, buf.Len(), back.Subkeys[0].Name, len(back.Subkeys[0].Values))
	// Output: <nil> 8192 Settings 3
}

// TestSecurityCell decodes the shared sk cell: a self-relative
// descriptor whose owner, group and ACEs are where its offsets say, and
// a reference count equal to the number of keys.
func TestSecurityCell(t *testing.T) {
	root := &Key{Name: "r", Subkeys: []*Key{{Name: "a", Subkeys: []*Key{{Name: "b"}}}, {Name: "c"}}}
	data := writeHiveBytes(t, root, HiveOptions{})
	bins := data[baseBlockSize:]
	nk := bins[0x20+4:]
	skOff := le.Uint32(nk[0x2C:])
	sk := bins[skOff+4:]
	if string(sk[:2]) != "sk" || le.Uint32(sk[4:]) != skOff || le.Uint32(sk[8:]) != skOff {
		t.Fatalf("sk cell at %#x: bad signature or links", skOff)
	}
	if refs := le.Uint32(sk[0x0C:]); refs != 4 {
		t.Errorf("sk reference count %d, want 4 keys", refs)
	}
	sd := sk[0x14 : 0x14+le.Uint32(sk[0x10:])]
	sidAt := func(off uint32) string {
		s := sd[off:]
		str := fmt.Sprintf("S-%d-%d", s[0], s[7])
		for i := range int(s[1]) {
			str += fmt.Sprintf("-%d", le.Uint32(s[8+4*i:]))
		}
		return str
	}
	if sd[0] != 1 || le.Uint16(sd[2:]) != 0x8004 {
		t.Fatalf("descriptor revision %d control %#x", sd[0], le.Uint16(sd[2:]))
	}
	if o, g := sidAt(le.Uint32(sd[4:])), sidAt(le.Uint32(sd[8:])); o != "S-1-5-32-544" || g != "S-1-5-18" {
		t.Errorf("owner %s group %s", o, g)
	}
	acl := sd[le.Uint32(sd[16:]):]
	if acl[0] != 2 || le.Uint16(acl[4:]) != 3 {
		t.Fatalf("ACL revision %d with %d ACEs", acl[0], le.Uint16(acl[4:]))
	}
	var got []string
	for i, off := 0, 8; i < 3; i++ {
		ace := acl[off:]
		got = append(got, fmt.Sprintf("%#x:%s", le.Uint32(ace[4:]), sidAt(uint32(len(sd)-len(ace)+8))))
		off += int(le.Uint16(ace[2:]))
	}
	want := []string{"0xf003f:S-1-5-32-544", "0xf003f:S-1-5-18", "0x20019:S-1-1-0"}
	if !slices.Equal(got, want) {
		t.Errorf("ACEs %q, want %q", got, want)
	}
	if end := int(le.Uint16(acl[2:])); end+int(le.Uint32(sd[16:])) > int(le.Uint32(sd[4:])) {
		t.Errorf("ACL (%d bytes) overlaps the owner SID", end)
	}
}
