package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const busyboxPath = "/bin/busybox"

// DefaultCacheDir keeps downloaded kernels and built WIMs between runs (not in git). Override it
// with PXEWIM_TEST_CACHE.
const DefaultCacheDir = "/var/cache/pxewim-test"

// Assets are the files a test VM boots: a Debian cloud kernel (8250 serial console, EFI stub,
// gzip initramfs support built in), a busybox initramfs whose /init prints Marker plus the
// kernel command line on ttyS0 and powers off, and tools.wim, an LZX WIM whose image 1 holds
// both as boot/vmlinuz and boot/initrd.
type Assets struct {
	KernelPackage string // the Debian package the kernel came from
	Kernel        string // vmlinuz
	Initrd        string // gzip'd newc cpio
	ToolsWIM      string // LZX WIM, image 1: /boot/vmlinuz, /boot/initrd
	KernelSize    int64
	InitrdSize    int64
}

// MustAssets builds (or finds in the cache) the boot assets, failing the test on error.
func MustAssets(t testing.TB) *Assets {
	t.Helper()
	a, err := BuildAssets(CacheDir())
	if err != nil {
		t.Fatalf("boot assets: %v", err)
	}
	return a
}

// CacheDir is PXEWIM_TEST_CACHE or DefaultCacheDir.
func CacheDir() string {
	if d := os.Getenv("PXEWIM_TEST_CACHE"); d != "" {
		return d
	}
	return DefaultCacheDir
}

// BuildAssets fills cache (created if needed) and returns the assets. The kernel is downloaded
// once per package version with `apt-get download` (never installed); the initramfs is rebuilt
// in memory each time (it is deterministic) and tools.wim is rebuilt only when the kernel or
// initramfs bytes change. An exclusive lock on cache/.lock serializes parallel test binaries.
func BuildAssets(cache string) (*Assets, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("asset cache %s: %w", cache, err)
	}
	unlock, err := lockDir(cache)
	if err != nil {
		return nil, err
	}
	defer unlock()

	a := &Assets{}
	if a.Kernel, a.KernelPackage, err = cachedKernel(cache); err != nil {
		return nil, err
	}
	kernel, err := os.ReadFile(a.Kernel)
	if err != nil {
		return nil, fmt.Errorf("read kernel: %w", err)
	}
	initrd, err := BuildInitramfs(Marker)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(kernel)
	h.Write(initrd)
	dir := filepath.Join(cache, "boot-"+hex.EncodeToString(h.Sum(nil))[:16])
	a.Initrd = filepath.Join(dir, "initrd")
	a.ToolsWIM = filepath.Join(dir, "tools.wim")
	a.KernelSize, a.InitrdSize = int64(len(kernel)), int64(len(initrd))
	if _, err := os.Stat(a.ToolsWIM); err == nil {
		return a, nil
	}
	if err := buildBootDir(dir, kernel, initrd); err != nil {
		return nil, err
	}
	pruneBootDirs(cache, dir)
	return a, nil
}

// pruneBootDirs removes the boot-* folders of earlier kernels or initramfs versions, so the
// cache holds one set of boot files (kernels stay: they cost a download).
func pruneBootDirs(cache, keep string) {
	old, _ := filepath.Glob(filepath.Join(cache, "boot-*"))
	for _, d := range old {
		if d != keep && !strings.HasSuffix(d, ".stage") {
			_ = os.RemoveAll(d)
		}
	}
}

