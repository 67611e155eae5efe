package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// StartNginx runs nginx in the foreground for one test (our own process, stopped by its PID at
// cleanup) on a free 127.0.0.1 port, and returns its base URL. conf writes nginx.conf given the
// prefix folder (which holds tmp/ and cache/, and gets error.log) and the listen address. The
// test skips when nginx is missing; on a failed test the error and access logs are logged.
func StartNginx(t testing.TB, conf func(prefix, listen string) string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Skip("nginx not found: install the Debian package nginx (./test.sh does)")
		}
		bin = "/usr/sbin/nginx"
	}
	prefix := t.TempDir()
	for _, d := range []string{"tmp", "cache"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf(prefix, listen)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cf, "-p", prefix, "-e", filepath.Join(prefix, "error.log"),
		"-g", "daemon off; pid "+filepath.Join(prefix, "nginx.pid")+";")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // our PID only
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			for _, f := range []string{"error.log", "access.log"} {
				b, _ := os.ReadFile(filepath.Join(prefix, f))
				t.Logf("nginx %s:\n%s", f, b)
			}
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			return "http://" + listen
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Fatalf("nginx exited at startup: %s\n%s", stderr.String(), b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s within 10s", listen)
		}
		time.Sleep(20 * time.Millisecond) // nginx has no readiness signal but its port
	}
}
