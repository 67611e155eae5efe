package upload

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
)

// TestValidateUsesConfigCache: the built-in validation of an upload decodes the WIM's metadata
// through Config.Cache (the daemon's one shared cache; before, a private 256 MiB one per
// upload); Validate, for library users, still works without one.
func TestValidateUsesConfigCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pe.wim")
	testenv.BuildWinPE(t, p, []testenv.WinPEImage{{Name: "PE"}}, "--compress=LZX")
	shared := wim.NewCache(16 << 20)
	s := &Server{cfg: Config{Cache: shared}}
	if err := s.validate(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	st := shared.Stats()
	if st.Misses == 0 {
		t.Fatal("validation decoded nothing through Config.Cache")
	}
	if err := Validate(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if after := shared.Stats(); after.Misses != st.Misses {
		t.Errorf("Validate without a cache used Config.Cache of another server")
	}
}
