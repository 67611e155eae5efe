package stress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
)

// TestLossHTTPInProcessGoroutines serves a file inside an LZX WIM with an in-process
// httpboot.Server (listener in the server namespace: accepted sockets stay there) through the
// same loss cases, with some clients hanging up mid-download, and checks that the process's
// goroutine count returns to its level before the run: no handler, decoder or connection
// goroutine is left behind.
func TestLossHTTPInProcessGoroutines(t *testing.T) {
	p := newPair(t, "10.91.12")
	testenv.RequireTools(t, "tc")
	dir := t.TempDir()
	data := payload(2<<20, 9)
	wp := filepath.Join(dir, "img.wim")
	buildWIM(t, wp, map[string][]byte{"f.bin": data}, "LZX")
	rc, err := wim.OpenFile(wp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	img, err := rc.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := img.Open("f.bin")
	if err != nil {
		t.Fatal(err)
	}
	ra := f.(io.ReaderAt)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f.bin", time.Time{}, io.NewSectionReader(ra, 0, int64(len(data))))
	})
	ln, err := p.Srv.Listen("tcp", p.SrvIP.String()+":80")
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() {
		srvDone <- (&httpboot.Server{Handler: h, IdleTimeout: 3 * time.Second, ShutdownTimeout: 5 * time.Second}).Serve(ctx, ln)
	}()
	url := fmt.Sprintf("http://%s/f.bin", p.SrvIP)
	for _, c := range netemCases() {
		t.Run(c.name, func(t *testing.T) {
			how := impair(t, p, c)
			if how == viaClient {
				t.Skip("kernel has neither sch_netem nor nft+HTB: TCP duplication/reordering needs one of them")
			}
			tcp0 := nstat(p.Cli, tcpCounters...)
			want := data[:min(len(data), 4*c.size)]
			var wg sync.WaitGroup
			for k := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := nsClient(p.Cli, p.CliIP, 2*time.Minute)
					defer cl.CloseIdleConnections()
					if k%3 == 2 { // hang up after the first bytes
						cctx, ccancel := context.WithCancel(ctx)
						req, _ := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
						resp, err := cl.Do(req)
						if err == nil {
							io.ReadFull(resp.Body, make([]byte, 1000))
							ccancel()
							resp.Body.Close()
						}
						ccancel()
						return
					}
					// Kernel drops are random: at 20% each way a TCP retransmission chain can
					// outlast the client's timeout once in a while. A client retries (iPXE
					// does); three failures in a row are an error, and every success must be
					// byte-exact.
					var err error
					for try := 0; try < 3; try++ {
						if _, err = fetchRanges(ctx, cl, url, want); err == nil {
							break
						}
						t.Logf("#%d try %d: %v", k, try+1, err)
					}
					if err != nil {
						t.Errorf("#%d: %v", k, err)
					}
				}()
			}
			wg.Wait()
			checkTCPImpaired(t, p, c, how, tcp0)
		})
	}
	// While serving, idle keep-alive connections end on IdleTimeout; wait for the count first
	// with the server still up (a leak would show here), then stop it.
	var during int
	for range 40 {
		runtime.GC()
		// The serving goroutines themselves: Serve + its accept loop + context watcher.
		if during = runtime.NumGoroutine(); during <= before+4 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	cancel()
	if err := <-srvDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("server: %v", err)
	}
	var after int
	for range 20 {
		if after = runtime.NumGoroutine(); after <= before {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if during > before+4 || after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d settled while serving, %d after shutdown\n%s", before, during, after, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("goroutines: %d before, %d settled while serving (server's own: up to 4), %d after shutdown", before, during, after)
}
