// Package smbshare runs Samba's smbd as a child process serving read-only shares (pxewim's
// Windows Setup media), with a configuration it writes into its own state folder.
//
// Nothing of the system's Samba setup is read or changed: smbd, smbpasswd and testparm get
// --configfile=STATE/smb.conf, and that file names every folder Samba writes to (private dir
// with the tdbsam passdb and secrets, lock, state, cache, pid and ncalrpc dirs, log file) inside
// the state folder, turns off registry shares, user shares, printing and NetBIOS, and includes
// nothing. It allows SMB 2.1 and later only (server min protocol = SMB2_10; SMB1 clients are
// refused at negotiation), requires signing (server signing = mandatory, as Windows 11 does),
// NTLMv2 only, no guest (map to guest = never, restrict anonymous = 2), read only.
//
// Accounts: Samba's passdb needs a Unix user behind every SMB account, and a standalone server
// applies "username map" before checking the password, so the password checked is the one of
// the Unix user a login maps to. pxewim therefore generates one password per Unix user: the
// client-visible account name (Account.Name) is mapped to a dedicated system user
// (Account.User, e.g. "pxewim-smb"; created by the caller or the package's postinst) whose
// passdb entry holds the generated password, set with smbpasswd on our config at each start.
// Credentials are handed to smbpasswd on stdin, never on a command line, in a URL or in a log.
//
// Private users (Config.Private): for many accounts (one per client), each needs a Unix user of
// its own name, but none should be added to the system. smbd and smbpasswd then run with
// nss_wrapper (Samba's own NSS test library, Debian libnss-wrapper: LD_PRELOAD with
// NSS_WRAPPER_PASSWD and NSS_WRAPPER_GROUP) reading a passwd and group file in our state
// folder: each account is a line there with the uid and gid of one system user (nobody by
// default), in the group pxewim-smb that the shares admit (valid users = @pxewim-smb). Samba
// resolves the account's name to that uid when it builds the session (getpwnam), so every
// client reads the share as that one system user, and no "force user" or "username map" is
// needed. The system's /etc/passwd, /etc/group and nsswitch.conf are neither read by smbd nor
// changed. Accounts can be added while smbd runs (AddAccount): nss_wrapper rereads the passwd
// file when it changes and smbd reads the tdbsam passdb at each login.
//
// smbd runs in the foreground in a process group of its own (its per-connection children
// with it), is restarted with a backoff (1 s doubling to 30 s, reset after a minute up) when it
// dies, and is stopped with the context: SIGTERM to the group, SIGKILL after 5 s. An smbd left
// by a run that crashed is found by the pid file in our state folder (its command line names
// our config) and stopped before the new one starts. Status reports what the dashboard and
// /metrics show.
package smbshare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config configures a Server.
type Config struct {
	// Dir is the state folder (absolute; made 0755, its private folder 0700). It holds
	// smb.conf and everything Samba writes. The folders above it must let the accounts' unix
	// users through.
	Dir string
	// Port is the TCP port smbd listens on (Windows' net use only talks to 445).
	Port int
	// Addrs are the addresses smbd binds (interfaces + bind interfaces only); empty binds all.
	Addrs    []netip.Addr
	Shares   []Share
	Accounts []Account
	// Smbd and Smbpasswd are the programs; empty finds them on PATH (and /usr/sbin).
	Smbd, Smbpasswd string
	// Private, when set, keeps the accounts' unix users in a private passwd file (see the
	// package doc): Account.User must equal Account.Name, and Accounts may be empty at start.
	Private *PrivateUsers
	Logger  *slog.Logger
	// MinBackoff and MaxBackoff bound the wait before a restart (1 s and 30 s if zero).
	MinBackoff, MaxBackoff time.Duration
}

// PrivateUsers gives every account a unix user of its own name that exists only for smbd.
type PrivateUsers struct {
	// UID and GID are the ids every account runs as (a system user's, e.g. nobody's: the
	// share's folders must let it read).
	UID, GID int
	// Wrapper is the nss_wrapper library ("" finds it: FindNSSWrapper).
	Wrapper string
}

