package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestCheckSplitSets: "pxewim check" names a missing part of a split set by number (for the
// store and for the entry booting it), a part of another set named like one of its parts, and
// says nothing against a whole set.
func TestCheckSplitSets(t *testing.T) {
	store := t.TempDir()
	_, good := testenv.BuildSplitWinPE(t, store, "pe", 1)
	_, bad := testenv.BuildSplitWinPE(t, store, "bk", 2)
	os.Remove(bad[2])
	other := t.TempDir()
	_, foreign := testenv.BuildSplitWinPE(t, other, "pe", 3)
	fb, _ := os.ReadFile(foreign[1])
	os.WriteFile(filepath.Join(store, "bk2.swm"), fb, 0o644) // bk2.swm: part 2 of another set
	os.WriteFile(filepath.Join(store, "wimboot"), []byte("stand-in"), 0o644)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("store: "+store+"\nlisten: {tftp: \"\"}\nwinpe: {auto: true, wimboot: wimboot}\n"+
		"entries:\n  - name: pe\n    winpe: {image: pe.swm}\n  - name: bk\n    winpe: {image: bk.swm}\n"), 0o644)
	var out, errb bytes.Buffer
	code := run([]string{"check", "--config", cfg}, &out, &errb)
	text := out.String() + errb.String()
	if code == 0 {
		t.Fatalf("check found no problems:\n%s", text)
	}
	n := strconv.Itoa(len(bad))
	for _, want := range []string{
		"problem: store bk.swm: unreadable split WIM: part 2 of " + n + " of bk.swm (GUID ",
		"problem: store bk.swm: unreadable split WIM: part 3 of " + n + " of bk.swm (GUID ",
		"bk2.swm is not part 2 of bk.swm: it is part 2 of " + strconv.Itoa(len(foreign)) + " of another split WIM",
		`problem: entry "bk" (`,
		"image bk.swm: part 2 of " + n + " of bk.swm (GUID ",
		"note: store pe.swm: split WIM (" + strconv.Itoa(len(good)) + " parts)",
		strconv.Itoa(len(good)) + " split parts joined",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("check output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, `problem: entry "pe" (`) || !strings.Contains(text, `note: entry "pe" (`) || strings.Contains(text, "problem: store pe.swm") {
		t.Errorf("the whole set has problems:\n%s", text)
	}
}
