package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/imagestore"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
	"github.com/pxewim/pxewim/winpe"
)

// Daemon tuning.
const (
	drainTimeout     = 30 * time.Second // SIGTERM: how long in-flight transfers may finish
	configPollPeriod = 2 * time.Second  // how often the config file's mtime is checked
	// XPRESS transcodes (winpe.transcode: xpress): compressed chunks and every blob's chunk
	// sizes, kept across reloads so an image is compressed once.
	transcodeCacheBytes = 64 << 20
)

// state is one loaded configuration: swapped as a whole on reload, never modified. Requests
// load it once at their start, so a transfer in progress keeps the files it opened.
type state struct {
	cfg    *boot.Config      // with the entries made from the catalog (winpe.auto)
	base   *boot.Config      // as loaded, before the catalog's entries
	policy *boot.Policy      // bound to winpe
	winpe  *winpe.Set        // the WinPE library bound to policy's entries: their trees and files
	store  *imagestore.Store // local folder or sftp:// URL
	snap   *catalog.Snapshot // nil when the store could not be scanned
	// setupVars are the per-rule and per-client variants of Setup entries (serve_smb_clients.go).
	setupVars *setupVariants
}

// daemon is a running "pxewim serve".
type daemon struct {
	flags *serveFlags
	log   *slog.Logger
	cache *wim.Cache
	// winpe holds the opened WinPE sources across reloads and catalog changes; every state
	// binds its winpe entries to it (buildState).
	winpe   *winpe.Library
	clients *boot.Registry
	cur     atomic.Pointer[state]
	ops     *opsState // dashboard, trace and metrics (serve_ops.go)

	reloadMu   sync.Mutex
	configStat os.FileInfo // of the config file when last loaded

	catalog *catalog.Watcher // the store's images; follows the store on reload (serve_catalog.go)
	// verifier verifies the local store's WIMs in the background (serve_verify.go); set on
	// the first load of a local store, read by /metrics scrapes.
	verifier atomic.Pointer[localstore.Verifier]

	// Listeners opened before serving, so bind errors surface at start; a reload replaces them
	// (serve_listen.go). Guarded by reloadMu once run has started.
	httpSlot *listenerSlot
	tftpSlot *listenerSlot // nil: no TFTP server
	tftpConn *net.UDPConn  // tftpSlot's socket (nil when TFTP is off), for tests
	tftpAddr string        // listen.tftp in effect (TFTP may be off even when set: see listenTFTP)
	dhcpSrv  *dhcp.Server  // always there, in mode off when DHCP is off, so a reload can turn it on
	// dhcpApplied is dhcpSettings of the config dhcpSrv runs.
	dhcpApplied string
	dhcp6       dhcp6State // DHCPv6 (serve_dhcp6.go)
	srv         servers    // set by run

	blobs blobState // the decoded-blob cache (serve_blobcache.go)

	// setup is the Windows Setup share (serve_smb.go).
	setup setupState
}

func newDaemon(f *serveFlags, log *slog.Logger) (*daemon, error) {
	d := &daemon{flags: f, log: log, cache: wim.NewCache(boot.DefaultChunkCache), clients: boot.NewRegistry(0, 0)}
	d.winpe = winpe.NewLibrary(winpe.Options{Chunks: d.cache, Transcode: wimsynth.NewChunkCache(transcodeCacheBytes)})
	d.clients.SetLogger(log.With("component", "clients"))
	st, err := d.load()
	if err != nil {
		return nil, err
	}
	d.install(st)
	if d.ops, err = d.newOps(st.cfg); err != nil {
		return nil, err
	}
	if err := d.listen(st.cfg); err != nil {
		d.closeListeners()
		return nil, err
	}
	return d, nil
}

