package tftp

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// corruptErr is what a WIM file returns instead of the last bytes of a stream whose SHA-1
// does not match (wim.ChecksumError has the same Corrupt method; tftp does not import wim).
type corruptErr struct{}

func (corruptErr) Error() string {
	return "wim: store.wim: image 1: sources/boot.wim: SHA-1 mismatch: the data hashes to x, the WIM records y"
}
func (corruptErr) Corrupt() bool { return true }

// damagedTree serves "damaged.wim" (refusing the read that would return its last bytes, as
// wim.File does for a damaged stream read in order) and "good.bin".
type damagedTree struct{ fstest.MapFS }

func (d damagedTree) Open(name string) (fs.File, error) {
	f, err := d.MapFS.Open(name)
	if err != nil || name != "damaged.wim" {
		return f, err
	}
	return &damagedFile{File: f, r: bytes.NewReader(d.MapFS[name].Data)}, nil
}

type damagedFile struct {
	fs.File
	r *bytes.Reader
}

func (f *damagedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.r.ReadAt(p, off)
	if off+int64(n) == f.r.Size() {
		return 0, corruptErr{}
	}
	return n, err
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the JSON log records with the given msg prefix.
func (s *syncBuffer) records(prefix string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(s.b.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec["msg"].(string), prefix) {
			out = append(out, rec)
		}
	}
	return out
}

