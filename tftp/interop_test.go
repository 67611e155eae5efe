package tftp

// Interop tests against TFTP clients nobody here wrote: atftp (RFC 7440
// windowsize), tftp-hpa and curl, on 127.0.0.1 with a random port. Each
// test skips when its client is not installed (./test.sh installs them).

import (
	"bytes"
	"context"
	"fmt"
	"github.com/pxewim/pxewim/internal/foldfs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: install the Debian package %s (./test.sh does)", name, pkg)
	}
	return p
}

// run runs a client with a deadline and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// find waits for the ended transfer whose raw path is raw.
func (r *recorder) find(t *testing.T, raw string) endedTransfer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for i := len(r.ended) - 1; i >= 0; i-- {
			if r.ended[i].t.RawPath == raw {
				e := r.ended[i]
				r.mu.Unlock()
				return e
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no transfer of %q ended", raw)
	return endedTransfer{}
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not byte-exact with the %d-byte original", filepath.Base(path), len(got), len(want))
	}
}

func checkOptions(t *testing.T, e endedTransfer, want map[string]string) {
	t.Helper()
	if e.err != nil {
		t.Fatalf("transfer of %q failed on the server: %v", e.t.RawPath, e.err)
	}
	got := e.t.NegotiatedOptions()
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("negotiated options %v, want %s=%s", got, k, v)
		}
	}
}

// interopTree is the served folder: a Windows-style tree, read through
// case-folded (foldfs) like an admin's local folder would be.
func interopTree(t *testing.T) (dir string, files map[string][]byte, ts *testServer) {
	files = map[string][]byte{
		"Boot/BCD":            testData(262144, 10),
		"boot/boot.sdi":       testData(3170304, 11),
		"pxelinux.0":          testData(42000, 12),
		"sources/boot.wim":    testData(5<<20+123, 13),
		"exact-1468-multiple": testData(1468*50, 14),
		"empty":               nil,
	}
	dir = dirWith(t, files)
	ts = startServer(t, foldfs.New(os.DirFS(dir)), Config{MaxBlockSize: 65464})
	return dir, files, ts
}

func TestInteropATFTP(t *testing.T) {
	atftp := needTool(t, "atftp", "atftp")
	_, files, ts := interopTree(t)
	port := strconv.Itoa(ts.port)
	tests := []struct {
		name, remote, file string
		options            []string
		want               map[string]string
	}{
		{"windowsize 16", "sources/boot.wim", "sources/boot.wim",
			[]string{"blksize 1468", "windowsize 16", "tsize 0"},
			map[string]string{"blksize": "1468", "windowsize": "16", "tsize": strconv.Itoa(len(files["sources/boot.wim"]))}},
		{"windowsize 64 backslash", `\Boot\BCD`, "Boot/BCD",
			[]string{"blksize 1468", "windowsize 64", "tsize 0"},
			map[string]string{"windowsize": "64", "tsize": "262144"}},
		{"lock-step", `/boot\boot.sdi`, "boot/boot.sdi", []string{"blksize 1468"}, map[string]string{"blksize": "1468"}},
		{"big blocks", "PXELINUX.0", "pxelinux.0", []string{"blksize 65464", "windowsize 4"},
			map[string]string{"blksize": "65464", "windowsize": "4"}},
		{"exact multiple of blksize", "exact-1468-multiple", "exact-1468-multiple",
			[]string{"blksize 1468", "windowsize 8"}, map[string]string{"windowsize": "8"}},
		{"empty file", "empty", "empty", []string{"tsize 0", "windowsize 8"}, map[string]string{"tsize": "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			local := filepath.Join(t.TempDir(), "out")
			args := []string{}
			for _, o := range tc.options {
				args = append(args, "--option", o)
			}
			args = append(args, "-g", "-r", tc.remote, "-l", local, "127.0.0.1", port)
			if out, err := run(t, atftp, args...); err != nil {
				t.Fatalf("atftp %v: %v\n%s", args, err, out)
			}
			checkFile(t, local, files[tc.file])
			checkOptions(t, ts.rec.find(t, tc.remote), tc.want)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		out, err := run(t, atftp, "-g", "-r", "autoexec.ipxe", "-l", filepath.Join(t.TempDir(), "x"), "127.0.0.1", port)
		if err == nil || !strings.Contains(out, "file not found") {
			t.Fatalf("atftp fetching a missing file: %v\n%s", err, out)
		}
	})
}

func TestInteropTFTPHPA(t *testing.T) {
	tftp := needTool(t, "tftp", "tftp-hpa")
	_, files, ts := interopTree(t)
	port := strconv.Itoa(ts.port)
	tests := []struct{ remote, file string }{
		{"pxelinux.0", "pxelinux.0"},
		{`\Boot\BCD`, "Boot/BCD"},
		{`\BOOT\Boot.SDI`, "boot/boot.sdi"},
	}
	for _, tc := range tests {
		t.Run(tc.remote, func(t *testing.T) {
			local := filepath.Join(t.TempDir(), "out")
			out, err := run(t, tftp, "-m", "binary", "127.0.0.1", port, "-c", "get", tc.remote, local)
			if err != nil || strings.Contains(out, "Error") {
				t.Fatalf("tftp-hpa get %s: %v\n%s", tc.remote, err, out)
			}
			checkFile(t, local, files[tc.file])
			checkOptions(t, ts.rec.find(t, tc.remote), nil)
		})
	}
	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"get", "nothere", "/dev/null"}, "Error code 1:"},
		{"escape", []string{"get", `..\..\etc\passwd`, "/dev/null"}, "Error code 2:"},
		{"write", []string{"put", "/etc/hostname", "hostname"}, "Error code 2:"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-m", "binary", "127.0.0.1", port, "-c"}, tc.args...)
			out, _ := run(t, tftp, args...)
			if !strings.Contains(out, tc.want) {
				t.Fatalf("tftp-hpa %v: output %q, want %q", tc.args, out, tc.want)
			}
		})
	}
}

