package wimsynth

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

func TestOverlayPaths(t *testing.T) {
	long := strings.Repeat("x", maxNameUnits+1)
	tests := []struct {
		path  string
		elems []string // nil: must fail
	}{
		{"Windows/System32/startnet.cmd", []string{"Windows", "System32", "startnet.cmd"}},
		{`\Windows\System32\winpeshl.ini`, []string{"Windows", "System32", "winpeshl.ini"}},
		{"/unattend.xml", []string{"unattend.xml"}},
		{"日本語/ファイル", []string{"日本語", "ファイル"}},
		{"", nil},
		{"/", nil},
		{"a//b", nil},
		{"a/", nil},
		{"../etc/passwd", nil},
		{"a/../../b", nil},
		{"./a", nil},
		{"a/.", nil},
		{"a\x00b", nil},
		{"file.txt:stream", nil},
		{long, nil},
	}
	for _, tt := range tests {
		got, err := splitPath(tt.path)
		if tt.elems == nil {
			if err == nil || !errors.Is(err, ErrBadPath) {
				t.Errorf("splitPath(%.40q) = %q, %v; want ErrBadPath", tt.path, got, err)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tt.elems, "|") {
			t.Errorf("splitPath(%q) = %q, %v; want %q", tt.path, got, err, tt.elems)
		}
	}
}

func TestOverlayAddConflicts(t *testing.T) {
	tests := []struct {
		first, second string
	}{
		{"a/b.txt", "A/B.TXT"},
		{"a/b", "a/b/c"},
		{"a/b/c", "A/b"},
	}
	for _, tt := range tests {
		var o Overlay
		if err := o.AddBytes(tt.first, []byte("1")); err != nil {
			t.Fatal(err)
		}
		if err := o.AddBytes(tt.second, []byte("2")); !errors.Is(err, ErrBadPath) {
			t.Errorf("adding %q after %q: %v; want ErrBadPath", tt.second, tt.first, err)
		}
	}
	var o Overlay
	if err := o.Add("short", bytes.NewReader([]byte("abc")), 10); err == nil {
		t.Error("Add with a size past the reader's end succeeded")
	}
	if err := o.Add("neg", bytes.NewReader(nil), -1); err == nil {
		t.Error("Add with a negative size succeeded")
	}
	if o.Len() != 0 {
		t.Errorf("failed Adds left %d files", o.Len())
	}
}

func TestBuildConflicts(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	s := capture(t, dir, 3, []string{"--compress=xpress"}, false)
	a := openWIM(t, s.path)
	tests := []struct {
		path string
		want error
	}{
		{"Windows", ErrConflict},                         // a directory exists
		{"windows/system32", ErrConflict},                // case-insensitively too
		{"Windows/System32/startnet.cmd/x", ErrConflict}, // a file where a directory is needed
		{"links/rel", ErrConflict},                       // a symlink (reparse point)
		{"links/reldir/x", ErrConflict},                  // through a directory symlink
	}
	for _, tt := range tests {
		o := &Overlay{}
		if err := o.AddBytes(tt.path, []byte("x")); err != nil {
			t.Fatal(err)
		}
		_, err := Build(a.Archive, Options{Index: 1, Overlay: o})
		if !errors.Is(err, tt.want) {
			t.Errorf("overlay %q: %v; want %v", tt.path, err, tt.want)
		} else if !strings.Contains(err.Error(), tt.path) {
			t.Errorf("overlay %q: error %q does not name the path", tt.path, err)
		}
	}
	for _, idx := range []int{0, 2, -1} {
		if _, err := Build(a.Archive, Options{Index: idx}); !errors.Is(err, wim.ErrNoImage) {
			t.Errorf("index %d: %v; want ErrNoImage", idx, err)
		}
	}
}

func TestNeedsTranscode(t *testing.T) {
	wimtest.NeedWimlib(t)
	tests := []struct {
		name string
		args []string
		want bool
		why  string
	}{
		{"none", []string{"--compress=none"}, false, ""},
		{"xpress-32k", []string{"--compress=xpress"}, false, ""},
		{"lzx-32k", []string{"--compress=lzx"}, false, ""},
		{"xpress-4k", []string{"--compress=xpress", "--chunk-size=4096"}, true, "4096-byte chunks"},
		{"lzx-64k", []string{"--compress=lzx", "--chunk-size=65536"}, true, "65536-byte chunks"},
		{"lzms", []string{"--compress=lzms"}, true, "LZMS"},
		{"solid-lzx", []string{"--solid", "--compress=lzx", "--solid-compress=lzx"}, true, "solid"},
		{"pipable", []string{"--pipable", "--compress=lzx"}, true, "pipable"},
	}
	src := filepath.Join(t.TempDir(), "tree")
	writeFile(t, src, "Windows/System32/startnet.cmd", bytes.Repeat([]byte("wpeinit\r\n"), 5000))
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), tt.name+".wim")
		wimtest.Wimlib(t, append([]string{"capture", src, p}, tt.args...)...)
		a := openWIM(t, p)
		got, why := NeedsTranscode(a.Archive)
		if got != tt.want || !strings.Contains(why, tt.why) {
			t.Errorf("%s: NeedsTranscode = %v %q; want %v with %q", tt.name, got, why, tt.want, tt.why)
		}
	}
}

