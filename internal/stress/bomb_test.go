package stress

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim"
)

// WIM layout facts used to forge lying WIMs (wim-format.md): the header's blob table
// resource header sits at offset 48 (size 7 bytes + flags, offset, original size); blob table
// entries are 50 bytes (24-byte resource header, part 2, refcount 4, SHA-1 20); a solid
// resource starts with its own header (uncompressed size u64, chunk size u32, format u32).
const (
	hdrBlobTable = 48
	blobEntry    = 50
	flagSolid    = 0x10
)

// blobTable returns the offset of the blob table and its entry count.
func blobTable(t *testing.T, w []byte) (int64, int) {
	t.Helper()
	off := int64(binary.LittleEndian.Uint64(w[hdrBlobTable+8:]))
	size := int64(binary.LittleEndian.Uint64(w[hdrBlobTable+16:]))
	if off <= 0 || off+size > int64(len(w)) || size%blobEntry != 0 {
		t.Fatalf("unexpected blob table at %d size %d", off, size)
	}
	return off, int(size / blobEntry)
}

// forge returns variants of a WIM holding data, each lying in one way.
func forge(t *testing.T, w []byte, data []byte) map[string][]byte {
	t.Helper()
	sum := sha1.Sum(data)
	off, n := blobTable(t, w)
	entry := int64(-1)
	for i := range n {
		e := off + int64(i*blobEntry)
		if bytes.Equal(w[e+30:e+50], sum[:]) {
			entry = e
		}
	}
	if entry < 0 {
		t.Fatal("blob of the payload not found in the blob table")
	}
	patch := func(f func(b []byte)) []byte {
		b := append([]byte(nil), w...)
		f(b)
		return b
	}
	put7 := func(b []byte, at int64, v uint64) { // 7-byte little-endian size, flags byte kept
		var x [8]byte
		binary.LittleEndian.PutUint64(x[:], v)
		copy(b[at:at+7], x[:7])
	}
	return map[string][]byte{
		"claims-1TiB":     patch(func(b []byte) { binary.LittleEndian.PutUint64(b[entry+16:], 1<<40) }),
		"claims-2^62":     patch(func(b []byte) { binary.LittleEndian.PutUint64(b[entry+16:], 1<<62) }),
		"claims-16x-size": patch(func(b []byte) { binary.LittleEndian.PutUint64(b[entry+16:], uint64(16*len(data))) }),
		"half-size":       patch(func(b []byte) { binary.LittleEndian.PutUint64(b[entry+16:], uint64(len(data)/2)) }),
		"stored-past-end": patch(func(b []byte) { put7(b, entry, uint64(len(w))*4) }),
		"offset-past-end": patch(func(b []byte) { binary.LittleEndian.PutUint64(b[entry+8:], uint64(len(w))*2) }),
		"chunk-scribble": patch(func(b []byte) { // compressed bytes of the first chunks overwritten
			at := int64(binary.LittleEndian.Uint64(b[entry+8:]))
			for i := at + 64; i < at+4096 && i < int64(len(b)); i++ {
				b[i] = byte(i * 31)
			}
		}),
	}
}

// forgeSolid returns variants of a solid WIM whose solid resource header lies.
func forgeSolid(t *testing.T, w []byte) map[string][]byte {
	t.Helper()
	off, n := blobTable(t, w)
	var res int64 = -1
	for i := range n {
		e := off + int64(i*blobEntry)
		if w[e+7]&flagSolid != 0 && binary.LittleEndian.Uint64(w[e+16:]) == 0x100000000 {
			res = int64(binary.LittleEndian.Uint64(w[e+8:]))
		}
	}
	if res < 0 {
		t.Fatal("no solid resource header entry in the blob table")
	}
	patch := func(f func(b []byte)) []byte {
		b := append([]byte(nil), w...)
		f(b)
		return b
	}
	return map[string][]byte{
		"solid-1GiB-chunks": patch(func(b []byte) { binary.LittleEndian.PutUint32(b[res+8:], 1<<30) }),
		"solid-2GiB-chunks": patch(func(b []byte) { binary.LittleEndian.PutUint32(b[res+8:], 1<<31) }),
		"solid-claims-1PiB": patch(func(b []byte) { binary.LittleEndian.PutUint64(b[res:], 1<<50) }),
		"solid-odd-chunk":   patch(func(b []byte) { binary.LittleEndian.PutUint32(b[res+8:], 12345) }),
	}
}

