package sftpstore

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    Location
		wantErr string
	}{
		{in: "sftp://pxe@images.lab/srv/wim", want: Location{"pxe", "images.lab", 22, "/srv/wim"}},
		{in: "sftp://pxe@10.0.0.5:2222/srv/wim/", want: Location{"pxe", "10.0.0.5", 2222, "/srv/wim"}},
		{in: "sftp://pxe@[::1]:22/", want: Location{"pxe", "::1", 22, "/"}},
		{in: "sftp://pxe@host", want: Location{"pxe", "host", 22, "/"}},
		{in: "sftp://pxe@host/a/../b", want: Location{"pxe", "host", 22, "/b"}},
		{in: "http://pxe@host/x", wantErr: "scheme"},
		{in: "sftp://host/x", wantErr: "missing user"},
		{in: "sftp://pxe:secret@host/x", wantErr: "passwords"},
		{in: "sftp://pxe@host:0/x", wantErr: "bad port"},
		{in: "sftp://pxe@host:99999/x", wantErr: "bad port"},
		{in: "sftp://pxe@host:/x", wantErr: "empty port"},
		{in: "sftp://pxe@/x", wantErr: "missing host"},
		{in: "sftp://pxe@host/x?y=1", wantErr: "query"},
		{in: "sftp:pxe@host", wantErr: "opaque"},
	}
	for _, tc := range tests {
		got, err := ParseURL(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseURL(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseURL: no panics, and every accepted URL renders to one that parses the same.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"sftp://pxe@images.lab/srv/wim", "sftp://a@[::1]:2222/", "sftp://u%40x@h/%2e%2e/x",
		"sftp://u@h:/", "sftp://u:p@h/", "sftp://u@h/a\x00b", "sftp://@h/", "sftp://u@h:65536/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := ParseURL(s)
		if err != nil {
			return
		}
		if loc.User == "" || loc.Host == "" || loc.Port < 1 || loc.Port > 65535 || !strings.HasPrefix(loc.Path, "/") {
			t.Fatalf("ParseURL(%q) accepted %+v", s, loc)
		}
		again, err := ParseURL(loc.String())
		if err != nil || again != loc {
			t.Fatalf("ParseURL(%q) = %+v renders %q, which parses to %+v, %v", s, loc, loc.String(), again, err)
		}
	})
}
