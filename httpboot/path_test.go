package httpboot

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string // want "" means refused
	}{
		{"boot/bcd", "boot/bcd"},
		{`\Boot\BCD`, "Boot/BCD"},
		{`/boot\x`, "boot/x"},
		{"//a///b/", "a/b"},
		{"./a/./b", "a/b"},
		{"/", "."},
		{"", "."},
		{"a/../b", ""},
		{"..", ""},
		{`..\..\windows`, ""},
		{"a/..", ""},
		{"a\x00b", ""},
		{"\xc0\xae\xc0\xae/x", ""},
		{strings.Repeat("a/", MaxPathLen/2) + "x", ""},
		{strings.Repeat("a", MaxPathLen), strings.Repeat("a", MaxPathLen)},
		{"...", "..."}, // a legal (if odd) file name, not a parent reference
		{"%2e%2e", "%2e%2e"},
		{"C:/Windows", "C:/Windows"},
	}
	for _, tt := range tests {
		got, err := CleanName(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("CleanName(%.40q) = %q, want refusal", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CleanName(%.40q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRoute(t *testing.T) {
	sum := strings.Repeat("ab", 20)
	tests := []struct {
		path, kind, name, mac string
		status                int // 0 when the route parses
	}{
		{"/boot.ipxe", "script", "boot.ipxe", "", 0},
		{"/ipxe/menu.ipxe", "script", "menu.ipxe", "", 0},
		{"/ipxe/sub/x.ipxe", "script", "sub/x.ipxe", "", 0},
		{"/files/sources/boot.wim", "file", "sources/boot.wim", "", 0},
		{`/files\Boot\BCD`, "file", "Boot/BCD", "", 0},
		{"/blob/" + sum + "/boot.wim", "blob", "boot.wim", "", 0},
		{"/mac/52-54-00-12-34-56/files/x.efi", "file", "x.efi", "52:54:00:12:34:56", 0},
		{"/mac/52:54:00:12:34:56/boot.ipxe", "script", "boot.ipxe", "52:54:00:12:34:56", 0},
		{"/mac/nonsense/boot.ipxe", "", "", "", 400},
		{"/", "", "", "", 404},
		{"/files/", "", "", "", 404},
		{"/favicon.ico", "", "", "", 404},
		{"/files/../x", "", "", "", 400},
	}
	for _, tt := range tests {
		rt, err := parseRoute(tt.path)
		if tt.status != 0 {
			if err == nil || statusOf(err) != tt.status {
				t.Errorf("parseRoute(%q) = %+v, %v; want status %d", tt.path, rt, err, tt.status)
			}
			continue
		}
		if err != nil || rt.kind.String() != tt.kind || rt.name != tt.name || (tt.mac != "" && rt.mac.String() != tt.mac) {
			t.Errorf("parseRoute(%q) = %v %q %v, %v; want %s %q %s", tt.path, rt.kind, rt.name, rt.mac, err, tt.kind, tt.name, tt.mac)
		}
	}
}

// TestHostilePaths sends raw request lines over TCP to a handler serving a real folder (through
// os.Root, as the local store should) next to a secret file. Every escape form must be refused,
// and the secret must never appear in a response.
func TestHostilePaths(t *testing.T) {
	dir := t.TempDir()
	const secret = "TOP-SECRET-OUTSIDE-ROOT"
	root := filepath.Join(dir, "root")
	for _, p := range []string{root + "/sub", root + "/%2e%2e"} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{dir + "/secret.txt": secret, root + "/inside.txt": "inside", root + "/sub/f.txt": "sub"} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../secret.txt", root+"/link-out"); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	h := NewHandler(Config{Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return r.FS(), nil }, Logger: discardLogger()})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	sum := strings.Repeat("00", 20)
	tests := []struct {
		target string
		status int
	}{
		{"/files/inside.txt", 200}, // control: the setup works
		{"/files/sub/f.txt", 200},
		{"/files/../secret.txt", 400},
		{"/files/sub/../../secret.txt", 400},
		{"/files/..%2fsecret.txt", 400},
		{"/files/%2e%2e/secret.txt", 400},
		{"/files/%2E%2E/secret.txt", 400},
		{"/files/.%2e/secret.txt", 400},
		{"/files/%2e./secret.txt", 400},
		{"/files/..%5csecret.txt", 400},
		{"/files/%5c..%5csecret.txt", 400},
		{"/files/..%5C..%5Csecret.txt", 400},
		{`/files/..\secret.txt`, 400},
		{`/files\..\secret.txt`, 400},
		{"/files/%252e%252e/secret.txt", 404}, // a literal "%2e%2e" directory, inside the root
		{"/files/%00secret.txt", 400},
		{"/files/a%00/../../secret.txt", 400},
		{"/files/%c0%ae%c0%ae/secret.txt", 400},
		{"/files/..%c0%afsecret.txt", 400},
		{"/files/" + strings.Repeat("a", MaxPathLen), 400},
		{"/files//secret.txt", 404},
		{"/files/%2fsecret.txt", 404},
		{"/files/" + dir[1:] + "/secret.txt", 404}, // the absolute path, taken as relative to the root
		{"/files/link-out", 404},                   // os.Root refuses a symlink leading out
		{"/blob/" + sum + "/../../secret.txt", 400},
		{"/mac/52-54-00-12-34-56/files/../../secret.txt", 400},
		{"/mac/..%2f../files/x", 400},
		{"/ipxe/../../secret.txt", 400},
		{"/../secret.txt", 400},
		{"http://evil.example/files/../secret.txt", 400},
		{"/files/sub", 404}, // a directory is not listed
		{"*", 404},
	}
	for _, tt := range tests {
		t.Run(tt.target[:min(len(tt.target), 60)], func(t *testing.T) {
			status, body := rawGet(t, srv.Listener.Addr().String(), tt.target)
			if status != tt.status {
				t.Errorf("status %d, want %d (%q)", status, tt.status, body)
			}
			if strings.Contains(body, secret) {
				t.Fatalf("the secret outside the root was served")
			}
		})
	}
}

// rawGet sends one GET with target verbatim in the request line (no client-side cleaning).
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %.60q: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