// TestLyingWIMsInProcess opens each forged WIM with the wim package and reads the file: the
// read fails (or returns at most the real bytes) and the heap grows by far less than the
// sizes the WIM claims.
func TestLyingWIMsInProcess(t *testing.T) {
	dir := t.TempDir()
	data := payload(1<<20, 21)
	plain, solid := buildLiars(t, dir, data)
	all := forge(t, plain, data)
	for k, v := range forgeSolid(t, solid) {
		all[k] = v
	}
	for name, w := range all {
		t.Run(name, func(t *testing.T) {
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			err := readAllFromWIM(w, "big.bin")
			runtime.ReadMemStats(&m1)
			grew := int64(m1.TotalAlloc - m0.TotalAlloc)
			if err == nil && !name2ok(name) {
				t.Errorf("read succeeded from a WIM that lies (%s)", name)
			}
			if grew > 64<<20 {
				t.Errorf("allocated %d MiB reading a 1 MiB file", grew>>20)
			}
			t.Logf("%s: error %v; allocated %d KiB", name, err, grew>>10)
		})
	}
}

// name2ok lists forgeries a reader may legitimately survive: 1 GiB is the largest legal LZMS
// chunk size (wimlib's limit) and wimlib already wrote the 1.3 MiB resource as one chunk, so
// the claim is true for the data; what it must not do is make the reader allocate 1 GiB.
func name2ok(name string) bool { return name == "solid-1GiB-chunks" }

func readAllFromWIM(w []byte, name string) error {
	a, err := wim.Open(bytes.NewReader(w), int64(len(w)), nil)
	if err != nil {
		return err
	}
	img, err := a.Image(1)
	if err != nil {
		return err
	}
	f, err := img.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(f, 8<<20))
	if err != nil {
		return err
	}
	if n != 1<<20 {
		return fmt.Errorf("read %d bytes, want %d", n, 1<<20)
	}
	return nil
}

func buildLiars(t *testing.T, dir string, data []byte) (plain, solid []byte) {
	t.Helper()
	pp, sp := filepath.Join(dir, "plain.wim"), filepath.Join(dir, "solid.wim")
	buildWIM(t, pp, map[string][]byte{"big.bin": data}, "LZX")
	buildWIM(t, sp, map[string][]byte{"big.bin": data, "other.bin": payload(300<<10, 4)}, "LZMS", "--solid")
	plain, _ = os.ReadFile(pp)
	solid, _ = os.ReadFile(sp)
	return plain, solid
}

// TestBombsAgainstDaemon puts every forged WIM in a running daemon's store and requests the
// lying file from each, 4 times over, while 8 clients download a good 8 MiB file inside a
// good WIM: the lying requests fail (status or cut body), the good ones are byte-exact, and
// the daemon's peak RSS stays under 256 MiB.
func TestBombsAgainstDaemon(t *testing.T) {
	p := newPair(t, "10.91.10")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(store, 0o755)
	small := payload(1<<20, 21)
	plain, solid := buildLiars(t, dir, small)
	liars := forge(t, plain, small)
	for k, v := range forgeSolid(t, solid) {
		liars[k] = v
	}
	for name, w := range liars {
		os.WriteFile(filepath.Join(store, name+".wim"), w, 0o644)
	}
	good := payload(8<<20, 22)
	buildWIM(t, filepath.Join(store, "good.wim"), map[string][]byte{"g.bin": good}, "LZX")
	d := startDaemon(t, ctx, p, dir, serveConfig(p, store, dir, "off"), false, false)
	base := fmt.Sprintf("http://%s/files/", p.SrvIP)

	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]string{}
	for name := range liars {
		for k := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := nsClient(p.Cli, p.CliIP, 30*time.Second)
				defer c.CloseIdleConnections()
				st, body, err := getAll(ctx, c, base+name+".wim:1/big.bin", 64<<20)
				if st == http.StatusOK && err == nil && bytes.Equal(body, small) && !name2ok(name) {
					t.Errorf("%s #%d: served the full file from a lying WIM", name, k)
				}
				if st == http.StatusOK && err == nil && len(body) > len(small) {
					t.Errorf("%s #%d: 200 with %d bytes (a 1 MiB file)", name, k, len(body))
				}
				mu.Lock()
				outcomes[name] = fmt.Sprintf("status %d, %d bytes, err %v", st, len(body), err)
				mu.Unlock()
			}()
		}
	}
	for k := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := nsClient(p.Cli, p.CliIP, time.Minute)
			defer c.CloseIdleConnections()
			st, body, err := getAll(ctx, c, base+"good.wim:1/g.bin", 64<<20)
			if err != nil || st != 200 || !bytes.Equal(body, good) {
				t.Errorf("good client %d: status %d, %d bytes, %v", k, st, len(body), err)
			}
		}()
	}
	wg.Wait()
	d.alive(t)
	hwm, err := procStatus(d.proc.PID(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	if hwm > rssLimit {
		t.Errorf("pxewim VmHWM %d MiB > %d MiB", hwm>>20, rssLimit>>20)
	}
	for name, o := range outcomes {
		t.Logf("%-18s %s", name, o)
	}
	t.Logf("%d lying WIMs x4 requests beside 8 good 8 MiB downloads: good all byte-exact, pxewim VmHWM %d MiB", len(liars), hwm>>20)
}