// MaxAccounts bounds the accounts of one server (each is a passdb entry and a passwd line).
const MaxAccounts = 4096

// FindNSSWrapper returns the path of libnss_wrapper.so, or an error saying how to install it.
func FindNSSWrapper() (string, error) {
	for _, pat := range []string{"/usr/lib/*/libnss_wrapper.so", "/usr/lib64/libnss_wrapper.so", "/usr/lib/libnss_wrapper.so", "/usr/local/lib/libnss_wrapper.so"} {
		ms, _ := filepath.Glob(pat)
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
				return m, nil
			}
		}
	}
	return "", errors.New("libnss_wrapper.so not found (per-client SMB accounts need it): apt-get install libnss-wrapper")
}

// Status is the share's state for the dashboard and /metrics.
type Status struct {
	Running   bool      // smbd is up and accepting connections on Port
	PID       int       // smbd's process id while running
	Port      int       // the port smbd listens on
	Shares    []string  // share names
	Starts    int       // times smbd was started
	Restarts  int       // starts after the first (smbd died or failed)
	LastError string    // why smbd last stopped or failed, "" if never
	Since     time.Time // when the current smbd became ready (zero while down)
}

// Server supervises one smbd.
type Server struct {
	cfg       Config
	log       *slog.Logger
	smbd      string
	smbpasswd string
	env       []string // environment of smbd and smbpasswd

	acctMu   sync.Mutex // accounts, the passwd file, smbpasswd runs
	accounts []Account

	mu   sync.Mutex
	st   Status
	pgid int // process group of the running smbd, 0 when none

	done chan struct{}
}

// Find returns the smbd program's path, or an error saying how to install it.
func Find() (string, error) {
	return findProg("smbd")
}

func findProg(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := d + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (Samba): apt-get install samba", name)
}

// Start validates cfg, writes the config, sets the accounts' passwords and starts smbd under
// supervision until ctx ends. It returns once smbd accepts connections, or with the reason the
// first start failed (the supervisor keeps retrying in the background either way unless the
// configuration itself is refused).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	smbd := cfg.Smbd
	if smbd == "" {
		p, err := Find()
		if err != nil {
			return nil, err
		}
		smbd = p
	}
	pw := cfg.Smbpasswd
	if pw == "" {
		p, err := findProg("smbpasswd")
		if err != nil {
			return nil, err
		}
		pw = p
	}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	if cfg.Private != nil {
		w := cfg.Private.Wrapper
		if w == "" {
			p, err := FindNSSWrapper()
			if err != nil {
				return nil, fmt.Errorf("smbshare: %w", err)
			}
			w = p
		}
		if cfg.Private.UID <= 0 || cfg.Private.GID <= 0 {
			return nil, errors.New("smbshare: private users need a uid and gid other than root's")
		}
		env = append(env, "LD_PRELOAD="+w, "NSS_WRAPPER_PASSWD="+nssPasswd(cfg.Dir), "NSS_WRAPPER_GROUP="+nssGroup(cfg.Dir))
	}
	if len(cfg.Accounts) > MaxAccounts {
		return nil, fmt.Errorf("smbshare: %d accounts, at most %d", len(cfg.Accounts), MaxAccounts)
	}
	params := confParams{dir: cfg.Dir, port: cfg.Port, addrs: cfg.Addrs, shares: cfg.Shares, accounts: cfg.Accounts, private: cfg.Private != nil}
	conf, umap, err := params.render()
	if err != nil {
		return nil, fmt.Errorf("smbshare: %w", err)
	}
	// smbd's per-connection processes run with the account's unix user as effective uid for
	// much of their work, and reach the lock folder (share modes, g_lock, messaging) then: the
	// state folder must let that user through (0755; with 0700 concurrent opens of one file
	// fail with NT_STATUS_INVALID_PARAMETER at close, found by the two-client test). Secrets
	// stay in the 0700 private folder.
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("smbshare: state folder: %w", err)
	}
	if err := os.Chmod(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("smbshare: state folder: %w", err)
	}
	for _, d := range stateDirs(cfg.Dir) {
		// Samba wants its lock, state and cache folders 0755; the state folder itself and
		// the private folder (passdb, secrets) stay 0700.
		mode := os.FileMode(0o755)
		if d == privatePath(cfg.Dir) {
			mode = 0o700
		}
		if err := os.MkdirAll(d, mode); err != nil {
			return nil, fmt.Errorf("smbshare: state folder: %w", err)
		}
	}
	stopStale(cfg.Dir, log)
	if err := writeFile(confPath(cfg.Dir), conf); err != nil {
		return nil, err
	}
	if err := writeFile(mapPath(cfg.Dir), umap); err != nil {
		return nil, err
	}
	// The passdb is ours alone: start from an empty one so accounts of an earlier run are gone.
	for _, f := range []string{"passdb.tdb"} {
		if err := os.Remove(privatePath(cfg.Dir) + "/" + f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("smbshare: reset passdb: %w", err)
		}
	}
	s := &Server{cfg: cfg, log: log, smbd: smbd, smbpasswd: pw, env: env, done: make(chan struct{})}
	if cfg.Private != nil {
		if err := s.writeNSS(nil); err != nil {
			return nil, err
		}
	}
	for _, a := range cfg.Accounts {
		if err := s.setPassword(ctx, a); err != nil {
			return nil, err
		}
		s.accounts = append(s.accounts, a)
	}
	s.st.Port = cfg.Port
	for _, sh := range cfg.Shares {
		s.st.Shares = append(s.st.Shares, sh.Name)
	}
	ready := make(chan error, 1)
	go s.supervise(ctx, ready)
	select {
	case err := <-ready:
		if err != nil {
			return s, fmt.Errorf("smbshare: smbd did not start: %w (retrying in the background)", err)
		}
	case <-ctx.Done():
		<-s.done
		return nil, ctx.Err()
	}
	return s, nil
}

