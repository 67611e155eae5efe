package main

// Setup entries per rule and per client (issue 14).
//
// A rule's setup: (unattend, drivers, bypasses) and, with setup.credentials: per_client, each
// client's own SMB account are written into a variant of the Setup entry: a winpe entry of its
// own name (ENTRY~rN for rule N, ENTRY~MAC[-rN] for a client), bound to the WinPE library like
// any entry but kept out of every menu. A client's tree (TFTP, HTTP) serves its variant's files
// under the Setup entry's own path (winpe/ENTRY/...; for a client a rule sends there natively,
// sources/boot.wim too), so scripts, BCDs and wimboot are unchanged and only the served
// boot.wim differs. Cost: each variant is a source of the WinPE library (the image's metadata
// synthesised with the injected files) held while its state lives: one per Setup entry per
// client that booted it.
//
// Per-client accounts: a client pxewim can name by MAC gets its account (pxe-MAC, a generated
// 24-character password) the first time it opens a Setup entry's files (wimboot's or bootmgr's
// fetch of the boot.wim; a menu rendered for it makes none); the account is added to
// the running smbd at once (smbshare private users: no system user is made) and the state is
// rebuilt with the client's variant, whose startnet.cmd is the only place the password is
// written. A client with no known MAC gets the Setup entry without credentials (stock Setup).
// Accounts live as long as the daemon (a restart makes new ones; a client booted before it
// must boot again). At most smbshare.MaxAccounts clients.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/smbshare"
	"github.com/pxewim/pxewim/winpe"
)

// setupClient is one client's account and the rule its variant was made for.
type setupClient struct {
	mac   net.HardwareAddr
	creds setupCreds
	rules map[int]bool // rule indexes (-1: none) whose variants this client needs
	used  time.Time    // last time one of its variants was needed or served
}

// setupClients are the per-client accounts of this daemon run.
type setupClients struct {
	mu     sync.Mutex
	byMAC  map[string]*setupClient // MAC as 12 lower-case hex digits
	server *smbshare.Server        // the running share, once started
	// idle is how long a client's variants stay built after it last fetched a Setup entry's
	// files (setupVariantIdle if zero); its account stays. now is time.Now (tests).
	idle time.Duration
	now  func() time.Time
}

// setupVariantIdle: a client's variants (each holds the Setup image's metadata synthesised
// with its files: tens of MiB for a real Setup image, BENCHMARKS.md) are dropped this long
// after its last fetch; a client that comes back gets them built again, with the same account.
const setupVariantIdle = 15 * time.Minute

func (c *setupClients) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *setupClients) idleFor() time.Duration {
	if c.idle > 0 {
		return c.idle
	}
	return setupVariantIdle
}

// touch records that the client's variant was served.
func (c *setupClients) touch(mac net.HardwareAddr) {
	c.mu.Lock()
	if cl, ok := c.byMAC[macKey(mac)]; ok {
		cl.used = c.clock()
	}
	c.mu.Unlock()
}

// idleIn reports whether a client whose variants the state v holds has been idle too long.
func (c *setupClients) idleIn(v *setupVariants) bool {
	if v == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.clock().Add(-c.idleFor())
	for k := range v.names {
		if cl, ok := c.byMAC[k.mac]; ok && k.mac != "" && cl.used.Before(limit) {
			return true
		}
	}
	return false
}

func macKey(mac net.HardwareAddr) string { return strings.ReplaceAll(mac.String(), ":", "") }

// accountName is the client's SMB account: pxe- and its MAC's hex digits.
func accountName(mac net.HardwareAddr) string { return "pxe-" + macKey(mac) }

// snapshot lists the clients (copies) whose variants are to be built: those not idle.
func (c *setupClients) snapshot() []setupClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]setupClient, 0, len(c.byMAC))
	limit := c.clock().Add(-c.idleFor())
	for _, cl := range c.byMAC {
		if cl.used.Before(limit) {
			continue
		}
		cp := *cl
		cp.rules = map[int]bool{}
		for r := range cl.rules {
			cp.rules[r] = true
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return macKey(out[i].mac) < macKey(out[j].mac) })
	return out
}

