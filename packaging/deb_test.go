package packaging

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const testVersion = "1.2.3~test"

var (
	debsOnce sync.Once
	debsDir  string
	debs     map[string]string // arch -> .deb path
	debsErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if debsDir != "" {
		os.RemoveAll(debsDir)
	}
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	r, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// buildDebs builds the amd64 and arm64 packages once for every test of the run.
func buildDebs(t *testing.T) map[string]string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds pxewim for amd64 and arm64 and packages both: skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH: the package build compiles pxewim")
	}
	root := repoRoot(t)
	debsOnce.Do(func() {
		debsDir, debsErr = os.MkdirTemp("", "pxewim-debtest-")
		if debsErr != nil {
			return
		}
		debs = map[string]string{}
		for _, arch := range Arches {
			p, err := Build(Options{Root: root, Arch: arch, Version: testVersion, OutDir: debsDir})
			if err != nil {
				debsErr = err
				return
			}
			debs[arch] = p
		}
	})
	if debsErr != nil {
		t.Fatal(debsErr)
	}
	return debs
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not found (Debian package %s)", name, map[string]string{
			"dpkg-deb": "dpkg", "dpkg": "dpkg", "systemd-analyze": "systemd", "qemu-aarch64-static": "qemu-user-static",
		}[name])
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// debEntry is one line of "dpkg-deb -c".
type debEntry struct{ mode, owner string }

func debContents(t *testing.T, deb string) map[string]debEntry {
	t.Helper()
	m := map[string]debEntry{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Fatalf("dpkg-deb -c: unexpected line %q", line)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if p == "" {
			p = "/"
		}
		m[p] = debEntry{f[0], f[1]}
	}
	return m
}

