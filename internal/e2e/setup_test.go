package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/smbshare"
)

// TestWinSetupShareWimbootSeaBIOS: a Windows ISO (sources/boot.wim of two WindowsPE images and
// a sources/install.wim) with setup.share on: SeaBIOS + iPXE boots its Setup entry through the
// wimboot stand-in, which receives bootmgr, BCD and boot.sdi of image 2 and the boot.wim pxewim
// serves; that boot.wim verifies and holds our winpeshl.ini and a startnet.cmd mapping
// \\SERVER\pxewim-setup\win with the generated account, and those credentials read the ISO's
// install.wim byte-exact over SMB3 from the server's namespace. This client runs with
// setup.credentials: per_client and a rule with setup: {unattend}: the account is the client's
// own (pxe-MAC, made when wimboot fetched the boot.wim, the client known by its address), and
// the boot.wim holds the rule's answer file, which Setup gets with /unattend:.
func TestWinSetupShareWimbootSeaBIOS(t *testing.T) {
	winSetupShare(t, false)
}

// TestWinSetupShareWimbootOVMF is the same with a UEFI client: OVMF HTTP Boot -> iPXE ->
// the UEFI wimboot stand-in, which reports bootmgfw.efi, BCD, boot.sdi and boot.wim; the
// boot.wim it got holds the generated startnet.cmd and winpeshl.ini, whose credentials read
// install.wim over SMB3.
func TestWinSetupShareWimbootOVMF(t *testing.T) {
	winSetupShare(t, true)
}

