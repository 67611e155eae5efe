package winsetup

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func benign() Params {
	return Params{
		Server:   netip.MustParseAddr("10.0.0.1"),
		Share:    "pxewim-setup",
		Folder:   "win11",
		User:     "pxewim",
		Password: "Abcdefgh12345678",
		Unattend: `X:\pxewim\unattend.xml`,
		Drivers:  []string{`X:\pxewim\drivers\1\net.inf`, `X:\pxewim\drivers\2\stor.inf`},
	}
}

// hostile are names a store or a config may hold: cmd operators, carets, percent signs and
// variable names, parentheses, exclamation marks, quotes, line breaks, non-ASCII.
var hostile = []string{
	`a & del /q C:\*`, `a && calc`, `a | calc`, `a || calc`, `a > C:\x`, `a < nul`, `a ^& calc`,
	`a^`, `^`, `%PATH%`, `%`, `%%`, `a%b%c`, `%~dp0`, `%1`, `!x!`, `(a)`, `a) & (calc`, `a;b,c=d`,
	"a\tb", `  spaces  `, `a"b`, `"`, "a\r\nb", "a\nb", "a\rb", "a\x00b", "a\x1bb", `ünï`, `a\`,
	`a\\"b`, `a` + strings.Repeat(`\`, 5), `%SYSTEMROOT%\x & y`, `:label`, `@echo on`, `goto :eof`,
	`nic ^& (x) !y!`, `client a & b %x%`, `drivers\group-b\stor`, `a>&2`, `2>nul`, `rem x`, `.`, `..`, `../..`, `a/../../b`, `con`, `a:b`, `a*b`,
}

// structure is a script's shape with the values taken out: per line, the label or the
// commands' names, argument counts, redirections and operators.
func structure(lines []cmdLine) []string {
	var out []string
	for _, l := range lines {
		if l.label != "" {
			out = append(out, ":"+l.label)
			continue
		}
		s := strings.Join(l.ops, " ") + "|" + strings.Join(l.vars, ",")
		for _, c := range l.cmds {
			name := ""
			if len(c.argv) > 0 {
				name = c.argv[0]
				if strings.HasSuffix(strings.ToLower(name), "setup.exe") {
					name = "SETUP"
				}
			}
			s += "|" + name + "/" + string(rune('0'+len(c.argv))) + "/" + strings.Join(c.redirs, ",")
		}
		out = append(out, s)
	}
	return out
}

// args finds the commands named name (case-insensitive) and returns their argv.
func commands(lines []cmdLine, name string) [][]string {
	var out [][]string
	for _, l := range lines {
		for _, c := range l.cmds {
			if len(c.argv) > 0 && strings.EqualFold(c.argv[0], name) {
				out = append(out, c.argv)
			}
		}
	}
	return out
}