// load reads, validates and opens one configuration.
func (d *daemon) load() (*state, error) {
	var fi os.FileInfo
	if d.flags.config != "" {
		fi, _ = os.Stat(d.flags.config)
	}
	cfg, err := d.flags.loadConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Source == defaultConfigName && !d.flags.set["store"] {
		// The built-in config serves ./store: make it on first run so "pxewim serve" just works.
		if _, err := os.Stat(cfg.Store); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(cfg.Store, 0o755); err == nil {
				d.log.Info("created an empty store folder: put WIM, ISO and boot files in it", "store", cfg.Store)
			}
		}
	}
	ipxeDir := cfg.IPXE.Dir
	if _, err := os.Stat(ipxeDir); err != nil {
		d.log.Warn("iPXE binaries folder missing: stock PXE clients cannot chainload iPXE (install Debian's ipxe package or set ipxe.dir)", "dir", ipxeDir, "error", err)
		ipxeDir = ""
	}
	var prev *imagestore.Store
	if cur := d.cur.Load(); cur != nil {
		prev = cur.store
	}
	sc := storeConfig(cfg, d.syslinuxDir(cfg), ipxeDir, d.cache, d.log)
	if !cfg.RemoteStore() {
		sc.Local.Verifier = d.wimVerifier(cfg) // serve_verify.go
	}
	sc.Local.Blobs = d.blobCache(cfg) // serve_blobcache.go
	st, err := imagestore.Open(context.Background(), sc, prev)
	if err != nil {
		return nil, fmt.Errorf("%s: store: %w", cfg.Source, err)
	}
	ns, err := d.withCatalog(cfg, st)
	if err != nil {
		st.Discard(prev) // a connection made for a config that is refused is closed
		return nil, err
	}
	d.configStat = fi
	return ns, nil
}

// listen opens the HTTP, TFTP and DHCP sockets of the initial config.
func (d *daemon) listen(cfg *boot.Config) error {
	var err error
	if d.httpSlot, err = d.listenHTTP(cfg.Listen.HTTP); err != nil {
		return err
	}
	d.tftpAddr = cfg.Listen.TFTP
	if cfg.Listen.TFTP != "" {
		if err := d.listenTFTP(cfg); err != nil {
			return err
		}
	}
	dc := d.dhcpConfig(cfg)
	d.dhcpApplied = dhcpSettings(dc)
	if d.dhcpSrv, err = dhcp.New(dc); err != nil {
		hint := "" // the dhcp package explains a busy port itself, naming the owner
		if errors.Is(err, syscall.EACCES) {
			hint = bindHint(err, "--dhcp off")
		}
		return fmt.Errorf("DHCP (%s mode): %w%s", cfg.DHCP.Mode, err, hint)
	}
	return d.listenDHCP6(cfg) // serve_dhcp6.go
}

// listenTFTP binds the TFTP port. With the built-in config a refused port 69 (not root) is not
// fatal: HTTP still works, and the log says how to get TFTP.
func (d *daemon) listenTFTP(cfg *boot.Config) error {
	var err error
	if d.tftpSlot, err = d.listenUDP(cfg.Listen.TFTP); err == nil {
		d.tftpConn = d.tftpSlot.udp
		return nil
	}
	if errors.Is(err, syscall.EACCES) && !d.flags.set["tftp"] && cfg.Source == defaultConfigName {
		d.log.Warn("TFTP is off: port 69 needs root or CAP_NET_BIND_SERVICE; run as root, or pass --tftp :6969 (PXE ROMs only use 69)",
			"addr", cfg.Listen.TFTP, "error", err)
		return nil
	}
	return err
}

// bindHint explains the usual reasons a port cannot be bound.
func bindHint(err error, flagName string) string {
	switch {
	case errors.Is(err, syscall.EACCES):
		return fmt.Sprintf(" (ports below 1024 need root or CAP_NET_BIND_SERVICE; or choose another with %s)", flagName)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Sprintf(" (another server already uses it: stop it, or see %s)", flagName)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return " (no interface has that address)"
	}
	return ""
}

func (d *daemon) closeListeners() {
	d.retire(d.httpSlot)
	d.retire(d.tftpSlot)
	if d.dhcpSrv != nil {
		d.dhcpSrv.Close()
	}
	d.closeDHCP6()
}

