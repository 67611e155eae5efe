package stress

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// pxewimBin is the pxewim binary built once for these tests; TestMain removes it.
var pxewimBin testenv.PxewimBuild

// TestMain removes the pxewim binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	pxewimBin.Remove()
	os.Exit(code)
}

func pxewimBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PXEWIM"); p != "" {
		return p // prebuilt binary (bench/storm.sh)
	}
	bin, err := pxewimBin.Path()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// pair is two namespaces joined by one veth: srv (s0, .1/24) runs the servers, cli (c0, .2/24
// plus one secondary address per simulated client) runs the clients. Nothing else is attached.
type pair struct {
	Srv, Cli *testenv.Netns
	SrvIP    netip.Addr
	CliIP    netip.Addr
	subnet   string // first three octets
	// Site and SiteIP are the site's DHCP server's namespace and address (.3), only in the
	// proxy topology of newSitePair.
	Site   *testenv.Netns
	SiteIP netip.Addr
}

// newPair builds the topology; subnet24 must be unique per test ("10.91.N").
func newPair(t testing.TB, subnet24 string) *pair {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "ip", "ss")
	testenv.SweepStale()
	p := &pair{
		Srv:    testenv.MustNetns(t, "srv"),
		Cli:    testenv.MustNetns(t, "cli"),
		SrvIP:  netip.MustParseAddr(subnet24 + ".1"),
		CliIP:  netip.MustParseAddr(subnet24 + ".2"),
		subnet: subnet24,
	}
	steps := []struct {
		ns   *testenv.Netns
		args []string
	}{
		{p.Srv, []string{"link", "add", "s0", "type", "veth", "peer", "name", "c0", "netns", p.Cli.Name}},
		{p.Srv, []string{"addr", "add", p.SrvIP.String() + "/24", "dev", "s0"}},
		{p.Srv, []string{"link", "set", "s0", "up"}},
		{p.Cli, []string{"addr", "add", p.CliIP.String() + "/24", "dev", "c0"}},
		{p.Cli, []string{"link", "set", "c0", "up"}},
		// Limited broadcast (DHCP DISCOVER from 0.0.0.0) needs a route out of c0.
		{p.Cli, []string{"route", "add", "255.255.255.255/32", "dev", "c0"}},
	}
	for _, s := range steps {
		if _, err := s.ns.IP(s.args...); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// host returns subnet.n.
func (p *pair) host(n int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("%s.%d", p.subnet, n)) }

// addClientAddrs puts addrs on c0 as secondary addresses (one `ip -batch` run).
func (p *pair) addClientAddrs(t testing.TB, addrs []netip.Addr) {
	t.Helper()
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "addr add %s/24 dev c0\n", a)
	}
	f := filepath.Join(t.TempDir(), "addrs.batch")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cli.IP("-batch", f); err != nil {
		t.Fatal(err)
	}
}

// daemon is one `pxewim serve` child in the server namespace.
type daemon struct {
	proc    *testenv.Proc
	logPath string
	conf    string
}

// startDaemon writes cfg and starts pxewim in p.Srv, waiting until HTTP (80) and, when
// wantTFTP, TFTP (69) and, when wantDHCP, DHCP (67) listen.
func startDaemon(t testing.TB, ctx context.Context, p *pair, dir, cfg string, wantTFTP, wantDHCP bool) *daemon {
	t.Helper()
	conf := filepath.Join(dir, "pxewim.yaml")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return runDaemon(t, ctx, p, dir, conf, wantTFTP, wantDHCP)
}

func runDaemon(t testing.TB, ctx context.Context, p *pair, dir, conf string, wantTFTP, wantDHCP bool) *daemon {
	t.Helper()
	d := &daemon{logPath: filepath.Join(dir, "pxewim.log"), conf: conf}
	proc, err := p.Srv.Start("pxewim", d.logPath, pxewimBinary(t), "serve", "--config", conf,
		"--log-format", "json", "--log-level", "info")
	if err != nil {
		t.Fatal(err)
	}
	d.proc = proc
	type lst struct {
		proto string
		port  int
	}
	wait := []lst{{"tcp", 80}}
	if wantTFTP {
		wait = append(wait, lst{"udp", 69})
	}
	if wantDHCP {
		wait = append(wait, lst{"udp", 67})
	}
	for _, l := range wait {
		if err := testenv.WaitListening(ctx, p.Srv, l.proto, l.port, 20*time.Second); err != nil {
			out, _ := os.ReadFile(d.logPath)
			_ = proc.Stop(2 * time.Second)
			t.Fatalf("pxewim serve did not come up: %v\nconfig:\n%s\nlog:\n%s", err, mustRead(conf), testenv.Tail(string(out), 4000))
		}
	}
	return d
}

func mustRead(p string) string { b, _ := os.ReadFile(p); return string(b) }

// alive fails the test when the daemon has exited.
func (d *daemon) alive(t testing.TB) {
	t.Helper()
	if done, err := d.proc.Exited(); done {
		t.Fatalf("pxewim serve exited (%v); log tail:\n%s", err, testenv.Tail(mustRead(d.logPath), 4000))
	}
}

// procStatus reads one "Key:   N kB" field of /proc/PID/status in bytes.
func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return n * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}

// countFDs counts the open file descriptors of pid.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// payload returns n bytes that LZX compresses like real files do (words from a small
// vocabulary with random runs of noise), deterministic for seed.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := make([][]byte, 512)
	for i := range words {
		w := make([]byte, 3+r.IntN(9))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		words[i] = w
	}
	out := make([]byte, 0, n+16)
	for len(out) < n {
		if r.IntN(16) == 0 {
			for range 8 + r.IntN(32) {
				out = append(out, byte(r.Uint32()))
			}
			continue
		}
		out = append(out, words[r.IntN(len(words))]...)
		out = append(out, ' ')
	}
	return out[:n]
}

// buildWIM writes files (name -> bytes) into a fresh folder and captures it with
// wimlib-imagex at the given compression ("LZX", "XPRESS", "LZMS", "none").
func buildWIM(t testing.TB, dst string, files map[string][]byte, compress string, extra ...string) {
	t.Helper()
	testenv.RequireTools(t, "wimlib-imagex")
	src := filepath.Join(t.TempDir(), "wimsrc")
	for name, data := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"capture", src, dst, "stress", "--compress=" + compress}, extra...)
	if out, err := exec.Command("wimlib-imagex", args...).CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	os.RemoveAll(src)
}

// serveConfig renders a pxewim config for the pair: HTTP and TFTP on SrvIP, DHCP per mode
// ("off", "proxy", "full" with a pool .100-.250 and a bbolt lease file in dir).
func serveConfig(p *pair, store, dir, mode string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s\nlisten:\n  http: \"%s:80\"\n  tftp: \"%s:69\"\ndhcp:\n  mode: %s\n", store, p.SrvIP, p.SrvIP, mode)
	if mode != "off" {
		b.WriteString("  interfaces: [s0]\n")
	}
	if mode == "full" {
		fmt.Fprintf(&b, "  full:\n    range: %s-%s\n    netmask: 255.255.255.0\n    router: %s\n    lease: 10m\n    leases: %s\n",
			p.host(10), p.host(250), p.SrvIP, filepath.Join(dir, "leases.db"))
	}
	b.WriteString(`ipxe:
  dir: /usr/lib/ipxe
  bios: undionly.kpxe
  efi64: snponly.efi
  httpboot: snponly.efi
menu:
  title: "stress"
  timeout: 0s
  default: tool
entries:
  - name: tool
    ipxe: |
      echo stress
      exit
`)
	return b.String()
}