// buildBootDir writes initrd and tools.wim into dir, atomically (temp names, then rename).
func buildBootDir(dir string, kernel, initrd []byte) error {
	stage := dir + ".stage"
	_ = os.RemoveAll(stage)
	if err := os.MkdirAll(filepath.Join(stage, "tree", "boot"), 0o755); err != nil {
		return fmt.Errorf("stage tools.wim: %w", err)
	}
	defer os.RemoveAll(stage)
	for name, data := range map[string][]byte{"vmlinuz": kernel, "initrd": initrd} {
		if err := os.WriteFile(filepath.Join(stage, "tree", "boot", name), data, 0o644); err != nil {
			return fmt.Errorf("stage tools.wim: %w", err)
		}
	}
	wimPath := filepath.Join(stage, "tools.wim")
	out, err := exec.Command("wimlib-imagex", "capture", filepath.Join(stage, "tree"), wimPath,
		"tools", "--compress=LZX").CombinedOutput()
	if err != nil {
		return fmt.Errorf("wimlib-imagex capture tools.wim: %w: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(stage, "initrd"), initrd, 0o644); err != nil {
		return fmt.Errorf("stage initrd: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(stage, "tree")); err != nil {
		return fmt.Errorf("stage tools.wim: %w", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(stage, dir); err != nil {
		return fmt.Errorf("install %s: %w", dir, err)
	}
	return nil
}

// BuildInitramfs returns a gzip'd newc cpio: static busybox, /dev/console and /dev/null nodes
// (without /dev/console the kernel gives /init no stdout), and an /init that mounts
// proc/sys/devtmpfs, prints "MARKER uptime=... cmdline=[...]" to /dev/ttyS0 and powers off.
func BuildInitramfs(marker string) ([]byte, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w (apt-get install busybox-static)", err)
	}
	if err := checkStatic(busyboxPath); err != nil {
		return nil, err
	}
	init := "#!/bin/busybox sh\n" +
		"# pxewim e2e initramfs: prove the kernel and this initramfs arrived, then power off.\n" +
		"/bin/busybox mount -t proc proc /proc\n" +
		"/bin/busybox mount -t sysfs sysfs /sys\n" +
		"/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null\n" +
		"echo \"" + marker + " uptime=$(/bin/busybox cut -d' ' -f1 /proc/uptime) cmdline=[$(/bin/busybox cat /proc/cmdline)]\" > /dev/ttyS0\n" +
		"/bin/busybox sync\n" +
		"/bin/busybox poweroff -f\n"
	entries := []CpioEntry{
		{Name: "bin", Mode: CpioDir | 0o755},
		{Name: "dev", Mode: CpioDir | 0o755},
		{Name: "proc", Mode: CpioDir | 0o755},
		{Name: "sys", Mode: CpioDir | 0o755},
		{Name: "bin/busybox", Mode: CpioRegular | 0o755, Data: bb},
		{Name: "init", Mode: CpioRegular | 0o755, Data: []byte(init)},
		{Name: "dev/console", Mode: CpioCharDev | 0o600, RdevMajor: 5, RdevMinor: 1},
		{Name: "dev/null", Mode: CpioCharDev | 0o666, RdevMajor: 1, RdevMinor: 3},
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err := WriteCpio(zw, entries); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("initramfs gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// checkStatic refuses a dynamically linked busybox: the initramfs has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("initramfs: %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("initramfs: %s is dynamically linked: apt-get install busybox-static", path)
		}
	}
	return nil
}

// cachedKernel returns the vmlinuz of the current linux-image-*-cloud-amd64 package, downloading
// and extracting it on first use. PXEWIM_TEST_KERNEL names a vmlinuz to use instead. When apt
// cannot resolve the package (offline, no lists), the newest kernel already cached is used.
func cachedKernel(cache string) (path, pkg string, err error) {
	if k := os.Getenv("PXEWIM_TEST_KERNEL"); k != "" {
		return k, "PXEWIM_TEST_KERNEL", nil
	}
	pkg, resolveErr := resolveKernelPackage()
	if resolveErr != nil {
		if p, name := newestCachedKernel(cache); p != "" {
			return p, name, nil
		}
		return "", "", resolveErr
	}
	dir := filepath.Join(cache, "kernel", pkg)
	path = filepath.Join(dir, "vmlinuz")
	if _, err := os.Stat(path); err == nil {
		return path, pkg, nil
	}
	if err := downloadKernel(pkg, dir); err != nil {
		return "", "", err
	}
	return path, pkg, nil
}

func resolveKernelPackage() (string, error) {
	find := func() string {
		out, _ := exec.Command("apt-cache", "depends", "linux-image-cloud-amd64").Output()
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
				return f[1]
			}
		}
		return ""
	}
	if pkg := find(); pkg != "" {
		return pkg, nil
	}
	if out, err := exec.Command("apt-get", "update", "-q").CombinedOutput(); err != nil {
		return "", fmt.Errorf("resolve linux-image-cloud-amd64: apt-get update: %w: %s", err, out)
	}
	if pkg := find(); pkg != "" {
		return pkg, nil
	}
	return "", errors.New("resolve linux-image-cloud-amd64: apt-cache knows no linux-image-* dependency")
}

func newestCachedKernel(cache string) (path, pkg string) {
	matches, _ := filepath.Glob(filepath.Join(cache, "kernel", "*", "vmlinuz"))
	if len(matches) == 0 {
		return "", ""
	}
	sort.Strings(matches)
	p := matches[len(matches)-1]
	return p, filepath.Base(filepath.Dir(p))
}

// downloadKernel fetches pkg's .deb (not installed) and extracts only boot/vmlinuz-* from it.
func downloadKernel(pkg, dir string) error {
	dl := dir + ".download"
	_ = os.RemoveAll(dl)
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return fmt.Errorf("kernel download dir: %w", err)
	}
	defer os.RemoveAll(dl)
	cmd := exec.Command("apt-get", "download", "-q", pkg)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", pkg, dl, len(debs))
	}
	kernel, err := extractVmlinuz(debs[0])
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "vmlinuz.tmp")
	if err := os.WriteFile(tmp, kernel, 0o644); err != nil {
		return fmt.Errorf("store kernel: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "vmlinuz"))
}

// extractVmlinuz streams the .deb's data.tar through `dpkg-deb --fsys-tarfile` and keeps only
// boot/vmlinuz-*. It reads the archive to its end rather than killing dpkg-deb early: dpkg-deb
// runs its decompressor as a child that would keep the pipes open.
func extractVmlinuz(deb string) ([]byte, error) {
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
	var kernel []byte
	tr := tar.NewReader(stdout)
	var readErr error
	for {
		h, err := tr.Next()
		if err != nil {
			if err != io.EOF {
				readErr = fmt.Errorf("%s: read data.tar: %w", deb, err)
			}
			break
		}
		name := strings.TrimPrefix(h.Name, "./")
		if kernel == nil && strings.HasPrefix(name, "boot/vmlinuz-") && h.Typeflag == tar.TypeReg {
			if kernel, err = io.ReadAll(io.LimitReader(tr, 256<<20)); err != nil {
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
	if kernel == nil {
		return nil, fmt.Errorf("%s: no boot/vmlinuz-* inside", deb)
	}
	return kernel, nil
}

func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("asset cache lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("asset cache lock: %w", err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}
