package boot_test

import (
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/storepath/storepathtest"
)

// TestParseRefHostile: config references are cleaned as storepath does (the table tftp and
// httpboot check too): every path the table refuses is a config error, and so is the root; a
// reference written clean (backslashes and one leading slash allowed) gives the table's
// cleaned path; one that cleaning would tidy ("a//b") is refused, never read as another file.
func TestParseRefHostile(t *testing.T) {
	for _, tc := range storepathtest.Hostile {
		r, err := boot.ParseRef(tc.In)
		tidy := strings.TrimPrefix(strings.ReplaceAll(tc.In, `\`, "/"), "/")
		switch {
		case tc.Refused() || tc.Clean == ".":
			if err == nil {
				t.Errorf("ParseRef(%.40q) = %+v, want a refusal", tc.In, r)
			}
		case err == nil && (r.WIM != "" || r.Path != tc.Clean):
			t.Errorf("ParseRef(%.40q) = %+v, want path %q", tc.In, r, tc.Clean)
		case err != nil && tidy == tc.Clean:
			t.Errorf("ParseRef(%.40q): %v; want path %q", tc.In, err, tc.Clean)
		}
	}
}
