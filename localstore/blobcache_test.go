package localstore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"

	"github.com/pxewim/pxewim/blobcache"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/tftp"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestBlobCacheServesWIMFile serves a file inside an LZX WIM over HTTP (whole, one range,
// several ranges, its /blob/ URL) and TFTP: first from the WIM, then, once the full read has
// filled the blob cache, from the cached copy (the store hands out a plain file: sendfile for
// HTTP, preads for TFTP). Every byte is compared with wimlib-imagex extract. A cached copy
// damaged behind the cache's back is not served and is replaced.
func TestBlobCacheServesWIMFile(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src, store := filepath.Join(dir, "src"), filepath.Join(dir, "store")
	rng := rand.New(rand.NewPCG(16, 1))
	var data []byte
	for len(data) < 3<<20 {
		data = append(data, wimtest.Content(rng, 64<<10+rng.IntN(64<<10))...)
	}
	for _, p := range []string{filepath.Join(src, "boot"), store} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "boot", "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	wimPath := filepath.Join(store, "img.wim")
	wimtest.Wimlib(t, "capture", src, wimPath, "IMG", "--compress=LZX")
	wimtest.Wimlib(t, "extract", wimPath, "1", "/boot/big.bin", "--dest-dir="+filepath.Join(dir, "x"), "--no-acls")
	want, err := os.ReadFile(filepath.Join(dir, "x", "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, data) {
		t.Fatal("wimlib-imagex extract differs from the captured file")
	}
	key := blobcache.Key(sha1.Sum(want))

	bc, err := blobcache.Open(blobcache.Options{Dir: filepath.Join(dir, "cache"), Budget: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	st, err := New(store, Options{Blobs: bc})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tree := func() (fs.FS, error) { return st, nil }
	hs := httptest.NewServer(httpboot.NewHandler(httpboot.Config{
		Resolve: func(*http.Request, httpboot.ClientInfo) (fs.FS, error) { return tree() },
	}))
	defer hs.Close()
	ts, err := tftp.New(tftp.Config{Resolve: func(context.Context, netip.AddrPort, netip.Addr) (fs.FS, error) { return tree() }})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ts.Serve(ctx, conn) }()
	defer func() { cancel(); <-served }()

	const name = "img.wim:1/boot/big.bin"
	url := hs.URL + "/files/" + name
	idle := func() {
		t.Helper()
		wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
		defer wcancel()
		if err := bc.WaitIdle(wctx); err != nil {
			t.Fatal(err)
		}
	}
	checkAll := func(stage string) {
		t.Helper()
		if got := httpGet(t, url, ""); !bytes.Equal(got, want) {
			t.Fatalf("%s: HTTP GET: %d bytes differ from wimlib-imagex extract", stage, len(got))
		}
		if got := httpGet(t, hs.URL+"/blob/"+hex.EncodeToString(key[:])+"/"+name, ""); !bytes.Equal(got, want) {
			t.Fatalf("%s: HTTP GET of the blob URL differs", stage)
		}
		if got := httpGet(t, url, "bytes=1000000-2100000"); !bytes.Equal(got, want[1000000:2100001]) {
			t.Fatalf("%s: range 1000000-2100000 differs", stage)
		}
		if got := httpGet(t, url, "bytes=-777"); !bytes.Equal(got, want[len(want)-777:]) {
			t.Fatalf("%s: suffix range differs", stage)
		}
		parts := multiRange(t, url, "bytes=0-99,3000000-3000999")
		if len(parts) != 2 || !bytes.Equal(parts[0], want[:100]) || !bytes.Equal(parts[1], want[3000000:3001000]) {
			t.Fatalf("%s: multi-range parts differ", stage)
		}
		got, err := tftpRead(conn.LocalAddr().String(), name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: TFTP: %d bytes, %v: differ from wimlib-imagex extract", stage, len(got), err)
		}
	}

	checkAll("cold (from the WIM)")
	idle()
	s0 := bc.Stats()
	if s0.Fills != 1 || !bc.Has(key) {
		t.Fatalf("after full reads: stats %+v, want the blob filled once", s0)
	}
	cached, err := os.ReadFile(bc.Path(key, int64(len(want))))
	if err != nil || !bytes.Equal(cached, want) {
		t.Fatalf("cached copy: %d bytes, %v: differs from wimlib-imagex extract", len(cached), err)
	}
	f, err := st.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(syscall.Conn); !ok {
		t.Fatalf("a cached file opens as %T, not a plain file the kernel can send", f)
	}
	if fi, _ := f.Stat(); fi.Name() != "big.bin" || fi.Size() != int64(len(want)) {
		t.Fatalf("cached file's Stat: %v %d", fi.Name(), fi.Size())
	}
	f.Close()

	checkAll("warm (from the cache)")
	s1 := bc.Stats()
	if hits := s1.Hits - s0.Hits; hits < 6 || s1.Fills != 1 {
		t.Fatalf("warm: %d hits, stats %+v: the warm requests did not come from the cache", hits, s1)
	}

	// Damage the cached copy behind the cache's back: served right (from the WIM), replaced.
	path := bc.Path(key, int64(len(want)))
	df, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	df.WriteAt([]byte{want[2000000] ^ 0xff}, 2000000)
	df.Close()
	if got := httpGet(t, url, ""); !bytes.Equal(got, want) {
		t.Fatal("after damaging the cached copy: HTTP GET differs")
	}
	idle()
	if s := bc.Stats(); s.Corrupt != 1 || s.Fills != 2 {
		t.Fatalf("after damage: stats %+v, want it found damaged and refilled", s)
	}
	if cached, _ := os.ReadFile(path); !bytes.Equal(cached, want) {
		t.Fatal("the damaged cached copy was not replaced")
	}
	checkAll("refilled")
}

func httpGet(t *testing.T, url, rng string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s (%s): %v", url, rng, err)
	}
	if want := map[bool]int{true: 206, false: 200}[rng != ""]; resp.StatusCode != want {
		t.Fatalf("GET %s (%s): status %d, want %d", url, rng, resp.StatusCode, want)
	}
	return b
}

func multiRange(t *testing.T, url, rng string) [][]byte {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", rng)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || resp.StatusCode != 206 {
		t.Fatalf("multi-range: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, b)
	}
}

func tftpRead(addr, name string) ([]byte, error) {
	c, err := pintftp.NewClient(addr)
	if err != nil {
		return nil, err
	}
	c.SetTimeout(2 * time.Second)
	c.SetBlockSize(1468)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = wt.WriteTo(&buf)
	return buf.Bytes(), err
}
