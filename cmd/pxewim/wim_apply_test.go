package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestWimApplyTwice: "pxewim wim apply" into a tree it applied before replaces the links,
// hard links and files there (relative, absolute re-rooted, dangling links included), as
// wimlib-imagex does, and the tree equals wimlib-imagex's after the same two applies; a
// second --unix-data apply too.
func TestWimApplyTwice(t *testing.T) {
	_, w := cliWIM(t, "lzx")
	dir := t.TempDir()
	for _, extra := range [][]string{nil, {"--unix-data"}} {
		want, got := filepath.Join(dir, "wimlib"), filepath.Join(dir, "pxewim")
		os.RemoveAll(want)
		os.RemoveAll(got)
		for range 2 {
			wimtest.Wimlib(t, append([]string{"apply", w, "1", want}, extra...)...)
			if _, stderr, err := runWimArgs(t, append([]string{"apply", w, "1", got}, extra...)...); err != nil {
				t.Fatalf("apply %v: %v\n%s", extra, err, stderr)
			}
		}
		wimtest.CompareTrees(t, want, got)
	}
}
