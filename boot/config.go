package boot

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config is the whole pxewim configuration: where the store is, where the servers listen, how
// DHCP behaves, which iPXE binaries to hand out, and the boot entries with their menu and rules.
// ParseConfig fills in defaults and validates it; a Config that ParseConfig returned is usable.
type Config struct {
	Source string // file name used in messages ("config.yaml", "(embedded default)")
	Store  string // folder of images and loose files
	// Cache bounds the decoded WIM chunks the daemon keeps, one cache shared by every WIM it
	// opens (the `cache:` key, e.g. 256MiB); 0 means DefaultChunkCache.
	Cache   int64
	Listen  Listen
	DHCP    DHCPConfig
	IPXE    IPXEConfig
	Menu    Menu
	Entries []Entry
	// Unbootable lists images of the store that the catalog cannot read (WithCatalog,
	// WithImages): menus show each as a disabled line with the reason, instead of an entry.
	Unbootable []Unbootable
	Rules      []Rule
	WinPE      WinPEDefaults // the winpe: section
	Admin      AdminConfig   // the admin: section (dashboard, metrics)
	Images     ImagesConfig  // the images: section (memdisk, automatic ISO/disk image entries)
	Upload     UploadConfig  // the upload: section (embedded SFTP upload server)
	SFTP       SFTPConfig    // the sftp: section (store: sftp://...)

	// StateDir is the daemon's state folder (the `state_dir:` key), where the WIM verdicts
	// file lives; "" means the lease file's folder (dhcp.full.leases), else /var/lib/pxewim.
	StateDir string

	BlobCache BlobCacheConfig // the blob_cache: section (config_blobcache.go)
	Setup     SetupConfig     // the setup: section: network Windows Setup (config_setup.go)

	SecureBoot SecureBootConfig // the secure_boot: section (config_secureboot.go)

	ARM64     ARM64Config       // the arm64: section: UEFI ARM64 clients (config_arm64clients.go)
	ImageArch map[string]string // "wim:index" (lower-case) -> the catalog's arch name (WithCatalog; arm64.go)
}

// DefaultChunkCache is the decoded-chunk cache's bound when the config sets none: four of the
// largest (64 MiB) solid chunks.
const DefaultChunkCache = 256 << 20

// ChunkCacheBytes is the decoded-chunk cache's bound in effect.
func (c *Config) ChunkCacheBytes() int64 {
	if c.Cache > 0 {
		return c.Cache
	}
	return DefaultChunkCache
}

// Listen says where the HTTP and TFTP servers listen and what address clients are told.
type Listen struct {
	HTTP      string // host:port; host may be empty (all addresses)
	TFTP      string // host:port, or "" to run no TFTP server
	Advertise string // IPv4[:port] put in HTTP URLs; "" = the address the request arrived on
	// TFTPAdvertise is the IPv4 address DHCP names as the TFTP server (siaddr/next-server,
	// option 66, and where UEFI PXE sends its port-4011 request); "" = the address of the
	// interface the DHCP request arrived on. For a server behind NAT or with several addresses.
	TFTPAdvertise string
}

// TFTPServer returns the advertised TFTP server address, or the zero Addr when DHCP should name
// the receiving interface's address.
func (l Listen) TFTPServer() netip.Addr {
	a, err := netip.ParseAddr(l.TFTPAdvertise)
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}

// DHCPMode selects how pxewim takes part in DHCP.
type DHCPMode string

const (
	DHCPOff   DHCPMode = "off"   // no DHCP: something else points clients at us
	DHCPProxy DHCPMode = "proxy" // proxy DHCP beside the site's DHCP server (never offers addresses)
	DHCPFull  DHCPMode = "full"  // full DHCP server for an isolated lab network
)

// DHCPConfig is the dhcp: section.
type DHCPConfig struct {
	Mode        DHCPMode
	Interfaces  []string
	Full        *FullDHCP // nil unless the dhcp.full section is present
	RaspberryPi RaspberryPiConfig
	RateLimit   DHCPRateLimit // dhcp.rate_limit (config_ratelimit.go)
	V6          DHCP6Config   // dhcp.v6 (config_dhcp6.go)
}

// RaspberryPiConfig is the dhcp.raspberry_pi section: Raspberry Pi bootloaders get the Pi boot
// menu in option 43 (they ignore boot files and fetch fixed names over TFTP).
type RaspberryPiConfig struct {
	Enabled bool // default true
	// TFTPPrefix is a folder of the TFTP tree that Pi clients see as their root: a Pi 4 asking
	// for SERIAL/start4.elf gets TFTPPrefix/SERIAL/start4.elf. "" = the tree itself.
	TFTPPrefix string
}

// FullDHCP is the address pool and options of full DHCP mode.
type FullDHCP struct {
	RangeStart, RangeEnd netip.Addr
	Netmask              netip.Addr
	Router               netip.Addr // zero: no router option
	DNS                  []netip.Addr
	Lease                time.Duration
	Leases               string // path of the lease database
	Domain               string // option 15; "" = none
	// Options are extra options every client of the pool gets; Reservations give fixed
	// addresses and host names by MAC (config_dhcpopts.go).
	Options      []DHCPOption
	Reservations []Reservation
}

// Prefix returns the pool's network (range start masked by the netmask).
func (f *FullDHCP) Prefix() netip.Prefix {
	p, _ := f.RangeStart.Prefix(maskBits(f.Netmask))
	return p
}

