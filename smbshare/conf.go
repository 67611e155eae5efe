package smbshare

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// Share is one read-only share.
type Share struct {
	// Name is the share name clients use (\\server\NAME): 1-64 of A-Z a-z 0-9 . _ -, not a
	// name Samba reserves (global, homes, printers, print$, ipc$).
	Name string
	// Path is the absolute folder shared (the storefuse view). It may hold any printable
	// character except % (Samba's substitutions), \ (line continuation), " and control
	// characters, and may not start or end with a space.
	Path string
	// Comment is shown by share listings; the same characters as Path are allowed.
	Comment string
}

// Account is one SMB login. Samba's passdb needs a Unix user behind each account, and it checks
// the password of the Unix name the login maps to ("username map" is applied before the
// password is checked in a standalone server), so each password needs its own Unix user:
// Name is what the client types and maps to User, which must exist on the host.
type Account struct {
	Name     string // the SMB user name: 1-32 of A-Z a-z 0-9 . _ -
	User     string // the Unix user (a valid, existing system user name)
	Password string // 8-127 printable ASCII characters, no spaces (handed to smbpasswd on stdin)
}

// confParams are the values the generated smb.conf needs besides the shares.
type confParams struct {
	dir      string       // state folder: private, lock, state, cache, pid, log all live in it
	port     int          // TCP port smbd listens on
	addrs    []netip.Addr // addresses to bind; empty binds all
	shares   []Share
	accounts []Account
	// private: the accounts' unix users live in our private passwd file (PrivateUsers); they
	// may be none at start (added later), and the shares admit the private group.
	private bool
}

// privateGroup is the group of every account in private mode, in our private group file only.
const privateGroup = "pxewim-smb"

var reservedShares = map[string]bool{"global": true, "homes": true, "printers": true, "print$": true, "ipc$": true}

// validShareName: the strict share-name grammar (see Share.Name).
func validShareName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("share name %q: 1-64 characters", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("share name %q: only A-Z a-z 0-9 . _ - allowed", s)
		}
	}
	if reservedShares[strings.ToLower(s)] {
		return fmt.Errorf("share name %q is reserved by Samba", s)
	}
	return nil
}

// safeValue checks a free-text value written after "key = " in smb.conf: Samba's parser ends
// a value at a newline (so no control characters), joins a line ending in \ with the next,
// trims spaces at both ends, substitutes %X macros in most values, and treats quotes
// specially in lists. Anything that could change what Samba reads is refused, never escaped.
func safeValue(what, s string) error {
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%s %q: leading or trailing space", what, s)
	}
	for _, c := range s {
		switch {
		case c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0):
			return fmt.Errorf("%s %q: control character %U", what, s, c)
		case c == '%':
			return fmt.Errorf("%s %q: %% (Samba substitutes %%X macros in values)", what, s)
		case c == '\\':
			return fmt.Errorf("%s %q: backslash (Samba joins a line ending in \\ with the next)", what, s)
		case c == '"':
			return fmt.Errorf("%s %q: double quote", what, s)
		case c == 0xfffd:
			return fmt.Errorf("%s %q: invalid UTF-8", what, s)
		}
	}
	return nil
}

func validPath(s string) error {
	if err := safeValue("share path", s); err != nil {
		return err
	}
	if !filepath.IsAbs(s) || filepath.Clean(s) != s {
		return fmt.Errorf("share path %q: must be absolute and clean", s)
	}
	return nil
}

func validAccountName(s string) error {
	if s == "" || len(s) > 32 {
		return fmt.Errorf("account name %q: 1-32 characters", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("account name %q: only A-Z a-z 0-9 . _ - allowed", s)
		}
	}
	if s[0] == '-' || s[0] == '.' {
		return fmt.Errorf("account name %q: must not start with a dash or a dot", s)
	}
	return nil
}

// validUnixUser is Debian's default NAME_REGEX for system users.
func validUnixUser(s string) error {
	if s == "" || len(s) > 32 {
		return fmt.Errorf("unix user %q: 1-32 characters", s)
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-')
		if !ok {
			return fmt.Errorf("unix user %q: only a-z 0-9 _ - (starting with a-z or _)", s)
		}
	}
	return nil
}

// ValidPassword reports whether p can be handed to smbpasswd: 8-127 printable ASCII, no space.
func ValidPassword(p string) error {
	if len(p) < 8 || len(p) > 127 {
		return errors.New("password: 8-127 characters")
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= 0x20 || p[i] >= 0x7f {
			return errors.New("password: printable ASCII without spaces only")
		}
	}
	return nil
}

func (p *confParams) validate() error {
	if err := validPath(p.dir); err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	if p.port < 1 || p.port > 65535 {
		return fmt.Errorf("port %d out of range", p.port)
	}
	if len(p.shares) == 0 {
		return errors.New("no share")
	}
	seen := map[string]bool{}
	for _, sh := range p.shares {
		if err := validShareName(sh.Name); err != nil {
			return err
		}
		if seen[strings.ToLower(sh.Name)] {
			return fmt.Errorf("share name %q given twice", sh.Name)
		}
		seen[strings.ToLower(sh.Name)] = true
		if err := validPath(sh.Path); err != nil {
			return err
		}
		if err := safeValue("share comment", sh.Comment); err != nil {
			return err
		}
	}
	if len(p.accounts) == 0 && !p.private {
		return errors.New("no account (guest access is never allowed)")
	}
	users, names := map[string]bool{}, map[string]bool{}
	for _, a := range p.accounts {
		if err := validAccountName(a.Name); err != nil {
			return err
		}
		if err := validUnixUser(a.User); err != nil {
			return err
		}
		if p.private && a.User != a.Name {
			return fmt.Errorf("account %s: with private users the unix user is the account name", a.Name)
		}
		if err := ValidPassword(a.Password); err != nil {
			return fmt.Errorf("account %s: %w", a.Name, err)
		}
		if users[a.User] {
			return fmt.Errorf("unix user %s behind two accounts (Samba keeps one password per unix user)", a.User)
		}
		if names[strings.ToLower(a.Name)] {
			return fmt.Errorf("account name %q given twice", a.Name)
		}
		users[a.User], names[strings.ToLower(a.Name)] = true, true
	}
	for _, a := range p.addrs {
		if !a.IsValid() {
			return errors.New("invalid listen address")
		}
	}
	return nil
}

