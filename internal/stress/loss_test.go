package stress

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// netemCase is one impairment applied to both directions of the veth.
type netemCase struct {
	name string
	args []string // after "netem"
	size int      // bytes per transfer: smaller under heavy loss to keep the run short
	// The same impairment in per cent, for the kernel fallback without sch_netem.
	loss, dup, reorder int
}

func netemCases() []netemCase {
	cs := []netemCase{
		{name: "loss1", args: []string{"loss", "1%"}, size: 512 << 10, loss: 1},
		{name: "loss5", args: []string{"loss", "5%"}, size: 128 << 10, loss: 5},
		{name: "loss20", args: []string{"loss", "20%"}, size: 32 << 10, loss: 20},
		{name: "dup-reorder", args: []string{"delay", "2ms", "duplicate", "1%", "reorder", "25%", "50%"}, size: 512 << 10, dup: 1, reorder: 25},
	}
	if testing.Short() {
		return []netemCase{cs[1], cs[3]}
	}
	return cs
}

// impairment is how a netemCase was applied.
type impairment int

const (
	viaNetem  impairment = iota // tc netem on both veth ends
	viaKernel                   // kernel without sch_netem: nft drop/dup + HTB slow class (impair_test.go)
	viaClient                   // neither netem nor HTB/nft: duplication/reordering at the client socket (TFTP only)
)

// impair applies c to both directions of the veth and removes it in t.Cleanup. netem comes
// first; without sch_netem (this CI kernel) the kernel fallback of impair_test.go does the
// same with nftables and HTB, for TCP as well as UDP; only when that is missing too does
// TFTP fall back to the client-socket chaos layer (and HTTP skips).
func impair(t *testing.T, p *pair, c netemCase) impairment {
	t.Helper()
	ends := []struct {
		ns  *testenv.Netns
		dev string
	}{{p.Srv, "s0"}, {p.Cli, "c0"}}
	argv := append([]string{"tc", "qdisc", "replace", "dev", "s0", "root", "netem"}, c.args...)
	if _, err := p.Srv.Exec(context.Background(), argv...); err == nil {
		for _, e := range ends[1:] {
			argv[4] = e.dev
			if out, err := e.ns.Exec(context.Background(), argv...); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
		t.Cleanup(func() {
			for _, e := range ends {
				e.ns.Exec(context.Background(), "tc", "qdisc", "del", "dev", e.dev, "root")
			}
		})
		return viaNetem
	}
	if _, err := exec.LookPath("nft"); err != nil {
		if c.loss > 0 {
			t.Skip("kernel has no sch_netem and nft is missing: apt-get install nftables")
		}
		t.Logf("kernel has no sch_netem and nft is missing: %s done at the client socket", c.name)
		return viaClient
	}
	for _, e := range ends {
		if err := kernelImpair(t, e.ns, e.dev, c); err != nil {
			if c.loss > 0 {
				t.Fatalf("kernel has no sch_netem, and the nft fallback failed: %v", err)
			}
			t.Logf("kernel has no sch_netem, and the nft+HTB fallback failed (%v): %s done at the client socket", err, c.name)
			return viaClient
		}
	}
	t.Logf("kernel has no sch_netem: %s by nftables+HTB in both namespaces (loss %d%%, dup %d%%, reorder %d%%)",
		c.name, c.loss, c.dup, c.reorder)
	return viaKernel
}

// TestLossTFTP runs lockstep (blksize 1468) and windowed (windowsize 8 and 16) transfers from
// a pxewim serve child through loss, duplication and reordering: each transfer is byte-exact or
// ends in a clean error, and afterwards the daemon's descriptors (every transfer owns a socket
// and the goroutine serving it) return to their count before the run.
//
// The server is a child process, not in-process: pin/tftp opens a socket per transfer on
// whatever thread runs it, which would be outside the test's namespace.
func TestLossTFTP(t *testing.T) {
	p := newPair(t, "10.91.8")
	testenv.RequireTools(t, "tc")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(store, 0o755)
	files := map[string][]byte{}
	for _, c := range netemCases() {
		files[c.name] = payload(c.size, uint64(c.size))
		os.WriteFile(filepath.Join(store, c.name+".bin"), files[c.name], 0o644)
	}
	d := startDaemon(t, ctx, p, dir, serveConfig(p, store, dir, "off"), true, false)
	before, gBefore := mustFDs(t, d), goroutinesBefore(t, p)
	for _, c := range netemCases() {
		t.Run(c.name, func(t *testing.T) {
			var ch func() *chaos
			how := impair(t, p, c)
			if how == viaClient {
				ch = func() *chaos { return newChaos(0.01, 0.25, uint64(time.Now().UnixNano())) }
			}
			var seen tftpStats
			want := files[c.name]
			modes := []struct {
				name   string
				window int
			}{{"lockstep", 0}, {"window8", 8}, {"window16", 16}}
			var wg sync.WaitGroup
			for _, m := range modes {
				for k := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						t0 := time.Now()
						got, err := tftpGet{NS: p.Cli, Server: p.SrvIP.String() + ":69", Blksize: 1468, Window: m.window,
							Timeout: 500 * time.Millisecond, Retries: 20, ServerTimeout: 1, Chaos: chaosOf(ch), Stats: &seen}.fetch(c.name + ".bin")
						switch {
						case err != nil:
							t.Logf("%s #%d: clean error after %v: %.120s", m.name, k, time.Since(t0).Round(time.Millisecond), err.Error())
						case !bytes.Equal(got, want):
							t.Errorf("%s #%d: %d bytes arrived, NOT the %d source bytes", m.name, k, len(got), len(want))
						default:
							t.Logf("%s #%d: %d bytes exact in %v", m.name, k, len(got), time.Since(t0).Round(time.Millisecond))
						}
					}()
				}
			}
			wg.Wait()
			if how == viaKernel {
				checkImpaired(t, c, impairCounts(p.Srv, p.Cli))
			}
			ooo, dups := seen.OutOfOrder.Load(), seen.Duplicates.Load()
			t.Logf("the clients saw %d DATA blocks ahead of their turn and %d repeated ones", ooo, dups)
			if c.reorder > 0 && how != viaClient && ooo == 0 {
				t.Errorf("%s: no DATA block arrived out of order: the reordering did not happen", c.name)
			}
		})
	}
	d.alive(t)
	// Transfers whose client gave up end on the server's retry limit.
	waitFDs(t, d, before)
	waitGoroutines(t, p, gBefore)
}

