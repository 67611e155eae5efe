package grubcfg

import (
	"strings"
	"testing"
	"time"
)

// FuzzRender renders a menu built from arbitrary strings in every position (title, ID,
// kernel, initrd, argument, chainload path, reason, comment, default) and checks that the output
// lexes, by GRUB's rules, to exactly the intended commands: no input adds a command, a word, an
// expansion or a block. Refusals are fine; panics and multi-line errors are not.
func FuzzRender(f *testing.F) {
	f.Add("Debian", "deb", "(http,10.0.0.1)/blob/ab/vmlinuz", "console=ttyS0", "it's", "for 52:54:00:12:34:56", int64(10000), true)
	f.Add("'; reboot; '", "a'b", "(tftp,h)/x.wim:1/$prefix", "a=b", "$(x)\n{", "x\ny", int64(-1), false)
	f.Add("--id", "}", "(http,h)/a b", "x\\y", "`r`", "#", int64(1500), true)
	f.Fuzz(func(t *testing.T, title, id, path, arg, reason, comment string, timeoutMS int64, useDefault bool) {
		m := Menu{Comment: comment, Timeout: time.Duration(timeoutMS) * time.Millisecond}
		m.Entries = []Entry{
			{ID: id, Title: title, Kind: KindLinux, Kernel: path, Initrds: []string{path, path + "2"}, Args: []string{arg, "quiet"}},
			{ID: id + "-c", Title: reason, Kind: KindChainload, Path: path},
			{ID: id + "-d", Title: title, Kind: KindDisabled, Reason: reason},
			{ID: "exit", Title: "Boot from the next device", Kind: KindExit},
		}
		if useDefault {
			m.Default = id
		}
		out, err := Render(m)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		cmds, lerr := grubLex(string(out))
		if lerr != nil {
			t.Fatalf("output does not lex: %v\n%s", lerr, out)
		}
		if d := equalCmds(cmds, intended(m)); d != "" {
			t.Fatalf("output is not the intended commands: %s\n%s", d, out)
		}
	})
}
