package verdicts

import (
	"path/filepath"
	"testing"
	"time"
)

func TestLookupPutTrim(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "verdicts.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(path) // a second daemon on the same file: each operation locks it briefly
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5, GUID: [16]byte{6}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := a.Put(Verdict{Identity: id, Path: "pe.wim", Good: false, Problem: "SHA-1 mismatch", Checked: t0}); err != nil {
		t.Fatal(err)
	}
	v, ok, err := b.Lookup(id)
	if err != nil || !ok || v.Good || v.Problem != "SHA-1 mismatch" || v.Path != "pe.wim" || !v.Checked.Equal(t0) {
		t.Fatalf("lookup: %+v %v %v", v, ok, err)
	}
	// Any other version of the file (or another file on that inode) has no verdict.
	for _, other := range []Identity{
		{Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 9, GUID: [16]byte{6}},
		{Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5, GUID: [16]byte{7}},
		{Dev: 1, Ino: 2, Size: 8, Mtime: 4, Ctime: 5, GUID: [16]byte{6}},
	} {
		if _, ok, err := b.Lookup(other); ok || err != nil {
			t.Errorf("lookup of %+v: found %v, %v", other, ok, err)
		}
	}
	// A new version of the same file replaces the old verdict.
	id2 := id
	id2.Mtime = 10
	if err := b.Put(Verdict{Identity: id2, Good: true, Checked: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Lookup(id); ok {
		t.Error("the old version's verdict is still there")
	}
	if n, err := a.Len(); err != nil || n != 1 {
		t.Errorf("records: %d, %v", n, err)
	}
	// The file is bounded: the least recently checked go first.
	maxRecords = 3
	defer func() { maxRecords = MaxRecords }()
	for i := range 5 {
		if err := a.Put(Verdict{Identity: Identity{Dev: 9, Ino: uint64(100 + i)}, Good: true, Checked: t0.Add(time.Duration(i+2) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := a.Len(); n != 3 {
		t.Errorf("records after trim: %d, want 3", n)
	}
	if _, ok, _ := a.Lookup(Identity{Dev: 9, Ino: 104}); !ok {
		t.Error("the newest verdict was trimmed")
	}
	if _, ok, _ := a.Lookup(id2); ok {
		t.Error("the oldest verdict survived the trim")
	}
}

// BenchmarkPutMany is a mass change: b.N puts into a file far below MaxRecords.
func BenchmarkPutMany(b *testing.B) {
	d, err := Open(filepath.Join(b.TempDir(), "v.db"))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if err := d.Put(Verdict{Identity: Identity{Dev: 1, Ino: uint64(i)}, Path: "x.wim", Good: true}); err != nil {
			b.Fatal(err)
		}
	}
}
