package testenv

// arm64 clients: Debian's arm64 boot assets (fetched as arm64 packages with apt-get download,
// never installed; `dpkg --add-architecture arm64 && apt-get update` must have been run) and
// QEMU's aarch64 virt machine with AAVMF (Debian qemu-efi-aarch64: EDK2's ArmVirtQemu, the
// same PxeBcDxe/HttpBootDxe as OVMF), TCG.

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// AAVMF firmware images (qemu-efi-aarch64): the code and the VARS template (no keys enrolled:
// Secure Boot off).
const (
	AAVMFCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

// The arm64 packages the assets come from; the kernel is linux-image-cloud-arm64's dependency.
const (
	arm64KernelMeta = "linux-image-cloud-arm64:arm64"
	arm64Busybox    = "busybox-static:arm64"
	arm64GRUB       = "grub-efi-arm64-signed:arm64"
	// arm64GRUBBin holds Debian's arm64-efi GRUB modules, from which the HTTP Boot tests
	// build the site's GRUB with http (boot.ARM64HTTPGRUBCommand).
	arm64GRUBBin = "grub-efi-arm64-bin:arm64"
	// ARM64GRUBModDir is the modules' folder inside grub-efi-arm64-bin.
	ARM64GRUBModDir = "usr/lib/grub/arm64-efi"
	// ARM64GRUBMember is the signed netboot GRUB inside grub-efi-arm64-signed.
	ARM64GRUBMember = "usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed"
	// ARM64Console is the serial console of QEMU's virt machine (PL011).
	ARM64Console = "ttyAMA0"
)

// ARM64Assets are an arm64 VM's boot files: Debian's cloud-arm64 kernel (an EFI-stub Image;
// Debian 12 ships it uncompressed as vmlinuz), an initramfs with the arm64 busybox-static whose
// /init prints Marker and the SHA-1s on ttyAMA0, tools.wim holding both as boot/vmlinuz and
// boot/initrd (image 1, LZX), and GRUB, Debian's signed arm64 netboot GRUB.
type ARM64Assets struct {
	Assets
	GRUB string // grubnetaa64.efi.signed
}

// RequireARM64 skips unless qemu-system-aarch64, AAVMF and the arm64 package lists are here.
func RequireARM64(t testing.TB) {
	t.Helper()
	RequireTools(t, "qemu-system-aarch64", "apt-get", "apt-cache", "dpkg-deb", "wimlib-imagex")
	RequireFiles(t, "qemu-efi-aarch64", AAVMFCode, AAVMFVars)
	for _, pkg := range []string{arm64KernelMeta, arm64Busybox, arm64GRUB, arm64GRUBBin} {
		if v := candidate(pkg); v == "" {
			t.Skipf("needs the arm64 package %s from apt: dpkg --add-architecture arm64 && apt-get update", pkg)
		}
	}
}

// arm64Built memoizes the assets per cache folder within one test binary (apt-cache alone
// takes seconds per call on a loaded machine).
var arm64Built sync.Map // cache dir -> *ARM64Assets

// MustARM64Assets builds (or finds in the cache) the arm64 assets, failing the test on error.
func MustARM64Assets(t testing.TB) *ARM64Assets {
	t.Helper()
	if a, ok := arm64Built.Load(CacheDir()); ok {
		return a.(*ARM64Assets)
	}
	a, err := BuildARM64Assets(CacheDir())
	if err != nil {
		t.Fatalf("arm64 boot assets: %v", err)
	}
	arm64Built.Store(CacheDir(), a)
	return a
}

var candidates sync.Map // package -> apt's candidate version, within one test binary

// candidate is apt's candidate version of pkg ("" when apt knows none).
func candidate(pkg string) string {
	if v, ok := candidates.Load(pkg); ok {
		return v.(string)
	}
	out, _ := exec.Command("apt-cache", "policy", pkg).Output()
	v := ""
	for _, line := range strings.Split(string(out), "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			if c = strings.TrimSpace(c); c != "(none)" {
				v = c
			}
			break
		}
	}
	candidates.Store(pkg, v)
	return v
}

