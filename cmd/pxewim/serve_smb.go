package main

// Network Windows Setup (the setup: section, issue 14). Every Windows ISO of the store (an ISO
// with sources/boot.wim whose image 2 is WindowsPE, and sources/install.wim, .esd or a split
// .swm set) appears as one folder of a read-only SMB share; its Setup entry (boot.wim index 2)
// is served with a startnet.cmd and winpeshl.ini injected that map the share with credentials
// pxewim generated and run that folder's setup.exe (package winsetup).
//
// The share is Samba's smbd run as a child (package smbshare, its config and passdb in
// STATE/smb), sharing a FUSE view of the store (package storefuse, mounted at
// STATE/setup-view): ISOs are read in place through the store's own files (local or sftp://,
// io.ReaderAt, package iso), so nothing is extracted, no second copy is written and there is
// no disk budget to manage. Credentials: one account ("pxewim"), its password generated at
// each start of the daemon (24 random letters and digits), mapped to one system user
// (setup.unix_user, default nobody) because Samba's passdb wants a Unix user per password. They
// are written only into smbd's passdb (through smbpasswd's stdin) and into the served
// boot.wim's startnet.cmd; never into a log, a URL or a command line of ours.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/iso"
	"github.com/pxewim/pxewim/smbshare"
	"github.com/pxewim/pxewim/storefuse"
	"github.com/pxewim/pxewim/winsetup"
)

const (
	setupShareName = "pxewim-setup"
	setupAccount   = "pxewim"
	// Where injected extras go inside the served boot.wim (X:\pxewim\... in WinPE).
	setupUnattendPath = "pxewim/unattend.xml"
	setupDriversPath  = "pxewim/drivers"
)

// setupState is the daemon's Setup share: decided once at start (mode, availability, the
// password), the view updated with every serving state, smbd and the mount run by serveSetup.
type setupState struct {
	once     sync.Once
	enabled  bool   // the share runs (or will, once a Setup ISO is in the store)
	why      string // why it is off, for logs and check
	password string
	// perClient: setup.credentials per_client (decided at start): one account per client MAC,
	// made when the client first fetches a Setup entry's files (serve_smb_clients.go).
	perClient bool
	clients   setupClients
	view      setupView
	kick      chan struct{} // a Setup ISO appeared: serveSetup may start
	logged    sync.Map      // messages logged once

	server atomic.Pointer[smbshare.Server]
	mount  atomic.Pointer[storefuse.Mount]
	err    atomic.Pointer[string] // last start error
}

// setupMedia is one Windows ISO of the store offered by the share.
type setupMedia struct {
	ISO    string // store path of the ISO
	Boot   string // store path of its boot.wim (ISO/sources/boot.wim)
	Folder string // the share folder (a safe name made from the ISO's file name)
	Size   int64
	Mod    time.Time
}

// setupAvailable reports why the share cannot run here ("" when it can).
func setupAvailable() string {
	if _, err := smbshare.Find(); err != nil {
		return err.Error()
	}
	if err := storefuse.Available(); err != nil {
		return err.Error()
	}
	return ""
}

// init decides, once per daemon, whether the share runs, and makes the password.
func (s *setupState) init(cfg *boot.Config, log *slog.Logger) {
	s.once.Do(func() {
		s.kick = make(chan struct{}, 1)
		mode := cfg.Setup.SetupMode()
		switch {
		case mode == boot.SetupOff:
			s.why = "setup.share is off"
		default:
			s.why = setupAvailable()
		}
		s.enabled = s.why == ""
		if !s.enabled && mode == boot.SetupOn {
			log.Error("setup: the Windows Setup share cannot run; Setup entries boot without it", "reason", s.why)
		}
		s.perClient = cfg.Setup.CredentialsMode() == boot.CredentialsPerClient
		if s.enabled && s.perClient {
			if _, err := smbshare.FindNSSWrapper(); err != nil {
				s.why, s.enabled = err.Error(), false
				log.Error("setup: per-client credentials need nss_wrapper; Setup entries boot without the share", "reason", s.why)
			}
		}
		if s.enabled {
			s.password = randomPassword(24)
		}
	})
}

