// Package wimtest (for tests only) builds test trees, captures them with wimlib-imagex and compares extracted
// trees; shared by the wim package's and the pxewim command's tests.
package wimtest

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NeedWimlib skips the test when wimlib-imagex (Debian package wimtools) is missing.
func NeedWimlib(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("wimlib-imagex"); err != nil {
		t.Skip("wimlib-imagex not found: install wimtools (./test.sh does)")
	}
}

// Wimlib runs wimlib-imagex and fails the test on error.
func Wimlib(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("wimlib-imagex", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("wimlib-imagex %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TreeSpec shapes a generated test tree.
type TreeSpec struct {
	Seed      uint64
	Files     int   // random files besides the fixed cases
	MaxSize   int   // of random files
	ChunkSize int   // sizes around multiples of this are included
	Extra     []int // more exact sizes
}

// X86Code returns bytes of real machine code (from /usr/bin), or random bytes if unreadable.
func X86Code(rng *rand.Rand, n int) []byte {
	for _, p := range []string{"/usr/bin/ls", "/usr/bin/bash", "/usr/bin/tar", "/usr/bin/find"} {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < n+1 {
			continue
		}
		off := rng.IntN(len(b) - n)
		return b[off : off+n]
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

var words = strings.Fields(`the quick brown fox jumps over lazy dog WIM image boot loader
	resource chunk table metadata dentry security descriptor stream hash Windows PE setup`)

// Content makes file data of one of three kinds: text, random bytes or x86 code.
func Content(rng *rand.Rand, n int) []byte {
	switch rng.IntN(3) {
	case 0:
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(12) == 0 {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		}
		return b.Bytes()[:n]
	case 1:
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	return X86Code(rng, n)
}

// MakeTree writes a tree exercising what WIMs must carry: random sizes and contents, empty
// files, sizes around chunk boundaries, duplicates, hard links, symlinks (relative, absolute
// inside and outside the tree), deep paths, non-ASCII and case-only-different names, modes.
func MakeTree(t testing.TB, root string, s TreeSpec) {
	t.Helper()
	rng := rand.New(rand.NewPCG(s.Seed, 42))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, data []byte, mode os.FileMode) {
		p := filepath.Join(root, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode))
	}
	dirs := []string{".", "sub", "sub/inner", "Ünïcödé", "日本語", "emoji-😀", "empty-dir"}
	must(os.MkdirAll(filepath.Join(root, "empty-dir"), 0o700))
	for i := 0; i < s.Files; i++ {
		d := dirs[rng.IntN(len(dirs)-1)]
		write(fmt.Sprintf("%s/file-%03d.bin", d, i), Content(rng, rng.IntN(s.MaxSize+1)), 0o644)
	}
	cs := s.ChunkSize
	sizes := []int{0, 1, cs - 1, cs, cs + 1, 2*cs - 1, 2 * cs, 2*cs + 1, 3*cs + 7}
	if cs >= 1<<20 {
		sizes = sizes[:5] // keep trees for big chunks small
	}
	sizes = append(sizes, s.Extra...)
	for _, n := range sizes {
		write(fmt.Sprintf("bounds/size-%d", n), Content(rng, n), 0o644)
	}
	dup := Content(rng, 3*cs/2)
	write("dup/a", dup, 0o644)
	write("dup/b", dup, 0o600)
	write("dup/sub/c", dup, 0o755)
	write("Case.txt", []byte("upper\n"), 0o644)
	write("case.txt", []byte("lower\n"), 0o644)
	write("modes/exec", []byte("#!/bin/sh\necho hi\n"), 0o755)
	write("modes/private", []byte("secret"), 0o600)
	write("modes/readonly", []byte("ro"), 0o444)
	write("links/target", Content(rng, 5000), 0o644)
	must(os.Link(filepath.Join(root, "links/target"), filepath.Join(root, "links/hard1")))
	must(os.Link(filepath.Join(root, "links/target"), filepath.Join(root, "sub/hard2")))
	must(os.Symlink("target", filepath.Join(root, "links/rel")))
	must(os.Symlink("../sub", filepath.Join(root, "links/reldir")))
	must(os.Symlink("/etc/hostname", filepath.Join(root, "links/abs-outside")))
	must(os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "links/abs-inside")))
	must(os.Symlink("missing/target", filepath.Join(root, "links/dangling")))
	deep := "deep"
	for i := 0; i < 40; i++ {
		deep += fmt.Sprintf("/level-%02d", i)
	}
	write(deep+"/leaf.txt", []byte("deep leaf\n"), 0o644)
	must(syscall.Mkfifo(filepath.Join(root, "modes/fifo"), 0o640))
	// Fixed times so both extractions can be compared on them.
	base := time.Date(2020, 2, 29, 12, 34, 56, 789_000_000, time.UTC)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 && !d.IsDir() {
			os.Chtimes(p, base, base.Add(time.Duration(len(p))*time.Second))
		}
		return nil
	})
}

// NodeInfo is what an extracted tree is compared on.
type NodeInfo struct {
	Type   fs.FileMode
	Perm   fs.FileMode
	Size   int64
	Sum    [sha1.Size]byte
	Link   string
	MTime  time.Time
	Inode  uint64
	Linked string // first path (sorted) sharing this inode
}

// ScanTree describes every path under root. Absolute symlink targets under root are
// rewritten relative to it so that two extractions in different places compare equal.
func ScanTree(t testing.TB, root string) map[string]NodeInfo {
	t.Helper()
	out := map[string]NodeInfo{}
	byInode := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := NodeInfo{Type: st.Mode().Type(), Perm: st.Mode().Perm()}
		sys := st.Sys().(*syscall.Stat_t)
		switch {
		case st.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Size, n.Sum, n.MTime = int64(len(data)), sha1.Sum(data), st.ModTime()
			n.Inode = sys.Ino
			byInode[sys.Ino] = append(byInode[sys.Ino], rel)
		case st.Mode()&fs.ModeSymlink != 0:
			n.Link, _ = os.Readlink(p)
			if strings.HasPrefix(n.Link, root+"/") {
				n.Link = "$ROOT" + strings.TrimPrefix(n.Link, root)
			}
			n.Perm = 0
		case st.IsDir():
			n.MTime = st.ModTime()
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("scanning %s: %v", root, err)
	}
	for _, paths := range byInode {
		sort.Strings(paths)
		for _, p := range paths {
			n := out[p]
			n.Linked, n.Inode = paths[0], 0
			out[p] = n
		}
	}
	return out
}

// CompareTrees reports every difference between two extracted trees.
func CompareTrees(t testing.TB, want, got string) {
	t.Helper()
	w, g := ScanTree(t, want), ScanTree(t, got)
	var diffs []string
	for p, wn := range w {
		gn, ok := g[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %s", p))
		case p == ".":
			// the roots' own times and modes depend on how the directory was made
		case wn != gn:
			diffs = append(diffs, fmt.Sprintf("%s: want %+v, got %+v", p, wn, gn))
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s", p))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Errorf("extracted trees differ (wimlib %s vs pxewim %s):\n%s", want, got, strings.Join(diffs, "\n"))
	}
}

// ModuleRoot finds the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}
