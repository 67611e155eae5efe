package storepath

import (
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/storepath/storepathtest"
)

// TestCleanHostile: the shared table (storepathtest.Hostile), which tftp, httpboot and boot
// check their own handling against.
func TestCleanHostile(t *testing.T) {
	for _, tc := range storepathtest.Hostile {
		got, err := Clean(tc.In)
		if tc.Refused() {
			if err == nil {
				t.Errorf("Clean(%.40q) = %q, want a refusal", tc.In, got)
			} else if !errors.Is(err, ErrInvalid) {
				t.Errorf("Clean(%.40q): error %v does not wrap ErrInvalid", tc.In, err)
			} else if len(err.Error()) > 200 {
				t.Errorf("Clean(%.40q): error of %d bytes", tc.In, len(err.Error()))
			}
			continue
		}
		if err != nil || got != tc.Clean {
			t.Errorf("Clean(%.40q) = %q, %v; want %q", tc.In, got, err, tc.Clean)
		}
		file, err := CleanFile(tc.In)
		if tc.Clean == "." {
			if err == nil {
				t.Errorf("CleanFile(%q) = %q, want a refusal of the root", tc.In, file)
			}
		} else if err != nil || file != tc.Clean {
			t.Errorf("CleanFile(%.40q) = %q, %v; want %q", tc.In, file, err, tc.Clean)
		}
	}
}

// TestCleanErrors: each refusal says why.
func TestCleanErrors(t *testing.T) {
	for in, why := range map[string]string{
		"../x":                     `".." element`,
		"a\x00b":                   "NUL byte",
		"a\nb":                     "control character U+000A",
		"\xff":                     "not valid UTF-8",
		strings.Repeat("a", 2000):  "2000 bytes, longer than 1024",
		"/":                        "", // accepted by Clean
		strings.Repeat("é", 40000): "80000 bytes",
	} {
		_, err := Clean(in)
		if why == "" {
			if err != nil {
				t.Errorf("Clean(%.20q): %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("Clean(%.20q) = %v, want an error saying %q", in, err, why)
		}
	}
	if _, err := CleanFile("/"); err == nil || !strings.Contains(err.Error(), "names no file") {
		t.Errorf("CleanFile(/) = %v, want names no file", err)
	}
}

// FuzzClean checks Clean's promises for any input: never a panic; a cleaned path is an
// fs.ValidPath with no "..", backslash or control character, no longer than MaxLen, that
// joined to a root stays under it; it keeps the input's elements in order (drops only empty and
// "." ones); cleaning it again changes nothing; an input with a ".." element is refused.
// Seeds: testdata/fuzz/FuzzClean.
func FuzzClean(f *testing.F) {
	for _, tc := range storepathtest.Hostile {
		f.Add(tc.In)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Clean(in)
		var elems []string
		dotdot := false
		for _, e := range strings.FieldsFunc(in, func(r rune) bool { return r == '/' || r == '\\' }) {
			dotdot = dotdot || e == ".."
			if e != "." {
				elems = append(elems, e)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Clean(%q): error %v does not wrap ErrInvalid", in, err)
			}
			return
		}
		if dotdot {
			t.Fatalf("Clean(%q) = %q: accepted a .. element", in, got)
		}
		if !fs.ValidPath(got) || len(got) > MaxLen || strings.ContainsFunc(got, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
			t.Fatalf("Clean(%q) = %q: not a clean path", in, got)
		}
		if j := path.Join("/srv/root", got); j != "/srv/root" && !strings.HasPrefix(j, "/srv/root/") {
			t.Fatalf("Clean(%q) = %q escapes the root: %q", in, got, j)
		}
		if want := strings.Join(elems, "/"); got != want && (got != "." || want != "") {
			t.Fatalf("Clean(%q) = %q, want the elements %q", in, got, want)
		}
		if again, err := Clean(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}
