package tftp

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"pxelinux.0", "pxelinux.0"},
		{`\Boot\BCD`, "Boot/BCD"},
		{`/boot\x64\wdsnbp.com`, "boot/x64/wdsnbp.com"},
		{`\boot\fonts\wgl4_boot.ttf`, "boot/fonts/wgl4_boot.ttf"},
		{"/boot\\x", "boot/x"},
		{"boot//bcd", "boot/bcd"},
		{`\\Boot\\BCD`, "Boot/BCD"},
		{"./pxelinux.cfg/default", "pxelinux.cfg/default"},
		{"boot/./bcd/", "boot/bcd"},
		{"/sources/boot.wim", "sources/boot.wim"},
		{"a b/c d.efi", "a b/c d.efi"},
		{"Ünïcode/ファイル", "Ünïcode/ファイル"},
		{"file:stream", "file:stream"},
		{"x:", ""}, // a drive with no path is still a drive
		// Refused.
		{"", ""},
		{"/", ""},
		{`\`, ""},
		{".", ""},
		{"./", ""},
		{"..", ""},
		{"../etc/passwd", ""},
		{`..\..\windows\win.ini`, ""},
		{`boot\..\..\x`, ""},
		{"boot/../bcd", ""},
		{"/boot/..", ""},
		{`C:\Windows\System32`, ""},
		{"c:boot.ini", ""},
		{`\C:\x`, ""},
		{"boot\x00.wim", ""},
		{"\x00", ""},
		{"bad\xff\xfeutf8", ""},
		{strings.Repeat("a", MaxPathLen+1), ""},
		{strings.Repeat("a/", MaxPathLen/2+1), ""},
	}
	for _, tc := range tests {
		name := tc.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		t.Run(name, func(t *testing.T) {
			got, err := NormalizePath(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("NormalizePath(%q) = %q, want an error", tc.in, got)
				}
				if !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("error %v does not wrap ErrInvalidPath", err)
				}
				if len(err.Error()) > 2*MaxPathLen+200 {
					t.Fatalf("error message of %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzNormalizePath checks the promises for any input: never a panic; a
// result is a valid fs path without "..", backslashes or NUL, and
// normalising it again changes nothing.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{`\Boot\BCD`, "/boot\\x", "../x", "a//b/./c", "C:\\x", "a\x00b", "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizePath(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("error %v does not wrap ErrInvalidPath", err)
			}
			return
		}
		if !fs.ValidPath(got) || got == "." || strings.ContainsAny(got, "\\\x00") {
			t.Fatalf("NormalizePath(%q) = %q: not a clean path", in, got)
		}
		for _, e := range strings.Split(got, "/") {
			if e == ".." {
				t.Fatalf("NormalizePath(%q) = %q contains ..", in, got)
			}
		}
		if again, err := NormalizePath(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}
