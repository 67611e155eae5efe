package testenv

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// BuildSplitWinPE writes a WinPE-shaped WIM (BuildWinPE, one image, LZX unless flags say
// otherwise) padded with incompressible files, then splits it with
// `wimlib-imagex split WIM DIR/NAME.swm 0.1`, which gives 5 or more parts of about 100 KB
// (NAME.swm, NAME2.swm, ...). It returns the unsplit WIM (in a temporary folder) and the parts
// in part-number order. seed varies the padding, so two calls with different seeds give sets
// of different GUIDs and different blobs.
func BuildSplitWinPE(t testing.TB, dir, name string, seed uint64, flags ...string) (string, []string) {
	t.Helper()
	files := map[string][]byte{}
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	for i := range 6 {
		b := make([]byte, 70_000)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		files[fmt.Sprintf("Windows/System32/drivers/pad%d.sys", i)] = b
	}
	if len(flags) == 0 {
		flags = []string{"--compress=LZX"}
	}
	src := filepath.Join(t.TempDir(), name+".wim")
	BuildWinPE(t, src, []WinPEImage{{Name: "Microsoft Windows PE (split)", Files: files}}, flags...)
	first := filepath.Join(dir, name+".swm")
	args := []string{"split", src, first, "0.1"}
	if out, err := exec.Command("wimlib-imagex", args...).CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	parts := []string{first}
	more, _ := filepath.Glob(filepath.Join(dir, name+"[0-9]*.swm"))
	sort.Slice(more, func(i, j int) bool {
		return len(more[i]) < len(more[j]) || len(more[i]) == len(more[j]) && more[i] < more[j]
	})
	parts = append(parts, more...)
	if len(parts) < 3 {
		t.Fatalf("wimlib-imagex split gave %d parts, want 3 or more", len(parts))
	}
	for i, p := range parts[1:] {
		if want := filepath.Join(dir, fmt.Sprintf("%s%d.swm", name, i+2)); p != want {
			t.Fatalf("split parts: %v (want %s as part %d)", parts, want, i+2)
		}
	}
	if _, err := os.Stat(first); err != nil {
		t.Fatal(err)
	}
	return src, parts
}
