package iso

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pxewim/pxewim/internal/fslink"
)

// linkSource is a rescue-ISO-like tree with symbolic links of every kind.
func linkSource(t *testing.T, bad bool) (src string, kernel []byte) {
	dir := t.TempDir()
	src = filepath.Join(dir, "src")
	kernel = randBytes(77, 300_000)
	writeFile(t, filepath.Join(src, "boot/vmlinuz-6.1"), kernel)
	writeFile(t, filepath.Join(src, "usr/lib/os-release"), []byte("ID=test\n"))
	writeFile(t, filepath.Join(dir, "host-secret"), []byte("host secret\n"))
	links := map[string]string{
		"boot/vmlinuz":    "vmlinuz-6.1",
		"vmlinuz":         "boot/vmlinuz",
		"vmlinuz.abs":     "/boot/vmlinuz-6.1",
		"etc/os-release":  "../usr/lib/os-release",
		"bootdir":         "boot",
		"a/b/c/up":        "../../../boot/vmlinuz",
		"chain1":          "chain2",
		"chain2":          "/vmlinuz",
		"boot/grub/probe": "../../bootdir/../etc/os-release",
	}
	if bad {
		for k, v := range map[string]string{
			"loop1": "loop2", "loop2": "loop1", "self": "self",
			"escape": "../../host-secret", "escape.abs": "/../host-secret", "dangling": "nothing/here",
		} {
			links[k] = v
		}
	}
	for name, target := range links {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return src, kernel
}

// TestISOLinks: Rock Ridge symbolic links written by genisoimage and xorriso (alone, with
// Joliet, and with genisoimage's UDF tree, which records them as empty files) resolve inside
// the image for Open, OpenFile, ReadFile, Stat and http.ServeContent; loops, escapes and
// dangling links fail with clear errors; Lstat, ReadLink and ReadDir see the links.
func TestISOLinks(t *testing.T) {
	src, kernel := linkSource(t, true)
	osRelease := []byte("ID=test\n")
	for _, c := range []struct {
		name, tool string
		args       []string
		format     string
	}{
		{"genisoimage-R", "genisoimage", []string{"-quiet", "-R"}, "iso9660"},
		{"genisoimage-R-J", "genisoimage", []string{"-quiet", "-R", "-J"}, "iso9660"},
		{"genisoimage-R-J-udf", "genisoimage", []string{"-quiet", "-R", "-J", "-udf"}, "udf 1.02"},
		{"xorriso-R-J", "xorriso", []string{"-as", "mkisofs", "-quiet", "-R", "-J"}, "iso9660"},
	} {
		t.Run(c.name, func(t *testing.T) {
			needTool(t, c.tool, c.tool)
			out := filepath.Join(t.TempDir(), "links.iso")
			run(t, c.tool, append(c.args, "-o", out, src)...)
			fsys := openImage(t, out)
			if fsys.Format() != c.format {
				t.Errorf("Format() = %q, want %q", fsys.Format(), c.format)
			}
			for name, want := range map[string][]byte{
				"boot/vmlinuz": kernel, "vmlinuz": kernel, "VMLINUZ.ABS": kernel, "etc/os-release": osRelease,
				"bootdir/vmlinuz-6.1": kernel, "bootdir/vmlinuz": kernel, "a/b/c/up": kernel, "chain1": kernel,
				"boot/grub/probe": osRelease,
			} {
				got, err := fs.ReadFile(fsys, name)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("ReadFile(%q) = %d bytes, %v; want %d bytes", name, len(got), err, len(want))
					continue
				}
				f, err := fsys.OpenFile(name)
				if err != nil {
					t.Fatalf("OpenFile(%q): %v", name, err)
				}
				if f.Size() != int64(len(want)) {
					t.Errorf("OpenFile(%q).Size() = %d", name, f.Size())
				}
				f.Close()
				if fi, err := fsys.Stat(name); err != nil || !fi.Mode().IsRegular() || fi.Size() != int64(len(want)) {
					t.Errorf("Stat(%q) = %v, %v", name, fi, err)
				}
			}
			// What HTTP serves: the target's bytes, ranges included.
			f, err := fsys.Open("vmlinuz")
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/vmlinuz", nil)
			req.Header.Set("Range", "bytes=1000-1999")
			http.ServeContent(rec, req, "vmlinuz", fi(t, f).ModTime(), f.(io.ReadSeeker))
			f.Close()
			if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), kernel[1000:2000]) {
				t.Errorf("ServeContent through a link: %d, %d bytes", rec.Code, rec.Body.Len())
			}
			if l, err := fsys.Lstat("vmlinuz"); err != nil || l.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("Lstat(vmlinuz) = %v, %v; want the link", l, err)
			}
			if target, err := fsys.ReadLink("vmlinuz.abs"); err != nil || target != "/boot/vmlinuz-6.1" {
				t.Errorf("ReadLink(vmlinuz.abs) = %q, %v", target, err)
			}
			ents, err := fsys.ReadDir("bootdir")
			if err != nil || len(ents) != 3 {
				t.Errorf("ReadDir(bootdir) = %v, %v", ents, err)
			}
			for _, e := range ents {
				if e.Name() == "vmlinuz" && e.Type() != fs.ModeSymlink {
					t.Errorf("ReadDir entry vmlinuz has type %v", e.Type())
				}
			}
			for name, want := range map[string]error{
				"loop1": fslink.ErrLoop, "self": fslink.ErrLoop, "escape": fslink.ErrEscape,
				"escape.abs": fslink.ErrEscape, "dangling": fs.ErrNotExist, "loop1/x": fslink.ErrLoop,
			} {
				_, err := fsys.Open(name)
				if !errors.Is(err, want) {
					t.Errorf("Open(%q) = %v, want %v", name, err, want)
				}
				if err != nil && strings.Contains(err.Error(), "host secret") {
					t.Errorf("Open(%q) leaked host data", name)
				}
			}
		})
	}
}

