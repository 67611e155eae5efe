package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestServeOneChunkCache: the daemon decodes every WIM it opens through its one chunk cache,
// whose `cache:` bound holds under load. The store has ten WinPE WIMs stored LZMS solid (served
// transcoded, so every read decodes source chunks), a Windows Setup ISO (sources/boot.wim) and
// a split set; state_dir makes the background verifier run, and an upload: section (when the
// OpenSSH client is installed) validates an uploaded WIM. Twenty HTTP clients read the ten
// entries' boot.wim at once. Then:
//   - wim.PrivateCaches did not move: no WIM the daemon opened (catalog scans of the bare WIMs,
//     the ISO's WIM and the split set, verification, upload validation, WinPE sources and
//     transcodes, store reads) got a private cache (before: catalog, verification, upload and
//     ISO verification each made a 256 MiB one per WIM);
//   - the shared cache decoded the load (misses), had to evict (the ten sources' chunks do not
//     fit in the bound), and its high-water mark (PeakBytes) never went above the bound;
//   - the two clients of each entry read the same bytes, and the ten entries differ.
func TestServeOneChunkCache(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	store, state := filepath.Join(dir, "store"), filepath.Join(dir, "state")
	os.MkdirAll(store, 0o755)
	os.MkdirAll(state, 0o755)
	os.WriteFile(filepath.Join(store, "wimboot"), []byte("stand-in"), 0o644)
	began := time.Now()
	rng := rand.New(rand.NewPCG(12, 34))
	var wg sync.WaitGroup
	for i := range 10 {
		raw := make([]byte, 1536<<10)
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		payload := []byte(base64.StdEncoding.EncodeToString(raw)) // 2 MiB that LZMS keeps ~75% of
		wg.Go(func() {
			testenv.BuildWinPE(t, filepath.Join(store, fmt.Sprintf("pe%d.wim", i)), []testenv.WinPEImage{{
				Name:  fmt.Sprintf("PE %d", i),
				Files: map[string][]byte{"Windows/System32/payload.bin": payload},
			}}, "--solid")
		})
	}
	wg.Wait()
	t.Logf("ten LZMS WIMs built: %v", time.Since(began))
	testenv.BuildSplitWinPE(t, store, "split", 3)
	if _, err := exec.LookPath("genisoimage"); err == nil {
		isoRoot := filepath.Join(dir, "isoroot")
		os.MkdirAll(filepath.Join(isoRoot, "sources"), 0o755)
		testenv.BuildWinPE(t, filepath.Join(isoRoot, "sources", "boot.wim"), []testenv.WinPEImage{{Name: "Setup PE"}}, "--compress=LZX")
		if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "win.iso"), isoRoot).CombinedOutput(); err != nil {
			t.Fatalf("genisoimage: %v\n%s", err, out)
		}
	} else {
		t.Log("genisoimage not found: the store has no ISO (install genisoimage)")
	}

	const bound = 16 << 20 // the smallest `cache:` the config takes; the ten sources hold ~26 MiB
	upload := ""
	var sftpPut func(local, remote string) error
	if haveTools("sftp", "ssh-keygen") {
		upload, sftpPut = uploadSection(t, dir)
	} else {
		t.Log("sftp or ssh-keygen not found: upload validation not exercised (install openssh-client)")
	}
	httpPort, tftpPort := serveFreePort(t, "tcp"), serveFreePort(t, "udp")
	conf := filepath.Join(dir, "pxewim.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("store: %s\nstate_dir: %s\ncache: 16MiB\nwinpe: {auto: true, wimboot: wimboot}\n%s",
		store, state, upload)), 0o644)
	flags, err := parseServeFlags([]string{"--config", conf, "--http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--tftp", fmt.Sprintf("127.0.0.1:%d", tftpPort)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := &serveLog{}
	private := wim.PrivateCaches()
	d, err := newDaemon(flags, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	if got := d.cache.MaxBytes(); got != bound {
		t.Fatalf("cache bound %d, want the config's %d", got, bound)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	serveWaitFor(t, 10*time.Second, func() bool {
		resp, err := http.Get(base + "/boot.ipxe")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, "the HTTP server", log)

	type result struct {
		entry string
		body  []byte
		err   error
	}
	results := make(chan result, 20)
	for i := range 20 {
		entry := fmt.Sprintf("pe-pe%d-1", i%10)
		go func() {
			resp, err := http.Get(base + "/files/winpe/" + entry + "/boot.wim")
			if err != nil {
				results <- result{entry, nil, err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s", resp.Status)
			}
			results <- result{entry, body, err}
		}()
	}
	t.Logf("daemon up: %v", time.Since(began))
	got := map[string][]byte{}
	for range 20 {
		r := <-results
		if r.err != nil || len(r.body) < 2<<20 {
			t.Fatalf("%s/boot.wim: %v, %d bytes\n%s", r.entry, r.err, len(r.body), log)
		}
		if prev, ok := got[r.entry]; ok && !bytes.Equal(prev, r.body) {
			t.Errorf("two clients of %s read different bytes", r.entry)
		}
		got[r.entry] = r.body
	}
	seen := map[string]string{}
	for name, b := range got {
		if other, dup := seen[string(b)]; dup {
			t.Errorf("%s and %s served the same boot.wim", name, other)
		}
		seen[string(b)] = name
	}

	t.Logf("twenty clients done: %v", time.Since(began))
	if sftpPut != nil {
		up := filepath.Join(dir, "up.wim")
		testenv.BuildWinPE(t, up, []testenv.WinPEImage{{Name: "Uploaded PE"}}, "--compress=LZX")
		if err := sftpPut(up, "/incoming/up.wim"); err != nil {
			t.Fatalf("upload: %v\n%s", err, log)
		}
		if _, err := os.Stat(filepath.Join(store, "up.wim")); err != nil {
			t.Fatalf("the uploaded WIM was not published: %v", err)
		}
	}
	// The verifier works through the store's WIMs in the background: wait for its verdicts.
	serveWaitFor(t, 2*time.Minute, func() bool {
		v := d.verifier.Load()
		if v == nil {
			return false
		}
		st := v.Stats()
		return st.Verified+st.Failed >= 11 && st.Queued == 0 && st.Running == ""
	}, "the verifier's verdicts", log)
	t.Logf("verified: %v", time.Since(began))
	if st := d.verifier.Load().Stats(); st.Failed != 0 {
		t.Errorf("verifier: %+v", st)
	}

	st := d.cache.Stats()
	t.Logf("shared cache: bound %d MiB, peak %.1f MiB, %d misses, %d hits, %d evictions", bound>>20,
		float64(st.PeakBytes)/(1<<20), st.Misses, st.Hits, st.Evictions)
	if n := wim.PrivateCaches() - private; n != 0 {
		t.Errorf("%d WIMs the daemon opened got a private chunk cache instead of the daemon's", n)
	}
	if st.Misses == 0 {
		t.Error("nothing was decoded through the daemon's cache")
	}
	if st.Evictions == 0 {
		t.Error("the load fit in the bound without an eviction: the test does not load the bound")
	}
	if st.PeakBytes > bound || st.Bytes > bound {
		t.Errorf("the cache held %d bytes (peak %d), over its bound of %d", st.Bytes, st.PeakBytes, bound)
	}
}

func haveTools(names ...string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return false
		}
	}
	return true
}

// uploadSection makes an admin key, a host key and known_hosts in dir and returns the config's
// upload: section (on a free loopback port) and a function uploading a file with OpenSSH sftp.
func uploadSection(t *testing.T, dir string) (string, func(local, remote string) error) {
	t.Helper()
	keygen := func(p string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pxewim-test", "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	admin, hostKey := filepath.Join(dir, "admin"), filepath.Join(dir, "host_ed25519")
	keygen(admin)
	keygen(hostKey)
	pub, _ := os.ReadFile(admin + ".pub")
	authKeys := filepath.Join(dir, "authorized_keys")
	os.WriteFile(authKeys, pub, 0o600)
	port := serveFreePort(t, "tcp")
	hostPub, _ := os.ReadFile(hostKey + ".pub")
	knownHosts := filepath.Join(dir, "known_hosts")
	os.WriteFile(knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", port, hostPub)), 0o644)
	section := fmt.Sprintf("upload: {listen: \"127.0.0.1:%d\", authorized_keys: %s, host_key: %s, min_free: 0}\n", port, authKeys, hostKey)
	return section, func(local, remote string) error {
		bf := filepath.Join(t.TempDir(), "batch")
		os.WriteFile(bf, []byte("put "+local+" "+remote+"\n"), 0o644)
		out, err := exec.Command("sftp", "-F", "/dev/null", "-b", bf, "-i", admin, "-P", fmt.Sprint(port),
			"-o", "UserKnownHostsFile="+knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "admin@127.0.0.1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("sftp: %v\n%s", err, out)
		}
		return nil
	}
}
