package stress

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/internal/testenv"
)

// floodConfig is proxy DHCP with a native WinPE entry that a rule gives one stock-PXE MAC.
func floodConfig(p *pair, store, mac string) string {
	return fmt.Sprintf(`store: %s
listen:
  http: "%s:80"
  tftp: "%s:69"
dhcp:
  mode: proxy
  interfaces: [s0]
admin:
  listen: "off"
ipxe:
  dir: /usr/lib/ipxe
  bios: undionly.kpxe
  efi64: snponly.efi
  httpboot: snponly.efi
winpe:
  auto: false
menu:
  title: "flood"
  timeout: 0s
  default: tool
entries:
  - name: tool
    ipxe: |
      exit
  - name: pe
    winpe:
      image: pe.wim
      path: native
rules:
  - match: { mac: %q, ipxe: false }
    entry: pe
`, store, p.SrvIP, p.SrvIP, mac)
}

// TestDHCPFloodDuringNativeBoot is issue 11 point 4: a native WinPE client (BIOS PXE) gets its
// proxy offer and its port-4011 ACK naming boot\pxeboot.n12 and fetches that over TFTP; then
// 20,000 DISCOVERs from random MACs arrive (spread over 16 source addresses so that they pass
// the per-source rate limit and overrun the client registry: at least
// boot.DefaultRegistrySize of them are answered, so every never-served record is pushed out);
// then 5,000 more from one address, which the rate limit cuts short. The client's next TFTP
// requests, \Boot\BCD and the WIM, must still resolve in its own tree and arrive byte for byte
// (before the fix the registry evicted the oldest client and \Boot\BCD was "file not found").
func TestDHCPFloodDuringNativeBoot(t *testing.T) {
	p := newPair(t, "10.91.11")
	const mac = "52:54:00:f1:00:01"
	hw, _ := net.ParseMAC(mac)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	wimPath := filepath.Join(store, "pe.wim")
	testenv.BuildWinPE(t, wimPath, []testenv.WinPEImage{{Name: "WinPE flood",
		Files: map[string][]byte{"Windows/System32/big.dll": payload(3<<20, 11)}}}, "--compress=LZX")
	wimBytes, err := os.ReadFile(wimPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := startDaemon(t, ctx, p, dir, floodConfig(p, store, mac), true, true)
	port, err := openDHCPPort(p.Cli)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()

	// The native client: DISCOVER (proxy offer), REQUEST to 4011 with its address, TFTP.
	disc, err := dhcpv4.NewDiscovery(hw, pxeMods(hw)...)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := port.exchange(ctx, disc, bcast, dhcpv4.MessageTypeOffer)
	if err != nil {
		t.Fatalf("native client's DISCOVER: %v\n%s", err, testenv.Tail(mustRead(d.logPath), 3000))
	}
	info, err := port.boot4011(ctx, hw, p.CliIP, p.SrvIP)
	if err != nil {
		t.Fatalf("native client's 4011 REQUEST: %v", err)
	}
	const nbp = `boot\pxeboot.n12`
	if !strings.EqualFold(info.BootFile, nbp) || !strings.EqualFold(offer.BootFileName, nbp) {
		t.Fatalf("boot file: offer %q, 4011 ACK %q, want %q", offer.BootFileName, info.BootFile, nbp)
	}
	tg := tftpGet{NS: p.Cli, Server: netip.AddrPortFrom(p.SrvIP, 69).String(), LAddr: &net.UDPAddr{IP: p.CliIP.AsSlice()},
		Blksize: 1456, Window: 8, MaxBytes: 64 << 20}
	fetch := func(name string, want []byte) {
		t.Helper()
		got, err := tg.fetch(name)
		if err != nil {
			t.Fatalf("TFTP %s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("TFTP %s: %d bytes, want the %d of the image's file", name, len(got), len(want))
		}
		t.Logf("TFTP %s: %d bytes, byte for byte", name, len(got))
	}
	fetch(nbp, testenv.WinPEContent(1, "Windows/Boot/PXE/pxeboot.n12"))
	rssBefore, _ := procStatus(d.proc.PID(), "VmRSS")

	// The flood: 16 sources, 1,250 random MACs each (under the per-source burst), paced by
	// the answers so that the kernel's socket buffers drop nothing; unanswered ones are sent
	// again (their MAC buckets have room).
	srcs := make([]netip.Addr, 16)
	for i := range srcs {
		srcs[i] = p.host(100 + i)
	}
	p.addClientAddrs(t, srcs)
	answered := flood(t, ctx, p, port, srcs, 20000, 0xf1000000, true)
	if answered < boot.DefaultRegistrySize {
		t.Fatalf("only %d of 20,000 flood DISCOVERs were answered, fewer than the registry's %d records: the flood did not overrun it, so this test proves nothing",
			answered, boot.DefaultRegistrySize)
	}
	d.alive(t)

	// One source, 5,000 at full speed: the per-source limit answers its burst and then its rate.
	one := p.host(200)
	p.addClientAddrs(t, []netip.Addr{one})
	start := time.Now()
	burst := flood(t, ctx, p, port, []netip.Addr{one}, 5000, 0xf2000000, false)
	elapsed := time.Since(start)
	lim := dhcp.DefaultRateLimit.PerSource
	if most := lim.Burst + int(elapsed.Seconds()*lim.PerSecond) + 1; burst > most || burst >= 5000 {
		t.Errorf("one source: %d of 5,000 DISCOVERs answered in %v, want at most %d (burst %d + %g/s)", burst, elapsed, most, lim.Burst, lim.PerSecond)
	}
	if log := mustRead(d.logPath); !strings.Contains(log, "dhcp rate limit") {
		t.Errorf("no rate-limit warning in the daemon's log")
	}
	rssAfter, _ := procStatus(d.proc.PID(), "VmRSS")
	t.Logf("flood: %d of 20,000 answered from 16 sources, %d of 5,000 from one source in %v; daemon RSS %d -> %d MiB",
		answered, burst, elapsed.Round(time.Millisecond), rssBefore>>20, rssAfter>>20)

	// The native client goes on: bootmgr's BCD, then the WIM, from its own tree.
	fetch(`\Boot\BCD`, testenv.WinPEContent(1, "Windows/Boot/DVD/PCAT/BCD"))
	fetch(`\sources\boot.wim`, wimBytes)
	d.alive(t)
}

// flood sends n proxy DISCOVERs (stock BIOS PXE, random MACs, xids from base) from the given
// source addresses to the broadcast address and returns how many got an offer. paced sends in
// windows of 256 and waits for the window's answers (until none come for a second), then
// sends the unanswered again, up to three rounds; unpaced sends everything once as fast as
// the socket takes it and collects the answers until none come for a second.
func flood(t *testing.T, ctx context.Context, p *pair, port *dhcpPort, srcs []netip.Addr, n int, base uint32, paced bool) int {
	t.Helper()
	conns := make([]*net.UDPConn, len(srcs))
	for i, a := range srcs {
		c, err := listenUDP(p.Cli, &net.UDPAddr{IP: a.AsSlice()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	rng := rand.New(rand.NewPCG(uint64(base), 7))
	pkts := make([][]byte, n)
	got := make([]atomic.Bool, n)
	var total atomic.Int64
	for i := range pkts {
		var m [6]byte
		v := rng.Uint64()
		for j := range m {
			m[j] = byte(v >> (8 * j))
		}
		m[0] = m[0]&^1 | 2
		hw := net.HardwareAddr(m[:])
		xid := base + uint32(i)
		pkt, err := dhcpv4.NewDiscovery(hw, append(pxeMods(hw), dhcpv4.WithTransactionID(dhcpv4.TransactionID{
			byte(xid >> 24), byte(xid >> 16), byte(xid >> 8), byte(xid)}))...)
		if err != nil {
			t.Fatal(err)
		}
		pkts[i] = pkt.ToBytes()
		ch, done := port.listen(pkt.TransactionID)
		defer done()
		go func() {
			select {
			case <-ch:
				if !got[i].Swap(true) {
					total.Add(1)
				}
			case <-ctx.Done():
			}
		}()
	}
	// settle waits until total stops growing for a second or reaches want.
	settle := func(want int64) {
		last, quiet := total.Load(), time.Now()
		for total.Load() < want && time.Since(quiet) < time.Second && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
			if now := total.Load(); now != last {
				last, quiet = now, time.Now()
			}
		}
	}
	send := func(i int) {
		if _, err := conns[i%len(conns)].WriteToUDP(pkts[i], bcast); err != nil {
			t.Fatalf("flood send: %v", err)
		}
	}
	if !paced {
		for i := range pkts {
			send(i)
		}
		settle(int64(n))
		return int(total.Load())
	}
	const window = 256
	for round := 0; round < 3 && int(total.Load()) < n; round++ {
		var pending []int
		for i := range pkts {
			if !got[i].Load() {
				pending = append(pending, i)
			}
		}
		for w := 0; w < len(pending); w += window {
			ws := pending[w:min(w+window, len(pending))]
			before := total.Load()
			for _, i := range ws {
				send(i)
			}
			settle(before + int64(len(ws)))
		}
	}
	return int(total.Load())
}
