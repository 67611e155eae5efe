package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/imagestore"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/smbshare"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/winpe"
)

// TestServeSetupPerClient: pxewim serve in a network namespace with setup.credentials:
// per_client and two rules with setup: (one MAC: its own answer file; a MAC group: drivers with
// cmd operators in their names and the Windows 11 bypasses). Client A and client B (told apart
// by MAC, /mac/ URLs as iPXE sends them) each get a served boot.wim (wimlib-imagex verify) whose
// startnet.cmd names an account of their own: each reads install.wim over SMB3 with it, a
// made-up account and A's name with B's password are refused, A's password is nowhere in B's
// boot.wim and B's nowhere in A's. A's boot.wim holds A's rule's unattend.xml (extracted
// byte-exact) and no drivers; B's runs drvload for each .inf of its group's folder, sets the
// bypasses, and holds no unattend. A client pxewim cannot name gets the Setup entry without
// any credentials. No password is in the daemon's log.
func TestServeSetupPerClient(t *testing.T) {
	requireSetupShare(t, "network namespace test", "ip", "smbclient", "curl", "wimlib-imagex", "genisoimage")
	if _, err := findNSSWrapperForTest(); err != nil {
		t.Skipf("%v", err)
	}
	fx := buildSetupISOs(t, 8)
	unattendA := "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\"><!-- client A & co --></unattend>\r\n"
	for p, body := range map[string]string{
		"unattend/client a & b %x%.xml":      unattendA,
		"drivers/group-b/nic ^& (x) !y!.inf": "[Version]\r\n",
		"drivers/group-b/stor/raid.INF":      "[Version]\r\n",
		"drivers/group-b/stor/raid.sys":      "MZ",
	} {
		os.MkdirAll(filepath.Join(fx.store, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(fx.store, p), []byte(body), 0o644)
	}
	ns := vethNetns(t, "smbc", "10.207.1.1")
	state := filepath.Join(fx.dir, "state")
	os.MkdirAll(state, 0o755)
	config := filepath.Join(fx.dir, "pxewim.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`store: %s
state_dir: %s
listen: {http: "10.207.1.1:80", tftp: ""}
dhcp: {mode: off}
winpe: {auto: true}
setup: {share: on, credentials: per_client}
rules:
  - match: {mac: "52:54:00:aa:00:01"}
    entry: pe-win11-iso-sources-boot-2
    setup: {unattend: "unattend/client a & b %%x%%.xml"}
  - match: {mac: "52:54:00:bb:*"}
    entry: pe-win11-iso-sources-boot-2
    setup: {drivers: drivers/group-b, bypass_win11_checks: true}
`, fx.store, state)), 0o644)
	_, readLog, waitLog := startServeInNetns(t, ns, fx.dir, config)
	waitLog("setup: Windows Setup share running")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	exec1 := func(argv ...string) (string, error) { return ns.Exec(ctx, argv...) }
	const entry = "pe-win11-iso-sources-boot-2"
	type client struct {
		wim, script, user, password, folder string
	}
	fetch := func(prefix string) client {
		t.Helper()
		out := filepath.Join(t.TempDir(), "served.wim")
		if o, err := exec1("curl", "-sSf", "-o", out, "http://10.207.1.1"+prefix+"/files/winpe/"+entry+"/boot.wim"); err != nil {
			t.Fatalf("served boot.wim (%s): %v %s\nlog:\n%s", prefix, err, o, readLog())
		}
		runTool(t, "wimlib-imagex", "verify", out)
		// The served WIM holds the entry's image alone (exported): image 1.
		b, err := exec.Command("wimlib-imagex", "extract", out, "1", "/Windows/System32/startnet.cmd", "--to-stdout").Output()
		if err != nil {
			return client{wim: out}
		}
		c := client{wim: out, script: string(b)}
		if m := netUseRe.FindStringSubmatch(c.script); m != nil {
			c.user, c.password = m[3], m[4]
		}
		if s := setupRe.FindStringSubmatch(c.script); s != nil {
			c.folder = s[1]
		}
		return c
	}
	// A client pxewim cannot name (no MAC: no DHCP here, no /mac/, no script asked for yet
	// from this address): no credentials at all.
	if u := fetch(""); strings.Contains(u.script, "net use") {
		t.Errorf("a client with no known MAC got credentials:\n%s", u.script)
	}
	// A menu shown to a client makes no account: only fetching the entry's files does (the
	// counts below stay at A and B).
	for _, u := range []string{"/boot.ipxe?mac=52-54-00-cc-00-09"} {
		if o, err := exec1("curl", "-sSf", "http://10.207.1.1"+u); err != nil {
			t.Fatalf("%s: %v %s", u, err, o)
		}
	}
	a := fetch("/mac/52-54-00-aa-00-01")
	b := fetch("/mac/52-54-00-bb-12-34")
	if a.user != "pxe-525400aa0001" || b.user != "pxe-525400bb1234" || a.password == "" || b.password == "" || a.password == b.password || a.folder != "win11" {
		t.Fatalf("accounts: A %q/%v B %q/%v folder %q\nA:\n%s\nB:\n%s\nlog:\n%s", a.user, a.password != "", b.user, b.password != "", a.folder, a.script, b.script, readLog())
	}
	// Each client's secret stays in its own boot.wim: extract every file of B's image and
	// look for A's password (and the reverse).
	for _, c := range []struct {
		name     string
		wim      string
		otherPwd string
	}{{"B", b.wim, a.password}, {"A", a.wim, b.password}} {
		dir := filepath.Join(t.TempDir(), c.name)
		runTool(t, "wimlib-imagex", "apply", c.wim, "1", dir)
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				if body, _ := os.ReadFile(p); strings.Contains(string(body), c.otherPwd) {
					t.Errorf("%s's boot.wim holds the other client's password in %s", c.name, p)
				}
			}
			return nil
		})
	}
	// A's rule: its answer file, byte-exact, and Setup runs with it; no drivers, no bypasses.
	gotU, err := exec.Command("wimlib-imagex", "extract", a.wim, "1", "/pxewim/unattend.xml", "--to-stdout").Output()
	if err != nil || string(gotU) != unattendA {
		t.Errorf("A's unattend.xml: %v %q", err, gotU)
	}
	if !strings.Contains(a.script, `"S:\win11\setup.exe" "/unattend:X:\pxewim\unattend.xml"`) || strings.Contains(a.script, "drvload") || strings.Contains(a.script, "LabConfig") {
		t.Errorf("A's startnet.cmd:\n%s", a.script)
	}
	// B's group: drvload for each .inf (operators inert inside quotes, % doubled), the
	// bypasses, no unattend.
	for _, want := range []string{`drvload "X:\pxewim\drivers\nic ^& (x) !y!.inf"`, `drvload "X:\pxewim\drivers\stor\raid.INF"`, `BypassTPMCheck`} {
		if !strings.Contains(b.script, want) {
			t.Errorf("B's startnet.cmd lacks %s:\n%s", want, b.script)
		}
	}
	if strings.Contains(b.script, "/unattend:") || strings.Contains(b.script, "raid.sys") {
		t.Errorf("B's startnet.cmd:\n%s", b.script)
	}
	if _, err := exec.Command("wimlib-imagex", "extract", b.wim, "1", "/pxewim/unattend.xml", "--to-stdout").Output(); err == nil {
		t.Error("B's boot.wim holds an unattend.xml")
	}
	if inf, err := exec.Command("wimlib-imagex", "extract", b.wim, "1", "/pxewim/drivers/stor/raid.INF", "--to-stdout").Output(); err != nil || string(inf) != "[Version]\r\n" {
		t.Errorf("B's boot.wim driver: %v %q", err, inf)
	}

	authFile := func(user, pw string) string { return smbAuthFile(t, user, pw) }
	smb := func(auth, cmds string) (string, error) {
		return exec1("smbclient", "//10.207.1.1/pxewim-setup", "-m", "SMB3", "-A", auth, "-c", cmds)
	}
	for _, c := range []client{a, b} {
		out := filepath.Join(t.TempDir(), "install.wim")
		if o, err := smb(authFile(c.user, c.password), `get win11\sources\install.wim `+out); err != nil {
			t.Fatalf("%s reads install.wim: %v\n%s", c.user, err, o)
		}
		if got := sha1File(t, out); got != fx.installSHA1 {
			t.Errorf("%s: install.wim sha1 %s, want %s", c.user, got, fx.installSHA1)
		}
	}
	for _, bad := range []struct{ user, pw string }{
		{"pxe-525400cc0003", a.password}, // made up
		{a.user, b.password},             // A's name, B's password
		{"pxewim", a.password},           // the per-boot account does not exist here
		{"nobody", b.password},
	} {
		if o, err := smb(authFile(bad.user, bad.pw), "ls"); err == nil || !strings.Contains(o, "NT_STATUS_LOGON_FAILURE") {
			t.Errorf("%s with another's password: %v\n%s", bad.user, err, o)
		}
	}
	metrics, err := exec1("curl", "-sSf", "http://127.0.0.1:9090/metrics")
	if err != nil || !strings.Contains(metrics, "pxewim_setup_share_accounts 2\n") {
		t.Errorf("metrics (%v) lack pxewim_setup_share_accounts 2", err)
	}
	if strings.Contains(metrics, a.password) || strings.Contains(metrics, b.password) {
		t.Error("a client's password appears in /metrics")
	}
	log := readLog()
	if strings.Contains(log, a.password) || strings.Contains(log, b.password) {
		t.Error("a client's password appears in the daemon's log")
	}
	if n := strings.Count(log, "setup: per-client Setup account made"); n != 2 {
		t.Errorf("accounts made %d times, want 2 (A, B):\n%s", n, regexp.MustCompile(`(?m)^.*(account made|http request).*$`).FindAllString(log, -1))
	}
}

func findNSSWrapperForTest() (string, error) { return smbshare.FindNSSWrapper() }

// TestSetupVariantTrees: in-process, the trees clients get. Credentials per boot with a rule
// that sends client A natively to the Setup entry with its own answer file: A's
// sources/boot.wim (native) and winpe/ENTRY/boot.wim (wimboot) hold the answer file; B (no
// rule) gets the entry as it is, without one; the variant is in no menu (the policy's entries
// are the state's, the variants live beside them). Credentials per client: the first open of a
// Setup entry's files by a client with a MAC makes its account and a new state holding its
// variant; the next open of the same client makes nothing; each client's startnet.cmd names
// its own account.
func TestSetupVariantTrees(t *testing.T) {
	testenv.RequireRoot(t)
	if reason := setupAvailable(); reason != "" {
		t.Skipf("Setup share unavailable here: %s", reason)
	}
	if _, err := smbshare.FindNSSWrapper(); err != nil {
		t.Skipf("%v", err)
	}
	fx := buildSetupISOs(t, 4)
	os.MkdirAll(filepath.Join(fx.store, "unattend"), 0o755)
	os.WriteFile(filepath.Join(fx.store, "unattend", "a.xml"), []byte("<unattend>A</unattend>"), 0o644)
	snap, err := catalog.Scan(context.Background(), fx.store, catalogOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	const entry = "pe-win11-iso-sources-boot-2"
	macA, _ := net.ParseMAC("52:54:00:aa:00:01")
	macB, _ := net.ParseMAC("52:54:00:bb:00:02")
	clientA := boot.Client{MAC: macA, Firmware: boot.FirmwareBIOS, Arch: 0}
	clientB := boot.Client{MAC: macB, Firmware: boot.FirmwareBIOS, Arch: 0}
	extract := func(f fs.File, path string) (string, error) {
		t.Helper()
		defer f.Close()
		p := filepath.Join(t.TempDir(), "x.wim")
		out, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, f); err != nil {
			t.Fatal(err)
		}
		out.Close()
		b, err := exec.Command("wimlib-imagex", "extract", p, "1", path, "--to-stdout").Output()
		return string(b), err
	}
	newDaemonFor := func(yaml string) (*daemon, *state) {
		cfg, err := boot.ParseConfig("lab.yaml", []byte(fmt.Sprintf("store: %s\nwinpe: {auto: true}\n%s", fx.store, yaml)))
		if err != nil {
			t.Fatal(err)
		}
		d := &daemon{log: slog.New(slog.DiscardHandler), cache: wim.NewCache(boot.DefaultChunkCache), clients: boot.NewRegistry(0, 0)}
		d.winpe = winpe.NewLibrary(winpe.Options{Chunks: d.cache})
		st, err := d.buildState(cfg, imagestore.OverFS(os.DirFS(fx.store), fx.store, localstore.Options{}), snap, false)
		if err != nil {
			t.Fatal(err)
		}
		d.install(st)
		return d, st
	}
	open := func(d *daemon, c boot.Client, name string) fs.File {
		t.Helper()
		st := d.cur.Load()
		tree, err := st.winpe.Tree(c)
		if err != nil {
			t.Fatal(err)
		}
		f, err := d.setupClientTree(st, c, tree).Open(name)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		return f
	}

	d, st := newDaemonFor("setup: {share: on, advertise: 10.0.0.1}\nrules:\n  - match: {mac: \"52:54:00:aa:*\"}\n    entry: " + entry + "\n    setup: {unattend: unattend/a.xml}\n")
	if st.policy.TreeEntry(clientA) == nil {
		t.Skip("the test image cannot boot natively here (no tree entry for the rule's client)")
	}
	for _, e := range st.cfg.Entries {
		if strings.Contains(e.Name, "~") {
			t.Errorf("a variant is a menu entry: %s", e.Name)
		}
	}
	for _, name := range []string{"sources/boot.wim", "winpe/" + entry + "/boot.wim"} {
		if u, err := extract(open(d, clientA, name), "/pxewim/unattend.xml"); err != nil || u != "<unattend>A</unattend>" {
			t.Errorf("A's %s: unattend %q %v", name, u, err)
		}
		s, _ := extract(open(d, clientA, name), "/Windows/System32/startnet.cmd")
		if !strings.Contains(s, "/user:pxewim ") {
			t.Errorf("A's %s startnet.cmd:\n%s", name, s)
		}
	}
	if _, err := extract(open(d, clientB, "winpe/"+entry+"/boot.wim"), "/pxewim/unattend.xml"); err == nil {
		t.Error("B got A's rule's answer file")
	}
	if s, _ := extract(open(d, clientB, "winpe/"+entry+"/boot.wim"), "/Windows/System32/startnet.cmd"); !strings.Contains(s, "/user:pxewim ") {
		t.Errorf("B's startnet.cmd:\n%s", s)
	}

	// Per client.
	d, st = newDaemonFor("setup: {share: on, advertise: 10.0.0.1, credentials: per_client}\n")
	first := st
	sa, _ := extract(open(d, clientA, "winpe/"+entry+"/boot.wim"), "/Windows/System32/startnet.cmd")
	afterA := d.cur.Load()
	if afterA == first || !strings.Contains(sa, "/user:pxe-525400aa0001 ") {
		t.Fatalf("A: new state %v, startnet.cmd:\n%s", afterA != first, sa)
	}
	sa2, _ := extract(open(d, clientA, "winpe/"+entry+"/boot.wim"), "/Windows/System32/startnet.cmd")
	if d.cur.Load() != afterA || sa2 != sa {
		t.Errorf("A's second open rebuilt the state (%v) or changed its script", d.cur.Load() != afterA)
	}
	sb, _ := extract(open(d, clientB, "winpe/"+entry+"/boot.wim"), "/Windows/System32/startnet.cmd")
	if !strings.Contains(sb, "/user:pxe-525400bb0002 ") || sb == sa {
		t.Errorf("B's startnet.cmd:\n%s", sb)
	}
	if got := len(d.setup.clients.snapshot()); got != 2 {
		t.Errorf("%d clients registered, want 2", got)
	}
	// A new client's first requests racing each other, all from the state before its account:
	// every one is served its variant (none the entry without credentials).
	macC, _ := net.ParseMAC("52:54:00:cc:00:03")
	clientC := boot.Client{MAC: macC, Firmware: boot.FirmwareBIOS}
	before := d.cur.Load()
	beforeTree, err := before.winpe.Tree(clientC)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	scripts := make([]string, 8)
	for i := range scripts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := d.setupClientTree(before, clientC, beforeTree).Open("winpe/" + entry + "/boot.wim")
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			scripts[i], _ = extract(f, "/Windows/System32/startnet.cmd")
		}()
	}
	wg.Wait()
	for i, s := range scripts {
		if !strings.Contains(s, "/user:pxe-525400cc0003 ") || s != scripts[0] {
			t.Errorf("racing request %d got:\n%s", i, s)
		}
	}
	// Idle clients' variants are dropped (their memory), not their accounts: one that comes
	// back gets its variant again with the same account.
	if d.sweepSetupVariants() {
		t.Error("variants dropped while their clients are active")
	}
	later := time.Now().Add(setupVariantIdle + time.Minute)
	d.setup.clients.mu.Lock()
	d.setup.clients.now = func() time.Time { return later }
	d.setup.clients.mu.Unlock()
	if !d.sweepSetupVariants() {
		t.Fatal("idle clients' variants not dropped")
	}
	if n := len(d.cur.Load().setupVars.names); n != 0 {
		t.Errorf("%d variants left after the sweep", n)
	}
	if sa3, _ := extract(open(d, clientA, "winpe/"+entry+"/boot.wim"), "/Windows/System32/startnet.cmd"); sa3 != sa {
		t.Errorf("A back after its variant was dropped:\n%s\nwant:\n%s", sa3, sa)
	}
	for k := range d.cur.Load().setupVars.names { // one per Setup entry (opened on first use)
		if k.mac != macKey(macA) {
			t.Errorf("variant %+v after only A came back", k)
		}
	}
	if s, err := extract(open(d, boot.Client{}, "winpe/"+entry+"/boot.wim"), "/Windows/System32/startnet.cmd"); err == nil && strings.Contains(s, "net use") {
		t.Errorf("a client without a MAC got credentials:\n%s", s)
	}
}
