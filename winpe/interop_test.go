package winpe_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/tftp"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestWinPEOverTFTPWithATFTP fetches a native client's files with atftp (backslash paths,
// windowsize 8, as bootmgr asks) and compares them with wimlib-imagex extract.
func TestWinPEOverTFTPWithATFTP(t *testing.T) {
	atftp, err := exec.LookPath("atftp")
	if err != nil {
		t.Skip("atftp not found: install atftp")
	}
	dir, store := winpeStore(t)
	p := winpePolicy(t, store)
	c := client("52:54:00:00:00:02", boot.FirmwareBIOS, false) // "setup": image 2, as it is
	srv, err := tftp.New(tftp.Config{
		Resolve: func(context.Context, netip.AddrPort, netip.Addr) (fs.FS, error) { return p.Tree(c) },
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() { cancel(); <-done })
	port := fmt.Sprint(conn.LocalAddr().(*net.UDPAddr).Port)
	setup := filepath.Join(dir, "setup.wim")
	orig, _ := os.ReadFile(setup)
	for _, tc := range []struct {
		remote string
		want   []byte
	}{
		{`boot\pxeboot.n12`, testenv.WimExtract(t, setup, 2, "Windows/Boot/PXE/pxeboot.n12")},
		{`boot\bootmgr.exe`, testenv.WimExtract(t, setup, 2, "Windows/Boot/PXE/bootmgr.exe")},
		{`\Boot\BCD`, testenv.WimExtract(t, setup, 2, "Windows/Boot/DVD/PCAT/BCD")},
		{`\boot\boot.sdi`, testenv.WimExtract(t, setup, 2, "Windows/Boot/DVD/PCAT/boot.sdi")},
		{`\Boot\Fonts\segmono_boot.ttf`, testenv.WimExtract(t, setup, 2, "Windows/Boot/Fonts/segmono_boot.ttf")},
		{`\sources\boot.wim`, orig},
	} {
		local := filepath.Join(t.TempDir(), "out")
		out, err := exec.Command(atftp, "--option", "blksize 1468", "--option", "windowsize 8", "--option", "tsize 0",
			"-g", "-r", tc.remote, "-l", local, "127.0.0.1", port).CombinedOutput()
		if err != nil {
			t.Fatalf("atftp %s: %v\n%s", tc.remote, err, out)
		}
		got, _ := os.ReadFile(local)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s over TFTP: %d bytes, want %d (wimlib-imagex extract)", tc.remote, len(got), len(tc.want))
		}
	}
}

// TestWinPEOverHTTPWithCurl renders an entry's wimboot script as the daemon does (blob URLs for
// files inside WIMs), fetches every initrd with curl, compares with wimlib-imagex, and reads
// the transcoded WIM in ranges.
func TestWinPEOverHTTPWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not found: install curl")
	}
	dir, store := winpeStore(t)
	p := winpePolicy(t, store)
	c := client("52:54:00:00:00:09", boot.FirmwareEFI64, true)
	tree, err := p.Tree(c)
	if err != nil {
		t.Fatal(err)
	}
	h := httpboot.NewHandler(httpboot.Config{
		Resolve: func(*http.Request, httpboot.ClientInfo) (fs.FS, error) { return tree, nil },
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	ts := httptest.NewServer(h)
	defer ts.Close()
	url := func(r boot.Ref) (string, error) { return httpboot.URL(tree, ts.URL, r.String()) }
	script, err := p.Script(c, "solid.ipxe", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	uefi := script[strings.Index(script, ":winpe_solid_uefi"):]
	lines := regexp.MustCompile(`initrd -n (\S+) (\S+) `).FindAllStringSubmatch(uefi, -1)
	if len(lines) != 5 {
		t.Fatalf("UEFI part of the script has %d initrds:\n%s", len(lines), script)
	}
	solid := filepath.Join(dir, "solid.wim")
	want := map[string][]byte{
		"bootmgfw.efi": testenv.WimExtract(t, solid, 1, "Windows/Boot/EFI/bootmgfw.efi"),
		"boot.sdi":     testenv.WimExtract(t, solid, 1, "Windows/Boot/DVD/EFI/boot.sdi"),
		"boot.stl":     testenv.WimExtract(t, solid, 1, "Windows/Boot/EFI/boot.stl"),
	}
	fetch := func(u string, extra ...string) []byte {
		out, err := exec.Command(curl, append([]string{"-sSf", u}, extra...)...).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", u, err)
		}
		return out
	}
	for _, l := range lines {
		name, u := l[1], l[2]
		got := fetch(u)
		switch name {
		case "BCD":
			checkBCDWithHivex(t, got, []string{"12000004"}) // generated (bcd: generate): description element
		case "boot.wim":
			f := filepath.Join(t.TempDir(), "boot.wim")
			os.WriteFile(f, got, 0o644)
			wimtest.Wimlib(t, "verify", f)
			if info := wimtest.Wimlib(t, "info", f); !strings.Contains(info, "Compression:    None") {
				t.Errorf("solid WIM not served uncompressed:\n%s", info)
			}
			// A range in the middle decodes only what it covers, and matches the whole.
			part := fetch(u, "-r", "1000-99999")
			if !bytes.Equal(part, got[1000:100000]) {
				t.Errorf("range 1000-99999 of boot.wim differs")
			}
			// The synthesised WIM's validator is its inputs' digest, so a second GET with it
			// is a 304 and a rebuild from the same inputs keeps caches valid.
			hdr := string(fetch(u, "-I"))
			m := regexp.MustCompile(`(?i)\netag: ("[0-9a-f]{40}")`).FindStringSubmatch(hdr)
			if m == nil {
				t.Fatalf("synthesised boot.wim has no digest ETag:\n%s", hdr)
			}
			if code := fetch(u, "-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: "+m[1]); string(code) != "304" {
				t.Errorf("GET with If-None-Match %s: status %s, want 304", m[1], code)
			}
		default:
			if !strings.Contains(u, "/blob/") {
				t.Errorf("%s: %s is not an immutable blob URL", name, u)
			}
			if !bytes.Equal(got, want[name]) {
				t.Errorf("%s over HTTP: %d bytes, want %d (wimlib-imagex extract)", name, len(got), len(want[name]))
			}
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