// TestDebPackage builds the amd64 and arm64 packages with nfpm and inspects them with dpkg-deb:
// control fields and relations, every file with its mode and owner (and nothing else), the
// conffile list, the maintainer scripts, the unit and config as installed, and the binary
// (static, the right ELF machine, the version stamped); the unit passes systemd-analyze verify.
func TestDebPackage(t *testing.T) {
	needTool(t, "dpkg-deb")
	root := repoRoot(t)
	for arch, deb := range buildDebs(t) {
		t.Run(arch, func(t *testing.T) {
			if got, want := filepath.Base(deb), "pxewim_"+testVersion+"_"+arch+".deb"; got != want {
				t.Errorf("file name %q, want %q", got, want)
			}
			depends, recommends, suggests := Relations(arch)
			wantFields := map[string]string{
				"Package": "pxewim", "Version": testVersion, "Architecture": arch, "Section": "net",
				"Priority": "optional", "Depends": strings.Join(depends, ", "),
				"Recommends": strings.Join(recommends, ", "), "Suggests": "samba, libnss-wrapper, wimtools",
			}
			for field, want := range wantFields {
				if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, field)); got != want {
					t.Errorf("control %s: %q, want %q", field, got, want)
				}
			}
			rec := strings.Join(recommends, ",")
			if strings.Contains(rec, "grub-efi-amd64-signed") != (arch == "amd64") || strings.Contains(rec, "shim-signed") != (arch == "amd64") {
				t.Errorf("%s: Recommends %q: the signed x64 shim and GRUB belong to amd64 only", arch, rec)
			}
			if s := strings.Join(suggests, ", "); s != "samba, libnss-wrapper, wimtools" {
				t.Errorf("Suggests %q", s)
			}
			if got := strings.TrimSpace(run(t, "dpkg-deb", "-I", deb, "conffiles")); got != ConfPath {
				t.Errorf("conffiles: %q, want only %s", got, ConfPath)
			}

			want := map[string]debEntry{
				BinPath:  {"-rwxr-xr-x", "root/root"},
				UnitPath: {"-rw-r--r--", "root/root"},
				ConfPath: {"-rw-r--r--", "root/root"},
				StoreDir: {"drwxr-xr-x", "root/root"},
			}
			for _, ex := range []string{"proxy.yaml", "full.yaml", "images.yaml", "dnsmasq-coexistence.md", "pxewim-setup.conf"} {
				want[ExamplesDir+"/"+ex] = debEntry{"-rw-r--r--", "root/root"}
			}
			got := debContents(t, deb)
			for p, w := range want {
				if g, ok := got[p]; !ok {
					t.Errorf("package lacks %s", p)
				} else if g != w {
					t.Errorf("%s: %s %s, want %s %s", p, g.mode, g.owner, w.mode, w.owner)
				}
			}
			var extra []string
			for p, g := range got {
				if _, ok := want[p]; ok {
					continue
				}
				// Parent folders of the files above, root's and 0755.
				isParent := false
				for w := range want {
					if strings.HasPrefix(w, p+"/") || p == "/" {
						isParent = true
					}
				}
				if !isParent || g != (debEntry{"drwxr-xr-x", "root/root"}) {
					extra = append(extra, fmt.Sprintf("%s %s %s", g.mode, g.owner, p))
				}
			}
			sort.Strings(extra)
			if len(extra) > 0 {
				t.Errorf("unexpected entries in the package:\n%s", strings.Join(extra, "\n"))
			}
			for _, p := range []string{"/var/lib/pxewim", "/etc/systemd"} {
				if _, ok := got[p]; ok {
					t.Errorf("package ships %s: it is made at install time or by the admin", p)
				}
			}

			// Maintainer scripts: ours, executable, valid sh.
			ctl := t.TempDir()
			run(t, "dpkg-deb", "-e", deb, ctl)
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				b, err := os.ReadFile(filepath.Join(ctl, s))
				if err != nil {
					t.Fatalf("control.tar: %v", err)
				}
				src, _ := os.ReadFile(filepath.Join(root, "packaging", "deb", s))
				if !bytes.Equal(b, src) {
					t.Errorf("%s differs from packaging/deb/%s", s, s)
				}
				if fi, _ := os.Stat(filepath.Join(ctl, s)); fi.Mode().Perm() != 0o755 {
					t.Errorf("%s mode %v", s, fi.Mode())
				}
				run(t, "sh", "-n", filepath.Join(ctl, s))
			}
			if _, err := os.Stat(filepath.Join(ctl, "preinst")); err == nil {
				t.Error("package has a preinst: the user is made in postinst")
			}

			x := t.TempDir()
			run(t, "dpkg-deb", "-x", deb, x)
			conf, _ := os.ReadFile(filepath.Join(x, ConfPath))
			proxy, _ := os.ReadFile(filepath.Join(root, "configs", "proxy.yaml"))
			if !bytes.Equal(conf, append([]byte(confHeader), proxy...)) {
				t.Error("the conffile is not the header plus configs/proxy.yaml")
			}
			unit, _ := os.ReadFile(filepath.Join(x, UnitPath))
			src, _ := os.ReadFile(filepath.Join(root, "configs", "pxewim.service"))
			wantUnit, err := PackagedUnit(src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(unit, wantUnit) || !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/pxewim serve --config /etc/pxewim/pxewim.yaml")) {
				t.Error("the packaged unit is not configs/pxewim.service with ExecStart=/usr/bin/pxewim serve --config /etc/pxewim/pxewim.yaml")
			}
			for _, w := range []string{"User=pxewim", "StateDirectory=pxewim", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW"} {
				if !bytes.Contains(unit, []byte("\n"+w+"\n")) {
					t.Errorf("unit lacks %s", w)
				}
			}

			bin := filepath.Join(x, BinPath)
			checkBinary(t, bin, arch)
			verifyUnit(t, unit, bin)
		})
	}
}

// checkBinary wants a static ELF for arch that prints the package version (run directly on
// the same architecture, under qemu-user otherwise).
func checkBinary(t *testing.T, bin, arch string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != wantMachine {
		t.Errorf("binary is for %v, want %v", f.Machine, wantMachine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: not static")
		}
	}
	var cmd *exec.Cmd
	switch {
	case arch == runtime.GOARCH:
		cmd = exec.Command(bin, "--version")
	case arch == "arm64":
		q, err := exec.LookPath("qemu-aarch64-static")
		if err != nil {
			t.Logf("qemu-aarch64-static not found (qemu-user-static): the arm64 binary's --version is not run")
			return
		}
		cmd = exec.Command(q, bin, "--version")
	default:
		t.Logf("no way to run a %s binary here", arch)
		return
	}
	out, err := cmd.CombinedOutput()
	if got := strings.TrimSpace(string(out)); err != nil || got != "pxewim "+testVersion {
		t.Errorf("%s --version: %q, %v; want %q", arch, got, err, "pxewim "+testVersion)
	}
}