// dhcpMode is the mode the DHCP servers run in for a config's mode (one type, boot.DHCPMode;
// a section left out of the config counts as off).
func dhcpMode(m boot.DHCPMode) dhcp.Mode {
	if m == "" {
		return dhcp.ModeOff
	}
	return m
}

// run serves until ctx ends, then drains: HTTP and TFTP stop accepting and let transfers in
// progress finish for up to drainTimeout.
func (d *daemon) run(ctx context.Context) error {
	mctx, mstop := context.WithCancel(ctx)
	var mwg sync.WaitGroup
	mwg.Go(func() { d.limitMemory(mctx) }) // serve_memlimit.go
	defer func() { mstop(); mwg.Wait() }()
	st := d.cur.Load()
	d.announce(st.cfg)
	d.logProblems(st)

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	// Servers run on their own context: a fatal error of one stops the others.
	sctx, stop := context.WithCancel(ctx)
	defer stop()

	d.reloadMu.Lock()
	d.srv = servers{ctx: sctx, wg: &wg, errc: errc, httpH: d.ops.withAdmin(d.httpHandler())}
	err := d.start(d.httpSlot)
	if err == nil && d.tftpSlot != nil {
		err = d.start(d.tftpSlot)
	}
	d.reloadMu.Unlock()
	if err != nil {
		stop()
		d.closeListeners()
		wg.Wait()
		return err
	}
	wg.Go(func() { errc <- d.serveAdmin(sctx) })
	wg.Go(func() { errc <- d.serveUpload(sctx) }) // serve_images.go
	// The Windows Setup share: serve_smb.go.
	wg.Go(func() { errc <- d.serveSetup(sctx, st.cfg) })
	wg.Go(func() { errc <- d.dhcpSrv.Serve(sctx) })
	wg.Go(func() { errc <- d.serveDHCP6(sctx) })
	wg.Go(func() { d.watchConfig(sctx) })
	if d.catalog != nil {
		wg.Go(func() { d.catalog.Run(sctx) })
		wg.Go(func() { d.watchCatalog(sctx) })
	}

	var first error
	go func() { wg.Wait(); close(errc) }()
	for err := range errc {
		if err != nil && first == nil && sctx.Err() == nil {
			first = err
			d.log.Error("server failed, stopping", "error", err)
		}
		if err != nil && sctx.Err() != nil && !errors.Is(err, context.Canceled) {
			d.log.Warn("during shutdown", "error", err)
		}
		stop()
	}
	d.cur.Load().winpe.Retire()
	d.cur.Load().store.Close()
	if v := d.verifier.Load(); v != nil {
		v.Close()
	}
	if first != nil {
		return first
	}
	d.log.Info("pxewim stopped")
	return nil
}

// announce logs what is being served and, with DHCP off, how to turn it on.
func (d *daemon) announce(cfg *boot.Config) {
	tftpAddr := "off"
	if d.tftpSlot != nil {
		tftpAddr = d.tftpSlot.local
	}
	d.log.Info("pxewim serving", "config", cfg.Source, "store", cfg.Store, "http", d.httpSlot.local,
		"tftp", tftpAddr, "dhcp", string(cfg.DHCP.Mode), "interfaces", cfg.DHCP.Interfaces, "entries", len(cfg.Entries))
	if cfg.DHCP.Mode == boot.DHCPOff && len(cfg.DHCP.Interfaces) > 0 {
		d.log.Warn("interfaces are named but DHCP is off: they are used only with --dhcp proxy or full", "interfaces", cfg.DHCP.Interfaces)
	}
	if cfg.DHCP.Mode == boot.DHCPOff {
		d.log.Info("DHCP is off: to answer PXE clients beside your DHCP server, add --dhcp proxy --interface IFACE (or --dhcp full on an isolated lab network)")
	}
}

