package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// runWimArgs runs "pxewim wim ARGS" in-process and returns stdout, stderr and the error.
func runWimArgs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runWim(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// cliWIM captures a generated tree with Windows-style image properties, as an admin's WIM.
func cliWIM(t *testing.T, compress string) (src, wimPath string) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src = filepath.Join(dir, "src")
	wimtest.MakeTree(t, src, wimtest.TreeSpec{Seed: 99, Files: 12, MaxSize: 80_000, ChunkSize: 32768})
	wimPath = filepath.Join(dir, "boot.wim")
	wimtest.Wimlib(t, "capture", src, wimPath, "Microsoft Windows PE (amd64)", "WinPE test", "--unix-data", "--compress="+compress)
	wimtest.Wimlib(t, "append", src, wimPath, "Second", "--unix-data")
	wimtest.Wimlib(t, "info", wimPath, "1",
		"--image-property", "WINDOWS/INSTALLATIONTYPE=WindowsPE",
		"--image-property", "WINDOWS/ARCH=9",
		"--image-property", "WINDOWS/VERSION/MAJOR=10",
		"--image-property", "WINDOWS/VERSION/BUILD=26100",
		"--image-property", "WINDOWS/LANGUAGES/LANGUAGE=en-US",
		"--image-property", "WINDOWS/LANGUAGES/DEFAULT=en-US",
		"--image-property", "WINDOWS/PRODUCTNAME=Microsoft® Windows® Operating System",
		"--image-property", "WINDOWS/EDITIONID=WindowsPE",
		"--image-property", "FLAGS=9",
		"--image-property", "DISPLAYNAME=Windows PE ünïcödé")
	wimtest.Wimlib(t, "info", wimPath, "--boot", "1")
	return src, wimPath
}

func TestWimInfoMatchesWimlib(t *testing.T) {
	_, w := cliWIM(t, "lzx")
	for _, args := range [][]string{{w}, {w, "1"}, {w, "2"}, {w, "Second"}} {
		want := wimtest.Wimlib(t, append([]string{"info"}, args...)...)
		got, _, err := runWimArgs(t, append([]string{"info"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("info %v differs:\nwimlib:\n%s\npxewim:\n%s", args[1:], want, got)
		}
	}
}

func TestWimDirMatchesWimlib(t *testing.T) {
	_, w := cliWIM(t, "xpress")
	for _, img := range []string{"1", "Second"} {
		want := strings.Split(strings.TrimSpace(wimtest.Wimlib(t, "dir", w, img)), "\n")
		out, _, err := runWimArgs(t, "dir", w, img)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSpace(out), "\n")
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("dir %s differs:\nwimlib:\n%s\npxewim:\n%s", img, strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
	}
}

func TestWimApplyExtractCatMatchWimlib(t *testing.T) {
	src, w := cliWIM(t, "lzms")
	dir := t.TempDir()
	t.Run("apply", func(t *testing.T) {
		want, got := filepath.Join(dir, "apply-wimlib"), filepath.Join(dir, "apply-pxewim")
		wimtest.Wimlib(t, "apply", w, "2", want, "--unix-data")
		if _, _, err := runWimArgs(t, "apply", w, "Second", got, "--unix-data"); err != nil {
			t.Fatal(err)
		}
		wimtest.CompareTrees(t, want, got)
	})
	t.Run("apply-default-modes", func(t *testing.T) {
		want, got := filepath.Join(dir, "plain-wimlib"), filepath.Join(dir, "plain-pxewim")
		wimtest.Wimlib(t, "apply", w, "1", want)
		if _, _, err := runWimArgs(t, "apply", w, "1", got); err != nil {
			t.Fatal(err)
		}
		wimtest.CompareTrees(t, want, got)
	})
	t.Run("extract", func(t *testing.T) {
		want, got := filepath.Join(dir, "ex-wimlib"), filepath.Join(dir, "ex-pxewim")
		paths := []string{"/links", "/dup/a", `\modes\exec`}
		wimtest.Wimlib(t, append(append([]string{"extract", w, "1"}, paths...), "--dest-dir="+want, "--unix-data", "--no-globs")...)
		if _, _, err := runWimArgs(t, append(append([]string{"extract", w, "1"}, paths...), "--dest-dir", got, "--unix-data")...); err != nil {
			t.Fatal(err)
		}
		wimtest.CompareTrees(t, want, got)
	})
	t.Run("cat", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(src, "dup", "sub", "c"))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := runWimArgs(t, "cat", w, "1", "/DUP/SUB/C")
		if err != nil || got != string(want) {
			t.Errorf("cat: %d bytes, err %v; want %d bytes", len(got), err, len(want))
		}
	})
	t.Run("verify", func(t *testing.T) {
		out, _, err := runWimArgs(t, "verify", w)
		if err != nil || !strings.Contains(out, "successfully verified") {
			t.Errorf("verify: %q, %v", out, err)
		}
	})
}