// TestDamagedFileGetsError: a file whose data does not match its checksum ends its transfer
// with an ERROR packet (code 0, "checksum error") before the last block, lock-step and
// windowed, for the Go client, atftp and tftp-hpa; the server logs it at ERROR level with the
// full cause and the observer sees the error.
func TestDamagedFileGetsError(t *testing.T) {
	data := testData(300_000, 41)
	tree := damagedTree{fstest.MapFS{
		"damaged.wim": {Data: data, Mode: 0o444},
		"good.bin":    {Data: data, Mode: 0o444},
	}}
	logs := &syncBuffer{}
	ts := startServer(t, tree, Config{MaxBlockSize: 65464, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	checkServer := func(t *testing.T, n int) {
		t.Helper()
		e := ts.rec.lastEnded(t, n)
		if !isCorrupt(e.err) || e.t.Sent >= int64(len(data)) {
			t.Fatalf("server side: err %v, %d of %d bytes read for sending", e.err, e.t.Sent, len(data))
		}
		recs := logs.records("tftp: transfer aborted")
		if len(recs) < n || recs[len(recs)-1]["level"] != "ERROR" || !strings.Contains(recs[len(recs)-1]["err"].(string), "SHA-1 mismatch") {
			t.Fatalf("log records %v: want an ERROR naming the SHA-1 mismatch", recs)
		}
	}
	ended := 0
	for _, opts := range [][]string{{"blksize", "1468"}, {"blksize", "1468", "windowsize", "16"}, nil} {
		t.Run("go-client "+strings.Join(opts, " "), func(t *testing.T) {
			res, err := newClient(t, ts.addr).get("damaged.wim", getOptions{opts: opts})
			wantCode(t, err, 0)
			if res != nil && len(res.data) >= len(data) {
				t.Fatalf("client received %d of %d bytes", len(res.data), len(data))
			}
			ended++
			checkServer(t, ended)
		})
	}
	port := strconv.Itoa(ts.port)
	t.Run("atftp", func(t *testing.T) {
		atftp := needTool(t, "atftp", "atftp")
		for _, o := range [][]string{{"--option", "blksize 1468", "--option", "windowsize 8"}, {"--option", "blksize 1468"}} {
			local := filepath.Join(t.TempDir(), "out")
			out, err := run(t, atftp, append(o, "-g", "-r", "damaged.wim", "-l", local, "127.0.0.1", port)...)
			if err == nil || !strings.Contains(out, "checksum error") {
				t.Fatalf("atftp %v: %v\n%s", o, err, out)
			}
			if b, _ := os.ReadFile(local); len(b) >= len(data) {
				t.Fatalf("atftp kept %d of %d bytes", len(b), len(data))
			}
			ended++
			checkServer(t, ended)
		}
	})
	t.Run("tftp-hpa", func(t *testing.T) {
		tftp := needTool(t, "tftp", "tftp-hpa")
		local := filepath.Join(t.TempDir(), "out")
		out, _ := run(t, tftp, "-m", "binary", "127.0.0.1", port, "-c", "get", "damaged.wim", local)
		if !strings.Contains(out, "Error code 0: checksum error") {
			t.Fatalf("tftp-hpa: output %q, want Error code 0: checksum error", out)
		}
		if b, _ := os.ReadFile(local); len(b) >= len(data) {
			t.Fatalf("tftp-hpa kept %d of %d bytes", len(b), len(data))
		}
		ended++
		checkServer(t, ended)
	})
	t.Run("undamaged", func(t *testing.T) {
		res, err := newClient(t, ts.addr).get("good.bin", getOptions{opts: []string{"blksize", "1468", "windowsize", "16"}})
		if err != nil || !bytes.Equal(res.data, data) {
			t.Fatalf("good.bin: %v", err)
		}
	})
}

// verdictTree serves "store.wim" as a file with a store verdict the test sets (like the local
// store's WIM files served whole: FullReadChecked false).
type verdictTree struct {
	fstest.MapFS
	verdict *testVerdict
}

type testVerdict struct {
	mu   sync.Mutex
	good bool
	bad  error // WaitVerified's answer when not good; nil: never answers (waits for ctx)
}

func (v *testVerdict) set(good bool, bad error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.good, v.bad = good, bad
}

func (v *testVerdict) get() (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.good, v.bad
}

func (v verdictTree) Open(name string) (fs.File, error) {
	f, err := v.MapFS.Open(name)
	if err != nil || name != "store.wim" {
		return f, err
	}
	return &verdictFile{File: f, r: bytes.NewReader(v.MapFS[name].Data), v: v.verdict}, nil
}

type verdictFile struct {
	fs.File
	r *bytes.Reader
	v *testVerdict
}

func (f *verdictFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }
func (f *verdictFile) Verified() bool                          { good, _ := f.v.get(); return good }
func (f *verdictFile) FullReadChecked() bool                   { return false }
func (f *verdictFile) WaitVerified(ctx context.Context) error {
	switch good, bad := f.v.get(); {
	case good:
		return nil
	case bad != nil:
		return bad
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestVerdictHoldsLastBlock: a file whose full reads are not checked by the file itself (a WIM
// served whole) sends its last block only once its store verdict is good: verified, it
// completes; known damaged, the client gets ERROR "checksum error" (logged at ERROR); not
// verified within VerifyWait, ERROR "being verified"; never the whole file unverified.
func TestVerdictHoldsLastBlock(t *testing.T) {
	data := testData(200_000, 42)
	v := &testVerdict{}
	logs := &syncBuffer{}
	ts := startServer(t, verdictTree{fstest.MapFS{"store.wim": {Data: data, Mode: 0o444}}, v},
		Config{VerifyWait: 200 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	get := func() (*getResult, error) {
		return newClient(t, ts.addr).get("store.wim", getOptions{opts: []string{"blksize", "1468", "windowsize", "8"}})
	}
	// Not verified in time: the client gets an ERROR instead of the last block.
	res, err := get()
	wantCode(t, err, 0)
	if res != nil && len(res.data) >= len(data) {
		t.Fatalf("unverified: the client received %d of %d bytes", len(res.data), len(data))
	}
	if e := ts.rec.lastEnded(t, 1); e.err == nil || !strings.Contains(e.err.Error(), "being verified") {
		t.Fatalf("unverified: server error %v", e.err)
	}
	// Known damaged: checksum error, logged at ERROR.
	v.set(false, corruptErr{})
	_, err = get()
	wantCode(t, err, 0)
	if e := ts.rec.lastEnded(t, 2); !isCorrupt(e.err) {
		t.Fatalf("damaged verdict: server error %v", e.err)
	}
	if recs := logs.records("tftp: transfer aborted"); len(recs) != 1 || recs[0]["level"] != "ERROR" {
		t.Fatalf("damaged verdict: log records %v", recs)
	}
	// Verified: the whole file.
	v.set(true, nil)
	if res, err := get(); err != nil || !bytes.Equal(res.data, data) {
		t.Fatalf("verified: %v", err)
	}
}