func winSetupShare(t *testing.T, uefi bool) {
	mac, subnet, name := "52:54:00:77:76:0b", "10.77.76", "winsetup"
	var efiStandIn []byte
	if uefi {
		mac, subnet, name = "52:54:00:77:77:0b", "10.77.77", "winsetup-uefi"
		testenv.RequireOVMF(t)
		testenv.RequireFiles(t, "ipxe", filepath.Join(testenv.IPXEDir, "snponly.efi"))
		efiStandIn = testenv.WimbootEFIStandIn(t) // skips without gcc or gnu-efi
	}
	testenv.RequireTools(t, "genisoimage", "smbclient", "smbd")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse (the Setup share's store view)")
	}
	entry := boot.AutoEntryName("win.iso/sources/boot.wim", 2)
	wimPath := filepath.Join(t.TempDir(), "boot.wim")
	var installWIM string
	var state string
	rule := fmt.Sprintf("{ mac: %q }", mac)
	setupCfg, ruleSetup := "{share: on}", ""
	const unattend = "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\"><!-- lab & co --></unattend>\r\n"
	if uefi {
		rule = fmt.Sprintf("{ mac: %q, ipxe: true }", mac) // the firmware itself gets iPXE
	} else {
		if _, err := smbshare.FindNSSWrapper(); err != nil {
			t.Skipf("per-client accounts: %v", err)
		}
		setupCfg, ruleSetup = "{share: on, credentials: per_client}", "    setup: {unattend: unattend/lab.xml}\n"
	}
	lab, d, capture, site, dir := winpeLabStart(t, subnet, name, func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`state_dir: %s
winpe:
  auto: true
  wimboot: tools/wimboot
setup: %s
entries:
  - name: shell
    ipxe: |
      shell
rules:
  - match: %s
    entry: %s
%s`, state, setupCfg, rule, entry, ruleSetup)
	}, func(store string) {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "sources"), 0o755)
		testenv.BuildWinPE(t, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{
			{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"}}, "--compress=LZX", "--boot")
		b, err := os.ReadFile(filepath.Join(root, "sources", "boot.wim"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(wimPath, b, 0o644)
		content := t.TempDir()
		os.WriteFile(filepath.Join(content, "payload.bin"), []byte(strings.Repeat("install payload ", 200000)), 0o644)
		installWIM = filepath.Join(t.TempDir(), "install.wim")
		if out, err := exec.Command("wimlib-imagex", "capture", content, installWIM, "Windows 11 Pro", "--compress=LZX").CombinedOutput(); err != nil {
			t.Fatalf("wimlib-imagex: %v\n%s", err, out)
		}
		b, _ = os.ReadFile(installWIM)
		os.WriteFile(filepath.Join(root, "sources", "install.wim"), b, 0o644)
		os.WriteFile(filepath.Join(root, "setup.exe"), []byte("MZ setup.exe stand-in"), 0o644)
		if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "win.iso"), root).CombinedOutput(); err != nil {
			t.Fatalf("genisoimage: %v\n%s", err, out)
		}
		os.MkdirAll(filepath.Join(store, "unattend"), 0o755)
		os.WriteFile(filepath.Join(store, "unattend", "lab.xml"), []byte(unattend), 0o644)
		storeStandIn(t, store)
		if uefi {
			os.WriteFile(filepath.Join(store, "tools", "wimboot"), efiStandIn, 0o644)
		}
		// The state folder, open to the share's unix user (nobody) like the folders above it.
		state = filepath.Join(filepath.Dir(store), "state")
		os.MkdirAll(state, 0o755)
		for p := filepath.Dir(store); p != "/"; p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
				os.Chmod(p, fi.Mode().Perm()|0o005)
			}
		}
	})
	var rep *testenv.StandInReport
	var efiRep *testenv.EFIStandInReport
	if uefi {
		vm := testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), Name: name, MAC: mac, Dir: dir,
			FwCfg: testenv.HTTPBootOnly(), FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed")}
		res, err := testenv.RunVM(context.Background(), lab.Srv, vm, testenv.EFIStandInDone, vmTimeout)
		if err != nil {
			recs := stopLab(t, capture, d)
			t.Fatalf("%v\npxewim log:\n%s\nsite dnsmasq log:\n%s", err, dumpLog(recs, 40), testenv.Tail(site.Log(), 20))
		}
		t.Logf("%s: UEFI stand-in done %.1fs after QEMU started", name, res.TimeToMarker.Seconds())
		if efiRep, err = testenv.ParseEFIStandIn(res.Serial); err != nil {
			t.Fatal(err)
		}
		if !efiRep.Done || len(efiRep.Errors) > 0 {
			t.Fatalf("the UEFI stand-in did not read every file (errors %q):\n%s", efiRep.Errors, testenv.Tail(res.Serial, 30))
		}
	} else {
		vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: name, MAC: mac, Dir: dir,
			FailOn: wimbootBIOSFailOn()}
		rep = runStandInVM(t, lab, d, site, vm)
	}

	// The served boot.wim holds the generated files; their credentials read the share.
	served, _ := servedBootWIM(t, lab, d, mac)
	sw := filepath.Join(t.TempDir(), "served.wim")
	os.WriteFile(sw, served, 0o644)
	var script, ini []byte
	for idx := 1; idx <= 2 && script == nil; idx++ {
		b, err := exec.Command("wimlib-imagex", "extract", sw, strconv.Itoa(idx), "/Windows/System32/startnet.cmd", "--to-stdout").Output()
		if err == nil && strings.Contains(string(b), "net use") {
			script = b
			ini, _ = exec.Command("wimlib-imagex", "extract", sw, strconv.Itoa(idx), "/Windows/System32/winpeshl.ini", "--to-stdout").Output()
		}
	}
	if script == nil {
		t.Fatalf("the boot.wim the client got holds no startnet.cmd of ours")
	}
	if !strings.Contains(string(ini), `startnet.cmd`) {
		t.Errorf("winpeshl.ini: %q", ini)
	}
	// What the client got is what pxewim serves: image 2's files, the two generated ones
	// injected (their content is checked here, the rest against wimlib-imagex extract).
	if uefi {
		// What the UEFI stand-in read (names, sizes, SHA-1s on the console) is image 2's boot
		// files and the boot.wim pxewim serves; that WIM, under the command line the stand-in
		// got, boots image 2 with the two generated files.
		want := map[string][]byte{
			"bootmgfw.efi": testenv.WimExtract(t, wimPath, 2, "Windows/Boot/EFI/bootmgfw.efi"),
			"BCD":          testenv.WimExtract(t, wimPath, 2, "Windows/Boot/DVD/EFI/BCD"),
			"boot.sdi":     testenv.WimExtract(t, wimPath, 2, "Windows/Boot/DVD/EFI/boot.sdi"),
			"boot.wim":     served,
		}
		for n, b := range want {
			got, ok := efiRep.ByName(n)
			if sum := sha1Hex(b); !ok || got.Size != int64(len(b)) || got.SHA1 != sum {
				t.Errorf("%s: the UEFI stand-in read %+v (found %v); want %d bytes, sha1 %s", n, got, ok, len(b), sum)
			}
		}
		checkServedWIM(t, sw, efiRep.Cmdline, wimPath, 2, map[string]string{
			"Windows/System32/startnet.cmd": string(script), "Windows/System32/winpeshl.ini": string(ini)})
	} else {
		checkStandInPE(t, lab, d, mac, rep, wantPE{src: wimPath, index: 2, inject: map[string][]byte{
			"Windows/System32/startnet.cmd": script, "Windows/System32/winpeshl.ini": ini, "pxewim/unattend.xml": []byte(unattend)}})
		// Per client, by rule: the client's own account and the rule's answer file.
		if !strings.Contains(string(script), "/user:pxe-"+strings.ReplaceAll(mac, ":", "")+" ") ||
			!strings.Contains(string(script), `"S:\win\setup.exe" "/unattend:X:\pxewim\unattend.xml"`) {
			t.Errorf("startnet.cmd names another account or no answer file:\n%s", script)
		}
		for idx := 1; idx <= 2; idx++ {
			if b, err := exec.Command("wimlib-imagex", "extract", sw, strconv.Itoa(idx), "/pxewim/unattend.xml", "--to-stdout").Output(); err == nil {
				if string(b) != unattend {
					t.Errorf("the served boot.wim's unattend.xml: %q, want %q", b, unattend)
				}
				break
			} else if idx == 2 {
				t.Errorf("the served boot.wim holds no pxewim/unattend.xml")
			}
		}
	}
	m := regexp.MustCompile(`(?m)^net use S: "\\\\` + regexp.QuoteMeta(lab.SrvIP.String()) + `\\pxewim-setup" /user:([A-Za-z0-9._-]+) ([A-Za-z0-9]+) /persistent:no >nul`).FindSubmatch(script)
	if m == nil || !strings.Contains(string(script), `"S:\win\setup.exe"`) {
		t.Fatalf("startnet.cmd:\n%s", script)
	}
	auth := filepath.Join(t.TempDir(), "auth")
	os.WriteFile(auth, []byte("username = "+string(m[1])+"\npassword = "+string(m[2])+"\n"), 0o600)
	got := filepath.Join(t.TempDir(), "install.wim")
	if out, err := lab.Srv.Exec(context.Background(), "smbclient", "//"+lab.SrvIP.String()+"/pxewim-setup", "-m", "SMB3", "-A", auth,
		"-c", `get win\sources\install.wim `+got); err != nil {
		t.Fatalf("smbclient: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(installWIM)
	if b, _ := os.ReadFile(got); sha1Hex(b) != sha1Hex(want) {
		t.Errorf("install.wim over SMB: %d bytes sha1 %s, want %d bytes sha1 %s", len(b), sha1Hex(b), len(want), sha1Hex(want))
	}
	recs := stopLab(t, capture, d)
	wantNoErrorLogs(t, recs)
}
