package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestServeDamagedWIMInLocalISONeverCompletes: a local store's ISOs (genisoimage) holding
// sources/boot.wim, in bad.iso with 4 bytes flipped inside a file resource (header and blob
// table intact), in good.iso the intact copy. The running daemon serves the WIM file inside
// the ISO whole as it does a bare WIM: curl over /files/ and atftp and tftp-hpa never complete
// the damaged one (cut short before the last bytes, or refused once the verdict is in), the
// log names it at ERROR; the intact one arrives byte-exact over HTTP and TFTP.
func TestServeDamagedWIMInLocalISONeverCompletes(t *testing.T) {
	wimtest.NeedWimlib(t)
	tools := map[string]string{}
	for _, tool := range []string{"curl", "atftp", "tftp", "genisoimage"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not found: install curl, atftp, tftp-hpa and genisoimage (./test.sh does)", tool)
		}
		tools[tool] = p
	}
	d := wimtest.MakeDamagedWIM(t, "XPRESS", 41)
	bad, err := os.ReadFile(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(d.Good)
	if err != nil {
		t.Fatal(err)
	}
	fx := startOpsServeWith(t, "", func(t *testing.T, store, scratch string) {
		for name, b := range map[string][]byte{"bad": bad, "good": good} {
			root := filepath.Join(scratch, name)
			if err := os.MkdirAll(filepath.Join(root, "sources"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(root, "sources", "boot.wim"), b)
			if out, err := exec.Command(tools["genisoimage"], "-quiet", "-udf", "-J", "-o", filepath.Join(store, name+".iso"), root).CombinedOutput(); err != nil {
				t.Fatalf("genisoimage: %v\n%s", err, out)
			}
		}
	})
	tftpHost, tftpPort, _ := strings.Cut(fx.tftp, ":")
	tftpGet := func(client, ref string) ([]byte, []byte, string, error) {
		out := filepath.Join(t.TempDir(), client)
		var cmd *exec.Cmd
		if client == "atftp" {
			cmd = exec.Command(tools["atftp"], "--option", "blksize 1468", "--option", "windowsize 8", "-g", "-r", ref, "-l", out, tftpHost, tftpPort)
		} else {
			cmd = exec.Command(tools["tftp"], "-l", "-m", "binary", tftpHost, tftpPort, "-c", "get", ref, out)
		}
		msg, err := cmd.CombinedOutput()
		b, _ := os.ReadFile(out)
		return b, msg, out, err
	}

	// The intact WIM inside good.iso: byte-exact over HTTP and both TFTP clients.
	if st, b := get(t, httpboot.FileURL(fx.base, "good.iso/sources/boot.wim")); st != http.StatusOK || !bytes.Equal(b, good) {
		t.Fatalf("good.iso/sources/boot.wim over HTTP: status %d, %d of %d bytes, identical=%v\n%s", st, len(b), len(good), bytes.Equal(b, good), fx.log)
	}
	for _, client := range []string{"atftp", "tftp-hpa"} {
		if b, msg, _, err := tftpGet(client, "good.iso/sources/boot.wim"); err != nil || !bytes.Equal(b, good) {
			t.Errorf("good.iso/sources/boot.wim over %s: %v, %d of %d bytes, identical=%v\n%s", client, err, len(b), len(good), bytes.Equal(b, good), msg)
		}
	}

	// The damaged one never completes.
	ref := "bad.iso/sources/boot.wim"
	curlDamaged(t, tools["curl"], httpboot.FileURL(fx.base, ref), len(bad), fx.log)
	for _, client := range []string{"atftp", "tftp-hpa"} {
		_, msg, out, err := tftpGet(client, ref)
		tftpDamaged(t, client, msg, err, out, len(bad))
	}
	serveWaitFor(t, time.Minute, func() bool {
		return strings.Contains(fx.log.String(), "level=ERROR") && strings.Contains(fx.log.String(), "bad.iso/sources/boot.wim")
	}, "an ERROR record naming the damaged WIM inside the ISO", fx.log)
}