// need records that the client with mac needs the variant for rule ri. It reports whether
// anything changed (the state must be rebuilt); a new client's account is added to smbd.
func (c *setupClients) need(ctx context.Context, mac net.HardwareAddr, ri int) (changed bool, err error) {
	c.mu.Lock()
	if c.byMAC == nil {
		c.byMAC = map[string]*setupClient{}
	}
	k := macKey(mac)
	cl, ok := c.byMAC[k]
	if ok && cl.rules[ri] {
		cl.used = c.clock()
		c.mu.Unlock()
		return false, nil
	}
	if !ok {
		if len(c.byMAC) >= smbshare.MaxAccounts {
			c.mu.Unlock()
			return false, fmt.Errorf("setup: %d clients have accounts already (the most one run holds)", smbshare.MaxAccounts)
		}
		name := accountName(mac)
		cl = &setupClient{mac: append(net.HardwareAddr(nil), mac...), creds: setupCreds{User: name, Password: randomPassword(24)}, rules: map[int]bool{}}
		c.byMAC[k] = cl
	}
	cl.rules[ri] = true
	cl.used = c.clock()
	srv, creds := c.server, cl.creds
	c.mu.Unlock()
	if !ok && srv != nil {
		if err := srv.AddAccount(ctx, smbshare.Account{Name: creds.User, User: creds.User, Password: creds.Password}); err != nil {
			return true, err
		}
	}
	return true, nil
}

// serverStarted hands the accounts made before smbd ran to it, and the later ones go to it
// directly (need): under one lock, so none falls between.
func (c *setupClients) serverStarted(ctx context.Context, srv *smbshare.Server, log *slog.Logger) {
	c.mu.Lock()
	c.server = srv
	var pending []setupCreds
	for _, cl := range c.byMAC {
		pending = append(pending, cl.creds)
	}
	c.mu.Unlock()
	for _, cr := range pending {
		if err := srv.AddAccount(ctx, smbshare.Account{Name: cr.User, User: cr.User, Password: cr.Password}); err != nil {
			log.Error("setup: adding a client's account to smbd failed", "account", cr.User, "error", err)
		}
	}
}

// privateUsers: every per-client account runs as the system user setup.unix_user.
func privateUsers(name string) (*smbshare.PrivateUsers, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("setup.unix_user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil || uid == 0 {
		return nil, fmt.Errorf("setup.unix_user %s: uid %s gid %s: want a non-root numeric user", name, u.Uid, u.Gid)
	}
	return &smbshare.PrivateUsers{UID: uid, GID: gid}, nil
}

// setupVariants are a state's Setup entries and their variants.
type setupVariants struct {
	cfg     *boot.Config          // the variants' own config: their entries, no rules
	entries map[string]bool       // lower-case Setup entry names
	names   map[variantKey]string // variant entry name
	tried   map[variantKey]bool   // variants made or refused (their files are not in the store)
	set     *winpe.Set            // the variants bound to the WinPE library
}

type variantKey struct {
	entry string // lower-case Setup entry name
	rule  int    // rule index, -1: none
	mac   string // macKey, "" for per-rule variants
}

func newSetupVariants(cfg *boot.Config) *setupVariants {
	vc := *cfg
	vc.Entries, vc.Rules = nil, nil
	return &setupVariants{cfg: &vc, entries: map[string]bool{}, names: map[variantKey]string{}, tried: map[variantKey]bool{}}
}

