// Package packaging builds pxewim's Debian package (.deb) with nfpm, used as a library: the
// static binary, the systemd unit, the example config as a conffile, the store folder, and the
// maintainer scripts in packaging/deb/ that make the pxewim system user. Run it as
//
//	go run ./packaging/mkdeb -arch amd64 -o dist/
//
// The package never starts or enables the service: the config names an interface to answer
// DHCP on, so the admin edits it first ("systemctl enable --now pxewim" afterwards).
package packaging

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Installed paths. The unit's ExecStart, the postinst and the tests use the same ones.
const (
	BinPath     = "/usr/bin/pxewim"
	UnitPath    = "/usr/lib/systemd/system/pxewim.service"
	ConfPath    = "/etc/pxewim/pxewim.yaml"
	StoreDir    = "/srv/pxewim"
	StateDir    = "/var/lib/pxewim"
	ExamplesDir = "/usr/share/doc/pxewim/examples"
)

// Arches are the Debian (and Go) architectures the package is built for.
var Arches = []string{"amd64", "arm64"}

// Relations are the package's dependency fields for one architecture. ipxe (Architecture:
// all) holds the binaries the proxy example hands to stock PXE firmware, so it is a Depends;
// passwd has useradd/userdel for the maintainer scripts. syslinux-common (memdisk, for DOS
// images) is recommended; samba and libnss-wrapper (the Windows Setup share: smbd with private accounts) and wimtools are suggested. Debian's signed shim and GRUB are the Secure Boot chain for x64 UEFI
// clients; grub-efi-amd64-signed exists only for amd64, and shim-signed on arm64 would hold
// the arm64 shim, which x64 clients cannot run, so both are recommended on amd64 only.
func Relations(arch string) (depends, recommends, suggests []string) {
	depends = []string{"ipxe", "passwd"}
	recommends = []string{"syslinux-common"}
	if arch == "amd64" {
		recommends = append(recommends, "shim-signed", "grub-efi-amd64-signed")
	}
	suggests = []string{"samba", "libnss-wrapper", "wimtools"}
	return depends, recommends, suggests
}

// Options say what to build.
type Options struct {
	Root    string // repository root (holds go.mod)
	Arch    string // amd64 or arm64
	Version string // Debian version, also stamped into the binary; "" = from git
	OutDir  string // where the .deb goes
	Binary  string // a pxewim binary built already for Arch; "" = build one
	GoBin   string // the go command; "" = "go" from PATH
}

var debVersionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

// DefaultVersion is the version when none is given: the tag at HEAD without its "v"
// (v1.2.0 -> 1.2.0) when HEAD is tagged and the tree is clean, else 0.0.0+gitREV, with .dirty
// when the tree has changes. Never the date: the same tree gives the same version.
func DefaultVersion(root string) string {
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	rev := git("rev-parse", "--short=12", "HEAD")
	if rev == "" {
		return "0.0.0+unknown"
	}
	dirty := git("status", "--porcelain", "--untracked-files=no") != ""
	if tag := strings.TrimPrefix(git("describe", "--tags", "--exact-match", "HEAD"), "v"); tag != "" && !dirty && debVersionRE.MatchString(tag) {
		return tag
	}
	v := "0.0.0+git" + rev
	if dirty {
		v += ".dirty"
	}
	return v
}

// sourceDate is the files' modification time: SOURCE_DATE_EPOCH, else the HEAD commit's
// time, else 1 Jan 2000. The same source gives the same .deb bytes.
func sourceDate(root string) time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	if out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%ct").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
}

// FindRoot walks up from dir to the folder holding pxewim's go.mod.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/pxewim/pxewim\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("packaging: no pxewim go.mod in this folder or above")
		}
		dir = parent
	}
}

// BuildBinary builds the release binary for arch: static (CGO_ENABLED=0), -trimpath, no VCS
// stamp, no build ID, version stamped: the Makefile's flags.
func BuildBinary(goBin, root, arch, version, out string) error {
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X main.version="+version, "-o", out, "./cmd/pxewim")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packaging: go build for %s: %w\n%s", arch, err, b)
	}
	return nil
}

// PackagedUnit is configs/pxewim.service as the package installs it: ExecStart runs
// /usr/bin/pxewim instead of the hand-installed /usr/local/bin/pxewim.
func PackagedUnit(unit []byte) ([]byte, error) {
	const from = "ExecStart=/usr/local/bin/pxewim "
	if n := bytes.Count(unit, []byte(from)); n != 1 {
		return nil, fmt.Errorf("packaging: configs/pxewim.service: want one %q line, found %d", strings.TrimSpace(from), n)
	}
	return bytes.Replace(unit, []byte(from), []byte("ExecStart="+BinPath+" "), 1), nil
}