func writeFile(name, data string) error { return writeFileMode(name, data, 0o600) }

func writeFileMode(name, data string, mode os.FileMode) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), mode); err != nil {
		return fmt.Errorf("smbshare: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("smbshare: %w", err)
	}
	return nil
}

// writeNSS writes the private passwd and group files (private mode) with the accounts so far
// plus extra: root (smbd runs as root and looks itself up) and one line per account, all with
// the configured uid and gid. Replaced atomically; nss_wrapper rereads a changed file.
func (s *Server) writeNSS(extra *Account) error {
	p := s.cfg.Private
	var pw strings.Builder
	pw.WriteString("root:x:0:0:root:/root:/usr/sbin/nologin\n")
	// smbd refuses to start without its guest account (guest account = nobody), though no
	// login is ever mapped to it (map to guest = never; nobody is not in our passdb).
	fmt.Fprintf(&pw, "nobody:x:%d:%d:nobody:/nonexistent:/usr/sbin/nologin\n", p.UID, p.GID)
	line := func(a Account) {
		fmt.Fprintf(&pw, "%s:x:%d:%d:pxewim SMB account:/nonexistent:/usr/sbin/nologin\n", a.User, p.UID, p.GID)
	}
	for _, a := range s.accounts {
		line(a)
	}
	if extra != nil {
		line(*extra)
	}
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", privateGroup, p.GID)
	if err := writeFileMode(nssGroup(s.cfg.Dir), group, 0o644); err != nil {
		return err
	}
	return writeFileMode(nssPasswd(s.cfg.Dir), pw.String(), 0o644)
}

