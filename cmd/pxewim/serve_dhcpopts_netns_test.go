package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// udhcpcLease runs BusyBox udhcpc once with mac on iface in ns and returns what its script saw
// on "bound" (ip, hostname, ntpsrv, optNNN, ...), or nil when it got no lease.
func udhcpcLease(t *testing.T, ns *testenv.Netns, iface, mac string, opts ...string) map[string]string {
	t.Helper()
	if out, err := exec.Command("ip", "-n", ns.Name, "link", "set", iface, "address", mac).CombinedOutput(); err != nil {
		t.Fatalf("set MAC: %v %s", err, out)
	}
	dir := t.TempDir()
	out, script := filepath.Join(dir, "bound.env"), filepath.Join(dir, "script.sh")
	body := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = bound ] && env > %s.tmp && mv %s.tmp %s\nexit 0\n", out, out, out)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"netns", "exec", ns.Name, "busybox", "udhcpc", "-i", iface, "-f", "-q", "-n", "-t", "4", "-T", "1", "-s", script}
	for _, o := range opts {
		args = append(args, "-O", o)
	}
	if b, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Logf("udhcpc as %s: %v\n%s", mac, err, b)
		return nil
	}
	f, err := os.Open(out)
	if err != nil {
		return nil
	}
	defer f.Close()
	env := map[string]string{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && (k == "ip" || k == "hostname" || k == "ntpsrv" || strings.HasPrefix(k, "opt") || k == "domain") {
			env[k] = v
		}
	}
	t.Logf("udhcpc as %s: %v", mac, env)
	return env
}

// TestServeNetnsReservationsFromConfig: "pxewim serve" with dhcp.full.reservations, options and
// a rule's dhcp_options in its YAML file; BusyBox udhcpc sees the reserved address and name,
// a pool address for another MAC, and the options. An edit of the file (reload) moves the
// reservation and changes an option, and the next udhcpc run sees the new values.
func TestServeNetnsReservationsFromConfig(t *testing.T) {
	e := newServeNetns(t, "r", "s1", "c1", []string{"10.207.1.1/24"}, "busybox")
	C, dir := e.C, e.dir
	writeConfig := func(reservedIP, name, ntp string) {
		e.writeConfig(t, fmt.Sprintf(`store: store
ipxe: {dir: ipxe}
listen: {http: "127.0.0.1:8080", tftp: ""}
dhcp:
  mode: full
  interfaces: [s1]
  full:
    range: 10.207.1.100-10.207.1.110
    netmask: 255.255.255.0
    domain: lab.test
    leases: %s
    reservations:
      - {mac: "02:00:00:07:00:50", ip: %s, name: %s}
    options:
      - {code: 42, value: [%s]}
      - {code: 150, value: [10.207.1.5, 10.207.1.6]}
entries: [{name: local, ipxe: exit}]
rules:
  - match: {mac: "02:00:00:07:00:5*"}
    entry: local
    dhcp_options: [{code: 224, type: hex, value: "ca:fe"}]
`, filepath.Join(dir, "leases.db"), reservedIP, name, ntp))
	}
	writeConfig("10.207.1.50", "bench-50", "10.207.1.1")
	proc, readLog, waitLog := e.start(t)
	waitLog("dhcp serving")
	opts := []string{"42", "150", "224", "hostname", "domain"}

	r := udhcpcLease(t, C, "c1", "02:00:00:07:00:50", opts...)
	if r["ip"] != "10.207.1.50" || r["hostname"] != "bench-50" || r["ntpsrv"] != "10.207.1.1" ||
		r["opt150"] != "0acf01050acf0106" || r["opt224"] != "cafe" || r["domain"] != "lab.test" {
		t.Errorf("reserved client: %v\n%s", r, readLog())
	}
	o := udhcpcLease(t, C, "c1", "02:00:00:07:00:01", opts...)
	if !strings.HasPrefix(o["ip"], "10.207.1.1") || o["ip"] == "10.207.1.1" || o["hostname"] != "" || o["opt224"] != "" || o["ntpsrv"] != "10.207.1.1" {
		t.Errorf("other client: %v", o)
	}

	// Reload: the reservation moves to .60 with another name, NTP changes.
	writeConfig("10.207.1.60", "bench-60", "10.207.1.2")
	waitLog("config reloaded") // logged once DHCP runs with the new config
	got := udhcpcLease(t, C, "c1", "02:00:00:07:00:50", opts...)
	if got["ip"] != "10.207.1.60" || got["hostname"] != "bench-60" || got["ntpsrv"] != "10.207.1.2" {
		t.Errorf("after the reload: %v\n%s", got, readLog())
	}
	if err := proc.Stop(10 * time.Second); err != nil {
		t.Errorf("pxewim serve exited with %v\n%s", err, readLog())
	}
}
