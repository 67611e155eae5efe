package upload

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim/wimtest"
	"golang.org/x/crypto/ssh"
)

// testServer is an upload Server on 127.0.0.1 with a known_hosts file for the OpenSSH client.
type testServer struct {
	store      string
	port       int
	knownHosts string
	adminKey   string
	keysFile   string
	srv        *Server

	mu        sync.Mutex
	published []string
}

func (ts *testServer) publishedNames() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.published)
}

func needOpenSSH(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"sftp", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install openssh-client", tool)
		}
	}
}

func keygen(t *testing.T, p string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pxewim-test", "-f", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

func startServer(t *testing.T, mod func(*Config)) *testServer {
	t.Helper()
	needOpenSSH(t)
	dir := t.TempDir()
	ts := &testServer{store: filepath.Join(dir, "store"), adminKey: filepath.Join(dir, "admin"),
		keysFile: filepath.Join(dir, "authorized_keys"), knownHosts: filepath.Join(dir, "known_hosts")}
	os.Mkdir(ts.store, 0o755)
	keygen(t, ts.adminKey)
	pub, _ := os.ReadFile(ts.adminKey + ".pub")
	os.WriteFile(ts.keysFile, pub, 0o600)
	cfg := Config{
		HostKeyPath:        filepath.Join(dir, "state", "host_key"),
		AuthorizedKeysPath: ts.keysFile,
		StoreDir:           ts.store,
		OnPublish: func(name string) {
			ts.mu.Lock()
			ts.published = append(ts.published, name)
			ts.mu.Unlock()
		},
	}
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.port = ln.Addr().(*net.TCPAddr).Port
	line := fmt.Sprintf("[127.0.0.1]:%d %s", ts.port, ssh.MarshalAuthorizedKey(srv.HostKey()))
	os.WriteFile(ts.knownHosts, []byte(line), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
	})
	return ts
}

