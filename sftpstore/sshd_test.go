package sftpstore

import (
	"context"
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

// testSSHD is a real OpenSSH server started by a test on 127.0.0.1 with its own host key and a
// test client key, serving SFTP through internal-sftp.
type testSSHD struct {
	t          testing.TB
	dir        string // temp dir: keys, config, pid file
	port       int
	user       string
	clientKey  string
	knownHosts string
	hostPub    string
	cmd        *exec.Cmd
}

func keygen(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pxewim-test", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startSSHD starts sshd or skips the test when OpenSSH is missing.
func startSSHD(t testing.TB) *testSSHD {
	t.Helper()
	for _, tool := range []string{"/usr/sbin/sshd", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install openssh-server and openssh-client", tool)
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
	d := &testSSHD{t: t, dir: t.TempDir(), port: freePort(t), user: u.Username}
	keygen(t, filepath.Join(d.dir, "host_key"))
	d.clientKey = filepath.Join(d.dir, "client_key")
	keygen(t, d.clientKey)
	pub, err := os.ReadFile(filepath.Join(d.dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	d.hostPub = strings.TrimSpace(string(pub))
	d.knownHosts = filepath.Join(d.dir, "known_hosts")
	writeFile(t, d.knownHosts, fmt.Sprintf("[127.0.0.1]:%d %s\n", d.port, d.hostPub))
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UseDNS no
MaxStartups 100
MaxSessions 100
LogLevel QUIET
Subsystem sftp internal-sftp
`, d.port, filepath.Join(d.dir, "host_key"), filepath.Join(d.dir, "sshd.pid"), d.clientKey+".pub")
	writeFile(t, filepath.Join(d.dir, "sshd_config"), cfg)
	d.start()
	t.Cleanup(d.kill)
	return d
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

// start runs sshd in the foreground (-D) and waits until it accepts connections.
func (d *testSSHD) start() {
	t := d.t
	d.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(d.dir, "sshd_config"))
	d.cmd.Stderr = os.Stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.kill()
	t.Fatalf("sshd did not listen on 127.0.0.1:%d", d.port)
}

// kill stops the sshd we started and its per-connection children (found through /proc by
// our own PID, so no other process is touched): existing SFTP sessions drop at once.
func (d *testSSHD) kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	pids := descendants(d.cmd.Process.Pid)
	d.cmd.Process.Kill()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	d.cmd.Wait()
	d.cmd = nil
}

// descendants lists the child processes of pid, recursively.
func descendants(pid int) []int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		c, err := strconv.Atoi(f)
		if err == nil {
			out = append(out, c)
			out = append(out, descendants(c)...)
		}
	}
	return out
}

// url returns the store URL for a remote folder.
func (d *testSSHD) url(dir string) string {
	return fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", d.user, d.port, dir)
}

// open opens a Store on dir with the test key and known_hosts.
func (d *testSSHD) open(t testing.TB, dir string, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{URL: d.url(dir), KeyFiles: []string{d.clientKey}, KnownHostsFiles: []string{d.knownHosts}}
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