// addEntry records the Setup entry name (spec w, media m) and makes its variants: one per rule
// with a setup: (credentials per boot), or one per client and rule the clients needed so far
// (per client). A variant whose injections fail is left out (logged once; check reports it).
func (v *setupVariants) addEntry(d *daemon, cfg *boot.Config, store fs.FS, name string, w *boot.WinPEBoot, m setupMedia, addr netip.Addr) {
	s := &d.setup
	lname := strings.ToLower(name)
	v.entries[lname] = true
	add := func(k variantKey, vname string, cr setupCreds, r *boot.RuleSetup) {
		v.tried[k] = true
		inj, err := setupInjections(cfg, store, m, addr, cr, r)
		if err != nil {
			s.logOnce(d.log, "var:"+vname+err.Error(), "setup: a Setup entry variant boots without its settings", "entry", name, "error", err)
			return
		}
		v.cfg.Entries = append(v.cfg.Entries, boot.Entry{Name: vname, Title: vname,
			Boot: boot.WinPEVariant(w, vname, append(append([]boot.Injection(nil), w.Inject...), inj...))})
		v.names[k] = vname
	}
	if !s.perClient {
		for ri := range cfg.Rules {
			r := &cfg.Rules[ri]
			if r.Setup == nil {
				continue
			}
			add(variantKey{lname, ri, ""}, fmt.Sprintf("%s~r%d", name, ri), setupCreds{User: setupAccount, Password: s.password}, r.Setup)
		}
		return
	}
	for _, cl := range s.clients.snapshot() {
		rules := make([]int, 0, len(cl.rules))
		for ri := range cl.rules {
			rules = append(rules, ri)
		}
		sort.Ints(rules)
		for _, ri := range rules {
			var rs *boot.RuleSetup
			vname := name + "~" + macKey(cl.mac)
			if ri >= 0 {
				if ri >= len(cfg.Rules) || cfg.Rules[ri].Setup == nil {
					continue // the rules changed since (a reload): the client asks again
				}
				rs = cfg.Rules[ri].Setup
				vname += "-r" + strconv.Itoa(ri)
			}
			add(variantKey{lname, ri, macKey(cl.mac)}, vname, cl.creds, rs)
		}
	}
}

// bind binds the variants to the WinPE library (buildState).
func (v *setupVariants) bind(lib *winpe.Library, store fs.FS, storeID string, snap *catalog.Snapshot) {
	if v == nil || len(v.cfg.Entries) == 0 {
		return
	}
	pol, err := boot.NewPolicy(v.cfg)
	if err != nil {
		return
	}
	v.set = lib.Bind(pol, store, storeID, snap)
}

// retire retires the variants' WinPE set with the state they belong to.
func (v *setupVariants) retire() {
	if v != nil && v.set != nil {
		v.set.Retire()
	}
}

// stale: an injected store file of a variant changed (the catalog poll's Set.Stale).
func (v *setupVariants) stale() bool { return v != nil && v.set != nil && v.set.Stale() }

// nativeWIMPath is the WIM a native client's BCD names, in its tree (package winpe).
const nativeWIMPath = "sources/boot.wim"

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// variantFor names the variant of Setup entry lname that client c gets ("" : the entry itself),
// and whether c needs one that does not exist yet (per client: registered, then the state is
// rebuilt).
func (d *daemon) variantFor(st *state, c boot.Client, lname string) (string, bool) {
	v := st.setupVars
	if v == nil { // the store holds no Setup media now
		return "", false
	}
	_, ri := st.cfg.SetupRule(c)
	k := variantKey{entry: lname, rule: ri}
	if d.setup.perClient {
		if len(c.MAC) != 6 {
			return "", false
		}
		k.mac = macKey(c.MAC)
	} else if ri < 0 {
		return "", false
	}
	if n, ok := v.names[k]; ok && v.set != nil {
		return n, false
	}
	// Per client, a variant this state did not try is made (a new client, or a client whose
	// rule changed); one it tried and refused (its files are not in the store: logged) is not
	// tried again for each request.
	return "", d.setup.perClient && !v.tried[k]
}

// setupClientTree wraps a client's tree so that it serves the client's variants of Setup
// entries (see the file comment). It costs nothing for paths outside winpe/SETUP-ENTRY/ unless
// a rule sends the client to a Setup entry natively.
func (d *daemon) setupClientTree(st *state, c boot.Client, tree fs.FS) fs.FS {
	if st.setupVars == nil || len(st.setupVars.entries) == 0 {
		return tree
	}
	return &setupTree{d: d, st: st, c: c, base: tree}
}

