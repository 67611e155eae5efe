package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// hostileWIM is a WIM from the wim package's testdata (wimlib's own hostile WIMs, and ones
// with names no capture can produce).
func hostileWIM(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(wimtest.ModuleRoot(t), "wim", "testdata", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWimWarnsSkippedEntries: dir, apply, extract and verify each say which entries they
// ignore, in wimlib-imagex's words, on stderr; verify still succeeds (as wimlib's does) but
// its last line says entries were ignored.
func TestWimWarnsSkippedEntries(t *testing.T) {
	cases := map[string][]string{
		"wimlib-tests/dotdot.wim": {`Ignoring file named "." or ".." in directory "/"`},
		"wimlib-tests/duplicate_names.wim": {
			`Ignoring duplicate file "/1" (the WIM image already contains a file at that path with the exact same name)`},
		"hostile-names/all.wim": {`Ignoring file named "." or ".." in directory "/"`,
			`Ignoring file named "." or ".." in directory "/dir"`,
			`Ignoring filename with embedded null character in directory "/dir"`,
			`Ignoring filename containing embedded path separator in directory "/"`},
	}
	for name, warnings := range cases {
		w := hostileWIM(t, name)
		dir := t.TempDir()
		for _, args := range [][]string{
			{"dir", w, "1"},
			{"apply", w, "1", filepath.Join(dir, "apply")},
			{"extract", w, "1", "/", "--dest-dir", filepath.Join(dir, "extract")},
			{"verify", w},
		} {
			stdout, stderr, err := runWimArgs(t, args...)
			if err != nil {
				t.Errorf("%s %s: %v", args[0], name, err)
				continue
			}
			for _, want := range warnings {
				if !strings.Contains(stderr, "[WARNING] "+want+"\n") {
					t.Errorf("%s %s: stderr lacks %q:\n%s", args[0], name, want, stderr)
				}
			}
			if args[0] == "verify" && !strings.Contains(stdout, "was successfully verified (") {
				t.Errorf("verify %s: the result does not mention the ignored entries:\n%s", name, stdout)
			}
		}
		// Nothing lands outside the targets.
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Errorf("%s: apply/extract wrote outside their targets: %v", name, ents)
		}
	}
	// A clean WIM gets no warnings and the plain verdict, as with wimlib-imagex.
	w := hostileWIM(t, "wimlib-tests/empty_dacl.wim")
	stdout, stderr, err := runWimArgs(t, "verify", w)
	if err != nil || strings.Contains(stderr, "WARNING") || !strings.HasSuffix(stdout, "was successfully verified.\n") {
		t.Errorf("clean WIM: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
}

// TestWimRefusesZeroChunkSize: an LZX WIM whose header says chunk size 0 is refused by every
// verb with wimlib's error, and wimlib-imagex refuses it too.
func TestWimRefusesZeroChunkSize(t *testing.T) {
	b, err := os.ReadFile(hostileWIM(t, "wimlib-tests/dotdot.wim")) // LZX, 32 KiB chunks
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(b[0x14:], 0)
	w := filepath.Join(t.TempDir(), "lzx0.wim")
	if err := os.WriteFile(w, b, 0o644); err != nil {
		t.Fatal(err)
	}
	const want = "invalid chunk size (0 bytes) for compression type LZX"
	for _, args := range [][]string{{"info", w}, {"dir", w, "1"}, {"verify", w}, {"apply", w, "1", t.TempDir()}, {"cat", w, "1", "/x"}} {
		if _, _, err := runWimArgs(t, args...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", args[0], err, want)
		}
	}
	if _, err := exec.LookPath("wimlib-imagex"); err != nil {
		t.Skip("wimlib-imagex not installed: not compared")
	}
	out, err := exec.Command("wimlib-imagex", "verify", w).CombinedOutput()
	if err == nil || !strings.Contains(strings.ToLower(string(out)), strings.ToLower(want)) {
		t.Errorf("wimlib-imagex verify: %v\n%s", err, out)
	}
}

// TestWimHelpSpellsOptionsAsUsage: each verb's --help lists its options as its usage line
// spells them ("--ref GLOB"), never flag's single-dash "-ref".
func TestWimHelpSpellsOptionsAsUsage(t *testing.T) {
	opt := regexp.MustCompile(`--[a-z-]+`)
	for verb := range wimVerbs() {
		manual, _, _ := runWimArgs(t, verb, "--help") // the manual is on stdout
		usage, options, ok := strings.Cut(manual, "Options:\n")
		options, _, _ = strings.Cut(options, "\n\n")
		if !ok {
			t.Fatalf("%s --help: no options:\n%s", verb, manual)
		}
		for _, o := range opt.FindAllString(usage, -1) {
			if !strings.Contains(options, "  "+o+" ") && !strings.Contains(options, "  "+o+"\n") {
				t.Errorf("%s --help: usage names %s, options do not:\n%s", verb, o, manual)
			}
		}
		for _, l := range strings.Split(strings.TrimRight(options, "\n"), "\n") {
			if !strings.HasPrefix(l, "  --") {
				t.Errorf("%s --help: option line %q is not spelled --name", verb, l)
			}
		}
	}
	// Both spellings parse.
	for _, args := range [][]string{{"verify", "/nonexistent.wim", "--ref", "x*.swm"}, {"verify", "/nonexistent.wim", "--ref=x*.swm"}} {
		if _, _, err := runWimArgs(t, args...); err == nil || strings.Contains(err.Error(), "flag provided but not defined") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestCheckHelpIsChecks: "pxewim check --help" prints check's manual, not serve's.
func TestCheckHelpIsChecks(t *testing.T) {
	for _, h := range []string{"--help", "-h", "-help"} {
		var out, errOut bytes.Buffer
		if code := run([]string{"check", h}, &out, &errOut); code != 0 {
			t.Errorf("check %s: exit %d\n%s", h, code, errOut.String())
		}
		if !strings.HasPrefix(out.String(), "PXEWIM-CHECK(8)") || strings.Contains(out.String(), "PXEWIM-SERVE") {
			t.Errorf("check %s printed:\n%.300s", h, out.String())
		}
	}
	var out bytes.Buffer
	run([]string{"serve", "--help"}, &out, &out)
	if !strings.HasPrefix(out.String(), "PXEWIM-SERVE(8)") {
		t.Errorf("serve --help printed:\n%.300s", out.String())
	}
}

// TestWimVerifyReportsOnlyTheFailure: a WIM corrupted in one place fails verification with
// that place's error alone: the workers stopped because of it add no "context canceled" and
// no "resource ended before its blobs' data".
func TestWimVerifyReportsOnlyTheFailure(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	wimtest.MakeTree(t, src, wimtest.TreeSpec{Seed: 7, Files: 24, MaxSize: 600_000, ChunkSize: 32768})
	w := filepath.Join(dir, "x.wim")
	wimtest.Wimlib(t, "capture", src, w, "x", "--compress=lzx")
	good, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.wim")
	for _, frac := range []int{10, 30, 50, 70} {
		b := bytes.Clone(good)
		off := len(b) * frac / 100
		copy(b[off:], "\xde\xad\xbe\xef\xde\xad\xbe\xef")
		if err := os.WriteFile(bad, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := runWimArgs(t, "verify", bad)
		if err == nil {
			t.Errorf("corruption at %d%%: verified", frac)
			continue
		}
		msg := err.Error()
		for _, stray := range []string{"context canceled", "resource ended before", "wim: "} {
			if strings.Contains(msg, stray) {
				t.Errorf("corruption at %d%%: error has %q:\n%s", frac, stray, msg)
			}
		}
	}
}