// fuzzSeed makes a small metadata resource by hand: root, a directory with a file and a named
// stream, an empty directory.
func fuzzSeed() []byte {
	times := make([]byte, 24)
	var h [sha1.Size]byte
	h[0] = 1
	root := newDentry("", attrDirectory, -1, times, [sha1.Size]byte{})
	dir := newDentry("Windows", attrDirectory, -1, times, [sha1.Size]byte{})
	file := newDentry("startnet.cmd", attrArchive, -1, times, h)
	file.setData(h)
	ads := newDentry("ads.txt", attrArchive, -1, times, [sha1.Size]byte{})
	named := make([]byte, align8(streamFixed+4))
	le.PutUint64(named, uint64(len(named)))
	copy(named[streamOffHash:], h[:])
	le.PutUint16(named[streamOffName:], 2)
	named[streamFixed] = 's'
	ads.streams = [][]byte{named}
	le.PutUint16(ads.raw[offNumStreams:], 1)
	ads.setData(h) // inserts the unnamed stream entry before the named one
	empty := newDentry("empty", attrDirectory, -1, times, [sha1.Size]byte{})
	empty.emptyList = true
	dir.children = []*dentry{file, ads}
	root.children = []*dentry{dir, empty}
	sec := make([]byte, 8)
	le.PutUint32(sec, 8)
	return (&tree{security: sec, root: root}).serialize()
}

// FuzzParseTree: hostile metadata never panics, and what parses re-serialises to a fixed point.
func FuzzParseTree(f *testing.F) {
	f.Add(fuzzSeed())
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := parseTree(b)
		if err != nil {
			return
		}
		out := tr.serialize()
		tr2, err := parseTree(out)
		if err != nil {
			t.Fatalf("re-parsing serialised tree: %v", err)
		}
		if !bytes.Equal(tr2.serialize(), out) {
			t.Fatal("serialisation is not a fixed point")
		}
		tr.refs()
	})
}