// AddAccount adds an account while smbd runs (it can log in at once), or changes the password
// of one with the same name. In private mode its unix user is added to the private passwd
// file; otherwise the unix user must exist on the system.
func (s *Server) AddAccount(ctx context.Context, a Account) error {
	if err := validAccountName(a.Name); err != nil {
		return fmt.Errorf("smbshare: %w", err)
	}
	if err := validUnixUser(a.User); err != nil {
		return fmt.Errorf("smbshare: %w", err)
	}
	if err := ValidPassword(a.Password); err != nil {
		return fmt.Errorf("smbshare: account %s: %w", a.Name, err)
	}
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	if s.cfg.Private == nil {
		return errors.New("smbshare: accounts are added while running only with private users")
	}
	if a.User != a.Name {
		return fmt.Errorf("smbshare: account %s: with private users the unix user is the account name", a.Name)
	}
	if a.Name == "root" || a.Name == "nobody" {
		return fmt.Errorf("smbshare: account name %s is reserved", a.Name)
	}
	idx := -1
	for i, o := range s.accounts {
		if strings.EqualFold(o.Name, a.Name) {
			idx = i
		}
	}
	if idx < 0 {
		if len(s.accounts) >= MaxAccounts {
			return fmt.Errorf("smbshare: at most %d accounts", MaxAccounts)
		}
		if err := s.writeNSS(&a); err != nil {
			return err
		}
	}
	if err := s.setPassword(ctx, a); err != nil {
		if idx < 0 {
			s.writeNSS(nil) // back to the accounts smbd knows
		}
		return err
	}
	if idx < 0 {
		s.accounts = append(s.accounts, a)
	} else {
		s.accounts[idx] = a
	}
	return nil
}

// Accounts returns the names of the accounts smbd accepts.
func (s *Server) Accounts() []string {
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	var out []string
	for _, a := range s.accounts {
		out = append(out, a.Name)
	}
	return out
}

// setPassword adds a's Unix user to our passdb with a's password (smbpasswd -a on our config,
// the password twice on stdin: it never appears on a command line).
func (s *Server) setPassword(ctx context.Context, a Account) error {
	cmd := exec.CommandContext(ctx, s.smbpasswd, "-c", confPath(s.cfg.Dir), "-s", "-a", a.User)
	cmd.Stdin = strings.NewReader(a.Password + "\n" + a.Password + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = s.env
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if strings.Contains(msg, "Failed to add entry") || strings.Contains(msg, "Failed to find") {
			msg += " (the unix user must exist: useradd --system --no-create-home --shell /usr/sbin/nologin " + a.User + ")"
		}
		return fmt.Errorf("smbshare: smbpasswd for account %s (unix user %s): %w: %s", a.Name, a.User, err, msg)
	}
	return nil
}

// stopStale stops an smbd a previous run of ours left behind: the pid file in our state folder
// names it, and its command line must name our config file (a reused pid is left alone).
func stopStale(dir string, log *slog.Logger) {
	b, err := os.ReadFile(pidPath(dir))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("--configfile="+confPath(dir))) {
		return
	}
	log.Warn("smbshare: stopping an smbd left by an earlier run", "pid", pid)
	pgid, err := syscall.Getpgid(pid)
	if err != nil || pgid != pid { // our smbd leads its own group; otherwise signal it alone
		pgid = 0
	}
	stopProc(pid, pgid, 5*time.Second)
}

