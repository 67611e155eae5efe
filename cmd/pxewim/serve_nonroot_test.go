package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeDefaultWithoutRoot runs the bare "pxewim serve" as an unprivileged user: port 69 is
// refused, so TFTP is off with a clear message, and HTTP serves anyway from a fresh ./store.
func TestServeDefaultWithoutRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as user nobody")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not found: install util-linux")
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n <= 69 {
			t.Skipf("unprivileged users may bind port 69 here (ip_unprivileged_port_start=%d)", n)
		}
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is 0700: let nobody through
	os.Chmod(dir, 0o777)
	bin := filepath.Join(dir, "pxewim")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH: the test builds pxewim")
	}
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := serveFreePort(t, "tcp")
	var log serveLog
	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
		bin, "serve", "--http", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	serveWaitFor(t, 15*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/boot.ipxe", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(b.String(), "iPXE shell")
	}, "HTTP from the built-in config", &log)
	for _, want := range []string{"TFTP is off: port 69 needs root or CAP_NET_BIND_SERVICE", "tftp=off",
		"created an empty store folder", "DHCP is off: to answer PXE clients"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "store")); err != nil || !fi.IsDir() {
		t.Errorf("./store not created: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, log.String())
	}
}
