package boot

import (
	"strings"
	"testing"
)

func TestAdminConfig(t *testing.T) {
	tests := []struct {
		name, yaml, listen, err string
	}{
		{"default", "", DefaultAdminListen, ""},
		{"off", "admin:\n  listen: off\n", "", ""},
		{"loopback v6", "admin:\n  listen: \"[::1]:9999\"\n", "[::1]:9999", ""},
		{"network with auth", "admin:\n  listen: 0.0.0.0:9090\n  user: admin\n  password_file: /etc/pxewim/pw\n", "0.0.0.0:9090", ""},
		{"network without auth", "admin:\n  listen: :9090\n", "", "admin.listen: :9090 is reachable from the network"},
		{"user without password", "admin:\n  user: admin\n", "", "user and password_file go together"},
		{"bad address", "admin:\n  listen: localhost:x\n", "", "admin.listen"},
		{"unknown key", "admin:\n  port: 9090\n", "", "unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig("t.yaml", []byte(tc.yaml))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Admin.ListenAddr(); got != tc.listen {
				t.Errorf("ListenAddr = %q, want %q", got, tc.listen)
			}
		})
	}
}
