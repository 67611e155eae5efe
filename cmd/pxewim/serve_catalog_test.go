package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// winpeISO builds a Windows Setup-shaped ISO at dst with tool ("genisoimage" makes ISO 9660 +
// Joliet + UDF, "xorriso" ISO 9660 + Rock Ridge + Joliet): sources/boot.wim (two WindowsPE
// images, boot index 2, LZX, by wimlib-imagex) and boot/boot.sdi. It returns the WIM's path
// (kept outside the ISO, to compare served bytes with wimlib-imagex extract).
func winpeISO(t *testing.T, tool, dst string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not found: install genisoimage and xorriso", tool)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sources"), 0o755)
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	wimPath := filepath.Join(root, "sources", "boot.wim")
	testenv.BuildWinPE(t, wimPath, []testenv.WinPEImage{{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"}},
		"--compress=LZX", "--boot")
	os.WriteFile(filepath.Join(root, "boot", "boot.sdi"), []byte("the ISO's own boot.sdi"), 0o644)
	argv := []string{"genisoimage", "-quiet", "-udf", "-J", "-o", dst, root}
	if tool == "xorriso" {
		argv = []string{"xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", dst, root}
	}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	kept := filepath.Join(t.TempDir(), "boot.wim")
	b, err := os.ReadFile(wimPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(kept, b, 0o644)
	return kept
}

var initrdLine = regexp.MustCompile(`(?m)^initrd -n (\S+) (\S+) `)

// wimbootFiles fetches an entry's iPXE script and returns, per firmware section ("bios",
// "uefi"), the files it hands wimboot: name -> URL.
func wimbootFiles(t *testing.T, base, entry string, log *serveLog) map[string]map[string]string {
	t.Helper()
	script := serveHTTPGet(t, base+"/ipxe/"+entry+".ipxe?mac=52-54-00-00-00-0a")
	out := map[string]map[string]string{}
	for _, sec := range strings.Split(script, "\n:winpe_")[1:] {
		fw, body, _ := strings.Cut(sec, "\n")
		fw = fw[strings.LastIndex(fw, "_")+1:]
		out[fw] = map[string]string{}
		for _, m := range initrdLine.FindAllStringSubmatch(body, -1) {
			out[fw][m[1]] = m[2]
		}
	}
	if len(out["bios"]) == 0 || len(out["uefi"]) == 0 {
		t.Fatalf("entry %s: no wimboot files in the script:\n%s\nlog:\n%s", entry, script, log)
	}
	return out
}

// checkWinPEServed fetches every file an entry's script names and compares it with what
// wimlib-imagex extracts from image idx of wimPath (boot.wim: with the WIM file itself).
func checkWinPEServed(t *testing.T, base, entry, wimPath string, idx int, log *serveLog) {
	t.Helper()
	want := map[string]map[string]string{
		"bios": {"bootmgr.exe": "Windows/Boot/PXE/bootmgr.exe", "BCD": "Windows/Boot/DVD/PCAT/BCD", "boot.sdi": "Windows/Boot/DVD/PCAT/boot.sdi"},
		"uefi": {"bootmgfw.efi": "Windows/Boot/EFI/bootmgfw.efi", "BCD": "Windows/Boot/DVD/EFI/BCD", "boot.sdi": "Windows/Boot/DVD/EFI/boot.sdi",
			"boot.stl": "Windows/Boot/EFI/boot.stl"},
	}
	wimBytes, err := os.ReadFile(wimPath)
	if err != nil {
		t.Fatal(err)
	}
	got := wimbootFiles(t, base, entry, log)
	for fw, files := range want {
		for name, inWIM := range files {
			u, ok := got[fw][name]
			if !ok {
				t.Errorf("%s %s: not in the script (%v)", fw, name, got[fw])
				continue
			}
			b, err := exec.Command("curl", "-sSf", "--globoff", u).Output()
			if exp := testenv.WimExtract(t, wimPath, idx, inWIM); err != nil || !bytes.Equal(b, exp) {
				t.Errorf("%s %s (%s): %d bytes (%v), wimlib-imagex extract gives %d", fw, name, u, len(b), err, len(exp))
			}
		}
		b, err := exec.Command("curl", "-sSf", "--globoff", got[fw]["boot.wim"]).Output()
		if err != nil || !bytes.Equal(b, wimBytes) {
			t.Errorf("%s boot.wim: %d bytes (%v), want the ISO's WIM as it is (%d bytes)", fw, len(b), err, len(wimBytes))
		}
	}
}

// TestServeISOCatalog: a Windows Setup ISO (genisoimage -udf, xorriso) dropped into the store
// gets automatic winpe menu entries like a bare boot.wim, and every file its wimboot script
// names (bootmgr, BCD, boot.sdi, boot.stl, boot.wim) comes over HTTP, and the entry's files
// over TFTP (atftp), byte-exact with what wimlib-imagex extracts; the ISO itself keeps its
// sanboot entry.
func TestServeISOCatalog(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found: install curl")
	}
	for _, tool := range []string{"genisoimage", "xorriso"} {
		t.Run(tool, func(t *testing.T) {
			store := t.TempDir()
			os.WriteFile(filepath.Join(store, "wimboot"), []byte("wimboot stand-in"), 0o644)
			wimPath := winpeISO(t, tool, filepath.Join(store, "win.iso"))
			cfg := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(cfg, []byte("store: "+store+"\nwinpe: {auto: true, wimboot: wimboot}\nmenu: {timeout: 5s}\n"), 0o644)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			base, tftpAddr, log, done := startServe(t, ctx, "--config", cfg)
			defer func() { cancel(); <-done }()

			menu := serveHTTPGet(t, base+"/ipxe/menu.ipxe?mac=52-54-00-00-00-0a&platform=pcbios")
			for _, item := range []string{
				"item pe-win-iso-sources-boot-1 Microsoft Windows PE (amd64) (win.iso/sources/boot.wim:1, x86_64)",
				"item pe-win-iso-sources-boot-2 Microsoft Windows Setup (amd64) (win.iso/sources/boot.wim:2, x86_64)",
				"item iso-win-iso win.iso (ISO, sanboot)",
			} {
				if !strings.Contains(menu, item) {
					t.Errorf("menu lacks %q:\n%s", item, menu)
				}
			}
			checkWinPEServed(t, base, "pe-win-iso-sources-boot-2", wimPath, 2, log)
			// Image 1 is served as an exported single-image WIM; its boot files are image 1's.
			files := wimbootFiles(t, base, "pe-win-iso-sources-boot-1", log)
			b, err := exec.Command("curl", "-sSf", "--globoff", files["bios"]["bootmgr.exe"]).Output()
			if exp := testenv.WimExtract(t, wimPath, 1, "Windows/Boot/PXE/bootmgr.exe"); err != nil || !bytes.Equal(b, exp) {
				t.Errorf("image 1 bootmgr.exe: %d bytes (%v), want %d", len(b), err, len(exp))
			}
			checkWinPETFTP(t, tftpAddr, "pe-win-iso-sources-boot-2", wimPath, 2, log)
			if strings.Contains(log.String(), "level=ERROR") {
				t.Errorf("serve logged errors:\n%s", log)
			}
		})
	}
}

// checkWinPETFTP fetches an entry's boot files over TFTP with atftp (backslash paths, as
// Windows boot loaders ask) and compares them with wimlib-imagex extract.
func checkWinPETFTP(t *testing.T, addr, entry, wimPath string, idx int, log *serveLog) {
	t.Helper()
	if _, err := exec.LookPath("atftp"); err != nil {
		t.Log("atftp not found: TFTP not checked (install atftp)")
		return
	}
	host, port, _ := net.SplitHostPort(addr)
	for name, inWIM := range map[string]string{
		`\winpe\` + entry + `\image\Windows\Boot\PXE\bootmgr.exe`:  "Windows/Boot/PXE/bootmgr.exe",
		`winpe/` + entry + `/image/windows/boot/dvd/pcat/boot.sdi`: "Windows/Boot/DVD/PCAT/boot.sdi",
		`winpe/` + entry + `/bios/BCD`:                             "Windows/Boot/DVD/PCAT/BCD",
	} {
		out := filepath.Join(t.TempDir(), "got")
		if b, err := exec.Command("atftp", "--option", "blksize 1428", "-g", "-r", name, "-l", out, host, port).CombinedOutput(); err != nil {
			t.Errorf("atftp %s: %v\n%s\nserve log:\n%s", name, err, b, log)
			continue
		}
		got, _ := os.ReadFile(out)
		if want := testenv.WimExtract(t, wimPath, idx, inWIM); !bytes.Equal(got, want) {
			t.Errorf("TFTP %s: %d bytes, wimlib-imagex extract gives %d", name, len(got), len(want))
		}
	}
}

// TestServeReloadFollowsStore: a reload that names another store folder moves the catalog
// there at once (the menu shows the new folder's images, not the old one's), and the new
// folder is watched (a WIM dropped into it joins the menu) while the old one is not.
func TestServeReloadFollowsStore(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, s := range []string{a, b} {
		os.WriteFile(filepath.Join(s, "wimboot"), []byte("stand-in"), 0o644)
	}
	testenv.BuildWinPE(t, filepath.Join(a, "a.wim"), []testenv.WinPEImage{{Name: "PE of A"}})
	testenv.BuildWinPE(t, filepath.Join(b, "b.wim"), []testenv.WinPEImage{{Name: "PE of B"}})
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	write := func(store string) {
		tmp := cfg + ".tmp"
		os.WriteFile(tmp, []byte("store: "+store+"\nwinpe: {auto: true, wimboot: wimboot}\nmenu: {timeout: 5s}\n"), 0o644)
		future := time.Now().Add(time.Duration(len(store)) * time.Second)
		os.Chtimes(tmp, future, future)
		os.Rename(tmp, cfg)
	}
	write(a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, log, done := startServe(t, ctx, "--config", cfg)
	defer func() { cancel(); <-done }()
	menu := func() string { return serveHTTPGet(t, base+"/ipxe/menu.ipxe?mac=52-54-00-00-00-0b&platform=pcbios") }
	if m := menu(); !strings.Contains(m, "PE of A") || strings.Contains(m, "PE of B") {
		t.Fatalf("store A: menu\n%s", m)
	}
	write(b)
	serveWaitFor(t, 10*time.Second, func() bool { m := menu(); return strings.Contains(m, "PE of B") && !strings.Contains(m, "PE of A") },
		"the menu to show store B's image only", log)
	testenv.BuildWinPE(t, filepath.Join(a, "a2.wim"), []testenv.WinPEImage{{Name: "Late PE of A"}})
	tmp := filepath.Join(t.TempDir(), "b2.wim")
	testenv.BuildWinPE(t, tmp, []testenv.WinPEImage{{Name: "Late PE of B"}})
	os.Rename(tmp, filepath.Join(b, "b2.wim"))
	serveWaitFor(t, 10*time.Second, func() bool { return strings.Contains(menu(), "Late PE of B") }, "a WIM dropped into store B", log)
	time.Sleep(2500 * time.Millisecond) // more than a poll interval
	if m := menu(); strings.Contains(m, "PE of A") {
		t.Errorf("the old store is still watched:\n%s", m)
	}
	if !strings.Contains(log.String(), "catalog: the store changed: watching the new one") {
		t.Errorf("log does not say the catalog moved:\n%s", log)
	}
}

// TestServeRemoteCatalog: store: sftp://... on a real OpenSSH server. The catalog scans the
// remote store (a bare WinPE WIM and a Windows ISO holding one): both get automatic menu
// entries, and the ISO's WinPE boot files come over HTTP byte-exact (after verification); the
// WIM inside another ISO has a flipped byte: it is listed, but none of its bytes is served.
func TestServeRemoteCatalog(t *testing.T) {
	for _, tool := range []string{"/usr/sbin/sshd", "ssh-keygen", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install openssh-server, openssh-client and curl", tool)
		}
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("sshd needs /run/sshd (%v): run as root", err)
	}
	store := t.TempDir()
	os.WriteFile(filepath.Join(store, "wimboot"), []byte("stand-in"), 0o644)
	os.MkdirAll(filepath.Join(store, "pe"), 0o755)
	testenv.BuildWinPE(t, filepath.Join(store, "pe", "lab.wim"), []testenv.WinPEImage{{Name: "Remote lab PE"}}, "--compress=XPRESS")
	wimPath := winpeISO(t, "genisoimage", filepath.Join(store, "win.iso"))
	// An ISO whose WIM has one byte flipped inside a resource: listed, never served.
	badRoot := t.TempDir()
	os.MkdirAll(filepath.Join(badRoot, "sources"), 0o755)
	badWIM := filepath.Join(badRoot, "sources", "boot.wim")
	testenv.BuildWinPE(t, badWIM, []testenv.WinPEImage{{Name: "Corrupt PE"}}, "--compress=none")
	bad, _ := os.ReadFile(badWIM)
	bad[300] ^= 0xff
	os.WriteFile(badWIM, bad, 0o644)
	if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "bad.iso"), badRoot).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	url, sftpConf := startCatalogSSHD(t, store)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("store: "+url+"\n"+sftpConf+"winpe: {auto: true, wimboot: wimboot}\nmenu: {timeout: 5s}\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, log, done := startServe(t, ctx, "--config", cfg)
	defer func() { cancel(); <-done }()
	menu := serveHTTPGet(t, base+"/ipxe/menu.ipxe?mac=52-54-00-00-00-0c&platform=pcbios")
	for _, item := range []string{"item pe-pe-lab-1 Remote lab PE (pe/lab.wim:1, x86_64)",
		"item pe-win-iso-sources-boot-2 Microsoft Windows Setup (amd64) (win.iso/sources/boot.wim:2, x86_64)"} {
		if !strings.Contains(menu, item) {
			t.Errorf("menu over the remote store lacks %q:\n%s\nlog:\n%s", item, menu, log)
		}
	}
	checkWinPEServed(t, base, "pe-win-iso-sources-boot-2", wimPath, 2, log)
	// Listed as a disabled line with the reason (it cannot boot), not as a choice.
	if !strings.Contains(menu, "item --gap entry pe-bad-iso-sources-boot-1 cannot boot: ") || strings.Contains(menu, "item pe-bad-iso-sources-boot-1 ") {
		t.Errorf("the corrupt ISO's WIM is not listed as a disabled line:\n%s", menu)
	}
	for _, p := range []string{"bad.iso/sources/boot.wim", "bad.iso/sources/boot.wim:1/Windows/Boot/PXE/bootmgr.exe"} {
		if b, err := exec.Command("curl", "-sSf", "--globoff", base+"/files/"+p).Output(); err == nil {
			t.Errorf("%s of the corrupt ISO served (%d bytes)", p, len(b))
		}
	}
	if script, err := exec.Command("curl", "-sS", "--globoff", base+"/ipxe/pe-bad-iso-sources-boot-1.ipxe").Output(); err != nil || strings.Contains(string(script), "initrd -n boot.wim") {
		t.Errorf("the corrupt ISO's entry hands out files (%v):\n%s", err, script)
	}
	if !strings.Contains(log.String(), "remote WIM failed verification") {
		t.Errorf("log does not say the WIM inside the ISO failed verification:\n%s", log)
	}
	if m := regexp.MustCompile(`catalog: store scanned.*took=(\S+)`).FindStringSubmatch(log.String()); m != nil {
		t.Logf("remote catalog scan (1 WIM, 1 ISO with 1 WIM): %s", m[1])
	} else {
		t.Errorf("log lacks the catalog scan:\n%s", log)
	}
}

// startCatalogSSHD starts OpenSSH's sshd on 127.0.0.1 serving SFTP with a test host key and
// client key; it returns the store URL for root and the config's sftp: line.
func startCatalogSSHD(t *testing.T, root string) (url, sftpConf string) {
	t.Helper()
	s := testenv.StartSSHD(t)
	return s.URL(root), fmt.Sprintf("sftp: {keys: [%s], known_hosts: [%s], cache: 16MiB}\n", s.ClientKey, s.KnownHosts)
}

// TestServeISOMediaBootFiles: a WinPE ISO whose boot.wim lacks its DVD boot files (a rescue
// build) but whose boot/ and efi/ folders hold them. The automatic entry serves the ISO's
// boot.sdi, BCDs and bootx64.efi byte-exact, bootmgr.exe from the WIM as wimlib-imagex
// extracts it, and a boot.wim that holds the ISO's files at their image paths and passes
// wimlib-imagex verify.
func TestServeISOMediaBootFiles(t *testing.T) {
	for _, tool := range []string{"genisoimage", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install genisoimage and curl", tool)
		}
	}
	root := t.TempDir()
	for _, d := range []string{"sources", "boot", "efi/microsoft/boot", "efi/boot"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	wimPath := filepath.Join(root, "sources", "boot.wim")
	testenv.BuildWinPE(t, wimPath, []testenv.WinPEImage{{Name: "Rescue PE", Omit: []string{"Windows/Boot/DVD/PCAT/BCD",
		"Windows/Boot/DVD/PCAT/boot.sdi", "Windows/Boot/DVD/EFI/BCD", "Windows/Boot/DVD/EFI/boot.sdi", "Windows/Boot/EFI/bootmgfw.efi"}}},
		"--compress=LZX")
	media := map[string][]byte{
		"boot/boot.sdi":          bytes.Repeat([]byte("ISO boot.sdi "), 30000),
		"boot/bcd":               []byte("ISO BIOS BCD"),
		"efi/microsoft/boot/bcd": []byte("ISO UEFI BCD"),
		"efi/boot/bootx64.efi":   bytes.Repeat([]byte("ISO bootx64.efi "), 5000),
	}
	for p, b := range media {
		os.WriteFile(filepath.Join(root, filepath.FromSlash(p)), b, 0o644)
	}
	store := t.TempDir()
	os.WriteFile(filepath.Join(store, "wimboot"), []byte("stand-in"), 0o644)
	if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "rescue.iso"), root).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("store: "+store+"\nwinpe: {auto: true, wimboot: wimboot}\nmenu: {timeout: 5s}\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, log, done := startServe(t, ctx, "--config", cfg)
	defer func() { cancel(); <-done }()

	files := wimbootFiles(t, base, "pe-rescue-iso-sources-boot-1", log)
	fetch := func(u string) []byte {
		b, err := exec.Command("curl", "-sSf", "--globoff", u).Output()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", u, err, log)
		}
		return b
	}
	for _, c := range []struct{ fw, name, iso string }{
		{"bios", "boot.sdi", "boot/boot.sdi"}, {"bios", "BCD", "boot/bcd"},
		{"uefi", "boot.sdi", "boot/boot.sdi"}, {"uefi", "BCD", "efi/microsoft/boot/bcd"}, {"uefi", "bootmgfw.efi", "efi/boot/bootx64.efi"},
	} {
		if got := fetch(files[c.fw][c.name]); !bytes.Equal(got, media[c.iso]) {
			t.Errorf("%s %s: %d bytes, want the ISO's %s (%d bytes)", c.fw, c.name, len(got), c.iso, len(media[c.iso]))
		}
	}
	if got, want := fetch(files["bios"]["bootmgr.exe"]), testenv.WimExtract(t, wimPath, 1, "Windows/Boot/PXE/bootmgr.exe"); !bytes.Equal(got, want) {
		t.Errorf("bootmgr.exe: %d bytes, wimlib-imagex extract gives %d", len(got), len(want))
	}
	served := filepath.Join(t.TempDir(), "served.wim")
	os.WriteFile(served, fetch(files["uefi"]["boot.wim"]), 0o644)
	if out, err := exec.Command("wimlib-imagex", "verify", served).CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex verify of the served boot.wim: %v\n%s", err, out)
	}
	if got := testenv.WimExtract(t, served, 1, "Windows/Boot/DVD/EFI/boot.sdi"); !bytes.Equal(got, media["boot/boot.sdi"]) {
		t.Errorf("the served boot.wim's boot.sdi differs from the ISO's (%d bytes)", len(got))
	}
	var out bytes.Buffer
	if err := runServe(context.Background(), []string{"--config", cfg, "--check"}, &out, &out); err != nil {
		t.Errorf("check: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "no problems found") || !strings.Contains(out.String(), "5 files injected") {
		t.Errorf("check does not pass with a note on the files taken from the ISO:\n%s", out.String())
	}
}