// TestETag: the ETag and bytes depend on the inputs only (a fresh Archive of the same file
// gives the same ones), and every input that changes the bytes changes the ETag.
func TestETag(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	s := capture(t, dir, 5, []string{"--compress=lzx"}, true)
	a1, a2 := openWIM(t, s.path), openWIM(t, s.path)
	overlay := func(content string) *Overlay {
		o := &Overlay{}
		if err := o.AddBytes("Windows/System32/startnet.cmd", []byte(content)); err != nil {
			t.Fatal(err)
		}
		return o
	}
	variants := []Options{
		{Index: 1},
		{Index: 2},
		{Index: 1, Uncompressed: true},
		{Index: 1, Overlay: overlay("a")},
		{Index: 1, Overlay: overlay("b")},
		{Index: 1, Overlay: overlay("b"), Uncompressed: true},
		{Index: 1, SourceTag: "mtime 2"},
	}
	seen := map[string]int{}
	for i, opts := range variants {
		f1, err := Build(a1.Archive, opts)
		if err != nil {
			t.Fatal(err)
		}
		f2, err := Build(a2.Archive, opts)
		if err != nil {
			t.Fatal(err)
		}
		if f1.ETag() != f2.ETag() {
			t.Errorf("variant %d: ETag differs between two opens of the same WIM", i)
		}
		b1, _ := io.ReadAll(io.NewSectionReader(f1, 0, f1.Size()))
		b2, _ := io.ReadAll(io.NewSectionReader(f2, 0, f2.Size()))
		if !bytes.Equal(b1, b2) {
			t.Errorf("variant %d: bytes differ between two opens of the same WIM", i)
		}
		if j, dup := seen[f1.ETag()]; dup {
			t.Errorf("variants %d and %d share ETag %s", j, i, f1.ETag())
		}
		seen[f1.ETag()] = i
		if !strings.HasPrefix(f1.ETag(), `"`) || !strings.HasSuffix(f1.ETag(), `"`) {
			t.Errorf("ETag %s is not quoted", f1.ETag())
		}
	}
}

// TestWimlibTestWIMs runs every feature over wimlib's own odd and hostile test WIMs: odd ones
// must give WIMs that wimlib verifies and applies like the source; broken ones must give an
// error or a WIM that reads back without panicking.
func TestWimlibTestWIMs(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := filepath.Join(wimtest.ModuleRoot(t), "wim", "testdata", "wimlib-tests") // copied from ../shared: the project never needs it
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("wimlib's test WIMs not found at %s", dir)
	}
	features := []struct {
		name    string
		overlay bool
		target  Transcode
	}{{"export", false, TranscodeOff}, {"inject", true, TranscodeOff}, {"transcode+inject", true, TranscodeUncompressed},
		{"xpress+inject", true, TranscodeXPRESS}}
	for _, name := range []string{"dotdot", "duplicate_names", "longpaths", "empty_dacl", "linux_xattrs_old"} {
		t.Run(name, func(t *testing.T) {
			s := source{path: filepath.Join(dir, name+".wim"), images: 1, odd: true}
			a := openWIM(t, s.path)
			for _, ft := range features {
				t.Run(ft.name, func(t *testing.T) {
					opts := Options{Index: 1, Transcode: ft.target}
					var files map[string][]byte
					if ft.overlay {
						opts.Overlay, files = testOverlay(t)
					}
					checkFeature(t, a.Archive, s, opts, files)
				})
			}
		})
	}
	for _, name := range []string{"cyclic", "corrupted_file_1", "corrupted_file_2"} {
		t.Run(name, func(t *testing.T) {
			a, err := wim.OpenFile(filepath.Join(dir, name+".wim"), nil)
			if err != nil {
				return // refused at open: fine
			}
			defer a.Close()
			for _, ft := range features {
				opts := Options{Index: 1, Transcode: ft.target}
				if ft.overlay {
					opts.Overlay, _ = testOverlay(t)
				}
				f, err := Build(a.Archive, opts)
				if err != nil {
					t.Logf("%s: %v", ft.name, err)
					continue
				}
				if name == "cyclic" {
					t.Errorf("%s of a cyclic tree succeeded", ft.name)
				}
				_, err = io.Copy(io.Discard, io.NewSectionReader(f, 0, f.Size()))
				t.Logf("%s: built %d bytes; reading them: %v", ft.name, f.Size(), err)
			}
		})
	}
}
