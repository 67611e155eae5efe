package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Netns is a Linux network namespace created by this test process. Processes started through
// Start are tracked and stopped by Close, which then deletes the namespace.
type Netns struct {
	Name string

	mu    sync.Mutex
	procs []*Proc
}

// namePrefix starts every namespace this package creates; the PID after it lets a later run
// remove namespaces left behind by a test binary that was killed before its cleanup ran.
const namePrefix = "pxw-"

// UniqueName returns a namespace name that holds this process's PID and a random tag, e.g.
// "pxw-4242-9f3a-srv", so parallel runs and reruns never collide.
func UniqueName(role string) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d-%s-%s", namePrefix, os.Getpid(), hex.EncodeToString(b[:]), role)
}

// NewNetns creates namespace name with its loopback up.
func NewNetns(name string) (*Netns, error) {
	if out, err := run("ip", "netns", "add", name); err != nil {
		return nil, fmt.Errorf("create netns %s: %w: %s", name, err, out)
	}
	ns := &Netns{Name: name}
	if _, err := ns.IP("link", "set", "lo", "up"); err != nil {
		_ = ns.Close()
		return nil, err
	}
	return ns, nil
}

// MustNetns creates a uniquely named namespace for role and deletes it in t.Cleanup.
func MustNetns(t testing.TB, role string) *Netns {
	t.Helper()
	ns, err := NewNetns(UniqueName(role))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	return ns
}

// IP runs `ip -n NAME args...` and returns its combined output.
func (ns *Netns) IP(args ...string) (string, error) {
	out, err := run("ip", append([]string{"-n", ns.Name}, args...)...)
	if err != nil {
		return out, fmt.Errorf("netns %s: ip %s: %w: %s", ns.Name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// Exec runs argv inside the namespace, waits for it and returns its combined output.
func (ns *Netns) Exec(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if err != nil {
		return buf.String(), fmt.Errorf("netns %s: %s: %w: %s", ns.Name, strings.Join(argv, " "), err, buf.String())
	}
	return buf.String(), nil
}

// Start runs argv inside the namespace in the background, output appended to logPath. The
// process is stopped by Close (or earlier by the caller through the returned Proc).
func (ns *Netns) Start(name, logPath string, argv ...string) (*Proc, error) {
	p, err := StartProc(name, logPath, append([]string{"ip", "netns", "exec", ns.Name}, argv...)...)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns.Name, err)
	}
	ns.mu.Lock()
	ns.procs = append(ns.procs, p)
	ns.mu.Unlock()
	return p, nil
}

// Close stops the processes started in the namespace (newest first) and deletes it. Processes
// in it that this package did not start are reported, not killed.
func (ns *Netns) Close() error {
	ns.mu.Lock()
	procs := ns.procs
	ns.procs = nil
	ns.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Stop(3 * time.Second)
	}
	var msg []string
	if out, _ := run("ip", "netns", "pids", ns.Name); strings.TrimSpace(out) != "" {
		msg = append(msg, fmt.Sprintf("processes not started by the test still in %s (left alone): %s",
			ns.Name, strings.Join(strings.Fields(out), " ")))
	}
	if out, err := run("ip", "netns", "del", ns.Name); err != nil && !strings.Contains(out, "No such file") {
		msg = append(msg, fmt.Sprintf("delete netns %s: %v: %s", ns.Name, err, out))
	}
	if len(msg) > 0 {
		return fmt.Errorf("%s", strings.Join(msg, "; "))
	}
	return nil
}

var staleName = regexp.MustCompile(`^` + namePrefix + `(\d+)-[0-9a-f]{4}-`)

// SweepStale deletes namespaces this package created in an earlier test process that no longer
// exists (a run killed by `go test -timeout` skips t.Cleanup). Namespaces of live processes and
// namespaces still holding processes are left alone.
func SweepStale() {
	out, err := run("ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := staleName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if _, err := os.Stat("/proc/" + m[1]); err == nil || pid == os.Getpid() {
			continue
		}
		if pids, _ := run("ip", "netns", "pids", f[0]); strings.TrimSpace(pids) != "" {
			continue
		}
		_, _ = run("ip", "netns", "del", f[0])
	}
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
