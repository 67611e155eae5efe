package localstore

import (
	"testing"

	"github.com/pxewim/pxewim/wim"
)

// TestVerifierUsesOptionsCache: background verification decodes through VerifierOptions.Cache
// (the daemon passes its one shared cache; before, each verification made a private 32 MiB
// one), which the cache's counters show; the store's own cache is another object here so the
// two cannot be confused.
func TestVerifierUsesOptionsCache(t *testing.T) {
	l := newVerifyLab(t)
	shared := wim.NewCache(16 << 20)
	v := NewVerifier(VerifierOptions{Cache: shared})
	s, err := New(l.root, Options{Verifier: v, Cache: wim.NewCache(16 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); v.Close() })
	if err := verdictOf(t, s, "pe.wim"); err != nil {
		t.Fatalf("pe.wim: %v", err)
	}
	st := shared.Stats()
	if st.Misses == 0 {
		t.Fatal("verification decoded nothing through VerifierOptions.Cache")
	}
	if st.Bytes > shared.MaxBytes() {
		t.Errorf("the cache holds %d bytes, over its bound %d", st.Bytes, shared.MaxBytes())
	}
	t.Logf("verification: %d chunks decoded through the shared cache", st.Misses)
}
