package testenv

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
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
	return a.withBootDir(cache, kernel, initrd)
}

// withBootDir fills in a's initramfs and tools.wim: cache/boot-HASH (named by the kernel and
// initramfs bytes) holding them, built unless it exists; older boot-* folders are pruned.
func (a *Assets) withBootDir(cache string, kernel, initrd []byte) (*Assets, error) {
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
// proc/sys/devtmpfs, prints "MARKER uptime=... sha1-busybox=HEX sha1-init=HEX cmdline=[...]"
// (the SHA-1s of /bin/busybox and /init as the kernel unpacked them) to /dev/ttyS0 and powers off.
func BuildInitramfs(marker string) ([]byte, error) {
	return BuildInitramfsFor(marker, busyboxPath, "ttyS0")
}

// BuildInitramfsFor is BuildInitramfs with a given static busybox (the host's, or another
// architecture's extracted from its .deb: arm64.go) and serial console device (ttyS0 on x86,
// ttyAMA0 on arm64 virt).
func BuildInitramfsFor(marker, busybox, console string) ([]byte, error) {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w (apt-get install busybox-static)", err)
	}
	if err := checkStatic(busybox); err != nil {
		return nil, err
	}
	init := "#!/bin/busybox sh\n" +
		"# pxewim e2e initramfs: prove the kernel and this initramfs arrived, then power off.\n" +
		"/bin/busybox mount -t proc proc /proc\n" +
		"/bin/busybox mount -t sysfs sysfs /sys\n" +
		"/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null\n" +
		// What arrived, not only that /init ran: the kernel checks the gzip CRC only after
		// unpacking, so a damaged tail can still leave a runnable /init. The test compares these
		// SHA-1s with the bytes put into the WIM (Assets.CheckInitramfsReport).
		"bb=$(/bin/busybox sha1sum /bin/busybox | /bin/busybox cut -d' ' -f1)\n" +
		"in=$(/bin/busybox sha1sum /init | /bin/busybox cut -d' ' -f1)\n" +
		"echo \"" + marker + " uptime=$(/bin/busybox cut -d' ' -f1 /proc/uptime) sha1-busybox=$bb sha1-init=$in cmdline=[$(/bin/busybox cat /proc/cmdline)]\" > /dev/" + console + "\n" +
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
	kernel, err := debMember(debs[0], "boot/vmlinuz-")
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

// CheckInitramfsReport compares the SHA-1s the initramfs's /init printed in its marker line
// (sha1-busybox=, sha1-init=) with those of the files inside a.Initrd, the initramfs put into
// tools.wim. An error names what differs or is missing.
func (a *Assets) CheckInitramfsReport(markerLine string) error {
	initrd, err := os.ReadFile(a.Initrd)
	if err != nil {
		return fmt.Errorf("initramfs report: %w", err)
	}
	want, err := InitramfsSHA1s(initrd)
	if err != nil {
		return fmt.Errorf("initramfs report: %s: %w", a.Initrd, err)
	}
	var errs []error
	for key, name := range map[string]string{"sha1-busybox=": "bin/busybox", "sha1-init=": "init"} {
		_, rest, ok := strings.Cut(markerLine, key)
		got, _, _ := strings.Cut(rest, " ")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("initramfs report: the marker line has no %s: %q", key, markerLine))
		case want[name] == "":
			errs = append(errs, fmt.Errorf("initramfs report: %s holds no %s", a.Initrd, name))
		case got != want[name]:
			errs = append(errs, fmt.Errorf("initramfs report: the VM's /%s has SHA-1 %s, the initramfs put into the WIM holds %s", name, got, want[name]))
		}
	}
	return errors.Join(errs...)
}

// InitramfsSHA1s reads a gzip'd newc cpio and returns the SHA-1 (hex) of each regular file by
// name. Bounded by the archive's own size; a malformed archive is an error.
func InitramfsSHA1s(gz []byte) (map[string]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	out := map[string]string{}
	pad4 := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; ; {
		if off+110 > len(raw) || string(raw[off:off+6]) != "070701" {
			return nil, fmt.Errorf("cpio: no newc header at offset %d", off)
		}
		field := func(i int) (int, error) {
			var v uint32
			_, err := fmt.Sscanf(string(raw[off+6+8*i:off+14+8*i]), "%08x", &v)
			return int(v), err
		}
		mode, err1 := field(1)
		size, err2 := field(6)
		nameSize, err3 := field(11)
		if err := errors.Join(err1, err2, err3); err != nil || nameSize < 1 {
			return nil, fmt.Errorf("cpio: bad header at offset %d: %v", off, err)
		}
		nameEnd := off + 110 + nameSize
		dataStart := off + pad4(110+nameSize)
		if nameEnd > len(raw) || dataStart+size > len(raw) {
			return nil, fmt.Errorf("cpio: entry at offset %d runs past the end", off)
		}
		name := string(raw[off+110 : nameEnd-1])
		if name == "TRAILER!!!" {
			return out, nil
		}
		if mode&0o170000 == 0o100000 {
			sum := sha1.Sum(raw[dataStart : dataStart+size])
			out[name] = hex.EncodeToString(sum[:])
		}
		off = dataStart + pad4(size)
	}
}
