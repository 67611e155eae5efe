package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
)

// buildBrokenSetupISO adds broken.iso to store: a Windows-shaped ISO (boot.wim with two
// WindowsPE images, boot index 2) whose sources/install.wim has one byte flipped inside a file
// resource (header and blob table intact: only the blob's SHA-1 tells). It returns the intact
// install.wim's size.
func buildBrokenSetupISO(t *testing.T, dir, store string) int64 {
	t.Helper()
	root := filepath.Join(dir, "broken-root")
	src := filepath.Join(root, "sources")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(root, "setup.exe"), []byte("MZ setup.exe stand-in"), 0o644)
	testenv.BuildWinPE(t, filepath.Join(src, "boot.wim"), []testenv.WinPEImage{
		{Name: "Microsoft Windows PE (amd64)"},
		{Name: "Microsoft Windows Setup (amd64)"},
	}, "--compress=LZX", "--boot")
	content := filepath.Join(dir, "broken-content")
	os.MkdirAll(content, 0o755)
	for i := range 4 {
		b := make([]byte, 1<<20)
		rand.Read(b)
		os.WriteFile(filepath.Join(content, fmt.Sprintf("data%d.bin", i)), b, 0o644)
	}
	install := filepath.Join(src, "install.wim")
	runTool(t, "wimlib-imagex", "capture", content, install, "Windows 11 Pro", "--compress=none")
	runTool(t, "wimlib-imagex", "verify", install)
	f, err := os.OpenFile(install, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, 4096)
	b[0] ^= 0xff
	f.WriteAt(b, 4096)
	fi, _ := f.Stat()
	f.Close()
	if err := exec.Command("wimlib-imagex", "verify", install).Run(); err == nil {
		t.Fatal("wimlib-imagex verify passes the damaged install.wim: the flipped byte is not in a blob")
	}
	runTool(t, "genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "broken.iso"), root)
	os.RemoveAll(root)
	os.RemoveAll(content)
	return fi.Size()
}

// TestServeSetupShareRemoteStore: network Windows Setup from an sftp:// store (a real OpenSSH
// sshd on loopback serving the store folder). pxewim serve offers the remote Windows ISOs on
// its SMB share (smbd on a loopback port, over the FUSE view of the ISOs read in place over
// SFTP). With the credentials read back from the served boot.wim's startnet.cmd, smbclient
// (SMB3) reads install.wim and each part of a split install.swm set byte-exact. The WIMs of
// each remote ISO are verified (every blob's SHA-1) before the share serves their bytes: the
// ISO whose install.wim has one damaged byte is offered, but smbclient's read of that
// install.wim fails (no file of its full size arrives), and the log and
// pxewim_setup_share_damaged_file name the file.
func TestServeSetupShareRemoteStore(t *testing.T) {
	requireSetupShare(t, "starts sshd and smbd", "smbclient", "wimlib-imagex", "genisoimage")
	fx := buildSetupISOs(t, 24) // win11.iso (install.wim) and a split install*.swm set under a hostile name
	brokenSize := buildBrokenSetupISO(t, fx.dir, fx.store)
	sshd := testenv.StartSSHD(t)

	sh := startLoopbackShare(t, fx, sshd.URL(fx.store),
		fmt.Sprintf("sftp: {keys: [%s], known_hosts: [%s]}\n", sshd.ClientKey, sshd.KnownHosts))
	log := sh.log

	// The credentials and folder the served boot.wim's startnet.cmd maps.
	script, m := servedShareScript(t, sh.base+"/files/winpe/pe-win11-iso-sources-boot-2/boot.wim", log.String)
	s := setupRe.FindStringSubmatch(script)
	if s == nil {
		t.Fatalf("served boot.wim has no startnet.cmd mapping the share:\n%s", script)
	}
	if m[1] != "127.0.0.1" || m[2] != setupShareName || s[1] != "win11" {
		t.Fatalf("startnet.cmd maps \\\\%s\\%s and runs setup from %s", m[1], m[2], s[1])
	}
	auth := smbAuthFile(t, m[3], m[4])
	smb := func(cmds string) (string, error) { return sh.smb(auth, cmds) }
	smbGet := func(remote string) (string, string, error) { return sh.get(t, auth, remote) }

	// install.wim of the remote ISO, byte-exact.
	p, o, err := smbGet(`win11\sources\install.wim`)
	if err != nil {
		t.Fatalf("get install.wim: %v\n%s\n%s", err, o, log)
	}
	if got := sha1File(t, p); got != fx.installSHA1 {
		t.Fatalf("install.wim over SMB from the remote store: sha1 %s, want %s", got, fx.installSHA1)
	}

	// The split set of the ISO with the hostile name, each part byte-exact.
	ls, err := smb("ls")
	folder := regexp.MustCompile(`(?m)^\s+(Win_10\S*)\s+D`).FindStringSubmatch(ls)
	if err != nil || folder == nil || !strings.Contains(ls, "broken") {
		t.Fatalf("share root: %v\n%s", err, ls)
	}
	for _, part := range fx.hostileParts {
		p, o, err := smbGet(folder[1] + `\sources\` + part)
		if err != nil {
			t.Fatalf("get %s: %v\n%s", part, err, o)
		}
		if got := sha1File(t, p); got != fx.parts[part] {
			t.Errorf("%s over SMB from the remote store: sha1 %s, want %s", part, got, fx.parts[part])
		}
	}

	// The damaged install.wim: offered (the ISO is a Setup ISO), never read in full.
	p, o, err = smbGet(`broken\sources\install.wim`)
	fi, serr := os.Stat(p)
	if err == nil || (serr == nil && fi.Size() == brokenSize) {
		t.Fatalf("the damaged install.wim was read over SMB (%v, stat %v)\n%s", err, serr, o)
	}
	t.Logf("smbclient on the damaged install.wim: %s", strings.TrimSpace(o))
	sh.waitFor(t, `file=sources/install.wim`)
	logText := log.String()
	if !regexp.MustCompile(`setup: a WIM of the share failed verification.*iso=broken.iso.*folder=broken.*file=sources/install.wim`).MatchString(logText) {
		t.Errorf("the log does not name the damaged file:\n%s", logText)
	}
	if !regexp.MustCompile(`setup: the WIMs of an ISO passed verification.*folder=win11`).MatchString(logText) {
		t.Errorf("the log does not say win11.iso's WIMs passed verification:\n%s", logText)
	}
	if strings.Contains(logText, m[4]) {
		t.Error("the share's password appears in the log")
	}
	metrics := scrape(t, sh.admin+"/metrics")
	if v := metrics[`pxewim_setup_share_damaged_file{file="broken/sources/install.wim"}`]; v != 1 {
		t.Errorf(`pxewim_setup_share_damaged_file{file="broken/sources/install.wim"} = %v, want 1`, v)
	}
	for k := range metrics {
		if strings.HasPrefix(k, "pxewim_setup_share_damaged_file") && !strings.Contains(k, "broken/") {
			t.Errorf("an intact file is reported damaged: %s", k)
		}
	}
	// The intact ISO still reads after the failure.
	if p, o, err := smbGet(`win11\sources\install.wim`); err != nil || sha1File(t, p) != fx.installSHA1 {
		t.Errorf("install.wim after the damaged read: %v\n%s", err, o)
	}
}
