package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// checkHelperEnv makes TestCheckHelperProcess run "pxewim" with the newline-separated
// arguments it holds (in the folder checkHelperDir names): the check tests run this test
// binary inside a network namespace of their own, so that the listen addresses "pxewim
// check" probes (DHCP's port 67 included) are the namespace's, never the machine's.
const (
	checkHelperEnv = "PXEWIM_CHECK_HELPER_ARGS"
	checkHelperDir = "PXEWIM_CHECK_HELPER_DIR"
)

// TestCheckHelperProcess is the "pxewim check" process of the check tests, not a test.
func TestCheckHelperProcess(t *testing.T) {
	args := os.Getenv(checkHelperEnv)
	if args == "" {
		t.Skip("helper process: runs only inside the check tests")
	}
	if d := os.Getenv(checkHelperDir); d != "" {
		if err := os.Chdir(d); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
	os.Exit(run(strings.Split(args, "\n"), os.Stdout, os.Stderr))
}

// checkInNetns runs "pxewim ARGS" (check) in ns from folder dir and returns its output and
// whether it exited 0.
func checkInNetns(t *testing.T, ns *testenv.Netns, dir string, args ...string) (string, bool) {
	t.Helper()
	t.Setenv(checkHelperEnv, strings.Join(args, "\n"))
	t.Setenv(checkHelperDir, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := ns.Exec(ctx, os.Args[0], "-test.run=^TestCheckHelperProcess$")
	return out, err == nil
}

// treeOf lists every path under dir with its size and mode: the check must leave it as is.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d", p, fi.Mode(), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func wantSameTree(t *testing.T, dir string, before []string) {
	t.Helper()
	after := treeOf(t, dir)
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("check changed the folder:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
}

// TestCheckFindsEverythingAtOnce is issue 11 point 6: one config with every kind of problem
// that stops "pxewim serve" (config errors in several sections, a rule naming a missing entry,
// two of serve's listeners on one address, a port another process holds, the dashboard's
// password file, the upload server's authorized keys, a lease file in a missing folder, a DHCP
// interface that does not exist) and what keeps clients from booting (a missing kernel):
// "pxewim check" lists all of them in one run, reports what serve would create as notes,
// and creates nothing. It runs in a network namespace of its own (the probes bind ports 67
// and 4011 for an instant, and the test holds some ports there).
func TestCheckFindsEverythingAtOnce(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "ip")
	ns := testenv.MustNetns(t, "check")
	heldTCP, err := ns.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer heldTCP.Close()
	held67, err := ns.ListenPacket("udp4", "0.0.0.0:67") // another DHCP server
	if err != nil {
		t.Fatal(err)
	}
	defer held67.Close()
	uploadAddr := heldTCP.Addr().String()

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "pxewim.yaml")
	doc := fmt.Sprintf(`store: store
listen:
  http: "127.0.0.1:8080"
  tftp: "0.0.0.0:4011"
  bogus: 1
admin:
  listen: "127.0.0.1:8080"
  user: admin
  password_file: %s
upload:
  listen: %q
  authorized_keys: keys/authorized_keys
  host_key: hostkeys/sub/host_key
dhcp:
  mode: full
  interfaces: [pxwnone0]
  full:
    range: 10.99.0.10-10.99.0.20
    netmask: 255.255.255.0
    leases: nodir/leases.db
entries:
  - name: shell
    ipxe: |
      shell
  - name: rescue
    linux:
      kernel: missing/vmlinuz
  - name: broken
    ipxe: |
      shell
    linux: {kernel: a}
rules:
  - match: {mac: "52:54:00:*"}
    entry: nope
  - match: {mac: "52:55:00:*"}
    entry: broken
`, filepath.Join(dir, "no-password-file"), uploadAddr)
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	before := treeOf(t, dir)
	out, ok := checkInNetns(t, ns, dir, "check", "--config", cfg)
	if ok {
		t.Fatalf("check passed:\n%s", out)
	}
	for _, want := range []string{
		"pxewim.yaml: config has errors",
		"problem: " + cfg + ":5: listen.bogus: unknown key",
		cfg + ":28: entries[2]: has ipxe and linux",
		"problem: " + cfg + `:33: rules[0].entry: no entry named "nope"`,
		`problem: entry "rescue"`, "missing/vmlinuz: not found",
		"problem: admin.password_file: open " + filepath.Join(dir, "no-password-file") + ": no such file",
		"problem: listen.http (127.0.0.1:8080) and admin.listen (127.0.0.1:8080) are the same TCP address",
		"problem: listen.tftp (0.0.0.0:4011) and dhcp (port 4011) (0.0.0.0:4011) are the same UDP address",
		"problem: dhcp (port 67): cannot bind UDP 0.0.0.0:67: bind: address already in use (held by ",
		"problem: upload.listen: cannot bind TCP " + uploadAddr + ": bind: address already in use",
		"problem: upload: authorized keys: stat " + filepath.Join(dir, "keys/authorized_keys") + ": no such file",
		"note: upload: serve creates " + filepath.Join(dir, "store/.incoming") + ", " + filepath.Join(dir, "hostkeys") + ", " +
			filepath.Join(dir, "hostkeys/sub") + ", " + filepath.Join(dir, "hostkeys/sub/host_key") + " when it starts",
		"problem: dhcp.interfaces: pxwnone0",
		"problem: dhcp.full.leases: folder " + filepath.Join(dir, "nodir") + " does not exist",
		"12 problems found",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	for _, not := range []string{`no entry named "broken"`, `no entry "nope" at the moment`, `no entry "broken"`} {
		if strings.Contains(out, not) {
			t.Errorf("check output has %q", not)
		}
	}
	if t.Failed() {
		t.Logf("check output:\n%s", out)
	}
	wantSameTree(t, dir, before)
}

// TestCheckFindsEverythingAtOnceMore: the stops the first config cannot show at the same
// time: the store is a file (serve and the upload server both stop), HTTP names an address
// this machine does not have, the dashboard's password file is empty, the upload host key is
// not a key, and the lease file's folder is a file.
func TestCheckFindsEverythingAtOnceMore(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "ip")
	ns := testenv.MustNetns(t, "check")
	dir := t.TempDir()
	for name, content := range map[string]string{"store": "not a folder", "pw": "\n", "host_key": "not a key", "keys": "",
		"leasedir": "a file"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "pxewim.yaml")
	doc := fmt.Sprintf(`store: store
listen:
  http: "192.0.2.77:8080"
  tftp: "127.0.0.1:6969"
admin:
  listen: "127.0.0.1:9091"
  user: admin
  password_file: %s
upload:
  listen: "127.0.0.1:2222"
  authorized_keys: keys
  host_key: host_key
dhcp:
  mode: full
  interfaces: [lo]
  full:
    range: 10.99.0.10-10.99.0.20
    netmask: 255.255.255.0
    leases: leasedir/leases.db
`, filepath.Join(dir, "pw"))
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	before := treeOf(t, dir)
	out, ok := checkInNetns(t, ns, dir, "check", "--config", cfg)
	if ok {
		t.Fatalf("check passed:\n%s", out)
	}
	for _, want := range []string{
		"problem: " + cfg + ": store " + filepath.Join(dir, "store") + ": localstore: " + filepath.Join(dir, "store") + " is not a folder",
		"problem: listen.http: cannot bind TCP 192.0.2.77:8080: bind: cannot assign requested address",
		"fix: no interface of this machine has that address: correct listen.http",
		"problem: admin.password_file " + filepath.Join(dir, "pw") + " is empty",
		"problem: upload: store " + filepath.Join(dir, "store") + " is not a folder",
		"problem: upload: host key " + filepath.Join(dir, "host_key") + ": ssh: no key found",
		"problem: dhcp.interfaces: lo has no address in the pool's network 10.99.0.0/24",
		"problem: dhcp.full.leases: " + filepath.Join(dir, "leasedir/leases.db") + ": " + filepath.Join(dir, "leasedir") + " is not a folder",
		"7 problems found",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("check output:\n%s", out)
	}
	wantSameTree(t, dir, before)
}

