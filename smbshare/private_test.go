package smbshare

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPrivateAccounts: per-client accounts with private users (nss_wrapper, no system user
// added). smbd starts with no account at all (nobody can log in), then accounts for client A
// and client B are added while it runs: each reads the share with its own password; A's name
// with B's password, a made-up account, no credentials and a system user (root, nobody) are
// refused. A's password changed by a second AddAccount works and the old one no longer does.
// The system's passwd database never learns the accounts, and neither the smb.conf nor the
// private passwd file holds a password.
func TestPrivateAccounts(t *testing.T) {
	requireSamba(t)
	wrapper, err := FindNSSWrapper()
	if err != nil {
		t.Skipf("%v", err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no nobody user: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	dir := t.TempDir()
	shared := filepath.Join(dir, "media")
	os.MkdirAll(filepath.Join(shared, "sources"), 0o755)
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	data := []byte("install.wim stand-in " + strings.Repeat("x", 100000))
	os.WriteFile(filepath.Join(shared, "sources", "install.wim"), data, 0o644)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, Config{
		Dir:     filepath.Join(dir, "state"),
		Port:    port,
		Addrs:   []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Shares:  []Share{{Name: "setup", Path: shared}},
		Private: &PrivateUsers{UID: uid, GID: gid, Wrapper: wrapper},
	})
	if err != nil {
		cancel()
		l, _ := os.ReadFile(logPath(filepath.Join(dir, "state")))
		t.Fatalf("%v\n%s", err, l)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.Done():
		case <-time.After(20 * time.Second):
			t.Error("smbd not stopped 20 s after the context ended")
		}
	})
	f := &fixture{srv: srv, port: port, share: "//127.0.0.1/setup"}
	read := func(creds string) (string, error) {
		out := filepath.Join(t.TempDir(), "got")
		o, err := f.smbclient(t, "SMB3", creds, "get sources\\install.wim "+out)
		if err == nil {
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, data) {
				return o, fmt.Errorf("read %d bytes, content differs", len(got))
			}
		}
		return o, err
	}
	mustFail := func(what, creds string) {
		t.Helper()
		if o, err := read(creds); err == nil || !strings.Contains(o, "NT_STATUS_LOGON_FAILURE") && !strings.Contains(o, "NT_STATUS_ACCESS_DENIED") {
			t.Errorf("%s: want a refused login, got err %v:\n%s", what, err, o)
		}
	}
	a := Account{Name: "pxe-525400aa0001", User: "pxe-525400aa0001", Password: "ApassWord1234567"}
	b := Account{Name: "pxe-525400bb0002", User: "pxe-525400bb0002", Password: "BpassWord7654321"}
	mustFail("A before it was added", a.Name+"%"+a.Password)
	for _, acc := range []Account{a, b} {
		if err := srv.AddAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
	}
	if o, err := read(a.Name + "%" + a.Password); err != nil {
		t.Fatalf("client A: %v\n%s", err, o)
	}
	if o, err := read(b.Name + "%" + b.Password); err != nil {
		t.Fatalf("client B: %v\n%s", err, o)
	}
	mustFail("A's name with B's password", a.Name+"%"+b.Password)
	mustFail("made-up account", "pxe-0000deadbeef%"+a.Password)
	mustFail("no credentials", "")
	mustFail("root", "root%"+a.Password)
	mustFail("nobody", "nobody%"+a.Password)
	a2 := a
	a2.Password = "AnewPassWord98765"
	if err := srv.AddAccount(ctx, a2); err != nil {
		t.Fatal(err)
	}
	if o, err := read(a.Name + "%" + a2.Password); err != nil {
		t.Fatalf("client A, new password: %v\n%s", err, o)
	}
	mustFail("A's old password", a.Name+"%"+a.Password)
	if got := srv.Accounts(); len(got) != 2 {
		t.Errorf("accounts %v", got)
	}
	if _, err := user.Lookup(a.Name); err == nil {
		t.Errorf("the system knows %s", a.Name)
	}
	if out, _ := exec.Command("getent", "passwd", b.Name).CombinedOutput(); len(out) > 0 {
		t.Errorf("getent passwd %s: %s", b.Name, out)
	}
	for _, p := range []string{confPath(srv.cfg.Dir), nssPasswd(srv.cfg.Dir), nssGroup(srv.cfg.Dir), mapPath(srv.cfg.Dir)} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{a.Password, a2.Password, "BpassWord"} {
			if bytes.Contains(b, []byte(pw)) {
				t.Errorf("%s holds a password", p)
			}
		}
	}
	// Hostile account names and passwords are refused before anything is written.
	for _, bad := range []Account{
		{Name: "x:0:0:root", User: "x:0:0:root", Password: "Password123"},
		{Name: "a\nroot", User: "a\nroot", Password: "Password123"},
		{Name: "pxe-ok", User: "other", Password: "Password123"},
		{Name: "pxe-ok", User: "pxe-ok", Password: "short"},
		{Name: "root", User: "root", Password: "Password123"},
		{Name: "nobody", User: "nobody", Password: "Password123"},
		{Name: "pxe-ok", User: "pxe-ok", Password: "has space 123"},
	} {
		if err := srv.AddAccount(ctx, bad); err == nil {
			t.Errorf("AddAccount(%q, %q) accepted", bad.Name, bad.User)
		}
	}
}