func randomPassword(n int) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, n)
	buf := make([]byte, 1)
	for i := range b {
		for {
			rand.Read(buf)
			if int(buf[0]) < 256-256%len(alphabet) { // no modulo bias
				b[i] = alphabet[int(buf[0])%len(alphabet)]
				break
			}
		}
	}
	return string(b)
}

func (s *setupState) logOnce(log *slog.Logger, key, msg string, args ...any) {
	if _, seen := s.logged.LoadOrStore(key, true); !seen {
		log.Warn(msg, args...)
	}
}

// findSetupMedia lists the Windows ISOs of snap: boot.wim in the ISO's sources folder with
// a WindowsPE image 2, and an install image beside it (install.wim, .esd or .swm).
func findSetupMedia(snap *catalog.Snapshot, store fs.FS) []setupMedia {
	if snap == nil {
		return nil
	}
	var out []setupMedia
	used := map[string]bool{}
	for i := range snap.Files {
		f := &snap.Files[i]
		if f.In == "" || !strings.EqualFold(f.Path, f.In+"/sources/boot.wim") {
			continue
		}
		pe2 := false
		for _, im := range f.Images {
			if im.Index == 2 && im.WindowsPE() {
				pe2 = true
			}
		}
		if !pe2 || !hasInstallImage(store, f.In) {
			continue
		}
		isoFile, ok := snap.File(f.In)
		m := setupMedia{ISO: f.In, Boot: f.Path, Folder: shareFolderName(f.In, used)}
		if ok {
			m.Size, m.Mod = isoFile.Size, isoFile.ModTime
		}
		out = append(out, m)
	}
	return out
}

func hasInstallImage(store fs.FS, isoPath string) bool {
	ents, err := fs.ReadDir(store, isoPath+"/sources")
	if err != nil {
		return false
	}
	for _, e := range ents {
		n := strings.ToLower(e.Name())
		if !e.IsDir() && (n == "install.wim" || n == "install.esd" || n == "install.swm") {
			return true
		}
	}
	return false
}

// shareFolderName makes the folder name of an ISO: its file name without .iso, every character
// outside A-Z a-z 0-9 . _ - replaced by _, at most 64 bytes, unique (case-insensitively) by a
// -2, -3... suffix. The name is ours, so what the store calls the ISO never reaches cmd or
// Samba as is.
func shareFolderName(isoPath string, used map[string]bool) string {
	base := path.Base(isoPath)
	if i := strings.LastIndex(strings.ToLower(base), ".iso"); i > 0 {
		base = base[:i]
	}
	var b strings.Builder
	for _, c := range base {
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	name := strings.Trim(b.String(), ". ")
	if len(name) > 56 {
		name = name[:56]
	}
	if name == "" {
		name = "media"
	}
	cand := name
	for n := 2; used[strings.ToLower(cand)]; n++ {
		cand = fmt.Sprintf("%s-%d", name, n)
	}
	used[strings.ToLower(cand)] = true
	return cand
}

// setupAddr is the address WinPE maps the share from: setup.advertise, else listen.advertise,
// else listen.http's address, else setup.listen.
func setupAddr(cfg *boot.Config) netip.Addr {
	if cfg.Setup.Advertise.IsValid() {
		return cfg.Setup.Advertise
	}
	for _, hp := range []string{cfg.Listen.Advertise, cfg.Listen.HTTP} {
		host := hp
		if h, _, err := splitHostPortLoose(hp); err == nil {
			host = h
		}
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() && !a.IsLoopback() {
			return a
		}
	}
	if a := cfg.Setup.Listen; a.IsValid() && !a.IsUnspecified() {
		return a
	}
	return netip.Addr{}
}

func splitHostPortLoose(hp string) (string, string, error) {
	if ap, err := netip.ParseAddrPort(hp); err == nil {
		return ap.Addr().String(), fmt.Sprint(ap.Port()), nil
	}
	if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		return strings.Trim(hp[:i], "[]"), hp[i+1:], nil
	}
	return hp, "", nil
}

