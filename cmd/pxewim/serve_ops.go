package main

// The operator side of "pxewim serve": the event hub that the DHCP, TFTP and HTTP servers
// report to, the Prometheus metrics, and the dashboard on the admin listener (admin: in the
// config; loopback by default). The admin section is read at start; a reload keeps it.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/ops"
	"github.com/pxewim/pxewim/ops/metrics"
	"github.com/pxewim/pxewim/ops/web"
	"github.com/pxewim/pxewim/tftp"
)

// activeWindow: a client seen this recently counts as active in the metrics.
const activeWindow = 5 * time.Minute

// opsState is the daemon's dashboard and metrics.
type opsState struct {
	hub     *ops.Hub
	metrics *metrics.Metrics
	admin   boot.AdminConfig
	handler http.Handler   // the dashboard; nil when the admin part is off or failed to set up
	sigs    loaderSigCache // the catalog's boot manager signatures, per snapshot (serve_ops_signatures.go)
}

// newOps builds the hub, the metrics and the dashboard for the daemon's first config.
func (d *daemon) newOps(cfg *boot.Config) (*opsState, error) {
	oui, err := ops.LoadOUI(ops.DefaultOUIPath)
	if err != nil {
		d.log.Debug("no vendor names for MAC addresses (install Debian's ieee-data package)", "error", err)
	}
	o := &opsState{admin: cfg.Admin}
	o.hub = ops.NewHub(ops.Options{Identify: d.clients.LookupIP, OUI: oui, DHCPMode: func() string {
		if st := d.cur.Load(); st != nil && st.cfg != nil {
			return string(st.cfg.DHCP.Mode)
		}
		return ""
	}})
	o.metrics = metrics.New(metrics.Sources{
		Cache:   d.cache.Stats,
		Active:  func() int { return o.hub.Active(activeWindow) },
		Known:   o.hub.Len,
		Verify:  d.verifyStats, // serve_verify.go
		Version: versionString(),
	})
	o.metrics.Registry().MustRegister(metrics.BlobCacheCollector(d.blobStats)) // serve_blobcache.go
	o.metrics.Registry().MustRegister(setupCollector{d.setupStatus})           // serve_smb_ops.go
	password := ""
	if cfg.Admin.Auth() {
		b, err := os.ReadFile(cfg.Admin.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("%s: admin.password_file: %w", cfg.Source, err)
		}
		if password = strings.TrimRight(string(b), "\r\n"); password == "" {
			return nil, fmt.Errorf("%s: admin.password_file %s is empty", cfg.Source, cfg.Admin.PasswordFile)
		}
	}
	catalogRows := func() []web.CatalogRow { return d.setupRows(d.loaderRows(&o.sigs, d.catalogRows())) } // serve_smb_ops.go, serve_ops_signatures.go
	o.handler = web.Handler(web.Options{Hub: o.hub, Catalog: catalogRows, Metrics: o.metrics.Handler(),
		User: cfg.Admin.User, Password: password, Listen: cfg.Admin.ListenAddr(), Version: versionString()})
	return o, nil
}

