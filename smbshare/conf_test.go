package smbshare

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func baseParams(dir string) confParams {
	return confParams{
		dir:      dir,
		port:     4450,
		addrs:    []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		shares:   []Share{{Name: "pxewim-setup", Path: "/var/lib/pxewim/setup-view", Comment: "Windows Setup media"}},
		accounts: []Account{{Name: "pxewim", User: "nobody", Password: "Abcdefgh12345678"}},
	}
}

// parseConf is a small reading of smb.conf by Samba's rules (params.c): a line is a section
// header "[name]" or "key = value" (trimmed), lines starting with # or ; are comments, and a
// line ending in \ continues on the next. It returns sections in order with their keys.
func parseConf(s string) (sections []string, kv map[string]map[string]string, err error) {
	kv = map[string]map[string]string{}
	cur := ""
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + lines[i]
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#' || t[0] == ';':
		case t[0] == '[':
			end := strings.IndexByte(t, ']')
			if end < 0 {
				return nil, nil, fmt.Errorf("line %d: unterminated section", i+1)
			}
			cur = strings.TrimSpace(t[1:end])
			sections = append(sections, cur)
			kv[cur] = map[string]string{}
		default:
			k, v, ok := strings.Cut(t, "=")
			if !ok || cur == "" {
				return nil, nil, fmt.Errorf("line %d: %q is not key = value", i+1, t)
			}
			kv[cur][strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return sections, kv, nil
}

// checkRendered: the config parses to exactly [global] and the shares, each share's path and
// comment read back as given, no include, no % anywhere, the security settings present.
func checkRendered(t testing.TB, p confParams, conf string) {
	t.Helper()
	secs, kv, err := parseConf(conf)
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	want := []string{"global"}
	for _, sh := range p.shares {
		want = append(want, sh.Name)
	}
	if strings.Join(secs, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("sections %q, want %q\n%s", secs, want, conf)
	}
	for _, sh := range p.shares {
		if got := kv[sh.Name]["path"]; got != sh.Path {
			t.Fatalf("share %s path reads back %q, want %q", sh.Name, got, sh.Path)
		}
		if got := kv[sh.Name]["comment"]; got != sh.Comment {
			t.Fatalf("share %s comment reads back %q, want %q", sh.Name, got, sh.Comment)
		}
		if kv[sh.Name]["read only"] != "yes" || kv[sh.Name]["guest ok"] != "no" {
			t.Fatalf("share %s not read-only/no-guest", sh.Name)
		}
	}
	for sec, m := range kv {
		for k := range m {
			if strings.Contains(k, "include") || k == "config file" || k == "copy" {
				t.Fatalf("[%s] has %q", sec, k)
			}
		}
	}
	if strings.Contains(conf, "%") {
		t.Fatalf("config holds %%:\n%s", conf)
	}
	g := kv["global"]
	for k, v := range map[string]string{"server min protocol": "SMB2_10", "server signing": "mandatory",
		"map to guest": "never", "restrict anonymous": "2", "config backend": "file", "registry shares": "no"} {
		if g[k] != v {
			t.Fatalf("global %s = %q, want %q", k, g[k], v)
		}
	}
	for _, k := range []string{"private dir", "lock directory", "state directory", "cache directory", "pid directory", "ncalrpc dir", "log file"} {
		if !strings.HasPrefix(g[k], p.dir+"/") {
			t.Fatalf("global %s = %q is outside the state folder %s", k, g[k], p.dir)
		}
	}
}

var hostileShareNames = []string{"", "global", "GLOBAL", "homes", "IPC$", "printers", "a]b", "a[b", "a b",
	"a\nb", "a%Ub", "a\\", "a/b", "a\x00", strings.Repeat("x", 65), "ü", "a;b", "a=b", "a\"b"}

var hostilePaths = []string{"", "relative/x", "/a/../etc", "/a/b/", "/a\n[x]\npath = /etc", "/a%U", "/a%%",
	"/a\\", "/a\\\ninclude = /etc/x", "/a\r", "/a\"", " /a", "/a ", "/a\x7f", "/a\u0085", "/a\xff", "/a\tb"}

var hostileComments = []string{"x\ninclude = /etc/samba/smb.conf", "x\\", "%m", "x\r\n[global]", " x", "\"x\""}

// TestRenderRefusesHostile: every hostile share name, path and comment is refused with an error
// naming the value; none reaches the config.
func TestRenderRefusesHostile(t *testing.T) {
	for _, n := range hostileShareNames {
		p := baseParams("/srv/state")
		p.shares[0].Name = n
		if conf, _, err := p.render(); err == nil {
			t.Errorf("share name %q accepted:\n%s", n, conf)
		}
	}
	for _, path := range hostilePaths {
		p := baseParams("/srv/state")
		p.shares[0].Path = path
		if conf, _, err := p.render(); err == nil {
			t.Errorf("path %q accepted:\n%s", path, conf)
		}
		p = baseParams(path)
		if _, _, err := p.render(); err == nil {
			t.Errorf("state folder %q accepted", path)
		}
	}
	for _, c := range hostileComments {
		p := baseParams("/srv/state")
		p.shares[0].Comment = c
		if conf, _, err := p.render(); err == nil {
			t.Errorf("comment %q accepted:\n%s", c, conf)
		}
	}
	for _, a := range []Account{
		{Name: "x y", User: "nobody", Password: "Abcdefgh1234"},
		{Name: "x", User: "Root", Password: "Abcdefgh1234"},
		{Name: "x", User: "a=b", Password: "Abcdefgh1234"},
		{Name: "x", User: "nobody", Password: "short"},
		{Name: "x", User: "nobody", Password: "with space pw"},
		{Name: "x", User: "nobody", Password: "newline\npassword"},
		{Name: "-x", User: "nobody", Password: "Abcdefgh1234"},
	} {
		p := baseParams("/srv/state")
		p.accounts = []Account{a}
		if _, _, err := p.render(); err == nil {
			t.Errorf("account %+v accepted", a)
		}
	}
	p := baseParams("/srv/state")
	p.accounts = nil
	if _, _, err := p.render(); err == nil {
		t.Error("no account accepted (guest-only share)")
	}
	p = baseParams("/srv/state")
	p.accounts = append(p.accounts, Account{Name: "other", User: "nobody", Password: "Zyxwvuts98765"})
	if _, _, err := p.render(); err == nil {
		t.Error("two accounts on one unix user accepted")
	}
}

// TestRenderReadBackByTestparm: Samba's own parser (testparm) reads the generated config,
// including a path with spaces, quotes-free punctuation and unicode, as we meant it: the same
// sections, the same path, and it finds nothing to complain about.
func TestRenderReadBackByTestparm(t *testing.T) {
	if _, err := exec.LookPath("testparm"); err != nil {
		t.Skip("needs testparm: apt-get install samba-common-bin")
	}
	dir := t.TempDir()
	p := baseParams(dir)
	p.shares = append(p.shares, Share{Name: "Win_11.x-64", Path: "/srv/a b/#c;d/ü [x] = y", Comment: "it's [odd] = ok; #1"})
	conf, _, err := p.render()
	if err != nil {
		t.Fatal(err)
	}
	checkRendered(t, p, conf)
	for _, d := range stateDirs(dir) {
		os.MkdirAll(d, 0o755)
	}
	cf := filepath.Join(dir, "smb.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("testparm", "-s", "--debuglevel=1", cf)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testparm: %v\n%s%s", err, out, stderr.String())
	}
	if strings.Contains(stderr.String(), "Unknown parameter") || strings.Contains(stderr.String(), "WARNING") {
		t.Errorf("testparm complains:\n%s", stderr.String())
	}
	secs, kv, err := parseConf(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(secs, ",") != "global,pxewim-setup,Win_11.x-64" {
		t.Fatalf("testparm sections %q\n%s", secs, out)
	}
	if got := kv["Win_11.x-64"]["path"]; got != "/srv/a b/#c;d/ü [x] = y" {
		t.Fatalf("testparm reads path %q", got)
	}
	if kv["global"]["server signing"] != "required" || kv["global"]["server min protocol"] != "SMB2" ||
		kv["global"]["map to guest"] != "" /* "never" is the default testparm -s leaves out */ || kv["global"]["restrict anonymous"] != "2" {
		t.Fatalf("testparm global: %v", kv["global"])
	}
	if strings.Contains(string(out), "/etc/samba") {
		t.Fatalf("testparm output names /etc/samba:\n%s", out)
	}
}

// FuzzRender: any share name, path and comment either is refused or renders a config that
// reads back (by Samba's line rules) as exactly the intended sections and values.
func FuzzRender(f *testing.F) {
	for _, n := range hostileShareNames {
		f.Add(n, "/srv/x", "c")
	}
	for _, p := range hostilePaths {
		f.Add("s", p, "c")
	}
	for _, c := range hostileComments {
		f.Add("s", "/srv/x", c)
	}
	f.Add("Win11", "/srv/a b/ü", "ok")
	f.Fuzz(func(t *testing.T, name, path, comment string) {
		p := baseParams("/srv/state")
		p.shares[0] = Share{Name: name, Path: path, Comment: comment}
		conf, umap, err := p.render()
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		checkRendered(t, p, conf)
		if strings.Count(umap, "\n") != 1 {
			t.Fatalf("username map %q", umap)
		}
	})
}

// TestRenderPrivate: with private users the shares admit the private group only, no account is
// needed at start, no username map line is written, and an account whose unix user differs
// from its name is refused (the private passwd file names each account as itself).
func TestRenderPrivate(t *testing.T) {
	p := baseParams("/srv/state")
	p.private, p.accounts = true, nil
	conf, umap, err := p.render()
	if err != nil {
		t.Fatal(err)
	}
	_, kv, err := parseConf(conf)
	if err != nil {
		t.Fatal(err)
	}
	if v := kv["pxewim-setup"]["valid users"]; v != "@"+privateGroup {
		t.Errorf("valid users %q", v)
	}
	if umap != "" {
		t.Errorf("username map %q", umap)
	}
	p.accounts = []Account{{Name: "pxe-525400aa0001", User: "pxe-525400aa0001", Password: "Abcdefgh12345678"}}
	if _, _, err := p.render(); err != nil {
		t.Errorf("account named as its user: %v", err)
	}
	p.accounts = []Account{{Name: "pxe-525400aa0001", User: "nobody", Password: "Abcdefgh12345678"}}
	if _, _, err := p.render(); err == nil {
		t.Error("an account mapped to another unix user was accepted with private users")
	}
	p.private, p.accounts = false, nil
	if _, _, err := p.render(); err == nil {
		t.Error("no account without private users was accepted")
	}
}