// IPXEConfig names the iPXE binaries handed to clients that do not run iPXE yet.
type IPXEConfig struct {
	Dir      string // folder holding the binaries (Debian: /usr/lib/ipxe)
	BIOS     string // for legacy PXE ROMs (arch 0)
	EFI32    string // for IA32 UEFI PXE (arch 6); "" = not served
	EFI64    string // for x64 UEFI PXE (arch 7, 9)
	HTTPBoot string // for x64 UEFI HTTP Boot (arch 16), fetched over HTTP
}

// Menu is the iPXE menu shown to clients that no rule matches.
type Menu struct {
	Title   string
	Timeout time.Duration // 0 = boot the default at once; WaitForever = wait for a choice
	Default string        // entry name
}

// Entry is one bootable choice. Boot holds the kind-specific part (linux, ipxe, later winpe...).
type Entry struct {
	Name  string
	Title string
	Boot  EntryBoot
	Line  int // line in the config file, for messages
}

// Rule sends matching clients straight to an entry, without the menu.
type Rule struct {
	Match Match
	Entry string
	Line  int
	// DHCPOptions are extra options (full DHCP mode) for the clients the rule matches
	// (config_dhcpopts.go).
	DHCPOptions []DHCPOption
	// SecureBoot overrides secure_boot's mode for the clients the rule matches ("" = the
	// site's; config_secureboot.go).
	SecureBoot SecureBootMode
	// Setup is what a Setup entry's boot.wim holds for the clients the rule matches: unattend,
	// drivers, bypasses (nil: the setup: section's; config_setup.go).
	Setup *RuleSetup
}

// WaitForever as Menu.Timeout (config "timeout: none") shows the menu until someone chooses.
const WaitForever time.Duration = -1

// Defaults used when the config leaves a key out.
const (
	DefaultStore      = "./store"
	DefaultHTTP       = ":8080"
	DefaultTFTP       = ":69"
	DefaultIPXEDir    = "/usr/lib/ipxe"
	DefaultIPXEBIOS   = "undionly.kpxe"
	DefaultIPXEEFI64  = "snponly.efi" // faster than ipxe.efi under OVMF (only the SNP driver)
	DefaultIPXEHTTP   = "snponly.efi" // HTTP Boot too: works under OVMF, 5x smaller than ipxe.efi
	DefaultMenuTitle  = "pxewim"
	DefaultTimeout    = 10 * time.Second
	DefaultLease      = 12 * time.Hour
	DefaultLeasesPath = "/var/lib/pxewim/leases.db"
	maxConfigErrors   = 20
	maxConfigBytes    = 4 << 20
)

// ConfigError is one problem in a config file, located by line and key path.
type ConfigError struct {
	File string
	Line int    // 0 when unknown
	Key  string // e.g. "entries[1].linux.kernel"
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ParseConfig reads a YAML config, applies defaults and validates everything it can check
// without touching the network or the store. name labels error messages. All problems found
// (up to 20) come back joined, each as a *ConfigError naming line and key.
func ParseConfig(name string, data []byte) (*Config, error) {
	cfg, err := ParseConfigAll(name, data) // config_all.go: every section and the cross-check
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func defaultConfig(name string) *Config {
	return &Config{
		Source: name,
		Store:  DefaultStore,
		Listen: Listen{HTTP: DefaultHTTP, TFTP: DefaultTFTP},
		DHCP:   DHCPConfig{Mode: DHCPOff, RaspberryPi: RaspberryPiConfig{Enabled: true}},
		IPXE: IPXEConfig{Dir: DefaultIPXEDir, BIOS: DefaultIPXEBIOS, EFI64: DefaultIPXEEFI64,
			HTTPBoot: DefaultIPXEHTTP},
		Menu:   Menu{Title: DefaultMenuTitle, Timeout: DefaultTimeout},
		Images: ImagesConfig{SyslinuxDir: DefaultSyslinuxDir},
	}
}

// yamlErrLine digs "line N" out of a yaml.v3 syntax error.
func yamlErrLine(err error) int {
	var line int
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		fmt.Sscanf(s[i+5:], "%d", &line)
	}
	return line
}

// Entry finds an entry by name.
func (c *Config) Entry(name string) (*Entry, bool) {
	for i := range c.Entries {
		if c.Entries[i].Name == name {
			return &c.Entries[i], true
		}
	}
	return nil, false
}

// CheckRuntime validates what only makes sense after command-line flags overrode the file:
// DHCP needs interfaces, full mode needs its pool section.
func (c *Config) CheckRuntime() error {
	var errs []error
	if c.DHCP.Mode != DHCPOff && len(c.DHCP.Interfaces) == 0 {
		errs = append(errs, fmt.Errorf("%s: dhcp.interfaces: DHCP mode %q needs at least one interface (dhcp.interfaces or --interface)", c.Source, c.DHCP.Mode))
	}
	if c.DHCP.Mode == DHCPFull && c.DHCP.Full == nil {
		errs = append(errs, fmt.Errorf("%s: dhcp.full: DHCP mode full needs the dhcp.full section (range, netmask, ...)", c.Source))
	}
	if c.Listen.HTTP == "" {
		errs = append(errs, fmt.Errorf("%s: listen.http: required (iPXE scripts and files are served over HTTP)", c.Source))
	}
	return errors.Join(errs...)
}
