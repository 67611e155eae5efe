package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestServeSetupShareLocalDamagedWIM: the Setup share of a local store verifies the WIMs of
// its ISOs as it does those of an sftp:// store (TestServeSetupShareRemoteStore): smbclient
// (SMB3, smbd on a loopback port) reads the intact install.wim of win11.iso byte-exact, but its
// read of the install.wim with one flipped byte inside a resource in broken.iso fails (no file
// of its full size arrives), and the log and pxewim_setup_share_damaged_file name the file.
func TestServeSetupShareLocalDamagedWIM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts smbd: skipped in -short mode")
	}
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "smbclient", "wimlib-imagex", "genisoimage")
	if reason := setupAvailable(); reason != "" {
		t.Skipf("Setup share unavailable here: %s", reason)
	}
	fx := buildSetupISOs(t, 4)
	brokenSize := buildBrokenSetupISO(t, fx.dir, fx.store)

	state := filepath.Join(fx.dir, "state")
	os.MkdirAll(state, 0o755)
	smbPort, adminPort := serveFreePort(t, "tcp"), serveFreePort(t, "tcp")
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	config := filepath.Join(fx.dir, "pxewim.yaml")
	os.WriteFile(config, fmt.Appendf(nil, `store: %s
state_dir: %s
admin: {listen: "127.0.0.1:%d"}
winpe: {auto: true}
setup: {share: on, listen: 127.0.0.1, port: %d, advertise: 127.0.0.1}
`, fx.store, state, adminPort, smbPort), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	base, _, log, done := startServe(t, ctx, "--config", config)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("serve did not stop")
		}
	})
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(log.String(), what); {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %q in the log:\n%s", what, log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("setup: Windows Setup share running")

	// The share's credentials, from the served boot.wim's startnet.cmd.
	served := filepath.Join(t.TempDir(), "served.wim")
	resp, err := http.Get(base + "/files/winpe/pe-win11-iso-sources-boot-2/boot.wim")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("served boot.wim: %v %v\n%s", err, resp, log)
	}
	out, _ := os.Create(served)
	io.Copy(out, resp.Body)
	out.Close()
	resp.Body.Close()
	var script []byte
	for idx := 1; idx <= 2 && script == nil; idx++ {
		b, err := exec.Command("wimlib-imagex", "extract", served, strconv.Itoa(idx), "/Windows/System32/startnet.cmd", "--to-stdout").Output()
		if err == nil && strings.Contains(string(b), "net use") {
			script = b
		}
	}
	m := netUseRe.FindStringSubmatch(string(script))
	if m == nil {
		t.Fatalf("served boot.wim has no startnet.cmd mapping the share:\n%s", script)
	}
	auth := filepath.Join(t.TempDir(), "auth")
	os.WriteFile(auth, []byte("username = "+m[3]+"\npassword = "+m[4]+"\n"), 0o600)
	smbGet := func(remote string) (string, string, error) {
		p := filepath.Join(t.TempDir(), filepath.Base(strings.ReplaceAll(remote, `\`, "/")))
		o, err := exec.Command("smbclient", "//127.0.0.1/"+setupShareName, "-p", strconv.Itoa(smbPort), "-m", "SMB3", "-A", auth,
			"-c", "get "+remote+" "+p).CombinedOutput()
		return p, string(o), err
	}

	if p, o, err := smbGet(`win11\sources\install.wim`); err != nil || sha1File(t, p) != fx.installSHA1 {
		t.Fatalf("intact install.wim of a local ISO over SMB: %v\n%s\n%s", err, o, log)
	}
	p, o, err := smbGet(`broken\sources\install.wim`)
	fi, serr := os.Stat(p)
	if err == nil || (serr == nil && fi.Size() == brokenSize) {
		t.Fatalf("the damaged install.wim of a local ISO was read over SMB (%v, stat %v)\n%s\n%s", err, serr, o, log)
	}
	t.Logf("smbclient on the damaged install.wim: %s", strings.TrimSpace(o))
	waitFor(`file=sources/install.wim`)
	if !regexp.MustCompile(`setup: a WIM of the share failed verification.*iso=broken.iso.*folder=broken.*file=sources/install.wim`).MatchString(log.String()) {
		t.Errorf("the log does not name the damaged file:\n%s", log)
	}
	if !regexp.MustCompile(`setup: the WIMs of an ISO passed verification.*folder=win11`).MatchString(log.String()) {
		t.Errorf("the log does not say win11.iso's WIMs passed verification:\n%s", log)
	}
	if v := scrape(t, admin+"/metrics")[`pxewim_setup_share_damaged_file{file="broken/sources/install.wim"}`]; v != 1 {
		t.Errorf(`pxewim_setup_share_damaged_file{file="broken/sources/install.wim"} = %v, want 1`, v)
	}
}
