package localstore

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// pacedLab writes n copies of the lab's good WIM (w0.wim ...) and starts a Store whose
// Verifier has the given pace, resting after every progress report (no least slice), and
// records the order in which verifications start.
func pacedLab(t *testing.T, n int, pace float64) (*Store, *Verifier, func() []string) {
	t.Helper()
	l := newVerifyLab(t)
	for i := range n {
		if err := os.WriteFile(filepath.Join(l.root, fmt.Sprintf("w%d.wim", i)), l.good, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v := NewVerifier(VerifierOptions{Logger: slog.New(slog.NewTextHandler(l.log, nil)), Pace: pace})
	v.slice = 0
	var mu sync.Mutex
	var order []string
	v.beforeVerify = func(path string) {
		mu.Lock()
		order = append(order, path)
		mu.Unlock()
	}
	s, err := New(l.root, Options{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); v.Close() })
	return s, v, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(order) }
}

// TestVerifyPacedRequestFirst: after a mass change (six WIMs queued at once), background
// verification rests between its slices of work; a request that waits for the verdict of
// the last WIM in the queue ends the rest, moves that WIM to the front (it is verified right
// after the one running), and gets its verdict while the rests are still long.
func TestVerifyPacedRequestFirst(t *testing.T) {
	// Pace 1e6: a rest lasts a million times the work before it (a millisecond of work:
	// a quarter of an hour), so only the request can make the queue move on.
	s, v, order := pacedLab(t, 6, 1e6)
	names := []string{"w0.wim", "w1.wim", "w2.wim", "w3.wim", "w4.wim", "w5.wim"}
	s.VerifyInBackground(names)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for v.rests.Load() == 0 { // the event: verification is resting
		select {
		case <-ctx.Done():
			t.Fatalf("verification never rested (verifications started: %v)", order())
		case <-time.After(5 * time.Millisecond):
		}
	}
	f, err := s.Open("w5.wim")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vf, ok := f.(interface{ WaitVerified(context.Context) error })
	if !ok {
		t.Fatalf("%T has no WaitVerified", f)
	}
	if err := vf.WaitVerified(ctx); err != nil {
		t.Fatalf("waiting for w5.wim's verdict: %v (verifications started: %v)", err, order())
	}
	got := order()
	if len(got) < 2 || got[1] != "w5.wim" {
		t.Fatalf("verifications started in the order %v, want w5.wim second (right after the one running when the request came)", got)
	}
}

// TestVerifyUnpaced: a negative Pace never rests, and every WIM of a mass change is verified
// good.
func TestVerifyUnpaced(t *testing.T) {
	s, v, _ := pacedLab(t, 4, -1)
	names := []string{"w0.wim", "w1.wim", "w2.wim", "w3.wim"}
	s.VerifyInBackground(names)
	for _, n := range names {
		if err := verdictOf(t, s, n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	if n := v.rests.Load(); n != 0 {
		t.Fatalf("%d rests with Pace < 0", n)
	}
}

// TestVerifyPacedCompletes: with a small pace, a queue of WIMs is verified good, resting
// between slices.
func TestVerifyPacedCompletes(t *testing.T) {
	s, v, _ := pacedLab(t, 3, 0.01)
	names := []string{"w0.wim", "w1.wim", "w2.wim"}
	s.VerifyInBackground(names)
	// Nobody waits (a wait turns the pacing off): poll the counters.
	deadline := time.Now().Add(time.Minute)
	for v.Stats().Verified < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("verified %d of 3 WIMs after a minute", v.Stats().Verified)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, n := range names {
		if err := verdictOf(t, s, n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	if v.rests.Load() == 0 {
		t.Fatal("a paced verification never rested")
	}
}
