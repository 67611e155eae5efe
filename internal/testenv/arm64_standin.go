package testenv

// The ARM64 stand-in for bootmgfw.efi: no Microsoft boot binary is available to the test
// suite, so an ARM64 WinPE test image carries, as Windows/Boot/EFI/bootmgfw.efi, a GRUB arm64
// EFI image built at test time from Debian's grub-efi-arm64-bin modules (ARM64GRUBModules;
// nothing is kept) with an embedded config. Started by AAVMF's PXE client, it does what
// bootmgr does next: it reads \Boot\BCD, \Boot\boot.sdi and \sources\boot.wim over TFTP from
// the server that loaded it (GRUB's root, "tftp,SERVER", comes from the PXE DHCP ack), and
// prints each file's SHA-1 with sha1sum, then a final marker, on the console that AAVMF mirrors
// to the serial port; then it reboots (QEMU runs with -no-reboot: the VM ends).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Console lines of the ARM64 bootmgr stand-in.
const (
	ARM64StandInStart = "PXEWIM-ARM64-BOOTMGR root="
	ARM64StandInDone  = "PXEWIM-ARM64-BOOTMGR-DONE"
)

// ARM64StandInFiles are the paths the stand-in fetches, as bootmgr names them for a media BCD.
var ARM64StandInFiles = []string{"/Boot/BCD", "/Boot/boot.sdi", "/sources/boot.wim"}

// arm64StandInModules: the network, sha1sum and the commands of the embedded config.
var arm64StandInModules = []string{"efinet", "tftp", "hashsum", "gcry_sha1", "echo", "reboot"}

// ARM64BootmgrStandIn builds the stand-in in dir and returns its bytes. It skips without
// grub-mkimage.
func ARM64BootmgrStandIn(t testing.TB, dir string) []byte {
	t.Helper()
	RequireTools(t, "grub-mkimage")
	mods, err := ARM64GRUBModules(CacheDir())
	if err != nil {
		t.Fatalf("arm64 GRUB modules: %v", err)
	}
	var cfg strings.Builder
	cfg.WriteString("echo " + ARM64StandInStart + "$root\n")
	for _, f := range ARM64StandInFiles {
		fmt.Fprintf(&cfg, "sha1sum ($root)%s\n", f)
	}
	cfg.WriteString("echo " + ARM64StandInDone + "\nreboot\n")
	cfgPath := filepath.Join(dir, "arm64-standin.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "arm64-bootmgr-standin.efi")
	args := append([]string{"-O", "arm64-efi", "-d", mods, "-p", "", "-c", cfgPath, "-o", out}, arm64StandInModules...)
	if b, err := exec.Command("grub-mkimage", args...).CombinedOutput(); err != nil {
		t.Fatalf("grub-mkimage %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var sha1sumLine = regexp.MustCompile(`([0-9a-f]{40})  \(tftp,[^)]*\)(/\S+)`)

// ParseARM64StandIn returns, from the serial console, the root the stand-in saw and the SHA-1
// it printed for each path it read (path -> hex SHA-1).
func ParseARM64StandIn(serial string) (root string, sums map[string]string) {
	sums = map[string]string{}
	clean := CleanConsole([]byte(serial))
	for _, line := range strings.Split(clean, "\n") {
		if i := strings.Index(line, ARM64StandInStart); i >= 0 {
			root = strings.TrimSpace(line[i+len(ARM64StandInStart):])
		}
	}
	for _, m := range sha1sumLine.FindAllStringSubmatch(clean, -1) {
		sums[m[2]] = m[1]
	}
	return root, sums
}