// TestLossHTTP downloads a file inside an LZX WIM from a pxewim serve child through the same
// impairments (TCP recovers, so every download must be byte-exact) and checks the daemon's
// descriptor count returns to its level before the run.
func TestLossHTTP(t *testing.T) {
	p := newPair(t, "10.91.9")
	testenv.RequireTools(t, "tc")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(store, 0o755)
	data := payload(2<<20, 5)
	buildWIM(t, filepath.Join(store, "img.wim"), map[string][]byte{"f.bin": data}, "LZX")
	d := startDaemon(t, ctx, p, dir, serveConfig(p, store, dir, "off"), true, false)
	url := fmt.Sprintf("http://%s/files/img.wim:1/f.bin", p.SrvIP)
	warm := nsClient(p.Cli, p.CliIP, time.Minute)
	if st, _, err := getAll(ctx, warm, url, 1<<30); err != nil || st != 200 {
		t.Fatalf("warm-up: %d %v", st, err)
	}
	warm.CloseIdleConnections()
	time.Sleep(200 * time.Millisecond)
	before, gBefore := mustFDs(t, d), goroutinesBefore(t, p)
	for _, c := range netemCases() {
		t.Run(c.name, func(t *testing.T) {
			how := impair(t, p, c)
			if how == viaClient {
				t.Skip("kernel has neither sch_netem nor nft+HTB: TCP duplication/reordering needs one of them")
			}
			tcp0 := nstat(p.Cli, tcpCounters...)
			want := data[:min(len(data), 4*c.size)]
			var wg sync.WaitGroup
			for k := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := nsClient(p.Cli, p.CliIP, 2*time.Minute)
					defer cl.CloseIdleConnections()
					t0 := time.Now()
					got, err := fetchRanges(ctx, cl, url, want)
					if err != nil {
						t.Errorf("#%d: %v", k, err)
						return
					}
					t.Logf("#%d: %d bytes exact in %v", k, got, time.Since(t0).Round(time.Millisecond))
				}()
			}
			wg.Wait()
			checkTCPImpaired(t, p, c, how, tcp0)
		})
	}
	d.alive(t)
	waitFDs(t, d, before)
	waitGoroutines(t, p, gBefore)
}

// tcpCounters are the client namespace's TCP counters that show the impairment reached the
// receiving stack: segments queued out of order, and duplicates it reported back (D-SACK).
var tcpCounters = []string{"TcpExtTCPOFOQueue", "TcpExtTCPDSACKOldSent", "TcpExtTCPDSACKOfoSent"}

// checkTCPImpaired checks the kernel fallback's rule counters and logs what the client's TCP
// stack saw since before; with reordering asked for, some segments must have come out of order.
func checkTCPImpaired(t *testing.T, p *pair, c netemCase, how impairment, before map[string]int64) {
	t.Helper()
	if how == viaKernel {
		checkImpaired(t, c, impairCounts(p.Srv, p.Cli))
	}
	after := nstat(p.Cli, tcpCounters...)
	ofo := after["TcpExtTCPOFOQueue"] - before["TcpExtTCPOFOQueue"]
	dsack := after["TcpExtTCPDSACKOldSent"] + after["TcpExtTCPDSACKOfoSent"] - before["TcpExtTCPDSACKOldSent"] - before["TcpExtTCPDSACKOfoSent"]
	t.Logf("client TCP: %d segments queued out of order, %d D-SACKs for duplicates", ofo, dsack)
	if c.reorder > 0 && ofo == 0 {
		t.Errorf("%s: no segment reached the client out of order: the reordering did not happen", c.name)
	}
}

func chaosOf(f func() *chaos) *chaos {
	if f == nil {
		return nil
	}
	return f()
}
