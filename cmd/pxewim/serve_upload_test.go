package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeUploadAppearsInMenu: pxewim serve with an upload: section; the OpenSSH sftp client
// puts an ISO into /incoming and, as soon as it returns, the served iPXE menu holds an entry
// booting it; a corrupt ISO is refused (sftp fails, the store and menu stay without it).
func TestServeUploadAppearsInMenu(t *testing.T) {
	for _, tool := range []string{"sftp", "ssh-keygen", "genisoimage"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install openssh-client and genisoimage", tool)
		}
	}
	fx := newServeFixture(t, false)
	dir := fx.dir
	keygen := func(p string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pxewim-test", "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	admin, hostKey := filepath.Join(dir, "admin"), filepath.Join(dir, "host_ed25519")
	keygen(admin)
	keygen(hostKey)
	pub, _ := os.ReadFile(admin + ".pub")
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	port := serveFreePort(t, "tcp")
	hostPub, _ := os.ReadFile(hostKey + ".pub")
	knownHosts := filepath.Join(dir, "known_hosts")
	os.WriteFile(knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", port, hostPub)), 0o644)
	fx.writeConfig(t, "Menu A", fmt.Sprintf("upload: {listen: \"127.0.0.1:%d\", authorized_keys: %s, host_key: %s}\n", port, authKeys, hostKey))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, log, done := startServe(t, ctx, "--config", fx.config)

	iso := filepath.Join(dir, "rescue.iso")
	src := filepath.Join(dir, "isosrc")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "README.TXT"), []byte("rescue\n"), 0o644)
	if out, err := exec.Command("genisoimage", "-quiet", "-J", "-o", iso, src).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "broken.iso")
	os.WriteFile(bad, bytes.Repeat([]byte("not an iso "), 40000), 0o644)

	sftp := func(batch string) (string, error) {
		bf := filepath.Join(t.TempDir(), "batch")
		os.WriteFile(bf, []byte(batch), 0o644)
		cmd := exec.Command("sftp", "-F", "/dev/null", "-b", bf, "-i", admin, "-P", fmt.Sprint(port),
			"-o", "UserKnownHostsFile="+knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "admin@127.0.0.1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	menuURL := base + "/boot.ipxe?mac=52-54-00-12-34-56"
	if m := serveHTTPGet(t, menuURL); strings.Contains(m, "rescue.iso") {
		t.Fatalf("menu lists rescue.iso before the upload:\n%s", m)
	}
	start := time.Now()
	if out, err := sftp("mkdir /incoming/isos\nput " + iso + " /incoming/isos/rescue.iso\n"); err != nil {
		t.Fatalf("sftp upload: %v\n%s\nserve log:\n%s", err, out, log)
	}
	t.Logf("upload + publish + menu rebuild: %v", time.Since(start))
	menu := serveHTTPGet(t, menuURL) // no wait: the rebuild happens before the close returns
	if !strings.Contains(menu, "item iso-isos-rescue-iso rescue.iso (ISO, sanboot)") ||
		!strings.Contains(menu, "sanboot --no-describe "+base+"/files/isos/rescue.iso") {
		t.Errorf("menu right after the upload lacks the ISO's sanboot entry:\n%s", menu)
	}

	out, err := sftp("put " + bad + " /incoming/isos/broken.iso\n")
	if err == nil {
		t.Errorf("corrupt ISO upload succeeded:\n%s", out)
	}
	if !strings.Contains(out, "REJECTED") {
		t.Errorf("sftp output does not say the upload was rejected:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(fx.store, "isos", "broken.iso")); err == nil {
		t.Error("corrupt ISO was published into the store")
	}
	if m := serveHTTPGet(t, menuURL); strings.Contains(m, "broken.iso") {
		t.Errorf("menu lists the rejected ISO:\n%s", m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
