package bcd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// hivexPrefix is the key path hivexregedit prints before every key.
const hivexPrefix = `HKEY_LOCAL_MACHINE\BCD00000000`

// regValue is one value as a reader saw it.
type regValue struct {
	Type uint32
	Data []byte
}

// regDump maps a key path below the root ("" for the root itself,
// `A\B` for deeper keys) to that key's values by name.
type regDump map[string]map[string]regValue

// dumpTree flattens a Key tree into the form hivexregedit exports.
func dumpTree(root *Key) regDump {
	d := regDump{}
	var walk func(k *Key, path string)
	walk = func(k *Key, path string) {
		vals := map[string]regValue{}
		for _, v := range k.Values {
			vals[v.Name] = regValue{v.Type, append([]byte{}, v.Data...)}
		}
		d[path] = vals
		for _, sk := range k.Subkeys {
			p := sk.Name
			if path != "" {
				p = path + `\` + sk.Name
			}
			walk(sk, p)
		}
	}
	walk(root, "")
	return d
}

func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := lookPath(name)
	if err != nil {
		t.Skipf("%s not found: install libwin-hivex-perl (hivexregedit) and libhivex-bin (hivexsh, hivexget)", name)
	}
	return p
}

// writeTemp writes a hive to a file in the test's temporary directory.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hivexExport runs `hivexregedit --export` on the hive file and parses
// the .reg text it prints. PERL_UNICODE=SO makes it print key names as
// UTF-8 whatever their characters.
func hivexExport(t testing.TB, file string) regDump {
	t.Helper()
	tool := requireTool(t, "hivexregedit")
	cmd := exec.Command(tool, "--export", "--prefix", hivexPrefix, file, `\`)
	cmd.Env = append(os.Environ(), "PERL_UNICODE=SO")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hivexregedit --export %s: %v\n%s", file, err, stderr.String())
	}
	d, err := parseRegExport(out)
	if err != nil {
		t.Fatalf("parsing hivexregedit output: %v", err)
	}
	return d
}

// parseRegExport parses the subset of the .reg format hivexregedit writes:
// [key] lines, then "name"=hex(N):.. or "name"=dword:.. value lines.
func parseRegExport(out []byte) (regDump, error) {
	d := regDump{}
	var cur map[string]regValue
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "Windows Registry Editor"):
		case strings.HasPrefix(line, "["):
			path := strings.TrimSuffix(strings.TrimPrefix(line, "["+hivexPrefix+`\`), "]")
			cur = map[string]regValue{}
			d[path] = cur
		default:
			if cur == nil {
				return nil, fmt.Errorf("value line before any key: %q", line)
			}
			name, rest, err := splitValueLine(line)
			if err != nil {
				return nil, err
			}
			v, err := parseRegData(rest)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", name, err)
			}
			cur[name] = v
		}
	}
	return d, sc.Err()
}

// splitValueLine splits `"na\"me"=data` or `@=data` into name and data.
func splitValueLine(line string) (string, string, error) {
	if strings.HasPrefix(line, "@=") {
		return "", line[2:], nil
	}
	if !strings.HasPrefix(line, `"`) {
		return "", "", fmt.Errorf("bad value line %q", line)
	}
	var name strings.Builder
	for i := 1; i < len(line); i++ {
		switch c := line[i]; c {
		case '\\':
			if i+1 < len(line) {
				i++
				name.WriteByte(line[i])
			}
		case '"':
			if i+1 >= len(line) || line[i+1] != '=' {
				return "", "", fmt.Errorf("bad value line %q", line)
			}
			return name.String(), line[i+2:], nil
		default:
			name.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated value name in %q", line)
}

func parseRegData(s string) (regValue, error) {
	switch {
	case strings.HasPrefix(s, "dword:"):
		n, err := strconv.ParseUint(s[6:], 16, 32)
		if err != nil {
			return regValue{}, err
		}
		return regValue{RegDWORD, binary.LittleEndian.AppendUint32(nil, uint32(n))}, nil
	case strings.HasPrefix(s, "hex:"):
		b, err := parseHexList(s[4:])
		return regValue{RegBinary, b}, err
	case strings.HasPrefix(s, "hex("):
		end := strings.Index(s, "):")
		if end < 0 {
			return regValue{}, fmt.Errorf("bad hex type in %q", s)
		}
		typ, err := strconv.ParseUint(s[4:end], 16, 32)
		if err != nil {
			return regValue{}, err
		}
		b, err := parseHexList(s[end+2:])
		return regValue{uint32(typ), b}, err
	}
	return regValue{}, fmt.Errorf("unknown data form %.40q", s)
}

func parseHexList(s string) ([]byte, error) {
	if s == "" {
		return []byte{}, nil
	}
	return hex.DecodeString(strings.ReplaceAll(s, ",", ""))
}

// compareDumps reports every difference between want and got.
func compareDumps(t testing.TB, want, got regDump) {
	t.Helper()
	for path, wv := range want {
		gv, ok := got[path]
		if !ok {
			t.Errorf("key %q missing from hivex's view", path)
			continue
		}
		for name, w := range wv {
			g, ok := gv[name]
			switch {
			case !ok:
				t.Errorf("key %q: value %q missing", path, name)
			case g.Type != w.Type:
				t.Errorf("key %q value %q: type %d, want %d", path, name, g.Type, w.Type)
			case !bytes.Equal(g.Data, w.Data):
				t.Errorf("key %q value %q: data differs (%d bytes, want %d)", path, name, len(g.Data), len(w.Data))
			}
		}
		for name := range gv {
			if _, ok := wv[name]; !ok {
				t.Errorf("key %q: unexpected value %q", path, name)
			}
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("unexpected key %q in hivex's view", path)
		}
	}
}

// hivexsh runs hivexsh with the commands on stdin and returns its output.
func hivexsh(t testing.TB, file, commands string) string {
	t.Helper()
	tool := requireTool(t, "hivexsh")
	cmd := exec.Command(tool, file)
	cmd.Stdin = strings.NewReader(commands)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hivexsh %s: %v\n%s", file, err, out)
	}
	return string(out)
}

// hivexmlNodeNames returns the key names hivexml prints, in document
// order (a depth-first walk of the stored subkey indexes).
func hivexmlNodeNames(t testing.TB, file string) []string {
	t.Helper()
	tool := requireTool(t, "hivexml")
	out, err := exec.Command(tool, file).Output()
	if err != nil {
		t.Fatalf("hivexml %s: %v", file, err)
	}
	var names []string
	for _, m := range nodeNameRE.FindAllSubmatch(out, -1) {
		names = append(names, html.UnescapeString(string(m[1])))
	}
	return names
}

var nodeNameRE = regexp.MustCompile(`<node name="([^"]*)"`)

// hivexget returns what hivexget prints for one value.
func hivexget(t testing.TB, file, key, value string) string {
	t.Helper()
	tool := requireTool(t, "hivexget")
	out, err := exec.Command(tool, file, key, value).CombinedOutput()
	if err != nil {
		t.Fatalf("hivexget %s %s %s: %v\n%s", file, key, value, err, out)
	}
	return strings.TrimRight(string(out), "\n")
}

var lookPath = exec.LookPath
