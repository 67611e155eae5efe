package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pxewim/pxewim/internal/testenv"
)

// unitSetting collects the values of every KEY= line of a unit file text.
func unitSetting(unit, key string) []string {
	var out []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// setupBoundingSet is the capability bounding set of pxewim.service with the Setup drop-in:
// systemd ORs the CapabilityBoundingSet= lines of the unit and its drop-ins.
func setupBoundingSet(t *testing.T) []string {
	t.Helper()
	var caps []string
	for _, f := range []string{"../../configs/pxewim.service", "../../configs/pxewim-setup.conf"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range unitSetting(string(b), "CapabilityBoundingSet") {
			caps = append(caps, strings.Fields(v)...)
		}
	}
	return caps
}

// TestSystemdUnitSetupDropIn keeps configs/pxewim-setup.conf (the drop-in that lets the Windows
// Setup share run under pxewim.service) loadable by systemd together with the unit, and holding
// what the share needs: root, CAP_SYS_ADMIN for the FUSE mount, /dev/fuse allowed, the mount and
// set*id system calls, a state folder the share's unix user can pass through.
func TestSystemdUnitSetupDropIn(t *testing.T) {
	unit, err := os.ReadFile("../../configs/pxewim.service")
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile("../../configs/pxewim-setup.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=root", "PrivateDevices=no", "DeviceAllow=/dev/fuse rw", "SystemCallFilter=",
		"SystemCallFilter=@system-service @mount", "StateDirectoryMode=0751"} {
		if !strings.Contains(string(dropIn), "\n"+want+"\n") {
			t.Errorf("drop-in lacks the line %q", want)
		}
	}
	caps := strings.Join(setupBoundingSet(t), " ")
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(caps, c) {
			t.Errorf("the bounding set with the drop-in lacks %s: %s", c, caps)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: install systemd to verify the unit with its drop-in")
	}
	// The unit (ExecStart on an executable that exists here) and the drop-in, found by
	// systemd-analyze in a unit path of their own.
	dir := t.TempDir()
	exec0 := strings.Fields(unitSetting(string(unit), "ExecStart")[0])[0]
	os.WriteFile(filepath.Join(dir, "pxewim.service"), []byte(strings.ReplaceAll(string(unit), exec0, "/bin/true")), 0o644)
	os.MkdirAll(filepath.Join(dir, "pxewim.service.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "pxewim.service.d", "setup.conf"), dropIn, 0o644)
	cmd := exec.Command(sa, "verify", "pxewim.service")
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify with the drop-in: %v\n%s", err, out)
	}
}

// TestServeSetupShareUnitSandbox runs pxewim serve with a Windows ISO and the Setup share inside
// what pxewim.service with configs/pxewim-setup.conf gives it, as far as it can be built without
// systemd as PID 1: its own mount namespace (PrivateMounts) in which every mount is read-only
// except the state folder (ProtectSystem=strict, ReadWritePaths), the unit's and drop-in's
// capability bounding set and nothing inheritable (CapabilityBoundingSet, as root),
// no_new_privs (NoNewPrivileges) and UMask=0027, the state folder 0751 (StateDirectoryMode).
// pxewim mounts the FUSE view and starts smbd there; smbclient with the credentials of the
// served boot.wim reads install.wim byte-exact, and smbd's /proc status shows the bounding set
// and no_new_privs. MemoryDenyWriteExecute is the kernel's PR_SET_MDWE, set by the daemon
// process before it starts and inherited by smbd (the test says so and goes on without it on a
// kernel older than 6.3). Not built here (systemd applies them, this test cannot): the seccomp
// filter (SystemCallFilter), DevicePolicy/DeviceAllow, RestrictAddressFamilies,
// RestrictNamespaces, PrivateTmp and ProtectKernel*.
func TestServeSetupShareUnitSandbox(t *testing.T) {
	requireSetupShare(t, "starts smbd in a sandbox", "unshare", "setpriv", "mount", "smbclient", "wimlib-imagex", "genisoimage")
	fx := buildSetupISOs(t, 12)
	state := filepath.Join(fx.dir, "state")
	os.MkdirAll(state, 0o751)
	os.Chmod(state, 0o751)
	httpPort, smbPort, adminPort := serveFreePort(t, "tcp"), serveFreePort(t, "tcp"), serveFreePort(t, "tcp")
	config := filepath.Join(fx.dir, "pxewim.yaml")
	os.WriteFile(config, fmt.Appendf(nil, `store: %s
state_dir: %s
listen: {http: "127.0.0.1:%d", tftp: ""}
admin: {listen: "127.0.0.1:%d"}
dhcp: {mode: off}
winpe: {auto: true}
setup: {share: on, listen: 127.0.0.1, port: %d, advertise: 127.0.0.1}
`, fx.store, state, httpPort, adminPort, smbPort), 0o644)

	var keep []string
	for _, c := range setupBoundingSet(t) {
		keep = append(keep, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	probe := filepath.Join(fx.dir, "probe")
	script := `set -e
mount --bind "$STATE" "$STATE"
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r mp; do
	case "$mp" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|"$STATE") continue;; esac
	mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
if touch "$PROBE" 2>/dev/null; then echo "sandbox: $PROBE is writable" >&2; exit 97; fi
touch "$STATE/probe" && rm "$STATE/probe"
umask 027
exec setpriv --bounding-set=-all,` + strings.Join(keep, ",") + ` --inh-caps=-all --no-new-privs -- "$@"`
	logPath := filepath.Join(fx.dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("unshare", "--mount", "--propagation", "slave", "sh", "-c", script, "sh", os.Args[0], "-test.run=^TestServeSandboxHelperProcess$")
	cmd.Env = append(os.Environ(), "STATE="+state, "PROBE="+probe, sandboxHelperEnv+"=1",
		serveHelperEnv+"="+strings.Join([]string{"--config", config, "--log-level", "debug"}, "\n"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // unshare and sh exec: the PID is pxewim's
		select {
		case <-exited:
		case <-time.After(time.Minute):
			testenv.KillTree(cmd)
			t.Error("serve did not stop on SIGTERM")
		}
	})
	readLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(readLog(), "setup: Windows Setup share running"); {
		select {
		case <-exited:
			t.Fatalf("serve in the sandbox exited: %v\n%s", waitErr, readLog())
		default:
		}
		if time.Now().After(deadline) || strings.Contains(readLog(), "setup: the Windows Setup share is not running") {
			t.Fatalf("the share did not start in the sandbox:\n%s", readLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(readLog(), "sandbox: no PR_SET_MDWE") {
		t.Log("this kernel has no PR_SET_MDWE (Linux 6.3+): MemoryDenyWriteExecute is not part of the sandbox here")
	}
	if _, err := os.Stat(probe); err == nil {
		t.Fatal("the sandbox's probe file exists: the tree was not read-only")
	}

	// smbd runs in the sandbox: the bounding set and no_new_privs are its own.
	pidB, err := os.ReadFile(filepath.Join(state, "smb", "run", "smbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pidB)) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	bnd := regexp.MustCompile(`(?m)^CapBnd:\s*([0-9a-f]+)`).FindSubmatch(status)
	if bnd == nil || !regexp.MustCompile(`(?m)^NoNewPrivs:\s*1$`).Match(status) {
		t.Fatalf("smbd's status shows no sandbox:\n%s", status)
	}
	mask, _ := strconv.ParseUint(string(bnd[1]), 16, 64)
	want := map[string]uint{"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_KILL": 5,
		"CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21}
	var wantMask uint64
	for _, c := range setupBoundingSet(t) {
		bit, ok := want[c]
		if !ok {
			t.Fatalf("capability %s of the unit is not known to this test", c)
		}
		wantMask |= 1 << bit
	}
	if mask != wantMask {
		t.Errorf("smbd's bounding set %#x, want %#x (the unit's and the drop-in's)", mask, wantMask)
	}

	// The served boot.wim's credentials read install.wim byte-exact through the share.
	_, m := servedShareScript(t, fmt.Sprintf("http://127.0.0.1:%d/files/winpe/pe-win11-iso-sources-boot-2/boot.wim", httpPort), readLog)
	got, o, err := loopbackSMBGet(t, smbPort, smbAuthFile(t, m[3], m[4]), `win11\sources\install.wim`)
	if err != nil {
		t.Fatalf("smbclient in the sandbox: %v\n%s\n%s", err, o, readLog())
	}
	if sum := sha1File(t, got); sum != fx.installSHA1 {
		t.Fatalf("install.wim through the sandboxed share: sha1 %s, want %s", sum, fx.installSHA1)
	}
}

const sandboxHelperEnv = "PXEWIM_SANDBOX_HELPER"

// TestServeSandboxHelperProcess is the daemon of TestServeSetupShareUnitSandbox, not a test: it
// refuses memory that is both writable and executable (PR_SET_MDWE, as MemoryDenyWriteExecute
// does; smbd inherits it), then runs as TestServeHelperProcess.
func TestServeSandboxHelperProcess(t *testing.T) {
	if os.Getenv(sandboxHelperEnv) == "" {
		t.Skip("helper process: runs only inside TestServeSetupShareUnitSandbox")
	}
	if err := unix.Prctl(unix.PR_SET_MDWE, unix.PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox: no PR_SET_MDWE:", err)
	} else if got, err := unix.PrctlRetInt(unix.PR_GET_MDWE, 0, 0, 0, 0); err != nil || got&unix.PR_MDWE_REFUSE_EXEC_GAIN == 0 {
		fmt.Fprintln(os.Stderr, "sandbox: PR_SET_MDWE did not hold:", got, err)
		os.Exit(2)
	}
	TestServeHelperProcess(t)
}