func fi(t *testing.T, f fs.File) fs.FileInfo {
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestISOLinksFSTest: an image whose links all resolve passes testing/fstest (Stat and Open
// follow links, Lstat and ReadDir do not).
func TestISOLinksFSTest(t *testing.T) {
	needTool(t, "genisoimage", "genisoimage")
	src, _ := linkSource(t, false)
	for _, args := range [][]string{{"-R"}, {"-R", "-J", "-udf"}} {
		out := filepath.Join(t.TempDir(), "links.iso")
		run(t, "genisoimage", append(append([]string{"-quiet"}, args...), "-o", out, src)...)
		if err := fstest.TestFS(openImage(t, out), "boot/vmlinuz-6.1", "boot/vmlinuz", "vmlinuz", "bootdir"); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// udfPath encodes ECMA-167 path components: "/" first for the root, ".." and "." as parent
// and current, names as 8-bit OSTA.
func udfPath(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		switch p {
		case "/":
			b = append(b, 2, 0, 0, 0)
		case "..":
			b = append(b, 3, 0, 0, 0)
		case ".":
			b = append(b, 4, 0, 0, 0)
		default:
			n := name8(p)
			b = append(append(b, 5, byte(len(n)), 0, 0), n...)
		}
	}
	return b
}

// TestUDFSymlinks: UDF symlink file entries (type 12, path components) resolve inside the
// image; the hand-built UDF 2.50 image has four of its files turned into links.
func TestUDFSymlinks(t *testing.T) {
	u := newUDFImage()
	link := func(blk uint32, data []byte) {
		b := u.mblk(int(blk))
		clear(b)
		entry(b, blk, true, fileTypeSymlink, adEmbedded, uint64(len(data)), data)
	}
	link(6, udfPath("hello.txt"))                           // inline.txt -> hello.txt
	link(9, append(udfPath("/", "Sourcés_日本"), 5, 0, 0, 0)) // ext.bin -> an empty name: invalid
	link(7, udfPath("sparse.bin"))                          // sparse.bin -> itself
	link(8, udfPath("..", "..", "etc", "passwd"))           // frag.bin -> above the root
	fsys, err := Open(bytes.NewReader(u.b), int64(len(u.b)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(fsys, "inline.txt"); err != nil || !bytes.Equal(got, hHello) {
		t.Errorf("ReadFile(inline.txt) = %q, %v; want %q", got, err, hHello)
	}
	if target, err := fsys.ReadLink("inline.txt"); err != nil || target != "hello.txt" {
		t.Errorf("ReadLink(inline.txt) = %q, %v", target, err)
	}
	if _, err := fsys.Open("sparse.bin"); !errors.Is(err, fslink.ErrLoop) {
		t.Errorf("Open(sparse.bin) = %v, want a loop", err)
	}
	if _, err := fsys.Open("frag.bin"); !errors.Is(err, fslink.ErrEscape) {
		t.Errorf("Open(frag.bin) = %v, want an escape", err)
	}
	if _, err := fsys.Open("ext.bin"); err == nil {
		t.Errorf("Open(ext.bin) with an empty path component succeeded")
	}
	// An absolute link into the 16-bit-named subdirectory.
	deep := udfPath("/")
	n := name16("Sourcés_日本")
	deep = append(append(deep, 5, byte(len(n)), 0, 0), n...)
	n = name16("Dëep_Ωmega.TXT")
	deep = append(append(deep, 5, byte(len(n)), 0, 0), n...)
	link(6, deep)
	fsys, err = Open(bytes.NewReader(u.b), int64(len(u.b)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(fsys, "inline.txt"); err != nil || !bytes.Equal(got, hDeep) {
		t.Errorf("ReadFile(inline.txt -> /Sourcés_日本/Dëep_Ωmega.TXT) = %q, %v", got, err)
	}
}

// FuzzLinkTargets: any Rock Ridge SL component records and UDF path components decode to a
// target or an error, never a panic; a decoded target has no NUL.
func FuzzLinkTargets(f *testing.F) {
	f.Add([]byte{8, 0, 0, 4, 'b', 'o', 'o', 't', 0, 7, 'v', 'm', 'l', 'i', 'n', 'u', 'z'})
	f.Add([]byte{4, 0, 4, 0, 1, 3, 'a', 'b', 'c', 0, 1, 'd'})
	f.Add([]byte{0x10, 0, 0x20, 0})
	f.Add(udfPath("/", "boot", "..", ".", "vmlinuz"))
	f.Add([]byte{1, 2, 0, 0, 8, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, dec := range []func([]byte) (string, error){rrLinkTarget, udfLinkTarget} {
			s, err := dec(b)
			if err == nil && strings.ContainsRune(s, 0) {
				t.Fatalf("target %q has a NUL", s)
			}
		}
	})
}

// rrRecord is a directory record with a system use area.
func rrRecord(name string, loc, length uint32, flags byte, su ...[]byte) []byte {
	b := record9660(name, loc, length, flags)
	for _, s := range su {
		b = append(b, s...)
	}
	b[0] = byte(len(b))
	return b
}

// susp is one SUSP entry.
func susp(sig string, data ...byte) []byte {
	return append([]byte{sig[0], sig[1], byte(4 + len(data)), 1}, data...)
}

// sl is an SL entry: flags, then component records (flags, length, content).
func sl(flags byte, comps ...[]byte) []byte {
	d := []byte{flags}
	for _, c := range comps {
		d = append(d, c...)
	}
	return susp("SL", d...)
}

func comp(flags byte, s string) []byte { return append([]byte{flags, byte(len(s))}, s...) }

func nm(s string) []byte { return susp("NM", append([]byte{0}, s...)...) }

// TestRockRidgeHostileLinks: hand-made SL entries, good and bad, in a Rock Ridge tree: a
// link split over two SL entries and a continued component resolves; the obsolete volume-root
// and host flags, a ".." above the root, a component overrunning its entry and a NUL fail
// with clear errors (the rest of the image still opens).
func TestRockRidgeHostileLinks(t *testing.T) {
	img := rrLinksImage()
	fsys, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rel", "abs", "split", "dot"} {
		if b, err := fs.ReadFile(fsys, name); err != nil || string(b) != "hello" {
			t.Errorf("ReadFile(%q) = %q, %v", name, b, err)
		}
	}
	for name, want := range map[string]string{
		"vol": "volume", "host": "host", "up": "outside the image", "overrun": "overruns", "nul": "NUL",
	} {
		_, err := fsys.Open(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want an error about %q", name, err, want)
		}
		if l, err := fsys.Lstat(name); err != nil || l.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("Lstat(%q) = %v, %v; the link itself is listed", name, l, err)
		}
	}
}

// rrLinksImage is a hand-made Rock Ridge image with good and hostile SL entries (also a
// FuzzOpen seed).
func rrLinksImage() []byte {
	dot := rrRecord("\x00", 18, 2048, flagDir, susp("SP", 0xBE, 0xEF, 0))
	root := append(dot, record9660("\x01", 18, 2048, flagDir)...)
	for _, r := range [][]byte{
		rrRecord("GOOD.;1", 19, 5, 0, nm("good")),
		rrRecord("L1.;1", 0, 0, 0, nm("rel"), sl(0, comp(0, "good"))),
		rrRecord("L2.;1", 0, 0, 0, nm("abs"), sl(0, comp(slRoot, ""), comp(0, "good"))),
		rrRecord("L3.;1", 0, 0, 0, nm("split"), sl(1, comp(slContinue, "go")), sl(0, comp(0, "od"))),
		rrRecord("L4.;1", 0, 0, 0, nm("dot"), sl(0, comp(slCurrent, ""), comp(0, "good"))),
		rrRecord("L5.;1", 0, 0, 0, nm("vol"), sl(0, comp(slVolRoot, ""), comp(0, "good"))),
		rrRecord("L6.;1", 0, 0, 0, nm("host"), sl(0, comp(slHost, ""))),
		rrRecord("L7.;1", 0, 0, 0, nm("up"), sl(0, comp(slParent, ""), comp(0, "good"))),
		rrRecord("L8.;1", 0, 0, 0, nm("overrun"), sl(0, []byte{0, 200, 'x'})),
		rrRecord("L9.;1", 0, 0, 0, nm("nul"), sl(0, comp(0, "go\x00od"))),
	} {
		root = append(root, r...)
	}
	data := make([]byte, 2048)
	copy(data, "hello")
	return new9660(20*2048, root, data)
}
