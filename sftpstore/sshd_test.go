package sftpstore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// testSSHD is OpenSSH's sshd on 127.0.0.1 (testenv.StartSSHD: own host key, a test client
// key, SFTP through internal-sftp) that a test can stop and start again.
type testSSHD struct {
	*testenv.SSHD
	t testing.TB
}

// startSSHD starts sshd or skips the test when OpenSSH is missing.
func startSSHD(t testing.TB) *testSSHD {
	t.Helper()
	return &testSSHD{SSHD: testenv.StartSSHD(t), t: t}
}

// start runs the stopped sshd again (same port, keys and config).
func (d *testSSHD) start() { d.Start(d.t) }

// kill stops sshd and its per-connection children: existing SFTP sessions drop at once.
func (d *testSSHD) kill() { d.Stop() }

func keygen(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pxewim-test", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

func writeFile(t testing.TB, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// open opens a Store on dir with the test key and known_hosts.
func (d *testSSHD) open(t testing.TB, dir string, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{URL: d.URL(dir), KeyFiles: []string{d.ClientKey}, KnownHostsFiles: []string{d.KnownHosts}}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
