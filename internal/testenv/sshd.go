package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SSHD is OpenSSH's sshd serving SFTP on 127.0.0.1 for one test, with a throwaway host key and
// client key. It is stopped, with the session processes it forked, when the test ends.
type SSHD struct {
	Port       int
	ClientKey  string // private key file the server accepts
	KnownHosts string // known_hosts naming the server's host key at [127.0.0.1]:Port
	HostPub    string // the server's public host key, as in known_hosts
	User       string // the user the test runs as (the SFTP login)

	conf string
	cmd  *exec.Cmd
}

// StartSSHD starts sshd, or skips the test when OpenSSH is missing or /run/sshd cannot be made.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	for _, tool := range []string{"/usr/sbin/sshd", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install openssh-server and openssh-client (./test.sh does)", tool)
		}
	}
	// sshd insists on its privilege separation folder even in -D mode.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("sshd needs /run/sshd and it cannot be made (%v): run as root", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keygen := func(p string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	hostKey := filepath.Join(dir, "host_key")
	s := &SSHD{ClientKey: filepath.Join(dir, "client_key"), KnownHosts: filepath.Join(dir, "known_hosts"), User: u.Username}
	keygen(hostKey)
	keygen(s.ClientKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s.HostPub = strings.TrimSpace(string(hostPub))
	if err := os.WriteFile(s.KnownHosts, fmt.Appendf(nil, "[127.0.0.1]:%d %s\n", s.Port, s.HostPub), 0o644); err != nil {
		t.Fatal(err)
	}
	s.conf = filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(s.conf, fmt.Appendf(nil, `ListenAddress 127.0.0.1:%d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100
MaxSessions 100
LogLevel QUIET
Subsystem sftp internal-sftp
`, s.Port, hostKey, filepath.Join(dir, "sshd.pid"), s.ClientKey+".pub"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Start(t)
	return s
}

// Start runs sshd (again, after Stop: same port, keys and config) and waits until it accepts
// connections.
func (s *SSHD) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", s.conf)
	s.cmd.Stderr = os.Stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("sshd did not listen on 127.0.0.1:%d: %v", s.Port, err)
		}
		time.Sleep(20 * time.Millisecond) // sshd has no readiness signal but its port
	}
}

// Stop kills sshd and its per-connection children: existing SFTP sessions drop at once.
func (s *SSHD) Stop() {
	if s.cmd != nil {
		KillTree(s.cmd)
		s.cmd = nil
	}
}

// URL is the sftp:// store URL of folder root on this server.
func (s *SSHD) URL(root string) string {
	return fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", s.User, s.Port, root)
}

// KillTree kills a process the test started and its children (found through /proc by its
// PID), then reaps it.
func KillTree(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	var kids func(pid int) []int
	kids = func(pid int) []int {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		var out []int
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(append(out, c), kids(c)...)
			}
		}
		return out
	}
	pids := kids(cmd.Process.Pid)
	cmd.Process.Kill()
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	cmd.Wait()
}