func TestInteropCurl(t *testing.T) {
	curl := needTool(t, "curl", "curl")
	dir, files, ts := interopTree(t)
	base := fmt.Sprintf("tftp://127.0.0.1:%d/", ts.port)
	tests := []struct {
		name, urlPath, raw, file string
		blksize                  string
		want                     map[string]string
	}{
		{"blksize 1468", "sources/boot.wim", "sources/boot.wim", "sources/boot.wim", "1468",
			map[string]string{"blksize": "1468", "tsize": strconv.Itoa(len(files["sources/boot.wim"]))}},
		{"backslash path", "%5CBoot%5CBCD", `\Boot\BCD`, "Boot/BCD", "1468", map[string]string{"blksize": "1468"}},
		{"default blocks", "pxelinux.0", "pxelinux.0", "pxelinux.0", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			local := filepath.Join(t.TempDir(), "out")
			args := []string{"-sS", "-o", local}
			if tc.blksize != "" {
				args = append(args, "--tftp-blksize", tc.blksize)
			}
			args = append(args, base+tc.urlPath)
			if out, err := run(t, curl, args...); err != nil {
				t.Fatalf("curl %v: %v\n%s", args, err, out)
			}
			checkFile(t, local, files[tc.file])
			checkOptions(t, ts.rec.find(t, tc.raw), tc.want)
		})
	}
	// curl turns TFTP error codes into exit codes: 68 = code 1 (file not
	// found), 69 = code 2 (access violation).
	exits := []struct {
		name string
		args []string
		want int
	}{
		{"missing file", []string{"-sS", "-o", "/dev/null", base + "autoexec.ipxe"}, 68},
		{"write refused", []string{"-sS", "-T", filepath.Join(dir, "pxelinux.0"), base + "upload"}, 69},
	}
	for _, tc := range exits {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, curl, tc.args...)
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tc.want {
				t.Fatalf("curl %v: %v, want exit code %d\n%s", tc.args, err, tc.want, out)
			}
		})
	}
}

// TestInteropCurlBlockWrap fetches 33 MiB at curl's default 512-byte
// blocks: more than 65535 blocks, so block numbers wrap to 0.
func TestInteropCurlBlockWrap(t *testing.T) {
	if testing.Short() {
		t.Skip("33 MiB lock-step transfer")
	}
	curl := needTool(t, "curl", "curl")
	data := testData(33<<20+777, 15)
	dir := dirWith(t, map[string][]byte{"boot.wim": data})
	ts := startServer(t, os.DirFS(dir), Config{})
	local := filepath.Join(t.TempDir(), "out")
	if out, err := run(t, curl, "-sS", "-o", local, fmt.Sprintf("tftp://127.0.0.1:%d/boot.wim", ts.port)); err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	checkFile(t, local, data)
	e := ts.rec.find(t, "boot.wim")
	if e.err != nil || e.t.Sent != int64(len(data)) {
		t.Fatalf("server: sent %d, err %v", e.t.Sent, e.err)
	}
}

// TestSymlinkEscape serves a folder holding a link to a file outside it:
// through os.Root (what the package doc recommends) the link is refused.
func TestSymlinkEscape(t *testing.T) {
	outside := dirWith(t, map[string][]byte{"secret": []byte("secret")})
	dir := dirWith(t, map[string][]byte{"ok": []byte("ok")})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")); err != nil {
		t.Skipf("symlink: %v", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	ts := startServer(t, foldfs.New(root.FS()), Config{})
	if _, err := newClient(t, ts.addr).get("ok", getOptions{}); err != nil {
		t.Fatalf("file inside the root: %v", err)
	}
	res, err := newClient(t, ts.addr).get("LINK", getOptions{})
	if err == nil {
		t.Fatalf("served %q through a symlink out of the root", res.data)
	}
}