// confHeader is put above configs/proxy.yaml in the conffile.
const confHeader = `# /etc/pxewim/pxewim.yaml: installed by the pxewim package from configs/proxy.yaml. It is a
# conffile: your edits survive upgrades (dpkg asks before replacing an edited one), and
# "dpkg --purge pxewim" removes it. The service is not started by the package: set
# dhcp.interfaces and the entries below, put images in /srv/pxewim, then
#   pxewim check --config /etc/pxewim/pxewim.yaml
#   systemctl enable --now pxewim
# Other examples: /usr/share/doc/pxewim/examples/.

`

// Build writes pxewim_VERSION_ARCH.deb into o.OutDir and returns its path.
func Build(o Options) (string, error) {
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return "", fmt.Errorf("packaging: arch %q: want amd64 or arm64", o.Arch)
	}
	if o.Version == "" {
		o.Version = DefaultVersion(o.Root)
	}
	if !debVersionRE.MatchString(o.Version) {
		return "", fmt.Errorf("packaging: version %q: a Debian version starts with a digit and holds only letters, digits and . + ~", o.Version)
	}
	tmp, err := os.MkdirTemp("", "pxewim-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	bin := o.Binary
	if bin == "" {
		bin = filepath.Join(tmp, "pxewim")
		if err := BuildBinary(o.GoBin, o.Root, o.Arch, o.Version, bin); err != nil {
			return "", err
		}
	}
	unit, err := os.ReadFile(filepath.Join(o.Root, "configs", "pxewim.service"))
	if err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	if unit, err = PackagedUnit(unit); err != nil {
		return "", err
	}
	proxy, err := os.ReadFile(filepath.Join(o.Root, "configs", "proxy.yaml"))
	if err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	unitFile, confFile := filepath.Join(tmp, "pxewim.service"), filepath.Join(tmp, "pxewim.yaml")
	if err := os.WriteFile(unitFile, unit, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(confFile, append([]byte(confHeader), proxy...), 0o644); err != nil {
		return "", err
	}

	mtime := sourceDate(o.Root)
	root := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mtime}
	}
	contents := files.Contents{
		{Source: bin, Destination: BinPath, FileInfo: root(0o755)},
		{Source: unitFile, Destination: UnitPath, FileInfo: root(0o644)},
		{Source: confFile, Destination: ConfPath, Type: files.TypeConfig, FileInfo: root(0o644)},
		{Destination: "/etc/pxewim", Type: files.TypeDir, FileInfo: root(0o755)},
		// The store: root's, readable by the pxewim user. Images an admin puts here are not the
		// package's: purge leaves the folder when it is not empty.
		{Destination: StoreDir, Type: files.TypeDir, FileInfo: root(0o755)},
	}
	for _, ex := range []string{"proxy.yaml", "full.yaml", "images.yaml", "dnsmasq-coexistence.md", "pxewim-setup.conf"} {
		src := filepath.Join(o.Root, "configs", ex)
		if _, err := os.Stat(src); err != nil {
			return "", fmt.Errorf("packaging: %w", err)
		}
		contents = append(contents, &files.Content{Source: src, Destination: ExamplesDir + "/" + ex, FileInfo: root(0o644)})
	}
	depends, recommends, suggests := Relations(o.Arch)
	scripts := filepath.Join(o.Root, "packaging", "deb")
	info := &nfpm.Info{
		Name:          "pxewim",
		Arch:          o.Arch,
		Platform:      "linux",
		Version:       o.Version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "pxewim developers <pxewim@users.noreply.github.com>",
		Homepage:      "https://github.com/pxewim/pxewim",
		Description: `network-boot lab machines from a store of WIM and ISO images
 One daemon: proxy DHCP beside the site's DHCP server (or full DHCP on an isolated lab
 network), TFTP and HTTP boot. Boot files are streamed out of WIMs on demand; Windows PE,
 DOS and rescue images boot over iPXE or natively. Also "pxewim wim" to read WIM files.`,
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Depends:    depends,
			Recommends: recommends,
			Suggests:   suggests,
			Contents:   contents,
			Umask:      0o022,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(scripts, "postinst"),
				PreRemove:   filepath.Join(scripts, "prerm"),
				PostRemove:  filepath.Join(scripts, "postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(o.OutDir, fmt.Sprintf("pxewim_%s_%s.deb", o.Version, o.Arch))
	var buf bytes.Buffer
	if err := deb.Default.Package(nfpm.WithDefaults(info), &buf); err != nil {
		return "", fmt.Errorf("packaging: nfpm: %w", err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return out, nil
}