// testLog sends the server's log to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// sftp runs the OpenSSH sftp client in batch mode with key and returns its stderr.
func (ts *testServer) sftp(t *testing.T, key, batch string, extra ...string) (string, error) {
	t.Helper()
	bf := filepath.Join(t.TempDir(), "batch")
	os.WriteFile(bf, []byte(batch), 0o644)
	args := append([]string{"-F", "/dev/null", "-b", bf, "-i", key, "-P", fmt.Sprint(ts.port),
		"-o", "UserKnownHostsFile=" + ts.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"}, extra...)
	args = append(args, "admin@127.0.0.1")
	cmd := exec.Command("sftp", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	ctx := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer ctx.Stop()
	err := cmd.Run()
	return stderr.String(), err
}

// makeWIM captures a tree of incompressible data with wimlib-imagex into p.
func makeWIM(t *testing.T, p string, seed uint64, size int) []byte {
	t.Helper()
	wimtest.NeedWimlib(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, 9))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	os.MkdirAll(filepath.Join(src, "Windows/System32"), 0o755)
	os.WriteFile(filepath.Join(src, "Windows/System32/payload.bin"), data, 0o644)
	os.WriteFile(filepath.Join(src, "readme.txt"), []byte(strings.Repeat("winpe ", 1000)), 0o644)
	wimtest.Wimlib(t, "capture", src, p, "pe", "--compress=none")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUploadPublishesAtomically uploads a WIM slowly (sftp -l) while polling the store: the
// final name is absent until it holds the complete file; OnPublish names it.
func TestUploadPublishesAtomically(t *testing.T) {
	ts := startServer(t, nil)
	local := filepath.Join(t.TempDir(), "boot.wim")
	want := makeWIM(t, local, 1, 3<<20)
	final := filepath.Join(ts.store, "pe", "boot.wim")

	stop := make(chan struct{})
	polled := make(chan string, 1)
	go func() {
		absent, seen := 0, 0
		for {
			select {
			case <-stop:
				polled <- fmt.Sprintf("%d polls absent, %d complete", absent, seen)
				return
			default:
			}
			b, err := os.ReadFile(final)
			switch {
			case err != nil:
				absent++
			case !bytes.Equal(b, want):
				polled <- fmt.Sprintf("final name visible with %d of %d bytes (or different content)", len(b), len(want))
				return
			default:
				seen++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// 12000 Kbit/s: about two seconds for 3 MiB.
	out, err := ts.sftp(t, ts.adminKey, "mkdir /incoming/pe\nput "+local+" /incoming/pe/boot.wim\nls -l /\n", "-l", "12000")
	close(stop)
	res := <-polled
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if !strings.Contains(res, "polls absent") || strings.HasPrefix(res, "0 polls") {
		t.Fatalf("store polling: %s", res)
	}
	t.Logf("store polling during upload: %s", res)
	got, err := os.ReadFile(final)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("published file: %v, equal %v", err, bytes.Equal(got, want))
	}
	if names := ts.publishedNames(); !slices.Equal(names, []string{"pe/boot.wim"}) {
		t.Errorf("OnPublish got %v", names)
	}
	if !strings.Contains(out, "published pe/boot.wim") || !strings.Contains(out, "incoming") {
		t.Errorf("sftp output lacks the publish message or the listing:\n%s", out)
	}
	leftovers, _ := os.ReadDir(filepath.Join(ts.store, ".incoming"))
	if len(leftovers) != 0 {
		t.Errorf("incoming area not cleaned after the session: %v", leftovers)
	}
}

// TestCorruptRejected: a WIM with a flipped bit in a blob is rejected with the reason on sftp's
// stderr, not published, and removed from incoming.
func TestCorruptRejected(t *testing.T) {
	ts := startServer(t, nil)
	local := filepath.Join(t.TempDir(), "bad.wim")
	b := makeWIM(t, local, 2, 1<<20)
	b[len(b)/2] ^= 1 // inside the payload blob (uncompressed WIM)
	os.WriteFile(local, b, 0o644)
	notISO := filepath.Join(t.TempDir(), "fake.iso")
	os.WriteFile(notISO, bytes.Repeat([]byte("not an iso "), 10000), 0o644)
	for _, tc := range []struct{ file, want string }{
		{local, "SHA-1 mismatch"},
		{notISO, "not a valid ISO"},
	} {
		name := filepath.Base(tc.file)
		out, err := ts.sftp(t, ts.adminKey, "put "+tc.file+" /incoming/"+name+"\n")
		if err == nil {
			t.Fatalf("corrupt %s accepted:\n%s", name, out)
		}
		if !strings.Contains(out, "REJECTED "+name) || !strings.Contains(out, tc.want) {
			t.Errorf("sftp output for %s lacks a clear rejection (%q):\n%s", name, tc.want, out)
		}
		if _, err := os.Stat(filepath.Join(ts.store, name)); err == nil {
			t.Errorf("corrupt %s published", name)
		}
	}
	if names := ts.publishedNames(); len(names) != 0 {
		t.Errorf("OnPublish called for %v", names)
	}
	leftovers, _ := os.ReadDir(filepath.Join(ts.store, ".incoming"))
	if len(leftovers) != 0 {
		t.Errorf("rejected upload left in incoming: %v", leftovers)
	}
}

// TestWritesConfined: writes outside /incoming, hidden names, unknown extensions, links and
// symlinks in the store leading outside are all refused and leave the store as it was.
func TestWritesConfined(t *testing.T) {
	ts := startServer(t, nil)
	local := filepath.Join(t.TempDir(), "ok.img")
	os.WriteFile(local, bytes.Repeat([]byte{0xF6}, 1474560), 0o644)
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(ts.store, "escape"))
	os.WriteFile(filepath.Join(ts.store, "keep.img"), []byte("old"), 0o644)
	tests := []struct{ name, batch, want string }{
		{"store root", "put " + local + " /ok.img", "uploads go under /incoming/"},
		{"dotdot", "put " + local + " /incoming/../ok.img", "uploads go under /incoming/"},
		{"deep dotdot", "cd /incoming\nput " + local + " ../../../../tmp/ok.img", "uploads go under /incoming/"},
		{"hidden", "put " + local + " /incoming/.incoming/ok.img", "not allowed"},
		{"extension", "put " + local + " /incoming/evil.sh", "extension not accepted"},
		{"mkdir in store", "mkdir /newdir", "read-only"},
		{"remove in store", "rm /keep.img", "read-only"},
		{"rename", "rename /keep.img /incoming/x.img", "read-only"},
		{"symlink out", "symlink /etc/passwd /incoming/link.img", "refused symlink"},
		{"symlink in", "symlink /incoming/a.img /incoming/b.img", "not supported"},
		{"symlink in store", "put " + local + " /incoming/escape/ok.img", "REJECTED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ts.sftp(t, ts.adminKey, tc.batch+"\n")
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			if tc.want == "REJECTED" {
				tc.want = "publishing escape/ok.img failed"
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("a write reached outside the store: %v", entries)
	}
	got, _ := os.ReadFile(filepath.Join(ts.store, "keep.img"))
	entries, _ := os.ReadDir(ts.store)
	if string(got) != "old" || len(entries) != 3 { // .incoming, escape, keep.img
		t.Errorf("store changed: keep.img %q, entries %v", got, entries)
	}
	if names := ts.publishedNames(); len(names) != 0 {
		t.Errorf("OnPublish called for %v", names)
	}
}

// TestKeys: an unlisted key is refused; after the admin adds it to authorized_keys (no
// restart) it is accepted.
func TestKeys(t *testing.T) {
	ts := startServer(t, nil)
	intruder := filepath.Join(t.TempDir(), "intruder")
	keygen(t, intruder)
	out, err := ts.sftp(t, intruder, "ls /\n")
	if err == nil || !strings.Contains(out, "Permission denied (publickey)") {
		t.Fatalf("unlisted key: err %v, output:\n%s", err, out)
	}
	pub, _ := os.ReadFile(intruder + ".pub")
	admin, _ := os.ReadFile(ts.adminKey + ".pub")
	time.Sleep(10 * time.Millisecond) // a distinct mtime on coarse file systems
	os.WriteFile(ts.keysFile, append(append(admin, "# added\n"...), pub...), 0o600)
	if out, err := ts.sftp(t, intruder, "ls /\n"); err != nil {
		t.Fatalf("key added to authorized_keys still refused: %v\n%s", err, out)
	}
}

// TestConcurrentUploads: four clients upload at once, WIMs and an ISO; all are published.
func TestConcurrentUploads(t *testing.T) {
	ts := startServer(t, nil)
	dir := t.TempDir()
	var files []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("img%d.wim", i))
		makeWIM(t, p, uint64(10+i), 1<<20)
		files = append(files, p)
	}
	if _, err := exec.LookPath("genisoimage"); err == nil {
		src := t.TempDir()
		os.WriteFile(filepath.Join(src, "README.TXT"), []byte("rescue"), 0o644)
		p := filepath.Join(dir, "rescue.iso")
		if out, err := exec.Command("genisoimage", "-quiet", "-J", "-o", p, src).CombinedOutput(); err != nil {
			t.Fatalf("genisoimage: %v\n%s", err, out)
		}
		files = append(files, p)
	} else {
		t.Log("genisoimage not found: ISO upload not tested (install genisoimage)")
	}
	var wg sync.WaitGroup
	for _, p := range files {
		wg.Go(func() {
			if out, err := ts.sftp(t, ts.adminKey, "put "+p+" /incoming/\n"); err != nil {
				t.Errorf("uploading %s: %v\n%s", filepath.Base(p), err, out)
			}
		})
	}
	wg.Wait()
	var want []string
	for _, p := range files {
		want = append(want, filepath.Base(p))
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(ts.store, filepath.Base(p)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s not published intact: %v", filepath.Base(p), err)
		}
	}
	got := ts.publishedNames()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("OnPublish got %v, want %v", got, want)
	}
}

// TestCutOffUploadDiscarded: an upload of an allow-listed (unvalidated) type whose client dies
// mid-transfer is never published, and the incoming area is emptied.
func TestCutOffUploadDiscarded(t *testing.T) {
	ts := startServer(t, nil)
	local := filepath.Join(t.TempDir(), "dos.img")
	os.WriteFile(local, bytes.Repeat([]byte{0xF6}, 1474560), 0o644)
	bf := filepath.Join(t.TempDir(), "batch")
	os.WriteFile(bf, []byte("put "+local+" /incoming/dos.img\n"), 0o644)
	// 800 Kbit/s: about 15 seconds for the whole image; it is killed after one.
	cmd := exec.Command("sftp", "-F", "/dev/null", "-b", bf, "-i", ts.adminKey, "-P", fmt.Sprint(ts.port), "-l", "800",
		"-o", "UserKnownHostsFile="+ts.knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes", "admin@127.0.0.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	incoming := filepath.Join(ts.store, ".incoming")
	partial := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !partial; {
		filepath.WalkDir(incoming, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "dos.img" {
				if fi, err := d.Info(); err == nil && fi.Size() > 0 {
					partial = true
				}
			}
			return nil
		})
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill() // its ssh child sees the pipe close and drops the connection
	cmd.Wait()
	if !partial {
		t.Fatal("the upload never started")
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left, _ := os.ReadDir(incoming); len(left) == 0 {
			break
		}
	}
	if left, _ := os.ReadDir(incoming); len(left) != 0 {
		t.Errorf("incoming area still holds %v after the client died", left)
	}
	if _, err := os.Stat(filepath.Join(ts.store, "dos.img")); err == nil {
		t.Error("a cut-off upload was published")
	}
	if names := ts.publishedNames(); len(names) != 0 {
		t.Errorf("OnPublish called for %v", names)
	}
}