// withSetup updates the share's view with the Windows ISOs of snap and returns cfg with their
// Setup entries (winpe entries booting ISO/sources/boot.wim image 2) given the network Setup
// injections, and the variants of those entries that some clients get instead (per rule,
// per client: serve_smb_clients.go). cfg is the effective config of a new state (WithCatalog's
// copy): its Entries slice is its own, the entries' boot specs are copied before they are
// changed.
func (d *daemon) withSetup(cfg *boot.Config, st storeFS, snap *catalog.Snapshot) (*boot.Config, *setupVariants) {
	s := &d.setup
	s.init(cfg, d.log)
	if !s.enabled || st == nil {
		return cfg, nil
	}
	media := findSetupMedia(snap, st)
	s.view.update(st, media, d.log)
	if len(media) == 0 {
		return cfg, nil
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	addr := setupAddr(cfg)
	if !addr.IsValid() {
		s.logOnce(d.log, "noaddr", "setup: no address for WinPE to reach the share: set setup.advertise (or listen.advertise); Setup entries boot without the share")
		return cfg, nil
	}
	byBoot := map[string]setupMedia{}
	for _, m := range media {
		byBoot[strings.ToLower(m.Boot)] = m
	}
	vars := newSetupVariants(cfg)
	for i, e := range cfg.Entries {
		w, ok := e.Boot.(*boot.WinPEBoot)
		if !ok {
			continue
		}
		m, ok := byBoot[strings.ToLower(w.Image)]
		if !ok || (w.Index != 2 && w.Index != 0) {
			continue
		}
		if w.Index == 0 {
			if f, ok := snap.File(w.Image); !ok {
				continue
			} else if idx, _ := f.DefaultPEIndex(); idx != 2 {
				continue
			}
		}
		if _, _, _, off := cfg.Setup.ForISO(m.ISO); off {
			continue
		}
		vars.addEntry(d, cfg, st, e.Name, w, m, addr)
		if s.perClient {
			continue // no credentials for a client pxewim cannot tell apart: the stock Setup
		}
		inj, err := setupInjections(cfg, st, m, addr, setupCreds{User: setupAccount, Password: s.password}, nil)
		if err != nil {
			s.logOnce(d.log, "inj:"+m.ISO+err.Error(), "setup: this ISO's Setup entry boots without the share", "iso", m.ISO, "entry", e.Name, "error", err)
			continue
		}
		nw := *w
		nw.Inject = append(slices.Clone(w.Inject), inj...)
		cfg.Entries[i].Boot = &nw
	}
	return cfg, vars
}

// storeFS is what withSetup needs of the store: files by path (io.ReaderAt), folders listed.
type storeFS = fs.FS

// setupCreds is one SMB account as a startnet.cmd names it.
type setupCreds struct{ User, Password string }

// setupInjections builds the files injected into one ISO's Setup entry for a client whose
// rule has setup: r (nil: none). Errors about a store path name the config key (and, for a
// rule, file:line) that gave it.
func setupInjections(cfg *boot.Config, store fs.FS, m setupMedia, addr netip.Addr, cr setupCreds, r *boot.RuleSetup) ([]boot.Injection, error) {
	drivers, unattend, bypass, off := cfg.Setup.For(m.ISO, r)
	if off {
		return nil, nil
	}
	where := func(key string, line int, value string) string {
		if r != nil {
			own := r.Unattend
			if key == "drivers" {
				own = r.Drivers
			}
			if own == value {
				return fmt.Sprintf("%s:%d: %s.%s", cfg.Source, line, r.Key, key)
			}
		}
		return "setup." + key + " (or setup.media)"
	}
	p := winsetup.Params{Server: addr, Share: setupShareName, Folder: m.Folder, User: cr.User,
		Password: cr.Password, BypassWin11Checks: bypass}
	var inj []boot.Injection
	if unattend != "" {
		if fi, err := fs.Stat(store, unattend); err != nil || fi.IsDir() {
			line := 0
			if r != nil {
				line = r.UnattendLine
			}
			return nil, fmt.Errorf("%s: %s: not a file of the store", where("unattend", line, unattend), unattend)
		}
		inj = append(inj, boot.Injection{Path: setupUnattendPath, File: boot.Ref{Path: unattend}})
		p.Unattend = `X:\` + strings.ReplaceAll(setupUnattendPath, "/", `\`)
	}
	if drivers != "" {
		var infs []string
		err := fs.WalkDir(store, drivers, func(name string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !de.IsDir() && strings.HasSuffix(strings.ToLower(name), ".inf") {
				rel := strings.TrimPrefix(name, drivers+"/")
				infs = append(infs, `X:\`+strings.ReplaceAll(setupDriversPath+"/"+rel, "/", `\`))
			}
			return nil
		})
		if err != nil {
			line := 0
			if r != nil {
				line = r.DriversLine
			}
			return nil, fmt.Errorf("%s: %w", where("drivers", line, drivers), err)
		}
		sort.Strings(infs)
		p.Drivers = infs
		inj = append(inj, boot.Injection{Path: setupDriversPath, File: boot.Ref{Path: drivers}})
	}
	script, err := winsetup.Startnet(p)
	if err != nil {
		return nil, err
	}
	inj = append(inj,
		boot.Injection{Path: winsetup.StartnetPath, Data: script, Generated: true},
		boot.Injection{Path: winsetup.WinpeshlPath, Data: winsetup.Winpeshl(), Generated: true})
	return inj, nil
}

// serveSetup runs the share until ctx ends: once a Setup ISO is in the store it mounts the
// view and starts smbd. A failure to start is logged and kept for Status; the boot servers go
// on (Setup entries then wait for the share in WinPE, retrying for five minutes).
func (d *daemon) serveSetup(ctx context.Context, cfg *boot.Config) error {
	err := d.runSetup(ctx, cfg)
	// run stops every server when any returns: a share that is off, or could not start,
	// waits for the end like the others (its state is on the dashboard and /metrics).
	<-ctx.Done()
	return err
}

func (d *daemon) runSetup(ctx context.Context, cfg *boot.Config) error {
	s := &d.setup
	s.init(cfg, d.log)
	if !s.enabled {
		if cfg.Setup.SetupMode() != boot.SetupOff {
			d.log.Info("setup: no Windows Setup share", "reason", s.why)
		}
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case <-s.kick:
	}
	dir := stateDir(cfg)
	fail := func(err error) error {
		msg := err.Error()
		s.err.Store(&msg)
		d.log.Error("setup: the Windows Setup share is not running", "error", err)
		return nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		// The default state folder is used only if it exists (README); the share needs one.
		return fail(fmt.Errorf("the share needs a state folder for smbd's config and the store view: create %s or set state_dir", dir))
	}
	// smbd reads the view as the share's unix user: every folder above it must let that user in.
	for p := filepath.Clean(absPath(dir)); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			d.log.Warn("setup: a folder above the share's view is closed to other users: smbd (as setup.unix_user) cannot read the share; chmod o+x it or move state_dir",
				"folder", p, "mode", fi.Mode().Perm().String())
		}
		if p == "/" || p == "." {
			break
		}
	}
	m, err := storefuse.New(ctx, filepath.Join(dir, "setup-view"), &s.view, storefuse.Options{Name: "pxewim-setup", Logger: d.log})
	if err != nil {
		return fail(err)
	}
	s.mount.Store(m)
	defer m.Close()
	var addrs []netip.Addr
	if cfg.Setup.Listen.IsValid() && !cfg.Setup.Listen.IsUnspecified() {
		addrs = []netip.Addr{cfg.Setup.Listen}
	}
	scfg := smbshare.Config{
		Dir:    filepath.Join(dir, "smb"),
		Port:   cfg.Setup.SetupPort(),
		Addrs:  addrs,
		Shares: []smbshare.Share{{Name: setupShareName, Path: m.Dir(), Comment: "pxewim Windows Setup media"}},
		Logger: d.log,
	}
	if s.perClient {
		pu, err := privateUsers(cfg.Setup.SetupUnixUser())
		if err != nil {
			return fail(err)
		}
		scfg.Private = pu
	} else {
		scfg.Accounts = []smbshare.Account{{Name: setupAccount, User: cfg.Setup.SetupUnixUser(), Password: s.password}}
	}
	srv, err := smbshare.Start(ctx, scfg)
	if srv != nil {
		s.clients.serverStarted(ctx, srv, d.log)
		s.server.Store(srv)
	}
	if err != nil {
		fail(err)
		if srv == nil {
			return nil
		}
	} else {
		d.log.Info("setup: Windows Setup share running", "share", `\\`+setupAddr(cfg).String()+`\`+setupShareName, "port", cfg.Setup.SetupPort(), "media", len(s.view.names()))
	}
	if s.perClient {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-tick.C:
				d.sweepSetupVariants() // serve_smb_clients.go
			}
		}
	}
	<-ctx.Done()
	<-srv.Done()
	return nil
}

// setupStatus is the share's state for /metrics and the dashboard.
type setupStatus struct {
	Enabled bool
	Why     string // why it is off
	Media   []string
	Damaged []string // FOLDER/path of the share's WIMs that failed verification (serve_smb_verify.go)
	smbshare.Status
	LastStartError string
	Accounts       int // SMB accounts smbd accepts (1 per boot; one per known client per client)
}

func (d *daemon) setupStatus() setupStatus {
	s := &d.setup
	st := setupStatus{Enabled: s.enabled, Why: s.why, Media: s.view.names(), Damaged: s.view.damaged()}
	if srv := s.server.Load(); srv != nil {
		st.Status = srv.Status()
		st.Accounts = len(srv.Accounts())
	}
	if e := s.err.Load(); e != nil {
		st.LastStartError = *e
	}
	return st
}

// setupView is the share's file tree: one folder per Windows ISO (setupMedia.Folder), each the
// ISO's own tree read in place (package iso over the store file's io.ReaderAt). It is updated
// with each serving state; ISOs that did not change keep their open tree.
type setupView struct {
	cur atomic.Pointer[viewMap]
	mu  sync.Mutex // update
}

type viewMap struct {
	byName map[string]*viewISO // lower-case folder name
	order  []string            // folder names as shown
	mod    time.Time
}

type viewISO struct {
	media setupMedia
	store string     // the store's location (a reload to another folder or URL opens ISOs again)
	h     *isoHandle // shared by the views that show this version of the ISO
}

// isoHandle is one opened ISO: its tree and the store file it reads. Files opened in it hold
// it; once no view shows it (the ISO was replaced or removed), it closes with the last of them,
// so a Setup reading install.wim when the ISO is replaced goes on with the bytes it started on.
type isoHandle struct {
	fs     *iso.FS
	file   fs.File
	verify *isoVerification // WIMs verified before they are read (remote stores; serve_smb_verify.go)

	mu      sync.Mutex
	refs    int
	retired bool
}

func (h *isoHandle) acquire() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.retired && h.refs == 0 {
		return false // closed
	}
	h.refs++
	return true
}

func (h *isoHandle) release() {
	h.mu.Lock()
	h.refs--
	closeNow := h.retired && h.refs == 0
	h.mu.Unlock()
	if closeNow {
		h.file.Close()
	}
}

func (h *isoHandle) retire() {
	h.verify.retire()
	h.mu.Lock()
	h.retired = true
	closeNow := h.refs == 0
	h.mu.Unlock()
	if closeNow {
		h.file.Close()
	}
}

// open opens name inside the ISO, holding the handle until the file is closed.
func (h *isoHandle) open(name string) (fs.File, error) {
	if !h.acquire() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := h.fs.Open(name)
	if err != nil {
		h.release()
		return nil, err
	}
	return h.verify.guarded(name, &heldFile{File: f, release: sync.OnceFunc(h.release)}), nil
}

// heldFile is a file of an ISO in the view: ReadAt for files, ReadDir for folders, and a Close
// that releases the ISO.
type heldFile struct {
	fs.File
	release func()
}

func (f *heldFile) Close() error {
	err := f.File.Close()
	f.release()
	return err
}

func (f *heldFile) ReadAt(p []byte, off int64) (int, error) {
	if ra, ok := f.File.(io.ReaderAt); ok {
		return ra.ReadAt(p, off)
	}
	return 0, errors.New("not readable at offsets")
}

func (f *heldFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d, ok := f.File.(fs.ReadDirFile); ok {
		return d.ReadDir(n)
	}
	return nil, errors.New("not a directory")
}

// storeLocation names the store a view reads from (imagestore.Store.Location), "" if unknown.
func storeLocation(store fs.FS) string {
	if l, ok := store.(interface{ Location() string }); ok {
		return l.Location()
	}
	return ""
}

func (v *setupView) names() []string {
	m := v.cur.Load()
	if m == nil {
		return nil
	}
	return slices.Clone(m.order)
}

// update makes the view show media, opening the ISOs it did not show yet (same store location,
// path, size and mtime keep their tree and open file) and retiring those it no longer shows:
// they close once the files opened in them are closed (isoHandle).
func (v *setupView) update(store fs.FS, media []setupMedia, log *slog.Logger) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.cur.Load()
	next := &viewMap{byName: map[string]*viewISO{}, mod: time.Now()}
	kept := map[*isoHandle]bool{}
	loc := storeLocation(store)
	for _, m := range media {
		var vi *viewISO
		if old != nil {
			for _, o := range old.byName {
				if o.store == loc && o.media.ISO == m.ISO && o.media.Size == m.Size && o.media.Mod.Equal(m.Mod) {
					vi = &viewISO{media: m, store: loc, h: o.h}
					kept[o.h] = true
				}
			}
		}
		if vi == nil {
			f, fsys, err := openISO(store, m.ISO)
			if err != nil {
				log.Error("setup: cannot open the ISO for the share", "iso", m.ISO, "error", err)
				continue
			}
			vi = &viewISO{media: m, store: loc, h: newISOHandle(store, m, f, fsys, log)}
		}
		next.byName[strings.ToLower(m.Folder)] = vi
		next.order = append(next.order, m.Folder)
	}
	sort.Strings(next.order)
	v.cur.Store(next)
	if old != nil {
		for _, o := range old.byName {
			if !kept[o.h] {
				o.h.retire()
			}
		}
	}
}

func openISO(store fs.FS, name string) (fs.File, *iso.FS, error) {
	f, err := store.Open(name)
	if err != nil {
		return nil, nil, err
	}
	ra, ok := f.(io.ReaderAt)
	fi, serr := f.Stat()
	if !ok || serr != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not readable at offsets", name)
	}
	fsys, err := iso.Open(ra, fi.Size())
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fsys, nil
}

// Open implements fs.FS: "." lists the folders, "FOLDER/..." is inside that ISO.
func (v *setupView) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) || strings.ContainsAny(name, `\:`) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	m := v.cur.Load()
	if m == nil {
		m = &viewMap{}
	}
	if name == "." {
		return &viewRoot{m: m}, nil
	}
	first, rest, _ := strings.Cut(name, "/")
	vi, ok := m.byName[strings.ToLower(first)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if rest == "" {
		f, err := vi.h.open(".")
		if err != nil {
			return nil, err
		}
		return &folderRoot{File: f, info: dirInfo{name: vi.media.Folder, mod: vi.media.Mod}}, nil
	}
	return vi.h.open(rest)
}

// folderRoot is an ISO's root folder under the share folder's name.
type folderRoot struct {
	fs.File
	info dirInfo
}

func (f *folderRoot) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *folderRoot) ReadDir(n int) ([]fs.DirEntry, error) {
	if d, ok := f.File.(fs.ReadDirFile); ok {
		return d.ReadDir(n)
	}
	return nil, &fs.PathError{Op: "readdir", Path: f.info.name, Err: errors.New("not a directory")}
}

// viewRoot is the share's top folder.
type viewRoot struct {
	m   *viewMap
	off int
}

func (r *viewRoot) Stat() (fs.FileInfo, error) { return dirInfo{name: ".", mod: r.m.mod}, nil }
func (r *viewRoot) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: errors.New("is a directory")}
}
func (r *viewRoot) Close() error { return nil }
func (r *viewRoot) ReadDir(n int) ([]fs.DirEntry, error) {
	var out []fs.DirEntry
	for r.off < len(r.m.order) && (n <= 0 || len(out) < n) {
		vi := r.m.byName[strings.ToLower(r.m.order[r.off])]
		out = append(out, fs.FileInfoToDirEntry(dirInfo{name: r.m.order[r.off], mod: vi.media.Mod}))
		r.off++
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

type dirInfo struct {
	name string
	mod  time.Time
}

func (i dirInfo) Name() string       { return i.name }
func (i dirInfo) Size() int64        { return 0 }
func (i dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o555 }
func (i dirInfo) ModTime() time.Time { return i.mod }
func (i dirInfo) IsDir() bool        { return true }
func (i dirInfo) Sys() any           { return nil }

// checkSetup is pxewim check's view of the Setup share: the Windows ISOs it would offer, and
// what keeps it from running (smbd missing: how to install it; no address for WinPE; an
// unattend or drivers setting naming nothing in the store).
func checkSetup(cfg *boot.Config, store fs.FS, snap *catalog.Snapshot) []problem {
	mode := cfg.Setup.SetupMode()
	if mode == boot.SetupOff || store == nil {
		return nil
	}
	media := findSetupMedia(snap, store)
	if len(media) == 0 {
		if mode == boot.SetupOn {
			return []problem{{what: "setup.share: on, but the store holds no Windows Setup ISO (sources/boot.wim with image 2 and sources/install.wim, .esd or .swm)",
				fix: "drop a Windows ISO into the store", info: true}}
		}
		return nil
	}
	var ps []problem
	if why := setupAvailable(); why != "" {
		p := problem{what: fmt.Sprintf("%d Windows ISO(s) in the store, but network Windows Setup is off: %s", len(media), why),
			fix: "apt-get install samba, and run pxewim serve as root (smbd and the store view need it); Setup entries boot without the share meanwhile"}
		p.info = mode != boot.SetupOn
		ps = append(ps, p)
	}
	if !setupAddr(cfg).IsValid() {
		ps = append(ps, problem{what: "setup: no address for WinPE to reach the share",
			fix: "set setup.advertise (or listen.advertise) to the IPv4 address clients reach this server at"})
	}
	if cfg.Setup.CredentialsMode() == boot.CredentialsPerClient {
		if _, err := smbshare.FindNSSWrapper(); err != nil {
			ps = append(ps, problem{what: "setup.credentials: per_client: " + err.Error(),
				fix: "apt-get install libnss-wrapper (smbd learns the per-client accounts from a private passwd file through it; no system user is made), or set setup.credentials: per_boot"})
		}
	}
	cr := setupCreds{User: "pxe-020000000001", Password: "Checkpassword1"}
	seen := map[string]bool{}
	for _, m := range media {
		if _, _, _, off := cfg.Setup.ForISO(m.ISO); off {
			continue
		}
		if _, err := setupInjections(cfg, store, m, netip.MustParseAddr("192.0.2.1"), cr, nil); err != nil && !seen[err.Error()] {
			seen[err.Error()] = true
			ps = append(ps, problem{what: fmt.Sprintf("setup: %s: %v", m.ISO, err), fix: "correct setup.drivers / setup.unattend (store paths)"})
		}
		for i := range cfg.Rules {
			r := cfg.Rules[i].Setup
			if r == nil {
				continue
			}
			if _, err := setupInjections(cfg, store, m, netip.MustParseAddr("192.0.2.1"), cr, r); err != nil && !seen[err.Error()] {
				seen[err.Error()] = true
				ps = append(ps, problem{what: fmt.Sprintf("setup: %s: %v", m.ISO, err), fix: "correct the rule's setup.drivers / setup.unattend (store paths)"})
			}
		}
	}
	return ps
}
