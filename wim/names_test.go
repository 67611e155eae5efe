package wim

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// Hostile-name WIMs (testdata/hostile-names): a tree captured by wimlib-imagex with
// placeholder names, which are then rewritten in the uncompressed metadata resource (same
// UTF-16 length, SHA-1 in the blob table fixed up) into names no capture can produce.
var hostileNames = map[string][][2]string{
	"dot":    {{"\u2460", "."}},
	"dotdot": {{"\u2465\u2466", ".."}},
	"nul":    {{"\u2463\u2463\u2463", "\x00zz"}},
	"slash":  {{"\u2462", "/"}},
	"all":    {{"\u2460", "."}, {"\u2465\u2466", ".."}, {"\u2463\u2463\u2463", "\x00zz"}, {"\u2462", "/"}},
}

// wantSkipped is what Skipped() (and so pxewim wim's warnings) says for each, in wimlib-imagex's
// words; "slash" is ours (wimlib keeps the name, and skips it only when extracting).
var wantSkipped = map[string][]string{
	"dot":    {`Ignoring file named "." or ".." in directory "/"`},
	"dotdot": {`Ignoring file named "." or ".." in directory "/dir"`},
	"nul":    {`Ignoring filename with embedded null character in directory "/dir"`},
	"slash":  {`Ignoring filename containing embedded path separator in directory "/"`},
	"all": {`Ignoring file named "." or ".." in directory "/"`, `Ignoring file named "." or ".." in directory "/dir"`,
		`Ignoring filename with embedded null character in directory "/dir"`,
		`Ignoring filename containing embedded path separator in directory "/"`},
	"wimlib-tests/dotdot": {`Ignoring file named "." or ".." in directory "/"`},
	"wimlib-tests/duplicate_names": {
		`Ignoring duplicate file "/1" (the WIM image already contains a file at that path with the exact same name)`,
		`Ignoring duplicate file "/1" (the WIM image already contains a file at that path with the exact same name)`},
}

// TestGenerateHostileNameWIMs rewrites testdata/hostile-names (PXEWIM_GEN_HOSTILE=1 only; the
// files are committed).
func TestGenerateHostileNameWIMs(t *testing.T) {
	if os.Getenv("PXEWIM_GEN_HOSTILE") != "1" {
		t.Skip("set PXEWIM_GEN_HOSTILE=1 to regenerate testdata/hostile-names")
	}
	wimtest.NeedWimlib(t)
	src := filepath.Join(t.TempDir(), "src")
	for p, data := range map[string]string{
		"\u2460": "one\n", "dir/\u2465\u2466": "two\n", "a\u2462b": "three\n",
		"dir/n\u2463\u2463\u2463l": "four\n", "dir/ok": "ok\n", "keep.txt": "kept\n",
	} {
		p = filepath.Join(src, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Join(t.TempDir(), "base.wim")
	wimtest.Wimlib(t, "capture", src, base, "hostile-names", "--compress=none")
	raw, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join("testdata", "hostile-names"), 0o755)
	for name, subs := range hostileNames {
		b := patchMetadataNames(t, slices.Clone(raw), subs)
		if err := os.WriteFile(filepath.Join("testdata", "hostile-names", name+".wim"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// patchMetadataNames rewrites UTF-16 names in the (uncompressed) metadata resource of a
// one-image WIM and fixes its SHA-1 in the blob table.
func patchMetadataNames(t *testing.T, b []byte, subs [][2]string) []byte {
	u16 := func(s string) []byte {
		var out []byte
		for _, c := range utf16.Encode([]rune(s)) {
			out = binary.LittleEndian.AppendUint16(out, c)
		}
		return out
	}
	le := binary.LittleEndian
	bt := le.Uint64(b[0x30+8:])
	btSize := le.Uint64(b[0x30:]) & (1<<56 - 1)
	for p := bt; p+50 <= bt+btSize; p += 50 {
		if b[p+7]&2 == 0 { // not the metadata resource
			continue
		}
		off, size := le.Uint64(b[p+8:]), le.Uint64(b[p:])&(1<<56-1)
		md := b[off : off+size]
		for _, s := range subs {
			from, to := u16(s[0]), u16(s[1])
			if len(from) != len(to) || bytes.Count(md, from) != 1 {
				t.Fatalf("placeholder %q: %d matches, lengths %d/%d", s[0], bytes.Count(md, from), len(from), len(to))
			}
			i := bytes.Index(md, from)
			copy(md[i:], to)
		}
		sum := sha1.Sum(md)
		copy(b[p+30:], sum[:])
	}
	return b
}

// TestSkippedNamesAsWimlib: every ignored entry is reported in wimlib-imagex's words, the
// rest of the tree is intact, and (with wimlib-imagex installed) wimlib warns the same.
func TestSkippedNamesAsWimlib(t *testing.T) {
	for name, want := range wantSkipped {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "hostile-names", name+".wim")
			if strings.HasPrefix(name, "wimlib-tests/") {
				path = filepath.Join("testdata", name+".wim")
			}
			a, err := OpenFile(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			img, err := a.Image(1)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(slices.Values(img.Skipped()))
			if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("Skipped() = %q\nwant %q", got, want)
			}
			if !strings.HasPrefix(name, "wimlib-tests/") {
				for _, p := range []string{"dir/ok", "keep.txt"} {
					if _, err := img.Stat(p); err != nil {
						t.Errorf("%s: %v (the good entries must stay)", p, err)
					}
				}
			}
			if _, err := exec.LookPath("wimlib-imagex"); err != nil || name == "slash" || name == "all" {
				return // wimlib keeps names with '/' at parse time
			}
			out, _ := exec.Command("wimlib-imagex", "dir", path, "1").CombinedOutput()
			var warned []string
			for _, l := range strings.Split(string(out), "\n") {
				if w, ok := strings.CutPrefix(strings.TrimLeft(l, "\r"), "[WARNING] "); ok { // after a \r
					warned = append(warned, w)
				}
			}
			if !slices.Equal(slices.Sorted(slices.Values(warned)), got) {
				t.Errorf("wimlib-imagex warns %q, we say %q", warned, got)
			}
		})
	}
}

// TestHostileNamesApplyAsWimlib: applying the hostile-name WIMs gives the tree wimlib-imagex
// gives (it skips the same entries, "/a/b" at extraction rather than at parse time), and
// nothing lands outside the target.
func TestHostileNamesApplyAsWimlib(t *testing.T) {
	wimtest.NeedWimlib(t)
	for name := range hostileNames {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "hostile-names", name+".wim")
			out := t.TempDir()
			want, got := filepath.Join(out, "wimlib"), filepath.Join(out, "pxewim")
			wimtest.Wimlib(t, "apply", path, "1", want)
			a, err := OpenFile(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			img, err := a.Image(1)
			if err != nil {
				t.Fatal(err)
			}
			if err := img.Apply(t.Context(), got, nil); err != nil {
				t.Fatal(err)
			}
			wimtest.CompareTrees(t, want, got)
			if ents, _ := os.ReadDir(out); len(ents) != 2 {
				t.Errorf("apply wrote outside its target: %v", ents)
			}
		})
	}
}