// withAdmin mounts the dashboard at /admin/ on the boot HTTP server, but only with basic auth:
// that server faces the lab network.
func (o *opsState) withAdmin(boot http.Handler) http.Handler {
	if o == nil || !o.admin.Auth() {
		return boot
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", o.handler))
	mux.Handle("/admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	mux.Handle("/", boot)
	return mux
}

// serveAdmin serves the dashboard and /metrics until ctx ends. A busy default address is
// not fatal (a second pxewim on the machine still boots clients); an address from the config is.
// It returns only when ctx ends or on a fatal error: the daemon stops when any server returns.
func (d *daemon) serveAdmin(ctx context.Context) error {
	addr := d.ops.admin.ListenAddr()
	if addr == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if d.ops.admin.Listen == "" {
			d.log.Warn("dashboard is off: its default address is taken (set admin.listen)", "addr", addr, "error", err)
			<-ctx.Done()
			return nil
		}
		return fmt.Errorf("admin: listening on %s: %w%s", addr, err, bindHint(err, "admin.listen"))
	}
	d.log.Info("dashboard and metrics", "url", "http://"+ln.Addr().String()+"/", "metrics", "http://"+ln.Addr().String()+"/metrics", "auth", d.ops.admin.Auth())
	srv := &http.Server{Handler: d.ops.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		srv.Shutdown(sctx) // event streams never end by themselves: give them a second
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}

// Observers: the hub and the metrics both see every event.

func (o *opsState) dhcpObserver() dhcp.Observer { return dhcpTee{o.hub, o.metrics} }

func (o *opsState) tftpObserver() tftp.Observer { return tftpTee{o.hub, o.metrics.TFTPObserver()} }

func (o *opsState) httpObserver() httpboot.Observer {
	return httpTee{o.hub.HTTPObserver(), o.metrics.HTTPObserver()}
}

type dhcpTee [2]dhcp.Observer

func (t dhcpTee) Exchange(c boot.Client, mt dhcpv4.MessageType, d dhcp.Decision, err error) {
	t[0].Exchange(c, mt, d, err)
	t[1].Exchange(c, mt, d, err)
}

type tftpTee [2]tftp.Observer

func (t tftpTee) TransferStarted(tr *tftp.Transfer) {
	t[0].TransferStarted(tr)
	t[1].TransferStarted(tr)
}
func (t tftpTee) Progress(tr *tftp.Transfer, n int64) {
	t[0].Progress(tr, n)
	t[1].Progress(tr, n)
}
func (t tftpTee) TransferEnded(tr *tftp.Transfer, err error) {
	t[0].TransferEnded(tr, err)
	t[1].TransferEnded(tr, err)
}

type httpTee [2]httpboot.Observer

func (t httpTee) Started(ev httpboot.Event)  { t[0].Started(ev); t[1].Started(ev) }
func (t httpTee) Progress(ev httpboot.Event) { t[0].Progress(ev); t[1].Progress(ev) }
func (t httpTee) Ended(ev httpboot.Event)    { t[0].Ended(ev); t[1].Ended(ev) }

// catalogRows lists the catalog for the dashboard: one row per WIM image with its boot files
// and problems, plus the store's other files (ISOs, loose boot files) as plain rows.
func (d *daemon) catalogRows() []web.CatalogRow {
	st := d.cur.Load()
	if st == nil {
		return nil
	}
	var rows []web.CatalogRow
	seen := map[string]bool{}
	if st.snap != nil {
		for _, f := range st.snap.Files {
			seen[strings.ToLower(f.Path)] = true
			rows = append(rows, fileRows(f)...)
		}
	}
	if st.store.Remote() {
		// A remote store's loose files would cost a walk over SFTP per dashboard refresh;
		// its images and ISOs are in the catalog rows above.
		return rows
	}
	return append(rows, storeFileRows(st.store.FS(), seen)...)
}

func fileRows(f catalog.File) []web.CatalogRow {
	codec := f.Compression
	if f.Solid {
		codec += " (solid)"
	}
	// Problems stop clients; notes (Problem.Info) are worth knowing but clients boot: they are
	// listed apart, and the page styles them apart.
	var fileProblems, fileNotes []string
	byIndex, notesByIndex := map[int][]string{}, map[int][]string{}
	for _, p := range f.Problems {
		s := p.What + ": " + p.Fix
		switch {
		case p.Info && p.Index > 0:
			notesByIndex[p.Index] = append(notesByIndex[p.Index], s)
		case p.Info:
			fileNotes = append(fileNotes, s)
		case p.Index > 0:
			byIndex[p.Index] = append(byIndex[p.Index], s)
		default:
			fileProblems = append(fileProblems, s)
		}
	}
	if len(f.Images) == 0 {
		return []web.CatalogRow{{File: f.Path, Codec: codec, Size: f.Size, Problems: fileProblems, Notes: fileNotes}}
	}
	var rows []web.CatalogRow
	for _, im := range f.Images {
		r := web.CatalogRow{File: f.Path, Index: im.Index, Name: im.Name, Arch: im.ArchName, Codec: codec,
			Size: f.Size, WindowsPE: im.WindowsPE(), Problems: append(slices.Clone(fileProblems), byIndex[im.Index]...),
			Notes: append(slices.Clone(fileNotes), notesByIndex[im.Index]...)}
		for _, fw := range []catalog.Firmware{catalog.BIOS, catalog.UEFI} {
			bf, ok := im.Boot[fw]
			if !ok {
				continue
			}
			var have []string
			for _, role := range []catalog.Role{catalog.RoleNBP, catalog.RoleBootmgr, catalog.RoleBootmgrEX, catalog.RoleBCD, catalog.RoleSDI, catalog.RoleSTL} {
				if p, ok := bf.Files[role]; ok {
					have = append(have, filepath.Base(p))
				}
			}
			s := fw.String() + ": " + strings.Join(have, ", ")
			if len(bf.Missing) > 0 {
				s += fmt.Sprintf(" (missing %v)", bf.Missing)
			}
			r.BootFiles = append(r.BootFiles, s)
		}
		rows = append(rows, r)
	}
	return rows
}

// storeFileRows lists the store's files the catalog does not describe (bounded: a huge store
// shows its first maxStoreRows files).
func storeFileRows(store fs.FS, seen map[string]bool) []web.CatalogRow {
	const maxStoreRows = 500
	var rows []web.CatalogRow
	fs.WalkDir(store, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || len(rows) >= maxStoreRows {
			return fs.SkipDir
		}
		if e.IsDir() {
			if p != "." && strings.HasPrefix(e.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if seen[strings.ToLower(p)] || !e.Type().IsRegular() {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		rows = append(rows, web.CatalogRow{File: p, Size: fi.Size(), Codec: strings.TrimPrefix(path.Ext(p), ".")})
		return nil
	})
	return rows
}
