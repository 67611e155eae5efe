package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/localstore"
)

// problem is one thing that will keep some client from booting, with what to do about it.
type problem struct {
	what string // what is wrong, naming the entry/key/file
	fix  string // what to do, in plain words
	info bool   // a note: clients still boot
}

func (p problem) String() string { return p.what + ": " + p.fix }

// checkState looks for what a valid config cannot show by itself: files missing from the store
// or from the iPXE folder, DHCP interfaces that do not exist. Nothing is written or bound.
func checkState(st *state) []problem {
	var ps []problem
	cfg := st.cfg
	for _, e := range cfg.Entries {
		for _, ref := range e.Boot.Refs() {
			if p, bad := checkRef(st.store, ref); bad {
				ps = append(ps, problem{what: fmt.Sprintf("entry %q (%s:%d): %s: %s", e.Name, cfg.Source, e.Line, ref, p.what), fix: p.fix})
			}
		}
	}
	ps = append(ps, checkWinPE(st)...)
	ps = append(ps, checkIPXE(st)...)
	for _, w := range st.policy.RuleWarnings() {
		ps = append(ps, problem{what: w, info: true,
			fix: "put the image back into the store, or point the rule at an entry that exists"})
	}
	if cfg.DHCP.Mode != boot.DHCPOff {
		var full *boot.FullDHCP
		if cfg.DHCP.Mode == boot.DHCPFull {
			full = cfg.DHCP.Full
		}
		for _, name := range cfg.DHCP.Interfaces {
			ps = append(ps, checkInterface(name, full)...)
		}
	}
	return ps
}

// checkRef opens a store reference the way HTTP and TFTP will.
func checkRef(store fs.FS, ref boot.Ref) (problem, bool) {
	f, err := store.Open(ref.String())
	if err != nil {
		fix := "put the file in the store, or correct the path (names are matched without regard to case)"
		if ref.WIM != "" {
			fix = fmt.Sprintf("check that %s exists in the store, has image %d, and holds %s (pxewim wim dir %s %d)", ref.WIM, ref.Index, ref.Path, ref.WIM, ref.Index)
		}
		return problem{what: errText(err), fix: fix}, true
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return problem{what: "not a regular file", fix: "name a file, not a folder"}, true
	}
	return problem{}, false
}

func errText(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not found"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}

// checkIPXE checks the iPXE binaries handed to stock PXE and HTTP Boot clients.
func checkIPXE(st *state) []problem {
	c := st.cfg.IPXE
	var ps []problem
	for _, b := range []struct{ key, file string }{
		{"ipxe.bios", c.BIOS}, {"ipxe.efi64", c.EFI64}, {"ipxe.efi32", c.EFI32}, {"ipxe.httpboot", c.HTTPBoot},
	} {
		if b.file == "" {
			continue
		}
		name := localstore.IPXEPrefix + "/" + b.file
		f, err := st.store.Open(name)
		if err != nil {
			ps = append(ps, problem{
				what: fmt.Sprintf("%s: %s not found in %s", b.key, b.file, c.Dir),
				fix:  "install Debian's ipxe package (apt-get install ipxe) or set ipxe.dir to a folder holding it",
			})
			continue
		}
		f.Close()
	}
	return ps
}

// checkInterface checks that a DHCP interface exists and has an IPv4 address; in full mode,
// one inside the pool's network and outside the pool.
func checkInterface(name string, full *boot.FullDHCP) []problem {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return []problem{{what: fmt.Sprintf("dhcp.interfaces: %s: %v", name, err), fix: "name an interface of this machine (ip -brief link)"}}
	}
	addrs, _ := ifc.Addrs()
	var v4 []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			v4 = append(v4, p.Addr())
		}
	}
	if len(v4) == 0 {
		return []problem{{what: fmt.Sprintf("dhcp.interfaces: %s has no IPv4 address", name), fix: "give it one: DHCP replies and boot URLs use it"}}
	}
	if full == nil {
		return nil
	}
	lan := full.Prefix()
	for _, a := range v4 {
		if !lan.Contains(a) {
			continue
		}
		if !a.Less(full.RangeStart) && !full.RangeEnd.Less(a) {
			return []problem{{what: fmt.Sprintf("dhcp.full.range: %s-%s includes %s, the address of %s", full.RangeStart, full.RangeEnd, a, name),
				fix: "move the pool so that it leaves out the server's own address"}}
		}
		return nil
	}
	return []problem{{what: fmt.Sprintf("dhcp.interfaces: %s has no address in the pool's network %s (it has %v)", name, lan, v4),
		fix: "give the interface a static address in that network, or change dhcp.full.range/netmask"}}
}

