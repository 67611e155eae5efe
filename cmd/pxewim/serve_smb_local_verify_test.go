package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestServeSetupShareLocalDamagedWIM: the Setup share of a local store verifies the WIMs of
// its ISOs as it does those of an sftp:// store (TestServeSetupShareRemoteStore): smbclient
// (SMB3, smbd on a loopback port) reads the intact install.wim of win11.iso byte-exact, but its
// read of the install.wim with one flipped byte inside a resource in broken.iso fails (no file
// of its full size arrives), and the log and pxewim_setup_share_damaged_file name the file.
func TestServeSetupShareLocalDamagedWIM(t *testing.T) {
	requireSetupShare(t, "starts smbd", "smbclient", "wimlib-imagex", "genisoimage")
	fx := buildSetupISOs(t, 4)
	brokenSize := buildBrokenSetupISO(t, fx.dir, fx.store)

	sh := startLoopbackShare(t, fx, fx.store, "")
	log := sh.log

	// The share's credentials, from the served boot.wim's startnet.cmd.
	_, m := servedShareScript(t, sh.base+"/files/winpe/pe-win11-iso-sources-boot-2/boot.wim", log.String)
	auth := smbAuthFile(t, m[3], m[4])
	smbGet := func(remote string) (string, string, error) { return sh.get(t, auth, remote) }

	if p, o, err := smbGet(`win11\sources\install.wim`); err != nil || sha1File(t, p) != fx.installSHA1 {
		t.Fatalf("intact install.wim of a local ISO over SMB: %v\n%s\n%s", err, o, log)
	}
	p, o, err := smbGet(`broken\sources\install.wim`)
	fi, serr := os.Stat(p)
	if err == nil || (serr == nil && fi.Size() == brokenSize) {
		t.Fatalf("the damaged install.wim of a local ISO was read over SMB (%v, stat %v)\n%s\n%s", err, serr, o, log)
	}
	t.Logf("smbclient on the damaged install.wim: %s", strings.TrimSpace(o))
	sh.waitFor(t, `file=sources/install.wim`)
	if !regexp.MustCompile(`setup: a WIM of the share failed verification.*iso=broken.iso.*folder=broken.*file=sources/install.wim`).MatchString(log.String()) {
		t.Errorf("the log does not name the damaged file:\n%s", log)
	}
	if !regexp.MustCompile(`setup: the WIMs of an ISO passed verification.*folder=win11`).MatchString(log.String()) {
		t.Errorf("the log does not say win11.iso's WIMs passed verification:\n%s", log)
	}
	if v := scrape(t, sh.admin+"/metrics")[`pxewim_setup_share_damaged_file{file="broken/sources/install.wim"}`]; v != 1 {
		t.Errorf(`pxewim_setup_share_damaged_file{file="broken/sources/install.wim"} = %v, want 1`, v)
	}
}