// stopProc sends SIGTERM to the group (or the process), then SIGKILL after grace.
func stopProc(pid, pgid int, grace time.Duration) {
	target := pid
	if pgid > 0 {
		target = -pgid
	}
	syscall.Kill(target, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(target, syscall.SIGKILL)
	// Wait (bounded) until the whole group is gone, so a restart or the caller never races the
	// old processes.
	for end := time.Now().Add(5 * time.Second); pgid > 0 && time.Now().Before(end); {
		if err := syscall.Kill(target, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Status returns a snapshot of the share's state.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Shares = append([]string(nil), s.st.Shares...)
	return st
}

// Done is closed once smbd is stopped after the context ended.
func (s *Server) Done() <-chan struct{} { return s.done }

// ConfigFile is the smb.conf smbd runs with.
func (s *Server) ConfigFile() string { return confPath(s.cfg.Dir) }

func (s *Server) setErr(err error) {
	s.mu.Lock()
	s.st.LastError = err.Error()
	s.mu.Unlock()
}

// supervise runs smbd until ctx ends, restarting it with a backoff. ready gets the outcome of
// the first start.
func (s *Server) supervise(ctx context.Context, ready chan<- error) {
	defer close(s.done)
	backoff := s.cfg.MinBackoff
	first := true
	report := func(err error) {
		if first {
			ready <- err
			first = false
		}
	}
	for {
		started := time.Now()
		err := s.runOnce(ctx, report)
		if ctx.Err() != nil {
			report(ctx.Err())
			return
		}
		s.setErr(err)
		s.log.Error("smbshare: smbd stopped; restarting", "err", err, "in", backoff)
		report(err)
		if time.Since(started) > time.Minute {
			backoff = s.cfg.MinBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
		s.mu.Lock()
		s.st.Restarts++
		s.mu.Unlock()
	}
}

// runOnce starts smbd, reports readiness, and returns when it exits (or ctx ends and it is
// stopped).
func (s *Server) runOnce(ctx context.Context, report func(error)) error {
	cmd := exec.Command(s.smbd, "--foreground", "--no-process-group", "--configfile="+confPath(s.cfg.Dir))
	cmd.Env = s.env
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group (the per-connection children join it), killed with the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.smbd, err)
	}
	pid := cmd.Process.Pid
	s.mu.Lock()
	s.pgid = pid
	s.st.Starts++
	s.st.PID = pid
	s.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	readyCtx, cancelReady := context.WithCancel(ctx)
	defer cancelReady()
	readyCh := make(chan error, 1)
	go func() { readyCh <- s.waitListening(readyCtx, 30*time.Second) }()

	cleanup := func() {
		// smbd's per-connection children stay in its group: stop them too.
		syscall.Kill(-pid, syscall.SIGTERM)
		s.mu.Lock()
		s.st.Running, s.st.PID, s.st.Since, s.pgid = false, 0, time.Time{}, 0
		s.mu.Unlock()
	}
	for {
		select {
		case err := <-readyCh:
			readyCh = nil
			if err != nil {
				stopProc(pid, pid, 5*time.Second)
				<-exited
				cleanup()
				return fmt.Errorf("smbd (pid %d) not listening on port %d: %w; %s", pid, s.cfg.Port, err, out.tail())
			}
			s.mu.Lock()
			s.st.Running, s.st.Since = true, time.Now()
			s.mu.Unlock()
			s.log.Info("smbshare: smbd running", "pid", pid, "port", s.cfg.Port, "config", confPath(s.cfg.Dir))
			report(nil)
		case err := <-exited:
			stopProc(pid, pid, 2*time.Second) // leftover children of the group
			cleanup()
			if err == nil {
				err = errors.New("exited")
			}
			return fmt.Errorf("smbd (pid %d) %w; %s", pid, err, out.tail())
		case <-ctx.Done():
			stopProc(pid, pid, 5*time.Second)
			<-exited
			cleanup()
			s.log.Info("smbshare: smbd stopped", "pid", pid)
			return ctx.Err()
		}
	}
}

// waitListening waits until smbd accepts TCP connections on the port (on the first configured
// address, or loopback).
func (s *Server) waitListening(ctx context.Context, limit time.Duration) error {
	addr := netip.MustParseAddr("127.0.0.1")
	if len(s.cfg.Addrs) > 0 {
		addr = s.cfg.Addrs[0]
	}
	target := netip.AddrPortFrom(addr, uint16(s.cfg.Port)).String()
	deadline := time.Now().Add(limit)
	wait := 20 * time.Millisecond
	for {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", target)
		if err == nil {
			c.Close()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// tailBuffer keeps the last 2 KiB smbd wrote to stdout/stderr, for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = append(t.b[:0], t.b[len(t.b)-2048:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "no output (see its log file)"
	}
	return "output: " + strings.ReplaceAll(s, "\n", " | ")
}
