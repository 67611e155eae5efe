package main

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/winsetup"
)

// setupISOFixture is a store with two Windows-shaped ISOs: win11.iso (sources/boot.wim with
// two WindowsPE images, boot index 2, and a sources/install.wim of installMB of random data)
// and a second one under a hostile name holding a split install.swm set instead.
type setupISOFixture struct {
	dir, store   string
	installSHA1  string
	parts        map[string]string // install*.swm name -> SHA-1
	hostileISO   string
	hostileParts []string
}

func sha1File(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func runTool(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func buildSetupISOs(t testing.TB, installMB int) *setupISOFixture {
	t.Helper()
	for _, tool := range []string{"genisoimage", "wimlib-imagex"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: apt-get install genisoimage wimtools", tool)
		}
	}
	dir := t.TempDir()
	// smbd reads the view as the share's unix user (nobody): the folders above it must let it in.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	fx := &setupISOFixture{dir: dir, store: filepath.Join(dir, "store"), parts: map[string]string{}}
	os.MkdirAll(fx.store, 0o755)
	root := filepath.Join(dir, "isoroot")
	os.MkdirAll(filepath.Join(root, "sources"), 0o755)
	os.WriteFile(filepath.Join(root, "setup.exe"), []byte("MZ setup.exe stand-in"), 0o644)
	os.WriteFile(filepath.Join(root, "sources", "setup.exe"), []byte("MZ sources/setup.exe stand-in"), 0o644)
	testenv.BuildWinPE(t, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{
		{Name: "Microsoft Windows PE (amd64)"},
		{Name: "Microsoft Windows Setup (amd64)"},
	}, "--compress=LZX", "--boot")
	runTool(t, "wimlib-imagex", "info", filepath.Join(root, "sources", "boot.wim"), "--boot", "2")
	// install.wim: random files (incompressible), stored uncompressed.
	content := filepath.Join(dir, "install-content")
	os.MkdirAll(content, 0o755)
	buf := make([]byte, 1<<20)
	for i := 0; i < 4; i++ {
		f, err := os.Create(filepath.Join(content, fmt.Sprintf("data%d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < installMB/4; j++ {
			rand.Read(buf)
			f.Write(buf)
		}
		f.Close()
	}
	install := filepath.Join(root, "sources", "install.wim")
	runTool(t, "wimlib-imagex", "capture", content, install, "Windows 11 Pro", "--compress=none")
	fx.installSHA1 = sha1File(t, install)
	runTool(t, "genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(fx.store, "win11.iso"), root)

	// The second ISO: the same install image split into ~installMB/3 MB parts.
	os.Remove(install)
	runTool(t, "wimlib-imagex", "capture", content, filepath.Join(dir, "whole.wim"), "Windows 10 Pro", "--compress=none")
	runTool(t, "wimlib-imagex", "split", filepath.Join(dir, "whole.wim"), filepath.Join(root, "sources", "install.swm"), strconv.Itoa(installMB/3+1))
	ents, _ := os.ReadDir(filepath.Join(root, "sources"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".swm") {
			fx.parts[e.Name()] = sha1File(t, filepath.Join(root, "sources", e.Name()))
			fx.hostileParts = append(fx.hostileParts, e.Name())
		}
	}
	if len(fx.parts) < 2 {
		t.Fatalf("split made %d parts", len(fx.parts))
	}
	fx.hostileISO = `Win 10 & "x64" %PATH% (ü).iso`
	runTool(t, "genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(fx.store, fx.hostileISO), root)
	os.RemoveAll(root)
	os.RemoveAll(content)
	os.Remove(filepath.Join(dir, "whole.wim"))
	return fx
}

var netUseRe = regexp.MustCompile(`(?m)^net use S: "\\\\([0-9.]+)\\([A-Za-z0-9._-]+)" /user:([A-Za-z0-9._-]+) ([A-Za-z0-9]+) /persistent:no >nul`)
var setupRe = regexp.MustCompile(`(?m)^"S:\\([^"]+)\\setup\.exe"`)

// requireSetupShare skips a test of the running Setup share (what says what it starts) in
// -short mode, without root, without one of tools, or where the share cannot run here.
func requireSetupShare(t *testing.T, what string, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip(what + ": skipped in -short mode")
	}
	testenv.RequireRoot(t)
	testenv.RequireTools(t, tools...)
	if reason := setupAvailable(); reason != "" {
		t.Skipf("Setup share unavailable here: %s", reason)
	}
}

// loopbackShare is pxewim serve (in-process, loopback ports) with the Windows Setup share on
// smbd at 127.0.0.1:smbPort, started by startLoopbackShare.
type loopbackShare struct {
	base, admin string // HTTP and admin URLs
	smbPort     int
	log         *serveLog
}

// startLoopbackShare writes a config (the store, then the extra lines, the state folder, the
// admin port, winpe auto and the share on loopback) into fx.dir, runs pxewim serve with it until
// the test ends (then it must stop cleanly within a minute) and waits for the share to run.
func startLoopbackShare(t *testing.T, fx *setupISOFixture, store, extra string) *loopbackShare {
	t.Helper()
	state := filepath.Join(fx.dir, "state")
	os.MkdirAll(state, 0o755)
	smbPort, adminPort := serveFreePort(t, "tcp"), serveFreePort(t, "tcp")
	config := filepath.Join(fx.dir, "pxewim.yaml")
	os.WriteFile(config, fmt.Appendf(nil, `store: %s
%sstate_dir: %s
admin: {listen: "127.0.0.1:%d"}
winpe: {auto: true}
setup: {share: on, listen: 127.0.0.1, port: %d, advertise: 127.0.0.1}
`, store, extra, state, adminPort, smbPort), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	base, _, log, done := startServe(t, ctx, "--config", config)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("serve did not stop")
		}
	})
	s := &loopbackShare{base: base, admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), smbPort: smbPort, log: log}
	s.waitFor(t, "setup: Windows Setup share running")
	return s
}

// waitFor waits (two minutes at most) for what to appear in the daemon's log.
func (s *loopbackShare) waitFor(t *testing.T, what string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(s.log.String(), what); {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q in the log:\n%s", what, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// smb runs smbclient (SMB3) on the share with the auth file and returns its output.
func (s *loopbackShare) smb(auth, cmds string) (string, error) {
	return loopbackSMB(s.smbPort, auth, cmds)
}

// get reads remote (a share path with \) into a fresh temporary file: see loopbackSMBGet.
func (s *loopbackShare) get(t *testing.T, auth, remote string) (string, string, error) {
	return loopbackSMBGet(t, s.smbPort, auth, remote)
}

// loopbackSMB runs smbclient (SMB3) on the Setup share of smbd at 127.0.0.1:port with the auth
// file and returns its output.
func loopbackSMB(port int, auth, cmds string) (string, error) {
	o, err := exec.Command("smbclient", "//127.0.0.1/"+setupShareName, "-p", strconv.Itoa(port), "-m", "SMB3", "-A", auth,
		"-c", cmds).CombinedOutput()
	return string(o), err
}

// loopbackSMBGet reads remote (a share path with \) with smbclient into a fresh temporary file
// of the same base name; it returns that file's path, smbclient's output and error.
func loopbackSMBGet(t *testing.T, port int, auth, remote string) (string, string, error) {
	p := filepath.Join(t.TempDir(), filepath.Base(strings.ReplaceAll(remote, `\`, "/")))
	o, err := loopbackSMB(port, auth, "get "+remote+" "+p)
	return p, o, err
}

// servedShareScript downloads the boot.wim at url (as a client would), checks it with
// wimlib-imagex verify and returns the startnet.cmd of its first image that maps the share, with
// netUseRe's match (server, share, user, password). logText goes into the failure messages.
func servedShareScript(t *testing.T, url string, logText func() string) (string, []string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("served boot.wim: %v %v\n%s", err, resp, logText())
	}
	served := filepath.Join(t.TempDir(), "served.wim")
	out, _ := os.Create(served)
	io.Copy(out, resp.Body)
	out.Close()
	resp.Body.Close()
	runTool(t, "wimlib-imagex", "verify", served)
	var script []byte
	for idx := 1; idx <= 2 && script == nil; idx++ {
		b, err := exec.Command("wimlib-imagex", "extract", served, strconv.Itoa(idx), "/Windows/System32/startnet.cmd", "--to-stdout").Output()
		if err == nil && strings.Contains(string(b), "net use") {
			script = b
		}
	}
	m := netUseRe.FindStringSubmatch(string(script))
	if m == nil {
		t.Fatalf("served boot.wim has no startnet.cmd mapping the share:\n%s", script)
	}
	return string(script), m
}

// smbAuthFile writes an smbclient authentication file (-A) for user and password.
func smbAuthFile(t testing.TB, user, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth")
	os.WriteFile(p, []byte("username = "+user+"\npassword = "+password+"\n"), 0o600)
	return p
}

// vethNetns makes a network namespace (role names it) holding a veth pair s0/c0, up, with
// addr (a /24) on s0: the server's address (no dummy module here).
func vethNetns(t *testing.T, role, addr string) *testenv.Netns {
	t.Helper()
	ns := testenv.MustNetns(t, role)
	if _, err := ns.IP("link", "add", "s0", "type", "veth", "peer", "name", "c0"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"addr", "add", addr + "/24", "dev", "s0"}, {"link", "set", "s0", "up"}, {"link", "set", "c0", "up"}} {
		if _, err := ns.IP(args...); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// TestServeSetupShare: pxewim serve in a network namespace with two Windows ISOs in the store.
// The served boot.wim of each ISO's Setup entry (wimlib-imagex verify) holds a startnet.cmd
// and winpeshl.ini; with the credentials read back from it, smbclient over SMB3 reads
// install.wim (and the split install*.swm parts of the ISO with a hostile name) byte-exact from
// the share folder the script names; wrong and no credentials, SMB1 and writes are refused;
// two clients read at once; smbd killed during a read is restarted and the read resumes.
func TestServeSetupShare(t *testing.T) {
	requireSetupShare(t, "network namespace test", "ip", "smbclient", "curl", "wimlib-imagex", "genisoimage")
	fx := buildSetupISOs(t, 240)
	ns := vethNetns(t, "smb", "10.207.0.1")
	state := filepath.Join(fx.dir, "state")
	os.MkdirAll(state, 0o755)
	config := filepath.Join(fx.dir, "pxewim.yaml")
	// A rule with setup: for one MAC group (credentials per boot: the shared account).
	os.MkdirAll(filepath.Join(fx.store, "unattend"), 0o755)
	os.WriteFile(filepath.Join(fx.store, "unattend", "room-d.xml"), []byte("<unattend>room d</unattend>"), 0o644)
	os.WriteFile(config, []byte(fmt.Sprintf("store: %s\nstate_dir: %s\nlisten: {http: \"10.207.0.1:80\", tftp: \"\"}\ndhcp: {mode: off}\nwinpe: {auto: true}\nsetup: {share: on}\n"+
		"rules:\n  - {match: {mac: \"52:54:00:dd:*\"}, entry: pe-win11-iso-sources-boot-2, setup: {unattend: unattend/room-d.xml}}\n",
		fx.store, state)), 0o644)
	_, readLog, waitLog := startServeInNetns(t, ns, fx.dir, config)
	waitLog("setup: Windows Setup share running")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	exec1 := func(argv ...string) (string, error) { return ns.Exec(ctx, argv...) }

	// The served boot.wim of each Setup entry, and what its startnet.cmd says.
	type creds struct{ server, share, user, password, folder string }
	served := func(entry string) creds {
		t.Helper()
		out := filepath.Join(t.TempDir(), "served.wim")
		if o, err := exec1("curl", "-sSf", "-o", out, "http://10.207.0.1/files/winpe/"+entry+"/boot.wim"); err != nil {
			menu, _ := exec1("curl", "-sS", "http://10.207.0.1/boot.ipxe?mac=52-54-00-12-34-56")
			t.Fatalf("served boot.wim of %s: %v %s\nmenu:\n%s\nlog:\n%s", entry, err, o, menu, readLog())
		}
		runTool(t, "wimlib-imagex", "verify", out)
		var script, ini []byte
		for idx := 1; idx <= 2 && script == nil; idx++ {
			b, err := exec.Command("wimlib-imagex", "extract", out, strconv.Itoa(idx), "/Windows/System32/startnet.cmd", "--to-stdout").Output()
			if err == nil && strings.Contains(string(b), "net use") {
				script = b
				ini, _ = exec.Command("wimlib-imagex", "extract", out, strconv.Itoa(idx), "/Windows/System32/winpeshl.ini", "--to-stdout").Output()
			}
		}
		if script == nil {
			t.Fatalf("no image of %s's served boot.wim holds our startnet.cmd", entry)
		}
		if !strings.Contains(string(ini), `startnet.cmd`) {
			t.Errorf("winpeshl.ini: %q", ini)
		}
		m := netUseRe.FindStringSubmatch(string(script))
		s := setupRe.FindStringSubmatch(string(script))
		if m == nil || s == nil {
			t.Fatalf("startnet.cmd of %s:\n%s", entry, script)
		}
		if strings.Contains(readLog(), m[4]) {
			t.Errorf("the share's password appears in the daemon's log")
		}
		return creds{server: m[1], share: m[2], user: m[3], password: m[4], folder: s[1]}
	}
	win11 := served("pe-win11-iso-sources-boot-2")
	if win11.server != "10.207.0.1" || win11.share != "pxewim-setup" || win11.folder != "win11" {
		t.Fatalf("startnet.cmd maps %+v", win11)
	}
	// The rule's client: the same shared account, its answer file; others get none.
	{
		out := filepath.Join(t.TempDir(), "room-d.wim")
		if o, err := exec1("curl", "-sSf", "-o", out, "http://10.207.0.1/mac/52-54-00-dd-00-07/files/winpe/pe-win11-iso-sources-boot-2/boot.wim"); err != nil {
			t.Fatalf("rule client's boot.wim: %v %s", err, o)
		}
		runTool(t, "wimlib-imagex", "verify", out)
		u, err := exec.Command("wimlib-imagex", "extract", out, "1", "/pxewim/unattend.xml", "--to-stdout").Output()
		script, _ := exec.Command("wimlib-imagex", "extract", out, "1", "/Windows/System32/startnet.cmd", "--to-stdout").Output()
		if err != nil || string(u) != "<unattend>room d</unattend>" || !strings.Contains(string(script), "/unattend:X:") {
			t.Errorf("rule client's boot.wim: unattend %q %v; startnet.cmd:\n%s", u, err, script)
		}
		if m := netUseRe.FindStringSubmatch(string(script)); m == nil || m[3] != win11.user || m[4] != win11.password {
			t.Errorf("rule client's account differs from the shared one:\n%s", script)
		}
		plain := filepath.Join(t.TempDir(), "plain.wim")
		exec1("curl", "-sSf", "-o", plain, "http://10.207.0.1/mac/52-54-00-ee-00-07/files/winpe/pe-win11-iso-sources-boot-2/boot.wim")
		if _, err := exec.Command("wimlib-imagex", "extract", plain, "1", "/pxewim/unattend.xml", "--to-stdout").Output(); err == nil {
			t.Error("a client no rule matches got the rule's unattend.xml")
		}
	}
	menu, _ := exec1("curl", "-sS", "http://10.207.0.1/boot.ipxe?mac=52-54-00-12-34-56")
	hostileEntry := regexp.MustCompile(`pe-win-10-[a-z0-9-]*-boot-2`).FindString(menu)
	if hostileEntry == "" {
		t.Fatalf("no Setup entry for the ISO with the hostile name in the menu:\n%s", menu)
	}
	authFile := func(user, pw string) string { return smbAuthFile(t, user, pw) }
	good := authFile(win11.user, win11.password)
	unc := "//" + win11.server + "/" + win11.share
	smb := func(auth, proto, cmds string, extra ...string) (string, error) {
		args := []string{"smbclient", unc, "-m", proto, "-c", cmds}
		if auth == "" {
			args = append(args, "-N")
		} else {
			args = append(args, "-A", auth)
		}
		return exec1(append(args, extra...)...)
	}
	get := func(remote, local string) {
		t.Helper()
		if o, err := smb(good, "SMB3", "get "+remote+" "+local); err != nil {
			t.Fatalf("get %s: %v\n%s", remote, err, o)
		}
	}

	// install.wim byte-exact, from the folder the script names.
	out := filepath.Join(t.TempDir(), "install.wim")
	get(win11.folder+`\sources\install.wim`, out)
	if got := sha1File(t, out); got != fx.installSHA1 {
		t.Fatalf("install.wim over SMB: sha1 %s, want %s", got, fx.installSHA1)
	}
	os.Remove(out)

	// The ISO with the hostile name: its folder, listed at the share's root, holds the parts.
	ls, err := smb(good, "SMB3", "ls")
	if err != nil {
		t.Fatalf("ls: %v\n%s", err, ls)
	}
	folder := regexp.MustCompile(`(?m)^\s+(Win_10\S*)\s+D`).FindStringSubmatch(ls)
	if folder == nil {
		t.Fatalf("share root lists no folder for %q:\n%s", fx.hostileISO, ls)
	}
	if c := served(hostileEntry); c.folder != folder[1] || c.password != win11.password {
		t.Errorf("hostile ISO's startnet.cmd maps %+v, share folder %s", c, folder[1])
	}
	for _, part := range fx.hostileParts {
		p := filepath.Join(t.TempDir(), part)
		get(folder[1]+`\sources\`+part, p)
		if got := sha1File(t, p); got != fx.parts[part] {
			t.Errorf("%s over SMB: sha1 %s, want %s", part, got, fx.parts[part])
		}
		os.Remove(p)
	}

	// Refusals.
	for _, c := range []struct{ auth, proto, want string }{
		{authFile(win11.user, "wrongpassword1"), "SMB3", "NT_STATUS_LOGON_FAILURE"},
		{authFile("administrator", win11.password), "SMB3", "NT_STATUS_LOGON_FAILURE"},
		{"", "SMB3", "NT_STATUS_ACCESS_DENIED"},
		{good, "NT1", "protocol negotiation failed"},
	} {
		o, err := smb(c.auth, c.proto, "ls", "--option=client min protocol=NT1")
		if err == nil || !strings.Contains(o, c.want) {
			t.Errorf("%s %s: %v, want %s:\n%s", c.proto, c.auth, err, c.want, o)
		}
	}
	src := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(src, []byte("x"), 0o644)
	for _, cmd := range []string{"put " + src + " x.txt", "put " + src + ` win11\x.txt`, `mkdir win11\d`, `del win11\setup.exe`, `rename win11\setup.exe win11\y.exe`} {
		o, _ := smb(good, "SMB3", cmd)
		if !strings.Contains(o, "NT_STATUS_ACCESS_DENIED") && !strings.Contains(o, "NT_STATUS_MEDIA_WRITE_PROTECTED") {
			t.Errorf("%s not refused:\n%s", cmd, o)
		}
	}

	// Two clients at once.
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := filepath.Join(fx.dir, fmt.Sprintf("two-%d.wim", i))
			defer os.Remove(p)
			if o, err := smb(good, "SMB3", "get "+win11.folder+`\sources\install.wim `+p); err != nil {
				t.Errorf("client %d: %v\n%s", i, err, o)
				return
			}
			if got := sha1File(t, p); got != fx.installSHA1 {
				t.Errorf("client %d: sha1 %s, want %s", i, got, fx.installSHA1)
			}
		}()
	}
	wg.Wait()

	// smbd killed during a read: restarted, and the read resumes (reget).
	pidB, err := os.ReadFile(filepath.Join(state, "smb", "run", "smbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidB)))
	out = filepath.Join(fx.dir, "resumed.wim")
	done := make(chan string, 1)
	go func() {
		o, _ := smb(good, "SMB3", "iosize 16384; get "+win11.folder+`\sources\install.wim `+out)
		done <- o
	}()
	for {
		if fi, err := os.Stat(out); err == nil && fi.Size() > 1<<20 {
			break
		}
		select {
		case o := <-done:
			t.Fatalf("the read ended before smbd was killed: %s", o)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill smbd %d: %v", pid, err)
	}
	interrupted := <-done
	fi, _ := os.Stat(out)
	t.Logf("read cut at %d bytes by the kill: %s", fi.Size(), strings.TrimSpace(interrupted))
	waitLog("smbshare: smbd stopped; restarting")
	deadline := time.Now().Add(60 * time.Second)
	for {
		o, err := smb(good, "SMB3", "reget "+win11.folder+`\sources\install.wim `+out)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reget after the restart: %v\n%s\n%s", err, o, readLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := sha1File(t, out); got != fx.installSHA1 {
		t.Fatalf("install.wim after the restart and reget: sha1 %s, want %s", got, fx.installSHA1)
	}
	if n := strings.Count(readLog(), "smbshare: smbd running"); n != 2 {
		t.Errorf("smbd started %d times, want 2 (start, restart)", n)
	}
	// /metrics tells the same story.
	metricsOut, err := exec1("curl", "-sSf", "http://127.0.0.1:9090/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for _, want := range []string{"pxewim_setup_share_enabled 1", "pxewim_setup_share_up 1", "pxewim_setup_share_smbd_restarts_total 1",
		"pxewim_setup_share_smbd_starts_total 2", "pxewim_setup_share_media 2", "pxewim_setup_share_accounts 1"} {
		if !strings.Contains(metricsOut, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(metricsOut, win11.password) {
		t.Error("the share's password appears in /metrics")
	}
}

// TestShareFolderName: folder names made from ISO names hold only A-Z a-z 0-9 . _ -, are unique
// case-insensitively, never empty, "." or "..", and at most 64 bytes.
func TestShareFolderName(t *testing.T) {
	used := map[string]bool{}
	seen := map[string]bool{}
	for _, n := range []string{"win11.iso", "WIN11.ISO", "a/b/win11.iso", `Win 10 & "x64" %PATH% (ü).iso`, ".iso", "...iso",
		"..iso", "x\r\n.iso", "a^b!c.iso", strings.Repeat("long", 40) + ".iso", "con.iso", "ünï.iso", "\x00.iso"} {
		f := shareFolderName(n, used)
		if f == "" || f == "." || f == ".." || len(f) > 64 || seen[strings.ToLower(f)] {
			t.Errorf("%q -> %q", n, f)
		}
		seen[strings.ToLower(f)] = true
		for _, c := range f {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				t.Errorf("%q -> %q holds %q", n, f, c)
			}
		}
	}
}

// TestSetupViewFS: the share's tree over a store with two Windows ISOs passes testing/fstest
// (every file readable, listings consistent); both ISOs are found as Setup media, a plain ISO
// and a WinPE ISO without install image are not; names with ':' (paths into WIMs) and
// unknown folders are refused; the injections of a Setup entry hold a startnet.cmd that maps
// the ISO's folder.
func TestSetupViewFS(t *testing.T) {
	fx := buildSetupISOs(t, 8)
	ls, err := localstore.New(fx.store, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	var store fs.FS = ls
	// A WinPE ISO without an install image is not Setup media.
	peRoot := filepath.Join(fx.dir, "peroot")
	os.MkdirAll(filepath.Join(peRoot, "sources"), 0o755)
	testenv.BuildWinPE(t, filepath.Join(peRoot, "sources", "boot.wim"), []testenv.WinPEImage{{}, {Name: "Setup"}}, "--compress=LZX")
	runTool(t, "genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(fx.store, "pe.iso"), peRoot)
	snap, err := catalog.Scan(context.Background(), fx.store, catalogOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	media := findSetupMedia(snap, store)
	if len(media) != 2 {
		t.Fatalf("media %+v", media)
	}
	var v setupView
	v.update(store, media, slog.New(slog.DiscardHandler))
	names := v.names()
	if len(names) != 2 || names[1] != "win11" || !strings.HasPrefix(names[0], "Win_10") {
		t.Fatalf("folders %q", names)
	}
	// Listings agree with Stat, and files read byte-exact (fstest.TestFS reads every file
	// byte by byte many times over: minutes for this tree, so the checks are done here).
	ents, err := fs.ReadDir(&v, ".")
	if err != nil || len(ents) != 2 {
		t.Fatalf("root: %v %v", ents, err)
	}
	for _, e := range ents {
		fi, err := fs.Stat(&v, e.Name())
		if err != nil || !fi.IsDir() || fi.Name() != e.Name() || !e.IsDir() {
			t.Errorf("folder %s: stat %v %v", e.Name(), fi, err)
		}
		got, err := fs.ReadFile(&v, e.Name()+"/setup.exe")
		if err != nil || string(got) != "MZ setup.exe stand-in" {
			t.Errorf("%s/setup.exe: %q %v", e.Name(), got, err)
		}
		sub, err := fs.ReadDir(&v, e.Name()+"/SOURCES")
		if err != nil || len(sub) < 3 {
			t.Errorf("%s/sources: %v %v", e.Name(), sub, err)
		}
	}
	f, err := v.Open("win11/sources/install.wim")
	if err != nil {
		t.Fatal(err)
	}
	h := sha1.New()
	io.Copy(h, f)
	f.Close()
	if got := hex.EncodeToString(h.Sum(nil)); got != fx.installSHA1 {
		t.Errorf("install.wim through the view: sha1 %s, want %s", got, fx.installSHA1)
	}
	for _, bad := range []string{"win11/sources/boot.wim:1/Windows", "nope/setup.exe", "../x", "win11\\setup.exe"} {
		if f, err := v.Open(bad); err == nil {
			f.Close()
			t.Errorf("view opened %q", bad)
		}
	}
	// An ISO replaced (new mtime) while a file of it is open: the open file reads on from the old
	// version, which closes with it; a new open sees the new version; an ISO gone is gone.
	held, err := v.Open("win11/sources/install.wim")
	if err != nil {
		t.Fatal(err)
	}
	oldH := v.cur.Load().byName["win11"].h
	changed := slices.Clone(media)
	for i := range changed {
		if changed[i].Folder == "win11" {
			changed[i].Mod = changed[i].Mod.Add(time.Second)
		}
	}
	v.update(store, changed, slog.New(slog.DiscardHandler))
	if v.cur.Load().byName["win11"].h == oldH {
		t.Fatal("a changed ISO kept its old handle")
	}
	buf := make([]byte, 4096)
	if n, err := held.(io.ReaderAt).ReadAt(buf, 1<<20); err != nil || n != len(buf) {
		t.Fatalf("read of a file held across the ISO's replacement: %d %v", n, err)
	}
	held.Close()
	if _, err := oldH.file.Stat(); err == nil {
		t.Error("the replaced ISO's file is still open after its last reader closed")
	}
	v.update(store, changed[:0], slog.New(slog.DiscardHandler))
	if _, err := v.Open("win11/setup.exe"); err == nil {
		t.Error("an ISO no longer in the store is still in the view")
	}
	v.update(store, media, slog.New(slog.DiscardHandler))

	cfg := &boot.Config{}
	var win11 setupMedia
	for _, m := range media {
		if m.Folder == "win11" {
			win11 = m
		}
	}
	inj, err := setupInjections(cfg, store, win11, netip.MustParseAddr("10.1.2.3"), setupCreds{User: "pxewim", Password: "Abcdefgh2345678"}, nil)
	if err != nil || len(inj) != 2 {
		t.Fatalf("injections %v %v", inj, err)
	}
	if s := string(inj[0].Data); inj[0].Path != winsetup.StartnetPath || !strings.Contains(s, `"S:\win11\setup.exe"`) || !strings.Contains(s, `"\\10.1.2.3\pxewim-setup"`) {
		t.Errorf("startnet.cmd %s:\n%s", inj[0].Path, s)
	}

	// Drivers and an answer file from the store: the folder and the file are injected, each
	// .inf is one drvload argument (names with cmd operators stay inert), Setup gets /unattend:.
	for _, p := range []string{"drivers/net/e1000 & co.inf", "drivers/net/e1000.sys", "drivers/stor/100%raid.INF"} {
		os.MkdirAll(filepath.Join(fx.store, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(fx.store, p), []byte("driver"), 0o644)
	}
	os.WriteFile(filepath.Join(fx.store, "lab.xml"), []byte("<unattend/>"), 0o644)
	cfg.Setup = boot.SetupConfig{Drivers: "drivers", Unattend: "lab.xml", Media: []boot.SetupMedia{{ISO: "win11.iso", BypassWin11Checks: new(bool)}}}
	inj, err = setupInjections(cfg, store, win11, netip.MustParseAddr("10.1.2.3"), setupCreds{User: "pxewim", Password: "Abcdefgh2345678"}, nil)
	if err != nil || len(inj) != 4 {
		t.Fatalf("injections %v %v", inj, err)
	}
	if inj[0].Path != setupUnattendPath || inj[0].File.Path != "lab.xml" || inj[1].Path != setupDriversPath || inj[1].File.Path != "drivers" {
		t.Errorf("stored injections %+v %+v", inj[0], inj[1])
	}
	script := string(inj[2].Data)
	for _, want := range []string{`drvload "X:\pxewim\drivers\net\e1000 & co.inf"`, `drvload "X:\pxewim\drivers\stor\100%%raid.INF"`,
		`"S:\win11\setup.exe" "/unattend:X:\pxewim\unattend.xml"`} {
		if !strings.Contains(script, want) {
			t.Errorf("startnet.cmd lacks %s:\n%s", want, script)
		}
	}
	if strings.Contains(script, "e1000.sys") || strings.Contains(script, "LabConfig") {
		t.Errorf("startnet.cmd loads a .sys or bypasses checks:\n%s", script)
	}
	// A rule's setup: overrides: its own answer file and drivers (names with cmd operators
	// stay inert), a per-client account; errors name the rule's file:line:key.
	for _, p := range []string{"drivers/group-a/nic ^& (x) !y!.inf", "unattend/a & b %x%.xml"} {
		os.MkdirAll(filepath.Join(fx.store, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(fx.store, p), []byte("x"), 0o644)
	}
	cfg.Source = "lab.yaml"
	rs := &boot.RuleSetup{Drivers: "drivers/group-a", Unattend: "unattend/a & b %x%.xml", Key: "rules[2].setup", UnattendLine: 14, DriversLine: 15}
	inj, err = setupInjections(cfg, store, win11, netip.MustParseAddr("10.1.2.3"), setupCreds{User: "pxe-525400aa0001", Password: "Client0Password0A"}, rs)
	if err != nil || len(inj) != 4 {
		t.Fatalf("rule injections %v %v", inj, err)
	}
	if inj[0].File.Path != rs.Unattend || inj[1].File.Path != rs.Drivers {
		t.Errorf("rule stored injections %+v %+v", inj[0], inj[1])
	}
	script = string(inj[2].Data)
	for _, want := range []string{`drvload "X:\pxewim\drivers\nic ^& (x) !y!.inf"`, `/user:pxe-525400aa0001 Client0Password0A`} {
		if !strings.Contains(script, want) {
			t.Errorf("rule startnet.cmd lacks %s:\n%s", want, script)
		}
	}
	if strings.Contains(script, "e1000") || strings.Contains(script, "Abcdefgh2345678") {
		t.Errorf("rule startnet.cmd holds the site's drivers or the shared password:\n%s", script)
	}
	rs.Unattend = "unattend/nope.xml"
	if _, err := setupInjections(cfg, store, win11, netip.MustParseAddr("10.1.2.3"), setupCreds{User: "pxewim", Password: "Abcdefgh2345678"}, rs); err == nil ||
		!strings.Contains(err.Error(), "lab.yaml:14: rules[2].setup.unattend: unattend/nope.xml: not a file of the store") {
		t.Errorf("a rule's missing unattend file: %v", err)
	}
	rs.Unattend, rs.Drivers = "", "drivers/none"
	if _, err := setupInjections(cfg, store, win11, netip.MustParseAddr("10.1.2.3"), setupCreds{User: "pxewim", Password: "Abcdefgh2345678"}, rs); err == nil ||
		!strings.Contains(err.Error(), "lab.yaml:15: rules[2].setup.drivers") {
		t.Errorf("a rule's missing drivers folder: %v", err)
	}
	cfg.Setup.Unattend = "nope.xml"
	if _, err := setupInjections(cfg, store, win11, netip.MustParseAddr("10.1.2.3"), setupCreds{User: "pxewim", Password: "Abcdefgh2345678"}, nil); err == nil {
		t.Error("a missing unattend file was accepted")
	}
}

// TestCheckSetup: pxewim check's findings for the Setup share: no address for WinPE, an
// answer file that is not in the store, and (where smbd or root is missing) how to install it;
// nothing when the share is off.
func TestCheckSetup(t *testing.T) {
	fx := buildSetupISOs(t, 4)
	ls, err := localstore.New(fx.store, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	snap, err := catalog.Scan(context.Background(), fx.store, catalogOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := boot.ParseConfig("c.yaml", []byte("setup: {share: on, unattend: missing.xml}\nentries: [{name: s, ipxe: shell}]\nrules:\n  - match: {mac: '52:54:00:*'}\n    entry: s\n    setup: {unattend: group/missing.xml}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, p := range checkSetup(cfg, ls, snap) {
		all = append(all, p.String())
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{"setup: no address for WinPE to reach the share", "iso: setup.unattend (or setup.media): missing.xml: not a file of the store",
		"iso: c.yaml:6: rules[0].setup.unattend: group/missing.xml: not a file of the store"} {
		if !strings.Contains(got, want) {
			t.Errorf("check lacks %q:\n%s", want, got)
		}
	}
	if why := setupAvailable(); why != "" && !strings.Contains(got, "apt-get install samba") {
		t.Errorf("share unavailable here (%s) but check does not say how to install it:\n%s", why, got)
	}
	cfg.Setup.Share = boot.SetupOff
	if ps := checkSetup(cfg, ls, snap); len(ps) != 0 {
		t.Errorf("setup off: %v", ps)
	}
	cfg.Setup = boot.SetupConfig{Advertise: netip.MustParseAddr("10.0.0.1")}
	cfg.Rules = nil
	for _, p := range checkSetup(cfg, ls, snap) {
		if !p.info {
			t.Errorf("setup auto with an address: problem %s", p)
		}
	}
}
