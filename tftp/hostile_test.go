package tftp

import (
	"errors"
	"testing"

	"github.com/pxewim/pxewim/storepath/storepathtest"
)

// TestNormalizePathHostile: TFTP cleans paths as storepath does (the table httpboot and boot
// check too): every path the table refuses is refused with ErrInvalidPath, every other one
// gives the table's cleaned path, except the root, which names no file to send.
func TestNormalizePathHostile(t *testing.T) {
	for _, tc := range storepathtest.Hostile {
		got, err := NormalizePath(tc.In)
		switch {
		case tc.Refused() || tc.Clean == ".":
			if err == nil {
				t.Errorf("NormalizePath(%.40q) = %q, want a refusal", tc.In, got)
			} else if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("NormalizePath(%.40q): %v does not wrap ErrInvalidPath", tc.In, err)
			}
		case err != nil || got != tc.Clean:
			t.Errorf("NormalizePath(%.40q) = %q, %v; want %q", tc.In, got, err, tc.Clean)
		}
	}
}
