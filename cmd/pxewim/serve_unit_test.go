package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit keeps configs/pxewim.service loadable by systemd and its ExecStart valid for
// this binary, and checks the privilege settings the README promises.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("../../configs/pxewim.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{
		"User=pxewim", "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "StateDirectory=pxewim", "ReadWritePaths=/var/lib/pxewim",
		"ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("unit lacks the line %q", want)
		}
	}
	var exec0 string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			exec0 = v
		}
	}
	args := strings.Fields(exec0)
	if len(args) < 2 || args[1] != "serve" {
		t.Fatalf("ExecStart = %q", exec0)
	}
	if _, err := parseServeFlags(args[2:], nil); err != nil {
		t.Errorf("ExecStart flags: %v", err)
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: install systemd to verify the unit")
	}
	// Verify a copy whose ExecStart names an executable that exists here.
	dir := t.TempDir()
	copyUnit := strings.ReplaceAll(unit, args[0], "/bin/true")
	p := filepath.Join(dir, "pxewim.service")
	if err := os.WriteFile(p, []byte(copyUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", p).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
