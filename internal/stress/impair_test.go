package stress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// The kernel fallback for netem. This CI kernel (and some others) has no sch_netem, but it has
// nftables (numgen, dup, meta priority) and the HTB qdisc, which together impair traffic in
// the kernel for TCP and UDP alike, where a client-side trick cannot reach TCP segments:
//
//   - loss: an input-hook rule drops L% of the packets (numgen random);
//   - duplication: a postrouting rule copies D% of the packets out of the same device again
//     (`dup to ip daddr device DEV`; the copy is not duplicated again);
//   - reordering: HTB on the device has a fast default class and a slow one (20 Mbit/s with a
//     one-packet burst, so every packet in it waits ~0.6 ms per packet queued before it); a
//     postrouting rule puts R% of the packets in the slow class (`meta priority set 1:20`,
//     which HTB reads as the class before any filter), and packets sent after them overtake.
//
// The device's GSO is limited to one segment first: TCP over veth otherwise hands the qdisc
// and nftables 64 KiB super-packets, and "1% loss" would drop 44 wire segments at once.
//
// Every rule counts what it did, so a test can show the impairment happened.

// impairTable is the nft table (family ip) holding the fallback's rules in each namespace.
const impairTable = "pxwimpair"

// kernelImpair applies c's loss, dup and reorder percentages to the egress of dev in ns
// (loss: on input), and removes them in t.Cleanup.
func kernelImpair(t *testing.T, ns *testenv.Netns, dev string, c netemCase) error {
	ctx := context.Background()
	cmds := [][]string{{"ip", "link", "set", "dev", dev, "gso_max_segs", "1"}}
	if c.reorder > 0 {
		cmds = append(cmds,
			[]string{"tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10"},
			[]string{"tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit", "quantum", "60000"},
			[]string{"tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb",
				"rate", "20mbit", "burst", "1600b", "cburst", "1600b", "quantum", "1514"})
	}
	cmds = append(cmds,
		[]string{"nft", "add", "table", "ip", impairTable},
		[]string{"nft", "add", "chain", "ip", impairTable, "in", "{ type filter hook input priority 0; }"},
		[]string{"nft", "add", "chain", "ip", impairTable, "post", "{ type filter hook postrouting priority 0; }"})
	if c.loss > 0 {
		cmds = append(cmds, []string{"nft", "add", "rule", "ip", impairTable, "in", "iifname", dev,
			"numgen", "random", "mod", "100", "<", strconv.Itoa(c.loss), "counter", "drop", "comment", `"loss"`})
	}
	if c.reorder > 0 {
		cmds = append(cmds, []string{"nft", "add", "rule", "ip", impairTable, "post", "oifname", dev,
			"numgen", "random", "mod", "100", "<", strconv.Itoa(c.reorder), "counter", "meta", "priority", "set", "1:20", "comment", `"reorder"`})
	}
	if c.dup > 0 {
		cmds = append(cmds, []string{"nft", "add", "rule", "ip", impairTable, "post", "oifname", dev,
			"numgen", "random", "mod", "100", "<", strconv.Itoa(c.dup), "counter", "dup", "to", "ip", "daddr", "device", dev, "comment", `"dup"`})
	}
	t.Cleanup(func() {
		ns.Exec(ctx, "nft", "delete", "table", "ip", impairTable)
		ns.Exec(ctx, "ip", "link", "set", "dev", dev, "gso_max_segs", "65535")
		if c.reorder > 0 {
			ns.Exec(ctx, "tc", "qdisc", "del", "dev", dev, "root")
		}
	})
	for _, cmd := range cmds {
		if out, err := ns.Exec(ctx, cmd...); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(cmd, " "), err, out)
		}
	}
	return nil
}

var counterRule = regexp.MustCompile(`counter packets (\d+) bytes \d+ .*comment "(\w+)"`)

// impairCounts sums the fallback's rule counters in the namespaces: packets dropped ("loss"),
// duplicated ("dup") and sent through the slow class ("reorder").
func impairCounts(nss ...*testenv.Netns) map[string]int64 {
	out := map[string]int64{}
	for _, ns := range nss {
		s, err := ns.Exec(context.Background(), "nft", "list", "table", "ip", impairTable)
		if err != nil {
			continue
		}
		for _, m := range counterRule.FindAllStringSubmatch(s, -1) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			out[m[2]] += n
		}
	}
	return out
}

// checkImpaired fails the test unless every impairment c asks for hit at least one packet:
// a fallback that silently did nothing would pass every loss test.
func checkImpaired(t *testing.T, c netemCase, got map[string]int64) {
	t.Helper()
	want := map[string]int{"loss": c.loss, "dup": c.dup, "reorder": c.reorder}
	for k, pct := range want {
		if pct > 0 && got[k] == 0 {
			t.Errorf("%s: the %q rule (%d%%) hit no packet: the impairment was not applied", c.name, k, pct)
		}
	}
	t.Logf("kernel impairment (nft+htb, both directions): %d dropped, %d duplicated, %d sent through the slow class",
		got["loss"], got["dup"], got["reorder"])
}

// nstat returns the namespace's absolute values of SNMP counters (e.g. TcpExtTCPOFOQueue:
// segments that arrived out of order) without touching nstat's history file.
func nstat(ns *testenv.Netns, names ...string) map[string]int64 {
	out := map[string]int64{}
	s, err := ns.Exec(context.Background(), append([]string{"nstat", "-asz"}, names...)...)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				out[f[0]] = n
			}
		}
	}
	return out
}

// daemonGoroutines scrapes go_goroutines from the daemon's Prometheus metrics on its admin
// listener (127.0.0.1:9090 in the server namespace by default), on a fresh connection that
// is closed at once, so the scrape leaves nothing behind itself.
func daemonGoroutines(p *pair) (int, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := p.Srv.InNetns(func() (err error) {
			c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://127.0.0.1:9090/metrics")
	if err != nil {
		return 0, fmt.Errorf("daemon metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, fmt.Errorf("daemon metrics: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			return strconv.Atoi(strings.TrimSpace(rest))
		}
	}
	return 0, fmt.Errorf("daemon metrics: no go_goroutines (status %s)", resp.Status)
}

// waitGoroutines waits until the daemon runs no more goroutines than before (plus slack for
// the scrape's own connection), and fails if it still does after 30 s. before < 0 means the
// metrics were not reachable at the start: the check is logged as skipped.
func waitGoroutines(t *testing.T, p *pair, before int) {
	t.Helper()
	if before < 0 {
		t.Logf("daemon goroutines not counted: its metrics listener is unreachable")
		return
	}
	const slack = 2
	var n int
	var err error
	for range 60 {
		if n, err = daemonGoroutines(p); err == nil && n <= before+slack {
			t.Logf("daemon goroutines: %d before, %d after", before, n)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("daemon runs %d goroutines (%v), %d before, after 30 s", n, err, before)
}

// goroutinesBefore is daemonGoroutines for the baseline, -1 when unreachable.
func goroutinesBefore(t *testing.T, p *pair) int {
	n, err := daemonGoroutines(p)
	if err != nil {
		t.Logf("%v", err)
		return -1
	}
	return n
}