// TestCheckBuiltInConfigNotes: with the built-in config, a store folder that serve would make
// is a note, not a problem, and so is HTTP on the dashboard's default address (serve starts
// with the dashboard off); check passes and makes neither the folder nor anything else.
func TestCheckBuiltInConfigNotes(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "ip")
	ns := testenv.MustNetns(t, "check")
	dir := t.TempDir()
	before := treeOf(t, dir)
	out, ok := checkInNetns(t, ns, dir, "check", "--http", "127.0.0.1:9090", "--tftp", "127.0.0.1:6969")
	if !ok {
		t.Fatalf("check failed:\n%s", out)
	}
	for _, want := range []string{
		"note: store " + filepath.Join(dir, "store") + " does not exist yet: serve creates it",
		"note: admin.listen (default 127.0.0.1:9090) is also listen.http's address (127.0.0.1:9090): serve starts with the dashboard off",
		"no problems found",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	wantSameTree(t, dir, before)
	// The same with --store naming a missing folder: serve stops there, so it is a problem.
	out, ok = checkInNetns(t, ns, dir, "check", "--store", filepath.Join(dir, "gone"), "--http", "127.0.0.1:8080", "--tftp", "127.0.0.1:6969")
	if ok || !strings.Contains(out, "problem: (built-in default config): store "+filepath.Join(dir, "gone")) {
		t.Errorf("missing --store folder not a problem:\n%s", out)
	}
	wantSameTree(t, dir, before)
}