func TestWimSplitWithRef(t *testing.T) {
	_, w := cliWIM(t, "none")
	dir := t.TempDir()
	swm := filepath.Join(dir, "boot.swm")
	wimtest.Wimlib(t, "split", w, swm, "0.3")
	ref := filepath.Join(dir, "boot*.swm")
	// Like wimlib, dir needs only part 1; apply needs the others.
	if _, _, err := runWimArgs(t, "dir", swm, "1"); err != nil {
		t.Errorf("dir of part 1 alone: %v", err)
	}
	if _, _, err := runWimArgs(t, "apply", swm, "1", filepath.Join(dir, "incomplete")); err == nil || !strings.Contains(err.Error(), "--ref") {
		t.Errorf("apply without --ref: err = %v, want a missing-part error", err)
	}
	// info works on any part alone, as with wimlib.
	part2 := filepath.Join(dir, "boot2.swm")
	wantInfo := wimtest.Wimlib(t, "info", part2)
	if gotInfo, _, err := runWimArgs(t, "info", part2); err != nil || strings.TrimSpace(gotInfo) != strings.TrimSpace(wantInfo) {
		t.Errorf("info of part 2: err %v\nwimlib:\n%s\npxewim:\n%s", err, wantInfo, gotInfo)
	}
	want, got := filepath.Join(dir, "wimlib"), filepath.Join(dir, "pxewim")
	wimtest.Wimlib(t, "apply", swm, "1", want, "--ref="+ref)
	if _, _, err := runWimArgs(t, "apply", swm, "1", got, "--ref", ref); err != nil {
		t.Fatal(err)
	}
	wimtest.CompareTrees(t, want, got)
	if out, _, err := runWimArgs(t, "verify", swm, "--ref", ref); err != nil {
		t.Errorf("verify split set: %v\n%s", err, out)
	}
}

func TestWimUsage(t *testing.T) {
	tests := []struct {
		args []string
		want error
	}{
		{nil, usageError{}},
		{[]string{"frobnicate"}, usageError{}},
		{[]string{"--help"}, flag.ErrHelp},
		{[]string{"apply", "--help"}, flag.ErrHelp},
		{[]string{"apply", "x.wim"}, usageError{}},
		{[]string{"cat", "x.wim", "1"}, usageError{}},
		{[]string{"info", "--bogus"}, usageError{}},
	}
	for _, tt := range tests {
		_, _, err := runWimArgs(t, tt.args...)
		switch tt.want.(type) {
		case usageError:
			if !errors.As(err, new(usageError)) {
				t.Errorf("%v: err = %v, want a usage error", tt.args, err)
			}
		default:
			if !errors.Is(err, tt.want) {
				t.Errorf("%v: err = %v, want %v", tt.args, err, tt.want)
			}
		}
	}
	if _, _, err := runWimArgs(t, "verify", "/nonexistent.wim"); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("missing file: %v", err)
	}
}
