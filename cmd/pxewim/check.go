package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing/fstest"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/imagestore"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/upload"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/winpe"
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
	return checkStateOf(st, true)
}

// checkStateOf is checkState; without withStore (the store could not be opened: that is
// reported already) the entries' files and the images are not looked for.
func checkStateOf(st *state, withStore bool) []problem {
	var ps []problem
	cfg := st.cfg
	if withStore {
		for _, e := range cfg.Entries {
			for _, ref := range e.Boot.Refs() {
				if p, bad := checkRef(st.store, ref); bad {
					ps = append(ps, problem{what: fmt.Sprintf("entry %q (%s:%d): %s: %s", e.Name, cfg.Source, e.Line, ref, p.what), fix: p.fix})
				}
			}
		}
		ps = append(ps, checkWinPE(st)...)
		ps = append(ps, checkSecureBoot(st)...) // check_secureboot.go
		ps = append(ps, checkARM64(st)...)      // check_arm64clients.go
	}
	ps = append(ps, checkIPXE(st)...)
	if st.policy != nil {
		for _, w := range st.policy.RuleWarnings() {
			ps = append(ps, problem{what: w, info: true,
				fix: "put the image back into the store, or point the rule at an entry that exists"})
		}
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

// runCheck is "pxewim serve --check" and "pxewim check": everything "pxewim serve" would stop
// on, found in one run (config errors, the store, the listeners, the admin password, the
// upload keys, the lease file), plus what keeps clients from booting. Nothing is written or
// created; listen addresses are bound for an instant to see that they are free (a TCP socket
// is never put into listening state, nothing is sent or read).
func runCheck(f *serveFlags, stdout io.Writer) error {
	cfg, ps, err := f.checkConfig()
	if err != nil {
		return err
	}
	configOK := len(ps) == 0
	storeDir := cfg.Store
	if abs, err := filepath.Abs(storeDir); err == nil && !cfg.RemoteStore() {
		storeDir = abs
	}
	ipxeDir := cfg.IPXE.Dir
	if _, err := os.Stat(ipxeDir); err != nil {
		ipxeDir = ""
	}
	// One decoded-chunk cache, bounded by the config's cache: as serve's is, for every WIM the
	// check opens (the store, the catalog scan, the WinPE sources and their synthesised WIMs).
	chunks := wim.NewCache(cfg.ChunkCacheBytes())
	store, sp := checkStore(f, cfg, storeDir, storeConfig(cfg, existingDir(cfg.Images.SyslinuxDir), ipxeDir, chunks, nil))
	ps = append(ps, sp...)
	storeOK := len(sp) == 0
	defer store.Close()
	snap, err := scanCatalog(store, chunks) // serve_catalog.go
	if err != nil {
		// serve goes on with an empty catalog and polls again.
		ps = append(ps, problem{what: fmt.Sprintf("store %s: cannot scan it: %v", storeDir, err),
			fix: "its images join the menu once serve's catalog can read it"})
		snap = &catalog.Snapshot{}
	}
	// The state serve would build (without a daemon: no background work).
	cs, err := (&daemon{log: slog.New(slog.DiscardHandler), cache: chunks}).buildState(cfg, store, snap, false)
	if err != nil {
		if configOK {
			ps = append(ps, problem{what: err.Error(), fix: "correct the config: serve does not start with it"})
		}
		facts := winpe.Facts(snap)
		cs = &state{cfg: cfg.WithCatalog(facts).WithImages(facts), base: cfg, store: store, snap: snap}
	}
	if !configOK {
		cs.policy = nil // its rule warnings would be about the entries left out for their errors
	}
	eff := cs.cfg
	ps = append(ps, checkStateOf(cs, storeOK)...)
	ps = append(ps, checkAdmin(cfg)...)
	ps = append(ps, checkListeners(f, cfg)...)
	ps = append(ps, checkUpload(cfg)...)
	ps = append(ps, checkLeaseFile(cfg)...)
	ps = append(ps, checkReservations(cfg)...) // check_dhcpopts.go
	ps = append(ps, checkDHCP6(cfg)...)        // check_dhcp6.go
	// Network Windows Setup: serve_smb.go.
	ps = append(ps, checkSetup(cfg, store, snap)...)
	status := "valid"
	if !configOK {
		status = "has errors (listed below)"
	}
	fmt.Fprintf(stdout, "%s: config %s: %d entries (%d from the catalog), %d rules, store %s (%d image files, %d WindowsPE images), DHCP %s\n",
		cfg.Source, status, len(eff.Entries), len(eff.Entries)-len(cfg.Entries), len(cfg.Rules), storeDir, len(snap.Files), len(snap.WindowsPE()), cfg.DHCP.Mode)
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

// checkConfig loads the config as serve does, but keeps going past its errors: each one is a
// problem, and the config decoded so far is checked further. err is for what leaves nothing
// to check (an unreadable file, not YAML) and for bad command-line flags.
func (f *serveFlags) checkConfig() (*boot.Config, []problem, error) {
	name, data := defaultConfigName, defaultConfigYAML
	if f.config != "" {
		var err error
		if data, err = os.ReadFile(f.config); err != nil {
			return nil, nil, fmt.Errorf("reading config: %w", err)
		}
		name = f.config
	}
	cfg, perr := boot.ParseConfigAll(name, data)
	if cfg == nil {
		return nil, nil, perr
	}
	f.resolvePaths(cfg) // serve.go
	if err := f.apply(cfg); err != nil {
		return nil, nil, err
	}
	var ps []problem
	for _, err := range append(unjoin(perr), unjoin(cfg.CheckRuntime())...) {
		ps = append(ps, problem{what: err.Error(), fix: "correct the config: serve does not start with it"})
	}
	return cfg, ps, nil
}

// unjoin splits an errors.Join result.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// checkStore opens the store as serve does. When it cannot, the problem (or, for the folder
// serve makes itself, a note) is reported and the rest is checked against an empty store.
func checkStore(f *serveFlags, cfg *boot.Config, storeDir string, sc imagestore.Config) (*imagestore.Store, []problem) {
	// A remote store connects, so a wrong key or host key shows now.
	store, err := imagestore.Open(context.Background(), sc, nil)
	if err == nil {
		return store, nil
	}
	empty := imagestore.OverFS(fstest.MapFS{}, cfg.Store, sc.Local)
	if !cfg.RemoteStore() && errors.Is(err, fs.ErrNotExist) && cfg.Source == defaultConfigName && !f.set["store"] {
		// serve.go's load makes this one.
		return empty, []problem{{info: true, what: fmt.Sprintf("store %s does not exist yet: serve creates it, empty, when it starts", storeDir),
			fix: "put WIM, ISO and boot files in it"}}
	}
	fix := "create the folder, or point store: (or --store) at the folder of your images"
	if cfg.RemoteStore() {
		fix = "check the sftp:// URL, the sftp: keys and known_hosts, and that the server is reachable"
	}
	return empty, []problem{{what: fmt.Sprintf("%s: store %s: %v", cfg.Source, storeDir, err), fix: fix}}
}

// checkAdmin: serve stops when the dashboard's password file cannot be read or is empty.
func checkAdmin(cfg *boot.Config) []problem {
	if !cfg.Admin.Auth() {
		return nil
	}
	b, err := os.ReadFile(cfg.Admin.PasswordFile)
	switch {
	case err != nil:
		return []problem{{what: fmt.Sprintf("admin.password_file: %v", err), fix: "create the file with the dashboard password on one line, or remove admin.user"}}
	case strings.TrimRight(string(b), "\r\n") == "":
		return []problem{{what: fmt.Sprintf("admin.password_file %s is empty", cfg.Admin.PasswordFile), fix: "write the dashboard password into it"}}
	}
	return nil
}

// checkUpload: serve stops when the upload server cannot start (upload.New), or when it is
// asked to upload into a remote store. What upload.New would create is a note.
func checkUpload(cfg *boot.Config) []problem {
	u := cfg.Upload
	if u.Listen == "" {
		return nil
	}
	if cfg.RemoteStore() {
		return []problem{{what: fmt.Sprintf("upload.listen: the store is remote (%s); uploads go to a local store folder", cfg.Store),
			fix: "run the upload server on the central image server, or remove upload.listen"}}
	}
	creates, err := upload.Check(upload.Config{Addr: u.Listen, HostKeyPath: u.HostKey, AuthorizedKeysPath: u.AuthorizedKeys, StoreDir: cfg.Store})
	var ps []problem
	if len(creates) > 0 {
		for i, c := range creates {
			creates[i] = absPath(c)
		}
		fix := "nothing to do"
		if creates[len(creates)-1] == absPath(u.HostKey) {
			fix = "nothing to do; serve logs the new host key's fingerprint: give it to the admins' SFTP clients (known_hosts)"
		}
		ps = append(ps, problem{info: true, what: "upload: serve creates " + strings.Join(creates, ", ") + " when it starts", fix: fix})
	}
	for _, e := range unjoin(err) {
		fix := "correct upload.host_key / upload.authorized_keys, or create what is missing"
		if strings.Contains(e.Error(), "authorized keys") {
			fix = "create upload.authorized_keys with the admins' public keys (OpenSSH authorized_keys format)"
		}
		ps = append(ps, problem{what: e.Error(), fix: fix})
	}
	return ps
}

// checkLeaseFile: full-mode DHCP checks its pool and opens (and makes) its lease file at
// start; serve stops when the pool is refused, the file's folder is missing or the file cannot
// be opened.
func checkLeaseFile(cfg *boot.Config) []problem {
	if cfg.DHCP.Mode != boot.DHCPFull || cfg.DHCP.Full == nil || cfg.DHCP.Full.Leases == "" {
		return nil
	}
	f := cfg.DHCP.Full
	if err := dhcp.CheckFullConfig(dhcpFullConfig(f, cfg.Rules)); err != nil { // as serve_listen.go's dhcpConfig
		return []problem{{what: "dhcp.full: " + err.Error(), fix: "correct dhcp.full (range, netmask, leases)"}}
	}
	p := f.Leases
	fi, err := os.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		return []problem{{what: fmt.Sprintf("dhcp.full.leases: %s is a folder", p), fix: "name a file (it is made on first start)"}}
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOTDIR):
		return []problem{{what: fmt.Sprintf("dhcp.full.leases: %s: %s is not a folder", p, filepath.Dir(p)), fix: "put the lease file into a folder"}}
	case !errors.Is(err, fs.ErrNotExist):
		return []problem{{what: fmt.Sprintf("dhcp.full.leases: %v", err), fix: "make the file readable and writable by pxewim"}}
	}
	dir := filepath.Dir(p)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return []problem{{what: fmt.Sprintf("dhcp.full.leases: folder %s does not exist", dir), fix: "create the folder, or put the lease file into one that exists"}}
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return []problem{{what: fmt.Sprintf("dhcp.full.leases: cannot make %s: %s is not writable: %v", p, dir, err), fix: "let pxewim write there"}}
	}
	return []problem{{info: true, what: fmt.Sprintf("dhcp.full.leases: serve creates %s when it starts", p), fix: "nothing to do"}}
}

