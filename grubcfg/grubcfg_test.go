package grubcfg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// hostile is text an admin's config or a store file name could carry: every GRUB
// metacharacter, quote games, expansions, comments, blocks, newlines and non-ASCII.
var hostile = []string{
	"plain",
	"it's",
	"'",
	"''",
	`'\''`,
	`'; reboot; '`,
	"a\nreboot",
	"a\r\nreboot",
	"$(reboot)",
	"${prefix}/x",
	"$prefix",
	"`reboot`",
	`"; reboot; "`,
	`\`,
	`a\`,
	`\'`,
	"{ reboot }",
	"} reboot {",
	"# comment",
	"a # b",
	"a;b",
	"a && b || c",
	"a | b > c < d & e",
	"--unrestricted",
	"-x",
	"Wіndows ПЕ 日本語 🙂",
	"tab\there",
	"nul\x00byte",
	"bad utf8 \xff\xfe",
	"menuentry 'x' { reboot }",
	strings.Repeat("long ", 200),
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range hostile {
		if strings.ContainsRune(s, 0) {
			continue // Render refuses NUL in words; Quote is only for checked values
		}
		cmds, err := grubLex("echo " + Quote(s) + "\n")
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if len(cmds) != 1 || len(cmds[0]) != 2 || cmds[0][1] != s {
			t.Errorf("Quote(%q) lexes to %q", s, cmds)
		}
	}
}

func TestRenderTable(t *testing.T) {
	cases := []struct {
		name string
		m    Menu
		want []string // lines the output must hold
	}{
		{"linux", Menu{Timeout: 10 * time.Second, Default: "deb", Entries: []Entry{{
			ID: "deb", Title: "Debian rescue", Kind: KindLinux,
			Kernel:  "(http,10.0.0.1)/blob/0123/vmlinuz",
			Initrds: []string{"(http,10.0.0.1)/blob/4567/initrd"},
			Args:    []string{"console=ttyS0", "quiet"},
		}}}, []string{
			"set timeout=10",
			"set default='deb'",
			"menuentry 'Debian rescue' --id 'deb' {",
			"\tlinux '(http,10.0.0.1)/blob/0123/vmlinuz' 'console=ttyS0' 'quiet'",
			"\tinitrd '(http,10.0.0.1)/blob/4567/initrd'",
		}},
		{"timeout rounds up, forever is -1", Menu{Timeout: 1500 * time.Millisecond, Entries: []Entry{{ID: "x", Kind: KindExit}}},
			[]string{"set timeout=2", "menuentry 'x' --id 'x' {", "\texit"}},
		{"forever", Menu{Timeout: -1, Entries: []Entry{{ID: "r", Title: "Reboot", Kind: KindReboot}}},
			[]string{"set timeout=-1", "\treboot"}},
		{"quote in title", Menu{Entries: []Entry{{ID: "q", Title: "Bob's PE", Kind: KindChainload, Path: "(tftp,10.0.0.1)/a b/boot.efi"}}},
			[]string{`menuentry 'Bob'\''s PE' --id 'q' {`, "\tchainloader '(tftp,10.0.0.1)/a b/boot.efi'"}},
		{"title read as an option", Menu{Entries: []Entry{{ID: "o", Title: "--unrestricted", Kind: KindExit}}},
			[]string{"menuentry ' --unrestricted' --id 'o' {"}},
		{"disabled", Menu{Entries: []Entry{{ID: "d", Title: "Old", Kind: KindDisabled, Reason: "memdisk cannot boot\nsigned; $x"}}},
			[]string{"\techo 'pxewim: entry d cannot boot: memdisk cannot boot signed; $x'", "\tsleep 10"}},
		{"comment cannot end", Menu{Comment: "for 52:54:00:12:34:56\nreboot", Entries: []Entry{{ID: "x", Kind: KindExit}}},
			[]string{"# grub.cfg written by pxewim: for 52:54:00:12:34:56 reboot"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := Render(c.m)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(out), "\n")
			for _, w := range c.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("no line %q in\n%s", w, out)
				}
			}
			checkLexes(t, c.m, out)
			grubScriptCheck(t, out)
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	lin := func(mod func(*Entry)) Menu {
		e := Entry{ID: "a", Kind: KindLinux, Kernel: "(http,h)/k"}
		mod(&e)
		return Menu{Entries: []Entry{e}}
	}
	cases := map[string]Menu{
		"empty kernel":         lin(func(e *Entry) { e.Kernel = "" }),
		"newline in kernel":    lin(func(e *Entry) { e.Kernel = "(http,h)/k\nreboot" }),
		"nul in initrd":        lin(func(e *Entry) { e.Initrds = []string{"(http,h)/i\x00"} }),
		"blank in arg":         lin(func(e *Entry) { e.Args = []string{"a b"} }),
		"quote in arg":         lin(func(e *Entry) { e.Args = []string{`x="y"`} }),
		"backslash in arg":     lin(func(e *Entry) { e.Args = []string{`x\y`} }),
		"empty arg":            lin(func(e *Entry) { e.Args = []string{""} }),
		"no id":                lin(func(e *Entry) { e.ID = "" }),
		"> in id":              lin(func(e *Entry) { e.ID = "a>b" }),
		"unknown kind":         lin(func(e *Entry) { e.Kind = 99 }),
		"empty chainload path": {Entries: []Entry{{ID: "c", Kind: KindChainload}}},
		"duplicate id":         {Entries: []Entry{{ID: "a", Kind: KindExit}, {ID: "a", Kind: KindExit}}},
		"default names none":   {Default: "zz", Entries: []Entry{{ID: "a", Kind: KindExit}}},
	}
	for name, m := range cases {
		if out, err := Render(m); err == nil {
			t.Errorf("%s: rendered\n%s", name, out)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", name, err)
		}
	}
}

