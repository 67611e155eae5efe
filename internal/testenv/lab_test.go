package testenv

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLabTeardown builds a lab, starts a process in each namespace and checks that the lab's
// cleanup stops exactly those processes and deletes both namespaces.
func TestLabTeardown(t *testing.T) {
	RequireRoot(t)
	RequireTun(t)
	RequireTools(t, "ip", "ss", "sleep")
	var names []string
	var procs []*Proc
	t.Run("lab", func(t *testing.T) {
		lab := NewLab(t, LabConfig{Subnet24: "10.77.40"})
		names = []string{lab.Srv.Name, lab.DHCP.Name}
		ctx := context.Background()
		// The veth and bridge carry traffic: the DHCP side reaches the bridge address.
		if out, err := lab.DHCP.Exec(ctx, "ping", "-c1", "-W2", lab.SrvIP.String()); err != nil {
			if !strings.Contains(err.Error(), "executable file not found") {
				t.Errorf("ping across the lab: %v\n%s", err, out)
			}
		}
		if out, err := lab.Srv.IP("-br", "link", "show", "master", lab.Bridge); err != nil || !strings.Contains(out, "tap0") || !strings.Contains(out, "vd0") {
			t.Errorf("bridge ports: %v %q, want tap0 and vd0", err, out)
		}
		for _, ns := range []*Netns{lab.Srv, lab.DHCP} {
			p, err := ns.Start("sleep", t.TempDir()+"/sleep.log", "sleep", "300")
			if err != nil {
				t.Fatal(err)
			}
			procs = append(procs, p)
		}
		l, err := lab.Srv.Listen("tcp4", lab.SrvIP.String()+":8080")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := WaitListening(ctx, lab.Srv, "tcp", 8080, 2*time.Second); err != nil {
			t.Errorf("in-process listener not in the lab namespace: %v", err)
		}
	})
	for _, p := range procs {
		if done, _ := p.Exited(); !done {
			t.Errorf("%s (pid %d) still running after the lab's cleanup", p.Name, p.PID())
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(p.PID())); err == nil {
			t.Errorf("pid %d still exists after cleanup", p.PID())
		}
	}
	out, _ := run("ip", "netns", "list")
	for _, n := range names {
		if strings.Contains(out, n) {
			t.Errorf("namespace %s still exists after cleanup", n)
		}
	}
}