// TestCheckBesideRunningServe: check run for the config a "pxewim serve" is serving (the
// admin edited it and checks before the reload) reports the addresses that server holds as
// notes, not problems, and passes.
func TestCheckBesideRunningServe(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "ip", "ss")
	ns := testenv.MustNetns(t, "check")
	var build testenv.PxewimBuild
	t.Cleanup(build.Remove)
	bin, err := build.Path()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "pxewim.yaml")
	if err := os.WriteFile(cfg, []byte("store: store\nlisten: {http: \"127.0.0.1:8080\", tftp: \"127.0.0.1:6969\"}\nadmin: {listen: \"off\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Start("pxewim", filepath.Join(t.TempDir(), "serve.log"), bin, "serve", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, l := range []struct {
		proto string
		port  int
	}{{"tcp", 8080}, {"udp", 6969}} {
		if err := testenv.WaitListening(ctx, ns, l.proto, l.port, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	before := treeOf(t, dir)
	out, ok := checkInNetns(t, ns, dir, "check", "--config", cfg)
	if !ok {
		t.Fatalf("check beside the running server failed:\n%s", out)
	}
	for _, want := range []string{
		"note: listen.http: cannot bind TCP 127.0.0.1:8080: bind: address already in use (held by pxewim, pid ",
		"note: listen.tftp: cannot bind UDP 127.0.0.1:6969: bind: address already in use (held by pxewim, pid ",
		"the running server; a second one would stop here",
		"no problems found",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	wantSameTree(t, dir, before)
}

// TestCheckBindProbe: the probe fails on a port held by a listener (and names this process as
// its holder), succeeds on a free one, and fails on an address this machine does not have.
func TestCheckBindProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if err := bindProbe("tcp", net.IPv4(127, 0, 0, 1), port); err == nil {
		t.Error("probe bound a listening port")
	}
	if h := portHolder("tcp", port); !strings.Contains(h, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("holder = %q, want this process", h)
	}
	ln.Close()
	if err := bindProbe("tcp", net.IPv4(127, 0, 0, 1), port); err != nil {
		t.Errorf("probe of a free port: %v", err)
	}
	if err := bindProbe("tcp", net.ParseIP("192.0.2.77"), port); err == nil {
		t.Error("probe bound an address this machine does not have")
	}
}