type setupTree struct {
	d    *daemon
	st   *state
	c    boot.Client
	base fs.FS
}

func (t *setupTree) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return t.base.Open(name)
	}
	if rest, ok := cutPrefixFold(name, boot.WinPEDir+"/"); ok {
		ename, inner, _ := strings.Cut(rest, "/")
		lname := strings.ToLower(ename)
		if inner != "" && t.st.setupVars.entries[lname] {
			st, vname := t.resolve(lname)
			if vname != "" {
				files, err := st.setupVars.set.Files(vname)
				if err != nil {
					return nil, &fs.PathError{Op: "open", Path: name, Err: errors.Join(fs.ErrNotExist, err)}
				}
				return files.Open(inner)
			}
		}
		return t.base.Open(name)
	}
	// A client a rule sends to a Setup entry natively: its tree is the entry's (boot files
	// and BCD are the image's, the same in every variant), but the WIM its BCD names,
	// sources/boot.wim, is its variant's.
	if strings.EqualFold(name, nativeWIMPath) {
		if te := t.st.policy.TreeEntry(t.c); te != nil && t.st.setupVars.entries[strings.ToLower(te.Name)] {
			st, vname := t.resolve(strings.ToLower(te.Name))
			if vname != "" {
				files, err := st.setupVars.set.Files(vname)
				if err != nil {
					return nil, &fs.PathError{Op: "open", Path: name, Err: errors.Join(fs.ErrNotExist, err)}
				}
				return files.Open("boot.wim")
			}
		}
	}
	return t.base.Open(name)
}

// resolve returns the state to serve from and the variant's name ("" : the entry itself),
// registering the client and rebuilding the state when its variant does not exist yet.
func (t *setupTree) resolve(lname string) (*state, string) {
	d, st := t.d, t.st
	vname, missing := d.variantFor(st, t.c, lname)
	if !missing {
		if vname != "" && d.setup.perClient {
			d.setup.clients.touch(t.c.MAC)
		}
		return st, vname
	}
	_, ri := st.cfg.SetupRule(t.c)
	changed, err := d.setup.clients.need(context.Background(), t.c.MAC, ri)
	if err != nil {
		d.setup.logOnce(d.log, "need:"+err.Error(), "setup: no account for a client; it gets Setup without the share", "mac", t.c.MAC.String(), "error", err)
		return st, ""
	}
	// Under the reload lock, and only if the current state still lacks the variant: requests
	// of one client racing each other (or a reload) rebuild once, and none is served the
	// entry without its credentials while another builds.
	d.reloadMu.Lock()
	cur := d.cur.Load()
	if _, still := d.variantFor(cur, t.c, lname); still {
		nst, err := d.buildState(cur.base, cur.store, cur.snap, false)
		if err != nil {
			d.reloadMu.Unlock()
			d.log.Error("setup: the state could not be rebuilt with a client's Setup variant", "mac", t.c.MAC.String(), "error", err)
			return st, ""
		}
		d.install(nst)
	}
	d.reloadMu.Unlock()
	if changed {
		d.log.Info("setup: per-client Setup account made", "mac", t.c.MAC.String(), "account", accountName(t.c.MAC))
	}
	st = d.cur.Load()
	if st.setupVars == nil {
		return st, ""
	}
	vname, _ = d.variantFor(st, t.c, lname)
	return st, vname
}

// sweepSetupVariants drops the variants of clients idle for too long (per client: runSetup
// calls it every minute): the state is rebuilt without them, and their WinPE sources close
// once no transfer reads them. Their accounts stay.
func (d *daemon) sweepSetupVariants() bool {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cur := d.cur.Load()
	if cur == nil || !d.setup.clients.idleIn(cur.setupVars) {
		return false
	}
	nst, err := d.buildState(cur.base, cur.store, cur.snap, false)
	if err != nil {
		d.log.Error("setup: dropping idle clients' Setup variants: the state could not be rebuilt", "error", err)
		return false
	}
	d.install(nst)
	d.log.Info("setup: idle clients' Setup variants dropped", "idle", d.setup.clients.idleFor())
	return true
}
