package httpboot

import (
	"testing"

	"github.com/pxewim/pxewim/storepath/storepathtest"
)

// TestCleanNameHostile: HTTP cleans paths as storepath does (the table tftp and boot check
// too): every path the table refuses is a 400, as a name and under /files/; every other one
// gives the table's cleaned path, and /files/PATH routes to exactly that file.
func TestCleanNameHostile(t *testing.T) {
	for _, tc := range storepathtest.Hostile {
		got, err := CleanName(tc.In)
		if tc.Refused() {
			if err == nil {
				t.Errorf("CleanName(%.40q) = %q, want a refusal", tc.In, got)
			} else if s := statusOf(err); s != 400 {
				t.Errorf("CleanName(%.40q): status %d, want 400", tc.In, s)
			}
			if rt, err := parseRoute("/files/" + tc.In); err == nil || statusOf(err) != 400 {
				t.Errorf("parseRoute(/files/%.40q) = %+v, %v; want a 400", tc.In, rt, err)
			}
			continue
		}
		if err != nil || got != tc.Clean {
			t.Errorf("CleanName(%.40q) = %q, %v; want %q", tc.In, got, err, tc.Clean)
		}
		if tc.Clean == "." || len("/files/"+tc.In) > MaxPathLen {
			continue
		}
		if rt, err := parseRoute("/files/" + tc.In); err != nil || rt.kind != routeFile || rt.name != tc.Clean {
			t.Errorf("parseRoute(/files/%.40q) = %+v, %v; want file %q", tc.In, rt, err, tc.Clean)
		}
	}
}
