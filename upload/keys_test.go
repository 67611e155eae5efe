package upload

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGL1Xm3R3gC4yKgb8Z8q0Wq0GQ0l7m2m0Zl8m0m0m0m0 admin@lab"

func TestParseAuthorizedKeys(t *testing.T) {
	tests := []struct {
		name, in string
		keys     int
		wantErr  string
	}{
		{"empty", "", 0, ""},
		{"comments", "# admins\n\n   \n", 0, ""},
		{"one", testKey + "\n", 1, ""},
		{"two no final newline", testKey + "\n" + testKey, 2, ""},
		{"restrict", "restrict,no-pty " + testKey, 1, ""},
		{"command option refused", `command="/bin/false" ` + testKey, 0, "not supported"},
		{"from option refused", `from="10.0.0.0/8" ` + testKey, 0, "not supported"},
		{"garbage", "ssh-ed25519 !!!!", 0, "line 1"},
		{"garbage on line 3", testKey + "\n# x\nnot a key\n", 0, "line 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseAuthorizedKeys([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(keys) != tc.keys {
				t.Fatalf("got %d keys, err %v; want %d", len(keys), err, tc.keys)
			}
		})
	}
}

// FuzzParseAuthorizedKeys: hostile authorized_keys files give errors, never panics.
func FuzzParseAuthorizedKeys(f *testing.F) {
	f.Add([]byte(testKey + "\n"))
	f.Add([]byte("restrict " + testKey + "\n# c\n" + testKey))
	f.Add([]byte(`command="x y" ` + testKey))
	f.Add([]byte("\n\n\r\n\t"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseAuthorizedKeys(b)
		if err == nil && len(keys) > len(b)/40+1 {
			t.Fatalf("%d keys from %d bytes", len(keys), len(b))
		}
	})
}

func TestTarget(t *testing.T) {
	h := &handler{sessDir: ".incoming/s1"}
	tests := []struct {
		in       string
		rel      string
		incoming bool
		bad      bool
	}{
		{"/", ".", false, false},
		{"/pe/boot.wim", "pe/boot.wim", false, false},
		{"/incoming", ".incoming/s1", true, false},
		{"/incoming/", ".incoming/s1", true, false},
		{"/incoming/pe/boot.wim", ".incoming/s1/pe/boot.wim", true, false},
		{"/incoming/../etc/passwd", "etc/passwd", false, false},
		{"/../../etc", "etc", false, false},
		{"/incoming/.x/a.wim", "", true, true},
		{"/.incoming/s2/a.wim", "", false, true},
		{"/incomingx/a.wim", "incomingx/a.wim", false, false},
		{"/incoming/a\\b.wim", "", true, true},
	}
	for _, tc := range tests {
		rel, inc, err := h.target(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && (rel != tc.rel || inc != tc.incoming)) {
			t.Errorf("target(%q) = %q, %v, %v; want %q, %v, bad %v", tc.in, rel, inc, err, tc.rel, tc.incoming, tc.bad)
		}
	}
}

func TestIncomingRel(t *testing.T) {
	tests := []struct{ store, dir, want, wantErr string }{
		{"/srv/store", "", ".incoming", ""},
		{"/srv/store", "up", "up", ""},
		{"/srv/store", "/srv/store/.up/x", ".up/x", ""},
		{"/srv/store", "/srv/other", "", "inside the store"},
		{"/srv/store", "../x", "", "inside the store"},
		{"/srv/store", ".", "", "inside the store"},
		{"/srv/store", "/srv/store", "", "inside the store"},
	}
	for _, tc := range tests {
		got, err := incomingRel(tc.store, tc.dir)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("incomingRel(%q, %q) err = %v, want %q", tc.store, tc.dir, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("incomingRel(%q, %q) = %q, %v; want %q", tc.store, tc.dir, got, err, tc.want)
		}
	}
}

// TestHostKeyKept: the host key made on first start is reused by later starts, so clients'
// known_hosts entries stay valid.
func TestHostKeyKept(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.Mkdir(store, 0o755)
	os.WriteFile(filepath.Join(dir, "keys"), []byte(testKey+"\n"), 0o600)
	cfg := Config{HostKeyPath: filepath.Join(dir, "state", "host_key"), AuthorizedKeysPath: filepath.Join(dir, "keys"),
		StoreDir: store, Logger: slog.New(slog.DiscardHandler)}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.HostKey() == nil || !bytes.Equal(a.HostKey().Marshal(), b.HostKey().Marshal()) {
		t.Fatal("host key changed between starts")
	}
	if st, err := os.Stat(cfg.HostKeyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("host key file: %v, mode %v (want 0600)", err, st.Mode().Perm())
	}
	cfg.AuthorizedKeysPath = filepath.Join(dir, "missing")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "authorized keys") {
		t.Errorf("New with a missing authorized_keys: %v", err)
	}
}
