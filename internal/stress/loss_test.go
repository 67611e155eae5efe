package stress

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
}

func netemCases() []netemCase {
	cs := []netemCase{
		{"loss1", []string{"loss", "1%"}, 512 << 10},
		{"loss5", []string{"loss", "5%"}, 128 << 10},
		{"loss20", []string{"loss", "20%"}, 32 << 10},
		{"dup-reorder", []string{"delay", "2ms", "duplicate", "1%", "reorder", "25%", "50%"}, 512 << 10},
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
	viaNft                      // kernel without sch_netem: nft "numgen random" drop on input in both namespaces
	viaClient                   // kernel without sch_netem: duplication/reordering at the client socket (TFTP only)
)

// impair applies c to both directions of the veth and removes it in t.Cleanup. Without
// sch_netem (some CI kernels), loss falls back to nft random drops, and duplication/reordering
// to the client-socket chaos layer.
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
	if c.args[0] != "loss" {
		t.Logf("kernel has no sch_netem: %s done at the client socket", c.name)
		return viaClient
	}
	testenv.RequireTools(t, "nft")
	pct := strings.TrimSuffix(c.args[1], "%")
	for _, e := range ends {
		for _, cmd := range [][]string{
			{"nft", "add", "table", "inet", "pxwloss"},
			{"nft", "add", "chain", "inet", "pxwloss", "in", "{ type filter hook input priority 0; }"},
			{"nft", "add", "rule", "inet", "pxwloss", "in", "numgen", "random", "mod", "100", "<", pct, "drop"},
		} {
			if out, err := e.ns.Exec(context.Background(), cmd...); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
	}
	t.Cleanup(func() {
		for _, e := range ends {
			e.ns.Exec(context.Background(), "nft", "delete", "table", "inet", "pxwloss")
		}
	})
	t.Logf("kernel has no sch_netem: %s%% loss each way by nft random drop", pct)
	return viaNft
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
	before := mustFDs(t, d)
	for _, c := range netemCases() {
		t.Run(c.name, func(t *testing.T) {
			var ch func() *chaos
			if impair(t, p, c) == viaClient {
				ch = func() *chaos { return newChaos(0.01, 0.25, uint64(time.Now().UnixNano())) }
			}
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
							Timeout: 500 * time.Millisecond, Retries: 20, ServerTimeout: 1, Chaos: chaosOf(ch)}.fetch(c.name + ".bin")
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
		})
	}
	d.alive(t)
	// Transfers whose client gave up end on the server's retry limit.
	waitFDs(t, d, before)
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
	before := mustFDs(t, d)
	for _, c := range netemCases() {
		t.Run(c.name, func(t *testing.T) {
			if impair(t, p, c) == viaClient {
				t.Skip("kernel has no sch_netem: TCP duplication/reordering needs it (install a kernel with sch_netem)")
			}
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
		})
	}
	d.alive(t)
	waitFDs(t, d, before)
}

func chaosOf(f func() *chaos) *chaos {
	if f == nil {
		return nil
	}
	return f()
}
