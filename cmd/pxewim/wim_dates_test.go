package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// The dates a time format gets wrong: single-digit days (wimlib prints %d, "07", not "7"), a
// leap day, the last second of a year, and the first of a month and a year.
var edgeDates = []string{
	"2027-03-01 00:00:01",
	"2028-02-29 12:34:56",
	"2026-12-31 23:59:59",
	"2027-01-01 00:00:00",
	"2027-10-09 09:09:09",
}

// TestWimTimeFormat pins wimTime to wimlib-imagex's "%a %b %d %H:%M:%S %Y UTC" (gmtime) on the
// edge dates, whatever day the suite runs.
func TestWimTimeFormat(t *testing.T) {
	want := map[string]string{
		"2027-03-01 00:00:01": "Mon Mar 01 00:00:01 2027 UTC",
		"2028-02-29 12:34:56": "Tue Feb 29 12:34:56 2028 UTC",
		"2026-12-31 23:59:59": "Thu Dec 31 23:59:59 2026 UTC",
		"2027-01-01 00:00:00": "Fri Jan 01 00:00:00 2027 UTC",
		"2027-10-09 09:09:09": "Sat Oct 09 09:09:09 2027 UTC",
	}
	for _, d := range edgeDates {
		tm, err := time.Parse(time.DateTime, d)
		if err != nil {
			t.Fatal(err)
		}
		// A local zone must not leak into the output: wimlib prints UTC.
		if got := wimTime(tm.In(time.FixedZone("X", -11*3600))); got != want[d] {
			t.Errorf("wimTime(%s) = %q, want %q", d, got, want[d])
		}
	}
}

// TestWimInfoMatchesWimlibAtEdgeDates captures a WIM under Debian's faketime at each edge date
// (the WIM's XML creation and modification times are then that date) and compares `pxewim wim
// info` with `wimlib-imagex info`, so a date-dependent difference shows up on any day, not only
// on the days it happens to fall on.
func TestWimInfoMatchesWimlibAtEdgeDates(t *testing.T) {
	wimtest.NeedWimlib(t)
	if _, err := exec.LookPath("faketime"); err != nil {
		t.Skip("faketime not found: install faketime (./test.sh does)")
	}
	src := filepath.Join(t.TempDir(), "src")
	wimtest.MakeTree(t, src, wimtest.TreeSpec{Seed: 99, Files: 12, MaxSize: 80_000, ChunkSize: 32768})
	for _, d := range edgeDates {
		t.Run(strings.NewReplacer(" ", "_", ":", "").Replace(d), func(t *testing.T) {
			w := filepath.Join(t.TempDir(), "dated.wim")
			// A frozen clock at the edge date, in UTC: "-f DATE" is libfaketime's absolute form,
			// which stands still (the plain "faketime DATE" starts the clock there and lets it
			// run, so a loaded machine crossed into the next year).
			cmd := exec.Command("faketime", "-f", d, "wimlib-imagex", "capture", src, w, "Dated", "--compress=lzx")
			cmd.Env = append(os.Environ(), "TZ=UTC")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("faketime %s wimlib-imagex capture: %v\n%s", d, err, out)
			}
			want := wimtest.Wimlib(t, "info", w, "1")
			day, _ := time.Parse(time.DateTime, d)
			if !strings.Contains(want, day.Format("Jan 02")) {
				t.Fatalf("faketime did not take: wimlib-imagex info lacks %q:\n%s", day.Format("Jan 02"), want)
			}
			got, _, err := runWimArgs(t, "info", w, "1")
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(got) != strings.TrimSpace(want) {
				t.Errorf("info differs at %s:\nwimlib:\n%s\npxewim:\n%s", d, want, got)
			}
		})
	}
}