// TestRenderHostile renders every hostile string in every position and checks that the
// output lexes, by GRUB's rules, to exactly the intended words.
func TestRenderHostile(t *testing.T) {
	var ents []Entry
	for i, s := range hostile {
		id := "e" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		ents = append(ents,
			Entry{ID: id + "-l", Title: s, Kind: KindLinux, Kernel: "(http,10.0.0.1)/" + strings.ReplaceAll(s, "\x00", ""), Initrds: []string{"(tftp,10.0.0.1)/x.wim:1/" + strings.ReplaceAll(s, "\x00", "")}},
			Entry{ID: s + "-d", Title: s, Kind: KindDisabled, Reason: s},
			Entry{ID: id + "-c", Title: s, Kind: KindChainload, Path: "(tftp,10.0.0.1)/" + s},
		)
	}
	// Drop what Render must refuse (checked in TestRenderRefuses), keep the rest.
	var ok []Entry
	for _, e := range ents {
		if _, err := Render(Menu{Entries: []Entry{e}}); err == nil {
			ok = append(ok, e)
		} else if e.Kind == KindDisabled && checkID(e.ID) == nil && utf8.ValidString(e.ID) {
			t.Errorf("disabled entry %q refused: %v", e.ID, err)
		}
	}
	if len(ok) < len(hostile) {
		t.Fatalf("only %d of %d hostile entries render", len(ok), len(ents))
	}
	m := Menu{Comment: "hostile\n$x", Timeout: 5 * time.Second, Default: ok[len(ok)-1].ID, Entries: ok}
	out, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	checkLexes(t, m, out)
	grubScriptCheck(t, out)
}

func TestURLPath(t *testing.T) {
	good := map[string]string{
		"http://10.0.0.1/blob/ab/vmlinuz":              "(http,10.0.0.1)/blob/ab/vmlinuz",
		"http://10.0.0.1:8080/files/a%20b/c?x=1":       "(http,10.0.0.1:8080)/files/a%20b/c?x=1",
		"tftp://10.0.0.1/tools.wim:1/boot/vmlinuz":     "(tftp,10.0.0.1)/tools.wim:1/boot/vmlinuz",
		"http://10.0.0.1/files/%24%7Bx%7D%27%0Areboot": "(http,10.0.0.1)/files/%24%7Bx%7D%27%0Areboot",
	}
	for in, want := range good {
		got, err := URLPath(in)
		if err != nil || got != want {
			t.Errorf("URLPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"https://h/x", "http://[::1]/x", "http://a,b/x", "http://a)b/x", "tftp://h/a%0Ab", "ftp://h/x", "http://u@h/x"} {
		if got, err := URLPath(in); err == nil {
			t.Errorf("URLPath(%q) = %q, want an error", in, got)
		}
	}
}

func checkLexes(t *testing.T, m Menu, out []byte) {
	t.Helper()
	cmds, err := grubLex(string(out))
	if err != nil {
		t.Fatalf("output does not lex: %v\n%s", err, out)
	}
	if d := equalCmds(cmds, intended(m)); d != "" {
		t.Fatalf("output is not the intended commands: %s\n%s", d, out)
	}
}

// grubScriptCheck runs GRUB's own parser (grub-script-check, package grub-common) on out.
func grubScriptCheck(t *testing.T, out []byte) {
	t.Helper()
	bin, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Log("grub-script-check not installed (apt-get install grub-common): GRUB's parser not run")
		return
	}
	f := filepath.Join(t.TempDir(), "grub.cfg")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bin, f).CombinedOutput(); err != nil {
		t.Fatalf("grub-script-check: %v: %s\n%s", err, b, out)
	}
}

// TestGrubScriptCheckCatches shows that grub-script-check, used above as GRUB's own parser, does
// refuse a broken script (an unterminated quote, an unclosed block): its passes mean something.
func TestGrubScriptCheckCatches(t *testing.T) {
	bin, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Skip("grub-script-check not installed (apt-get install grub-common)")
	}
	for _, bad := range []string{"echo 'x\n", "menuentry 'x' {\n\techo y\n"} {
		f := filepath.Join(t.TempDir(), "grub.cfg")
		if err := os.WriteFile(f, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, f).CombinedOutput(); err == nil {
			t.Errorf("grub-script-check accepted %q: %s", bad, out)
		}
	}
}