// logProblems reports problems found at start or reload: the server runs anyway (other
// entries still boot), but the log says which files are missing and what to do.
func (d *daemon) logProblems(st *state) {
	for _, p := range checkState(st) {
		if p.info {
			d.log.Info("check: "+p.what, "note", p.fix)
			continue
		}
		d.log.Warn("check: "+p.what, "fix", p.fix)
	}
}

// runCheckCommand is "pxewim check [--config FILE] [--store DIR]": the same as serve --check.
func runCheckCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if done, err := checkHelp(args, stdout); done { // check_help.go
		return err
	}
	f, err := parseServeFlags(args, stdout)
	if err != nil {
		return err
	}
	return runCheck(f, stdout)
}

// runCheck is "pxewim serve --check" and "pxewim check": load and
// validate the config, look for missing files, print the findings, bind nothing.
func runCheck(f *serveFlags, stdout io.Writer) error {
	cfg, err := f.loadConfig()
	if err != nil {
		return err
	}
	storeDir := cfg.Store
	if abs, err := filepath.Abs(storeDir); err == nil {
		storeDir = abs
	}
	ipxeDir := cfg.IPXE.Dir
	if _, err := os.Stat(ipxeDir); err != nil {
		ipxeDir = ""
	}
	opts := localstore.Options{IPXEDir: ipxeDir, SyslinuxDir: existingDir(cfg.Images.SyslinuxDir)}
	var store *localstore.Store
	if cfg.RemoteStore() {
		storeDir = cfg.Store
		store, err = checkRemoteStore(cfg, opts) // serve_remote.go
	} else {
		store, err = localstore.New(cfg.Store, opts)
	}
	if err != nil {
		return fmt.Errorf("%s: store %s: %w", cfg.Source, storeDir, err)
	}
	defer store.Close()
	pol, err := boot.NewPolicy(cfg)
	if err != nil {
		return err
	}
	snap, err := scanCatalog(cfg, store) // serve_catalog.go
	if err != nil {
		return fmt.Errorf("%s: store %s: %w", cfg.Source, storeDir, err)
	}
	eff := cfg.WithCatalog(snap).WithImages(snap)
	if pol, err = boot.NewPolicy(eff); err != nil {
		return err
	}
	pol.AttachStore(store)
	ps := checkState(&state{cfg: eff, base: cfg, policy: pol, store: store, snap: snap})
	fmt.Fprintf(stdout, "%s: config valid: %d entries (%d from the catalog), %d rules, store %s (%d image files, %d WindowsPE images), DHCP %s\n",
		cfg.Source, len(eff.Entries), len(eff.Entries)-len(cfg.Entries), len(cfg.Rules), storeDir, len(snap.Files), len(snap.WindowsPE()), cfg.DHCP.Mode)
	n := 0
	for _, p := range ps {
		kind := "problem"
		if p.info {
			kind = "note"
		} else {
			n++
		}
		fmt.Fprintf(stdout, "%s: %s\n    fix: %s\n", kind, p.what, p.fix)
	}
	if n > 0 {
		return fmt.Errorf("%d problems found", n)
	}
	fmt.Fprintln(stdout, "no problems found")
	return nil
}