// listenerUse is one socket serve binds, as the config names it.
type listenerUse struct {
	key   string // config key, for messages ("listen.http")
	proto string // "tcp" or "udp"
	addr  string
	// soft: serve does not stop when it cannot bind this one (the dashboard's default
	// address; TFTP's port 69 refused to a non-root user under the built-in config).
	soft func(err error) bool
	ip   net.IP // resolved; nil or unspecified: every address
	port int
}

// checkListeners finds what would keep serve from binding its sockets: two of its own
// listeners on one address, addresses that do not resolve or are not on this machine, and
// ports that are taken or need privileges. The sockets are bound for an instant without
// listening, then closed.
func checkListeners(f *serveFlags, cfg *boot.Config) []problem {
	var ls []listenerUse
	add := func(key, proto, addr string, soft func(error) bool) {
		if addr != "" {
			ls = append(ls, listenerUse{key: key, proto: proto, addr: addr, soft: soft})
		}
	}
	never := func(error) bool { return false }
	add("listen.http", "tcp", cfg.Listen.HTTP, never)
	add("listen.tftp", "udp", cfg.Listen.TFTP, func(err error) bool {
		return errors.Is(err, syscall.EACCES) && !f.set["tftp"] && cfg.Source == defaultConfigName // serve_daemon.go listenTFTP
	})
	if cfg.DHCP.Mode != boot.DHCPOff {
		add("dhcp (port 67)", "udp", "0.0.0.0:67", never)
		add("dhcp (port 4011)", "udp", "0.0.0.0:4011", never)
	}
	if a := cfg.Admin.ListenAddr(); a != "" {
		explicit := cfg.Admin.Listen != ""
		add("admin.listen", "tcp", a, func(error) bool { return !explicit }) // serve_ops.go serveAdmin
	}
	add("upload.listen", "tcp", cfg.Upload.Listen, never)

	var ps []problem
	bad := map[int]bool{} // listeners already reported
	for i := range ls {
		l := &ls[i]
		host, port, err := net.SplitHostPort(l.addr)
		if err == nil {
			l.port, err = net.LookupPort(l.proto, port)
		}
		if err == nil && host != "" {
			var ips []net.IP
			if ips, err = net.LookupIP(host); err == nil {
				l.ip = ips[0]
			}
		}
		if err != nil {
			ps = append(ps, problem{what: fmt.Sprintf("%s: %s: %v", l.key, l.addr, err), fix: "use host:port with an address of this machine"})
			bad[i] = true
		}
	}
	// Serve binds in this order: HTTP, TFTP, DHCP, then the dashboard and the upload server.
	for i := range ls {
		for j := i + 1; j < len(ls); j++ {
			a, b := ls[i], ls[j]
			if bad[i] || bad[j] || a.proto != b.proto || a.port != b.port || !overlaps(a.ip, b.ip) {
				continue
			}
			p := problem{what: fmt.Sprintf("%s (%s) and %s (%s) are the same %s address: serve cannot bind both", a.key, a.addr, b.key, b.addr, strings.ToUpper(a.proto)),
				fix: "give each its own port"}
			if b.soft(syscall.EADDRINUSE) {
				p.info = true
				p.what = fmt.Sprintf("%s (default %s) is also %s's address (%s): serve starts with the dashboard off", b.key, b.addr, a.key, a.addr)
				p.fix = "set admin.listen to another address, or to off"
			}
			ps = append(ps, p)
			bad[j] = true
		}
	}
	for i, l := range ls {
		if bad[i] {
			continue
		}
		err := bindProbe(l.proto, l.ip, l.port)
		if err == nil {
			continue
		}
		p := problem{what: fmt.Sprintf("%s: cannot bind %s %s: %v%s", l.key, strings.ToUpper(l.proto), l.addr, err, portHolder(l.proto, l.port)),
			fix: bindFix(err, l.key)}
		switch {
		case errors.Is(err, syscall.EADDRINUSE) && strings.Contains(p.what, "held by pxewim,"):
			p.info = true
			p.what += ": the running server; a second one would stop here, a reload of the running one moves its listeners itself"
		case l.soft(err):
			p.info = true
			p.what += ": serve starts without it"
		}
		ps = append(ps, p)
	}
	return ps
}