// verifyUnit runs systemd-analyze verify on the packaged unit, its ExecStart pointed at the
// extracted binary (verify wants the command to exist; everything else is as packaged).
func verifyUnit(t *testing.T, unit []byte, bin string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not found (systemd): unit not verified")
		return
	}
	dir := t.TempDir()
	u := bytes.Replace(unit, []byte("ExecStart="+BinPath+" "), []byte("ExecStart="+bin+" "), 1)
	p := filepath.Join(dir, "pxewim.service")
	if err := os.WriteFile(p, u, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// dpkgInstallEnv allows TestDebInstall to install the package on this machine. CI sets it
// (.ci/run); on a developer's machine the test only runs when asked.
const dpkgInstallEnv = "PXEWIM_TEST_DPKG_INSTALL"

// dpkg runs dpkg, waiting for another dpkg or apt run to release its lock.
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	for try := 0; ; try++ {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil {
			return string(out)
		}
		if try < 60 && bytes.Contains(out, []byte("lock")) {
			time.Sleep(2 * time.Second) // another package manager holds the dpkg lock
			continue
		}
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func installed() bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "pxewim").Output()
	return err == nil && strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed")
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func owner(t *testing.T, p string) (uid, gid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode()
}

func getent(db, name string) (string, bool) {
	out, err := exec.Command("getent", db, name).Output()
	return strings.TrimSpace(string(out)), err == nil
}

// TestDebInstall installs the package for this machine's architecture with dpkg -i, checks the
// user, the files and their owners, the unit (systemd-analyze verify) and "pxewim check" on the
// installed config, then removes (dpkg -r: the conffile, user and state stay) and purges it
// (dpkg -P: everything the package made is gone; a file an admin put into /srv/pxewim stays,
// with its folder). Only as root, only when pxewim is not installed and the machine has no
// pxewim user or folders, and only when PXEWIM_TEST_DPKG_INSTALL=1 or CI is set.
func TestDebInstall(t *testing.T) {
	if os.Getenv(dpkgInstallEnv) != "1" && os.Getenv("CI") == "" {
		t.Skipf("installs a package on this machine: set %s=1 (CI does) to run it", dpkgInstallEnv)
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg -i needs root")
	}
	needTool(t, "dpkg")
	if installed() {
		t.Skip("pxewim is installed on this machine (dpkg -s pxewim): not touching it")
	}
	for _, p := range []string{"/etc/pxewim", StoreDir, StateDir, BinPath} {
		if exists(p) {
			t.Skipf("%s exists: the test wants a machine without pxewim leftovers", p)
		}
	}
	if _, ok := getent("passwd", "pxewim"); ok {
		t.Skip("a pxewim user exists: the test wants a machine without one")
	}
	if _, ok := getent("group", "pxewim"); ok {
		t.Skip("a pxewim group exists: the test wants a machine without one")
	}
	deb, ok := buildDebs(t)[runtime.GOARCH]
	if !ok {
		t.Skipf("no package for %s", runtime.GOARCH)
	}
	adminFile := filepath.Join(StoreDir, "admin-image.wim")
	enableLink := "/etc/systemd/system/multi-user.target.wants/pxewim.service"
	t.Cleanup(func() {
		// Whatever failed above: leave the machine as it was.
		if installed() || exists(ConfPath) {
			if out, err := exec.Command("dpkg", "-P", "pxewim").CombinedOutput(); err != nil {
				t.Logf("cleanup: dpkg -P pxewim: %v\n%s", err, out)
			}
		}
		os.Remove(adminFile)
		os.Remove(StoreDir)
		if fi, err := os.Lstat(enableLink); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			os.Remove(enableLink)
		}
	})

	t.Logf("dpkg -i %s", filepath.Base(deb))
	dpkg(t, "-i", deb)
	if !installed() {
		t.Fatal("dpkg -i succeeded but dpkg-query does not list pxewim as installed")
	}

	pw, ok := getent("passwd", "pxewim")
	if !ok {
		t.Fatal("postinst made no pxewim user")
	}
	f := strings.Split(pw, ":")
	if len(f) != 7 || f[5] != "/nonexistent" || f[6] != "/usr/sbin/nologin" {
		t.Errorf("pxewim user %q: want home /nonexistent, shell /usr/sbin/nologin", pw)
	}
	var uid, gid uint32
	fmt.Sscan(f[2], &uid)
	fmt.Sscan(f[3], &gid)
	if uid == 0 || uid >= 1000 {
		t.Errorf("pxewim uid %d: not a system user", uid)
	}
	if gr, ok := getent("group", "pxewim"); !ok || !strings.Contains(gr, fmt.Sprintf(":%d:", gid)) {
		t.Errorf("group pxewim %q: want gid %d", gr, gid)
	}
	if exists("/home/pxewim") {
		t.Error("postinst made /home/pxewim")
	}
	for _, c := range []struct {
		path     string
		uid, gid uint32
		mode     os.FileMode
	}{
		{BinPath, 0, 0, 0o755},
		{UnitPath, 0, 0, 0o644},
		{ConfPath, 0, 0, 0o644},
		{StoreDir, 0, 0, os.ModeDir | 0o755},
		{StateDir, uid, gid, os.ModeDir | 0o750},
	} {
		u, g, m := owner(t, c.path)
		if u != c.uid || g != c.gid || m != c.mode {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", c.path, u, g, m, c.uid, c.gid, c.mode)
		}
	}
	if got := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "pxewim"); !strings.Contains(got, ConfPath+" ") {
		t.Errorf("dpkg-query Conffiles: %q", got)
	}
	if got := strings.TrimSpace(run(t, BinPath, "--version")); got != "pxewim "+testVersion {
		t.Errorf("installed pxewim --version: %q", got)
	}
	// The service's user reads the config and the store.
	if _, err := exec.LookPath("runuser"); err == nil {
		run(t, "runuser", "-u", "pxewim", "--", "cat", ConfPath)
		run(t, "runuser", "-u", "pxewim", "--", "ls", StoreDir)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := exec.Command("systemd-analyze", "verify", UnitPath).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", UnitPath, err, out)
		}
	} else {
		t.Log("systemd-analyze not found: installed unit not verified")
	}
	checkInstalledConfig(t)

	// The admin enables the service, edits the conffile and puts an image into the store.
	if err := os.MkdirAll(filepath.Dir(enableLink), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(UnitPath, enableLink); err != nil {
		t.Fatal(err)
	}
	cf, err := os.OpenFile(ConfPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(cf, "# edited by the admin")
	cf.Close()
	if err := os.WriteFile(adminFile, []byte("not the package's"), 0o644); err != nil {
		t.Fatal(err)
	}

	dpkg(t, "-r", "pxewim")
	for _, p := range []string{BinPath, UnitPath} {
		if exists(p) {
			t.Errorf("dpkg -r left %s", p)
		}
	}
	for _, p := range []string{ConfPath, StateDir, adminFile} {
		if !exists(p) {
			t.Errorf("dpkg -r removed %s (kept until purge)", p)
		}
	}
	if _, ok := getent("passwd", "pxewim"); !ok {
		t.Error("dpkg -r removed the pxewim user (kept until purge)")
	}

	out := dpkg(t, "-P", "pxewim")
	t.Logf("dpkg -P:\n%s", out)
	if installed() {
		t.Error("pxewim still listed after dpkg -P")
	}
	for _, p := range []string{ConfPath, "/etc/pxewim", StateDir, enableLink} {
		if exists(p) {
			t.Errorf("dpkg -P left %s", p)
		}
	}
	if _, ok := getent("passwd", "pxewim"); ok {
		t.Error("dpkg -P left the pxewim user")
	}
	if _, ok := getent("group", "pxewim"); ok {
		t.Error("dpkg -P left the pxewim group")
	}
	if b, err := os.ReadFile(adminFile); err != nil || string(b) != "not the package's" {
		t.Errorf("dpkg -P touched the admin's file in the store: %v", err)
	}
	if err := os.Remove(adminFile); err != nil {
		t.Error(err)
	}
	if err := os.Remove(StoreDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the store folder is not empty once the admin's file is gone: %v", err)
	}
}

// checkInstalledConfig runs "pxewim check" on the installed config: it parses, names the
// packaged store, and what it reports is only what an admin adds after installing (the
// example's images and wimboot are not in the empty store; the example's interface may not
// exist here). The listeners are moved to free loopback ports so that other servers on this
// machine (port 80 or 69 taken) cannot change the result.
func checkInstalledConfig(t *testing.T) {
	t.Helper()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ul, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, tftpAddr := tl.Addr().String(), ul.LocalAddr().String()
	tl.Close()
	ul.Close()
	cmd := exec.Command(BinPath, "check", "-config", ConfPath, "--http", httpAddr, "--tftp", tftpAddr)
	out, err := cmd.CombinedOutput()
	t.Logf("pxewim check -config %s:\n%s", ConfPath, out)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("pxewim check: %v", err)
	}
	s := string(out)
	if !strings.HasPrefix(s, ConfPath+": config valid:") || !strings.Contains(s, "store "+StoreDir+" ") {
		t.Errorf("pxewim check did not load %s with store %s", ConfPath, StoreDir)
	}
	missing := 0
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "problem: ") {
			continue
		}
		switch {
		case strings.Contains(line, "not found") || strings.Contains(line, "no such file"):
			missing++
		case strings.Contains(line, "interface"):
		default:
			t.Errorf("pxewim check on a fresh install: unexpected problem %q", line)
		}
	}
	if missing == 0 {
		t.Error("pxewim check found the example's images in an empty store")
	}
}
