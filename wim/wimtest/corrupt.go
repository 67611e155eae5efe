package wimtest

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// DamagedWIM is a WIM captured by wimlib-imagex with one file's stored data damaged.
type DamagedWIM struct {
	Path   string // the damaged WIM
	Good   string // an undamaged copy of it
	Name   string // the damaged file, as a path in image 1 ("big.bin")
	Data   []byte // its original content
	Other  string // an undamaged file in the same image ("other.bin")
	OData  []byte // its content
	Offset int64  // file offset of the first flipped byte in the WIM
}

// DamageSize is the size of the damaged file: three 32 KiB chunks and a bit.
const DamageSize = 3*32<<10 + 1234

// MakeDamagedWIM captures a tree of two random (incompressible) files with wimlib-imagex
// (compress: "none", "XPRESS", "LZX"; with a compressing codec, wimlib stores incompressible
// chunks raw, as real WIMs do for already-compressed files), then flips 4 bytes in the middle
// of the second chunk of big.bin as it is stored in the WIM (found by searching for its bytes,
// so the flip lands in data wimlib stored raw). The header, tables and metadata stay intact:
// only reading big.bin in full can tell.
func MakeDamagedWIM(t testing.TB, compress string, seed uint64) DamagedWIM {
	t.Helper()
	NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	d := DamagedWIM{Name: "big.bin", Data: random(DamageSize), Other: "other.bin", OData: random(50_000)}
	for name, data := range map[string][]byte{d.Name: d.Data, d.Other: d.OData} {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.Good = filepath.Join(dir, "good.wim")
	Wimlib(t, "capture", src, d.Good, "damaged", "--compress="+compress)
	raw, err := os.ReadFile(d.Good)
	if err != nil {
		t.Fatal(err)
	}
	at := 32<<10 + 1000 // inside the second chunk
	probe := d.Data[at : at+64]
	i := bytes.Index(raw, probe)
	if i < 0 || bytes.Contains(raw[i+1:], probe) {
		t.Fatalf("%s WIM: big.bin's bytes at %d are not stored raw exactly once", compress, at)
	}
	for k := i + 16; k < i+20; k++ {
		raw[k] ^= 0xA5
	}
	d.Offset = int64(i + 16)
	d.Path = filepath.Join(dir, "damaged.wim")
	if err := os.WriteFile(d.Path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}