// bindFix says what to do about a socket serve could not bind.
func bindFix(err error, key string) string {
	dhcpPort := strings.HasPrefix(key, "dhcp")
	switch {
	case errors.Is(err, syscall.EADDRINUSE) && dhcpPort:
		return "another DHCP or proxy DHCP server (dnsmasq, dhcpd, WDS...) runs here: stop it, or set dhcp.mode: off"
	case errors.Is(err, syscall.EADDRINUSE):
		return "stop the program that holds it, or choose another address in " + key
	case errors.Is(err, syscall.EACCES) && dhcpPort:
		return "DHCP needs root or CAP_NET_BIND_SERVICE: run serve as root, or set dhcp.mode: off"
	case errors.Is(err, syscall.EACCES):
		return "ports below 1024 need root or CAP_NET_BIND_SERVICE: run serve as root, or choose another port in " + key
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no interface of this machine has that address: correct " + key
	}
	return "correct " + key
}

// overlaps reports whether two bind addresses collide: the same address, or either one is
// the wildcard (nil or unspecified; a dual-stack [::] takes IPv4 too).
func overlaps(a, b net.IP) bool {
	if a == nil || b == nil || a.IsUnspecified() || b.IsUnspecified() {
		return true
	}
	return a.Equal(b)
}

// bindProbe binds a socket like serve's (TCP with SO_REUSEADDR as Go's listeners; UDP
// without, as TFTP and DHCP bind) and closes it at once. A TCP socket is not put into
// listening state, so no connection can arrive; a UDP one is closed before anything is read.
func bindProbe(proto string, ip net.IP, port int) error {
	typ := syscall.SOCK_STREAM
	if proto == "udp" {
		typ = syscall.SOCK_DGRAM
	}
	family, dual := syscall.AF_INET, false
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: port}
	switch {
	case ip == nil:
		family, dual = syscall.AF_INET6, true // Go's ":port" is a dual-stack [::]:port
		sa = &syscall.SockaddrInet6{Port: port}
	case ip.To4() != nil:
		s4 := &syscall.SockaddrInet4{Port: port}
		copy(s4.Addr[:], ip.To4())
		sa = s4
	default:
		family = syscall.AF_INET6
		s6 := &syscall.SockaddrInet6{Port: port}
		copy(s6.Addr[:], ip.To16())
		sa = s6
	}
	fd, err := syscall.Socket(family, typ|syscall.SOCK_CLOEXEC, 0)
	if err != nil && dual {
		// No IPv6: Go listens on 0.0.0.0 then.
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: port}
		fd, err = syscall.Socket(family, typ|syscall.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer syscall.Close(fd)
	if typ == syscall.SOCK_STREAM {
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	}
	if family == syscall.AF_INET6 && dual {
		syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
	}
	return os.NewSyscallError("bind", syscall.Bind(fd, sa))
}

// portHolder names the process holding a TCP (listening) or UDP port in this network
// namespace: " (held by nginx, pid 812)", or "" when it cannot tell.
func portHolder(proto string, port int) string {
	want := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, table := range []string{proto, proto + "6"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fl := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
			if len(fl) < 10 || !strings.HasSuffix(fl[1], want) || (proto == "tcp" && fl[3] != "0A") {
				continue
			}
			inodes["socket:["+fl[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && inodes[l] {
			pid := strings.Split(fd, "/")[2]
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			return fmt.Sprintf(" (held by %s, pid %s)", strings.TrimSpace(string(comm)), pid)
		}
	}
	return ""
}