// Paths of the files smbd uses, all inside the state folder.
func confPath(dir string) string    { return filepath.Join(dir, "smb.conf") }
func mapPath(dir string) string     { return filepath.Join(dir, "users.map") }
func pidPath(dir string) string     { return filepath.Join(dir, "run", "smbd.pid") }
func logPath(dir string) string     { return filepath.Join(dir, "log", "smbd.log") }
func privatePath(dir string) string { return filepath.Join(dir, "private") }
func nssPasswd(dir string) string   { return filepath.Join(dir, "nss", "passwd") }
func nssGroup(dir string) string    { return filepath.Join(dir, "nss", "group") }

// stateDirs are the folders the config names; all are created before smbd starts.
func stateDirs(dir string) []string {
	return []string{privatePath(dir), filepath.Join(dir, "lock"), filepath.Join(dir, "state"),
		filepath.Join(dir, "cache"), filepath.Join(dir, "run"), filepath.Join(dir, "log"),
		filepath.Join(dir, "state", "ncalrpc"), filepath.Join(dir, "nss")}
}

// render writes smb.conf and the username map. Every value is validated first (validate);
// the fixed settings are chosen so that nothing of the system's Samba setup is read or written:
// every folder Samba writes to is ours, the passdb is a tdbsam file in our private folder, no
// registry or user shares, no printers, no NetBIOS, and "config backend = file" with no include.
func (p *confParams) render() (conf, usermap string, err error) {
	if err := p.validate(); err != nil {
		return "", "", err
	}
	d := p.dir
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "\t%s = %s\n", k, v) }
	b.WriteString("# Written by pxewim (package smbshare) for its Windows Setup share; rewritten at each start.\n")
	b.WriteString("[global]\n")
	kv("config backend", "file")
	kv("server role", "standalone server")
	kv("workgroup", "WORKGROUP")
	kv("netbios name", "PXEWIM")
	kv("server string", "pxewim Windows Setup media")
	kv("passdb backend", "tdbsam:"+filepath.Join(privatePath(d), "passdb.tdb"))
	kv("private dir", privatePath(d))
	kv("lock directory", filepath.Join(d, "lock"))
	kv("state directory", filepath.Join(d, "state"))
	kv("cache directory", filepath.Join(d, "cache"))
	kv("pid directory", filepath.Join(d, "run"))
	kv("ncalrpc dir", filepath.Join(d, "state", "ncalrpc"))
	kv("log file", logPath(d))
	kv("max log size", "10000")
	kv("logging", "file")
	kv("smb ports", strconv.Itoa(p.port))
	if len(p.addrs) > 0 {
		var as []string
		for _, a := range p.addrs {
			as = append(as, a.String())
		}
		kv("interfaces", strings.Join(as, " "))
		kv("bind interfaces only", "yes")
	}
	kv("disable netbios", "yes")
	kv("load printers", "no")
	kv("printing", "bsd")
	kv("printcap name", "/dev/null")
	kv("disable spoolss", "yes")
	kv("registry shares", "no")
	kv("usershare path", "")
	kv("usershare max shares", "0")
	kv("server min protocol", "SMB2_10")
	kv("server signing", "mandatory")
	kv("server smb encrypt", "if_required")
	kv("ntlm auth", "ntlmv2-only")
	kv("map to guest", "never")
	kv("restrict anonymous", "2")
	kv("guest ok", "no")
	kv("read only", "yes")
	kv("username map", mapPath(d))
	kv("obey pam restrictions", "no")
	kv("unix password sync", "no")
	kv("host msdfs", "no")
	kv("wide links", "no")
	kv("follow symlinks", "no")
	kv("allow insecure wide links", "no")
	kv("store dos attributes", "no")
	kv("ea support", "no")
	kv("kernel oplocks", "no")
	var valid []string
	for _, a := range p.accounts {
		valid = append(valid, a.User)
	}
	if p.private {
		// Every account of our private passwd file (and nobody else: no system user is in
		// our passdb) is in the group; accounts added while smbd runs are admitted at once.
		valid = []string{"@" + privateGroup}
	}
	for _, sh := range p.shares {
		fmt.Fprintf(&b, "[%s]\n", sh.Name)
		kv("path", sh.Path)
		if sh.Comment != "" {
			kv("comment", sh.Comment)
		}
		kv("read only", "yes")
		kv("guest ok", "no")
		kv("browseable", "yes")
		kv("valid users", strings.Join(valid, " "))
		kv("write list", "")
	}
	var m strings.Builder
	for _, a := range p.accounts {
		if a.Name != a.User {
			fmt.Fprintf(&m, "%s = %s\n", a.User, a.Name)
		}
	}
	return b.String(), m.String(), nil
}
