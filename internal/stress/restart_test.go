package stress

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestLeasesSurviveKill9: clients lease addresses from full DHCP, the daemon is killed with
// SIGKILL (no drain, no close of the lease database), restarted on the same config, and every
// client gets its old address back; a new client gets none of theirs.
func TestLeasesSurviveKill9(t *testing.T) {
	p := newPair(t, "10.91.6")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(store, 0o755)
	d := startDaemon(t, ctx, p, dir, serveConfig(p, store, dir, "full"), true, true)
	const n = 8
	first := leaseAll(t, ctx, p, n, 0, false)
	if err := d.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := d.proc.Wait(5 * time.Second); err == nil {
		t.Fatal("pxewim exited cleanly after SIGKILL?")
	}
	d = runDaemon(t, ctx, p, dir, d.conf, true, true)
	// Ask in reverse order: an allocator that forgot its leases and hands out the pool in order
	// would now give the last client the first address.
	second := leaseAll(t, ctx, p, n, 0, true)
	for i := range n {
		if first[i] != second[i] {
			t.Errorf("client %s: %s before kill -9, %s after", clientMAC(i), first[i], second[i])
		}
	}
	other := leaseAll(t, ctx, p, 1, 200, false)[0]
	for i, a := range first {
		if a == other {
			t.Errorf("new client got %s, the lease of %s", other, clientMAC(i))
		}
	}
	d.alive(t)
	t.Logf("%d leases kept across kill -9 (e.g. %s -> %s); new client got %s", n, clientMAC(0), first[0], other)
}

func leaseAll(t *testing.T, ctx context.Context, p *pair, n, base int, reverse bool) []string {
	t.Helper()
	port, err := openDHCPPort(p.Cli)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	out := make([]string, n)
	for j := range n {
		i := j
		if reverse {
			i = n - 1 - j
		}
		info, err := port.fullDORA(ctx, clientMAC(base+i))
		if err != nil {
			t.Fatalf("client %s: %v", clientMAC(base+i), err)
		}
		out[i] = info.IP.String()
	}
	return out
}

// TestReloadUnderLoad: many clients download a file inside a WIM over HTTP and TFTP in a
// loop while the daemon gets SIGHUP twice and its config file is rewritten; every transfer
// completes byte-exact and the log shows the reloads.
func TestReloadUnderLoad(t *testing.T) {
	p := newPair(t, "10.91.7")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(store, 0o755)
	data := payload(6<<20, 11)
	buildWIM(t, filepath.Join(store, "img.wim"), map[string][]byte{"f.bin": data}, "LZX")
	cfg := serveConfig(p, store, dir, "off")
	d := startDaemon(t, ctx, p, dir, cfg, true, false)
	url := fmt.Sprintf("http://%s/files/img.wim:1/f.bin", p.SrvIP)

	const clients = 16
	var done atomic.Bool
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := nsClient(p.Cli, p.CliIP, time.Minute)
			for !done.Load() {
				var got []byte
				var err error
				if i%4 == 0 { // a quarter of the clients use TFTP (windowed)
					got, err = tftpGet{NS: p.Cli, Server: p.SrvIP.String() + ":69", LAddr: &net.UDPAddr{IP: p.CliIP.AsSlice()},
						Blksize: 1468, Window: 8}.fetch("img.wim:1/f.bin")
				} else {
					var st int
					st, got, err = getAll(ctx, c, url, 1<<30)
					if err == nil && st != 200 {
						err = fmt.Errorf("status %d", st)
					}
				}
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("%d bytes differ from the source", len(got))
				}
				if err != nil {
					bad.Add(1)
					t.Errorf("client %d: %v", i, err)
					return
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	d.proc.Signal(syscall.SIGHUP)
	time.Sleep(700 * time.Millisecond)
	os.WriteFile(d.conf, []byte(strings.Replace(cfg, `title: "stress"`, `title: "stress reloaded"`, 1)), 0o644)
	time.Sleep(3 * time.Second) // the daemon polls the file every 2 s
	d.proc.Signal(syscall.SIGHUP)
	time.Sleep(700 * time.Millisecond)
	done.Store(true)
	wg.Wait()
	d.alive(t)
	reloads := strings.Count(mustRead(d.logPath), `"config reloaded"`)
	if reloads < 3 {
		t.Errorf("log shows %d reloads, want 3 (2 SIGHUP + 1 file change)", reloads)
	}
	if bad.Load() > 0 || ok.Load() < clients {
		t.Fatalf("%d transfers failed, %d completed", bad.Load(), ok.Load())
	}
	t.Logf("%d transfers of 6 MiB completed byte-exact across %d reloads (HTTP and TFTP windowsize 8), 0 failed", ok.Load(), reloads)
}