// BuildARM64Assets fills cache/arm64 and returns the assets. Each package is downloaded once per
// version; the initramfs is rebuilt in memory (deterministic) and tools.wim only when the
// kernel or initramfs bytes change.
func BuildARM64Assets(cache string) (*ARM64Assets, error) {
	dir := filepath.Join(cache, "arm64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("arm64 asset cache %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	kpkg := ""
	out, _ := exec.Command("apt-cache", "depends", arm64KernelMeta).Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			kpkg = f[1]
			if !strings.Contains(kpkg, ":") {
				kpkg += ":arm64"
			}
			break
		}
	}
	if kpkg == "" {
		return nil, fmt.Errorf("resolve %s: apt-cache knows no linux-image-* dependency (dpkg --add-architecture arm64 && apt-get update)", arm64KernelMeta)
	}
	a := &ARM64Assets{}
	a.KernelPackage = kpkg
	if a.Kernel, err = cachedDebMember(dir, kpkg, "boot/vmlinuz-", "vmlinuz"); err != nil {
		return nil, err
	}
	busybox, err := cachedDebMember(dir, arm64Busybox, "bin/busybox", "busybox")
	if err != nil {
		return nil, err
	}
	if a.GRUB, err = cachedDebMember(dir, arm64GRUB, ARM64GRUBMember, "grubnetaa64.efi.signed"); err != nil {
		return nil, err
	}
	kernel, err := os.ReadFile(a.Kernel)
	if err != nil {
		return nil, fmt.Errorf("read arm64 kernel: %w", err)
	}
	initrd, err := BuildInitramfsFor(Marker, busybox, ARM64Console)
	if err != nil {
		return nil, err
	}
	if _, err := a.withBootDir(dir, kernel, initrd); err != nil {
		return nil, err
	}
	return a, nil
}

// ARM64GRUBModules returns the folder of Debian's arm64-efi GRUB modules (grub-efi-arm64-bin,
// downloaded once per version with apt-get download and unpacked with dpkg-deb -x into the
// cache; never installed), what `grub-mkimage -d` takes.
func ARM64GRUBModules(cache string) (string, error) {
	dir := filepath.Join(cache, "arm64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("arm64 asset cache %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	v := candidate(arm64GRUBBin)
	if v == "" {
		return "", fmt.Errorf("%s: apt knows no candidate version (dpkg --add-architecture arm64 && apt-get update)", arm64GRUBBin)
	}
	tree := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_").Replace(arm64GRUBBin+"_"+v), "tree")
	mods := filepath.Join(tree, ARM64GRUBModDir)
	if _, err := os.Stat(filepath.Join(mods, "http.mod")); err == nil {
		return mods, nil
	}
	deb, cleanup, err := aptDownload(arm64GRUBBin, v)
	if err != nil {
		return "", err
	}
	defer cleanup()
	tmp := tree + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Dir(tree), 0o755); err != nil {
		return "", err
	}
	if out, err := exec.Command("dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %w: %s", deb, err, out)
	}
	if _, err := os.Stat(filepath.Join(tmp, ARM64GRUBModDir, "http.mod")); err != nil {
		return "", fmt.Errorf("%s: no %s/http.mod inside: %w", deb, ARM64GRUBModDir, err)
	}
	_ = os.RemoveAll(tree)
	return mods, os.Rename(tmp, tree)
}

// aptDownload fetches pkg=v with apt-get download into a temporary folder and returns the
// .deb and the folder's removal.
func aptDownload(pkg, v string) (string, func(), error) {
	dl, err := os.MkdirTemp("", "pxewim-apt-")
	if err != nil {
		return "", nil, err
	}
	_ = os.Chmod(dl, 0o755) // apt-get download drops root for the fetch
	cleanup := func() { os.RemoveAll(dl) }
	cmd := exec.Command("apt-get", "download", "-q", pkg+"="+v)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("apt-get download %s=%s: %w: %s", pkg, v, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		cleanup()
		return "", nil, fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", pkg, dl, len(debs))
	}
	return debs[0], cleanup, nil
}