// checkScript generates the script for p and proves by the cmd model that it has the shape of
// the benign script and that every value is exactly one argument of its command; or p is
// refused with an error.
func checkScript(t *testing.T, p Params) bool {
	t.Helper()
	want := benign()
	want.Drivers = want.Drivers[:len(p.Drivers)]
	if p.Unattend == "" {
		want.Unattend = ""
	}
	want.BypassWin11Checks = p.BypassWin11Checks
	refScript, err := Startnet(want)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := tokenizeBatch(string(refScript))
	if err != nil {
		t.Fatal(err)
	}
	script, err := Startnet(p)
	if err != nil {
		if err.Error() == "" {
			t.Fatal("empty error")
		}
		if p.Password != "" && strings.Contains(err.Error(), p.Password) {
			t.Fatalf("error names the password: %v", err)
		}
		return false
	}
	lines, err := tokenizeBatch(string(script))
	if err != nil {
		t.Fatalf("%v\n%s", err, script)
	}
	if got, w := structure(lines), structure(ref); !reflect.DeepEqual(got, w) {
		t.Fatalf("script shape differs from the benign script's:\n got %q\nwant %q\n%s", got, w, script)
	}
	for i, d := range commands(lines, "drvload") {
		if d[1] != p.Drivers[i] {
			t.Fatalf("drvload argument %q, want %q", d[1], p.Drivers[i])
		}
	}
	folder, _ := winPath(p.Folder)
	setup := "S:\\" + folder + "\\setup.exe"
	if folder == "" {
		setup = `S:\setup.exe`
	}
	var found bool
	for _, l := range lines {
		for _, c := range l.cmds {
			if len(c.argv) > 0 && c.argv[0] == setup {
				found = true
				if p.Unattend != "" && (len(c.argv) != 2 || c.argv[1] != "/unattend:"+p.Unattend) {
					t.Fatalf("setup argv %q, want unattend %q", c.argv, p.Unattend)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no command runs %q:\n%s", setup, script)
	}
	for _, n := range commands(lines, "net") {
		if len(n) < 6 || n[1] != "use" || n[2] != "S:" || n[4] != "/user:"+p.User || n[5] != p.Password {
			t.Fatalf("net use argv %q", n)
		}
	}
	return true
}

// TestHostileNames: every hostile name as folder, driver path or unattend path is either
// refused with an error or stays one argument of its command; the script's shape never
// changes (no command added, no operator, no redirection, no variable expanded).
func TestHostileNames(t *testing.T) {
	accepted, refused := 0, 0
	for _, h := range hostile {
		for _, mk := range []func(p *Params){
			func(p *Params) { p.Folder = h },
			func(p *Params) { p.Folder = "win/" + h + "/x" },
			func(p *Params) { p.Drivers = []string{`X:\d\` + h + `\a.inf`} },
			func(p *Params) { p.Drivers = []string{`X:\d\` + h + `.inf`, `X:\` + h + `\b.inf`} },
			func(p *Params) { p.Unattend = `X:\` + h },
			func(p *Params) { p.Unattend = h },
		} {
			p := benign()
			mk(&p)
			if checkScript(t, p) {
				accepted++
			} else {
				refused++
			}
		}
	}
	t.Logf("%d hostile variants accepted (inert), %d refused", accepted, refused)
	if accepted == 0 || refused == 0 {
		t.Fatal("the corpus should hold both values cmd can quote and values it must refuse")
	}
}

// TestRefusals: values that cannot be made inert are refused, naming the value (never the
// password).
func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		mod  func(p *Params)
		want string
	}{
		{func(p *Params) { p.Folder = `a"b` }, "double quote"},
		{func(p *Params) { p.Drivers = []string{"X:\\a\r\nb.inf"} }, "control character"},
		{func(p *Params) { p.Unattend = `X:\ü.xml` }, "non-ASCII"},
		{func(p *Params) { p.Folder = "a/../b" }, "not allowed"},
		{func(p *Params) { p.Drivers = []string{`X:\a\b.sys`} }, "not an .inf"},
		{func(p *Params) { p.Unattend = `X:\dir\` }, "backslash"},
		{func(p *Params) { p.Share = "a b" }, "share name"},
		{func(p *Params) { p.User = "a&b" }, "user"},
		{func(p *Params) { p.Password = "pass&word1" }, "password"},
		{func(p *Params) { p.Password = "short" }, "password"},
		{func(p *Params) { p.Server = netip.Addr{} }, "server"},
		{func(p *Params) { p.Drive = 'X' }, "drive"},
	} {
		p := benign()
		c.mod(&p)
		_, err := Startnet(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", p, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), p.Password) {
			t.Errorf("error names the password: %v", err)
		}
	}
}

// TestScriptContent: the benign script runs wpeinit, each driver, waits for the network, maps
// the share, runs setup with the unattend file; the LabConfig bypasses appear only when asked
// for; IPv6 servers are written as ipv6-literal.net names; winpeshl.ini runs startnet.cmd.
func TestScriptContent(t *testing.T) {
	p := benign()
	b, err := Startnet(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"@echo off\r\n", "\r\nwpeinit\r\n", `drvload "X:\pxewim\drivers\1\net.inf"`,
		"wpeutil WaitForNetwork", `net use S: "\\10.0.0.1\pxewim-setup" /user:pxewim Abcdefgh12345678 /persistent:no`,
		`"S:\win11\setup.exe" "/unattend:X:\pxewim\unattend.xml"`} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "LabConfig") {
		t.Error("bypasses written without being asked for")
	}
	if !strings.HasSuffix(s, "\r\n") || strings.Count(s, "\n") != strings.Count(s, "\r\n") {
		t.Error("line ends are not CRLF")
	}
	p.BypassWin11Checks = true
	p.Server = netip.MustParseAddr("fd00::1")
	b, _ = Startnet(p)
	s = string(b)
	for _, v := range []string{"BypassTPMCheck", "BypassSecureBootCheck", "BypassRAMCheck", "BypassCPUCheck", "BypassStorageCheck"} {
		if !strings.Contains(s, `reg add HKLM\SYSTEM\Setup\LabConfig /v `+v+` /t REG_DWORD /d 1 /f`) {
			t.Errorf("bypass %s missing", v)
		}
	}
	if !strings.Contains(s, `\\fd00--1.ipv6-literal.net\pxewim-setup`) {
		t.Errorf("IPv6 server not written as an ipv6-literal.net name:\n%s", s)
	}
	checkScript(t, p)
	if w := string(Winpeshl()); w != "[LaunchApps]\r\n%SYSTEMROOT%\\System32\\cmd.exe, /k %SYSTEMROOT%\\System32\\startnet.cmd\r\n" {
		t.Errorf("winpeshl.ini %q", w)
	}
}

// FuzzStartnet: any folder, driver and unattend path is refused or stays one argument.
func FuzzStartnet(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, `X:\d\`+h+`.inf`, `X:\`+h, false)
	}
	f.Add("win11", `X:\a.inf`, "", true)
	f.Fuzz(func(t *testing.T, folder, driver, unattend string, bypass bool) {
		p := benign()
		p.Folder, p.Drivers, p.Unattend, p.BypassWin11Checks = folder, []string{driver}, unattend, bypass
		checkScript(t, p)
	})
}

// TestModelCatchesBadQuoting: the cmd model is not blind: the mistakes an escaper could make
// (an unquoted operator, % not doubled, a quote inside a quoted value, a caret outside quotes)
// each change the shape or the argument it reads.
func TestModelCatchesBadQuoting(t *testing.T) {
	for _, c := range []struct {
		line string
		bad  func(l cmdLine) bool
	}{
		{`drvload X:\a & calc.inf`, func(l cmdLine) bool { return len(l.cmds) == 2 }},
		{`drvload "X:\a" & "calc.inf"`, func(l cmdLine) bool { return len(l.cmds) == 2 }},
		{`drvload "X:\%PATH%.inf"`, func(l cmdLine) bool { return len(l.vars) == 1 }},
		{`drvload "X:\a"b c".inf"`, func(l cmdLine) bool { return len(l.cmds[0].argv) == 3 }},
		{`drvload X:\a^&b.inf`, func(l cmdLine) bool { return l.cmds[0].argv[1] == `X:\a&b.inf` }},
		{`drvload "X:\a b.inf" > C:\x`, func(l cmdLine) bool { return len(l.cmds[0].redirs) == 1 }},
		{`drvload "X:\a\\" b`, func(l cmdLine) bool { return len(l.cmds[0].argv) == 3 && l.cmds[0].argv[1] == `X:\a\` }},
		{`drvload "X:\a\" & calc "x"`, func(l cmdLine) bool { return len(l.cmds) == 2 }},
	} {
		l, err := tokenizeLine(c.line)
		if err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		if !c.bad(l) {
			t.Errorf("model reads %s as %+v", c.line, l)
		}
	}
}
