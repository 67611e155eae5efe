package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeRemoteStore: store: sftp://... against a real OpenSSH sshd on loopback. Files inside
// a remote WIM are served byte-exact over HTTP after the WIM passed verification; a WIM with a
// corrupted byte is refused (never served), and the log says why.
func TestServeRemoteStore(t *testing.T) {
	for _, tool := range []string{"/usr/sbin/sshd", "ssh-keygen", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install openssh-server, openssh-client and curl", tool)
		}
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("sshd needs /run/sshd (%v): run as root", err)
	}
	fx := newServeFixture(t, false)
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(fx.store, "tools.wim"))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[300] ^= 0xff // inside the first resource: its SHA-1 no longer matches
	os.WriteFile(filepath.Join(fx.store, "broken.wim"), bad, 0o644)

	storeURL, sftpConf := startCatalogSSHD(t, fx.store) // serve_catalog_test.go
	conf := filepath.Join(dir, "pxewim.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`store: %s
%sipxe: {dir: %s}
menu: {timeout: 5s}
entries:
  - name: rescue
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: tools.wim:1/boot/initrd
`, storeURL, sftpConf, filepath.Join(fx.dir, "ipxe"))), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, log, done := startServe(t, ctx, "--config", conf)
	get := func(path string) ([]byte, error) {
		return exec.Command("curl", "-sSfL", "--globoff", base+"/files/"+path).Output()
	}
	for path, want := range map[string][]byte{"tools.wim:1/boot/vmlinuz": fx.kernel, "TOOLS.WIM:1/boot/initrd": fx.initrd, "tools.wim": good} {
		got, err := get(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("remote %s: %d bytes (%v), want %d\n%s", path, len(got), err, len(want), log)
		}
	}
	if menu := serveHTTPGet(t, base+"/boot.ipxe?mac=52-54-00-12-34-56"); !strings.Contains(menu, "kernel "+base) {
		t.Errorf("menu over the remote store lacks the kernel URL:\n%s", menu)
	}
	for _, path := range []string{"broken.wim:1/boot/vmlinuz", "broken.wim"} {
		if got, err := get(path); err == nil {
			t.Errorf("corrupt remote WIM served: %s (%d bytes)", path, len(got))
		}
	}
	if !strings.Contains(log.String(), "remote WIM failed verification") {
		t.Errorf("log does not say the remote WIM failed verification:\n%s", log)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}

	// pxewim check connects too; a known_hosts without the server's key is refused.
	var out bytes.Buffer
	if err := runServe(context.Background(), []string{"--config", conf, "--check"}, &out, &out); err != nil || !strings.Contains(out.String(), "config valid") {
		t.Errorf("check over the remote store: %v\n%s", err, out.String())
	}
	wrong := filepath.Join(dir, "wrong_key")
	if b, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrong).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, b)
	}
	wrongPub, _ := os.ReadFile(wrong + ".pub")
	u, err := url.Parse(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	wrongHosts := filepath.Join(dir, "wrong_known_hosts")
	os.WriteFile(wrongHosts, []byte(fmt.Sprintf("[127.0.0.1]:%s %s", u.Port(), wrongPub)), 0o644)
	cfgText, _ := os.ReadFile(conf)
	os.WriteFile(conf, regexp.MustCompile(`known_hosts: \[[^\]]*\]`).ReplaceAll(cfgText, []byte("known_hosts: ["+wrongHosts+"]")), 0o644)
	out.Reset()
	err = runServe(context.Background(), []string{"--config", conf, "--check"}, &out, &out)
	if err == nil || !strings.Contains(out.String(), "host key not trusted") {
		t.Errorf("wrong host key: check gave %v\n%s", err, out.String())
	}
}
