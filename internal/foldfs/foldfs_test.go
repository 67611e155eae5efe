package foldfs

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

func TestNew(t *testing.T) {
	fsys := New(fstest.MapFS{
		"Boot/BCD":         {Data: []byte("bcd")},
		"boot/boot.sdi":    {Data: []byte("sdi")},
		"EFI/Boot/a.efi":   {Data: []byte("upper")},
		"EFI/Boot/A.efi":   {Data: []byte("exact")},
		"sources/boot.wim": {Data: []byte("wim")},
	})
	tests := []struct{ name, want string }{
		{"Boot/BCD", "bcd"},
		{"boot/bcd", "bcd"},
		{"BOOT/Boot.SDI", "sdi"},
		{"efi/boot/A.efi", "exact"},
		{"EFI/Boot/a.efi", "upper"},
		{"SOURCES/BOOT.WIM", "wim"},
		{"boot/missing", ""},
		{"nothing/here", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := fs.ReadFile(fsys, tc.name)
			if tc.want == "" {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("got %q, %v; want not-exist", b, err)
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Fatalf("got %q, %v; want %q", b, err, tc.want)
			}
		})
	}
}

// TestResolveBounded: a tree where every folder holds many names differing only in case cannot
// make one lookup list more than MaxTries folders.
func TestResolveBounded(t *testing.T) {
	calls := 0
	list := func(dir string) ([]string, error) {
		calls++
		return []string{"a", "A"}, nil // every folder: two spellings, never the last element
	}
	_, err := Resolve(list, strings.Repeat("a/", 30)+"missing")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err %v, want not-exist", err)
	}
	if calls > MaxTries {
		t.Fatalf("%d folders listed, bound %d", calls, MaxTries)
	}
}