// cachedDebMember returns dir/PKG_VERSION/name, the first regular file of pkg's .deb whose path
// starts with member, downloading the candidate version with apt-get download on first use.
func cachedDebMember(dir, pkg, member, name string) (string, error) {
	v := candidate(pkg)
	if v == "" {
		return "", fmt.Errorf("%s: apt knows no candidate version (dpkg --add-architecture arm64 && apt-get update)", pkg)
	}
	sub := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_").Replace(pkg+"_"+v))
	path := filepath.Join(sub, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	deb, cleanup, err := aptDownload(pkg, v)
	if err != nil {
		return "", err
	}
	defer cleanup()
	data, err := debMember(deb, member)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path+".tmp", data, 0o755); err != nil {
		return "", fmt.Errorf("store %s: %w", name, err)
	}
	return path, os.Rename(path+".tmp", path)
}

// debMember reads the first regular file of deb's data.tar whose path starts with prefix,
// streaming it through `dpkg-deb --fsys-tarfile`. It reads the archive to its end rather than
// killing dpkg-deb early: dpkg-deb runs its decompressor as a child that would keep the pipes
// open.
func debMember(deb, prefix string) ([]byte, error) {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dpkg-deb %s: %w", deb, err)
	}
	var data []byte
	var readErr error
	tr := tar.NewReader(stdout)
	for {
		h, err := tr.Next()
		if err != nil {
			if err != io.EOF {
				readErr = fmt.Errorf("%s: read data.tar: %w", deb, err)
			}
			break
		}
		if name := strings.TrimPrefix(h.Name, "./"); data == nil && h.Typeflag == tar.TypeReg && strings.HasPrefix(name, prefix) {
			if data, err = io.ReadAll(io.LimitReader(tr, 256<<20)); err != nil {
				readErr = fmt.Errorf("%s: read %s: %w", deb, name, err)
				break
			}
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil && readErr == nil {
		readErr = fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", deb, err, stderr.String())
	}
	if readErr != nil {
		return nil, readErr
	}
	if data == nil {
		return nil, fmt.Errorf("%s: no %s* inside", deb, prefix)
	}
	return data, nil
}

// aavmfArgs is the qemu-system-aarch64 command line of an AAVMF VM: virt, cortex-a57 under
// TCG, AAVMF_CODE.fd and a fresh copy of AAVMF_VARS.fd as pflash, the NIC (virtio-net-pci, no
// option ROM: EDK2's own PXE/HTTP Boot) as boot device 1, the PL011 serial to SerialPath.
func (s *VMSpec) aavmfArgs() ([]string, error) {
	tap, mem := s.Tap, s.MemoryMB
	if tap == "" {
		tap = "tap0"
	}
	if mem == 0 {
		mem = 1024
	}
	vars := filepath.Join(s.Dir, s.stem()+"-AAVMF_VARS.fd")
	if err := copyFile(AAVMFVars, vars); err != nil {
		return nil, fmt.Errorf("vm %s: AAVMF vars: %w", s.stem(), err)
	}
	nic := s.NIC
	if nic == "" {
		nic = "virtio-net-pci"
	}
	nic += ",netdev=n0,romfile="
	if s.MAC != "" {
		nic += ",mac=" + s.MAC
	}
	bi := s.BootIndex
	if bi == 0 {
		bi = 1
	}
	args := []string{"qemu-system-aarch64", "-machine", "virt", "-cpu", "cortex-a57", "-accel", "tcg",
		"-m", fmt.Sprint(mem), "-smp", "1", "-no-reboot", "-nographic", "-monitor", "none",
		"-serial", "file:" + s.SerialPath(),
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + AAVMFCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no",
		"-device", fmt.Sprintf("%s,bootindex=%d", nic, bi)}
	for _, f := range s.FwCfg {
		args = append(args, "-fw_cfg", "name="+f.Name+",string="+f.Value)
	}
	if s.UUID != "" {
		args = append(args, "-uuid", s.UUID)
	}
	return append(args, s.Extra...), nil
}