// decide is the DHCP policy: remember the client, ask the current config.
func (d *daemon) decide(ctx context.Context, c boot.Client, server netip.Addr) (dhcp.Decision, error) {
	d.clients.Observe(c)
	dec := d.cur.Load().policy.Decide(c, server)
	d.log.Info("dhcp decision", "mac", c.MAC.String(), "arch", c.Arch, "firmware", c.Firmware.String(),
		"ipxe", c.IPXE, "httpboot", c.HTTPBoot, "file", dec.BootFile, "bcd", dec.BCDPath, "noboot", dec.NoBoot, "reason", dec.Reason)
	return dec, nil
}

// tftpResolve gives a TFTP client its tree; who it is comes from DHCP (by IP, or the kernel's
// neighbour table).
func (d *daemon) tftpResolve(ctx context.Context, remote netip.AddrPort, local netip.Addr) (fs.FS, error) {
	st := d.cur.Load()
	c, _ := d.clients.LookupIP(remote.Addr())
	tree, err := st.winpe.Tree(c)
	if err != nil {
		return nil, err
	}
	tree = d.setupClientTree(st, c, tree)       // serve_smb_clients.go
	tree = d.secureBootTree(st, c, local, tree) // serve_secureboot.go
	return raspberryPiTree(st.cfg, c, tree)
}

func (d *daemon) httpHandler() http.Handler {
	return httpboot.NewHandler(httpboot.Config{
		Resolve: func(r *http.Request, ci httpboot.ClientInfo) (fs.FS, error) {
			st := d.cur.Load()
			c := d.withDHCPFacts(ci)
			tree, err := st.winpe.Tree(c)
			if err != nil {
				return nil, err
			}
			tree = d.setupClientTree(st, c, tree)                               // serve_smb_clients.go
			return d.secureBootTree(st, c, localAddrOf(r.Context()), tree), nil // serve_secureboot.go
		},
		Script:   d.script,
		Clients:  d.clients,
		Logger:   d.log,
		Observer: d.ops.httpObserver(),
	})
}

// script renders an iPXE script. File URLs point at the address the request came in on,
// unless listen.advertise says otherwise.
func (d *daemon) script(ctx context.Context, ci httpboot.ClientInfo, name string) (string, error) {
	if len(ci.MAC) > 0 && ci.IP.IsValid() {
		d.clients.LearnIP(ci.MAC, ci.IP)
	}
	c := d.withDHCPFacts(ci)
	st := d.cur.Load()
	var local netip.Addr
	if la, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			local = ap.Addr().Unmap()
		}
	}
	base := st.policy.HTTPBase(local)
	tree, err := st.winpe.Tree(c)
	if err != nil {
		return "", err
	}
	// Not setupClientTree: a Setup variant's files have the entry's URLs (served WIMs get plain
	// /files/ URLs, image files are the same in every variant), and a menu shown to a client
	// must not make it an SMB account; fetching the entry's files does (serve_smb_clients.go).
	url := func(r boot.Ref) (string, error) { return httpboot.URL(tree, base, r.String()) }
	warn := func(err error) {
		d.log.Warn("menu entry cannot boot", "mac", ci.MACString(), "error", err)
	}
	return st.policy.Script(c, name, url, warn)
}

// withDHCPFacts completes what the HTTP request says about a client (its MAC, from ?mac=)
// with what DHCP learned about that MAC (UUID, firmware), so that UUID and arch rules hold
// even when the handler could not match the request's IP to a DHCP exchange.
func (d *daemon) withDHCPFacts(ci httpboot.ClientInfo) boot.Client {
	c := ci.Client
	if ci.FromDHCP || len(c.MAC) == 0 {
		return c
	}
	known, ok := d.clients.LookupMAC(c.MAC)
	if !ok {
		return c
	}
	if c.UUID == "" {
		c.UUID = known.UUID
	}
	c.Arch, c.Firmware, c.HTTPBoot, c.IPXE, c.Interface = known.Arch, known.Firmware, known.HTTPBoot, known.IPXE, known.Interface
	return c
}
