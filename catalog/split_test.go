package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
)

func scanOne(t *testing.T, store string, p string) (*Snapshot, *File) {
	t.Helper()
	snap, err := Scan(context.Background(), store, &Options{Scanners: DefaultScanners()})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := snap.File(p)
	if !ok {
		var got []string
		for _, f := range snap.Files {
			got = append(got, f.Path)
		}
		t.Fatalf("no %s in the catalog: %v", p, got)
	}
	return snap, f
}

func problemsOf(f *File) string {
	var b strings.Builder
	for _, p := range f.Problems {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

func guidOf(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wim.ReadHeader(strings.NewReader(string(b)), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return h.GUIDString()
}

// A split WinPE set is one file of the catalog, under part 1, with its images and boot files.
func TestSplitSetListedOnce(t *testing.T) {
	store := t.TempDir()
	_, parts := testenv.BuildSplitWinPE(t, store, "pe", 1)
	snap, f := scanOne(t, store, "pe.swm")
	if len(snap.Files) != 1 {
		t.Fatalf("%d files in the catalog, want the set alone: %+v", len(snap.Files), snap.Files)
	}
	if len(f.Parts) != len(parts) || f.Kind != "wim" {
		t.Fatalf("set: kind %q, parts %+v, want %d parts", f.Kind, f.Parts, len(parts))
	}
	var total int64
	for i, p := range f.Parts {
		fi, _ := os.Stat(parts[i])
		if p.Number != i+1 || p.Path != filepath.Base(parts[i]) || p.Size != fi.Size() {
			t.Errorf("part %d: %+v (file %s)", i+1, p, parts[i])
		}
		total += p.Size
	}
	if f.Size != total || f.Compression != "LZX" || f.ChunkSize != 32768 {
		t.Errorf("set: size %d (parts %d), %s/%d", f.Size, total, f.Compression, f.ChunkSize)
	}
	if len(f.Images) != 1 || !f.Images[0].WindowsPE() || len(f.Images[0].Boot[BIOS].Missing) != 0 || len(f.Images[0].Boot[UEFI].Missing) != 0 {
		t.Fatalf("images: %+v", f.Images)
	}
	if pe := snap.WindowsPE(); len(pe) != 1 || pe[0].File.Path != "pe.swm" {
		t.Errorf("WindowsPE = %+v", pe)
	}
	for _, p := range f.Problems {
		if !p.Info {
			t.Errorf("problem: %s", p)
		}
	}
	if !strings.Contains(problemsOf(f), "split WIM (") || !strings.Contains(f.Transcode, "split WIM") {
		t.Errorf("no note that the set is joined: %q / %s", f.Transcode, problemsOf(f))
	}
	// The watcher compares the store's files with the list: a set stands for its parts, so an
	// unchanged store is not rescanned, and a part that changes is.
	files, err := list(context.Background(), os.DirFS(store), store, &Options{Scanners: DefaultScanners()})
	if err != nil {
		t.Fatal(err)
	}
	if !sameStamps(snap.storeFiles(), files) {
		t.Errorf("store files %+v differ from the listing %+v", snap.storeFiles(), files)
	}
	// A rescan reuses the unchanged set.
	again, err := scanListed(context.Background(), os.DirFS(store), &Options{Scanners: DefaultScanners()}, files, snap)
	if err != nil || len(again.Files) != 1 || again.Files[0].Images == nil {
		t.Fatalf("rescan: %v %+v", err, again)
	}
}

// A missing part is named by number, the set has no images (it cannot boot), and the
// file a part should have been named is pointed at.
func TestSplitMissingPartNamed(t *testing.T) {
	store := t.TempDir()
	_, parts := testenv.BuildSplitWinPE(t, store, "pe", 1)
	guid := guidOf(t, parts[0])
	os.Remove(parts[2])
	_, f := scanOne(t, store, "pe.swm")
	probs := problemsOf(f)
	want := "part 3 of " + itoa(len(parts)) + " of pe.swm (GUID " + guid + ") is missing"
	if !strings.Contains(probs, want) || !strings.Contains(probs, "pe3.swm") {
		t.Errorf("problems do not say %q (and name pe3.swm):\n%s", want, probs)
	}
	if len(f.Images) != 0 || len(f.Parts) != len(parts)-1 {
		t.Errorf("incomplete set: %d images, parts %+v", len(f.Images), f.Parts)
	}
	if err := func() error { _, _, err := OpenSplit(os.DirFS(store), "pe2.swm", nil); return err }(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("OpenSplit = %v, want %q", err, want)
	}
	// Without part 1 the set is listed under its lowest part, still naming part 1.
	os.Remove(parts[0])
	_, f = scanOne(t, store, "pe2.swm")
	if probs := problemsOf(f); !strings.Contains(probs, "part 1 of ") || !strings.Contains(probs, "pe.swm") {
		t.Errorf("part 1 missing:\n%s", probs)
	}
}

// A part of another set (another GUID) named like a part of this one is not taken for it.
func TestSplitForeignPartRejected(t *testing.T) {
	store, other := t.TempDir(), t.TempDir()
	_, parts := testenv.BuildSplitWinPE(t, store, "pe", 1)
	_, foreign := testenv.BuildSplitWinPE(t, other, "pe", 2)
	guid, fguid := guidOf(t, parts[0]), guidOf(t, foreign[1])
	if guid == fguid {
		t.Fatal("two splits with the same GUID")
	}
	b, _ := os.ReadFile(foreign[1])
	os.WriteFile(parts[1], b, 0o644) // pe2.swm is now part 2 of the other set
	snap, f := scanOne(t, store, "pe.swm")
	probs := problemsOf(f)
	for _, want := range []string{
		"part 2 of " + itoa(len(parts)) + " of pe.swm (GUID " + guid + ") is missing",
		"pe2.swm is not part 2 of pe.swm: it is part 2 of " + itoa(len(foreign)) + " of another split WIM (GUID " + fguid + ")",
	} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems do not say %q:\n%s", want, probs)
		}
	}
	if len(f.Images) != 0 {
		t.Errorf("the set with a foreign part has images")
	}
	// The foreign part is a set of its own (parts missing), not served either.
	if g, ok := snap.File("pe2.swm"); !ok || len(g.Images) != 0 || !strings.Contains(problemsOf(g), "GUID "+fguid) {
		t.Errorf("foreign part: %+v", g)
	}
}

// Two files claiming one part number keep the set from being served, naming both.
func TestSplitDuplicatePart(t *testing.T) {
	store := t.TempDir()
	_, parts := testenv.BuildSplitWinPE(t, store, "pe", 1)
	b, _ := os.ReadFile(parts[1])
	os.WriteFile(filepath.Join(store, "pe2 - copy.swm"), b, 0o644)
	_, f := scanOne(t, store, "pe.swm")
	if probs := problemsOf(f); !strings.Contains(probs, "part 2 of") || !strings.Contains(probs, "is in 2 files: pe2 - copy.swm, pe2.swm") || len(f.Images) != 0 {
		t.Errorf("duplicate part 2: %d images\n%s", len(f.Images), probs)
	}
}

// patchHeader rewrites fields of a part's header.
func patchHeader(t *testing.T, p string, edit func(h []byte)) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edit(b[:wim.HeaderSize])
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Hostile headers: part counts of 0 and 65535, a part number over the count, parts that
// disagree on the count, the chunk size or the compression. Each is a clear problem of the
// set; nothing is served, nothing panics, the missing parts are not listed one by one.
func TestSplitHostileHeaders(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		name string
		part int // 0-based part to patch
		edit func(h []byte)
		want string
	}{
		{"count 0", 1, func(h []byte) { le.PutUint16(h[0x2A:], 0) }, "part number 2 of 0 is invalid"},
		{"number over count", 1, func(h []byte) { le.PutUint16(h[0x28:], 9) }, "is invalid"},
		{"number 0", 2, func(h []byte) { le.PutUint16(h[0x28:], 0) }, "part number 0 of"},
		{"count 65535", 0, func(h []byte) { le.PutUint16(h[0x2A:], 65535) }, "disagree on the part count (pe2.swm, pe3.swm, pe4.swm, 2 more: 6; pe.swm: 65535)"},
		{"all 65535", -1, func(h []byte) { le.PutUint16(h[0x2A:], 65535) }, "more parts of pe.swm"},
		{"chunk size", 1, func(h []byte) { le.PutUint32(h[0x14:], 65536) }, "LZX with 65536-byte chunks, part 1 (pe.swm) LZX with 32768-byte chunks"},
		{"compression", 2, func(h []byte) { le.PutUint32(h[0x10:], le.Uint32(h[0x10:])&^wim.FlagLZX|wim.FlagXPRESS) }, "is XPRESS with 32768-byte chunks, part 1 (pe.swm) LZX"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := t.TempDir()
			_, parts := testenv.BuildSplitWinPE(t, store, "pe", 1)
			for i, p := range parts {
				if i == c.part || c.part < 0 {
					patchHeader(t, p, c.edit)
				}
			}
			snap, err := Scan(context.Background(), store, nil)
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for i := range snap.Files {
				f := &snap.Files[i]
				all.WriteString(problemsOf(f))
				if len(f.Images) != 0 {
					t.Errorf("%s is listed with images despite the hostile part", f.Path)
				}
			}
			if !strings.Contains(all.String(), c.want) {
				t.Errorf("problems do not say %q:\n%s", c.want, all.String())
			}
			if n := strings.Count(all.String(), " is missing"); n > 2*maxNamedMissing {
				t.Errorf("%d missing parts listed one by one", n)
			}
			if _, _, err := OpenSplit(os.DirFS(store), "pe.swm", nil); err == nil {
				t.Errorf("OpenSplit opened the hostile set")
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzSplitHeaders: any header bytes in any part of a set (part counts of 0 and 65535, part
// numbers over the count, GUIDs, compression flags, chunk sizes) give problems or a set that
// opens, never a panic; an opened set is complete and consistent.
func FuzzSplitHeaders(f *testing.F) {
	store := f.TempDir()
	_, parts := testenv.BuildSplitWinPE(f, store, "pe", 1)
	orig := make([][]byte, len(parts))
	for i, p := range parts {
		orig[i], _ = os.ReadFile(p)
	}
	le := binary.LittleEndian
	seed := func(part int, off int, v []byte) { f.Add(uint8(part), uint8(off), v) }
	seed(1, 0x2A, []byte{0, 0})       // part count 0
	seed(0, 0x2A, []byte{0xff, 0xff}) // 65535
	seed(1, 0x28, []byte{9, 0})       // part number over the count
	seed(2, 0x14, le.AppendUint32(nil, 65536))
	seed(2, 0x10, le.AppendUint32(nil, 0x00020002)) // XPRESS
	seed(1, 0x18, []byte("another set GUID"))
	seed(3, 0x28, []byte{2, 0}) // a second part 2
	f.Fuzz(func(t *testing.T, part uint8, off uint8, v []byte) {
		dir := t.TempDir()
		for i, b := range orig {
			b = bytes.Clone(b)
			if int(part)%len(orig) == i && int(off) < wim.HeaderSize {
				copy(b[off:wim.HeaderSize], v)
			}
			os.WriteFile(filepath.Join(dir, filepath.Base(parts[i])), b, 0o644)
		}
		snap, err := Scan(context.Background(), dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range snap.Files {
			if n := strings.Count(problemsOf(&f), " is missing"); n > maxNamedMissing {
				t.Errorf("%s: %d missing parts listed one by one", f.Path, n)
			}
		}
		a, closer, err := OpenSplit(os.DirFS(dir), "pe.swm", nil)
		if err != nil {
			return
		}
		defer closer.Close()
		if a.MissingParts() != 0 {
			t.Errorf("an opened set misses parts %v", a.MissingPartNumbers(0))
		}
	})
}
